"""Writing every table of a folder of runs, and the command line.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from zsser_modules.optional import missing_extra_message, missing_modules
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
    InvalidResultError,
    PathLike,
    check_protocols,
    collect_results,
    protocols_of,
    run_notes,
    score_runs,
)
from zsser_modules.results_table.significance import N_PERMUTATIONS
from zsser_modules.results_table.summary import (
    AVG,
    is_oracle,
    missing_runs,
    summarize,
    to_wide,
)
from zsser_modules.results_table.uncertainty import PredictionStore, cell_intervals

#: Files written by :func:`write_tables`, by key.
TABLE_FILES = {
    "markdown": "results.md",
    "runs": "runs.csv",
    "summary_long": "summary_long.csv",
    "summary_wide": "summary_wide.csv",
    "missing": "missing_runs.csv",
    "comparisons": "comparisons.csv",
    "summary_long_target_all": "summary_long_target_all.csv",
    "comparisons_target_all": "comparisons_target_all.csv",
    "figure": "variants.png",
}

#: Files of the supplementary whole-target tables (written only when some
#: run has a ``target_all`` score).
TARGET_ALL_FILES = ("summary_long_target_all", "comparisons_target_all")

#: Title of the supplementary section of results.md.
TARGET_ALL_TITLE = (
    "Supplementary: the whole target corpus, which contains the test split; "
    "zero-shot systems only"
)


def protocol_caption(df: pd.DataFrame) -> str:
    """The sentence of results.md naming the protocol and what each system sees.

    Example
    -------
    >>> print(protocol_caption(pd.DataFrame({"protocol": ["paper"],
    ...     "paper_split": ["stratified"]})))  # doctest: +ELLIPSIS
    Protocol: paper (stratified): every system is tested on the target's test split; ...
    """
    found = protocols_of(df)
    if len(found) != 1:
        return (
            f"Protocols: MIXED ({', '.join(found) or 'none'}): rows and columns "
            "may not be comparable."
        )
    name = found[0]
    if name.startswith("paper"):
        return (
            f"Protocol: {name}: every system is tested on the target's test "
            "split; `upper_bound` trains on the target's train split only "
            "(validation on its dev split), never on its test split, and is an "
            "oracle, not a zero-shot system."
        )
    what = name
    if name != "speaker":
        what += " (runs made before results.json named it: the speaker settings)"
    return (
        f"Protocol: {what}: zero-shot systems are tested on the whole unseen "
        "target corpus; `upper_bound` also trains on the target language "
        "(its training speakers) and is tested on its held-out speakers."
    )


def _score_tables(
    df: pd.DataFrame,
    seeds: Iterable[int] | None,
    pairs: Sequence[str] | None,
    variants: Sequence[str] | None,
    n_boot: int,
    n_perm: int,
) -> tuple[pd.DataFrame, pd.DataFrame, PredictionStore]:
    """Summary with intervals, and Holm-adjusted comparisons, of one score's runs.

    ``df`` is a run table as :func:`~.runs.score_runs` gives it: the same
    machinery serves the headline score and the whole-target one, each with
    its own Holm family.
    """
    store = PredictionStore(df)
    summary = summarize(df, seeds=seeds, pairs=pairs, variants=variants)
    summary = cell_intervals(df, summary, store, n_boot=n_boot)
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
        for variant, reference in comparisons_for(set(df["variant"]))
        for metric in METRICS
    ]
    comparisons = (
        pd.concat(comparisons, ignore_index=True)
        if comparisons
        else pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    )
    return summary, adjust_pvalues(comparisons), store


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
    if "target_all_uar" in df.columns and df["target_all_uar"].notna().any():
        zero_shot = ~df["variant"].map(is_oracle).astype(bool)
        lines.append(
            "- Zero-shot runs with a whole-target score (results.json target_all): "
            f"{int(df.loc[zero_shot, 'target_all_uar'].notna().sum())} of "
            f"{int(zero_shot.sum())}; with its predictions_target_all.csv: "
            f"{int(df['predictions_target_all'].notna().sum())}."
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
    allow_mixed: bool = False,
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
    allow_mixed : bool
        Write a table of runs of different ``protocol`` / ``paper_split``,
        marked MIXED in results.md (default: refuse it).

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
        Holm-adjusted p-values, :func:`adjust_pvalues`),
        ``summary_long_target_all`` and ``comparisons_target_all`` (the same
        for the zero-shot runs' whole-target score, its own Holm family;
        only when some run has one, :func:`~.runs.score_runs`) and
        ``figure`` (``variants.png``, if ``figure``).

    Raises
    ------
    InvalidResultError
        If the runs mix protocols or paper splits and not ``allow_mixed``.

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
    mixed = protocols_of(df)
    if not allow_mixed:
        check_protocols(df)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary, comparisons, store = _score_tables(
        df, seeds, pairs, variants, n_boot, n_perm
    )
    missing = missing_runs(df, seeds=seeds, pairs=pairs, variants=variants)
    every = score_runs(df, "target_all")
    supplementary = None
    if len(every):
        shown = [v for v in variants or () if not is_oracle(v)] or None
        supplementary = _score_tables(every, seeds, pairs, shown, n_boot, n_perm)
    paths = {key: out_dir / name for key, name in TABLE_FILES.items()}
    if figure and "matplotlib" in missing_modules("plots"):
        # The tables are the result; the figure only illustrates them.
        logging.getLogger(__name__).warning(
            "variants.png skipped: %s",
            missing_extra_message("plots", "it", "matplotlib"),
        )
        figure = False
    if not figure:
        del paths["figure"]
    if supplementary is None:
        for key in TARGET_ALL_FILES:  # no stale file of an earlier table
            paths.pop(key).unlink(missing_ok=True)

    df.to_csv(paths["runs"], index=False)
    summary.to_csv(paths["summary_long"], index=False)
    to_wide(summary).to_csv(paths["summary_wide"])
    missing.to_csv(paths["missing"], index=False)
    comparisons.to_csv(paths["comparisons"], index=False)
    if supplementary is not None:
        supplementary[0].to_csv(paths["summary_long_target_all"], index=False)
        supplementary[1].to_csv(paths["comparisons_target_all"], index=False)
    if figure:
        plot_variants(df, paths["figure"], seeds=seeds, pairs=pairs, variants=variants)

    warning = []
    if len(mixed) > 1:
        warning = [
            f"> **WARNING: these tables MIX runs of different protocols "
            f"({', '.join(mixed)}): their cells were not measured alike; "
            "collect one grid folder per protocol for tables to report.**\n"
        ]
    parts = [
        "# Results",
        "",
        *warning,
        *[f"> **Note: {note}.**\n" for note in run_notes(df)],
        "Zero-shot cross-lingual SER: test on the unseen target language. "
        + protocol_caption(df)
        + " Cells: mean ± sample std over seeds, "
        "in %; one seed: the mean only. Avg.: mean ± std over seeds of the "
        "per-seed average over the pairs, using the seeds that have every pair. "
        "`(k/n)`: k of the n expected seeds found; `–`: no run. "
        "[low, high]: 95 % hierarchical bootstrap interval (test speakers, "
        "utterances within them, and seeds resampled; UAR and macro-F1 "
        "recomputed from each run's predictions.csv). Bold: best zero-shot "
        "variant of the column, among the inductive rows; the transductive rows "
        "(+spk-norm: every utterance standardised with its speaker's statistics "
        "over that speaker's utterances in the same split, so a test speaker's "
        "come from all its test utterances, unlabelled, the same for every "
        "system of the task) form a block of their own and are never bold.",
    ]
    for metric in METRICS:
        parts += ["", to_markdown(summary, metric)]
    for note in (repeats_note(summary), intervals_note(summary)):
        if note:
            parts += ["", note]
    if len(comparisons):
        parts += ["", "## Paired comparisons", ""]
        parts += ["\n\n".join(comparisons_markdown(comparisons, m) for m in METRICS)]
    if supplementary is not None:
        every_summary, every_comparisons, every_store = supplementary
        store.problems += [f"(whole target) {p}" for p in every_store.problems]
        parts += [
            "",
            f"## {TARGET_ALL_TITLE}",
            "",
            "Each zero-shot run also scored on every utterance of the target "
            "corpus (results.json `target_all`, predictions_target_all.csv): "
            "steadier than a small test split, but it contains the test split "
            "and is not the paper's number. `upper_bound` has none (it trains on "
            "the target). Same cells, intervals, comparisons and tests as above; "
            "its tests are a Holm family of their own.",
        ]
        for metric in METRICS:
            parts += ["", to_markdown(every_summary, metric)]
        for note in (repeats_note(every_summary), intervals_note(every_summary)):
            if note:
                parts += ["", note]
        if len(every_comparisons):
            parts += ["", "### Paired comparisons on the whole target", ""]
            parts += [
                "\n\n".join(comparisons_markdown(every_comparisons, m) for m in METRICS)
            ]
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
        [--bootstrap N] [--permutations N] [--allow-mixed-protocols]``.

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
        "--allow-mixed-protocols",
        action="store_true",
        help="write tables of runs of different protocol/paper_split, marked "
        "MIXED (default: refuse them)",
    )
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
    try:
        paths = write_tables(
            df,
            args.out or args.root,
            seeds=seeds,
            pairs=pairs,
            variants=variants,
            figure=not args.no_figure,
            n_boot=args.bootstrap,
            n_perm=args.permutations,
            allow_mixed=args.allow_mixed_protocols,
        )
    except InvalidResultError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"{len(df)} runs -> {paths['markdown']}")
    return paths
