"""Tests of zsser_modules.audio.read_audio (the one audio loader).

It is SpeechBrain's loading and ``AudioNormalizer``
(``zsser_modules.audio.load_audio``), the path of the exported
``EmotionRecognizer`` too. ``legacy_read_audio`` is the project's former
loader (soundfile, mean of the channels, then torchaudio resampling): the
tests bound the difference.
"""

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from encoder_utils import write_tone

from zsser_modules.audio import audio_normalizer, audio_pipeline, read_audio


def legacy_read_audio(path, target_sr=16000):
    """The project's loader before SpeechBrain's AudioNormalizer (reference)."""
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype="float32")
    wav = torch.from_numpy(np.ascontiguousarray(mono))
    if sr != target_sr:
        wav = torchaudio.transforms.Resample(sr, target_sr)(wav)
    return wav


def test_mono_16k_is_returned_unchanged(tmp_path):
    path = write_tone(tmp_path / "a.wav", seconds=0.5, sample_rate=16000)
    expected, sr = sf.read(str(path), dtype="float32")
    wav = read_audio(path)
    assert sr == 16000
    assert wav.dtype == torch.float32 and wav.dim() == 1
    assert torch.equal(wav, torch.from_numpy(expected))


def test_stereo_48k_is_averaged_then_resampled(tmp_path):
    path = write_tone(tmp_path / "b.wav", seconds=3.0, sample_rate=48000, channels=2)
    data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    mono = torch.from_numpy(data.mean(axis=1))
    expected = torchaudio.functional.resample(mono, 48000, 16000)
    wav = read_audio(path)
    assert wav.shape == (48000,)  # 3 s at 16 kHz
    assert torch.allclose(wav, expected, atol=1e-6)
    # the two channels differ (phase), so the mean is not one of them
    assert not torch.allclose(wav, read_audio_channel(path, 0), atol=1e-3)


def read_audio_channel(path, channel):
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return torchaudio.functional.resample(
        torch.from_numpy(data[:, channel].copy()), sr, 16000
    )


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_other_rates_and_targets(tmp_path, rate):
    path = write_tone(tmp_path / "c.wav", seconds=1.0, sample_rate=rate)
    assert read_audio(path).shape == (16000,)
    assert read_audio(path, target_sr=8000).shape == (8000,)


def test_normalizer_is_speechbrains_and_cached_per_rate():
    from speechbrain.dataio.preprocess import AudioNormalizer

    assert isinstance(audio_normalizer(16000), AudioNormalizer)
    assert audio_normalizer(16000) is audio_normalizer(16000)
    assert audio_normalizer(16000) is not audio_normalizer(8000)


@pytest.mark.parametrize(
    "rate, channels", [(16000, 1), (16000, 2), (8000, 1), (22050, 1), (44100, 2)]
)
def test_same_samples_as_the_former_loader(tmp_path, rate, channels):
    """16 kHz mono: bit-identical; resampled or stereo: float rounding only."""
    path = write_tone(
        tmp_path / "e.wav", seconds=1.0, sample_rate=rate, channels=channels
    )
    new, old = read_audio(path), legacy_read_audio(path)
    assert new.shape == old.shape and new.dtype == old.dtype
    if rate == 16000 and channels == 1:
        assert torch.equal(new, old)
    else:
        assert (new - old).abs().max() < 1e-6


def test_training_pipeline_and_exported_model_read_the_same_tensor(tmp_path):
    """The recipe's dynamic item and EmotionRecognizer give identical samples."""
    import functools

    from speechbrain.dataio.dataset import DynamicItemDataset
    from speechbrain.lobes.models.VanillaNN import VanillaNN
    from speechbrain.nnet.linear import Linear

    from zsser_modules.encoders import FbankStatsEncoder
    from zsser_modules.inference import (
        EmotionRecognizer,
        build_module,
        export_inference,
    )

    encoder = build_module(functools.partial(FbankStatsEncoder, n_mels=20))
    modules = {
        "fbank_stats": encoder,
        "embedding": build_module(VanillaNN, input_shape=[None, 120], dnn_neurons=8),
        "emo_classifier": build_module(Linear, input_size=8, n_neurons=4),
    }
    export_inference(
        tmp_path / "model",
        "fbank_stats",
        modules,
        ["a", "b", "c", "d"],
        weights_from_source=["fbank_stats"],
    )
    recognizer = EmotionRecognizer.from_hparams(source=str(tmp_path / "model"))
    for rate, channels in [(16000, 1), (44100, 2), (48000, 1), (8000, 2)]:
        path = write_tone(
            tmp_path / f"{rate}_{channels}.wav",
            seconds=0.7,
            sample_rate=rate,
            channels=channels,
        )
        data = DynamicItemDataset({"u": {"wav": str(path)}})
        data.add_dynamic_item(audio_pipeline())
        data.set_output_keys(["sig"])
        assert torch.equal(data[0]["sig"], recognizer.load_audio(path))


def test_missing_file_error_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        read_audio(tmp_path / "nope.wav")


def test_unreadable_file_error(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio")
    with pytest.raises(ValueError, match="Could not decode audio file .*bad.wav"):
        read_audio(bad)


def test_empty_file_error(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, dtype="float32"), 16000)
    with pytest.raises(ValueError, match="holds no samples"):
        read_audio(empty)


def test_audio_pipeline_in_dynamic_item_dataset(tmp_path):
    from speechbrain.dataio.dataset import DynamicItemDataset

    path = write_tone(tmp_path / "d.wav", seconds=0.25, sample_rate=48000, channels=2)
    data = DynamicItemDataset({"u1": {"wav": str(path)}})
    data.add_dynamic_item(audio_pipeline(provides="signal"))
    data.set_output_keys(["id", "signal"])
    item = data[0]
    assert item["id"] == "u1"
    assert torch.equal(item["signal"], read_audio(path))
