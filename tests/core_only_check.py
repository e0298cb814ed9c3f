"""Run as a script by tests/test_install.py: the core with the optional packages hidden.

Every import finder on ``sys.meta_path`` is wrapped so that the packages of the
extras (transformers, scikit-learn, matplotlib, ...) are *not found*, as in a
``pip install zsser`` without extras (a real fresh venv would download torch).
Then: every module of ``zsser_modules`` and the recipes import; the core pieces
run a tiny forward; every optional feature stops (or, the t-SNE figure, is
skipped) with one line naming its extra. Prints ``CORE-ONLY OK`` at the end;
any failure is an exception (non-zero exit).
"""

from __future__ import annotations

import sys

#: Top-level import names of every extra's packages (and nothing of the core).
HIDDEN = frozenset(
    {"transformers", "sklearn", "matplotlib", "threadpoolctl", "espeakng_loader"}
    | {"submitit", "optuna", "pytorch_metric_learning"}
)


class _Hide:
    """A meta path finder that does not find the hidden packages."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        find = getattr(self.finder, "find_spec", None)
        return None if find is None else find(name, path, target)

    def __getattr__(self, attr):  # invalidate_caches, find_distributions, ...
        return getattr(self.finder, attr)


def hide_optional_packages() -> None:
    """Make the hidden packages unimportable for the rest of this process."""
    assert not HIDDEN & {m.partition(".")[0] for m in sys.modules}
    sys.meta_path[:] = [_Hide(finder) for finder in sys.meta_path]


def _one_line_naming(error_or_text, extra: str) -> str:
    """Check a message is one line naming ``pip install "zsser[<extra>]"``."""
    text = str(error_or_text)
    assert "\n" not in text, f"not one line: {text!r}"
    assert f'pip install "zsser[{extra}]"' in text, f"extra {extra} not named: {text}"
    return text


def main(repo_root: str) -> None:
    """Import and exercise the core with the optional packages hidden."""
    hide_optional_packages()
    import importlib
    import logging
    import pkgutil
    import runpy
    import tempfile
    from pathlib import Path

    import numpy as np
    import torch

    for name in HIDDEN:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        raise AssertionError(f"{name} is importable: the blocker does not work")

    # 1. Every module imports: the optional packages are imported at first use.
    import zsser_modules

    modules = [
        info.name
        for info in pkgutil.walk_packages(zsser_modules.__path__, "zsser_modules.")
    ]
    assert len(modules) > 40, modules
    for name in modules:
        importlib.import_module(name)
    for name in zsser_modules.__all__:  # the lazy public names
        getattr(zsser_modules, name)
    # The recipes' imports (their main() is not run): core packages only.
    for script in ("train.py", "run_grid.py", "tune.py", "batch_composition.py"):
        runpy.run_path(str(Path(repo_root, "recipes", script)), run_name="imported")

    # 2. The core pieces run.
    from zsser_modules import (
        AdversarialClassifier,
        EmotionMetricStats,
        FbankStatsEncoder,
        HierarchicalBatchSampler,
        SupConLoss,
        dann_lambda,
        masked_mean,
    )

    torch.manual_seed(0)
    features = torch.randn(8, 16, requires_grad=True)
    emotions = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    languages = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    loss = SupConLoss(cross_lingual_weight=0.5)(features, emotions, languages)
    adversary = AdversarialClassifier(16, n_classes=3)
    loss = loss + adversary.loss(features, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    loss.backward()
    assert features.grad is not None and torch.isfinite(loss)
    assert 0.0 < dann_lambda(0.5) < 1.0

    frames = torch.randn(2, 5, 16)
    pooled = masked_mean(frames, torch.tensor([1.0, 0.6]))
    assert pooled.shape == (2, 16)
    encoder = FbankStatsEncoder(n_mels=8)
    assert encoder(torch.randn(2, 16000), torch.ones(2)).shape[0] == 2

    rows = [
        {"lang": lang, "emo": emo}
        for lang in ("en", "de")
        for emo in ("neutral", "happy")
        for _ in range(3)
    ]
    sampler = HierarchicalBatchSampler(
        [r["lang"] for r in rows],
        [r["emo"] for r in rows],
        n_lang=2,
        n_cls=2,
        n_sam=2,
        seed=1,
    )
    batches = list(sampler)
    assert batches and all(len(batch) == 8 for batch in batches)

    stats = EmotionMetricStats(["neutral", "happy", "angry", "sad"])
    stats.append(["a", "b", "c"], torch.tensor([0, 1, 1]), torch.tensor([0, 1, 2]))
    assert stats.summarize("uar") == 2 / 3  # classes 0, 1 right, 2 wrong

    # 3. Each optional feature names its extra in one line.
    from zsser_modules.optional import MissingExtraError, check_recipe_extras

    def stops(extra: str, call, *args, error=MissingExtraError, **kwargs) -> None:
        try:
            call(*args, **kwargs)
        except error as caught:
            _one_line_naming(caught, extra)
            return
        raise AssertionError(f"{call.__name__} ran without the {extra} extra")

    from zsser_modules.diagnostics import make_probe, probe_representation

    stops("probe", make_probe)
    x = np.random.default_rng(0).normal(size=(8, 4))
    labels = np.array(["a", "b"] * 4)
    stops("probe", probe_representation, x, labels, labels, labels)

    from zsser_modules.tsne import plot_tsne

    warnings = []

    class Keep(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())

    logging.getLogger("zsser_modules.tsne").addHandler(Keep())
    with tempfile.TemporaryDirectory() as tmp:
        out = plot_tsne(x, ["neutral", "happy"] * 4, ["en"] * 8, Path(tmp, "t.png"))
        assert out is None and not Path(tmp, "t.png").exists()
    assert len(warnings) == 1, warnings
    _one_line_naming(warnings[0], "plots")

    from zsser_modules.results_table.plot import plot_variants

    stops("plots", plot_variants, None, "unused.png")

    from zsser_modules.grid_engine import EngineError, make_engine

    stops(
        "grid",
        make_engine,
        "submitit-local",
        jobs=1,
        folder="unused",
        error=EngineError,
    )

    import os

    from zsser_modules.data_prep.demo_espeak import EspeakUnavailableError, espeak_paths

    os.environ.pop("ZSSER_ESPEAK_LIBRARY", None)
    os.environ.pop("ZSSER_ESPEAK_DATA", None)
    stops("demo", espeak_paths, error=EspeakUnavailableError)

    import contextlib
    import io

    tune = runpy.run_path(str(Path(repo_root, "recipes", "tune.py")), run_name="x")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert tune["main"](["hparams/demo.yaml", "--target", "de"]) == 2
    _one_line_naming(stderr.getvalue().strip(), "tune")

    stops("encoders", check_recipe_extras, {"encoder": "ssl"})
    stops("encoders", check_recipe_extras, {"encoder": "whisper"})
    stops("probe", check_recipe_extras, {"encoder": "fbank", "diagnostics": True})
    notes = check_recipe_extras({"diagnostics": False, "tsne_per_language": 200})
    assert len(notes) == 1 and "t-SNE" in notes[0]
    _one_line_naming(notes[0], "plots")
    print("CORE-ONLY OK")


def pretrained_encoders(repo_root: str) -> None:
    """The pretrained encoders, built directly, name the encoders extra."""
    hide_optional_packages()
    import tempfile

    from zsser_modules.encoders import SSLLayerPooling, WhisperLayerPooling

    for make in (
        lambda folder: SSLLayerPooling(folder, hub_class="wavlm"),
        lambda folder: WhisperLayerPooling(folder),
    ):
        with tempfile.TemporaryDirectory() as folder:
            try:
                make(folder)
            except ImportError as error:
                _one_line_naming(error, "encoders")
                continue
        raise AssertionError("a pretrained encoder was built without transformers")
    print("ENCODERS OK")


if __name__ == "__main__":
    {"core": main, "encoders": pretrained_encoders}[sys.argv[1]](sys.argv[2])
