"""Speed and size figures for audio loading, encoders and the feature cache.

Not a test (no timing asserts anywhere): run by hand from the repository root::

    .venv/bin/python tests/benchmarks/bench_encoders.py audio
    .venv/bin/python tests/benchmarks/bench_encoders.py cache
    .venv/bin/python tests/benchmarks/bench_encoders.py fbank [--threads 1]

Numbers depend on the machine and its load; docs/encoders.md quotes
one run on a shared 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ESD_UTTERANCES = 28_000
FRAMES_PER_3S = 150  # 20 ms frames of a 16 kHz SSL encoder


def _write(path: Path, sample_rate: int, channels: int, seconds: float = 3.0) -> None:
    rng = np.random.default_rng(0)
    data = 0.1 * rng.standard_normal((int(seconds * sample_rate), channels))
    sf.write(str(path), data.astype(np.float32), sample_rate, subtype="PCM_16")


def bench_audio(num_files: int = 40, repeats: int = 5) -> None:
    """Per-file time of read_audio on 3 s files at 16 / 44.1 / 48 kHz."""
    import torchaudio

    from zsser_modules.audio import read_audio

    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        formats = [
            ("16k_mono", 16000, 1),
            ("44k1_mono", 44100, 1),
            ("48k_stereo", 48000, 2),
        ]
        for threads, (name, sr, ch) in [
            (t, f) for t in sorted({1, default_threads}) for f in formats
        ]:
            # DataLoader workers run torch with 1 thread; the main process
            # (num_workers=0) with all cores
            torch.set_num_threads(threads)
            files = [Path(tmp) / f"{name}_{i}.wav" for i in range(num_files)]
            for file in files:
                if not file.exists():
                    _write(file, sr, ch)
            read_audio(files[0])  # warm-up (builds the cached resampler)

            def per_file_ms(fn, files=files):
                runs = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    for file in files:
                        fn(file)
                    runs.append((time.perf_counter() - start) * 1000 / num_files)
                return statistics.median(runs)

            def uncached(file):
                data, rate = sf.read(str(file), dtype="float32", always_2d=True)
                wav = torch.from_numpy(data.mean(axis=1))
                return torchaudio.functional.resample(wav, rate, 16000)

            soundfile_only = per_file_ms(lambda f: sf.read(str(f), dtype="float32"))
            ours = per_file_ms(read_audio)
            print(
                f"{threads} thread(s) {name:>10}: read_audio {ours:6.2f} ms/file | "
                f"soundfile read alone {soundfile_only:6.2f} ms | "
                f"read + uncached functional.resample {per_file_ms(uncached):6.2f} ms"
            )


def bench_cache(num_entries: int = 300) -> None:
    """Bytes per entry on disk, put/get time, and 28k-utterance totals."""
    from zsser_modules.feature_cache import FeatureCache

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "a.wav"
        _write(wav, 16000, 1, 0.1)
        print(
            f"{'shape':>11} {'dtype':>7} {'file B':>8} {'disk B':>8} "
            f"{'put ms':>7} {'get ms':>7} {'28k disk':>9} {'28k RAM':>8} "
            f"{'frame-level 28k':>16}"
        )
        for shape in [(13, 768), (25, 1024)]:
            for dtype in ["float32", "float16"]:
                cache = FeatureCache(Path(tmp) / "c", {"shape": shape, "dtype": dtype})
                feats = torch.randn(shape)
                start = time.perf_counter()
                paths = [cache.put(f"u{i}", wav, feats) for i in range(num_entries)]
                put_ms = (time.perf_counter() - start) * 1000 / num_entries
                start = time.perf_counter()
                for i in range(num_entries):
                    cache.get(f"u{i}", wav)
                get_ms = (time.perf_counter() - start) * 1000 / num_entries
                size = paths[0].stat().st_size
                blocks = statistics.median(p.stat().st_blocks * 512 for p in paths)
                itemsize = np.dtype(dtype).itemsize
                ram = shape[0] * shape[1] * 4  # loaded back as float32
                frame_level = FRAMES_PER_3S * shape[0] * shape[1] * itemsize
                print(
                    f"{str(shape):>11} {dtype:>7} {size:>8} {int(blocks):>8} "
                    f"{put_ms:>7.2f} {get_ms:>7.2f} "
                    f"{ESD_UTTERANCES * blocks / 1e9:>7.2f}GB "
                    f"{ESD_UTTERANCES * ram / 1e9:>6.2f}GB "
                    f"{ESD_UTTERANCES * frame_level / 1e9:>14.0f}GB"
                )
    from zsser_modules.feature_cache import encoder_fingerprint

    layer = torch.nn.Linear(5000, 5000)  # 25 M parameters, 100 MB
    start = time.perf_counter()
    encoder_fingerprint(layer)
    seconds = time.perf_counter() - start
    print(
        f"fingerprint: {100 / seconds:.0f} MB/s -> about "
        f"{1270 / (100 / seconds):.1f} s for a 317 M parameter (large) model"
    )


def bench_fbank(batch: int = 16, seconds: float = 3.0, repeats: int = 3) -> None:
    """Parameters and CPU time of FbankEncoder for a 16 x 3 s batch."""
    from zsser_modules.encoders import FbankEncoder

    torch.manual_seed(0)
    wavs = torch.randn(batch, int(seconds * 16000))
    configs = [
        ("default", {}),
        ("256x4+768", {"channels": (256, 256, 256, 256, 768)}),
        (
            "SB speaker-id",
            {
                "channels": (512, 512, 512, 512, 1536),
                "attention_channels": 128,
                "se_channels": 128,
            },
        ),
    ]
    print(f"torch threads: {torch.get_num_threads()}")
    for name, kwargs in configs:
        enc = FbankEncoder(**kwargs)
        params = sum(p.numel() for p in enc.parameters())
        enc.eval()
        with torch.no_grad():
            enc(wavs)
            start = time.perf_counter()
            for _ in range(repeats):
                enc(wavs)
        eval_ms = (time.perf_counter() - start) * 1000 / repeats
        enc.train()
        start = time.perf_counter()
        for _ in range(repeats):
            enc(wavs).sum().backward()
        train_ms = (time.perf_counter() - start) * 1000 / repeats
        print(
            f"{name:>14}: {params / 1e6:5.2f} M params | "
            f"eval forward {eval_ms:6.0f} ms | "
            f"train forward+backward {train_ms:6.0f} ms per {batch} x {seconds:g} s"
        )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["audio", "cache", "fbank"])
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    {"audio": bench_audio, "cache": bench_cache, "fbank": bench_fbank}[args.what]()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
