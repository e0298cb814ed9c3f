#!/usr/bin/env python3
"""Training speed of an adapted wav2vec 2.0 encoder, with and without a cached
front-end, against frozen features (cached) and full fine-tuning.

Issue 21, item 4. An adapted encoder's features change at every step, so the
per-utterance feature cache cannot serve; what can be cached is the frozen
convolutional front-end (the output of ``feature_extractor``, 512 channels at
50 frames per second), which no adapter touches. This script measures, in
one run, side by side, on the same batch and heads (the recipe's
``layer_sum`` -> ``embedding`` -> ``emo_classifier``, cross-entropy, Adam):

* ``frozen+cache``: pooled features of the frozen encoder precomputed (the
  recipe's feature cache, held in memory): only the heads train;
* ``adapted``: ``AdaptedSSLLayerPooling`` (LoRA + bottleneck adapters +
  gates, the recipe's defaults) on the audio, in its exact batch mode
  (``auto``: each utterance alone for a group-norm base model, one padded
  pass for a layer-norm model);
* ``adapted+frontend``: the same, from the cached front-end of each
  utterance (``SSLFrontend``, held in memory) in one padded transformer pass
  (``forward_frontend``);
* ``adapted padded``: the adapted encoder in one padded pass on the audio
  (for a group-norm model this is NOT exact, shown to separate the gain of
  batching from that of skipping the convolutions);
* ``full fine-tuning``: ``SSLLayerPooling(freeze=False)``, same batch mode as
  ``adapted``.

For each: steps per second, the ratio to ``adapted``, peak GPU memory (CUDA),
and ``max|d|``: the largest difference of the pooled features from the
per-utterance reference on the same (random) adapters, eval mode (exactness).

The model is randomly initialised from a config (no download): ``--size
base`` is wav2vec 2.0 Base (facebook/wav2vec2-base's architecture: 12
layers, hidden 768, group-norm front-end; ``--norm layer`` swaps in the
layer-norm front-end of large models), ``--size tiny`` a 2-layer model of
width 64. Clip lengths are drawn (seeded, log-normal around
``--median-seconds``) and cut by the recipe's duration policy
(``fit_batch_duration``, ``--max-duration``)::

    python tests/benchmarks/adapted_speed.py                      # base, CPU
    python tests/benchmarks/adapted_speed.py --size tiny --norm layer
    python tests/benchmarks/adapted_speed.py --device cuda --batch 36 --bf16

``tests/gpu/adapted_smoke.py`` runs the same measurement at the paper's
batch on a GPU.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

#: facebook/wav2vec2-base's config.json, its architecture part (the weights
#: here are random).
W2V2_BASE: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "do_stable_layer_norm": False,
    "feat_extract_norm": "group",
    "feat_extract_activation": "gelu",
    "conv_bias": False,
    "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "layer_norm_eps": 1e-5,
    "layerdrop": 0.1,
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "feat_proj_dropout": 0.1,
}
#: A 2-layer stand-in of the same shape family (CPU checks in seconds).
TINY: dict[str, Any] = {
    **W2V2_BASE,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "conv_dim": [32] * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
}
#: The recipe's adaptation defaults (hparams/template/common.yaml).
ADAPTATION = {
    "adaptation": "lora+adapter",
    "gate": True,
    "lora_rank": 8,
    "lora_alpha": 16.0,
    "adapter_size": 64,
}
CONFIGS = (
    "frozen+cache",
    "adapted",
    "adapted+frontend",
    "adapted padded",
    "full fine-tuning",
)
EMOTIONS = 4
EMB_DIM = 256  # hparams: emb_dim


def make_model(folder: Path, size: str = "base", norm: str = "group") -> Path:
    """Save a random wav2vec 2.0 (``size``, front-end ``norm``) to ``folder``."""
    import transformers

    config = dict(W2V2_BASE if size == "base" else TINY)
    config.update(feat_extract_norm=norm, do_stable_layer_norm=norm == "layer")
    torch.manual_seed(0)
    model = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**config))
    model.save_pretrained(str(folder))
    transformers.Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=norm == "layer",
    ).save_pretrained(str(folder))
    return folder


def make_batch(
    batch: int,
    median_seconds: float,
    max_duration: float | None,
    seed: int = 0,
    sample_rate: int = 16000,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random clips of log-normal lengths, cut by the recipe's duration policy.

    Returns
    -------
    tuple
        ``(wavs [B, T], wav_lens [B], labels [B])``.
    """
    from speechbrain.utils.data_utils import batch_pad_right

    from zsser_modules.audio import fit_batch_duration

    generator = torch.Generator().manual_seed(seed)
    seconds = torch.exp(
        math.log(median_seconds) + 0.5 * torch.randn(batch, generator=generator)
    ).clamp(min=0.5)
    clips = [
        0.1 * torch.randn(int(s * sample_rate), generator=generator)
        for s in seconds.tolist()
    ]
    wavs, lens = batch_pad_right(clips)
    wavs, lens = fit_batch_duration(wavs, lens, sample_rate, max_duration)
    labels = torch.randint(0, EMOTIONS, (batch,), generator=generator)
    return wavs, lens, labels


