"""Measure SpeechBrain 1.1.2's own pieces against the ones this project wrote.

Each section answers one question of docs/toolkit_reuse.md on small inputs
(CPU, no download, a few seconds each)::

    python tests/benchmarks/toolkit_reuse.py metrics
    python tests/benchmarks/toolkit_reuse.py checkpointer
    python tests/benchmarks/toolkit_reuse.py random_state
    python tests/benchmarks/toolkit_reuse.py pooling
    python tests/benchmarks/toolkit_reuse.py ssl
    python tests/benchmarks/toolkit_reuse.py whisper [--whisper-base FOLDER]
    python tests/benchmarks/toolkit_reuse.py all

The differences that decide are also pinned by tests/test_toolkit_reuse.py,
so that a SpeechBrain release that closes one of them fails a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def metrics() -> None:
    """ClassificationStats against EmotionMetricStats and scikit-learn."""
    from sklearn.metrics import f1_score, recall_score
    from speechbrain.utils.metric_stats import ClassificationStats

    from zsser_modules.metrics import EmotionMetricStats

    y_true, y_pred = [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 1, 0]
    cs = ClassificationStats()
    cs.append(list("abcdef"), y_pred, y_true)
    s = cs.summarize()
    print("fields:", sorted(s))
    print("recall of class 0:", s["classwise_accuracy"][0], "exact:", 1 / 3)
    print("sklearn recall:", recall_score(y_true, y_pred, average=None).tolist())
    ours = EmotionMetricStats(["a", "b", "c"])
    ours.append(list("abcdef"), y_pred, y_true)
    print("ours per_class_recall:", ours.summarize("per_class_recall"))
    print(
        "UAR ours / sklearn:",
        ours.summarize("uar"),
        recall_score(y_true, y_pred, average="macro"),
    )
    print(
        "macro-F1 ours / sklearn:",
        ours.summarize("macro_f1"),
        f1_score(y_true, y_pred, average="macro"),
    )
    print(
        "UAR as the mean of ClassificationStats' recalls:",
        float(np.mean(list(s["classwise_accuracy"].values()))),
    )
    mismatches, worst = 0, 0.0
    rng = np.random.default_rng(0)
    for _ in range(1000):
        size = int(rng.integers(10, 400))
        truth, guess = rng.integers(0, 4, size), rng.integers(0, 4, size)
        cs = ClassificationStats()
        cs.append(list(range(size)), guess.tolist(), truth.tolist())
        recalls = cs.summarize("classwise_accuracy").values()
        toolkit = float(np.mean(list(recalls)))
        exact = recall_score(truth, guess, labels=np.unique(truth), average="macro")
        mismatches += toolkit != exact
        worst = max(worst, abs(toolkit - exact))
    print(
        f"UAR from ClassificationStats vs scikit-learn, 1000 random test sets "
        f"(10-400 samples, 4 classes): {mismatches} differ, by up to {worst:.2g}"
    )
    s = ClassificationStats()
    s.append(list("abcdef"), y_pred, y_true)
    s = s.summarize()
    try:
        json.dumps(s)
    except TypeError as error:
        print("json.dumps(summary):", error)

    cs = ClassificationStats()
    cs.append(list("abcdef"), torch.tensor(y_pred), torch.tensor(y_true))
    s = cs.summarize()
    print(
        "tensor inputs (what a Brain has): keys",
        len(s["keys"]),
        "class-wise accuracies",
        list(s["classwise_accuracy"].values()),
        "accuracy",
        s["accuracy"],
    )
    cs = ClassificationStats()
    cs.append(["a", "b"], [0, 1], [0, 1], categories=["en", "de"])
    cs.append(["c"], [1], [0])  # a batch without categories
    s = cs.summarize()
    print(
        "3 samples, 2 with categories: classwise",
        s["classwise_total"],
        "accuracy",
        s["accuracy"],
    )
    cs = ClassificationStats()
    cs.append(["a"], [3], [0])
    print(
        "confusion of 1 sample, class 3 predicted:",
        cs.summarize("confusion_matrix"),
        "keys",
        cs.summary["keys"],
        "predictions",
        cs.summary["predictions"],
    )


def _kill_during_save(folder: Path, atomic: bool) -> None:
    """In a child process: save one good checkpoint, then SIGKILL mid-save."""
    code = f"""
