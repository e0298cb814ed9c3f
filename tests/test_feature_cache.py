"""Tests of zsser_modules.feature_cache (exactness, reuse, invalidation, crashes)."""

import logging
import os

import numpy as np
import pytest
import torch
from encoder_utils import make_tiny_ssl, write_tone

import zsser_modules.feature_cache as fc
from zsser_modules.audio import read_audio
from zsser_modules.encoders import SSLLayerPooling
from zsser_modules.feature_cache import (
    FeatureCache,
    encoder_cache_key,
    encoder_fingerprint,
)


class Counting(torch.nn.Module):
    """Wraps an encoder and counts the utterances it encodes."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.num_layers, self.output_size = encoder.num_layers, encoder.output_size
        self.calls = 0

    def feature_settings(self):
        return self.encoder.feature_settings()

    def forward(self, wavs, wav_lens):
        self.calls += wavs.shape[0]
        return self.encoder(wavs, wav_lens)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_ssl(tmp_path_factory.mktemp("ssl") / "wavlm")


@pytest.fixture(scope="module")
def encoder(model_dir):
    return SSLLayerPooling(str(model_dir), str(model_dir.parent / "hf"))


@pytest.fixture
def items(tmp_path):
    durations = [0.6, 1.0, 0.4, 0.8, 0.5]
    return [
        (
            f"utt{i}",
            str(
                write_tone(tmp_path / "wav" / f"u{i}.wav", d, freq=150 + 40 * i, seed=i)
            ),
        )
        for i, d in enumerate(durations)
    ]


def make_cache(tmp_path, encoder, **kwargs):
    return FeatureCache(tmp_path / "cache", encoder_cache_key(encoder, **kwargs))


def test_cached_features_equal_live_computation(tmp_path, encoder, items):
    cache = make_cache(tmp_path, encoder)
    stats = cache.fill(encoder, items, batch_size=1, progressbar=False)
    assert stats == {"computed": 5, "reused": 0, "corrupt": 0}
    with torch.no_grad():
        for utt_id, wav in items:
            live = encoder(read_audio(wav)[None])[0]
            cached = cache.get(utt_id, wav)
            assert cached.dtype == torch.float32 and cached.shape == (3, 64)
            assert torch.equal(cached, live)  # bit-exact


def test_batched_fill_matches_live_within_padding_tolerance(tmp_path, encoder, items):
    cache = make_cache(tmp_path, encoder)
    cache.fill(encoder, items, batch_size=3, progressbar=False)
    with torch.no_grad():
        for utt_id, wav in items:
            live = encoder(read_audio(wav)[None])[0]
            assert torch.allclose(cache.get(utt_id, wav), live, atol=1e-5, rtol=0)


def test_second_fill_computes_nothing(tmp_path, encoder, items):
    counting = Counting(encoder)
    cache = make_cache(tmp_path, counting)
    assert cache.fill(counting, items, batch_size=2, progressbar=False)["computed"] == 5
    assert counting.calls == 5
    # a new cache object on the same folder (next epoch, variant or seed)
    again = make_cache(tmp_path, counting)
    stats = again.fill(counting, items + items[:2], batch_size=2, progressbar=False)
    assert stats == {"computed": 0, "reused": 5, "corrupt": 0}
    assert counting.calls == 5
    assert again.root == cache.root


def test_key_change_invalidates(tmp_path, model_dir, encoder, items):
    cache = make_cache(tmp_path, encoder)
    cache.fill(encoder, items, progressbar=False)
    fewer_layers = SSLLayerPooling(
        str(model_dir), str(model_dir.parent / "hf"), layers=[2]
    )
    other = make_cache(tmp_path, fewer_layers)
    assert other.root != cache.root
    assert all(other.get(u, w) is None for u, w in items)
    assert make_cache(tmp_path, encoder, sample_rate=8000).root != cache.root
    assert make_cache(tmp_path, encoder, dtype="float16").root != cache.root
    counting = Counting(fewer_layers)
    assert other.fill(counting, items, progressbar=False)["computed"] == 5
    assert other.get(*items[0]).shape == (1, 64)


def test_fingerprint_tracks_weights(model_dir, encoder):
    same = SSLLayerPooling(str(model_dir), str(model_dir.parent / "hf"))
    assert encoder_fingerprint(same) == encoder_fingerprint(encoder)
    with torch.no_grad():
        next(same.parameters()).add_(1e-3)
    assert encoder_fingerprint(same) != encoder_fingerprint(encoder)
    # folder fingerprint: config + weights + preprocessor files
    assert encoder_fingerprint(model_dir) == encoder_fingerprint(str(model_dir))
    with pytest.raises(ValueError, match="hub id"):
        encoder_fingerprint("microsoft/wavlm-large")


def test_changed_audio_file_is_recomputed(tmp_path, encoder, items):
    cache = make_cache(tmp_path, encoder)
    cache.fill(encoder, items, progressbar=False)
    utt_id, wav = items[1]
    old = cache.get(utt_id, wav)
    write_tone(wav, seconds=1.0, freq=700.0, seed=9)  # same size, new content
    os.utime(wav, ns=(1, 1))  # make sure the modification time differs
    assert cache.get(utt_id, wav) is None
    counting = Counting(encoder)
    assert cache.fill(counting, items, progressbar=False)["computed"] == 1
    assert not torch.allclose(cache.get(utt_id, wav), old)


def test_crash_during_write_leaves_no_entry(tmp_path, encoder, items, monkeypatch):
    cache = make_cache(tmp_path, encoder)
    real_save = np.save

    def half_save(handle, array, allow_pickle=False):
        real_save(handle, array, allow_pickle=allow_pickle)
        handle.truncate(100)  # half-written ...
        raise KeyboardInterrupt  # ... and the run is interrupted

    monkeypatch.setattr(fc.np, "save", half_save)
    with pytest.raises(KeyboardInterrupt):
        cache.fill(encoder, items, batch_size=2, progressbar=False)
    monkeypatch.undo()
    assert not any(cache.root.glob("??/*"))  # neither an entry nor a temp file
    assert all(cache.get(u, w) is None for u, w in items)
    assert cache.n_corrupt == 0
    assert cache.fill(encoder, items, progressbar=False)["computed"] == 5


def test_killed_process_temp_file_is_ignored_and_pruned(tmp_path, encoder, items):
    cache = make_cache(tmp_path, encoder)
    utt_id, wav = items[0]
    entry = cache.path_for(utt_id, wav)
    entry.parent.mkdir(parents=True)
    stray = entry.parent / (entry.name + ".abc123.tmp")  # what kill -9 leaves
    stray.write_bytes(b"\x93NUMPY partial")
    assert cache.get(utt_id, wav) is None
    cache.fill(encoder, items, progressbar=False)
    assert stray.exists()
    assert cache.prune(items) == 1 and not stray.exists()
    assert cache.prune(items[1:]) == 1 and cache.get(utt_id, wav) is None


def test_corrupt_entry_is_recomputed_with_counted_warning(
    tmp_path, encoder, items, caplog
):
    cache = make_cache(tmp_path, encoder)
    cache.fill(encoder, items, progressbar=False)
    good = cache.get(*items[0])
    cache.path_for(*items[0]).write_bytes(b"garbage")  # unreadable
    np.save(cache.path_for(*items[1]), np.zeros((2, 64), dtype="float32"))  # bad shape
    with caplog.at_level(logging.WARNING, logger="zsser_modules.feature_cache"):
        stats = cache.fill(encoder, items, progressbar=False)
    assert stats == {"computed": 2, "reused": 3, "corrupt": 2}
    assert cache.n_corrupt == 2
    assert sum("invalid entry" in r.message for r in caplog.records) == 2
    # recomputed in another batch composition: equal up to float rounding
    assert torch.allclose(cache.get(*items[0]), good, atol=1e-5, rtol=0)


def test_put_checks_shape_and_finiteness(tmp_path, encoder, items):
    cache = make_cache(tmp_path, encoder)
    with pytest.raises(ValueError, match="shape"):
        cache.put(*items[0], torch.zeros(2, 64))
    with pytest.raises(ValueError, match="not finite"):
        cache.put(*items[0], torch.full((3, 64), float("nan")))


def test_user_errors(tmp_path, encoder, items):
    cache = make_cache(tmp_path, encoder)
    with pytest.raises(ValueError, match="two audio files"):
        cache.fill(encoder, [items[0], (items[0][0], items[1][1])], progressbar=False)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        cache.get("x", tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="dtype"):
        FeatureCache(tmp_path / "cache", {"dtype": "int8"})
    with pytest.raises(ValueError, match="trainable parameters"):
        cache.fill(torch.nn.Linear(2, 2), items, progressbar=False)


def test_float16_storage_is_close(tmp_path, encoder, items):
    exact = make_cache(tmp_path, encoder)
    half = make_cache(tmp_path, encoder, dtype="float16")
    exact.fill(encoder, items, progressbar=False)
    half.fill(encoder, items, progressbar=False)
    for utt_id, wav in items:
        a, b = exact.get(utt_id, wav), half.get(utt_id, wav)
        assert b.dtype == torch.float32
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4)
    size = exact.path_for(*items[0]).stat().st_size
    assert half.path_for(*items[0]).stat().st_size < 0.6 * size


def test_pipeline_serves_cached_features(tmp_path, encoder, items):
    from speechbrain.dataio.dataset import DynamicItemDataset

    cache = make_cache(tmp_path, encoder)
    cache.fill(encoder, items[:2], progressbar=False)
    data = DynamicItemDataset({u: {"wav": w} for u, w in items})
    data.add_dynamic_item(cache.pipeline())
    data.set_output_keys(["id", "feats"])
    assert torch.equal(data[0]["feats"], cache.get(*items[0]))
    with pytest.raises(KeyError, match="Run FeatureCache.fill"):
        data[3]
