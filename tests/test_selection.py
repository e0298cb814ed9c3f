"""Per-language validation UAR, the selection criterion and the options beyond it
(checkpoint averaging, the last epoch, the LR schedule)."""

import json
import logging
import math
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score
from speechbrain.utils.checkpoints import Checkpointer

from zsser_modules.metrics import EmotionMetricStats
from zsser_modules.selection import (
    SELECTION_CRITERIA,
    EpochLRSchedule,
    average_into,
    check_selection_options,
    load_selected,
    retention,
    selected_checkpoints,
    validation_meta,
)

CLASSES = ["neutral", "happy", "angry", "sad"]


def test_uar_per_language_matches_scikit_learn():
    rng = np.random.default_rng(0)
    # a large balanced language, a small imbalanced one, one with 2 classes only
    langs = ["en"] * 200 + ["de"] * 23 + ["ur"] * 11
    targets = np.concatenate(
        [
            rng.integers(0, 4, 200),
            [0] * 3 + [1] * 4 + [2] * 12 + [3] * 4,
            [1] * 6 + [3] * 5,
        ]
    )
    predictions = np.where(
        rng.random(len(targets)) < 0.6, targets, rng.integers(0, 4, len(targets))
    )
    predictions[200:203] = 3  # de: neutral always wrong
    stats = EmotionMetricStats(CLASSES)
    for start in range(0, len(targets), 32):  # batch by batch, as in the recipe
        rows = slice(start, start + 32)
        stats.append(
            [f"u{i}" for i in range(len(targets))][rows],
            predictions[rows],
            targets[rows],
            groups=langs[rows],
        )
    per_language = stats.uar_by_group()
    assert list(per_language) == ["de", "en", "ur"]
    langs = np.array(langs)
    for lang, value in per_language.items():
        rows = langs == lang
        y_true, y_pred = targets[rows], predictions[rows]
        present = np.isin(y_pred, np.unique(y_true))  # balanced_accuracy's classes
        expected = np.mean(
            [np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]
        )
        assert value == pytest.approx(expected)
        if present.all():
            assert value == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert stats.summarize("uar") == pytest.approx(
        balanced_accuracy_score(targets, predictions)
    )


# Per epoch: (pooled UAR, {language: UAR}). The pooled UAR follows the large
# language; the mean over languages peaks where the small ones do.
EPOCHS = {
    1: (0.60, {"en": 0.62, "zh": 0.61, "fr": 0.30, "ur": 0.25}),
    2: (0.75, {"en": 0.78, "zh": 0.76, "fr": 0.35, "ur": 0.30}),  # best pooled
    3: (0.70, {"en": 0.70, "zh": 0.70, "fr": 0.60, "ur": 0.55}),  # best mean
    4: (0.72, {"en": 0.74, "zh": 0.73, "fr": 0.45, "ur": 0.40}),
}


@pytest.mark.parametrize(
    "selection, best", [("pooled_uar", 2), ("mean_language_uar", 3)]
)
def test_selection_picks_the_epoch_of_its_criterion(tmp_path, selection, best):
    assert selection in SELECTION_CRITERIA
    checkpointer = Checkpointer(tmp_path)
    for epoch, (pooled, per_language) in EPOCHS.items():
        meta = validation_meta(pooled, per_language, epoch)
        checkpointer.save_and_keep_only(meta=meta, max_keys=[selection])
    chosen = checkpointer.find_checkpoint(max_key=selection)
    assert chosen.meta["epoch"] == best
    assert chosen.meta["uar_per_language"] == EPOCHS[best][1]
    assert chosen.meta["mean_language_uar"] == pytest.approx(
        np.mean(list(EPOCHS[best][1].values()))
    )


# ---------------------------------------------------------------------------
# Options beyond the argmax over noisy epochs (ours): averaging, last, LR.