def heads(num_layers: int, width: int) -> torch.nn.ModuleDict:
    """The recipe's heads after the encoder (layer_sum, embedding, classifier)."""
    from speechbrain.lobes.models.VanillaNN import VanillaNN
    from speechbrain.nnet.linear import Linear

    from zsser_modules.encoders import WeightedLayerSum

    return torch.nn.ModuleDict(
        {
            "layer_sum": WeightedLayerSum(num_layers=num_layers),
            "embedding": VanillaNN(
                input_shape=[None, width], dnn_blocks=2, dnn_neurons=EMB_DIM
            ),
            "emo_classifier": Linear(input_size=EMB_DIM, n_neurons=EMOTIONS),
        }
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(
    config: str,
    folder: Path,
    hf_cache: Path,
    wavs: torch.Tensor,
    lens: torch.Tensor,
    device: torch.device,
) -> tuple[Callable[[], torch.Tensor], list[torch.nn.Parameter], Any]:
    """One configuration: ``(features(), trainable parameters, encoder)``.

    ``features()`` returns the pooled features ``[B, L+1, D]`` of the batch
    with the autograd graph this configuration trains through.
    """
    from speechbrain.utils.data_utils import batch_pad_right

    from zsser_modules.adaptation import AdaptedSSLLayerPooling
    from zsser_modules.encoders import SSLLayerPooling

    source, save = str(folder), str(hf_cache)
    wavs, lens = wavs.to(device), lens.to(device)
    if config == "frozen+cache":
        encoder = SSLLayerPooling(source, save_path=save).to(device)
        with torch.no_grad():
            cached = encoder(wavs, lens).detach()  # the feature cache
        return (lambda: cached), [], encoder
    if config == "full fine-tuning":
        encoder = SSLLayerPooling(source, save_path=save, freeze=False).to(device)
        encoder.train()
        params = [p for p in encoder.parameters() if p.requires_grad]
        return (lambda: encoder(wavs, lens)), params, encoder
    batch_mode = "padded" if config == "adapted padded" else "auto"
    encoder = AdaptedSSLLayerPooling(
        source, save_path=save, batch_mode=batch_mode, **ADAPTATION
    ).to(device)
    encoder.train()
    params = [p for p in encoder.parameters() if p.requires_grad]
    if config == "adapted+frontend":
        feats, feat_lens = batch_pad_right(encoder.frontend(wavs, lens))  # cache
        feats, feat_lens = feats.to(device), feat_lens.to(device)
        return (lambda: encoder.forward_frontend(feats, feat_lens)), params, encoder
    return (lambda: encoder(wavs, lens)), params, encoder


def exactness(
    folder: Path, hf_cache: Path, wavs: torch.Tensor, lens: torch.Tensor
) -> dict[str, float]:
    """max|d| of pooled features from the per-utterance reference (eval mode).

    One adapted encoder with random (non-zero) adapters; the reference runs
    each utterance alone, trimmed. CPU, float32.
    """
    from speechbrain.utils.data_utils import batch_pad_right

    from zsser_modules.adaptation import AdaptedSSLLayerPooling

    encoder = AdaptedSSLLayerPooling(
        str(folder),
        save_path=str(hf_cache),
        batch_mode="per_utterance",
        **ADAPTATION,
    ).eval()
    generator = torch.Generator().manual_seed(1)
    params = dict(encoder.named_parameters())
    with torch.no_grad():
        for name in encoder.adapter_names:
            params[name].copy_(
                0.05 * torch.randn(params[name].shape, generator=generator)
            )
        reference = encoder(wavs, lens)
        cached = encoder.forward_frontend(
            *batch_pad_right(encoder.frontend(wavs, lens))
        )
        encoder.batch_mode = "padded"
        padded = encoder(wavs, lens)
    scale = float(reference.abs().mean())
    return {
        "adapted+frontend": float((cached - reference).abs().max()),
        "adapted padded": float((padded - reference).abs().max()),
        "feature_scale": scale,
    }


def measure(
    config: str,
    folder: Path,
    hf_cache: Path,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    device: torch.device,
    steps: int,
    bf16: bool,
    cpu_time: bool = False,
) -> dict[str, float]:
    """Steps per second (after one warm-up step) and peak memory of one config.

    ``cpu_time``: seconds of this process's CPU time instead of wall time
    (with one torch thread: robust to other processes on a shared machine).
    """
    wavs, lens, labels = batch
    labels = labels.to(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    features, params, encoder = build(config, folder, hf_cache, wavs, lens, device)
    head = heads(encoder.num_layers, encoder.output_size).to(device).train()
    groups = [{"params": list(head.parameters()), "lr": 1e-3}]
    if params:
        lr = 1e-5 if config == "full fine-tuning" else 5e-4  # lr_ssl, lr_adapters
        groups.append({"params": params, "lr": lr})
    optimizer = torch.optim.Adam(groups)
    autocast = functools.partial(
        torch.autocast, device.type, dtype=torch.bfloat16, enabled=bf16
    )

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            out = features()
            for name in ("layer_sum", "embedding", "emo_classifier"):
                out = head[name](out)
            loss = torch.nn.functional.cross_entropy(out.float(), labels)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    clock = time.process_time if cpu_time else time.perf_counter
    step()  # warm-up (allocations, kernels)
    _sync(device)
    start = clock()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = clock() - start
    result = {"steps_per_s": steps / seconds}
    if device.type == "cuda":
        result["peak_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every configuration; return the figures."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="adapted_speed_"))
    folder = work / f"w2v2_{args.size}_{args.norm}"
    if not (folder / "config.json").exists():
        make_model(folder, args.size, args.norm)
    hf_cache = work / "hf"
    batch = make_batch(args.batch, args.median_seconds, args.max_duration)
    figures: dict[str, Any] = {
        "size": args.size,
        "norm": args.norm,
        "device": str(device),
        "bf16": bool(args.bf16),
        "batch": args.batch,
        "audio_seconds": float(batch[1].sum() * batch[0].shape[1] / 16000),
        "steps": args.steps,
        "rounds": args.rounds,
        "clock": "process CPU time" if args.cpu_time else "wall time",
        "threads": torch.get_num_threads(),
        "exactness": exactness(folder, hf_cache, batch[0], batch[1]),
        "configs": {},
    }
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in args.configs}
    for _ in range(args.rounds):  # rounds interleave configs: shared-machine noise
        for config in args.configs:
            runs[config].append(
                measure(
                    config,
                    folder,
                    hf_cache,
                    batch,
                    device,
                    args.steps,
                    args.bf16,
                    args.cpu_time,
                )
            )
    for config, results in runs.items():
        entry = {"steps_per_s": statistics.median(r["steps_per_s"] for r in results)}
        if "peak_gb" in results[0]:
            entry["peak_gb"] = max(r["peak_gb"] for r in results)
        figures["configs"][config] = entry
    base = figures["configs"].get("adapted", {}).get("steps_per_s")
    for entry in figures["configs"].values():
        entry["vs_adapted"] = entry["steps_per_s"] / base if base else float("nan")
    return figures


