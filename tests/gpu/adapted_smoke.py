#!/usr/bin/env python3
"""GPU check of issue 21: an adapted wav2vec 2.0 Base at the paper's batch.

Offline: a *randomly initialised* wav2vec 2.0 with the public architecture
of ``facebook/wav2vec2-base`` (12 layers, hidden 768, group-norm front-end,
95 M parameters) is saved to a local folder; a batch of 36 clips (the
paper's batch: 3 languages x 4 emotions x 3 utterances) of log-normal
lengths around 3 s is cut by the recipe's duration policy (head crop at
``max_duration`` = 15 s, ``fit_batch_duration``). Then, with the recipe's
heads and defaults (LoRA rank 8 on q/v, bottleneck adapters of 64 after the
attention and feed-forward outputs, gates; bf16 autocast on CUDA), the
training steps per second and the peak GPU memory of:

* ``frozen+cache``: the frozen encoder's pooled features cached (heads only);
* ``adapted``: adapters on the audio (exact batch mode: each utterance alone
  for this group-norm model);
* ``adapted+frontend``: adapters from the cached convolutional front-end,
  one padded transformer pass (exact; docs/encoders.md);
* ``adapted padded``: adapters on the audio in one padded pass (NOT exact
  for a group-norm model; shown for the batching gain alone);
* ``full fine-tuning``: the whole encoder trained, same batch mode as
  ``adapted``;

each also with ``max|d|``, the exactness of the pooled features against the
per-utterance reference (CPU, float32). Last, ``export``: the adapted model
after its steps is exported (``export_inference``: adapters only), reloaded
(``EmotionRecognizer.from_hparams``) on the device and compared with the
trained model's log-probabilities on three clips.

It prints the table, then ONE line of figures (``adapted_smoke OK ...`` or
``adapted_smoke FAIL ...``); ``--json PATH`` writes every figure. ``--tiny``
shrinks the model (hidden 64, 2 layers) and the batch (8 clips of about
1 s) to check the whole path anywhere::

    python tests/gpu/adapted_smoke.py --json adapted_smoke.json   # GPU machine
    python tests/gpu/adapted_smoke.py --tiny --device cpu         # anywhere

The measurement itself is ``tests/benchmarks/adapted_speed.py``.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
for path in (REPO_ROOT, REPO_ROOT / "tests" / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import adapted_speed  # noqa: E402
import torch  # noqa: E402

PAPER_BATCH = 36


def export_check(
    folder: Path, hf_cache: Path, device: torch.device, work: Path
) -> dict:
    """Train the adapted model a few steps, export it, reload, compare outputs."""
    import functools

    from speechbrain.lobes.models.VanillaNN import VanillaNN
    from speechbrain.nnet.linear import Linear

    from zsser_modules.adaptation import AdaptedSSLLayerPooling
    from zsser_modules.encoders import WeightedLayerSum
    from zsser_modules.inference import (
        EmotionRecognizer,
        build_module,
        export_inference,
    )
    from zsser_modules.labels import EMOTIONS

    ssl = build_module(
        functools.partial(
            AdaptedSSLLayerPooling, source=str(folder), **adapted_speed.ADAPTATION
        ),
        save_path=str(hf_cache),
    )
    modules = {
        "ssl": ssl,
        "layer_sum": build_module(WeightedLayerSum, num_layers=ssl.num_layers),
        "embedding": build_module(
            VanillaNN, input_shape=[None, ssl.output_size], dnn_neurons=16
        ),
        "emo_classifier": build_module(Linear, input_size=16, n_neurons=4),
    }
    chain = torch.nn.ModuleList(modules.values()).to(device)
    params = [p for p in chain.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=5e-3)
    wavs, lens, labels = adapted_speed.make_batch(4, 1.0, 15.0, seed=5)
    wavs, lens, labels = wavs.to(device), lens.to(device), labels.to(device)

    def forward(w, n):
        out = modules["ssl"](w, n)
        for name in ("layer_sum", "embedding", "emo_classifier"):
            out = modules[name](out)
        return torch.log_softmax(out.float(), dim=-1)

    chain.train()
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.nll_loss(forward(wavs, lens), labels).backward()
        optimizer.step()
    chain.eval()
    export = work / "exported"
    export_inference(export, "ssl", modules, EMOTIONS)
    ckpt_kb = (export / "ssl.ckpt").stat().st_size / 1e3
    recognizer = EmotionRecognizer.from_hparams(
        source=str(export), run_opts={"device": str(device)}
    )
    test = adapted_speed.make_batch(3, 1.0, 15.0, seed=6)[0]
    diffs = []
    for row in test:
        with torch.no_grad():
            want = forward(row[None].to(device), torch.ones(1, device=device))[0]
        got = recognizer.classify_batch(row[None], torch.ones(1))[0][0]
        diffs.append(float((got.to(device) - want).abs().max()))
    return {"export_max_diff": max(diffs), "export_ssl_ckpt_kb": ckpt_kb}


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and the export check; print one line of figures."""
    top = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    top.add_argument("--tiny", action="store_true", help="tiny model, 8 clips")
    top.add_argument("--device", default="cuda")
    top.add_argument("--steps", type=int, default=10)
    top.add_argument("--json", default=None)
    top.add_argument("--workdir", default=None)
    mine = top.parse_args(argv)
    if mine.device.startswith("cuda") and not torch.cuda.is_available():
        print("adapted_smoke FAIL no CUDA device (use --tiny --device cpu)")
        return 2
    work = Path(mine.workdir or tempfile.mkdtemp(prefix="adapted_smoke_"))
    bench_args = [
        f"--size={'tiny' if mine.tiny else 'base'}",
        "--norm=group",
        f"--device={mine.device}",
        f"--batch={8 if mine.tiny else PAPER_BATCH}",
        f"--median-seconds={1.0 if mine.tiny else 3.0}",
        "--max-duration=15",
        f"--steps={2 if mine.tiny else mine.steps}",
        f"--workdir={work}",
    ]
    if mine.device.startswith("cuda"):
        bench_args.append("--bf16")
    args = adapted_speed.parser().parse_args(bench_args)
    figures: dict = {"ok": False, "device_name": mine.device}
    if torch.cuda.is_available() and mine.device.startswith("cuda"):
        figures["device_name"] = torch.cuda.get_device_name(0)
    start = time.perf_counter()
    try:
        figures.update(adapted_speed.run(args))
        print(adapted_speed.table(figures))
        folder = work / f"w2v2_{args.size}_{args.norm}"
        figures.update(
            export_check(folder, work / "hf", torch.device(mine.device), work)
        )
        exact = figures["exactness"]["adapted+frontend"] < 1e-4
        figures["ok"] = exact and figures["export_max_diff"] < 1e-4
    except Exception as err:  # one line, whatever failed
        traceback.print_exc()
        figures["error"] = f"{type(err).__name__}: {err}"
    figures["wall_s"] = time.perf_counter() - start
    if mine.json:
        Path(mine.json).write_text(json.dumps(figures, indent=2, default=str))
    parts = [f"device={figures['device_name']}"]
    for config, entry in figures.get("configs", {}).items():
        peak = f",{entry['peak_gb']:.2f}GB" if "peak_gb" in entry else ""
        parts.append(f"{config.replace(' ', '_')}={entry['steps_per_s']:.3g}/s{peak}")
    if "exactness" in figures:
        parts.append(f"frontend_maxdiff={figures['exactness']['adapted+frontend']:.1e}")
        parts.append(f"padded_maxdiff={figures['exactness']['adapted padded']:.1e}")
    if "export_max_diff" in figures:
        parts.append(f"export_maxdiff={figures['export_max_diff']:.1e}")
        parts.append(f"ssl_ckpt={figures['export_ssl_ckpt_kb']:.0f}kB")
    if "error" in figures:
        parts.append(f"error={figures['error'][:200]}")
    print(f"adapted_smoke {'OK' if figures['ok'] else 'FAIL'} " + " ".join(parts))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
