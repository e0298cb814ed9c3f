"""Comparing a variant with a reference per pair, seed by seed.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from zsser_modules.results_table.intervals import N_BOOTSTRAP
from zsser_modules.results_table.markdown import EMPTY_CELL, SAME_AS_MARK, pair_label
from zsser_modules.results_table.runs import METRICS, TUNED_SUFFIX, base_variant
from zsser_modules.results_table.significance import ALPHA, N_PERMUTATIONS, holm
from zsser_modules.results_table.summary import (
    AVG,
    _check_runs,
    _mean_std,
    _per_seed_average,
    order_pairs,
    order_variants,
)
from zsser_modules.results_table.uncertainty import (
    TOLERANCE,
    PredictionStore,
    comparison_statistics,
    repeat_of,
)

#: Comparisons written by :func:`write_tables`: (variant, reference) pairs.
#: The last two are the control's (``baseline2_hier``: baseline2's data and
#: losses with hierarchical batches): what the hierarchical sampler does
#: alone, and what the proposed losses add on the same batches. All are in
#: one Holm family (:func:`adjust_pvalues`).
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("proposed", "baseline1"),
    ("proposed", "baseline2"),
    ("proposed", "no_supcon"),
    ("proposed", "no_spkadv"),
    ("baseline2_hier", "baseline2"),
    ("proposed", "baseline2_hier"),
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
    [('proposed', 'baseline2'), ('proposed (tuned)', 'proposed'),
     ('proposed (tuned)', 'baseline2'), ('baseline2 +spk-norm', 'baseline2'),
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
    "n_better",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "p_seed_t",
    "p_seed_t_holm",
    "repeat_of",
    "n_speakers",
    "n_utterances",
)


def compare_variants(
    df: pd.DataFrame,
    variant: str,
    reference: str,
    metric: str = "uar",
    pairs: Sequence[str] | None = None,
    store: PredictionStore | None = None,
    n_boot: int = N_BOOTSTRAP,
    n_perm: int = N_PERMUTATIONS,
) -> pd.DataFrame:
    r"""Compare two variants seed by seed, per pair and on the average.

    For a pair :math:`p` and each seed :math:`s` that has a run of both
    variants, the paired difference is
    :math:`d_s = x(\text{variant}, p, s) - x(\text{reference}, p, s)` (same
    seed: same model initialisation and batch order). ``delta_mean`` and
    ``delta_std`` are its mean and sample std over seeds; ``n_better``
    counts the seeds with :math:`d_s > 0`. For ``Avg.`` the per-seed
    averages over the pairs (seeds complete in both variants) take the
    place of :math:`x`.

    Where every paired run has per-utterance predictions
    (:mod:`zsser_modules.predictions`): ``ci_low``/``ci_high``, the
    hierarchical bootstrap interval of ``delta_mean`` (speakers, utterances
    within them, seeds; :mod:`.intervals`); for UAR, ``p_value``, the
    stratified paired permutation test (seeds as strata, utterances swapped;
    :mod:`.significance`), and ``p_seed_t``, the t-test over the per-seed
    differences (:func:`~.significance.seed_t_test`). ``p_holm`` and
    ``p_seed_t_holm`` are filled by :func:`adjust_pvalues` across a table's
    comparisons. ``repeat_of`` names the column whose
    experiment a column repeats (both rows copied from it, ``†``): its test
    is that column's, counted once; in ``Avg.`` such a column is merged
    into its original. Without predictions these are NaN (or ``""``).

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
    store : PredictionStore, optional
        The prediction files (default: read from ``df``).
    n_boot : int
        Bootstrap replicates.
    n_perm : int
        Random swaps of the test.

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
    >>> round(float(row["delta_mean"]), 3), int(row["n_better"]), int(row["n_seeds"])
    (0.05, 3, 3)
    >>> bool(np.isnan(row["p_value"]))  # no predictions: no test
    True
    """
    _check_runs(df)
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; choose one of {list(METRICS)}.")
    pairs = order_pairs(df["pair"], pairs)
    store = PredictionStore(df) if store is None else store
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
    repeats: dict[str, str] = {}
    for pair in [*pairs, AVG]:
        if pair == AVG:
            a, b = averages(variant), averages(reference)
        else:
            a, b = values(variant, pair), values(reference, pair)
        both = a.index.intersection(b.index)
        seeds = [int(s) for s in both]
        diff = (a[both] - b[both]).to_numpy(dtype=float)
        delta_mean, delta_std = _mean_std(diff)
        if pair == AVG:
            repeated = ""
            weights = [0.0 if repeats.get(p) in pairs else 1.0 for p in pairs]
            for p in pairs:  # a repeated column counts in its original's weight
                if repeats.get(p) in pairs:
                    weights[pairs.index(repeats[p])] += 1.0
            figures = comparison_statistics(
                df, variant, reference, pairs, seeds, store, n_boot, n_perm, weights
            )
        else:
            repeated = repeat_of(df, variant, reference, pair, seeds)
            if repeated not in pairs:  # its original is not in the table
                repeated = ""
            repeats[pair] = repeated
            figures = comparison_statistics(
                df, variant, reference, [pair], seeds, store, n_boot, n_perm
            )
        estimate = figures[f"{metric}_estimate"]
        if np.isfinite(estimate) and abs(estimate - delta_mean) > TOLERANCE:
            store.problems.append(
                f"{variant} − {reference} {pair} {metric}: the predictions give "
                f"{100 * estimate:+.2f}, results.json {100 * delta_mean:+.2f}; they "
                "are of another run (rerun it to rewrite them)."
            )
            figures = {key: math.nan for key in figures}
            figures["n_speakers"] = figures["n_utterances"] = 0
        uar = metric == "uar"
        rows.append(
            {
                "variant": variant,
                "reference": reference,
                "metric": metric,
                "pair": pair,
                "n_seeds": len(both),
                "delta_mean": delta_mean,
                "delta_std": delta_std,
                "n_better": int((diff > 0).sum()),
                "ci_low": figures[f"{metric}_low"],
                "ci_high": figures[f"{metric}_high"],
                "p_value": figures["p_value"] if uar else math.nan,
                "p_holm": math.nan,
                "p_seed_t": figures["p_seed_t"] if uar else math.nan,
                "p_seed_t_holm": math.nan,
                "repeat_of": repeated,
                "n_speakers": figures["n_speakers"],
                "n_utterances": figures["n_utterances"],
            }
        )
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


def adjust_pvalues(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Holm-adjust the p-values of a table's comparisons, one test per experiment.

    For each test (``p_value``, the permutation test, into ``p_holm``;
    ``p_seed_t``, the seed t-test, into ``p_seed_t_holm``), the family is
    every row with a p-value that does not repeat another column
    (``repeat_of`` empty): each distinct experiment counts once. A repeated
    column gets the adjusted p-values of the column it repeats.

    Arguments
    ---------
    comparisons : pandas.DataFrame
        Rows of :func:`compare_variants` (any number of comparisons).

    Returns
    -------
    pandas.DataFrame
        A copy with ``p_holm`` and ``p_seed_t_holm`` filled (NaN where the
        row has no such test).

    Example
    -------
    >>> rows = pd.DataFrame({"variant": "proposed", "reference": "baseline2",
    ...     "metric": "uar", "pair": ["en_de", "zh_de", "Avg."],
    ...     "p_value": [0.01, 0.01, 0.04], "repeat_of": ["", "en_de", ""]})
    >>> adjust_pvalues(rows)["p_holm"].tolist()
    [0.02, 0.02, 0.04]
    """
    out = comparisons.copy()
    repeated = out["repeat_of"].fillna("").astype(str) != ""
    for raw, adjusted in (("p_value", "p_holm"), ("p_seed_t", "p_seed_t_holm")):
        out[adjusted] = math.nan
        if raw not in out.columns:
            continue
        family = out.index[out[raw].notna() & ~repeated]
        out.loc[family, adjusted] = holm(out.loc[family, raw].to_numpy(float))
        keys = ["variant", "reference", "metric", "pair"]
        originals = out.set_index(keys)[adjusted]
        for index in out.index[repeated]:
            row = out.loc[index]
            key = (row["variant"], row["reference"], row["metric"], row["repeat_of"])
            if key in originals.index:
                out.loc[index, adjusted] = originals[key]
    return out


