"""Whisper encoder on a GPU: batch exactness, bf16, fine-tuning, speed.

Not a test (CI has no GPU). Needs torch with CUDA and transformers only; the
model is a random Whisper of Whisper-base's shape (d_model 512, 6 encoder
layers), since weights do not change speed or the padding arithmetic::

    python tests/benchmarks/check_whisper_gpu.py [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from zsser_modules.encoders import WhisperLayerPooling  # noqa: E402


def random_whisper_base(path: str) -> str:
    import transformers

    config = transformers.WhisperConfig(
        d_model=512,
        encoder_layers=6,
        encoder_attention_heads=8,
        encoder_ffn_dim=2048,
        decoder_layers=1,
        decoder_attention_heads=8,
        decoder_ffn_dim=2048,
        vocab_size=100,
        max_target_positions=8,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    torch.manual_seed(0)
    transformers.WhisperModel(config).save_pretrained(path)
    transformers.WhisperFeatureExtractor().save_pretrained(path)
    return path


def batch(n: int, seconds: float, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lengths = (torch.rand(n, generator=gen) * 0.7 + 0.3) * seconds * 16000
    lengths = lengths.long()
    wavs = torch.zeros(n, int(lengths.max()))
    for i, length in enumerate(lengths):
        wavs[i, :length] = 0.1 * torch.randn(int(length), generator=gen)
    return wavs, lengths.float() / wavs.shape[1]


def timed(fn, repeats: int = 3) -> float:
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def speed(out, cut, alone, full, n: int, seconds: float) -> None:
    """ms per clip of each path on n clips of up to ``seconds``."""
    wavs, lens = batch(n, seconds, seed=1)
    wavs, lens = wavs.to("cuda"), lens.to("cuda")
    key = f"{n}x{seconds:g}s"
    with torch.no_grad():
        out[f"cut_padded_batch_{key}_ms_per_clip"] = round(
            1000 * timed(lambda: cut(wavs, lens)) / n, 2
        )
        out[f"cut_per_utterance_{key}_ms_per_clip"] = round(
            1000 * timed(lambda: alone(wavs, lens), 1) / n, 2
        )
        out[f"full_30s_{key}_ms_per_clip"] = round(
            1000 * timed(lambda: full(wavs[:8], lens[:8]), 1) / 8, 2
        )
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out[f"cut_padded_batch_bf16_{key}_ms_per_clip"] = round(
                1000 * timed(lambda: cut(wavs, lens)) / n, 2
            )


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    dev = "cuda"
    out = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    source = random_whisper_base(tempfile.mkdtemp())
    tmp = tempfile.mkdtemp()
    cut = WhisperLayerPooling(source, tmp).to(dev)
    alone = WhisperLayerPooling(source, tmp, batch_mode="per_utterance").to(dev)
    full = WhisperLayerPooling(source, tmp, context="full").to(dev)
    wavs, lens = batch(8, 4.0)
    wavs, lens = wavs.to(dev), lens.to(dev)
    with torch.no_grad():
        together, single = cut(wavs, lens), alone(wavs, lens)
        scale = single.abs().max()
        out["padded_vs_alone_fp32_max_rel"] = float(
            (together - single).abs().max() / scale
        )
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = cut(wavs, lens).float()
        out["bf16_vs_fp32_max_rel"] = float((bf16 - single).abs().max() / scale)
        cpu = WhisperLayerPooling(source, tmp)(wavs.cpu(), lens.cpu())
        out["gpu_vs_cpu_max_rel"] = float((together.cpu() - cpu).abs().max() / scale)
    tuned = WhisperLayerPooling(source, tmp, freeze=False).to(dev).train()
    tuned(wavs, lens).square().mean().backward()
    grads = [p.grad for p in tuned.encoder.layers[0].parameters()]
    out["fine_tune_grads_ok"] = all(
        g is not None and bool(g.abs().sum() > 0) for g in grads
    )
    for n, seconds in ((32, 3.0), (32, 10.0)):
        speed(out, cut, alone, full, n, seconds)
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
