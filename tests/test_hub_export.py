"""Exported model folders load anywhere SpeechBrain does (hub-portable).

The folder of a trained run holds hyperparams.yaml, custom_interface.py (a
verbatim copy of zsser_modules/custom_interface.py) and the verbatim copies
of the modules it runs (zsser_encoders.py, zsser_speaker_norm.py,
zsser_audio.py), label_encoder.txt and the weights, with no absolute path;
``foreign_class`` loads it in an interpreter where this project cannot be
imported (tests/isolation_utils.py) and predicts exactly what the project's
EmotionRecognizer does. A frozen hub encoder is pinned to the commit it was
loaded at (an offline fake hub cache). The Whisper case is in
tests/test_whisper.py.
"""

import functools
import importlib
from pathlib import Path

import pytest
import torch
from encoder_utils import make_tiny_ssl, write_tone
from isolation_utils import (
    REPO_ROOT,
    assert_same_predictions,
    classify_without_project,
)
from recipe_utils import recipe_args, session_fixture, ssl_run, trained_run
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.lobes.models.VanillaNN import VanillaNN
from speechbrain.nnet.linear import Linear

from zsser_modules import custom_interface
from zsser_modules.adversarial import GradientReversal
from zsser_modules.encoders import FbankStatsEncoder, SSLLayerPooling, WeightedLayerSum
from zsser_modules.inference import EmotionRecognizer, build_module, export_inference
from zsser_modules.labels import EMOTIONS

pytestmark = pytest.mark.slow


def fbank_stats_run(tmp_path_factory):
    """en -> de, baseline2, frozen filterbank statistics, 1 epoch."""
    fixture = session_fixture(tmp_path_factory)
    results = tmp_path_factory.getbasetemp() / "recipe_results"
    args = recipe_args(
        "en_de",
        fixture,
        results,
        "--encoder=fbank_stats",
        "--variant=baseline2",
        "--languages=[en,zh,de]",
        "--number_of_epochs=1",
    )
    brain = trained_run(("fbank_stats", results), args)
    return brain, results / "en_de" / "fbank_stats" / "baseline2" / "1234"


RUNS = {"fbank_stats": fbank_stats_run, "ssl": ssl_run}


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub_audio")
    return [
        write_tone(folder / "mono_16k.wav", seconds=0.6, sample_rate=16000),
        write_tone(
            folder / "stereo_44k.wav", seconds=0.6, sample_rate=44100, channels=2
        ),
    ]


@pytest.mark.parametrize("encoder", sorted(RUNS))
def test_exported_folder_is_self_contained(tmp_path_factory, encoder):
    _, run = RUNS[encoder](tmp_path_factory)
    folder = run / "inference"
    for name in ("hyperparams.yaml", "custom_interface.py", "label_encoder.txt"):
        assert (folder / name).is_file(), name
    assert not (folder / "custom.py").exists()
    interface = Path(custom_interface.__file__).read_bytes()
    assert (folder / "custom_interface.py").read_bytes() == interface
    for module, name in custom_interface.SHIPPED_MODULES.items():  # verbatim
        shipped = importlib.import_module(f"zsser_modules.{module}").__file__
        assert (folder / f"{name}.py").read_bytes() == Path(shipped).read_bytes()
    text = (folder / "hyperparams.yaml").read_text()
    assert "zsser_modules" not in text
    for absolute in (str(tmp_path_factory.getbasetemp()), str(REPO_ROOT), '"/'):
        assert absolute not in text
    labels = CategoricalEncoder()
    labels.load(folder / "label_encoder.txt")
    assert [labels.ind2lab[i] for i in range(len(labels))] == list(EMOTIONS)
    if encoder == "ssl":  # a local encoder folder is copied in
        assert '!apply:custom_interface.model_file ["ssl_model"]' in text
        assert (folder / "ssl_model" / "config.json").is_file()
        assert "save_path" not in text


@pytest.mark.parametrize("encoder", sorted(RUNS))
def test_foreign_class_without_the_project(tmp_path_factory, tmp_path, wavs, encoder):
    _, run = RUNS[encoder](tmp_path_factory)
    isolated = classify_without_project(run / "inference", wavs, tmp_path)
    recognizer = EmotionRecognizer.from_hparams(source=str(run / "inference"))
    assert type(recognizer) is EmotionRecognizer  # the project's own class
    assert_same_predictions(isolated, recognizer, wavs)
    for wav in wavs:  # SpeechBrain's convention: log-probabilities
        out_prob = torch.tensor(isolated["files"][str(wav)]["out_prob"])
        assert (out_prob <= 0).all()
        assert torch.allclose(out_prob.exp().sum(), torch.tensor(1.0), atol=1e-5)


