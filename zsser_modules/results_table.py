r"""Results tables of a grid of runs: collect, summarise over seeds, write, plot.

Every run of ``recipes/train.py`` writes a ``results.json``. This module
gathers them into one tidy table (one row per run), summarises each cell of
the paper's table over the seeds, and writes the table as Markdown and CSV,
plus a bar chart comparing the variants.

Table shape (as in the paper): one row per variant, one column per language
pair ``S -> T`` and a last column ``Avg.``; one table for UAR and one for
macro-F1. Definitions:

- **Cell** of variant ``v`` and pair ``p``: mean and sample standard
  deviation (``ddof=1``) over the seeds of the per-run values ``x[v, p, s]``.
  With a single seed the standard deviation is undefined: the cell shows the
  mean only (``61.2``), never ``± 0.0``.
- **Avg.** of variant ``v``: for every seed ``s`` that has a run for *every*
  pair of the table, the per-seed average ``a[v, s] = mean_p x[v, p, s]``;
  the cell is the mean and sample standard deviation of ``a[v, s]`` over
  those seeds. Its mean equals the mean of the per-pair means; its standard
  deviation is the seed-to-seed spread of the averaged score (not an average
  of the per-pair spreads). Seeds missing for some pair are left out of it.
- **Expected seeds**: the seeds found anywhere in the results plus the seeds
  asked for (``seeds=``). A cell with fewer seeds than expected is marked
  ``(k/n)``: ``60.0 ± 10.0 (2/3)``. A cell with no run shows ``–``.
- **Repeated experiments**: a run of ``recipes/run_grid.py`` may repeat
  another run's identical experiment instead of training again (all
  variants but baseline1 train on every pool language except the target,
  so ``en_de`` and ``zh_de`` are one experiment). Its ``results.json`` says
  so (:data:`SAME_AS_KEY`); the summary's ``same_as`` names the column whose
  runs a cell repeats, and Markdown marks such cells with ``†``.
- Values are stored as fractions (as in ``results.json``) in the data
  frames and CSV files, and shown in percent with one decimal in Markdown.
- Row order: :data:`VARIANT_ORDER` (baselines, ablations, proposed, then
  the upper bound, which sees the target and is an oracle, not a
  competitor). Column order: the pairs as given, then the others with source
  and target in :data:`zsser_modules.labels.LANGUAGES` order. In each
  column, the best mean among the zero-shot variants (all but
  ``upper_bound``) is in bold.

Command line (rebuild the tables of any folder of runs)::

    python -m zsser_modules.results_table results/grid [--out DIR] [--seeds 1,2,3] \
        [--pairs en_de,zh_fr] [--variants baseline2,proposed]

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd

from .labels import LANGUAGES

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: Name of the last column: the average over the pairs.
AVG = "Avg."
#: Metrics summarised, with their display names.
METRICS: dict[str, str] = {"uar": "UAR", "macro_f1": "Macro-F1"}
#: Canonical row order of the table.
VARIANT_ORDER: tuple[str, ...] = (
    "baseline1",
    "baseline2",
    "no_supcon",
    "no_spkadv",
    "proposed",
    "upper_bound",
)
#: Variants that see the target language in training (never bolded as best).
ORACLE_VARIANTS = frozenset({"upper_bound"})
#: Fixed bar colour of each variant in :func:`plot_variants`.
VARIANT_COLORS = {
    "baseline1": "#bdbdbd",
    "baseline2": "#737373",
    "no_supcon": "#9ecae1",
    "no_spkadv": "#6baed6",
    "proposed": "#d62728",
    "upper_bound": "#2ca02c",
}
_SPARE_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
#: Probes of ``results.json["diagnostics"]`` (zsser_modules.diagnostics)
#: shown in the diagnostics table, with the key of their chance level.
DIAGNOSTICS: dict[str, tuple[str, str]] = {
    "speaker_probe_acc": ("Speaker probe acc.", "speaker_chance"),
    "language_probe_acc": ("Language probe acc.", "language_chance"),
    "emotion_transfer_uar": ("Emotion transfer UAR", "emotion_chance"),
    "emotion_within_uar": ("Within-language emotion UAR", "emotion_chance"),
}
_DIAGNOSTIC_KEYS = tuple(
    dict.fromkeys(
        key for probe, (_, chance) in DIAGNOSTICS.items() for key in (probe, chance)
    )
)
#: Run-table columns of the diagnostics: ``diag_<key>`` (learned embedding)
#: and ``diag_raw_<key>`` (raw frozen encoder features); NaN when absent.
DIAGNOSTIC_COLUMNS: tuple[str, ...] = tuple(
    f"diag_{prefix}{key}" for prefix in ("", "raw_") for key in _DIAGNOSTIC_KEYS
)
#: Columns of the run table returned by :func:`collect_results`.
RUN_COLUMNS: tuple[str, ...] = (
    "pair",
    "source",
    "target",
    "variant",
    "seed",
    "uar",
    "macro_f1",
    "n_test",
    "encoder",
    "path",
    "same_as",
    "note",
    *DIAGNOSTIC_COLUMNS,
)
#: Columns of the summary returned by :func:`summarize`.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "variant",
    "pair",
    "n_seeds",
    "n_expected",
    "uar_mean",
    "uar_std",
    "macro_f1_mean",
    "macro_f1_std",
    "same_as",
)
#: Keys every results.json must hold.
REQUIRED_KEYS: tuple[str, ...] = (
    "source",
    "target",
    "variant",
    "seed",
    "uar",
    "macro_f1",
)
#: Shown for a cell without any run.
EMPTY_CELL = "–"
#: Key of a results.json that repeats another run's identical experiment
#: (written by ``recipes/run_grid.py``; its value is that run's key,
#: ``"<pair>/<variant>/seed<k>"``).
SAME_AS_KEY = "same_experiment_as"
#: Appended in Markdown to a cell whose runs repeat another column's.
SAME_AS_MARK = "†"
#: Files written by :func:`write_tables`, by key.
TABLE_FILES = {
    "markdown": "results.md",
    "runs": "runs.csv",
    "summary_long": "summary_long.csv",
    "summary_wide": "summary_wide.csv",
    "missing": "missing_runs.csv",
    "comparisons": "comparisons.csv",
    "figure": "variants.png",
}
#: Comparisons written by :func:`write_tables`: (variant, reference) pairs.
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("proposed", "baseline1"),
    ("proposed", "baseline2"),
    ("proposed", "no_supcon"),
    ("proposed", "no_spkadv"),
)
#: Columns of :func:`compare_variants`.
COMPARISON_COLUMNS: tuple[str, ...] = (
    "variant",
    "reference",
    "metric",
    "pair",
    "n_seeds",
    "delta_mean",
    "delta_std",
    "spread",
    "n_better",
    "verdict",
)


class InvalidResultError(ValueError):
    """A results.json file is unreadable or lacks what a table needs.

    Example
    -------
    >>> isinstance(InvalidResultError("no uar"), ValueError)
    True
    """


def load_result(path: PathLike) -> dict[str, Any]:
    """Read and check one ``results.json``; return its row of the run table.

    Arguments
    ---------
    path : str or path-like
        A ``results.json`` written by ``recipes/train.py``.

    Returns
    -------
    dict
        The keys of :data:`RUN_COLUMNS`: ``pair`` is ``"<source>_<target>"``,
        ``seed`` an int, ``uar`` and ``macro_f1`` floats in [0, 1], ``n_test``
        an int (or None), ``encoder`` a str (or None), ``path`` the file,
        ``same_as`` the run whose identical experiment this result repeats
        (:data:`SAME_AS_KEY`; None for a run of its own), ``note`` the
        run's data note (e.g. that the corpus is synthetic; None without).

    Raises
    ------
    InvalidResultError
        If the file is not a JSON object, lacks a key of
        :data:`REQUIRED_KEYS`, or holds a metric that is not a number in
        [0, 1] or a seed that is not an integer. The message says which.

    Example
    -------
    >>> path = getfixture("tmp_path") / "results.json"
    >>> _ = path.write_text(json.dumps({"source": "en", "target": "de",
    ...     "variant": "proposed", "seed": 1, "uar": 0.6, "macro_f1": 0.55,
    ...     "n_test": 120}))
    >>> row = load_result(path)
    >>> row["pair"], row["seed"], row["uar"], row["n_test"]
    ('en_de', 1, 0.6, 120)
    >>> _ = path.write_text('{"uar": 0.6}')
    >>> load_result(path)
    Traceback (most recent call last):
    ...
    zsser_modules.results_table.InvalidResultError: ... lacks the key(s) ['source', 'target', 'variant', 'seed', 'macro_f1'] ...
    """  # noqa: E501
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InvalidResultError(
            f"{path}: not a readable JSON file ({error})."
        ) from None
    if not isinstance(data, dict):
        raise InvalidResultError(
            f"{path}: expected a JSON object, found {type(data).__name__}."
        )
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise InvalidResultError(
            f"{path}: lacks the key(s) {missing} (a results.json of "
            "recipes/train.py has them all); was the run interrupted?"
        )
    row: dict[str, Any] = {}
    for key in ("source", "target", "variant"):
        if not isinstance(data[key], str) or not data[key]:
            raise InvalidResultError(
                f"{path}: {key!r} must be a non-empty string, found {data[key]!r}."
            )
        row[key] = data[key]
    seed = data["seed"]
    if (
        isinstance(seed, bool)
        or not isinstance(seed, (int, float))
        or seed != int(seed)
    ):
        raise InvalidResultError(f"{path}: 'seed' must be an integer, found {seed!r}.")
    row["seed"] = int(seed)
    for key in METRICS:
        value = data[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0.0 <= value <= 1.0
        ):
            raise InvalidResultError(
                f"{path}: {key!r} must be a fraction in [0, 1], found {value!r}."
            )
        row[key] = float(value)
    n_test = data.get("n_test")
    row["n_test"] = int(n_test) if isinstance(n_test, (int, float)) else None
    encoder = data.get("encoder")
    row["encoder"] = encoder if isinstance(encoder, str) else None
    same_as = data.get(SAME_AS_KEY)
    row["same_as"] = same_as if isinstance(same_as, str) and same_as else None
    note = data.get("note")
    row["note"] = note if isinstance(note, str) and note else None
    row["pair"] = f"{row['source']}_{row['target']}"
    row["path"] = str(path)
    row.update(_diagnostic_values(data.get("diagnostics")))
    return {column: row[column] for column in RUN_COLUMNS}


def _diagnostic_values(diagnostics: Any) -> dict[str, float]:
    """The :data:`DIAGNOSTIC_COLUMNS` of a run (NaN for what it lacks)."""
    values = {column: math.nan for column in DIAGNOSTIC_COLUMNS}
    if not isinstance(diagnostics, dict):
        return values
    raw = diagnostics.get("raw")
    for prefix, probes in (("", diagnostics), ("raw_", raw)):
        if not isinstance(probes, dict):
            continue
        for key in _DIAGNOSTIC_KEYS:
            value = probes.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values[f"diag_{prefix}{key}"] = float(value)
    return values


def diagnostics_markdown(
    df: pd.DataFrame, variants: Sequence[str] | None = None
) -> str:
    """The representation diagnostics of a run table as a Markdown table.

    One row per variant: for each probe (:data:`DIAGNOSTICS`), the raw frozen
    encoder features' value and the learned embedding's, ``raw → emb``,
    in %, means over the variant's runs (every pair and seed), with the
    standard deviation over runs of the embedding's value. A last row gives
    the chance levels (mean over runs).

    Arguments
    ---------
    df : pandas.DataFrame
        Run table (:func:`collect_results`).
    variants : sequence of str, optional
        Rows to show, in order (default: those with diagnostics).

    Returns
    -------
    str
        Caption and table, or ``""`` when no run has diagnostics.

    Example
    -------
    >>> df = pd.DataFrame({"variant": ["baseline2", "proposed"],
    ...     "diag_speaker_probe_acc": [0.6, 0.3], "diag_speaker_chance": 0.25,
    ...     "diag_raw_speaker_probe_acc": [0.9, 0.9]})
    >>> print(diagnostics_markdown(df))  # doctest: +NORMALIZE_WHITESPACE
    **Representation diagnostics (%)**: linear probes, raw frozen encoder features → learned embedding; mean over runs (± std of the embedding's value over runs, pairs and seeds)
    <BLANKLINE>
    | Variant | Speaker probe acc. | runs |
    | :-- | --: | --: |
    | baseline2 | 90.0 → 60.0 | 1 |
    | proposed | 90.0 → 30.0 | 1 |
    | chance | 25.0 | |
    """  # noqa: E501
    probes = [p for p in DIAGNOSTICS if f"diag_{p}" in df.columns]
    probes = [p for p in probes if df[f"diag_{p}"].notna().any()]
    if not probes:
        return ""
    found = df[df[[f"diag_{p}" for p in probes]].notna().any(axis=1)]
    variants = order_variants(found["variant"]) if variants is None else variants
    lines = [
        "**Representation diagnostics (%)**: linear probes, raw frozen encoder "
        "features → learned embedding; mean over runs (± std of the embedding's "
        "value over runs, pairs and seeds)",
        "",
        "| Variant | " + " | ".join(DIAGNOSTICS[p][0] for p in probes) + " | runs |",
        "| :-- |" + " --: |" * (len(probes) + 1),
    ]

    def mean(frame, column):
        if column not in frame.columns:
            return math.nan
        values = frame[column].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        return float(values.mean()) if values.size else math.nan

    for variant in variants:
        runs = found[found["variant"] == variant]
        if runs.empty:
            continue
        cells = []
        for probe in probes:
            values = runs[f"diag_{probe}"].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            _, std = _mean_std(values)
            text = format_cell(mean(runs, f"diag_{probe}"), std, len(values), 0)
            raw = mean(runs, f"diag_raw_{probe}")
            cells.append(f"{100 * raw:.1f} → {text}" if np.isfinite(raw) else text)
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {len(runs)} |")
    chance = [mean(found, f"diag_{DIAGNOSTICS[p][1]}") for p in probes]
    chance_text = [f"{100 * c:.1f}" if np.isfinite(c) else EMPTY_CELL for c in chance]
    lines.append("| chance | " + " | ".join(chance_text) + " | |")
    return "\n".join(lines)


def run_notes(df: pd.DataFrame) -> list[str]:
    """The distinct data notes of a run table, e.g. that a corpus is synthetic.

    The tables and the figure repeat them, so that results on the built-in
    synthetic corpus are never shown without saying so.

    Arguments
    ---------
    df : pandas.DataFrame
        Run table (:func:`collect_results`).

    Returns
    -------
    list of str
        Sorted; empty if no run has a note (or the table has no ``note``).

    Example
    -------
    >>> run_notes(pd.DataFrame({"note": [None, "synthetic corpus", None]}))
    ['synthetic corpus']
    """
    if "note" not in df.columns:
        return []
    return sorted({note for note in df["note"] if isinstance(note, str) and note})


def _empty_runs() -> pd.DataFrame:
    """An empty run table with the columns and dtypes of a filled one."""
    frame = pd.DataFrame({column: pd.Series(dtype=object) for column in RUN_COLUMNS})
    return frame.astype({"seed": "int64", "uar": "float64", "macro_f1": "float64"})


def collect_results(root: PathLike) -> pd.DataFrame:
    """Gather every ``results.json`` under ``root`` into a tidy run table.

    Files that cannot be used (see :func:`load_result`) are skipped with a
    logged warning; their paths and reasons are kept in
    ``frame.attrs["skipped"]`` (a list of ``(path, reason)``), and
    :func:`write_tables` reports them.

    Arguments
    ---------
    root : str or path-like
        Folder searched recursively (e.g. a grid folder).

    Returns
    -------
    pandas.DataFrame
        One row per run, columns :data:`RUN_COLUMNS`, sorted by pair,
        variant and seed (``uar``, ``macro_f1`` as fractions).

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder.

    Example
    -------
    >>> root = getfixture("tmp_path")
    >>> for seed, uar in [(1, 0.5), (2, 0.7)]:
    ...     run = root / "en_de" / "proposed" / f"seed{seed}"
    ...     run.mkdir(parents=True)
    ...     _ = (run / "results.json").write_text(json.dumps({"source": "en",
    ...         "target": "de", "variant": "proposed", "seed": seed, "uar": uar,
    ...         "macro_f1": uar - 0.1, "n_test": 100}))
    >>> df = collect_results(root)
    >>> print(df[["pair", "variant", "seed", "uar"]].to_string(index=False))
     pair  variant  seed  uar
    en_de proposed     1  0.5
    en_de proposed     2  0.7
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"No folder '{root}': give the folder that holds the runs (e.g. the "
            "grid folder of recipes/run_grid.py)."
        )
    rows, skipped = [], []
    for path in sorted(root.rglob("results.json")):
        try:
            rows.append(load_result(path))
        except InvalidResultError as error:
            skipped.append((str(path), str(error)))
    if skipped:
        logger.warning(
            "collect_results: skipped %d unusable results.json file(s) under %s, "
            "e.g. %s",
            len(skipped),
            root,
            skipped[0][1],
        )
    frame = pd.DataFrame(rows, columns=list(RUN_COLUMNS)) if rows else _empty_runs()
    frame = frame.sort_values(["pair", "variant", "seed"], kind="stable")
    frame = frame.reset_index(drop=True)
    frame.attrs["skipped"] = skipped
    return frame


