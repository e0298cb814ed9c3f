#!/usr/bin/env python3
"""Run a grid of zero-shot SER experiments (pairs x variants x seeds), then tabulate.

Each run is one call of the recipe with its command line, writing
``<grid_folder>/<pair>/<variant>/seed<k>/``::

    python recipes/train.py HPARAMS --variant=<v> --seed=<k> \
        --output_folder=<grid_folder>/<pair>/<variant>/seed<k> \
        --source_lang=<s> --target_lang=<t> --noprogressbar [OVERRIDES]

The runs go through a job engine (``--engine``,
:mod:`zsser_modules.grid_engine`): ``local`` (default) is a standard-library
process pool of ``--jobs`` workers that each run run after run in-process
(the recipe's ``__main__``, with its own folder, log and time limit), so
torch and SpeechBrain are imported once per worker, not once per run;
``submitit-local``, ``slurm`` and ``debug`` are submitit's executors (one job
per pair and variant; on SLURM a preempted job is requeued and its runs
resume).

- Runs with a valid ``results.json`` (for the same pair, variant and seed)
  made with the same settings are skipped; the others are run (the recipe
  resumes an interrupted run exactly from its last checkpoint). "Same
  settings" is the recipe's own run identity
  (``zsser_modules.run_identity``: every resolved hyperparameter but paths
  and speed settings): a finished run whose ``run_identity`` differs from
  the current command's is not touched and is reported, with the keys that
  differ, as a conflict; ``-- --overwrite=True`` retrains it (the recipe
  moves the old run aside).
- A failed run (an exception or non-zero exit status, a timeout, its worker
  dying twice, or no valid ``results.json``) is
  recorded in ``<grid_folder>/failures.json`` with its return code and the
  tail of its log (``<run folder>/grid_log.txt``); the grid goes on. The exit
  status is non-zero only with ``--strict``.
- ``--jobs N`` runs N runs at once, each with ``OMP_NUM_THREADS`` (and
  ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, torch's threads) set to ``--threads``
  (default: the available cores divided by N). Runs share the prepared
  corpora and settings, so by default the first run (one that prepares every
  corpus) runs alone, and the first run of each (pair, variant) finishes
  before the other seeds of that (pair, variant) start (``--no-warmup`` turns
  this off). Runs are ordered seed-major: every cell gets seed 1 first.
- ``--split-seed follow`` gives each run ``--split_seed=<its seed>``: the
  validation speakers (speaker protocol), or which utterances the paper
  protocol's fixed-count splits hold, then vary with the seed, so the spread
  over seeds includes the split's. Default ``fixed``: the file's
  ``split_seed`` for every seed.
- Everything after ``--`` goes to every run (``-- --encoder=fbank
  --number_of_epochs=5 --device=cpu``).
- Identical experiments run once. Every variant but baseline1 trains on
  all the pool's languages except the target, so the source does not change
  it: with the same hyperparameters (apart from ``source_lang``), overrides
  and seed, ``en_de`` and ``zh_de`` of such a variant are one experiment
  (same training, validation and test manifests, byte for byte). The grid
  runs the first of them (in ``--pairs`` order) and writes the others'
  ``results.json`` from it, with ``"same_experiment_as": "<run key>"``; the
  table marks those cells with ``†``. ``--no-dedupe`` runs every run
  (:mod:`zsser_modules.grid_dedupe`).
- The runs, their order and the command-line values are planned by
  :mod:`zsser_modules.grid_plan`; this script is the command line and the
  orchestration (done, conflicting, failed and copied runs; the table).
- At the end the results table of everything under the grid folder is
  written (``results.md``, CSV files, ``variants.png``; see
  ``zsser_modules/results_table/``).

Examples (from the repository root)::

    python recipes/run_grid.py --grid-folder results/grid --jobs 2 \
        -- --esd_folder=/data/ESD --emodb_folder=/data/EmoDB \
           --cafe_folder=/data/CaFE --urdu_folder=/data/URDU
    python recipes/run_grid.py --hparams hparams/demo.yaml --pairs en_de,zh_fr \
        --variants baseline2,proposed --seeds 1 -- --encoder=fbank

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from zsser_modules.atomic_write import write_json_atomic
from zsser_modules.grid_dedupe import (
    find_repeats,
    is_copied,
    override_value,
    repeat_run,
    stale_copy,
)
from zsser_modules.grid_engine import (
    COMMAND_NAME,
    ENGINES,
    LOG_NAME,
    SUBMITIT_FOLDER,
    THREAD_VARIABLES,
    EngineError,
    Outcome,
    Run,
    execute,
    make_engine,
    run_state,
)
from zsser_modules.grid_plan import (
    check_grid_overrides,
    hparams_file,
    parse_pairs,
    parse_seeds,
    parse_split_seed,
    parse_variants,
    plan_runs,
    plan_units,
    split_seed_overrides,
)
from zsser_modules.labels import PAPER_TASKS
from zsser_modules.results_table import (
    SAME_AS_KEY,
    VARIANT_ORDER,
    collect_results,
    run_notes,
    summarize,
    to_markdown,
    write_tables,
)
from zsser_modules.run_identity import IDENTITY_FILE, RunIdentity, describe_differences
from zsser_modules.run_identity import RESULTS_KEY as IDENTITY_KEY

REPO_ROOT = Path(__file__).resolve().parents[1]

#: The paper's nine tasks (Mi, Ma, Toda 2026; docs/grid.md): every ordered pair
#: of English, Mandarin, German and French whose target is German, French or
#: Mandarin (Urdu is an auxiliary language of every task).
DEFAULT_PAIRS: tuple[str, ...] = PAPER_TASKS
#: Five seeds at least (issue 19): the spread over seeds, and the paired
#: tests over them, need more than three.
DEFAULT_SEEDS: tuple[int, ...] = (1, 2, 3, 4, 5)
DEFAULT_RECIPE = REPO_ROOT / "recipes" / "train.py"
#: Default hyperparameter file of a pair; ``{pair}``, ``{source}`` and
#: ``{target}`` are replaced. A path without placeholders is one file for
#: every pair (the pair is set by --source_lang/--target_lang).
DEFAULT_HPARAMS = str(REPO_ROOT / "hparams" / "{pair}.yaml")
FAILURES_NAME = "failures.json"


# ---- Planning -----------------------------------------------------------------


def recipe_command(
    run: Run,
    hparams: str,
    recipe: str | os.PathLike = DEFAULT_RECIPE,
    overrides: Sequence[str] = (),
    python: str = sys.executable,
    split_seed: str | int | None = None,
) -> list[str]:
    """The command line of one run.

    Arguments
    ---------
    run : Run
        The run.
    hparams : str
        Hyperparameter file or pattern (see :func:`hparams_file`).
    recipe : str or path-like
        The training script.
    overrides : sequence of str
        Pass-through arguments, appended last (``--noprogressbar`` is added
        unless present).
    python : str
        The Python interpreter.
    split_seed : str, int or None
        The grid's ``--split-seed`` (:func:`zsser_modules.grid_plan.parse_split_seed`):
        ``"follow"`` or an integer adds ``--split_seed=<n>`` before the
        overrides; None adds nothing.

    Returns
    -------
    list of str
        ``[python, recipe, hparams_file, --variant=, --seed=, --output_folder=,
        --source_lang=, --target_lang=, --noprogressbar, [--split_seed=],
        *overrides]``.

    Example
    -------
    >>> run = Run("en", "de", "proposed", 1, Path("/g/en_de/proposed/seed1"))
    >>> recipe_command(run, "/h/{pair}.yaml", "train.py", ["--encoder=fbank"],
    ...                python="python")[2:]
    ['/h/en_de.yaml', '--variant=proposed', '--seed=1', '--output_folder=/g/en_de/proposed/seed1', '--source_lang=en', '--target_lang=de', '--noprogressbar', '--encoder=fbank']
    >>> recipe_command(run, "/h/{pair}.yaml", "train.py", python="python",
    ...                split_seed="follow")[-1]
    '--split_seed=1'
    """  # noqa: E501
    extra = [] if "--noprogressbar" in overrides else ["--noprogressbar"]
    return [
        python,
        str(recipe),
        str(hparams_file(hparams, run)),
        f"--variant={run.variant}",
        f"--seed={run.seed}",
        f"--output_folder={os.path.abspath(run.output_folder)}",
        f"--source_lang={run.source}",
        f"--target_lang={run.target}",
        *extra,
        *split_seed_overrides(run, split_seed),
        *overrides,
    ]


def changed_settings(run: Run, argv: Sequence[str]) -> str:
    """Why a finished run does not match the recipe arguments ``argv`` ('': it does).

    Compares the ``run_identity`` hash of the run's results.json with the
    identity the recipe computes for ``argv``
    (:class:`zsser_modules.run_identity.RunIdentity`), and names the keys
    that differ from the run's ``run_identity.json``. Results taken from an
    identical run (they follow their original) and results written before
    run identities existed are not checked.

    Arguments
    ---------
    run : Run
        A run with a valid results.json.
    argv : sequence of str
        The recipe's arguments for the run (hyperparameter file first).

    Returns
    -------
    str
        Empty if the settings are the same; else a message with the keys.
    """
    try:
        data = json.loads(run.results_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    recorded = data.get(IDENTITY_KEY) if isinstance(data, dict) else None
    if not recorded or data.get(SAME_AS_KEY):
        return ""
    try:
        identity = RunIdentity.from_argv(argv)
    except Exception:  # unreadable hyperparameters: the run will report them
        return ""
    if identity.hash == recorded:
        return ""
    try:
        old, _ = RunIdentity.load(run.output_folder / IDENTITY_FILE)
        keys = describe_differences(old.differences(identity)).replace("\n", ";")
    except (OSError, ValueError, KeyError):
        keys = f"  (no readable {IDENTITY_FILE})"
    return (
        f"{run.results_file} was made with other settings (run identity "
        f"{recorded}, this command {identity.hash}):{keys}. Kept; use another "
        "--grid-folder for these settings, or pass -- --overwrite=True to retrain "
        "it (the old run is moved aside)."
    )


def available_cores() -> int:
    """CPU cores this process may use.

    Returns
    -------
    int
        The size of the CPU affinity set (or ``os.cpu_count()``), at least 1.

    Example
    -------
    >>> available_cores() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# ---- Execution ----------------------------------------------------------------