def format_p(p: float) -> str:
    """A p-value for the tables: three decimals, ``<0.001`` below.

    Example
    -------
    >>> format_p(0.0123), format_p(0.00002), format_p(float("nan"))
    ('0.012', '<0.001', '–')
    """
    if not np.isfinite(p):
        return EMPTY_CELL
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def comparison_cell(row: pd.Series) -> str:
    """One comparison cell in points: ``Δ [low, high] p_perm p, p_seed q (k/n)``.

    ``[low, high]``: the bootstrap interval; ``p_perm``: the Holm-adjusted
    p-value of the stratified paired permutation test (conditional on the
    trained models), ``p_seed`` that of the t-test over seeds (UAR only);
    ``k/n``: seeds with the variant ahead. Bold when
    both adjusted p-values are at most :data:`ALPHA` (see
    :mod:`.significance` for why both); ``†`` when the column repeats
    another's experiment. Without predictions: ``Δ (k/n)``.

    Example
    -------
    >>> comparison_cell(pd.Series({"n_seeds": 3, "delta_mean": 0.05,
    ...     "ci_low": 0.01, "ci_high": 0.09, "p_holm": 0.004,
    ...     "p_seed_t_holm": 0.03, "n_better": 3, "repeat_of": ""}))
    '**+5.0 [+1.0, +9.0] p_perm 0.004, p_seed 0.030** (3/3)'
    >>> comparison_cell(pd.Series({"n_seeds": 3, "delta_mean": 0.05,
    ...     "ci_low": 0.01, "ci_high": 0.09, "p_holm": 0.004,
    ...     "p_seed_t_holm": 0.2, "n_better": 2, "repeat_of": "en_de"}))
    '+5.0 [+1.0, +9.0] p_perm 0.004, p_seed 0.200 (2/3)†'
    >>> comparison_cell(pd.Series({"n_seeds": 2, "delta_mean": 0.05,
    ...     "ci_low": float("nan"), "ci_high": float("nan"),
    ...     "p_holm": float("nan"), "n_better": 1, "repeat_of": ""}))
    '+5.0 (1/2)'
    """
    if int(row["n_seeds"]) == 0 or not np.isfinite(row["delta_mean"]):
        return EMPTY_CELL
    text = f"{100 * row['delta_mean']:+.1f}"
    if np.isfinite(row["ci_low"]):
        text += f" [{100 * row['ci_low']:+.1f}, {100 * row['ci_high']:+.1f}]"
    p = float(row.get("p_holm", math.nan))
    t = float(row.get("p_seed_t_holm", math.nan))
    if np.isfinite(p):
        text += f" p_perm {format_p(p)}, p_seed {format_p(t)}"
        if p <= ALPHA and t <= ALPHA:
            text = f"**{text}**"
    text += f" ({int(row['n_better'])}/{int(row['n_seeds'])})"
    if isinstance(row.get("repeat_of"), str) and row["repeat_of"]:
        text += SAME_AS_MARK
    return text