def _pair_key(pair: str) -> tuple:
    """Sort key of a pair: source then target in LANGUAGES order, others last."""
    source, _, target = pair.partition("_")
    rank = {lang: i for i, lang in enumerate(LANGUAGES)}
    return (rank.get(source, len(rank)), rank.get(target, len(rank)), pair)


def order_pairs(found: Iterable[str], given: Sequence[str] | None = None) -> list:
    """Column order of the pairs: ``given`` first, then the others sorted.

    Arguments
    ---------
    found : iterable of str
        Pairs present in the results (``"<source>_<target>"``).
    given : sequence of str, optional
        Pairs asked for, in the order wanted.

    Returns
    -------
    list of str
        Unique pairs: ``given`` in its order, then the remaining ``found`` pairs
        by source and target in ``LANGUAGES`` order (en, zh, de, fr, ur).

    Example
    -------
    >>> order_pairs(["ur_en", "en_fr", "zh_de", "en_de"])
    ['en_de', 'en_fr', 'zh_de', 'ur_en']
    >>> order_pairs(["en_de"], given=["de_en"])
    ['de_en', 'en_de']
    """
    first = list(dict.fromkeys(given or ()))
    rest = sorted(set(found) - set(first), key=_pair_key)
    return first + rest


def order_variants(found: Iterable[str], given: Sequence[str] | None = None) -> list:
    """Row order of the variants: :data:`VARIANT_ORDER`, unknown names last.

    Arguments
    ---------
    found : iterable of str
        Variants present in the results.
    given : sequence of str, optional
        Variants asked for (shown even without a run).

    Returns
    -------
    list of str
        The union, in :data:`VARIANT_ORDER`, then unknown names sorted.

    Example
    -------
    >>> order_variants(["proposed", "upper_bound", "baseline1", "mine"])
    ['baseline1', 'proposed', 'upper_bound', 'mine']
    """
    names = set(found) | set(given or ())
    known = [name for name in VARIANT_ORDER if name in names]
    return known + sorted(names - set(VARIANT_ORDER))