def update_failures(
    path: Path, outcomes: Sequence[Outcome], planned: Sequence[Run]
) -> list[dict]:
    """Rewrite failures.json: this invocation's failures replace older records.

    Records of runs planned in this invocation are replaced by their new
    outcome (dropped if done or ok); records of other runs are kept.

    Arguments
    ---------
    path : pathlib.Path
        ``<grid_folder>/failures.json``.
    outcomes : sequence of Outcome
        Outcomes of this invocation (failed and conflicting runs are recorded).
    planned : sequence of Run
        Every run of this invocation (done, run or not).

    Returns
    -------
    list of dict
        The records written, sorted by run.

    Example
    -------
    >>> path = getfixture("tmp_path") / "failures.json"
    >>> run = Run("en", "de", "proposed", 1, Path("g/en_de/proposed/seed1"))
    >>> bad = Outcome(run, "failed", returncode=1, reason="exited with code 1")
    >>> [r["run"] for r in update_failures(path, [bad], [run])]
    ['en_de/proposed/seed1']
    >>> update_failures(path, [], [run])
    []
    """
    old: list = []
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            old = []
        if not isinstance(old, list):
            old = []
    planned_keys = {run.key for run in planned}
    records = [
        r for r in old if isinstance(r, dict) and r.get("run") not in planned_keys
    ]
    records += [outcome.record() for outcome in outcomes if not outcome.ok]
    records.sort(key=lambda r: str(r.get("run")))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, records, ensure_ascii=False)
    return records


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _describe(outcome: Outcome) -> str:
    run = outcome.run
    if outcome.ok:
        res = outcome.result or {}
        if outcome.reason:  # taken from an identical run
            return (
                f"same    {run.key}  UAR {100 * res.get('uar', float('nan')):.1f}  "
                f"F1 {100 * res.get('macro_f1', float('nan')):.1f}  ({outcome.reason})"
            )
        return (
            f"ok      {run.key}  UAR {100 * res.get('uar', float('nan')):.1f}  "
            f"F1 {100 * res.get('macro_f1', float('nan')):.1f}  "
            f"({_duration(outcome.duration)})"
        )
    return (
        f"FAILED  {run.key}  {outcome.reason} ({_duration(outcome.duration)}); "
        f"log: {run.output_folder / LOG_NAME}"
    )


