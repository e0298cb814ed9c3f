"""Rendering the summary as the paper-shaped Markdown tables.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from zsser_modules.results_table.intervals import FEW_SPEAKERS, MIN_SPEAKERS
from zsser_modules.results_table.runs import DIAGNOSTICS, METRICS
from zsser_modules.results_table.summary import (
    AVG,
    SUMMARY_COLUMNS,
    _mean_std,
    is_oracle,
    is_transductive,
    order_variants,
)

#: Shown for a cell without any run.
EMPTY_CELL = "–"


#: Appended in Markdown to a cell whose runs repeat another column's.
SAME_AS_MARK = "†"


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
    mean: float,
    std: float,
    n_seeds: int,
    n_expected: int,
    bold: bool = False,
    low: float = float("nan"),
    high: float = float("nan"),
) -> str:
    """Format one cell in percent: ``"60.0 ± 10.0 [52.1, 67.3]"``, marked if incomplete.

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
    low : float
        Lower end of the bootstrap interval, a fraction (NaN: none shown).
    high : float
        Its upper end.

    Returns
    -------
    str
        ``"–"`` without runs; ``"61.2"`` with one seed; ``"60.0 ± 10.0"`` with
        more; `` [low, high]`` after them when there is an interval;
        `` (k/n)`` appended when ``n_seeds < n_expected``.

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
    >>> format_cell(0.6, 0.1, 3, 3, low=0.521, high=0.673)
    '60.0 ± 10.0 [52.1, 67.3]'
    """
    if n_seeds == 0 or not np.isfinite(mean):
        return EMPTY_CELL
    text = f"{100 * mean:.1f}"
    if n_seeds > 1 and np.isfinite(std):
        text += f" ± {100 * std:.1f}"
    if np.isfinite(low) and np.isfinite(high):
        text += f" [{100 * low:.1f}, {100 * high:.1f}]"
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


#: Label of the row that opens the block of transductive rows.
TRANSDUCTIVE_HEADER = "*transductive: test-speaker statistics*"


def to_markdown(summary: pd.DataFrame, metric: str) -> str:
    """Write one metric of a summary as a Markdown table (rows: variants).

    Arguments
    ---------
    summary : pandas.DataFrame
        Output of :func:`summarize`, with intervals where
        :func:`~.uncertainty.cell_intervals` added them.
    metric : str
        ``"uar"`` or ``"macro_f1"``.

    Returns
    -------
    str
        A caption line, a blank line and the table (no trailing newline).
        Columns: ``Variant``, one per pair (``en→de``), ``Avg.``. Cells:
        :func:`format_cell` (with the bootstrap interval where the summary
        has one). The best mean of each column among the zero-shot
        (inductive, non-oracle) rows is bold; transductive rows
        (:func:`~.summary.is_transductive`) follow in a block of their own,
        opened by :data:`TRANSDUCTIVE_HEADER`, and are never bold; a cell
        that repeats another column's runs ends with ``†``.

    Example
    -------
    >>> from zsser_modules.results_table.summary import summarize
    >>> df = pd.DataFrame({"pair": "en_de", "variant": ["baseline1"] * 3
    ...     + ["proposed"] * 3 + ["proposed +spk-norm"] * 3, "seed": [1, 2, 3] * 3,
    ...     "uar": [0.4, 0.5, 0.6, 0.5, 0.6, 0.7, 0.6, 0.7, 0.8], "macro_f1": 0.5})
    >>> print(to_markdown(summarize(df), "uar"))
    **UAR (%)**: mean ± std over seeds
    <BLANKLINE>
    | Variant | en→de | Avg. |
    | :-- | --: | --: |
    | baseline1 | 50.0 ± 10.0 | 50.0 ± 10.0 |
    | proposed | **60.0 ± 10.0** | **60.0 ± 10.0** |
    | *transductive: test-speaker statistics* | | |
    | proposed +spk-norm | 70.0 ± 10.0 | 70.0 ± 10.0 |
    """
    _check_summary(summary, metric)
    columns = list(dict.fromkeys(summary["pair"]))
    variants = list(dict.fromkeys(summary["variant"]))
    cells = summary.set_index(["variant", "pair"])
    has_intervals = f"{metric}_low" in summary.columns and bool(
        summary[f"{metric}_low"].notna().any()
    )

    def competing(name: str) -> bool:
        return not is_oracle(name) and not is_transductive(name)

    best = {}
    for column in columns:
        means = cells.xs(column, level="pair")[f"{metric}_mean"]
        means = means[[competing(v) for v in means.index]].dropna()
        if len(means) > 1:
            best[column] = round(100 * means.max(), 1)
    caption = f"**{METRICS[metric]} (%)**: mean ± std over seeds"
    if has_intervals:
        caption += (
            " [95 % hierarchical bootstrap interval: test speakers, utterances "
            "within them, seeds]"
        )
    lines = [
        caption,
        "",
        "| Variant | " + " | ".join(pair_label(c) for c in columns) + " |",
        "| :-- |" + " --: |" * len(columns),
    ]
    inductive = [v for v in variants if not is_transductive(v)]
    transductive = [v for v in variants if is_transductive(v)]
    for variant in inductive + transductive:
        if transductive and variant == transductive[0]:
            lines.append(f"| {TRANSDUCTIVE_HEADER} |" + " |" * len(columns))
        texts = []
        for column in columns:
            cell = cells.loc[(variant, column)]
            mean = float(cell[f"{metric}_mean"])
            bold = (
                competing(variant)
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
                    low=float(cell.get(f"{metric}_low", np.nan)),
                    high=float(cell.get(f"{metric}_high", np.nan)),
                )
                + (SAME_AS_MARK if cell["same_as"] else "")
            )
        lines.append(f"| {variant} | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def intervals_note(summary: pd.DataFrame) -> str:
    """Notes on the intervals: few test speakers, cells without predictions.

    A column whose test set has a single speaker gets an interval
    conditional on that speaker (utterances and seeds resampled only);
    fewer than :data:`~.intervals.MIN_SPEAKERS` speakers: no speaker-level
    interval is meaningful; fewer than :data:`~.intervals.FEW_SPEAKERS`: the
    coverage caveat. Each column is named under the first that applies.

    Arguments
    ---------
    summary : pandas.DataFrame
        Output of :func:`summarize` with :func:`~.uncertainty.cell_intervals`.

    Returns
    -------
    str
        Markdown paragraphs, or ``""`` when there is nothing to note.

    Example
    -------
    >>> summary = pd.DataFrame({"variant": "proposed", "pair": ["en_de", "Avg."],
    ...     "n_seeds": 3, "uar_low": [0.5, 0.5], "n_speakers": [10, 10]})
    >>> print(intervals_note(summary))  # doctest: +NORMALIZE_WHITESPACE
    Coverage caveat: test sets with fewer than 20 speakers: en→de (10); a
    bootstrap over so few speakers tends to give intervals that are too narrow.
    >>> summary = pd.DataFrame({"variant": "proposed",
    ...     "pair": ["en_de", "en_fr", "Avg."], "n_seeds": 3,
    ...     "uar_low": 0.5, "n_speakers": [1, 3, 4]})
    >>> print(intervals_note(summary))  # doctest: +NORMALIZE_WHITESPACE
    One test speaker: en→de; its intervals are conditional on that speaker
    (utterance-level only: its utterances and the seeds resampled) and say
    nothing about other speakers of the language.
    <BLANKLINE>
    No meaningful speaker-level interval: test sets with fewer than 5
    speakers: en→fr (3); their intervals describe these speakers' utterances,
    not the language's speakers.
    """
    if "uar_low" not in summary.columns:
        return ""
    pairs = summary[(summary["pair"] != AVG) & (summary["n_seeds"] > 0)]
    notes = []
    with_interval = pairs[pairs["uar_low"].notna()]
    counts = with_interval.groupby("pair", sort=False)["n_speakers"].min()
    one = [p for p, n in counts.items() if n == 1]
    if one:
        notes.append(
            f"One test speaker: {', '.join(pair_label(p) for p in one)}; its "
            "intervals are conditional on that speaker (utterance-level only: its "
            "utterances and the seeds resampled) and say nothing about other "
            "speakers of the language."
        )
    handful = counts[(counts > 1) & (counts < MIN_SPEAKERS)]
    if len(handful):
        items = ", ".join(f"{pair_label(p)} ({n})" for p, n in handful.items())
        notes.append(
            "No meaningful speaker-level interval: test sets with fewer than "
            f"{MIN_SPEAKERS} speakers: {items}; their intervals describe these "
            "speakers' utterances, not the language's speakers."
        )
    few = counts[(counts >= MIN_SPEAKERS) & (counts < FEW_SPEAKERS)]
    if len(few):
        items = ", ".join(f"{pair_label(p)} ({n})" for p, n in few.items())
        notes.append(
            f"Coverage caveat: test sets with fewer than {FEW_SPEAKERS} "
            f"speakers: {items}; a bootstrap over so few speakers tends to give "
            "intervals that are too narrow."
        )
    without = pairs[pairs["uar_low"].isna()]
    if len(without):
        items = sorted(
            {
                f"{v} {pair_label(p)}"
                for v, p in zip(without["variant"], without["pair"])
            }
        )
        shown = ", ".join(items[:12]) + (
            f" and {len(items) - 12} more" if len(items) > 12 else ""
        )
        notes.append(
            f"Means only (no interval, no test) where a run lacks per-utterance "
            f"predictions (runs made before predictions.csv was written) or they "
            f"do not reproduce results.json: {shown}."
        )
    return "\n\n".join(notes)


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
    >>> from zsser_modules.results_table.summary import summarize
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
