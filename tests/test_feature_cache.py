"""Tests of zsser_modules.feature_cache (exactness, reuse, invalidation, crashes)."""

import logging
import os
import shutil

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

    def half_write(handle, data):
        handle.write(data[: len(data) // 2])  # half-written ...
        raise KeyboardInterrupt  # ... and the run is interrupted

    monkeypatch.setattr(fc, "_write_bytes", half_write)
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
    stray.write_bytes(b"ZSFEAT02 partial")
    assert cache.get(utt_id, wav) is None
    cache.fill(encoder, items, progressbar=False)
    assert stray.exists()
    assert cache.prune(items) == 0  # young: another process may be writing it
    os.utime(stray, (1, 1))
    assert cache.prune(items) == 1 and not stray.exists()
    assert cache.prune(items[1:]) == 1 and cache.get(utt_id, wav) is None


def test_corrupt_entry_is_recomputed_with_counted_warning(
    tmp_path, encoder, items, caplog
):
    cache = make_cache(tmp_path, encoder)
    cache.fill(encoder, items, progressbar=False)
    good = cache.get(*items[0])
    cache.path_for(*items[0]).write_bytes(b"garbage")  # unreadable
    wrong = fc._entry_bytes(np.zeros((2, 64), dtype="float32"))
    cache.path_for(*items[1]).write_bytes(wrong)  # bad shape
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


def flip_one_byte(path):
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x10  # inside the data: same size, different value
    path.write_bytes(bytes(raw))


def test_checking_entries_reads_none_of_them(tmp_path, encoder, items, monkeypatch):
    cache = make_cache(tmp_path, encoder)
    cache.fill(encoder, items, progressbar=False)
    reads = []
    monkeypatch.setattr(fc, "_parse_entry", lambda *a: reads.append(a))
    assert cache.missing(items) == []
    assert cache.fill(encoder, items, progressbar=False)["computed"] == 0
    assert reads == []


def test_truncated_entry_is_found_by_its_size(tmp_path, encoder, items):
    cache = make_cache(tmp_path, encoder)
    cache.fill(encoder, items, progressbar=False)
    path = cache.path_for(*items[2])
    assert path.stat().st_size == cache.entry_size == 8 + 16 + 4 * 3 + 3 * 64 * 4
    path.write_bytes(path.read_bytes()[:-7])
    assert cache.missing(items) == [items[2]] and not path.exists()
    assert cache.n_corrupt == 1
    stats = cache.fill(encoder, items, progressbar=False)
    assert stats == {"computed": 1, "reused": 4, "corrupt": 0}


def test_corrupt_data_is_never_used(tmp_path, encoder, items, caplog):
    cache = make_cache(tmp_path, encoder)
    cache.fill(encoder, items, progressbar=False)
    good = cache.get(*items[3])
    flip_one_byte(cache.path_for(*items[3]))
    # same size: the existence check trusts it until it is read ...
    assert cache.missing(items) == []
    with caplog.at_level(logging.WARNING, logger="zsser_modules.feature_cache"):
        assert cache.get(*items[3]) is None  # ... where the checksum fails
    assert "checksum mismatch" in caplog.text and cache.n_corrupt == 1
    assert not cache.path_for(*items[3]).exists()
    assert cache.fill(encoder, items, progressbar=False)["computed"] == 1
    assert torch.allclose(cache.get(*items[3]), good, atol=1e-5, rtol=0)


def test_pipeline_recomputes_a_corrupt_entry_with_the_factory(
    tmp_path, model_dir, encoder, items
):
    from speechbrain.dataio.dataset import DynamicItemDataset

    cache = make_cache(tmp_path, encoder)
    cache.fill(encoder, items, progressbar=False)
    good = cache.get(*items[0])
    flip_one_byte(cache.path_for(*items[0]))
    built = []

    def factory():
        built.append(1)
        return SSLLayerPooling(str(model_dir), str(model_dir.parent / "hf"))

    data = DynamicItemDataset({u: {"wav": w} for u, w in items})
    data.add_dynamic_item(cache.pipeline(encoder_factory=factory))
    data.set_output_keys(["id", "feats"])
    assert torch.allclose(data[0]["feats"], good, atol=1e-5, rtol=0)
    assert built == [1] and cache.n_corrupt == 1
    assert torch.equal(cache.get(*items[0]), data[0]["feats"])  # stored again
    flip_one_byte(cache.path_for(*items[1]))
    data[1]
    assert built == [1]  # built once


def test_full_disk_gives_a_clear_error_and_leaves_nothing_corrupt(
    tmp_path, encoder, items, monkeypatch
):
    import errno

    cache = make_cache(tmp_path, encoder)
    written = []

    def write_until_full(handle, data):
        if len(written) == 2:
            handle.write(data[:100])  # the disk fills up in the middle
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(1)
        handle.write(data)

    monkeypatch.setattr(fc, "_write_bytes", write_until_full)
    with pytest.raises(fc.FeatureCacheFullError) as info:
        cache.fill(encoder, items, batch_size=2, progressbar=False)
    message = str(info.value)
    assert "is full" in message and "2 entries were written" in message
    assert "feature_cache_folder" in message and "\n" not in message
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    files = sorted(cache.root.glob("??/*"))
    assert len(files) == 2 and all(f.suffix == ".feat" for f in files)  # no tmp
    assert sum(cache.get(u, w) is not None for u, w in items) == 2
    assert cache.n_corrupt == 0
    assert cache.fill(encoder, items, progressbar=False)["computed"] == 3


def test_fill_refuses_to_start_without_room(tmp_path, encoder, items, monkeypatch):
    cache = make_cache(tmp_path, encoder)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(
        fc.shutil, "disk_usage", lambda path: usage._replace(free=10_000)
    )
    with pytest.raises(fc.FeatureCacheFullError, match="need about .* GB free"):
        cache.fill(encoder, items, progressbar=False)
    assert not any(cache.root.glob("??/*"))


FILL_SCRIPT = """
import json, sys, time
import torch
from zsser_modules.encoders import FbankStatsEncoder
from zsser_modules.feature_cache import FeatureCache, encoder_cache_key
torch.set_num_threads(1)
items = json.loads(sys.argv[2])
encoder = FbankStatsEncoder(n_mels=20)
cache = FeatureCache(sys.argv[1], encoder_cache_key(encoder))
while time.time() < float(sys.argv[3]):  # start together
    time.sleep(0.005)
print(json.dumps(cache.fill(encoder, items, batch_size=4, progressbar=False)))
"""


def test_two_processes_filling_one_cache_stay_consistent(tmp_path):
    import json
    import subprocess
    import sys
    import time

    from zsser_modules.encoders import FbankStatsEncoder

    items = [
        (f"u{i}", str(write_tone(tmp_path / "wav" / f"{i}.wav", 0.3 + 0.05 * i)))
        for i in range(24)
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = str(time.time() + 8.0)  # after both have imported torch
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                FILL_SCRIPT,
                str(tmp_path / "cache"),
                json.dumps(items),
                start,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    stats = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    # one process computed everything, the other waited and reused it all
    assert sorted(s["computed"] for s in stats) == [0, 24]
    assert sorted(s["reused"] for s in stats) == [0, 24]
    encoder = FbankStatsEncoder(n_mels=20)
    cache = FeatureCache(tmp_path / "cache", encoder_cache_key(encoder))
    assert [f.suffix for f in cache.root.glob("??/*")] == [".feat"] * 24
    for utt_id, wav in items:
        assert torch.equal(cache.get(utt_id, wav), encoder(read_audio(wav)[None])[0])
    assert cache.n_corrupt == 0


def test_fbank_stats_settings_are_in_the_key(tmp_path):
    from zsser_modules.encoders import FbankStatsEncoder

    def root(**kwargs):
        return make_cache(tmp_path, FbankStatsEncoder(**kwargs)).root

    base = root(n_mels=20)
    assert root(n_mels=20) == base
    for change in (
        {"n_mels": 24},
        {"deltas": False},
        {"f_max": 4000.0},
        {"f_min": 50.0},
        {"sample_rate": 8000},
        {"hop_length": 20},
        {"win_length": 30},
        {"n_fft": 512},
        {"precision": "bf16"},
    ):
        assert root(**{"n_mels": 20, **change}) != base, change
    key = encoder_cache_key(FbankStatsEncoder(n_mels=20, deltas=False))
    assert key["shape"] == [40] and key["settings"]["deltas"] is False


def test_encoder_without_settings_is_keyed_by_its_constructor():
    from zsser_modules.inference import build_module

    a = build_module(torch.nn.Identity)
    b = build_module(torch.nn.Flatten, start_dim=1)
    assert encoder_cache_key(a)["settings"]["constructor"][0].endswith("Identity")
    assert encoder_cache_key(a) != encoder_cache_key(b)


def test_complete_cache_without_a_writable_lock_is_read(
    tmp_path, encoder, items, monkeypatch
):
    from filelock import FileLock

    cache = make_cache(tmp_path, encoder)
    cache.fill(encoder, items[:3], progressbar=False)

    def read_only(self, *args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(FileLock, "acquire", read_only)
    stats = cache.fill(encoder, items[:3], progressbar=False)
    assert stats == {"computed": 0, "reused": 3, "corrupt": 0}
    with pytest.raises(OSError, match="2 entries are missing"):
        cache.fill(encoder, items, progressbar=False)
