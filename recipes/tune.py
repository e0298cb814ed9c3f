#!/usr/bin/env python3
"""Zero-shot-safe tuning of the loss weights: leave-one-language-out, Optuna.

For a target language T, the runs of a variant train on a pool of languages
(``zsser_modules.data_prep.zero_shot.training_languages``: for proposed
en->de on the five languages, en, zh, fr, ur). This command tunes ``supcon_weight``,
``adv_weight``, ``temperature`` and ``cross_lingual_weight`` (the keys of the
loss terms the variant trains, ``zsser_modules.tuning.TUNABLE``) on that pool
alone: each pool language H in turn plays the unseen target (fold H trains
on the pool minus H, selects its epoch on their validation speakers, and is
tested on all of H), and a trial's score is the mean over folds of the
held-out language's UAR (or macro-F1). T is not in any fold's language list,
so no fold prepares, reads or caches any utterance of T.

Every pair with the same target shares the pool (en->de and zh->de train on
en, zh, fr, ur), so the result is one entry per target, written into a YAML
file that the recipe takes::

    python recipes/tune.py hparams/demo.yaml --target de --n-trials 12 \
        --epochs 6 -- --prep_folder=results/demo/data
    python recipes/train.py hparams/demo.yaml \
        --tuned_weights=results/demo/tuning/tuned_weights.yaml

Optuna's TPE sampler, seeded per target (:func:`sampler_seed`: ``--seed``
and the target, so studies of different targets draw different trials),
SQLite storage in the study folder: the same
command resumes a preempted study (finished fold runs are reused, a trial
cut short is retried with the same values once its heartbeat is stale) and
a larger ``--n-trials`` extends it. One process per study.

The best of a few single-seed trials at a few epochs flatters itself (the
winner's curse). ``--reevaluate`` then trains the chosen weights and the
file's own weights again on the same folds with fresh seeds
(``--reevaluate-seeds``, default 1-5, the grid's) and the grid's epoch count
(``--reevaluate-epochs``, default the file's ``number_of_epochs``), and
reports the paired difference per seed; it goes into the target's entry
(``reevaluation``) and ``<study>/reevaluation.json``. The target is still
never used. The test-set comparison is then a grid of each (see
docs/recipe.md, Zero-shot-safe tuning)::

    python recipes/tune.py hparams/demo.yaml --target de --reevaluate \
        -- --prep_folder=results/demo/data

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import scipy.stats
import speechbrain as sb

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python recipes/tune.py` from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from zsser_modules.data_prep.zero_shot import SettingError, training_languages  # noqa: E402
from zsser_modules.optional import extra, missing_extra_message  # noqa: E402
from zsser_modules.tuning import (  # noqa: E402
    MATCHED_KEYS,
    TUNABLE,
    _resolved_tree,
    adaptation_terms,
    read_tuned_file,
    tuned_value,
    write_entry,
)

#: Recipe keys the tuner sets for every fold run (not allowed after ``--``).
RESERVED = (
    "source_lang",
    "target_lang",
    "variant",
    "output_folder",
    "settings_folder",
    "number_of_epochs",
    "seed",
    "tuned_weights",
    *TUNABLE,
)
#: Default grace period (seconds): a trial whose process died (no heartbeat
#: for that long) is failed and retried with the same values.
GRACE_S = 60


def sampler_seed(seed: int, target: str) -> int:
    """The TPE sampler's seed of a study: one per target, from ``--seed``.

    Arguments
    ---------
    seed : int
        The command's ``--seed``.
    target : str
        The target language.

    Returns
    -------
    int
        ``crc32(f"{seed}/{target}")`` (31 bits): stable across runs and
        Python versions, different for every target.

    Example
    -------
    >>> sampler_seed(1234, "de") == sampler_seed(1234, "de")
    True
    >>> len({sampler_seed(1234, t) for t in ("de", "fr", "zh", "en", "ur")})
    5
    """
    return zlib.crc32(f"{seed}/{target}".encode()) & 0x7FFFFFFF


def _short_hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recipes/tune.py",
        description="Tune the loss weights of a setting by leave-one-language-out "
        "over its training languages (the target never used), with Optuna. "
        "Arguments after `--` go to every fold run of recipes/train.py.",
    )
    parser.add_argument("hparams", help="hyperparameter file, e.g. hparams/demo.yaml")
    parser.add_argument("--target", required=True, help="target language (never used)")
    parser.add_argument(
        "--source",
        default=None,
        help="source language (default: the file's source_lang, or the first "
        "pool language); only baseline1 depends on it",
    )
    parser.add_argument("--variant", default="proposed", help="default: proposed")
    parser.add_argument("--n-trials", type=int, default=12, help="completed trials")
    parser.add_argument(
        "--epochs", type=int, default=6, help="number_of_epochs of each fold run"
    )
    parser.add_argument(
        "--folds",
        default=None,
        help="held-out pool languages, comma-separated (default: every one)",
    )
    parser.add_argument(
        "--metric", choices=("uar", "macro_f1"), default="uar", help="default: uar"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=1234,
        help="seed of the fold runs; the TPE sampler's seed is derived from it "
        "and the target (one per target)",
    )
    parser.add_argument(
        "--reevaluate",
        action="store_true",
        help="after tuning, train the chosen weights and the file's own on the "
        "same folds with fresh seeds and the grid's epoch count, and report the "
        "paired difference (written into the entry as 'reevaluation')",
    )
    parser.add_argument(
        "--reevaluate-seeds",
        default="1-5",
        help="seeds of --reevaluate (default 1-5, the grid's; comma-separated "
        "or ranges)",
    )
    parser.add_argument(
        "--reevaluate-epochs",
        type=int,
        default=None,
        help="number_of_epochs of --reevaluate (default: the hyperparameter "
        "file's, as the grid trains)",
    )
    parser.add_argument(
        "--startup-trials",
        type=int,
        default=4,
        help="random trials before TPE models the results (default 4; the "
        "first trial is always the file's own weights)",
    )
    parser.add_argument(
        "--grace-period",
        type=int,
        default=GRACE_S,
        help="seconds without heartbeat after which a trial whose process died "
        f"is retried with the same values (default {GRACE_S})",
    )
    parser.add_argument(
        "--study-root",
        default=None,
        help="folder of the studies (default: <results_root>/tuning)",
    )
    parser.add_argument(
        "--tuned-file",
        default=None,
        help="tuned-weights YAML to write this target's entry into (default: "
        "<study-root>/tuned_weights.yaml)",
    )
    return parser


def _split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def _fail(message: str) -> int:
    print(f"recipes/tune.py: {message}", file=sys.stderr)
    return 2


class Tuning:
    """A leave-one-language-out study of one target (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, extra: list[str]):
        self.args = args
        self.extra = list(extra)
        hparams_file, _, overrides = sb.parse_arguments([args.hparams, *extra])
        tree = _resolved_tree(hparams_file, overrides)
        self.tree = tree
        target, variant = args.target, args.variant
        languages = list(tree["languages"])
        if target not in languages:
            raise ValueError(
                f"--target {target} is not in languages={languages}; add it to "
                "the pool (e.g. -- --languages=[...])."
            )
        source = args.source or tree.get("source_lang")
        if source in (None, target) or source not in languages:
            source = next(lang for lang in languages if lang != target)
        protocol = tree.get("protocol", "speaker")
        pool = training_languages(source, target, variant, languages, protocol)
        self.terms = _variant_terms(variant) + adaptation_terms(tree)
        self.space = {k: v for k, v in TUNABLE.items() if v["term"] in self.terms}
        if not self.space:
            raise ValueError(
                f"variant {variant} trains no auxiliary loss and no adapter: nothing "
                "to tune (the loss weights serve no_supcon, no_spkadv and proposed; "
                "the adapter settings any variant with an adapted encoder)."
            )
        if target in pool:
            raise ValueError(
                f"variant {variant} trains on the target {target}: tuning it "
                "without the target is impossible."
            )
        if len(pool) < 2:
            raise ValueError(
                f"the training pool {pool} has one language: leave-one-language-"
                "out needs two or more (add languages, or another variant)."
            )
        folds = args.folds.split(",") if args.folds else list(pool)
        outside = [lang for lang in folds if lang not in pool]
        if outside:
            raise ValueError(
                f"--folds {outside} are not training languages of this setting "
                f"(pool {pool}; the target {target} is never a fold)."
            )
        self.target, self.source, self.variant = target, source, variant
        self.pool, self.folds = pool, folds
        self.defaults = {key: tuned_value(key, tree[key]) for key in self.space}
        self.file_epochs = int(tree["number_of_epochs"])
        self.settings = {
            "hparams": str(Path(args.hparams).resolve()),
            "target": target,
            "variant": variant,
            "pool": pool,
            "folds": folds,
            "epochs_per_trial": args.epochs,
            "metric": args.metric,
            "seed": args.seed,
            "sampler_seed": sampler_seed(args.seed, target),
            "startup_trials": args.startup_trials,
            "search_space": self.space,
            # what the weights must match in a run that takes them (checked
            # by zsser_modules.tuning.tuned_overrides)
            "setting": {key: tree.get(key) for key in MATCHED_KEYS},
            "recipe_overrides": self.extra,
        }
        key = _short_hash(self.settings)
        root = Path(args.study_root or Path(tree["results_root"]) / "tuning")
        self.folder = root / f"pool-{'.'.join(sorted(pool))}" / f"{variant}-{key}"
        self.study_name = f"{target}-{variant}-{key}"
        self.storage_url = f"sqlite:///{(self.folder / 'study.db').resolve()}"
        self.tuned_file = Path(args.tuned_file or root / "tuned_weights.yaml")

    def fold_folder(
        self,
        params: dict[str, float],
        held_out: str,
        seed: int | None = None,
        epochs: int | None = None,
    ) -> Path:
        """Output folder of a fold run (keyed by the values: a retry reuses it).

        A trial's runs (``seed``, ``epochs`` None: the study's) go under
        ``runs/``; a re-evaluation's under ``reevaluation/``, keyed by the
        values, the epochs and the seed.
        """
        if seed is None and epochs is None:
            return self.folder / "runs" / _short_hash(params) / held_out
        key = _short_hash({"params": params, "epochs": epochs})
        return self.folder / "reevaluation" / key / f"seed{seed}" / held_out

    def fold_argv(
        self,
        params: dict[str, float],
        held_out: str,
        seed: int | None = None,
        epochs: int | None = None,
    ) -> list[str]:
        """Command line of recipes/train.py for one fold of one trial.

        ``seed`` and ``epochs`` (a re-evaluation): instead of the study's.
        """
        source = self.source if self.source != held_out else None
        if source is None:
            source = next(lang for lang in self.pool if lang != held_out)
        folder = self.fold_folder(params, held_out, seed, epochs)
        return [
            self.args.hparams,
            *[a for a in self.extra if not a.startswith("--languages")],
            f"--languages=[{','.join(self.pool)}]",
            f"--source_lang={source}",
            f"--target_lang={held_out}",
            f"--variant={self.variant}",
            f"--seed={self.args.seed if seed is None else seed}",
            f"--number_of_epochs={self.args.epochs if epochs is None else epochs}",
            f"--output_folder={folder}",
            f"--settings_folder={self.folder / 'settings'}",
            "--diagnostics=False",
            "--tsne_per_language=0",
            "--noprogressbar",
            *(f"--{key}={value!r}" for key, value in params.items()),
        ]

    def run_fold(
        self,
        params: dict[str, float],
        held_out: str,
        seed: int | None = None,
        epochs: int | None = None,
    ) -> dict:
        """Train and test one fold (reused if that run finished); its results."""
        from recipes import train

        train.main(self.fold_argv(params, held_out, seed, epochs))
        results = self.fold_folder(params, held_out, seed, epochs) / "results.json"
        return json.loads(results.read_text(encoding="utf-8"))

    def objective(self, trial) -> float:
        """Mean over folds of the held-out language's metric."""
        params = {
            key: (trial.suggest_int if spec.get("int") else trial.suggest_float)(
                key, spec["low"], spec["high"], log=spec["log"]
            )
            for key, spec in self.space.items()
        }
        scores = {}
        for held_out in self.folds:
            results = self.run_fold(params, held_out)
            check_fold(results, held_out, self.target)
            scores[held_out] = fold_score(results, self.args.metric)
        trial.set_user_attr("per_fold", scores)
        return sum(scores.values()) / len(scores)

    def study(self):
        """The Optuna study (created, or loaded to resume)."""
        with extra("tune", "tuning"):
            import optuna
            from optuna import storages

        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "settings.json").write_text(
            json.dumps(self.settings, indent=2, default=str) + "\n", encoding="utf-8"
        )
        # A stale trial (its process died) is failed, and a copy with the
        # same values is queued (Optuna >= 5: RetryHeartbeatStaleTrialCallback,
        # before: RetryFailedTrialCallback).
        with warnings.catch_warnings():  # heartbeats are "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
                retry = storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
                retry = {"heartbeat_stale_trial_callback": retry}
            else:  # pragma: no cover - Optuna 4
                retry = {"failed_trial_callback": storages.RetryFailedTrialCallback(3)}
            storage = storages.RDBStorage(
                self.storage_url,
                heartbeat_interval=max(1, self.args.grace_period // 3),
                grace_period=self.args.grace_period,
                **retry,
            )
        sampler = optuna.samplers.TPESampler(
            seed=self.settings["sampler_seed"],
            n_startup_trials=self.args.startup_trials,
        )
        study = optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            sampler=sampler,
            direction="maximize",
            load_if_exists=True,
        )
        if not study.trials:  # trial 0: the weights of the hyperparameter file
            study.enqueue_trial(self.defaults, user_attrs={"defaults": True})
        return study

    def run(self) -> dict:
        """Complete ``n_trials`` trials, write the best values; return the entry."""
        with extra("tune", "tuning"):
            import optuna

        study = self.study()
        start = time.time()
        done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
        print(
            f"Tuning {', '.join(self.space)} for target {self.target} (variant "
            f"{self.variant}): leave-one-language-out over the training pool "
            f"{self.pool}, folds {self.folds}; {self.target} is never used. Every "
            f"pair with target {self.target} shares this pool and this result. "
            f"Study {self.folder} ({done}/{self.args.n_trials} trials done)."
        )
        while done < self.args.n_trials:
            study.optimize(self.objective, n_trials=1)
            done = sum(
                t.state == optuna.trial.TrialState.COMPLETE for t in study.trials
            )
        best = study.best_trial
        default = [
            t
            for t in study.trials
            if t.user_attrs.get("defaults") and t.value is not None
        ]
        objective = {
            "metric": self.args.metric,
            "best_mean": best.value,
            "best_per_fold": best.user_attrs.get("per_fold"),
            "best_trial": best.number,
            "defaults": self.defaults,
            "defaults_mean": default[0].value if default else None,
            "n_complete_trials": done,
        }
        study_record = {
            "library": f"optuna {optuna.__version__}",
            "sampler": "TPESampler",
            "name": self.study_name,
            "storage": self.storage_url,
            "folder": str(self.folder.resolve()),
            **self.settings,
        }
        write_entry(
            self.tuned_file,
            self.target,
            best.params,
            self.pool,
            objective=objective,
            study=study_record,
        )
        print(
            f"Best mean held-out {self.args.metric} {best.value:.4f} (trial "
            f"{best.number}; the file's own weights: "
            f"{objective['defaults_mean'] if default else float('nan'):.4f}) with "
            f"{best.params}. Wrote entry '{self.target}' of {self.tuned_file} "
            f"({time.time() - start:.0f} s this call). Use it with: "
            f"python recipes/train.py {self.args.hparams} "
            f"--tuned_weights={self.tuned_file}"
        )
        return {"values": best.params, "pool": self.pool, "objective": objective}

    def reevaluate(self, tuned: dict[str, float]) -> dict:
        """The tuned weights against the file's own on fresh seeds (see above).

        Arguments
        ---------
        tuned : dict
            The chosen values (the entry's ``values``).

        Returns
        -------
        dict
            ``seeds``, ``epochs``, ``folds``, ``metric``; ``tuned`` and
            ``defaults``: per seed the mean over folds, and per fold per
            seed; ``difference``: per seed tuned - defaults, its mean, sample
            std and the seeds where tuned was higher; ``verdict``.
        """
        from zsser_modules.grid_plan import parse_seeds

        seeds = parse_seeds(self.args.reevaluate_seeds)
        epochs = self.args.reevaluate_epochs or self.file_epochs
        metric = self.args.metric
        arms = {"tuned": tuned, "defaults": self.defaults}
        scores: dict[str, dict] = {arm: {} for arm in arms}
        for seed in seeds:
            for arm, params in arms.items():
                per_fold = {}
                for held_out in self.folds:
                    results = self.run_fold(params, held_out, seed, epochs)
                    check_fold(results, held_out, self.target)
                    per_fold[held_out] = fold_score(results, metric)
                scores[arm][seed] = per_fold
        means = {
            arm: {k: sum(f.values()) / len(f) for k, f in per_seed.items()}
            for arm, per_seed in scores.items()
        }
        diffs = [means["tuned"][k] - means["defaults"][k] for k in seeds]
        mean_diff = sum(diffs) / len(diffs)
        p_value = None
        if len(diffs) > 1 and statistics.stdev(diffs) > 0:
            p_value = float(
                scipy.stats.ttest_1samp(diffs, 0.0, alternative="greater").pvalue
            )
        record = {
            "seeds": seeds,
            "epochs": epochs,
            "folds": self.folds,
            "metric": metric,
            "tuned_values": dict(tuned),
            "default_values": dict(self.defaults),
            "tuned": {"per_seed": means["tuned"], "per_fold": scores["tuned"]},
            "defaults": {
                "per_seed": means["defaults"],
                "per_fold": scores["defaults"],
            },
            "difference": {
                "per_seed": dict(zip(seeds, diffs)),
                "mean": mean_diff,
                "std": statistics.stdev(diffs) if len(diffs) > 1 else None,
                "tuned_higher": sum(d > 0 for d in diffs),
                # paired t-test over the fresh seeds (one-sided: tuned higher)
                "p_value": p_value,
            },
            "verdict": "the tuned weights are higher over fresh seeds "
            f"(paired t-test over {len(diffs)} seeds, p = {p_value:.3g})"
            if p_value is not None and p_value <= 0.05
            else "the tuned weights are not shown higher over fresh seeds "
            "(paired t-test over seeds, p > 0.05 or too few seeds): keep the "
            "file's own weights",
        }
        (self.folder / "reevaluation.json").write_text(
            json.dumps(record, indent=2) + "\n", encoding="utf-8"
        )
        return record