def run_all(
    pending: Sequence[Run],
    commands: dict[str, list[str]],
    jobs: int = 1,
    timeout: float | None = None,
    warmup: bool = True,
    done_groups: set | None = None,
    progress: bool = True,
    engine: str = "local",
    threads: int | None = None,
    engine_options: dict[str, Any] | None = None,
    submitit_folder: str | os.PathLike = SUBMITIT_FOLDER,
    outcomes: list[Outcome] | None = None,
) -> list[Outcome]:
    """Run the pending runs on an engine, ``jobs`` at a time.

    Arguments
    ---------
    pending : sequence of Run
        Runs to do.
    commands : dict
        ``run.key -> command``.
    jobs : int
        Runs (``local``) or jobs at once.
    timeout : float, optional
        Per-run time limit in seconds.
    warmup : bool
        See :func:`zsser_modules.grid_plan.run_order`.
    done_groups : set, optional
        (pair, variant) groups that already have a finished run.
    progress : bool
        Show a tqdm bar over the runs (with ETA).
    engine : str
        ``local``, ``submitit-local``, ``slurm`` or ``debug``.
    threads : int, optional
        Threads per run.
    engine_options : dict, optional
        More arguments of :func:`zsser_modules.grid_engine.make_engine`
        (``cells_per_worker``, ``slurm``).
    submitit_folder : str or path-like
        Folder of submitit's job files.
    outcomes : list, optional
        The list the outcomes are appended to as they arrive (it keeps them
        on an interrupt).

    Returns
    -------
    list of Outcome
        ``outcomes``, in completion order. On KeyboardInterrupt the live runs
        are stopped and the interrupt is raised again.

    Example
    -------
    >>> run = Run("en", "de", "proposed", 1, getfixture("tmp_path") / "r")
    >>> script = getfixture("tmp_path") / "fail.py"
    >>> _ = script.write_text("raise SystemExit(1)")
    >>> cmd = {run.key: [sys.executable, str(script)]}
    >>> [o.status for o in run_all([run], cmd, progress=False)]
    ... # doctest: +ELLIPSIS
    FAILED  en_de/proposed/seed1  exited with code 1 ...
    ['failed']
    """
    units, waits_for = plan_units(
        pending, commands, engine, warmup, done_groups, timeout, threads
    )
    runner = make_engine(
        engine, jobs, submitit_folder, threads=threads, **(engine_options or {})
    )
    outcomes = [] if outcomes is None else outcomes
    bar = tqdm(total=len(pending), unit="run", desc="grid", disable=not progress)

    def arrived(outcome: Outcome) -> None:
        outcomes.append(outcome)
        bar.update(1)
        n_failed = sum(not o.ok for o in outcomes)
        bar.set_postfix(ok=len(outcomes) - n_failed, failed=n_failed)
        tqdm.write(_describe(outcome))

    try:
        execute(units, waits_for, runner, on_outcome=arrived)
    finally:
        bar.close()
    return outcomes


