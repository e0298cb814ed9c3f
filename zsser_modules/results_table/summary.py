"""Summarising runs over seeds: row and column order, cells, missing runs.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from zsser_modules.labels import LANGUAGES
from zsser_modules.results_table.runs import (
    METRICS,
    TRANSDUCTIVE_SUFFIXES,
    base_variant,
)

#: Name of the last column: the average over the pairs.
AVG = "Avg."


#: Canonical row order of the table.
VARIANT_ORDER: tuple[str, ...] = (
    "baseline1",
    "baseline2",
    "baseline2_hier",
    "no_supcon",
    "no_spkadv",
    "proposed",
    "upper_bound",
)


#: Variants that see the target language in training (never bolded as best).
ORACLE_VARIANTS = frozenset({"upper_bound"})


#: Row-label marks of transductive rows: they use the test speakers' own
#: statistics (every test utterance and its speaker label), so they are not
#: zero-shot in the strict sense; the tables show them in a block of their own.
#: Derived from :data:`zsser_modules.speaker_norm.TRANSDUCTIVE_NORMS`
#: (:data:`~.runs.TRANSDUCTIVE_SUFFIXES`), the one source of which
#: normalisations are transductive.
TRANSDUCTIVE_MARKS: tuple[str, ...] = TRANSDUCTIVE_SUFFIXES


def is_transductive(label: str) -> bool:
    """Whether a row uses test-speaker statistics (:data:`TRANSDUCTIVE_MARKS`).

    Example
    -------
    >>> is_transductive("proposed +spk-norm"), is_transductive("proposed (tuned)")
    (True, False)
    """
    return any(mark in label for mark in TRANSDUCTIVE_MARKS)


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

    A marked row (``"proposed (tuned)"``, :func:`~.runs.row_label`)
    follows its variant; transductive rows (:func:`is_transductive`, e.g.
    ``"proposed +spk-norm"``) come last, as a block of their own, in the
    same order among themselves.

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
    >>> order_variants(["proposed +spk-norm", "upper_bound", "baseline2 +spk-norm",
    ...                 "proposed"])
    ['proposed', 'upper_bound', 'baseline2 +spk-norm', 'proposed +spk-norm']
    """
    names = set(found) | set(given or ())

    def rank(name: str) -> tuple:
        base = base_variant(name)
        known = base in VARIANT_ORDER
        index = VARIANT_ORDER.index(base) if known else len(VARIANT_ORDER)
        return (
            is_transductive(name),
            index,
            base if not known else "",
            name != base,
            name,
        )

    return sorted(names, key=rank)


def is_oracle(label: str) -> bool:
    """Whether a row sees the target in training (:data:`ORACLE_VARIANTS`).

    Example
    -------
    >>> is_oracle("upper_bound +spk-norm"), is_oracle("proposed")
    (True, False)
    """
    return base_variant(label) in ORACLE_VARIANTS


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