def reevaluation_line(record: dict) -> str:
    """One line summing up :meth:`Tuning.reevaluate`'s record.

    Example
    -------
    >>> print(reevaluation_line({"seeds": [1, 2], "epochs": 20, "folds": ["fr"],
    ...     "metric": "uar", "tuned": {"per_seed": {1: 0.5, 2: 0.6}},
    ...     "defaults": {"per_seed": {1: 0.5, 2: 0.4}},
    ...     "difference": {"mean": 0.1, "std": 0.1414, "tuned_higher": 1},
    ...     "verdict": "v"}))
    Re-evaluated on seeds [1, 2] at 20 epochs (folds ['fr']): held-out uar tuned 55.0, defaults 45.0, tuned - defaults +10.0 (std 14.1 over seeds; tuned higher for 1/2 seeds): v.
    """  # noqa: E501
    seeds = record["seeds"]
    diff = record["difference"]

    def mean(arm):
        values = list(record[arm]["per_seed"].values())
        return 100 * sum(values) / len(values)

    std = "n/a" if diff["std"] is None else f"{100 * diff['std']:.1f}"
    return (
        f"Re-evaluated on seeds {seeds} at {record['epochs']} epochs (folds "
        f"{record['folds']}): held-out {record['metric']} tuned {mean('tuned'):.1f}, "
        f"defaults {mean('defaults'):.1f}, tuned - defaults "
        f"{100 * diff['mean']:+.1f} (std {std} over seeds; tuned higher for "
        f"{diff['tuned_higher']}/{len(seeds)} seeds): {record['verdict']}."
    )