def fake_hub_cache(root: Path) -> tuple[Path, str, str]:
    """A Hugging Face cache with two commits of 'tiny-org/tiny-wavlm'."""
    repo = root / "models--tiny-org--tiny-wavlm"
    old, new = "a" * 40, "b" * 40
    make_tiny_ssl(repo / "snapshots" / old, seed=0)
    make_tiny_ssl(repo / "snapshots" / new, seed=1)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(old)
    return root, old, new


def test_frozen_hub_encoder_is_pinned_to_its_commit(tmp_path, wavs):
    cache, old, new = fake_hub_cache(tmp_path / "hf")
    torch.manual_seed(0)
    ssl = build_module(
        functools.partial(SSLLayerPooling, source="tiny-org/tiny-wavlm"),
        save_path=str(cache),
    )
    assert ssl.revision == old  # main, when it was loaded
    modules = {
        "ssl": ssl,
        "layer_sum": build_module(WeightedLayerSum, num_layers=ssl.num_layers),
        "embedding": build_module(
            VanillaNN, input_shape=[None, ssl.output_size], dnn_neurons=8
        ),
        "emo_classifier": build_module(Linear, input_size=8, n_neurons=4),
    }
    folder = tmp_path / "model"
    export_inference(folder, "ssl", modules, EMOTIONS, weights_from_source=["ssl"])
    text = (folder / "hyperparams.yaml").read_text()
    assert '    source: "tiny-org/tiny-wavlm"' in text
    assert f'    revision: "{old}"' in text
    assert "save_path" not in text and not (folder / "ssl.ckpt").exists()

    (cache / "models--tiny-org--tiny-wavlm" / "refs" / "main").write_text(new)
    isolated = classify_without_project(
        folder, wavs, tmp_path / "run", env={"HF_HUB_CACHE": str(cache)}
    )
    newer = SSLLayerPooling("tiny-org/tiny-wavlm", save_path=str(cache))
    assert newer.revision == new
    for wav in wavs:
        signal = custom_interface.load_audio(wav)[None]
        with torch.no_grad():
            emb = modules["embedding"](modules["layer_sum"](ssl(signal)))
            expected = torch.log_softmax(modules["emo_classifier"](emb), -1)[0]
            emb_new = modules["embedding"](modules["layer_sum"](newer(signal)))
            moved = torch.log_softmax(modules["emo_classifier"](emb_new), -1)[0]
        got = torch.tensor(isolated["files"][str(wav)]["out_prob"])
        assert torch.allclose(got, expected, atol=1e-5)
        assert not torch.allclose(got, moved, atol=1e-5)


def test_export_refuses_a_project_class_outside_the_interface(tmp_path):
    modules = {
        "fbank_stats": build_module(FbankStatsEncoder, n_mels=20),
        "feature_norm": build_module(GradientReversal),
        "embedding": build_module(VanillaNN, input_shape=[None, 120], dnn_neurons=8),
        "emo_classifier": build_module(Linear, input_size=8, n_neurons=4),
    }
    with pytest.raises(ValueError, match="zsser_modules/custom_interface.py"):
        export_inference(
            tmp_path, "fbank_stats", modules, EMOTIONS, features=["feature_norm"]
        )


def test_a_missing_model_file_is_named(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="'no_such_file.txt' of the exported"):
        custom_interface.model_file("no_such_file.txt")


def test_an_older_export_naming_classes_custom_interface_still_loads(tmp_path, wavs):
    """Exports made when the encoders lived in custom_interface.py still load."""
    torch.manual_seed(0)
    modules = {
        "fbank_stats": build_module(FbankStatsEncoder, n_mels=20),
        "embedding": build_module(VanillaNN, input_shape=[None, 120], dnn_neurons=8),
        "emo_classifier": build_module(Linear, input_size=8, n_neurons=4),
    }
    folder = tmp_path / "model"
    export_inference(
        folder, "fbank_stats", modules, EMOTIONS, weights_from_source=["fbank_stats"]
    )
    current = EmotionRecognizer.from_hparams(source=str(folder))
    hparams = folder / "hyperparams.yaml"
    text = hparams.read_text().replace("zsser_encoders.", "custom_interface.")
    hparams.write_text(text)
    older = EmotionRecognizer.from_hparams(source=str(folder))
    assert "custom_interface.FbankStatsEncoder" in text
    for wav in wavs:
        assert torch.equal(older.classify_file(wav)[0], current.classify_file(wav)[0])
