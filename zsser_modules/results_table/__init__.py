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
  competitor), then, in a block of their own, the transductive rows
  (``+spk-norm``: they use each test speaker's own statistics). Column
  order: the pairs as given, then the others with source and target in
  :data:`zsser_modules.labels.LANGUAGES` order. In each column, the best
  mean among the inductive zero-shot rows (neither ``upper_bound`` nor
  transductive) is in bold.
- **Intervals and tests**: where the runs wrote per-utterance predictions
  (``predictions.csv``, :mod:`zsser_modules.predictions`), every cell and
  every paired difference gets a 95 % hierarchical bootstrap interval
  (test speakers, utterances within them, seeds), and every paired UAR
  difference a stratified paired permutation test (seeds as strata),
  Holm-adjusted over the table, one test per distinct experiment. Runs
  without predictions get the means and seed spreads only, with a note.
- **Protocol**: the runs' ``protocol`` / ``paper_split`` / ``split_seed``
  are carried into the run table; the caption names the protocol, and a
  table mixing protocols or paper splits is refused (or, asked for, written
  marked MIXED).
- **Whole-target supplementary score** (``protocol: paper``, zero-shot
  runs: ``results.json["target_all"]``, ``predictions_target_all.csv``):
  the same tables, intervals, comparisons and tests, with a Holm family of
  their own, after the main tables (:func:`~.runs.score_runs` gives the run
  table of either score to the same machinery).

Modules, each named for what it holds: ``runs`` (loading each run's
``results.json`` into the run table), ``summary`` (row and column order,
cells over seeds, missing runs), ``markdown`` (the paper-shaped tables),
``comparisons`` (paired differences between variants, with intervals and
Holm-adjusted tests), ``intervals`` (the hierarchical bootstrap over test
speakers, utterances and seeds), ``significance`` (the stratified paired
permutation test and Holm's adjustment), ``uncertainty`` (from the runs'
``predictions.csv`` files to the intervals and tests), ``plot`` (the bar
chart) and ``write`` (every file of a folder of runs, and the command line).
Every public name is importable from the package itself.

Command line (rebuild the tables of any folder of runs)::

    python -m zsser_modules.results_table results/grid [--out DIR] [--seeds 1,2,3] \
        [--pairs en_de,zh_fr] [--variants baseline2,proposed] [--bootstrap 2000] \
        [--permutations 10000]

Authors
 * zsser contributors 2026
"""

from zsser_modules.results_table.comparisons import (
    COMPARISON_COLUMNS,
    COMPARISONS,
    adjust_pvalues,
    compare_variants,
    comparison_cell,
    comparisons_for,
    comparisons_markdown,
    format_p,
)
from zsser_modules.results_table.intervals import (
    BOOTSTRAP_SEED,
    CONFIDENCE,
    FEW_SPEAKERS,
    MIN_SPEAKERS,
    N_BOOTSTRAP,
    Column,
    Interval,
    align_predictions,
    bootstrap_interval,
    draws_of_test_set,
    hierarchical_weights,
    seed_layout,
    seed_weights,
    weighted_scores,
)
from zsser_modules.results_table.markdown import (
    EMPTY_CELL,
    SAME_AS_MARK,
    TRANSDUCTIVE_HEADER,
    diagnostics_markdown,
    format_cell,
    intervals_note,
    pair_label,
    repeats_note,
    to_markdown,
)
from zsser_modules.results_table.plot import VARIANT_COLORS, plot_variants
from zsser_modules.results_table.runs import (
    DIAGNOSTIC_COLUMNS,
    DIAGNOSTICS,
    METRICS,
    REQUIRED_KEYS,
    RUN_COLUMNS,
    SAME_AS_KEY,
    SCORES,
    SPEAKER_NORM_SUFFIX,
    TRANSDUCTIVE_SUFFIXES,
    TUNED_SUFFIX,
    InvalidResultError,
    base_variant,
    check_protocols,
    collect_results,
    load_result,
    protocols_of,
    row_label,
    run_notes,
    score_runs,
)
from zsser_modules.results_table.significance import (
    ALPHA,
    N_PERMUTATIONS,
    PERMUTATION_SEED,
    PairedTest,
    holm,
    paired_permutation_test,
    seed_t_test,
    uar_contributions,
)
from zsser_modules.results_table.summary import (
    AVG,
    ORACLE_VARIANTS,
    SUMMARY_COLUMNS,
    TRANSDUCTIVE_MARKS,
    VARIANT_ORDER,
    is_oracle,
    is_transductive,
    missing_runs,
    order_pairs,
    order_variants,
    summarize,
    to_wide,
)
from zsser_modules.results_table.uncertainty import (
    INTERVAL_COLUMNS,
    PredictionStore,
    cell_intervals,
    comparison_statistics,
    repeat_of,
)
from zsser_modules.results_table.write import (
    TABLE_FILES,
    TARGET_ALL_TITLE,
    main,
    protocol_caption,
    write_tables,
)

__all__ = [
    "ALPHA",
    "AVG",
    "BOOTSTRAP_SEED",
    "COMPARISONS",
    "COMPARISON_COLUMNS",
    "CONFIDENCE",
    "Column",
    "DIAGNOSTICS",
    "DIAGNOSTIC_COLUMNS",
    "EMPTY_CELL",
    "FEW_SPEAKERS",
    "INTERVAL_COLUMNS",
    "Interval",
    "InvalidResultError",
    "METRICS",
    "MIN_SPEAKERS",
    "N_BOOTSTRAP",
    "N_PERMUTATIONS",
    "ORACLE_VARIANTS",
    "PERMUTATION_SEED",
    "PairedTest",
    "PredictionStore",
    "REQUIRED_KEYS",
    "RUN_COLUMNS",
    "SAME_AS_KEY",
    "SAME_AS_MARK",
    "SCORES",
    "SPEAKER_NORM_SUFFIX",
    "SUMMARY_COLUMNS",
    "TABLE_FILES",
    "TARGET_ALL_TITLE",
    "TRANSDUCTIVE_HEADER",
    "TRANSDUCTIVE_MARKS",
    "TRANSDUCTIVE_SUFFIXES",
    "TUNED_SUFFIX",
    "VARIANT_COLORS",
    "VARIANT_ORDER",
    "adjust_pvalues",
    "align_predictions",
    "base_variant",
    "bootstrap_interval",
    "cell_intervals",
    "check_protocols",
    "collect_results",
    "compare_variants",
    "comparison_cell",
    "comparison_statistics",
    "comparisons_for",
    "comparisons_markdown",
    "diagnostics_markdown",
    "draws_of_test_set",
    "format_cell",
    "format_p",
    "hierarchical_weights",
    "holm",
    "intervals_note",
    "is_oracle",
    "is_transductive",
    "load_result",
    "main",
    "missing_runs",
    "order_pairs",
    "order_variants",
    "pair_label",
    "paired_permutation_test",
    "plot_variants",
    "protocol_caption",
    "protocols_of",
    "repeat_of",
    "repeats_note",
    "row_label",
    "run_notes",
    "score_runs",
    "seed_layout",
    "seed_t_test",
    "seed_weights",
    "summarize",
    "to_markdown",
    "to_wide",
    "uar_contributions",
    "weighted_scores",
    "write_tables",
]