def _check_runs(df: pd.DataFrame) -> None:
    """Refuse a run table without the needed columns or with duplicate runs."""
    needed = ["pair", "variant", "seed", *METRICS]
    missing = [column for column in needed if column not in df.columns]
    if missing:
        raise ValueError(
            f"The run table lacks the column(s) {missing}; expected at least "
            f"{needed} (as returned by collect_results)."
        )
    duplicated = df[df.duplicated(["variant", "pair", "seed"], keep=False)]
    if len(duplicated):
        first = duplicated.iloc[0]
        where = (
            ": " + ", ".join(duplicated["path"].astype(str).head(4))
            if "path" in df.columns
            else ""
        )
        raise ValueError(
            f"{len(duplicated)} results share a (variant, pair, seed), e.g. "
            f"{first['variant']} {first['pair']} seed {first['seed']}{where}. "
            "A table needs one run per cell and seed: collect a folder holding a "
            "single experiment (e.g. one encoder), or remove the extra runs."
        )


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample std (ddof=1; NaN for fewer than 2 values)."""
    if values.size == 0:
        return math.nan, math.nan
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if values.size > 1 else math.nan
    return mean, std


def _per_seed_average(runs: pd.DataFrame, pairs: Sequence[str], metric: str):
    """Per seed, the mean of ``metric`` over ``pairs``, for seeds with every pair.

    ``runs`` holds the runs of one variant; the result is a Series by seed.
    """
    per_seed = runs.pivot(index="seed", columns="pair", values=metric)
    return per_seed.reindex(columns=pairs).dropna(axis=0, how="any").mean(axis=1)


def _repeated_pairs(cell: pd.DataFrame) -> str:
    """Pairs whose runs the runs of a cell repeat (``same_as``), comma-joined."""
    if "same_as" not in cell.columns:
        return ""
    keys = [key for key in cell["same_as"] if isinstance(key, str) and key]
    return ",".join(sorted({key.split("/", 1)[0] for key in keys}))


def summarize(
    df: pd.DataFrame,
    seeds: Iterable[int] | None = None,
    pairs: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Summarise a run table over seeds: one row per cell of the paper's table.

    See the module docstring for the exact definitions (cell, ``Avg.``,
    expected seeds).

    Arguments
    ---------
    df : pandas.DataFrame
        Run table (:func:`collect_results`); needs the columns ``pair``,
        ``variant``, ``seed``, ``uar`` and ``macro_f1``, one row per run.
    seeds : iterable of int, optional
        Seeds expected in every cell, on top of those found in ``df``.
    pairs : sequence of str, optional
        Pairs expected as columns (in this order), even without a run.
    variants : sequence of str, optional
        Variants expected as rows, even without a run.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS`: one row per variant and column (the
        pairs, then ``pair == AVG``), in table order. ``n_seeds`` counts the
        seeds of the cell (for ``Avg.``: the seeds complete over all pairs),
        ``n_expected`` the expected seeds; means and stds are fractions (NaN
        when undefined); ``same_as`` is the pair whose runs the cell's runs
        repeat (see the module docstring), or ``""``.

    Raises
    ------
    ValueError
        If columns are missing or two runs share a variant, pair and seed.

    Example
    -------
    >>> df = pd.DataFrame({"pair": ["en_de"] * 3 + ["zh_fr"] * 2,
    ...     "variant": "proposed", "seed": [1, 2, 3, 1, 2],
    ...     "uar": [0.5, 0.6, 0.7, 0.3, 0.5], "macro_f1": 0.5})
    >>> s = summarize(df)
    >>> s[["pair", "n_seeds", "n_expected", "uar_mean", "uar_std"]].round(3)
        pair  n_seeds  n_expected  uar_mean  uar_std
    0  en_de        3           3     0.600    0.100
    1  zh_fr        2           3     0.400    0.141
    2   Avg.        2           3     0.475    0.106
    """
    _check_runs(df)
    pairs = order_pairs(df["pair"], pairs)
    variants = order_variants(df["variant"], variants)
    n_expected = len(set(df["seed"].astype(int)) | {int(s) for s in seeds or ()})
    rows = []
    for variant in variants:
        runs = df[df["variant"] == variant]
        for pair in pairs:
            cell = runs[runs["pair"] == pair]
            row = {"variant": variant, "pair": pair, "n_seeds": len(cell)}
            for metric in METRICS:
                mean, std = _mean_std(cell[metric].to_numpy(dtype=float))
                row[f"{metric}_mean"], row[f"{metric}_std"] = mean, std
            row["same_as"] = _repeated_pairs(cell)
            rows.append(row)
        # Avg.: per-seed average over all pairs, for seeds complete over pairs.
        row = {"variant": variant, "pair": AVG, "same_as": ""}
        complete = None
        for metric in METRICS:
            averages = _per_seed_average(runs, pairs, metric).to_numpy(dtype=float)
            complete = len(averages)
            mean, std = _mean_std(averages) if pairs else (math.nan, math.nan)
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean, std
        row["n_seeds"] = complete if pairs else 0
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary["n_expected"] = n_expected
    if summary.empty:
        summary = pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    summary = summary[list(SUMMARY_COLUMNS)]
    summary["same_as"] = summary["same_as"].fillna("").astype(str)
    return summary.astype({"n_seeds": "int64", "n_expected": "int64"})


