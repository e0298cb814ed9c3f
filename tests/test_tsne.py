"""Tests of the t-SNE plot (zsser_modules/tsne.py)."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from zsser_modules import plot_tsne
from zsser_modules.labels import ALL_EMOTIONS, LANGUAGES
from zsser_modules.tsne import EMOTION_COLORS, LANGUAGE_MARKERS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _points(n, seed=0):
    rng = np.random.default_rng(seed)
    emotions = [("neutral", "happy", "angry", "sad")[i % 4] for i in range(n)]
    languages = [("en", "zh", "de")[i % 3] for i in range(n)]
    return rng.normal(size=(n, 16)), emotions, languages


def test_every_canonical_label_has_a_distinct_fixed_style():
    assert set(EMOTION_COLORS) == set(ALL_EMOTIONS)
    assert len(set(EMOTION_COLORS.values())) == len(EMOTION_COLORS)
    assert set(LANGUAGE_MARKERS) == set(LANGUAGES)
    assert len(set(LANGUAGE_MARKERS.values())) == len(LANGUAGE_MARKERS)


def test_writes_a_valid_png(tmp_path):
    embeddings, emotions, languages = _points(40)
    out = plot_tsne(
        embeddings,
        emotions,
        languages,
        tmp_path / "figs" / "tsne.png",
        title="en+zh -> de",
        target_language="de",
    )
    assert out == tmp_path / "figs" / "tsne.png"
    assert out.read_bytes()[:8] == PNG_MAGIC
    with Image.open(out) as image:
        image.verify()
        assert image.size[0] > 300 and image.size[1] > 300


def test_same_seed_gives_the_same_image(tmp_path):
    embeddings, emotions, languages = _points(30, seed=1)
    a = plot_tsne(embeddings, emotions, languages, tmp_path / "a.png", seed=3)
    b = plot_tsne(embeddings, emotions, languages, tmp_path / "b.png", seed=3)
    assert a.read_bytes() == b.read_bytes()


def test_fewer_points_than_perplexity_are_handled(tmp_path, caplog):
    embeddings, emotions, languages = _points(8)
    with caplog.at_level(logging.WARNING, logger="zsser_modules.tsne"):
        out = plot_tsne(
            embeddings, emotions, languages, tmp_path / "small.png", perplexity=30.0
        )
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert "perplexity" in caplog.text


def test_accepts_bf16_tensors_and_unknown_labels(tmp_path):
    embeddings, emotions, languages = _points(12)
    emotions[0] = "contempt"  # outside the canonical vocabulary
    languages[1] = "ja"
    tensor = torch.tensor(embeddings, requires_grad=True).bfloat16()
    out = plot_tsne(tensor, emotions, languages, tmp_path / "t.png")
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_one_dimensional_embeddings(tmp_path):
    embeddings, emotions, languages = _points(10)
    out = plot_tsne(embeddings[:, :1], emotions, languages, tmp_path / "d1.png")
    assert out.exists()


def test_clear_errors(tmp_path):
    embeddings, emotions, languages = _points(10)
    with pytest.raises(ValueError, match="10 embeddings but 9 emotions"):
        plot_tsne(embeddings, emotions[:-1], languages, tmp_path / "x.png")
    with pytest.raises(ValueError, match="10 embeddings but 11 languages"):
        plot_tsne(embeddings, emotions, languages + ["en"], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        plot_tsne(embeddings[0], emotions, languages, tmp_path / "x.png")
    with pytest.raises(ValueError, match="target_language"):
        plot_tsne(
            embeddings, emotions, languages, tmp_path / "x.png", target_language="fr"
        )
    with pytest.raises(ValueError, match="at least 3"):
        plot_tsne(embeddings[:2], emotions[:2], languages[:2], tmp_path / "x.png")
    with pytest.raises(ValueError, match="NaN"):
        bad = embeddings.copy()
        bad[0, 0] = np.nan
        plot_tsne(bad, emotions, languages, tmp_path / "x.png")
    with pytest.raises(TypeError, match="single string"):
        plot_tsne(embeddings, "happy", languages, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_identical_embeddings_raise_a_clear_error(tmp_path):
    emb = np.ones((6, 4))
    with pytest.raises(ValueError, match="identical"):
        plot_tsne(emb, ["happy"] * 6, ["en"] * 6, tmp_path / "t.png")
    assert not (tmp_path / "t.png").exists()