def check_fold(results: dict, held_out: str, target: str) -> None:
    """Stop if a fold's run did not hold out ``held_out`` or saw the real target.

    Example
    -------
    >>> check_fold({"target": "fr", "training_languages": ["en", "zh"]}, "fr", "de")
    >>> check_fold({"target": "fr", "training_languages": ["de"]}, "fr", "de")
    Traceback (most recent call last):
    ...
    RuntimeError: A tuning fold must hold out fr and never train on the target de; its run had target fr and trained on ['de'].
    """  # noqa: E501
    if results["target"] != held_out or target in results["training_languages"]:
        raise RuntimeError(
            f"A tuning fold must hold out {held_out} and never train on the target "
            f"{target}; its run had target {results['target']} and trained on "
            f"{results['training_languages']}."
        )


def fold_score(results: dict, metric: str) -> float:
    """A fold's score: on the held-out language's whole corpus where it was scored.

    Under the paper protocol a fold's ``test`` split is a fixed-count split
    (38 utterances for EmoDB); the whole held-out language, which the fold
    never trained on either, is ``target_all``.

    Example
    -------
    >>> fold_score({"uar": 0.5, "target_all": {"uar": 0.6}}, "uar")
    0.6
    >>> fold_score({"uar": 0.5}, "uar")
    0.5
    """
    whole = results.get("target_all") or {}
    return float(whole.get(metric, results[metric]))