import os, signal, torch
from speechbrain.utils.checkpoints import Checkpointer
from zsser_modules.checkpoints import AtomicCheckpointer
cls = AtomicCheckpointer if {atomic} else Checkpointer
lin, other = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
ckpt = cls({str(folder)!r}, {{"model": lin, "optimizer": other}})
ckpt.save_checkpoint(meta={{"epoch": 1}})
def dying_save(obj, path):
    os.kill(os.getpid(), signal.SIGKILL)
ckpt.custom_save_hooks["optimizer"] = dying_save
ckpt.save_checkpoint(meta={{"epoch": 2}})
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], env=env, check=False)
    assert done.returncode == -signal.SIGKILL, done.returncode


def checkpointer() -> None:
    """What kill -9 while saving leaves, with SpeechBrain's and ours."""
    from speechbrain.utils.checkpoints import Checkpointer

    from zsser_modules.checkpoints import AtomicCheckpointer

    for atomic in (False, True):
        name = "AtomicCheckpointer" if atomic else "Checkpointer"
        folder = Path(tempfile.mkdtemp()) / "save"
        _kill_during_save(folder, atomic)
        print(f"{name}: killed in the 2nd save; folder holds:")
        for path in sorted(folder.iterdir()):
            print("   ", path.name, sorted(p.name for p in path.iterdir()))
        cls = AtomicCheckpointer if atomic else Checkpointer
        lin, other = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        ckpt = cls(folder, {"model": lin, "optimizer": other})
        print("   newest checkpoint found:", ckpt.find_checkpoint().meta["epoch"])
        try:
            loaded = ckpt.recover_if_possible()
            print("   recover_if_possible: loaded epoch", loaded.meta["epoch"])
        except Exception as error:  # noqa: BLE001 - reporting what happens
            print(
                "   recover_if_possible:",
                type(error).__name__,
                str(error).split(",")[0],
            )
        # a dataloader-named recoverable is skipped with a warning, not refused
        folder = Path(tempfile.mkdtemp()) / "save"
        if not atomic:
            code = f"""
import os, signal, torch
from speechbrain.utils.checkpoints import Checkpointer
ckpt = Checkpointer({str(folder)!r}, {{"model": torch.nn.Linear(2, 2),
                                       "dataloader-TRAIN": torch.nn.Linear(2, 2)}})
ckpt.custom_save_hooks["dataloader-TRAIN"] = lambda o, p: os.kill(os.getpid(), 9)
ckpt.save_checkpoint(meta={{"epoch": 1}})
"""
            subprocess.run([sys.executable, "-c", code], check=False)
            ckpt = Checkpointer(
                folder,
                {
                    "model": torch.nn.Linear(2, 2),
                    "dataloader-TRAIN": torch.nn.Linear(2, 2),
                },
            )
            import warnings

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                loaded = ckpt.recover_if_possible()
            print(
                "   killed before the loader's state: loaded epoch",
                loaded.meta["epoch"],
                "warnings:",
                [str(w.message).split(",")[0] for w in caught][:1],
            )