def pair_label(pair: str) -> str:
    """Display name of a column: ``"en_de"`` -> ``"en→de"``.

    Arguments
    ---------
    pair : str
        ``"<source>_<target>"`` or :data:`AVG`.

    Returns
    -------
    str
        The label shown in table headers and figures.

    Example
    -------
    >>> pair_label("en_de"), pair_label("Avg.")
    ('en→de', 'Avg.')
    """
    source, sep, target = pair.partition("_")
    return f"{source}→{target}" if sep and source and target else pair


def format_cell(
    mean: float, std: float, n_seeds: int, n_expected: int, bold: bool = False
) -> str:
    """Format one cell in percent: ``"60.0 ± 10.0"``, marked when incomplete.

    Arguments
    ---------
    mean : float
        Mean over seeds, as a fraction (NaN: no run).
    std : float
        Sample std over seeds, as a fraction (NaN with one seed).
    n_seeds : int
        Seeds in the cell.
    n_expected : int
        Seeds expected; fewer found gives the mark ``(k/n)``.
    bold : bool
        Put the numbers in Markdown bold.

    Returns
    -------
    str
        ``"–"`` without runs; ``"61.2"`` with one seed; ``"60.0 ± 10.0"`` with
        more; `` (k/n)`` appended when ``n_seeds < n_expected``.

    Example
    -------
    >>> format_cell(0.6, 0.1, 3, 3)
    '60.0 ± 10.0'
    >>> format_cell(0.6123, float("nan"), 1, 1)
    '61.2'
    >>> format_cell(0.6, 0.1, 2, 3, bold=True)
    '**60.0 ± 10.0** (2/3)'
    >>> format_cell(float("nan"), float("nan"), 0, 3)
    '–'
    """
    if n_seeds == 0 or not np.isfinite(mean):
        return EMPTY_CELL
    text = f"{100 * mean:.1f}"
    if n_seeds > 1 and np.isfinite(std):
        text += f" ± {100 * std:.1f}"
    if bold:
        text = f"**{text}**"
    if n_seeds < n_expected:
        text += f" ({n_seeds}/{n_expected})"
    return text