# ---- Command line -------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python recipes/run_grid.py",
        description="Run recipes/train.py over language pairs x variants x seeds "
        "(on a job engine: local processes, or SLURM through submitit; skipping "
        "finished runs), then write the results "
        "table. Arguments after '--' go to every run.",
        epilog="Example: python recipes/run_grid.py --grid-folder results/grid "
        "--jobs 2 -- --encoder=fbank --esd_folder=/data/ESD ...",
    )
    parser.add_argument(
        "--grid-folder",
        default="results/grid",
        help="root of the runs: <grid-folder>/<pair>/<variant>/seed<k>/ "
        "(default: results/grid)",
    )
    parser.add_argument(
        "--pairs",
        default=",".join(DEFAULT_PAIRS),
        help="comma-separated <source>_<target> pairs, or 'all' for the 20 "
        f"ordered pairs (default: the paper's nine tasks: "
        f"{','.join(DEFAULT_PAIRS)})",
    )
    parser.add_argument(
        "--variants",
        default="all",
        help=f"comma-separated variants from {', '.join(VARIANT_ORDER)} (default: all)",
    )
    parser.add_argument(
        "--seeds",
        default=",".join(map(str, DEFAULT_SEEDS)),
        help="comma-separated seeds or ranges, e.g. 1,2,3 or 1-5 (default: 1-5)",
    )
    parser.add_argument(
        "--split-seed",
        default="fixed",
        help="split_seed of the runs: 'fixed' (default: the hyperparameter "
        "file's split_seed, one split for every seed), 'follow' (each run gets "
        "--split_seed=<its seed>, so the spread over seeds includes the split's) "
        "or an integer (--split_seed=<it> for every run). Under protocol=paper "
        "the sizes of the fixed-count splits never change, but which utterances "
        "they hold follows split_seed, so with 'follow' it varies with the seed",
    )
    hparams = parser.add_mutually_exclusive_group()
    hparams.add_argument(
        "--hparams",
        help="hyperparameter file of the runs: a pattern with {pair}, {source}, "
        "{target} (one file per pair), or one file for every pair, e.g. "
        "hparams/demo.yaml (source and target set by --source_lang/--target_lang)"
        " (default: hparams/{pair}.yaml of this repository)",
    )
    hparams.add_argument(
        "--hparams-dir",
        help="folder of the pair files <source>_<target>.yaml "
        "(same as --hparams DIR/{pair}.yaml)",
    )
    parser.add_argument(
        "--recipe",
        default=str(DEFAULT_RECIPE),
        help="training script run for each run (default: recipes/train.py)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="how runs are run: local (default: a pool of --jobs worker processes "
        "of this machine, each running run after run in-process), "
        "submitit-local (submitit's LocalExecutor, one process per job), slurm "
        "(submitit's SlurmExecutor, one job per pair and variant, see --slurm-*) "
        "or debug (submitit's DebugExecutor: in this process, one run after "
        "the other); submitit engines need `pip install submitit`",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs (local) or jobs at once; with slurm the job array's "
        "parallelism (default: 1)",
    )
    parser.add_argument(
        "--cells-per-worker",
        type=int,
        default=None,
        help="local engine: runs a worker process does before a fresh one "
        "replaces it (default: no limit)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per run, set as OMP_NUM_THREADS, MKL_NUM_THREADS and "
        "OPENBLAS_NUM_THREADS and torch.set_num_threads; with slurm also the "
        "CPUs per job (default: available cores // jobs; slurm: 4)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="stop a run after this many seconds and record it as failed",
    )
    slurm = parser.add_argument_group("SLURM (--engine slurm)")
    slurm.add_argument("--slurm-partition", help="partition (default: the cluster's)")
    slurm.add_argument(
        "--slurm-time",
        type=int,
        default=720,
        help="time limit of a job in minutes; a job stopped by it or by "
        "preemption is requeued and its runs resume (default: 720)",
    )
    slurm.add_argument(
        "--slurm-gpus", type=int, default=1, help="GPUs per job (default: 1)"
    )
    slurm.add_argument(
        "--slurm-mem-gb", type=float, default=32, help="memory per job (default: 32)"
    )
    slurm.add_argument(
        "--slurm-option",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other sbatch option, e.g. account=myproject or qos=high (repeatable)",
    )
    slurm.add_argument(
        "--slurm-setup",
        action="append",
        default=[],
        metavar="LINE",
        help="shell line run in the job before Python, e.g. 'module load "
        "cuda' (repeatable)",
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="with --jobs > 1, start runs without waiting for the first run and "
        "for the first seed of each (pair, variant) (only when the data are "
        "already prepared)",
    )
    parser.add_argument(
        "--no-dedupe",
        action="store_true",
        help="train every run, also those that repeat another run's experiment "
        "(default: all variants but baseline1 are one experiment for pairs "
        "with the same target; the first is run, the others take its results)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 if a run failed (default: 0, failures are in "
        "failures.json)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the runs and their state and commands; run nothing",
    )
    parser.add_argument(
        "--no-table", action="store_true", help="do not write the results table"
    )
    parser.add_argument(
        "--no-progressbar", action="store_true", help="no tqdm bar over the runs"
    )
    return parser


def _split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split at the first ``--``: grid arguments, recipe overrides."""
    argv = list(argv)
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def _check_files(parser, hparams: str, recipe: Path, runs: Sequence[Run]) -> None:
    """Fail early, with the fix, if the recipe or a hyperparameter file is missing."""
    if not recipe.is_file():
        parser.error(f"--recipe: no file '{recipe}'.")
    files = sorted({str(hparams_file(hparams, run)) for run in runs})
    missing = [path for path in files if not Path(path).is_file()]
    if missing:
        parser.error(
            f"no hyperparameter file {', '.join(missing)}. Give --hparams-dir DIR "
            "with one <source>_<target>.yaml per pair, or one file for every pair "
            "with --hparams FILE (e.g. --hparams hparams/demo.yaml)."
        )


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """The engine settings of the command line (see ``make_engine``)."""
    options: dict[str, Any] = {}
    if args.engine == "local":
        options["cells_per_worker"] = args.cells_per_worker
    if args.engine == "slurm":
        options["slurm"] = {
            "partition": args.slurm_partition,
            "time_min": args.slurm_time,
            "gpus": args.slurm_gpus,
            "mem_gb": args.slurm_mem_gb,
            "options": dict(args.slurm_option),
            "setup": list(args.slurm_setup),
        }
    return options


@contextlib.contextmanager
def _thread_variables(threads: int) -> Iterator[None]:
    """Set the thread variables for the workers and jobs started meanwhile."""
    saved = {var: os.environ.get(var) for var in THREAD_VARIABLES}
    os.environ.update({var: str(threads) for var in THREAD_VARIABLES})
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Treat SIGTERM (a batch system stopping the grid) like Ctrl-C meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE (an sbatch option without its dashes, e.g. "
            f"account=myproject), found {text!r}"
        )
    return key, value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the grid from the command line (see ``--help``).

    Arguments
    ---------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0, or 1 with ``--strict`` if a run failed (or the table
        could not be written), 130 if interrupted.

    Example
    -------
    >>> main(["--grid-folder", str(getfixture("tmp_path")), "--pairs", "en_de",
    ...       "--variants", "proposed", "--seeds", "1", "--dry-run"])
    ... # doctest: +ELLIPSIS
    Grid ...: 1 pair(s) x 1 variant(s) x 1 seed(s) = 1 run(s): 0 done, 1 to run, 0 in conflict.
    to run    en_de/proposed/seed1: ... --variant=proposed --seed=1 ...
    0
    """  # noqa: E501
    parser = _parser()
    grid_argv, overrides = _split_argv(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(grid_argv)
    try:
        pairs = parse_pairs(args.pairs)
        variants = parse_variants(args.variants)
        seeds = parse_seeds(args.seeds)
        split_seed = parse_split_seed(args.split_seed)
        overrides = check_grid_overrides(overrides)
    except ValueError as error:
        parser.error(str(error))
    if split_seed is not None and override_value("split_seed", overrides)[0]:
        parser.error(
            f"--split-seed {args.split_seed} sets every run's split_seed: drop "
            "--split_seed after '--' (or use --split-seed fixed)."
        )
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--jobs and --threads must be at least 1.")
    if args.cells_per_worker is not None and args.cells_per_worker < 1:
        parser.error("--cells-per-worker must be at least 1.")
    if args.hparams_dir:
        hparams = str(Path(args.hparams_dir).expanduser().resolve() / "{pair}.yaml")
    else:
        hparams = args.hparams or DEFAULT_HPARAMS
    recipe = Path(args.recipe).expanduser().resolve()
    grid_folder = Path(args.grid_folder).expanduser().resolve()
    runs = plan_runs(grid_folder, pairs, variants, seeds)
    _check_files(parser, hparams, recipe, runs)

    commands = {
        run.key: recipe_command(run, hparams, recipe, overrides, split_seed=split_seed)
        for run in runs
    }
    states = {run.key: run_state(run) for run in runs}
    overwrite = override_value("overwrite", overrides)[1] is True
    for run in runs:  # finished with other settings?
        if states[run.key][0] == "done":
            changed = changed_settings(run, commands[run.key][2:])
            if changed and overwrite:
                states[run.key] = ("pending", "--overwrite=True: " + changed)
            elif changed:
                states[run.key] = ("conflict", changed)
    in_conflict = {key for key, (state, _) in states.items() if state == "conflict"}
    repeats = (
        {}
        if args.no_dedupe
        else find_repeats(
            runs,
            hparams,
            # an integer split seed is one override of every run; 'follow'
            # makes it the seed, which is in every experiment's identity
            overrides + split_seed_overrides(runs[0], split_seed)
            if isinstance(split_seed, int)
            else overrides,
            exclude=in_conflict,
        )
    )
    for run in runs:  # results taken from an identical run: still right?
        if states[run.key][0] == "done" and is_copied(run):
            if args.no_dedupe:
                states[run.key] = ("pending", "--no-dedupe: trained this time")
            elif run.key in repeats and stale_copy(run, repeats[run.key]):
                states[run.key] = ("pending", "its original changed: taken again")
    pending = [
        run
        for run in runs
        if states[run.key][0] == "pending" and run.key not in repeats
    ]
    to_repeat = [
        run for run in runs if states[run.key][0] == "pending" and run.key in repeats
    ]
    conflicts = [
        Outcome(run, "conflict", reason=states[run.key][1])
        for run in runs
        if states[run.key][0] == "conflict"
    ]
    done = [run for run in runs if states[run.key][0] == "done"]
    shared = (
        f" {len(to_repeat)} to take from an identical run (see --no-dedupe),"
        if to_repeat
        else ""
    )
    print(
        f"Grid {grid_folder}: {len(pairs)} pair(s) x {len(variants)} variant(s) x "
        f"{len(seeds)} seed(s) = {len(runs)} run(s): {len(done)} done, "
        f"{len(pending)} to run,{shared} {len(conflicts)} in conflict."
    )
    for outcome in conflicts:
        print(f"CONFLICT {outcome.run.key}: {outcome.reason}")
    changed = _changed_commands(done, commands)
    if changed:
        print(
            f"Warning: {len(changed)} finished run(s) were made with another "
            f"command line than the current one (e.g. {changed[0]}); they are kept. "
            "Delete their folders (or use another --grid-folder) to redo them."
        )
    if args.dry_run:
        for run in runs:
            state = {"pending": "to run", "done": "done", "conflict": "conflict"}
            what = shlex.join(commands[run.key])
            if run in to_repeat:
                state["pending"] = "same as"
                what = f"{repeats[run.key].key} (identical experiment)"
            print(f"{state[states[run.key][0]]:<9} {run.key}: {what}")
        return 0

    if args.engine == "slurm":  # cores of the cluster's nodes, not of this one
        threads = args.threads or 4
    else:
        threads = args.threads or max(1, available_cores() // args.jobs)
    if pending:
        print(
            f"Running {len(pending)} run(s) with the {args.engine} engine, "
            f"{args.jobs} at a time, {threads} thread(s) each."
        )
    interrupted = False
    outcomes: list[Outcome] = []
    try:
        with _thread_variables(threads), _sigterm_interrupts():
            run_all(
                pending,
                commands,
                jobs=args.jobs,
                timeout=args.timeout,
                warmup=not args.no_warmup and args.jobs > 1,
                done_groups={(run.pair, run.variant) for run in done},
                progress=not args.no_progressbar,
                engine=args.engine,
                threads=threads,
                engine_options=_engine_options(args),
                submitit_folder=grid_folder / SUBMITIT_FOLDER,
                outcomes=outcomes,
            )
    except KeyboardInterrupt:
        interrupted = True
        print("Interrupted: the running runs were stopped.", file=sys.stderr)
    except EngineError as error:  # e.g. submitit missing, not on a SLURM cluster
        parser.error(str(error))
    n_ok = sum(o.ok for o in outcomes)
    for run in [] if interrupted else to_repeat:
        outcomes.append(repeat_run(run, repeats[run.key], commands[run.key]))
        tqdm.write(_describe(outcomes[-1]))
    failures_path = grid_folder / FAILURES_NAME
    failed = [o for o in outcomes if not o.ok] + conflicts
    attempted = done + [o.run for o in outcomes] + [o.run for o in conflicts]
    update_failures(failures_path, failed, attempted)
    n_repeated = sum(o.ok for o in outcomes) - n_ok
    print(
        f"Grid done: {len(done)} already done, {n_ok} ok, "
        + (f"{n_repeated} taken from an identical run, " if n_repeated else "")
        + f"{len(failed)} failed"
        + (f" (see {failures_path})" if failed else "")
        + "."
    )
    status = 1 if args.strict and failed else 0
    if interrupted:
        return 130
    if not args.no_table:
        try:
            df = collect_results(grid_folder)
            paths = write_tables(
                df, grid_folder, seeds=seeds, pairs=pairs, variants=variants
            )
        except ValueError as error:
            print(f"Could not write the results table: {error}", file=sys.stderr)
            return 1
        summary = summarize(df, seeds=seeds, pairs=pairs, variants=variants)
        print(f"\n{to_markdown(summary, 'uar')}\n")
        for note in run_notes(df):
            print(f"NOTE: {note}.")
        print(f"Tables: {paths['markdown']} (+ CSV files and {paths['figure'].name}).")
    return status


def _changed_commands(done: Sequence[Run], commands: dict[str, list[str]]) -> list:
    """Keys of finished runs whose recorded command differs from the current one."""
    changed = []
    for run in done:
        path = run.output_folder / COMMAND_NAME
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))["command"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if list(recorded)[1:] != commands[run.key][1:]:
            changed.append(run.key)
    return changed


if __name__ == "__main__":
    sys.exit(main())
