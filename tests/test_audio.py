"""Tests of zsser_modules.audio.read_audio (the one audio loader)."""

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from encoder_utils import write_tone

from zsser_modules.audio import audio_pipeline, get_resampler, read_audio


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


def test_resampler_is_cached_per_rate_pair():
    assert get_resampler(44100, 16000) is get_resampler(44100, 16000)
    assert get_resampler(44100, 16000) is not get_resampler(48000, 16000)


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