def random_state() -> None:
    """SpeechBrain's SaveableGenerator against RandomState."""
    from speechbrain.utils.checkpoints import Checkpointer
    from speechbrain.utils.repro import SaveableGenerator

    from zsser_modules.checkpoints import RandomState

    def draws():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    for name, obj in (
        ("SaveableGenerator", SaveableGenerator()),
        ("RandomState", RandomState()),
    ):
        ckpt = Checkpointer(tempfile.mkdtemp(), {"rng": obj})
        ckpt.save_checkpoint()
        first = draws()
        ckpt.recover_if_possible()
        again = draws()
        print(
            f"{name}: after recovery python/numpy/torch draws equal:",
            [a == b for a, b in zip(first, again)],
        )
    from speechbrain.utils.checkpoints import DEFAULT_SAVE_HOOKS

    for cls in (SaveableGenerator, RandomState):
        hook = DEFAULT_SAVE_HOOKS[cls]
        print(
            f"{cls.__name__}: the save hook runs on the main process only "
            "(every rank then loads rank 0's file):",
            hook is not cls.__dict__["save"],
        )
    # A loader iterator created after loading draws a seed from torch's generator.
    loader = torch.utils.data.DataLoader(list(range(8)), batch_size=2, shuffle=True)
    state = torch.get_rng_state()
    iter(loader)
    print(
        "iter(shuffled DataLoader) moves torch's generator:",
        not torch.equal(state, torch.get_rng_state()),
    )


def pooling() -> None:
    """SpeechBrain's StatisticsPooling (mean only) against masked_mean."""
    from speechbrain.nnet.pooling import StatisticsPooling

    from zsser_modules.encoders import masked_mean

    x = torch.randn(2, 50, 8, generator=torch.Generator().manual_seed(0))
    lens = torch.tensor([0.6, 1.0])
    pool = StatisticsPooling(return_std=False).eval()
    first, second = pool(x, lens)[:, 0], pool(x, lens)[:, 0]
    exact = masked_mean(x, lens)
    print(
        "StatisticsPooling(return_std=False) in eval mode: two calls differ by "
        f"{(first - second).abs().max():.2g}, the exact masked mean by "
        f"{(first - exact).abs().max():.2g} (Gaussian noise added to the mean); "
        f"masked_mean twice: {(masked_mean(x, lens) - exact).abs().max():.2g}"
    )


def _tiny_batch(n_short=8000, n_long=24000):
    gen = torch.Generator().manual_seed(0)
    short = 0.1 * torch.randn(1, n_short, generator=gen)
    long_ = 0.1 * torch.randn(1, n_long, generator=gen)
    batch = torch.zeros(2, n_long)
    batch[0, :n_short], batch[1] = short[0], long_[0]
    return short, long_, batch, torch.tensor([n_short / n_long, 1.0])


def ssl() -> None:
    """WeightedSSLModel against SSLLayerPooling + WeightedLayerSum, padded vs alone."""
    from encoder_utils import make_tiny_ssl
    from speechbrain.integrations.huggingface.weighted_ssl import WeightedSSLModel

    from zsser_modules.encoders import SSLLayerPooling, WeightedLayerSum, masked_mean

    tmp = Path(tempfile.mkdtemp())
    short, _, batch, lens = _tiny_batch()
    for norm in ("layer", "group"):
        folder = make_tiny_ssl(tmp / norm, "wavlm", feat_extract_norm=norm)
        sb = WeightedSSLModel(str(folder), save_path=str(tmp / "hf"), freeze=True)
        sb.model.config.layerdrop = 0.0
        with torch.no_grad():
            alone = sb(short).mean(1)[0]
            together_frames = sb(batch, lens)
            n_frames = sb.model._get_feat_extract_output_lengths(torch.tensor(8000))
            # pooled over the short clip's valid frames only (the best a
            # recipe can do with WeightedSSLModel's output)
            masked = masked_mean(together_frames, torch.tensor([int(n_frames)] * 2))[0]
        ours = SSLLayerPooling(str(folder), save_path=str(tmp / "hf"))
        pool = WeightedLayerSum(ours.num_layers)
        with torch.no_grad():
            ours_alone = pool(ours(short))[0]
            ours_together = pool(ours(batch, lens))[0]
        print(
            f"feat_extract_norm={norm}: WeightedSSLModel, short clip padded 3x "
            f"vs alone (masked mean over its frames): max |diff| "
            f"{(masked - alone).abs().max():.3g} (feature scale "
            f"{alone.abs().mean():.3g}); ours ({ours.batch_mode}): "
            f"{(ours_together - ours_alone).abs().max():.3g}"
        )
        print(
            "   WeightedSSLModel output shape",
            tuple(together_frames.shape),
            "(frames, not pooled; wav_lens unused)",
        )
        sb.train()  # what Brain.fit does to every module
        with torch.no_grad():
            first, second = sb(short), sb(short)
        print(
            f"   WeightedSSLModel(freeze=True) after .train(): HF model training="
            f"{sb.model.training}; two forwards of one clip differ by "
            f"{(first - second).abs().max():.3g}"
        )
    from encoder_utils import make_tiny_whisper

    folder = make_tiny_whisper(tmp / "whisper")
    try:
        sb = WeightedSSLModel(str(folder), save_path=str(tmp / "hf"), freeze=True)
        sb(short)
        print("WeightedSSLModel on Whisper: ran")
    except Exception as error:  # noqa: BLE001 - reporting what happens
        print("WeightedSSLModel on Whisper:", type(error).__name__, str(error)[:120])