def _trained_checkpoints(tmp_path, selection="mean_language_uar", average=0, of="best"):
    """Four epochs (EPOCHS) of a small module, kept as the recipe keeps them."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    checkpointer = Checkpointer(tmp_path, {"model": model})
    weights = {}
    for epoch, (pooled, per_language) in EPOCHS.items():
        for tensor in model.state_dict().values():
            tensor.add_(torch.randn_like(tensor.float()).to(tensor.dtype) + epoch)
        weights[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
        checkpointer.save_and_keep_only(
            meta=validation_meta(pooled, per_language, epoch),
            **retention(selection, average, of),
        )
    return model, checkpointer, weights


def test_average_of_two_checkpoints_equals_the_hand_average(tmp_path):
    model, checkpointer, weights = _trained_checkpoints(tmp_path, "pooled_uar", 2)
    chosen = selected_checkpoints(checkpointer, "pooled_uar", 2, "best")
    assert [c.meta["epoch"] for c in chosen] == [2, 4]  # pooled: 0.75, 0.72
    average_into(chosen, {"model": model})
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            expected = (weights[2][name] + weights[4][name]) / 2
            assert torch.allclose(value, expected), name


@pytest.mark.parametrize(
    "selection, of, epochs",
    [
        ("mean_language_uar", "best", [3, 4]),  # mean: 0.6375, 0.58
        ("pooled_uar", "best", [2, 4]),
        ("pooled_uar", "last", [4, 3]),
        ("last", "best", [4, 3]),  # the k best under `last`: the last k
    ],
)
def test_best_and_last_k_are_kept_and_picked(tmp_path, selection, of, epochs):
    _, checkpointer, _ = _trained_checkpoints(tmp_path, selection, 2, of)
    chosen = selected_checkpoints(checkpointer, selection, 2, of)
    assert [c.meta["epoch"] for c in chosen] == epochs
    kept = {c.meta["epoch"] for c in checkpointer.list_checkpoints()}
    assert set(epochs) <= kept


def test_k_best_of_more_epochs(tmp_path):
    _, checkpointer, _ = _trained_checkpoints(tmp_path, "mean_language_uar", 3)
    chosen = selected_checkpoints(checkpointer, "mean_language_uar", 3)
    # means: 1: 0.445, 2: 0.5475, 3: 0.6375, 4: 0.58
    assert [c.meta["epoch"] for c in chosen] == [3, 4, 2]


def test_selection_last_and_the_single_best(tmp_path):
    model, checkpointer, weights = _trained_checkpoints(tmp_path, "last")
    assert retention("last") == {"num_to_keep": 1, "max_keys": ["epoch"]}
    record = load_selected(checkpointer, ["model"], "last")
    assert record == {
        "selection": "last",
        "selection_average": 0,
        "selection_average_of": None,
        "selected_epochs": [4],
    }
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights[4][name])
    _, checkpointer, _ = _trained_checkpoints(tmp_path / "b", "pooled_uar")
    assert load_selected(checkpointer, ["model"], "pooled_uar")["selected_epochs"] == [
        2
    ]


def test_load_selected_averages_and_records(tmp_path):
    model, checkpointer, weights = _trained_checkpoints(
        tmp_path, "pooled_uar", 3, "last"
    )
    record = load_selected(checkpointer, ["model"], "pooled_uar", 3, "last")
    assert record["selected_epochs"] == [2, 3, 4]
    assert record["selection_average_of"] == "last"
    expected = sum(weights[e]["0.weight"] for e in (2, 3, 4)) / 3
    assert torch.allclose(model.state_dict()["0.weight"], expected)


def test_no_checkpoint_is_one_line(tmp_path):
    with pytest.raises(RuntimeError, match="train first"):
        load_selected(Checkpointer(tmp_path), ["model"], "pooled_uar")


@pytest.mark.parametrize(
    "args, message",
    [
        (("best", 0, "best", "newbob"), "selection must be one of"),
        (("last", -2, "best", "newbob"), "selection_average must be a whole number"),
        (("last", 1.5, "best", "newbob"), "selection_average must be a whole number"),
        (("last", True, "best", "newbob"), "selection_average must be a whole number"),
        (("last", 2, "worst", "newbob"), "selection_average_of must be best or last"),
        (("last", 2, "best", "step"), "lr_schedule must be one of"),
    ],
)
def test_bad_values_are_refused_in_one_line(args, message):
    with pytest.raises(ValueError, match=message) as error:
        check_selection_options(*args)
    assert "\n" not in str(error.value) and "--" in str(error.value)


def test_cosine_and_constant_learning_rates():
    schedule = EpochLRSchedule("cosine", 0.001, number_of_epochs=5)
    pairs = [schedule(1.0) for _ in range(5)]
    lrs = [0.001 * (1 + math.cos(math.pi * e / 5)) / 2 for e in range(6)]
    assert [old for old, _ in pairs] == pytest.approx(lrs[:5])
    assert [new for _, new in pairs] == pytest.approx(lrs[1:])
    assert pairs[0][0] == 0.001 and pairs[-1][1] == pytest.approx(0.0, abs=1e-12)
    constant = EpochLRSchedule("constant", 0.01, number_of_epochs=5)
    assert [constant(x) for x in (1.0, 0.5, 2.0)] == [(0.01, 0.01)] * 3
    newbob = EpochLRSchedule("newbob", 1.0, 5, annealing_factor=0.5)
    assert newbob(1.0) == (1.0, 1.0) and newbob(2.0) == (1.0, 0.5)  # worse: halve


@pytest.mark.parametrize("name", ["cosine", "newbob"])
def test_learning_rate_schedule_resumes_exactly(tmp_path, name):
    """A schedule recovered from a checkpoint continues where it was."""
    metrics = [1.0, 0.9, 1.2, 1.1, 0.8, 0.7]
    full = EpochLRSchedule(name, 0.1, number_of_epochs=6, annealing_factor=0.5)
    expected = [full(m) for m in metrics]
    first = EpochLRSchedule(name, 0.1, number_of_epochs=6, annealing_factor=0.5)
    checkpointer = Checkpointer(tmp_path, {"lr_annealing": first})
    got = [first(m) for m in metrics[:3]]
    checkpointer.save_checkpoint(meta={"epoch": 3})
    first(metrics[3])  # an epoch whose checkpoint was never written (killed)
    resumed = EpochLRSchedule(name, 0.1, number_of_epochs=6, annealing_factor=0.5)
    Checkpointer(tmp_path, {"lr_annealing": resumed}).recover_if_possible()
    got += [resumed(m) for m in metrics[3:]]
    assert got == expected


def test_newbob_checkpoint_file_is_speechbrains(tmp_path):
    """Runs saved before lr_schedule existed (a plain NewBobScheduler) resume."""
    from speechbrain.nnet.schedulers import NewBobScheduler

    old = NewBobScheduler(initial_value=0.1, annealing_factor=0.5)
    old(1.0), old(2.0)
    Checkpointer(tmp_path, {"lr_annealing": old}).save_checkpoint()
    new = EpochLRSchedule("newbob", 0.1, number_of_epochs=6, annealing_factor=0.5)
    Checkpointer(tmp_path, {"lr_annealing": new}).recover_if_possible()
    assert new.newbob.hyperparam_value == old.hyperparam_value == 0.05
    assert new(0.5) == old(0.5)


def _demo_args(root, folder):
    """A tiny demo run averaging the last 2 of 3 epochs under a cosine schedule."""
    from conftest import REPO_ROOT

    return [
        str(REPO_ROOT / "hparams" / "demo.yaml"),
        f"--output_folder={folder}",
        f"--results_root={root}",
        "--demo_options={n_speakers: 2, n_per_class_per_speaker: 3}",
        "--number_of_epochs=3",
        "--tsne_per_language=10",
        "--diagnostics=False",
        "--noprogressbar",
        "--selection_average=2",
        "--selection_average_of=last",
        "--lr_schedule=cosine",
    ]


@pytest.fixture(scope="module")
def averaged_run(tmp_path_factory):
    """The uninterrupted run of _demo_args: (its Brain, its folder, the root)."""
    from recipes import train

    root = tmp_path_factory.mktemp("selection")
    folder = root / "run"
    brain = train.main(_demo_args(root / "results", folder))
    # As after a process of its own: SpeechBrain's log file handler of this
    # run must not receive the later runs' messages.
    for handler in list(logging.getLogger().handlers):
        if isinstance(handler, logging.FileHandler) and str(
            handler.baseFilename
        ).startswith(str(folder)):
            logging.getLogger().removeHandler(handler)
            handler.close()
    return brain, folder, root


def _logged_lrs(folder):
    log = (folder / "train_log.txt").read_text()
    return [float(v) for v in re.findall(r"lr: ([-+.e\d]+)", log)]


def test_results_json_records_the_selection(averaged_run):
    brain, folder, _ = averaged_run
    results = json.loads((folder / "results.json").read_text())
    assert results["selection"] == "mean_language_uar"
    assert results["selection_average"] == 2
    assert results["selection_average_of"] == "last"
    assert results["selected_epochs"] == [2, 3]
    assert results["lr_schedule"] == "cosine"
    assert results["best_epoch"] == 3
    # The tested weights are the average of epochs 2 and 3's checkpoints.
    chosen = selected_checkpoints(brain.checkpointer, "mean_language_uar", 2, "last")
    for name in ("embedding", "emo_classifier"):
        states = [torch.load(c.paramfiles[name]) for c in chosen]
        for key, value in brain.modules[name].state_dict().items():
            if value.is_floating_point():
                expected = (states[0][key] + states[1][key]) / 2
                assert torch.allclose(value.cpu(), expected)
    # The log's per-epoch LR follows the cosine schedule.
    lr = brain.hparams.lr
    assert _logged_lrs(folder) == pytest.approx(
        [lr * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)], rel=1e-2
    )


def test_cosine_schedule_and_averaging_resume_exactly(averaged_run):
    """Killed (SIGKILL) before epoch 2's first batch, then resumed: same run."""
    from recipe_utils import killed_recipe, run_recipe

    _, reference, root = averaged_run
    folder = root / "killed"
    args = _demo_args(root / "results", folder)
    killed_recipe(args, "2:1")
    run_recipe(args)
    assert _logged_lrs(folder) == _logged_lrs(reference)
    got, expected = (
        json.loads((path / "results.json").read_text()) for path in (folder, reference)
    )
    for key in ("uar", "macro_f1", "confusion_matrix", "selected_epochs"):
        assert got[key] == expected[key], key


