"""From the runs' prediction files to the tables' intervals and tests.

:class:`PredictionStore` reads each run's ``predictions.csv`` (once);
:func:`cell_intervals` adds to a summary the bootstrap interval of every
cell (:mod:`.intervals`); :func:`comparison_statistics` gives a paired
comparison's interval and test (:mod:`.significance`) for one column.

A cell gets an interval only when every one of its seeds has predictions
(a run without them, e.g. an old run, leaves its cell with the mean and the
seed spread only) and when the predictions reproduce the results.json
score (else the files are of another run: the cell is left without an
interval and :attr:`PredictionStore.problems` says why).

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from zsser_modules.predictions import PredictionsError, read_predictions
from zsser_modules.results_table.intervals import (
    BOOTSTRAP_METRICS,
    BOOTSTRAP_SEED,
    N_BOOTSTRAP,
    Column,
    align_predictions,
    bootstrap_interval,
)
from zsser_modules.results_table.significance import (
    N_PERMUTATIONS,
    PERMUTATION_SEED,
    paired_permutation_test,
    seed_t_test,
)
from zsser_modules.results_table.summary import AVG, _per_seed_average

#: Columns :func:`cell_intervals` adds to a summary.
INTERVAL_COLUMNS: tuple[str, ...] = (
    "uar_low",
    "uar_high",
    "macro_f1_low",
    "macro_f1_high",
    "n_speakers",
)

#: A reproduced score may differ from results.json by this much (rounding).
TOLERANCE = 1e-4


class PredictionStore:
    """The prediction files of a run table, read on demand and kept.

    Arguments
    ---------
    df : pandas.DataFrame
        Run table (:func:`~.runs.collect_results`; its ``predictions``
        column, absent or None: no predictions).

    Attributes
    ----------
    problems : list of str
        Files that could not be used, and why.
    """

    def __init__(self, df: pd.DataFrame):
        self.paths: dict[tuple, str] = {}
        if "predictions" in df.columns:
            for variant, pair, seed, path in zip(
                df["variant"], df["pair"], df["seed"], df["predictions"]
            ):
                if isinstance(path, str) and path:
                    self.paths[(variant, pair, int(seed))] = path
        self._frames: dict[tuple, pd.DataFrame | None] = {}
        self.problems: list[str] = []
        #: Results of :func:`comparison_statistics`, by its arguments.
        self.statistics: dict[tuple, dict] = {}

    def __bool__(self) -> bool:
        return bool(self.paths)

    def frame(self, variant: str, pair: str, seed: int) -> pd.DataFrame | None:
        """The predictions of one run (None: none, or unusable)."""
        key = (variant, pair, int(seed))
        if key not in self._frames:
            path = self.paths.get(key)
            frame = None
            if path is not None:
                try:
                    frame = read_predictions(path)
                except PredictionsError as error:
                    self.problems.append(str(error))
            self._frames[key] = frame
        return self._frames[key]

    def frames(self, variant: str, pair: str, seeds: Sequence[int]) -> list | None:
        """The predictions of the given seeds, or None if one lacks them."""
        frames = [self.frame(variant, pair, seed) for seed in seeds]
        return None if any(f is None for f in frames) or not frames else frames


def _column(store, where, frames, n_variant, reference, slot=None):
    """A :class:`Column` from aligned runs (the variant's, then the reference's)."""
    try:
        labels, speakers, preds, classes, ids = align_predictions(frames)
    except ValueError as error:
        store.problems.append(f"{where}: {error}")
        return None
    if not ids:
        store.problems.append(f"{where}: the runs have no test utterance in common.")
        return None
    return Column(
        labels,
        speakers,
        preds[:n_variant],
        reference=preds[n_variant:] if reference else None,
        n_classes=len(classes),
        key="\n".join(ids),
        slot=slot,
    )


def _columns(
    store: PredictionStore,
    variant: str,
    pairs: Sequence[str],
    seeds: Sequence[int],
    reference: str | None = None,
) -> list[Column] | None:
    """The :class:`Column` s of some pairs (None if some run lacks predictions).

    One column per pair when every seed was tested on the same utterances;
    one column per pair and seed (``slot``) when the test set changes with
    the seed (a split that follows the seed).
    """
    columns = []
    for pair in pairs:
        frames = store.frames(variant, pair, seeds)
        other = store.frames(reference, pair, seeds) if reference else []
        if frames is None or other is None:
            return None
        where = f"{variant}{' − ' + reference if reference else ''} {pair}"
        id_sets = {frozenset(frame["ID"]) for frame in frames + other}
        if len(id_sets) == 1:
            column = _column(store, where, frames + other, len(seeds), reference)
            if column is None:
                return None
            column.group = pair
            columns.append(column)
            continue
        for slot in range(len(seeds)):  # a test set per seed
            runs = [frames[slot]] + ([other[slot]] if reference else [])
            column = _column(store, where, runs, 1, reference, slot=slot)
            if column is None:
                return None
            column.group = pair
            columns.append(column)
    return columns


def _reproduces(interval, expected: float, where: str, store) -> bool:
    """Whether the predictions give results.json's score; else note it."""
    if not np.isfinite(expected) or abs(interval.estimate - expected) <= TOLERANCE:
        return True
    store.problems.append(
        f"{where}: the predictions give {100 * interval.estimate:.2f}, results.json "
        f"{100 * expected:.2f}; they are of another run (rerun it to rewrite them)."
    )
    return False