def table(figures: dict[str, Any]) -> str:
    """The figures as a text table (one line per configuration)."""
    exact = figures["exactness"]
    lines = [
        f"wav2vec 2.0 {figures['size']} ({figures['norm']}-norm front-end, random "
        f"weights), batch {figures['batch']} ({figures['audio_seconds']:.1f} s of "
        f"audio), {figures['device']}{' bf16' if figures['bf16'] else ''}, "
        f"{figures['steps']} steps x {figures['rounds']} round(s), "
        f"{figures['clock']}, {figures['threads']} thread(s); max|d| from the "
        f"per-utterance reference (features ~{exact['feature_scale']:.2f})",
        f"{'config':<18} {'steps/s':>9} {'x adapted':>10} {'peak GB':>8} {'max|d|':>9}",
    ]
    for config, entry in figures["configs"].items():
        peak = f"{entry['peak_gb']:.2f}" if "peak_gb" in entry else "n/a"
        diff = exact.get(config)
        diff = "n/a" if diff is None else f"{diff:.1e}"
        if config == "adapted":
            diff = "0 (ref)"
        lines.append(
            f"{config:<18} {entry['steps_per_s']:>9.3f} "
            f"{entry['vs_adapted']:>10.2f} {peak:>8} {diff:>9}"
        )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """Command-line options (shared with tests/gpu/adapted_smoke.py)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=("base", "tiny"), default="base")
    p.add_argument("--norm", choices=("group", "layer"), default="group")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--median-seconds", type=float, default=2.0)
    p.add_argument("--max-duration", type=float, default=15.0)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads")
    p.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with process CPU time (use with --threads 1 on a shared CPU)",
    )
    p.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    p.add_argument("--workdir", default=None)
    p.add_argument("--json", default=None, help="write the figures here")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, optionally write JSON."""
    args = parser().parse_args(argv)
    figures = run(args)
    print(table(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
