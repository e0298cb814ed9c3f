"""Tests of the label vocabularies (zsser_modules/labels.py) and the package API."""

import os
import subprocess
import sys

import pytest

from zsser_modules.labels import (
    ALL_EMOTIONS,
    EMOTIONS,
    EXTRA_EMOTIONS,
    LANGUAGES,
    build_label_encoder,
    emotion_classes,
)


def test_vocabularies_match_the_contract():
    assert EMOTIONS == ("neutral", "happy", "angry", "sad")
    assert EXTRA_EMOTIONS == ("surprise", "fear", "disgust", "boredom")
    assert ALL_EMOTIONS == EMOTIONS + EXTRA_EMOTIONS
    assert LANGUAGES == ("en", "zh", "de", "fr", "ur")
    assert len(set(ALL_EMOTIONS)) == len(ALL_EMOTIONS)


def test_emotion_classes_keeps_the_four_first():
    assert emotion_classes() == EMOTIONS
    assert emotion_classes(keep_all=False) == EMOTIONS
    assert emotion_classes(keep_all=True) == ALL_EMOTIONS


@pytest.mark.parametrize("classes", [EMOTIONS, ALL_EMOTIONS, LANGUAGES])
def test_encoder_indices_follow_list_order(classes):
    encoder = build_label_encoder(classes)
    assert len(encoder) == len(classes)
    for index, name in enumerate(classes):
        assert encoder.encode_label(name) == index
        assert encoder.decode_ndim(index) == name


def test_encoder_ignores_first_seen_order():
    # Whatever order a manifest lists the labels in, the indices are fixed.
    seen_first = ["sad", "angry", "sad", "neutral", "happy"]
    encoder = build_label_encoder(EMOTIONS)
    assert encoder.encode_sequence(seen_first) == [3, 2, 3, 0, 1]


def test_encoder_rejects_unknown_labels():
    encoder = build_label_encoder(EMOTIONS)
    with pytest.raises(KeyError):
        encoder.encode_label("surprise")


def test_encoder_expects_its_length():
    encoder = build_label_encoder(EMOTIONS)
    encoder.add_label("surprise")  # a later, accidental growth fails loudly
    with pytest.raises(RuntimeError, match="expect_len"):
        encoder.encode_label("happy")


@pytest.mark.parametrize(
    "classes, error, match",
    [
        ([], ValueError, "empty"),
        ("neutral", ValueError, "single string"),
        (["happy", "sad", "happy"], ValueError, "Duplicate"),
        (["happy", 3], TypeError, "strings"),
    ],
)
def test_encoder_rejects_bad_class_lists(classes, error, match):
    with pytest.raises(error, match=match):
        build_label_encoder(classes)


# -- package-level API (zsser_modules/__init__.py) ------------------------------


def test_package_exports_every_public_name():
    import zsser_modules

    expected = {
        "SupConLoss",
        "GradientReversal",
        "grad_reverse",
        "AdversarialClassifier",
        "dann_lambda",
        "EmotionMetricStats",
        "uar",
        "macro_f1",
        "plot_tsne",
        "EMOTIONS",
        "LANGUAGES",
        "emotion_classes",
        "build_label_encoder",
    }
    assert expected <= set(zsser_modules.__all__)
    assert set(zsser_modules.__all__) == set(zsser_modules._EXPORTS)
    for name in zsser_modules.__all__:
        assert getattr(zsser_modules, name) is not None
    assert expected <= set(dir(zsser_modules))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        zsser_modules.Nope  # noqa: B018


def test_installed_package_imports_from_outside_the_repository(tmp_path):
    # Run from an unrelated folder: only the installed package can be found.
    code = (
        "import sys\n"
        "import zsser_modules.labels\n"
        "assert 'torch' not in sys.modules, 'labels must stay lightweight'\n"
        "from zsser_modules import SupConLoss, GradientReversal, "
        "AdversarialClassifier, dann_lambda\n"
        "print(zsser_modules.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("__init__.py")