def cell_intervals(
    df: pd.DataFrame,
    summary: pd.DataFrame,
    store: PredictionStore | None = None,
    n_boot: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """Add the bootstrap interval of every cell to a summary.

    Arguments
    ---------
    df : pandas.DataFrame
        Run table (:func:`~.runs.collect_results`).
    summary : pandas.DataFrame
        Its :func:`~.summary.summarize` output.
    store : PredictionStore, optional
        The prediction files (default: read from ``df``).
    n_boot : int
        Bootstrap replicates.
    seed : int
        Seed of the draws.

    Returns
    -------
    pandas.DataFrame
        ``summary`` with :data:`INTERVAL_COLUMNS` (fractions; NaN, and
        ``n_speakers`` 0, where a cell has no usable predictions).
    """
    store = PredictionStore(df) if store is None else store
    out = summary.copy()
    for column in INTERVAL_COLUMNS:
        out[column] = 0 if column == "n_speakers" else math.nan
    if not store:
        return out
    pairs = [p for p in dict.fromkeys(summary["pair"]) if p != AVG]
    for index, row in summary.iterrows():
        variant, pair = row["variant"], row["pair"]
        runs = df[df["variant"] == variant]
        if pair == AVG:
            seeds = list(_per_seed_average(runs, pairs, "uar").index)
            cell_pairs = pairs
        else:
            seeds = sorted(runs.loc[runs["pair"] == pair, "seed"].astype(int))
            cell_pairs = [pair]
        if not seeds or not cell_pairs:
            continue
        columns = _columns(store, variant, cell_pairs, seeds)
        if columns is None:
            continue
        for metric in BOOTSTRAP_METRICS:
            interval = bootstrap_interval(columns, metric, n_boot=n_boot, seed=seed)
            where = f"{variant} {pair} {metric}"
            if not _reproduces(interval, row[f"{metric}_mean"], where, store):
                continue
            out.loc[index, f"{metric}_low"] = interval.low
            out.loc[index, f"{metric}_high"] = interval.high
            out.loc[index, "n_speakers"] = interval.n_speakers
    return out.astype({"n_speakers": "int64"})


def repeat_of(
    df: pd.DataFrame, variant: str, reference: str, pair: str, seeds: Sequence[int]
) -> str:
    """The column a comparison repeats: both cells' runs copy that column's.

    Arguments
    ---------
    df : pandas.DataFrame
        Run table (with ``same_as``: ``"<pair>/<variant>/seed<k>"``).
    variant : str
        The row compared.
    reference : str
        The row it is compared with.
    pair : str
        The column.
    seeds : sequence of int
        The paired seeds.

    Returns
    -------
    str
        The repeated pair, or ``""`` (a distinct experiment).

    Example
    -------
    >>> df = pd.DataFrame({"variant": ["a", "b"], "pair": "zh_de", "seed": 1,
    ...     "same_as": ["en_de/a/seed1", "en_de/b/seed1"]})
    >>> repeat_of(df, "a", "b", "zh_de", [1])
    'en_de'
    """
    if "same_as" not in df.columns or not seeds:
        return ""
    found = set()
    for name in (variant, reference):
        cell = df[(df["variant"] == name) & (df["pair"] == pair)]
        cell = cell[cell["seed"].astype(int).isin(list(seeds))]
        for key in cell["same_as"]:
            found.add(key.split("/", 1)[0] if isinstance(key, str) and key else "")
    return found.pop() if len(found) == 1 else ""


def comparison_statistics(
    df: pd.DataFrame,
    variant: str,
    reference: str,
    pairs: Sequence[str],
    seeds: Sequence[int],
    store: PredictionStore | None = None,
    n_boot: int = N_BOOTSTRAP,
    n_perm: int = N_PERMUTATIONS,
    weights: Sequence[float] | None = None,
) -> dict:
    """Interval (both metrics) and test (UAR) of one comparison column.

    Arguments
    ---------
    df : pandas.DataFrame
        Run table.
    variant : str
        The row compared (``variant - reference``).
    reference : str
        The row it is compared with.
    pairs : sequence of str
        The pairs the column averages (one pair, or every pair for ``Avg.``).
    seeds : sequence of int
        The paired seeds.
    store : PredictionStore, optional
        The prediction files (default: read from ``df``).
    n_boot : int
        Bootstrap replicates.
    n_perm : int
        Random swaps of the test.
    weights : sequence of float, optional
        Weight of each pair in the test's statistic (default 1 each); a
        repeated pair is merged into its original by the caller, so that one
        experiment is swapped as one.

    Returns
    -------
    dict
        ``uar_estimate`` and ``macro_f1_estimate`` (the difference the
        predictions give), ``uar_low``, ``uar_high``, ``macro_f1_low``,
        ``macro_f1_high``,
        ``p_value`` (the permutation test), ``p_seed_t`` (the t-test over
        the per-seed differences, :func:`~.significance.seed_t_test`),
        ``n_speakers``, ``n_utterances``; NaN (0) without predictions.
    """
    store = PredictionStore(df) if store is None else store
    memo = (variant, reference, tuple(pairs), tuple(seeds), n_boot, n_perm)
    memo += (tuple(weights) if weights is not None else None,)
    if memo not in store.statistics:
        store.statistics[memo] = _comparison_statistics(
            store, variant, reference, pairs, seeds, n_boot, n_perm, weights
        )
    return dict(store.statistics[memo])


def _comparison_statistics(
    store, variant, reference, pairs, seeds, n_boot, n_perm, weights
):
    """:func:`comparison_statistics`, computed."""
    result = {
        "uar_estimate": math.nan,
        "macro_f1_estimate": math.nan,
        "uar_low": math.nan,
        "uar_high": math.nan,
        "macro_f1_low": math.nan,
        "macro_f1_high": math.nan,
        "p_value": math.nan,
        "p_seed_t": math.nan,
        "n_speakers": 0,
        "n_utterances": 0,
    }
    if not store or not seeds or not pairs:
        return result
    columns = _columns(store, variant, pairs, list(seeds), reference=reference)
    if columns is None:
        return result
    for metric in BOOTSTRAP_METRICS:
        interval = bootstrap_interval(columns, metric, n_boot=n_boot)
        result[f"{metric}_estimate"] = interval.estimate
        result[f"{metric}_low"], result[f"{metric}_high"] = interval.low, interval.high
        result["n_speakers"] = interval.n_speakers
        result["n_utterances"] = interval.n_utterances
    tested = columns
    if weights is not None:
        by_pair = dict(zip(pairs, weights))
        tested = []
        for column in columns:
            if by_pair[column.group] > 0:
                column.weight = float(by_pair[column.group])
                tested.append(column)
    result["p_value"] = paired_permutation_test(
        tested, n_perm=n_perm, seed=PERMUTATION_SEED
    ).p_value
    result["p_seed_t"] = seed_t_test(tested).p_value
    return result
