"""Comparing a variant with a reference per pair, seed by seed.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from zsser_modules.results_table.markdown import EMPTY_CELL, pair_label
from zsser_modules.results_table.runs import METRICS, TUNED_SUFFIX, base_variant
from zsser_modules.results_table.summary import (
    AVG,
    _check_runs,
    _mean_std,
    _per_seed_average,
    order_pairs,
    order_variants,
)

#: Comparisons written by :func:`write_tables`: (variant, reference) pairs.
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("proposed", "baseline1"),
    ("proposed", "baseline2"),
    ("proposed", "no_supcon"),
    ("proposed", "no_spkadv"),
)


def comparisons_for(found: Iterable[str]) -> list[tuple[str, str]]:
    """The comparisons of a table: :data:`COMPARISONS`, and those of its marked rows.

    A marked row (``row_label``) is compared with its unmarked variant
    (what speaker normalisation or tuning adds), and a marked ``proposed``
    with ``baseline2`` carrying the same speaker normalisation (tuning does
    not apply to ``baseline2``: it has no SupCon or adversary weight).

    Arguments
    ---------
    found : iterable of str
        Row labels with runs.

    Returns
    -------
    list of (str, str)
        (variant, reference) pairs whose rows both have runs.

    Example
    -------
    >>> comparisons_for(["baseline2", "proposed", "baseline2 +spk-norm",
    ...                  "proposed +spk-norm", "proposed (tuned)"])
    ... # doctest: +NORMALIZE_WHITESPACE
    [('proposed', 'baseline2'), ('baseline2 +spk-norm', 'baseline2'),
     ('proposed (tuned)', 'proposed'), ('proposed (tuned)', 'baseline2'),
     ('proposed +spk-norm', 'proposed'), ('proposed +spk-norm', 'baseline2 +spk-norm')]
    """
    found = set(found)
    pairs = [pair for pair in COMPARISONS if set(pair) <= found]
    for label in order_variants(found):
        base = base_variant(label)
        if label == base:
            continue
        extra = [(label, base)]
        if base == "proposed":
            extra.append(
                (label, "baseline2" + label[len(base) :].replace(TUNED_SUFFIX, ""))
            )
        pairs += [pair for pair in extra if set(pair) <= found and pair not in pairs]
    return pairs


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