def whisper(base: str | None) -> None:
    """SpeechBrain's Whisper wrapper against WhisperLayerPooling."""
    from encoder_utils import make_tiny_whisper
    from speechbrain.integrations.huggingface.whisper import Whisper

    from zsser_modules.encoders import WhisperLayerPooling

    tmp = Path(tempfile.mkdtemp())
    source = base or str(make_tiny_whisper(tmp / "tiny"))
    sb = Whisper(
        source, str(tmp / "hf"), encoder_only=True, freeze=True, output_all_hiddens=True
    )
    print(
        "SpeechBrain Whisper(freeze=True) leaves the model in training mode:",
        sb.model.training,
    )
    short, _, batch, lens = _tiny_batch(16000, 48000)
    loud = batch.clone()
    loud[1] *= 100.0
    with torch.no_grad():
        mel_alone = sb._get_mel(short)[0]
        mel_quiet = sb._get_mel(batch)[0]
        mel_loud = sb._get_mel(loud)[0]
    print(
        "log-mel of clip 0 beside a 100x louder clip vs beside a quiet one: "
        f"max |diff| {(mel_loud - mel_quiet).abs().max():.3g}; "
        f"alone vs quiet batch {(mel_alone - mel_quiet).abs().max():.3g}"
    )
    with torch.no_grad():
        out = sb(short)
    print("output shape for a 1 s clip:", tuple(out.shape), "(30 s of frames)")
    ours = WhisperLayerPooling(source, str(tmp / "hf"))
    with torch.no_grad():
        a = ours(batch, lens)[0]
        b = ours(loud, lens)[0]
    print(
        "ours, clip 0 beside a quiet vs a loud clip: max |diff|",
        f"{(a - b).abs().max():.3g}",
    )
    torch.set_num_threads(1)
    clip = short.repeat(1, 3)  # 3 s
    for name, fn in (
        ("SpeechBrain Whisper (30 s)", lambda: sb(clip)),
        ("ours, cut", lambda: ours(clip)),
    ):
        with torch.no_grad():
            fn()
            start = time.perf_counter()
            for _ in range(3):
                fn()
        print(f"{name}: {(time.perf_counter() - start) / 3 * 1000:.1f} ms per 3 s clip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "what",
        choices=[
            "metrics",
            "checkpointer",
            "random_state",
            "pooling",
            "ssl",
            "whisper",
            "all",
        ],
    )
    parser.add_argument("--whisper-base", default=None)
    args = parser.parse_args()
    if args.what in ("metrics", "all"):
        metrics()
    if args.what in ("checkpointer", "all"):
        checkpointer()
    if args.what in ("random_state", "all"):
        random_state()
    if args.what in ("pooling", "all"):
        pooling()
    if args.what in ("ssl", "all"):
        ssl()
    if args.what in ("whisper", "all"):
        whisper(args.whisper_base)


if __name__ == "__main__":
    main()