def _selection_variance():
    """tests/benchmarks/selection_variance.py as a module."""
    import importlib.util

    from conftest import REPO_ROOT

    path = REPO_ROOT / "tests" / "benchmarks" / "selection_variance.py"
    spec = importlib.util.spec_from_file_location("selection_variance", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_selection_variance_summarises_paired_differences(tmp_path, capsys):
    bench = _selection_variance()
    uar = {  # (mode, variant, seed) -> (test UAR, whole-target UAR)
        ("fixed", "baseline2"): [(0.50, 0.40), (0.52, 0.41), (0.48, 0.39)],
        ("fixed", "proposed"): [(0.60, 0.45), (0.58, 0.47), (0.62, 0.46)],
        ("varied", "baseline2"): [(0.40, 0.40), (0.60, 0.42), (0.50, 0.38)],
        ("varied", "proposed"): [(0.55, 0.44), (0.60, 0.50), (0.70, 0.40)],
    }
    for (mode, variant), values in uar.items():
        for seed, (test, whole) in enumerate(values, start=1):
            folder = tmp_path / "avg3" / f"split_{mode}" / "en_de" / variant
            (folder / f"seed{seed}").mkdir(parents=True)
            (folder / f"seed{seed}" / "results.json").write_text(
                json.dumps({"seed": seed, "uar": test, "target_all": {"uar": whole}})
            )
    code = bench.main(
        ["--out", str(tmp_path), "--no-run", "--settings", "avg3:selection_average=3"]
    )
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())["avg3"]
    for mode in ("fixed", "varied"):
        for key, index in (("test", 0), ("target_all", 1)):
            diffs = [
                p[index] - b[index]
                for p, b in zip(uar[(mode, "proposed")], uar[(mode, "baseline2")])
            ]
            assert summary[mode][key]["std"] == pytest.approx(np.std(diffs, ddof=1))
            assert summary[mode][key]["mean"] == pytest.approx(np.mean(diffs))
    assert summary["fixed"]["overrides"] == ["--selection_average=3"]
    out = capsys.readouterr().out
    assert "split fixed" in out and "split varied" in out and "avg3" in out
    assert bench.main(["--out", str(tmp_path), "--no-run", "--settings", "avg3"]) == 2
    assert "NAME:key=value" in capsys.readouterr().err