def _check_summary(summary: pd.DataFrame, metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; choose one of {list(METRICS)}.")
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(
            f"The summary lacks the column(s) {missing}: pass the output of "
            "summarize()."
        )


def to_markdown(summary: pd.DataFrame, metric: str) -> str:
    """Write one metric of a summary as a Markdown table (rows: variants).

    Arguments
    ---------
    summary : pandas.DataFrame
        Output of :func:`summarize`.
    metric : str
        ``"uar"`` or ``"macro_f1"``.

    Returns
    -------
    str
        A caption line, a blank line and the table (no trailing newline).
        Columns: ``Variant``, one per pair (``en→de``), ``Avg.``. The best
        mean of each column among the zero-shot variants is bold; a cell
        that repeats another column's runs ends with ``†``.

    Example
    -------
    >>> df = pd.DataFrame({"pair": "en_de", "variant": ["baseline1"] * 3
    ...     + ["proposed"] * 3, "seed": [1, 2, 3] * 2,
    ...     "uar": [0.4, 0.5, 0.6, 0.5, 0.6, 0.7], "macro_f1": 0.5})
    >>> print(to_markdown(summarize(df), "uar"))
    **UAR (%)**: mean ± std over seeds
    <BLANKLINE>
    | Variant | en→de | Avg. |
    | :-- | --: | --: |
    | baseline1 | 50.0 ± 10.0 | 50.0 ± 10.0 |
    | proposed | **60.0 ± 10.0** | **60.0 ± 10.0** |
    """
    _check_summary(summary, metric)
    columns = list(dict.fromkeys(summary["pair"]))
    variants = list(dict.fromkeys(summary["variant"]))
    cells = summary.set_index(["variant", "pair"])
    best = {}
    for column in columns:
        means = cells.xs(column, level="pair")[f"{metric}_mean"]
        means = means[[v not in ORACLE_VARIANTS for v in means.index]].dropna()
        if len(means) > 1:
            best[column] = round(100 * means.max(), 1)
    lines = [
        f"**{METRICS[metric]} (%)**: mean ± std over seeds",
        "",
        "| Variant | " + " | ".join(pair_label(c) for c in columns) + " |",
        "| :-- |" + " --: |" * len(columns),
    ]
    for variant in variants:
        texts = []
        for column in columns:
            cell = cells.loc[(variant, column)]
            mean = float(cell[f"{metric}_mean"])
            bold = (
                variant not in ORACLE_VARIANTS
                and column in best
                and np.isfinite(mean)
                and round(100 * mean, 1) == best[column]
            )
            texts.append(
                format_cell(
                    mean,
                    float(cell[f"{metric}_std"]),
                    int(cell["n_seeds"]),
                    int(cell["n_expected"]),
                    bold=bold,
                )
                + (SAME_AS_MARK if cell["same_as"] else "")
            )
        lines.append(f"| {variant} | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def to_wide(summary: pd.DataFrame) -> pd.DataFrame:
    """Pivot a summary to one row per variant (the wide CSV form).

    Arguments
    ---------
    summary : pandas.DataFrame
        Output of :func:`summarize`.

    Returns
    -------
    pandas.DataFrame
        Index ``variant``; for each column ``c`` of the table (pairs, then
        ``Avg.``) the columns ``c:uar_mean``, ``c:uar_std``,
        ``c:macro_f1_mean``, ``c:macro_f1_std``, ``c:n_seeds`` (fractions).

    Example
    -------
    >>> df = pd.DataFrame({"pair": "en_de", "variant": "proposed",
    ...     "seed": [1, 2], "uar": [0.5, 0.7], "macro_f1": [0.4, 0.6]})
    >>> list(to_wide(summarize(df)).columns)[:5]
    ['en_de:uar_mean', 'en_de:uar_std', 'en_de:macro_f1_mean', 'en_de:macro_f1_std', 'en_de:n_seeds']
    """  # noqa: E501
    stats = [f"{m}_{s}" for m in METRICS for s in ("mean", "std")] + ["n_seeds"]
    columns = list(dict.fromkeys(summary["pair"]))
    wide = pd.DataFrame(index=pd.Index(list(dict.fromkeys(summary["variant"]))))
    wide.index.name = "variant"
    cells = summary.set_index(["variant", "pair"])
    for column in columns:
        part = cells.xs(column, level="pair")
        for stat in stats:
            wide[f"{column}:{stat}"] = part[stat].reindex(wide.index)
    return wide


def missing_runs(
    df: pd.DataFrame,
    seeds: Iterable[int] | None = None,
    pairs: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
) -> pd.DataFrame:
    """List the runs of the full grid that have no result.

    The full grid is every variant x pair x expected seed, with the same
    rows, columns and expected seeds as :func:`summarize`.

    Arguments
    ---------
    df : pandas.DataFrame
        Run table (:func:`collect_results`).
    seeds : iterable of int, optional
        Expected seeds, on top of those found.
    pairs : sequence of str, optional
        Expected pairs, on top of those found.
    variants : sequence of str, optional
        Expected variants, on top of those found.

    Returns
    -------
    pandas.DataFrame
        Columns ``variant``, ``pair``, ``seed``: one row per missing run.

    Example
    -------
    >>> df = pd.DataFrame({"pair": "en_de", "variant": "proposed",
    ...     "seed": [1, 3], "uar": 0.5, "macro_f1": 0.5})
    >>> missing_runs(df, seeds=[1, 2, 3], variants=["baseline1"]).to_dict("records")
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'variant': 'baseline1', 'pair': 'en_de', 'seed': 1},
     {'variant': 'baseline1', 'pair': 'en_de', 'seed': 2},
     {'variant': 'baseline1', 'pair': 'en_de', 'seed': 3},
     {'variant': 'proposed', 'pair': 'en_de', 'seed': 2}]
    """
    _check_runs(df)
    pairs = order_pairs(df["pair"], pairs)
    variants = order_variants(df["variant"], variants)
    expected = sorted(set(df["seed"].astype(int)) | {int(s) for s in seeds or ()})
    done = set(zip(df["variant"], df["pair"], df["seed"].astype(int)))
    rows = [
        {"variant": v, "pair": p, "seed": s}
        for v in variants
        for p in pairs
        for s in expected
        if (v, p, s) not in done
    ]
    frame = pd.DataFrame(rows, columns=["variant", "pair", "seed"])
    return frame.astype({"seed": "int64"})


def _runs_report(
    df: pd.DataFrame, summary: pd.DataFrame, missing: pd.DataFrame, max_items: int = 30
) -> str:
    """Markdown paragraph: run counts, incomplete cells, missing runs, skips."""
    n_cells = int((summary["pair"] != AVG).sum())
    n_expected = int(summary["n_expected"].iloc[0]) if len(summary) else 0
    lines = [
        f"- Runs found: {len(df)} of {n_cells * n_expected} expected "
        f"({n_cells} cells x {n_expected} seeds)."
    ]
    if len(missing):
        grouped = missing.groupby(["variant", "pair"], sort=False)["seed"]
        items = [
            f"{variant} {pair_label(pair)} (seed {', '.join(map(str, seeds))})"
            for (variant, pair), seeds in grouped
        ]
        shown = "; ".join(items[:max_items])
        more = f"; and {len(items) - max_items} more" if len(items) > max_items else ""
        lines.append(
            f"- Missing runs: {len(missing)}, marked `(k/n)` in the tables "
            f"(k of n seeds found): {shown}{more}."
        )
    else:
        lines.append("- Missing runs: none.")
    skipped = df.attrs.get("skipped") or []
    if skipped:
        lines.append(
            f"- Unusable results.json skipped: {len(skipped)}, e.g. {skipped[0][1]}"
        )
    return "\n".join(lines)


def repeats_note(summary: pd.DataFrame) -> str:
    """Footnote of the cells marked ``†``: which column each one repeats.

    Arguments
    ---------
    summary : pandas.DataFrame
        Output of :func:`summarize`.

    Returns
    -------
    str
        One Markdown paragraph, or ``""`` when no cell repeats another.

    Example
    -------
    >>> df = pd.DataFrame({"pair": ["en_de", "zh_de"], "variant": "proposed",
    ...     "seed": 1, "uar": 0.5, "macro_f1": 0.5,
    ...     "same_as": [None, "en_de/proposed/seed1"]})
    >>> print(repeats_note(summarize(df)))
    † Same experiment as another column, run once and reported in both: zh→de = en→de (proposed). Avg. averages every column, so such a target counts once per pair.
    """  # noqa: E501
    _check_summary(summary, "uar")
    repeated = summary[summary["same_as"] != ""]
    if repeated.empty:
        return ""
    items = []
    for (pair, same_as), rows in repeated.groupby(["pair", "same_as"], sort=False):
        others = " / ".join(pair_label(p) for p in same_as.split(","))
        variants = ", ".join(rows["variant"])
        items.append(f"{pair_label(pair)} = {others} ({variants})")
    return (
        f"{SAME_AS_MARK} Same experiment as another column, run once and reported "
        f"in both: {'; '.join(items)}. {AVG} averages every column, so such a "
        "target counts once per pair."
    )


def write_tables(
    df: pd.DataFrame,
    out_dir: PathLike,
    seeds: Iterable[int] | None = None,
    pairs: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    figure: bool = True,
) -> dict[str, Path]:
    """Write the results tables (Markdown, CSV) and the variant figure.

    Arguments
    ---------
    df : pandas.DataFrame
        Run table (:func:`collect_results`).
    out_dir : str or path-like
        Output folder (created).
    seeds : iterable of int, optional
        Expected seeds (see :func:`summarize`).
    pairs : sequence of str, optional
        Expected pairs, as columns in this order (see :func:`summarize`).
    variants : sequence of str, optional
        Expected variants (see :func:`summarize`).
    figure : bool
        Also draw :func:`plot_variants` (``variants.png``).

    Returns
    -------
    dict of str to pathlib.Path
        By key (:data:`TABLE_FILES`): ``markdown`` (``results.md``: UAR and
        macro-F1 tables, definitions, run report), ``runs`` (``runs.csv``,
        one row per run), ``summary_long`` (``summary_long.csv``, one row per
        cell, :func:`summarize`), ``summary_wide`` (``summary_wide.csv``, one
        row per variant, :func:`to_wide`), ``missing`` (``missing_runs.csv``),
        ``comparisons`` (``comparisons.csv``: :func:`compare_variants` for
        :data:`COMPARISONS` whose variants have runs, both metrics) and
        ``figure`` (``variants.png``, if ``figure``).

    Example
    -------
    >>> df = pd.DataFrame({"pair": "en_de", "variant": "proposed",
    ...     "seed": [1, 2], "uar": [0.5, 0.7], "macro_f1": [0.4, 0.6]})
    >>> paths = write_tables(df, getfixture("tmp_path"), seeds=[1, 2, 3],
    ...                      figure=False)
    >>> sorted(paths)
    ['comparisons', 'markdown', 'missing', 'runs', 'summary_long', 'summary_wide']
    >>> "60.0 ± 14.1 (2/3)" in paths["markdown"].read_text(encoding="utf-8")
    True
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(df, seeds=seeds, pairs=pairs, variants=variants)
    missing = missing_runs(df, seeds=seeds, pairs=pairs, variants=variants)
    paths = {key: out_dir / name for key, name in TABLE_FILES.items()}
    if not figure:
        del paths["figure"]

    df.to_csv(paths["runs"], index=False)
    summary.to_csv(paths["summary_long"], index=False)
    to_wide(summary).to_csv(paths["summary_wide"])
    missing.to_csv(paths["missing"], index=False)
    found = set(df["variant"])
    order = [p for p in summary["pair"].drop_duplicates() if p != AVG]
    comparisons = [
        compare_variants(df, variant, reference, metric, pairs=order)
        for variant, reference in COMPARISONS
        if {variant, reference} <= found
        for metric in METRICS
    ]
    comparisons = (
        pd.concat(comparisons, ignore_index=True)
        if comparisons
        else pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    )
    comparisons.to_csv(paths["comparisons"], index=False)
    if figure:
        plot_variants(df, paths["figure"], seeds=seeds, pairs=pairs, variants=variants)

    parts = [
        "# Results",
        "",
        *[f"> **Note: {note}.**\n" for note in run_notes(df)],
        "Zero-shot cross-lingual SER: test on the unseen target language "
        "(`upper_bound` also trains on it). Cells: mean ± sample std over seeds, "
        "in %; one seed: the mean only. Avg.: mean ± std over seeds of the "
        "per-seed average over the pairs, using the seeds that have every pair. "
        "`(k/n)`: k of the n expected seeds found; `–`: no run. Bold: best "
        "zero-shot variant of the column.",
    ]
    for metric in METRICS:
        parts += ["", to_markdown(summary, metric)]
    note = repeats_note(summary)
    if note:
        parts += ["", note]
    if len(comparisons):
        parts += ["", "## Paired comparisons", ""]
        parts += ["\n\n".join(comparisons_markdown(comparisons, m) for m in METRICS)]
    diagnostics = diagnostics_markdown(df)
    if diagnostics:
        parts += ["", "## Representation diagnostics", "", diagnostics]
    parts += ["", "## Runs", "", _runs_report(df, summary, missing)]
    if figure:
        parts += ["", f"![Variants]({paths['figure'].name})"]
    paths["markdown"].write_text("\n".join(parts) + "\n", encoding="utf-8")
    return paths


def _verdict(delta: float, spread: float) -> str:
    """``higher``/``lower`` when ``|delta|`` exceeds ``spread``, else ``within``."""
    if not (np.isfinite(delta) and np.isfinite(spread)):
        return "n/a"
    if delta > spread:
        return "higher"
    if delta < -spread:
        return "lower"
    return "within"


def compare_variants(
    df: pd.DataFrame,
    variant: str,
    reference: str,
    metric: str = "uar",
    pairs: Sequence[str] | None = None,
) -> pd.DataFrame:
    r"""Compare two variants seed by seed, per pair and on the average.

    For a pair :math:`p` and each seed :math:`s` that has a run of both
    variants, the paired difference is
    :math:`d_s = x(\text{variant}, p, s) - x(\text{reference}, p, s)` (same
    seed: same model initialisation and batch order; the validation
    speakers are fixed by ``split_seed`` anyway). ``delta_mean`` and
    ``delta_std`` are its mean and sample std over seeds; ``spread`` is the
    larger of the two cells' sample stds over the paired seeds (the ``±`` of
    the table when every seed has both runs); ``n_better`` counts the seeds
    with :math:`d_s > 0`.
    The verdict is ``higher`` if ``delta_mean > spread``, ``lower`` if
    ``delta_mean < -spread``, else ``within`` (the difference is inside the
    seed spread), and ``n/a`` with fewer than two seeds. For ``Avg.`` the
    per-seed averages over the pairs (seeds complete in both variants) take
    the place of :math:`x`.

    Arguments
    ---------
    df : pandas.DataFrame
        Run table (:func:`collect_results`).
    variant : str
        The variant compared, e.g. ``"proposed"``.
    reference : str
        The variant it is compared with, e.g. ``"baseline2"``.
    metric : str
        ``"uar"`` or ``"macro_f1"``.
    pairs : sequence of str, optional
        Columns, in this order (default: the pairs with runs, table order).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COMPARISON_COLUMNS`, one row per pair then ``Avg.``;
        differences are fractions.

    Example
    -------
    >>> df = pd.DataFrame({"pair": "en_de", "seed": [1, 2, 3] * 2,
    ...     "variant": ["baseline2"] * 3 + ["proposed"] * 3,
    ...     "uar": [0.40, 0.42, 0.44, 0.45, 0.47, 0.49], "macro_f1": 0.5})
    >>> row = compare_variants(df, "proposed", "baseline2").iloc[0]
    >>> round(float(row["delta_mean"]), 3), round(float(row["spread"]), 3)
    (0.05, 0.02)
    >>> row["verdict"], int(row["n_better"]), int(row["n_seeds"])
    ('higher', 3, 3)
    """
    _check_runs(df)
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; choose one of {list(METRICS)}.")
    pairs = order_pairs(df["pair"], pairs)
    table = df.pivot_table(
        index="seed", columns=["variant", "pair"], values=metric, aggfunc="first"
    )

    def values(name: str, pair: str) -> pd.Series:
        if (name, pair) in table.columns:
            return table[(name, pair)].dropna()
        return pd.Series(dtype=float)

    def averages(name: str) -> pd.Series:
        return _per_seed_average(df[df["variant"] == name], pairs, metric)

    rows = []
    for pair in [*pairs, AVG]:
        if pair == AVG:
            a, b = averages(variant), averages(reference)
        else:
            a, b = values(variant, pair), values(reference, pair)
        both = a.index.intersection(b.index)
        diff = (a[both] - b[both]).to_numpy(dtype=float)
        delta_mean, delta_std = _mean_std(diff)
        spread = max(
            _mean_std(a[both].to_numpy(float))[1], _mean_std(b[both].to_numpy(float))[1]
        )
        rows.append(
            {
                "variant": variant,
                "reference": reference,
                "metric": metric,
                "pair": pair,
                "n_seeds": len(both),
                "delta_mean": delta_mean,
                "delta_std": delta_std,
                "spread": spread,
                "n_better": int((diff > 0).sum()),
                "verdict": _verdict(delta_mean, spread),
            }
        )
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


def comparisons_markdown(comparisons: pd.DataFrame, metric: str) -> str:
    """Write the comparisons of one metric as a Markdown table.

    Arguments
    ---------
    comparisons : pandas.DataFrame
        Rows of :func:`compare_variants` (any number of variant pairs).
    metric : str
        ``"uar"`` or ``"macro_f1"``.

    Returns
    -------
    str
        A caption and a table: one row per comparison, one column per pair
        and ``Avg.``; a cell is ``Δ (verdict, k/n)`` in points, ``k`` of the
        ``n`` seeds having the variant ahead.

    Example
    -------
    >>> df = pd.DataFrame({"pair": "en_de", "seed": [1, 2, 3] * 2,
    ...     "variant": ["baseline2"] * 3 + ["proposed"] * 3,
    ...     "uar": [0.40, 0.42, 0.44, 0.45, 0.47, 0.49], "macro_f1": 0.5})
    >>> print(comparisons_markdown(compare_variants(df, "proposed", "baseline2"),
    ...                            "uar"))  # doctest: +ELLIPSIS
    **UAR**: ...
    <BLANKLINE>
    | Comparison | en→de | Avg. |
    | :-- | --: | --: |
    | proposed − baseline2 | +5.0 (higher, 3/3) | +5.0 (higher, 3/3) |
    """
    part = comparisons[comparisons["metric"] == metric]
    columns = list(dict.fromkeys(part["pair"]))
    lines = [
        f"**{METRICS[metric]}**: Δ = mean over seeds of the paired difference "
        "(same seed), in points; higher/lower: |Δ| exceeds the larger seed std "
        "of the two cells, within: it does not; k/n: seeds with the first "
        "variant ahead.",
        "",
        "| Comparison | " + " | ".join(pair_label(c) for c in columns) + " |",
        "| :-- |" + " --: |" * len(columns),
    ]
    for (variant, reference), rows in part.groupby(
        ["variant", "reference"], sort=False
    ):
        cells = rows.set_index("pair")
        texts = []
        for column in columns:
            row = cells.loc[column]
            if int(row["n_seeds"]) == 0 or not np.isfinite(row["delta_mean"]):
                texts.append(EMPTY_CELL)
                continue
            texts.append(
                f"{100 * row['delta_mean']:+.1f} ({row['verdict']}, "
                f"{int(row['n_better'])}/{int(row['n_seeds'])})"
            )
        lines.append(f"| {variant} − {reference} | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def _color_of(variants: Sequence[str]) -> dict[str, str]:
    spare = iter(_SPARE_COLORS * (1 + len(variants) // len(_SPARE_COLORS)))
    return {
        v: VARIANT_COLORS[v] if v in VARIANT_COLORS else next(spare) for v in variants
    }


def plot_variants(
    df: pd.DataFrame,
    path: PathLike,
    seeds: Iterable[int] | None = None,
    pairs: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
) -> Path:
    r"""Grouped bar chart of the variants: UAR (top) and macro-F1 (bottom).

    One group of bars per table column (each pair, then ``Avg.``), one bar
    per variant at the mean over seeds, with the sample std over seeds as
    error bar (none with one seed; no bar for a cell without runs); the
    oracle ``upper_bound`` is hatched. Drawn on
    a ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state).

    Arguments
    ---------
    df : pandas.DataFrame
        Run table (:func:`collect_results`).
    path : str or path-like
        Output image (format from the suffix, e.g. ``.png``); parent folders
        are created.
    seeds : iterable of int, optional
        Expected seeds (see :func:`summarize`).
    pairs : sequence of str, optional
        Expected pairs, as columns in this order (see :func:`summarize`).
    variants : sequence of str, optional
        Expected variants (see :func:`summarize`).

    Returns
    -------
    pathlib.Path
        ``path``.

    Example
    -------
    >>> df = pd.DataFrame({"pair": ["en_de", "en_de", "zh_fr", "zh_fr"],
    ...     "variant": ["baseline1", "proposed"] * 2, "seed": 1,
    ...     "uar": [0.4, 0.6, 0.3, 0.5], "macro_f1": [0.4, 0.5, 0.3, 0.4]})
    >>> out = plot_variants(df, getfixture("tmp_path") / "variants.png")
    >>> out.read_bytes()[:4] == b"\x89PNG"
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = summarize(df, seeds=seeds, pairs=pairs, variants=variants)
    columns = list(dict.fromkeys(summary["pair"]))
    names = list(dict.fromkeys(summary["variant"]))
    colors = _color_of(names)
    cells = summary.set_index(["variant", "pair"])

    fig = Figure(figsize=(max(6.0, 1.1 * len(columns) + 2.5), 6.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True)
    x = np.arange(len(columns))
    width = 0.8 / max(1, len(names))
    for ax, metric in zip(axes, METRICS):
        for i, variant in enumerate(names):
            means = np.array(
                [cells.loc[(variant, c), f"{metric}_mean"] for c in columns], float
            )
            stds = np.array(
                [cells.loc[(variant, c), f"{metric}_std"] for c in columns], float
            )
            ax.bar(
                x + (i - (len(names) - 1) / 2) * width,
                100 * np.nan_to_num(means),
                width,
                yerr=100 * np.nan_to_num(stds),
                capsize=2,
                color=colors[variant],
                hatch="//" if variant in ORACLE_VARIANTS else None,
                edgecolor="black",
                linewidth=0.4,
                label=variant,
            )
        if len(columns) > 1:
            ax.axvline(len(columns) - 1.5, color="#808080", linestyle="--", lw=0.8)
        ax.set_ylabel(f"{METRICS[metric]} (%)")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    if not len(df):
        axes[0].text(
            0.5, 0.5, "no results yet", ha="center", transform=axes[0].transAxes
        )
    axes[-1].set_xticks(x, [pair_label(c) for c in columns])
    title = "Variants per language pair: mean ± std over seeds"
    notes = run_notes(df)
    axes[0].set_title("\n".join([title, *notes]))
    if names:
        axes[0].legend(
            loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8
        )
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    return path


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    """Command line: rebuild the tables and figure of a folder of runs.

    Arguments
    ---------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``): ``ROOT [--out DIR] [--seeds 1,2,3]
        [--pairs en_de,zh_fr] [--variants baseline2,proposed] [--no-figure]``.

    Returns
    -------
    dict of str to pathlib.Path
        The written files (:func:`write_tables`).

    Example
    -------
    >>> root = getfixture("tmp_path")
    >>> run = root / "en_de" / "proposed" / "seed1"
    >>> run.mkdir(parents=True)
    >>> _ = (run / "results.json").write_text(json.dumps({"source": "en",
    ...     "target": "de", "variant": "proposed", "seed": 1, "uar": 0.5,
    ...     "macro_f1": 0.4}))
    >>> paths = main([str(root), "--no-figure"])
    1 runs -> ...results.md
    >>> paths["markdown"].name
    'results.md'
    """
    parser = argparse.ArgumentParser(
        prog="python -m zsser_modules.results_table",
        description="Collect the results.json files under ROOT and write the "
        "results tables (Markdown, CSV) and the variant figure.",
    )
    parser.add_argument("root", help="folder holding the runs (searched recursively)")
    parser.add_argument("--out", help="output folder (default: ROOT)")
    parser.add_argument(
        "--seeds",
        default="",
        help="comma-separated seeds expected in every cell (default: those found)",
    )
    parser.add_argument(
        "--pairs",
        default="",
        help="comma-separated pairs, as columns in this order (default: those "
        "found, in table order)",
    )
    parser.add_argument(
        "--variants",
        default="",
        help="comma-separated variants expected as rows (default: those found)",
    )
    parser.add_argument("--no-figure", action="store_true", help="skip the PNG")
    args = parser.parse_args(argv)
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()] or None
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] or None
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    df = collect_results(args.root)
    paths = write_tables(
        df,
        args.out or args.root,
        seeds=seeds,
        pairs=pairs,
        variants=variants,
        figure=not args.no_figure,
    )
    print(f"{len(df)} runs -> {paths['markdown']}")
    return paths


if __name__ == "__main__":
    main(sys.argv[1:])