def comparisons_markdown(comparisons: pd.DataFrame, metric: str) -> str:
    """Write the comparisons of one metric as a Markdown table.

    Arguments
    ---------
    comparisons : pandas.DataFrame
        Rows of :func:`compare_variants` (any number of variant pairs),
        Holm-adjusted (:func:`adjust_pvalues`) for the p-values shown.
    metric : str
        ``"uar"`` or ``"macro_f1"``.

    Returns
    -------
    str
        A caption and a table: one row per comparison, one column per pair
        and ``Avg.``; cells by :func:`comparison_cell`.

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
    | proposed − baseline2 | +5.0 (3/3) | +5.0 (3/3) |
    """
    part = comparisons[comparisons["metric"] == metric]
    columns = list(dict.fromkeys(part["pair"]))
    test = (
        " p_perm: Holm-adjusted p-value of a stratified paired permutation test "
        "(seeds as strata, the two variants' predictions swapped per test "
        "utterance, statistic the mean over seeds of the UAR difference). It is "
        "conditional on the trained models: it asks whether these very models "
        "differ on these test utterances, not whether retraining would give the "
        "same difference, so alone it over-rejects when models vary from seed "
        "to seed. p_seed: Holm-adjusted p-value of a paired t-test over seeds "
        "(each seed's two trained models one replicate: training variation "
        "included, little power with few seeds). One test of each kind per "
        "distinct experiment, Holm over every test of the table; bold only "
        f"when both p_perm and p_seed ≤ {ALPHA}."
        if metric == "uar"
        else " No test on macro-F1 (the tests are on UAR)."
    )
    lines = [
        f"**{METRICS[metric]}**: Δ = mean over seeds of the paired difference "
        "(same seed), in points; [low, high]: 95 % hierarchical bootstrap "
        "interval (test speakers, utterances within them, seeds);"
        + test
        + f" k/n: seeds with the first variant ahead. {SAME_AS_MARK}: the column "
        "repeats another column's experiment (same test, counted once).",
        "",
        "| Comparison | " + " | ".join(pair_label(c) for c in columns) + " |",
        "| :-- |" + " --: |" * len(columns),
    ]
    for (variant, reference), rows in part.groupby(
        ["variant", "reference"], sort=False
    ):
        cells = rows.set_index("pair")
        texts = [comparison_cell(cells.loc[column]) for column in columns]
        lines.append(f"| {variant} − {reference} | " + " | ".join(texts) + " |")
    return "\n".join(lines)
