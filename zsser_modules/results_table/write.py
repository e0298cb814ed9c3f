"""Writing every table of a folder of runs, and the command line.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from zsser_modules.results_table.comparisons import (
    COMPARISON_COLUMNS,
    adjust_pvalues,
    compare_variants,
    comparisons_for,
    comparisons_markdown,
)
from zsser_modules.results_table.intervals import N_BOOTSTRAP
from zsser_modules.results_table.markdown import (
    diagnostics_markdown,
    intervals_note,
    pair_label,
    repeats_note,
    to_markdown,
)
from zsser_modules.results_table.plot import plot_variants
from zsser_modules.results_table.runs import (
    METRICS,
    PathLike,
    collect_results,
    run_notes,
)
from zsser_modules.results_table.significance import N_PERMUTATIONS
from zsser_modules.results_table.summary import AVG, missing_runs, summarize, to_wide
from zsser_modules.results_table.uncertainty import PredictionStore, cell_intervals

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


def _runs_report(
    df: pd.DataFrame,
    summary: pd.DataFrame,
    missing: pd.DataFrame,
    max_items: int = 30,
    problems: Sequence[str] = (),
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
    if "predictions" in df.columns:
        with_predictions = int(df["predictions"].notna().sum())
        lines.append(
            f"- Runs with per-utterance predictions (predictions.csv): "
            f"{with_predictions} of {len(df)}."
        )
    if problems:
        lines.append(
            f"- Unusable prediction files: {len(problems)}, e.g. {problems[0]}"
        )
    skipped = df.attrs.get("skipped") or []
    if skipped:
        lines.append(
            f"- Unusable results.json skipped: {len(skipped)}, e.g. {skipped[0][1]}"
        )
    return "\n".join(lines)


def write_tables(
    df: pd.DataFrame,
    out_dir: PathLike,
    seeds: Iterable[int] | None = None,
    pairs: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    figure: bool = True,
    n_boot: int = N_BOOTSTRAP,
    n_perm: int = N_PERMUTATIONS,
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
    n_boot : int
        Bootstrap replicates of each interval (:mod:`.intervals`).
    n_perm : int
        Random swaps of each paired test (:mod:`.significance`).

    Returns
    -------
    dict of str to pathlib.Path
        By key (:data:`TABLE_FILES`): ``markdown`` (``results.md``: UAR and
        macro-F1 tables, definitions, run report), ``runs`` (``runs.csv``,
        one row per run), ``summary_long`` (``summary_long.csv``, one row per
        cell, :func:`summarize`, with the bootstrap intervals of
        :func:`~.uncertainty.cell_intervals`), ``summary_wide``
        (``summary_wide.csv``, one
        row per variant, :func:`to_wide`), ``missing`` (``missing_runs.csv``),
        ``comparisons`` (``comparisons.csv``: :func:`compare_variants` for
        :func:`comparisons_for` of the rows with runs, both metrics, with
        Holm-adjusted p-values, :func:`adjust_pvalues`) and
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
    store = PredictionStore(df)
    summary = summarize(df, seeds=seeds, pairs=pairs, variants=variants)
    summary = cell_intervals(df, summary, store, n_boot=n_boot)
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
        compare_variants(
            df,
            variant,
            reference,
            metric,
            pairs=order,
            store=store,
            n_boot=n_boot,
            n_perm=n_perm,
        )
        for variant, reference in comparisons_for(found)
        for metric in METRICS
    ]
    comparisons = (
        pd.concat(comparisons, ignore_index=True)
        if comparisons
        else pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    )
    comparisons = adjust_pvalues(comparisons)
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
        "`(k/n)`: k of the n expected seeds found; `–`: no run. "
        "[low, high]: 95 % hierarchical bootstrap interval (test speakers, "
        "utterances within them, and seeds resampled; UAR and macro-F1 "
        "recomputed from each run's predictions.csv). Bold: best zero-shot "
        "variant of the column, among the inductive rows; the transductive rows "
        "(+spk-norm: each test speaker's own statistics, computed from all its "
        "test utterances) form a block of their own and are never bold.",
    ]
    for metric in METRICS:
        parts += ["", to_markdown(summary, metric)]
    for note in (repeats_note(summary), intervals_note(summary)):
        if note:
            parts += ["", note]
    if len(comparisons):
        parts += ["", "## Paired comparisons", ""]
        parts += ["\n\n".join(comparisons_markdown(comparisons, m) for m in METRICS)]
    diagnostics = diagnostics_markdown(df)
    if diagnostics:
        parts += ["", "## Representation diagnostics", "", diagnostics]
    parts += [
        "",
        "## Runs",
        "",
        _runs_report(df, summary, missing, problems=store.problems),
    ]
    if figure:
        parts += ["", f"![Variants]({paths['figure'].name})"]
    paths["markdown"].write_text("\n".join(parts) + "\n", encoding="utf-8")
    return paths


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    """Command line: rebuild the tables and figure of a folder of runs.

    Arguments
    ---------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``): ``ROOT [--out DIR] [--seeds 1,2,3]
        [--pairs en_de,zh_fr] [--variants baseline2,proposed] [--no-figure]
        [--bootstrap N] [--permutations N]``.

    Returns
    -------
    dict of str to pathlib.Path
        The written files (:func:`write_tables`).

    Example
    -------
    >>> import json
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
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=N_BOOTSTRAP,
        help=f"bootstrap replicates per interval (default {N_BOOTSTRAP})",
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=N_PERMUTATIONS,
        help=f"random swaps per paired test (default {N_PERMUTATIONS})",
    )
    args = parser.parse_args(argv)
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()] or None
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] or None
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if args.bootstrap < 1 or args.permutations < 1:
        parser.error("--bootstrap and --permutations must be positive integers")
    df = collect_results(args.root)
    paths = write_tables(
        df,
        args.out or args.root,
        seeds=seeds,
        pairs=pairs,
        variants=variants,
        figure=not args.no_figure,
        n_boot=args.bootstrap,
        n_perm=args.permutations,
    )
    print(f"{len(df)} runs -> {paths['markdown']}")
    return paths
