"""Compare read_audio (SpeechBrain's AudioNormalizer) with the former loader.

Usage::

    python tests/benchmarks/compare_audio_loader.py results/demo/data/demo_wavs

Reads every wav under the folder with both loaders and prints the number of
files, how many are bit-identical and the largest absolute difference; then
the same on each file resampled/stereo-converted (44.1 kHz stereo, 48 kHz,
22.05 kHz, 8 kHz, written to a temporary folder from the first 50 files).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from zsser_modules.audio import read_audio  # noqa: E402


def legacy_read_audio(path, target_sr=16000):
    """The project's loader before this change (soundfile, mean, resample)."""
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype="float32")
    wav = torch.from_numpy(np.ascontiguousarray(mono))
    if sr != target_sr:
        wav = torchaudio.transforms.Resample(sr, target_sr)(wav)
    return wav


def compare(files) -> tuple[int, int, float]:
    """(files, bit-identical, max abs diff) of the two loaders."""
    same, worst = 0, 0.0
    for path in files:
        new, old = read_audio(path), legacy_read_audio(path)
        assert new.shape == old.shape, path
        same += bool(torch.equal(new, old))
        worst = max(worst, float((new - old).abs().max()))
    return len(files), same, worst


def main(folder: str) -> None:
    """Print the comparison for a folder of wavs and converted copies."""
    files = sorted(Path(folder).rglob("*.wav"))
    n, same, worst = compare(files)
    rate = sf.info(str(files[0])).samplerate
    print(
        f"as stored ({rate} Hz): files {n}, identical {same}, max abs diff {worst:.3g}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for rate, channels in [(44100, 2), (48000, 1), (22050, 1), (8000, 1)]:
            converted = []
            for i, path in enumerate(files[:50]):
                data, sr = sf.read(str(path), dtype="float32")
                wav = torchaudio.functional.resample(torch.from_numpy(data), sr, rate)
                # a second channel that differs (delayed by 7 samples)
                stack = [wav, torch.roll(wav, 7)][:channels]
                out = Path(tmp) / f"{rate}_{channels}_{i}.wav"
                sf.write(str(out), torch.stack(stack, 1).numpy(), rate, "PCM_16")
                converted.append(out)
            n, same, worst = compare(converted)
            print(
                f"{rate} Hz, {channels} channel(s): files {n}, identical {same}, "
                f"max abs diff {worst:.3g}"
            )


if __name__ == "__main__":
    main(sys.argv[1])
