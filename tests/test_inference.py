"""Tests of the exported inference model (zsser_modules.inference).

The models come from the session's recipe runs (tests/recipe_utils.py).
"""

import csv
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from encoder_utils import write_tone
from recipe_utils import fbank_run, ssl_run
from speechbrain.dataio.dataset import FilteredSortedDynamicItemDataset
from speechbrain.inference.interfaces import foreign_class

from recipes import train
from zsser_modules.audio import read_audio
from zsser_modules.data_prep.manifest import read_manifest
from zsser_modules.inference import (
    EmotionRecognizer,
    build_module,
    find_inference_folder,
    main,
)
from zsser_modules.labels import EMOTIONS
from zsser_modules.run import features as run_features

pytestmark = pytest.mark.slow


def check_prediction(prediction, batch_size=1):
    out_prob, score, index, text_lab = prediction
    assert out_prob.shape == (batch_size, len(EMOTIONS))
    # log-probabilities, as SpeechBrain's classifiers
    assert torch.allclose(out_prob.exp().sum(-1), torch.ones(batch_size))
    assert torch.equal(score, out_prob.max(-1).values)
    assert [EMOTIONS[i] for i in index.tolist()] == text_lab
    assert set(text_lab) <= set(EMOTIONS)


@pytest.fixture(scope="module")
def stereo_44k(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "stereo_44k.wav"
    return write_tone(path, seconds=0.6, sample_rate=44100, channels=2)


@pytest.mark.parametrize("run", ["ssl", "fbank"])
def test_classify_a_44k_stereo_file(tmp_path_factory, tmp_path, stereo_44k, run):
    folder = (ssl_run if run == "ssl" else fbank_run)(tmp_path_factory)[1]
    recognizer = EmotionRecognizer.from_hparams(
        source=str(folder / "inference"), savedir=str(tmp_path)
    )
    assert recognizer.emotions == list(EMOTIONS)
    check_prediction(recognizer.classify_file(stereo_44k))
    assert recognizer.hparams.trained_on["target"] == "de"


def test_inference_matches_the_trained_model(tmp_path_factory):
    """The exported model gives the training model's embedding and probabilities."""
    brain, folder = ssl_run(tmp_path_factory)
    recognizer = EmotionRecognizer.from_hparams(source=str(folder / "inference"))
    results = json.loads((folder / "results.json").read_text())
    hparams = vars(brain.hparams)
    datasets, _ = train.dataio_prep(hparams, results["setting"])
    # The run trained on cached SSL features (read back here for brain.embed);
    # the exported model computes them live, with its copy of the local model.
    assert brain.hparams.encoder_is_cached
    encoder = build_module(hparams["ssl_encoder"])
    counts = run_features.cache_encoder_features(
        hparams, hparams["feature_options"], encoder, datasets, {"noprogressbar": True}
    )
    assert counts["computed"] == 0 and counts["reused"] > 0
    test_df = read_manifest(results["setting"]["test"]).set_index("ID")
    utt_id = test_df.index[0]
    one_utterance = FilteredSortedDynamicItemDataset(datasets["test"], [utt_id])
    emb, _, _ = brain.embed(one_utterance)
    probs = torch.softmax(brain.modules["emo_classifier"](emb), dim=-1)

    wav_path = test_df.loc[utt_id, "wav"]
    assert torch.allclose(recognizer.encode_batch(read_audio(wav_path)), emb, atol=1e-5)
    log_probs = recognizer.classify_file(wav_path)[0]
    assert torch.allclose(log_probs.exp(), probs, atol=1e-5)


def test_inference_crops_a_long_file_as_the_trained_model(tmp_path_factory, tmp_path):
    """A 20 s file: the run's exported model and its training path (the cached
    SSL features of the recipe's dataset) both see its first max_duration s."""
    brain, folder = ssl_run(tmp_path_factory)
    assert brain.hparams.max_duration == 15.0
    text = (folder / "inference" / "hyperparams.yaml").read_text()
    assert "max_duration: 15.0" in text
    long_file = tmp_path / "long.wav"
    rng = np.random.default_rng(3)
    t = np.arange(20 * 44100) / 44100
    mono = 0.2 * np.sin(2 * np.pi * (120 + 10 * t) * t) + 0.05 * rng.standard_normal(
        t.size
    )
    sf.write(long_file, np.stack([mono, 0.9 * mono], 1).astype("float32"), 44100)
    manifest = tmp_path / "long.csv"
    manifest.write_text(
        "ID,duration,wav,emo,spk_id,lang,corpus,spk_confounded\n"
        f"fix_long,20.000,{long_file},sad,fix_s1,de,emodb,0\n"
    )
    results = json.loads((folder / "results.json").read_text())
    hparams = {
        **vars(brain.hparams),
        "save_folder": str(tmp_path / "save"),
        "output_folder": str(tmp_path / "run"),
    }
    feature_options = {  # not the session's cache
        **hparams["feature_options"],
        "feature_cache_folder": str(tmp_path / "cache"),
    }
    datasets, _ = train.dataio_prep(hparams, {**results["setting"], "test": manifest})
    assert datasets["test"][0]["sig"].shape == (15 * 16000,)
    encoder = build_module(hparams["ssl_encoder"])
    run_features.cache_encoder_features(
        hparams,
        feature_options,
        encoder,
        {"test": datasets["test"]},
        {"noprogressbar": True},
    )
    emb, _, _ = brain.embed(datasets["test"])
    probs = torch.softmax(brain.modules["emo_classifier"](emb), dim=-1)

    recognizer = EmotionRecognizer.from_hparams(source=str(folder / "inference"))
    assert recognizer.max_duration == 15.0
    full = read_audio(long_file)  # uncropped: the recognizer cuts it
    assert full.shape == (20 * 16000,)
    assert torch.allclose(recognizer.encode_batch(full), emb, atol=1e-5)
    assert torch.allclose(
        recognizer.classify_file(long_file)[0].exp(), probs, atol=1e-5
    )


def test_foreign_class_loading(tmp_path_factory, tmp_path, stereo_44k):
    _, folder = ssl_run(tmp_path_factory)
    recognizer = foreign_class(
        source=str(folder / "inference"),
        pymodule_file="custom_interface.py",
        classname="EmotionRecognizer",
        savedir=str(tmp_path),
    )
    check_prediction(recognizer.classify_file(stereo_44k))


def test_classify_batch_with_padding(tmp_path_factory):
    folder = fbank_run(tmp_path_factory)[1]
    recognizer = EmotionRecognizer.from_hparams(source=str(folder / "inference"))
    wavs = torch.randn(3, 8000) * 0.1
    check_prediction(recognizer.classify_batch(wavs, torch.tensor([1.0, 0.8, 0.5])), 3)
    check_prediction(recognizer(wavs[0]), 1)


def test_command_line_writes_a_csv(tmp_path_factory, tmp_path, capsys):
    _, folder = ssl_run(tmp_path_factory)
    audio = tmp_path / "audio"
    write_tone(audio / "a.wav", seconds=0.5, sample_rate=16000)
    write_tone(audio / "sub" / "b.WAV", seconds=0.5, sample_rate=48000, channels=2)
    noise = (np.random.default_rng(0).standard_normal(22050) * 0.1).astype("float32")
    (audio / "sub" / "deeper").mkdir()
    sf.write(audio / "sub" / "deeper" / "c.flac", noise, 22050)
    sf.write(audio / "d.ogg", noise, 22050)
    (audio / "notes.txt").write_text("not audio")
    (audio / "broken.wav").write_bytes(b"not a wav file")

    output = tmp_path / "p.csv"
    assert main([str(folder), str(audio), "--output", str(output)]) == 2
    with open(output, newline="") as stream:
        rows = {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(stream)}
    assert list(next(iter(rows.values()))) == ["path", "emotion", *EMOTIONS, "warning"]
    assert sorted(rows) == ["a.wav", "b.WAV", "broken.wav", "c.flac", "d.ogg"]
    broken = rows.pop("broken.wav")
    assert broken["emotion"] == "" and broken["warning"].startswith("unreadable")
    for row in rows.values():
        assert row["emotion"] in EMOTIONS and row["warning"] == ""
        assert abs(sum(float(row[e]) for e in EMOTIONS) - 1.0) < 1e-4
        assert max(EMOTIONS, key=lambda e: float(row[e])) == row["emotion"]
    captured = capsys.readouterr()
    assert "4 classified" in captured.out and "1 unreadable" in captured.out
    assert "broken.wav" in captured.err


def test_command_line_needs_an_exported_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="No exported model"):
        find_inference_folder(tmp_path)


def test_exported_frozen_encoder_keeps_its_precision(tmp_path_factory):
    """The inference model computes features in the training run's precision."""
    brain, folder = ssl_run(tmp_path_factory)
    exported = (folder / "inference" / "hyperparams.yaml").read_text()
    ssl_block = exported.split("ssl: !new:")[1].split("\n\n")[0]
    assert '    precision: "fp32"' in ssl_block
    recognizer = EmotionRecognizer.from_hparams(source=str(folder / "inference"))
    assert recognizer.mods.ssl.precision == brain.hparams.frozen_encoder_precision