def _variant_terms(variant: str) -> tuple[str, ...]:
    from zsser_modules.run.variants import VARIANT_LOSSES

    if variant not in VARIANT_LOSSES:
        raise ValueError(
            f"--variant must be one of {sorted(VARIANT_LOSSES)}, got {variant!r}."
        )
    return VARIANT_LOSSES[variant]


def main(argv: list[str] | None = None) -> int:
    """Command line (see ``--help``); returns the exit code."""
    own, extra = _split_argv(list(sys.argv[1:] if argv is None else argv))
    args = _parser().parse_args(own)
    reserved = [
        a for a in extra if a.startswith("--") and a[2:].split("=")[0] in RESERVED
    ]
    if reserved:
        return _fail(
            f"{reserved} after `--` are set by the tuner for every fold run; use "
            "its own options (--target, --variant, --epochs, --seed, ...)."
        )
    try:
        import optuna  # noqa: F401
    except ImportError:
        return _fail(missing_extra_message("tune", "tuning", "optuna"))
    try:
        tuning = Tuning(args, extra)
        if args.reevaluate:
            from zsser_modules.grid_plan import parse_seeds

            parse_seeds(args.reevaluate_seeds)
            if args.reevaluate_epochs is not None and args.reevaluate_epochs < 1:
                raise ValueError(
                    f"--reevaluate-epochs must be at least 1, got "
                    f"{args.reevaluate_epochs}."
                )
    except (ValueError, SettingError) as error:
        return _fail(str(error))
    entry = tuning.run()
    if args.reevaluate:
        record = tuning.reevaluate(entry["values"])
        print(reevaluation_line(record))
        current = read_tuned_file(tuning.tuned_file)[tuning.target]
        extra = {k: v for k, v in current.items() if k not in ("values", "pool")}
        write_entry(
            tuning.tuned_file,
            tuning.target,
            current["values"],
            current["pool"],
            **{**extra, "reevaluation": record},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
