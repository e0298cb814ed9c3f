"""Run the cells of an experiment grid through a job engine.

A *cell* is one call of a recipe script with its command-line arguments
(``python recipes/train.py HPARAMS --variant=... --seed=... ...``). This
module runs cells on an established engine instead of one fresh process per
cell:

- ``local`` (the default, no extra dependency): a
  :class:`concurrent.futures.ProcessPoolExecutor` of ``jobs`` worker
  processes. A worker imports torch and SpeechBrain once and then runs cell
  after cell **in its own process**, each through the recipe's own
  ``if __name__ == "__main__"`` block (:func:`runpy.run_path`), so a cell
  behaves as on the command line without paying the interpreter start-up
  and imports again.
- ``submitit-local``, ``slurm``, ``debug``: submitit's ``LocalExecutor``,
  ``SlurmExecutor`` (through ``AutoExecutor``) and ``DebugExecutor``
  (the ``grid`` extra: ``pip install "zsser[grid]"``). A submitit job runs a
  :class:`CellBatch`: the cells of one (pair, variant), in one process; on
  SLURM a preempted or timed-out job is requeued with the cells it has not
  finished (each resumes from its last checkpoint).

Each cell keeps its isolation: its own output folder, its log
(``grid_log.txt``: stdout and stderr of the cell, file descriptors
included), its time limit, and a failure (an exception, ``sys.exit``, a
timeout) that is recorded in its :class:`Outcome` without stopping the other
cells. A worker process that dies (killed, out of memory) loses only the
cell it was running: the cells it had not started are run again in a new
worker, and the cell itself gets one more try before it is recorded as
failed.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import multiprocessing
import os
import runpy
import shlex
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from zsser_modules.optional import extra, missing_extra_message
from zsser_modules.results_table import InvalidResultError, base_variant, load_result

LOG_NAME = "grid_log.txt"
COMMAND_NAME = "grid_command.json"
RESULTS_NAME = "results.json"
TAIL_LINES = 40
#: Thread-count environment variables set for every cell.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: The engines of ``run_grid.py --engine``.
ENGINES = ("local", "submitit-local", "slurm", "debug")
#: How many times a cell is started in one call when its worker dies under it.
MAX_ATTEMPTS = 2
#: Folder of submitit's job files, under the grid folder.
SUBMITIT_FOLDER = ".submitit"


@dataclass(frozen=True)
class Run:
    """One run of the grid: a pair, a variant, a seed and its output folder.

    Example
    -------
    >>> run = Run("en", "de", "proposed", 2, Path("grid/en_de/proposed/seed2"))
    >>> run.pair, run.key
    ('en_de', 'en_de/proposed/seed2')
    """

    source: str
    target: str
    variant: str
    seed: int
    output_folder: Path

    @property
    def pair(self) -> str:
        """``"<source>_<target>"``."""
        return f"{self.source}_{self.target}"

    @property
    def key(self) -> str:
        """``"<pair>/<variant>/seed<k>"``, the run's name in logs and failures.json."""
        return f"{self.pair}/{self.variant}/seed{self.seed}"

    @property
    def results_file(self) -> Path:
        """The ``results.json`` the recipe writes."""
        return self.output_folder / RESULTS_NAME


@dataclass
class Outcome:
    """What happened to a run: ``ok``, ``failed`` or ``conflict`` (not run).

    Example
    -------
    >>> run = Run("en", "de", "proposed", 1, Path("g/en_de/proposed/seed1"))
    >>> Outcome(run, "failed", returncode=3, reason="exited with code 3").ok
    False
    """

    run: Run
    status: str
    returncode: int | None = None
    reason: str = ""
    duration: float = 0.0
    log_tail: str = ""
    command: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True if the run succeeded."""
        return self.status == "ok"

    def record(self) -> dict[str, Any]:
        """The entry of a failed run in failures.json."""
        run = self.run
        return {
            "run": run.key,
            "pair": run.pair,
            "source": run.source,
            "target": run.target,
            "variant": run.variant,
            "seed": run.seed,
            "status": self.status,
            "returncode": self.returncode,
            "reason": self.reason,
            "duration_s": round(self.duration, 1),
            "time": datetime.now().isoformat(timespec="seconds"),
            "output_folder": str(run.output_folder),
            "log_file": str(run.output_folder / LOG_NAME),
            "command": shlex.join(self.command) if self.command else "",
            "log_tail": self.log_tail,
        }


def run_state(run: Run) -> tuple[str, str]:
    """Whether a run is done, still to do, or blocked by a foreign results.json.

    Arguments
    ---------
    run : Run
        The run.

    Returns
    -------
    state : str
        ``"done"`` (a valid results.json of this pair, variant and seed),
        ``"pending"`` (none, or an unusable one: the run is redone) or
        ``"conflict"`` (a valid results.json of another run: not touched).
    detail : str
        Why, for ``pending`` with an unusable file and for ``conflict``.

    Example
    -------
    >>> run = Run("en", "de", "proposed", 1, getfixture("tmp_path"))
    >>> run_state(run)
    ('pending', '')
    >>> _ = run.results_file.write_text(json.dumps({"source": "en",
    ...     "target": "de", "variant": "proposed", "seed": 1, "uar": 0.5,
    ...     "macro_f1": 0.5}))
    >>> run_state(run)
    ('done', '')
    >>> _ = run.results_file.write_text(json.dumps({"source": "en",
    ...     "target": "de", "variant": "proposed", "seed": 1, "uar": 0.5,
    ...     "macro_f1": 0.5, "speaker_norm": "per_speaker"}))
    >>> run_state(run)
    ('done', '')
    """
    if not run.results_file.exists():
        return "pending", ""
    try:
        row = load_result(run.results_file)
    except InvalidResultError as error:
        return "pending", f"unusable results.json, running again: {error}"
    # the table's row label marks speaker-normalised and tuned runs
    # ("proposed +spk-norm"); the run's own variant is its first word
    found = (row["source"], row["target"], base_variant(row["variant"]), row["seed"])
    wanted = (run.source, run.target, run.variant, run.seed)
    if found != wanted:
        return "conflict", (
            f"{run.results_file} holds the results of another run "
            f"({found[0]}_{found[1]}/{found[2]}/seed{found[3]}); move or delete "
            f"{run.output_folder} to run {run.key} there."
        )
    return "done", ""


# ---- One cell, in the worker process -------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One run of the recipe script: what a worker needs to run it.

    Arguments
    ---------
    run : Run
        The run (its output folder is the one in ``argv``).
    recipe : str
        Path of the recipe script.
    argv : tuple of str
        The script's arguments (``sys.argv[1:]``).
    timeout : float, optional
        Seconds after which the cell is stopped and counted as failed.
    threads : int, optional
        Threads of the cell (``torch.set_num_threads`` and the variables of
        :data:`THREAD_VARIABLES`).

    Example
    -------
    >>> cell = Cell(Run("en", "de", "proposed", 1, Path("g")), "train.py",
    ...             ("h.yaml", "--seed=1"))
    >>> cell.command[1:]
    ['train.py', 'h.yaml', '--seed=1']
    """

    run: Run
    recipe: str
    argv: tuple[str, ...]
    timeout: float | None = None
    threads: int | None = None

    @property
    def command(self) -> list[str]:
        """The equivalent command line (recorded in ``grid_command.json``)."""
        return [sys.executable, str(self.recipe), *self.argv]


class EngineError(ValueError):
    """An engine that cannot start here (submitit missing, no SLURM, bad name)."""


class CellTimeout(BaseException):
    """Raised in a cell that passed its time limit (not an ``Exception``)."""


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`CellTimeout` in this (main) thread after ``seconds``."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise CellTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _output_to(log) -> Iterator[None]:
    """Send stdout and stderr (Python objects and file descriptors) to ``log``."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    old = sys.stdout, sys.stderr
    text = open(  # noqa: SIM115 (closed below)
        log.fileno(),
        "w",
        encoding="utf-8",
        errors="replace",
        buffering=1,
        closefd=False,
    )
    try:
        for fd in saved:
            os.dup2(log.fileno(), fd)
        sys.stdout = sys.stderr = text
        yield
    finally:
        with contextlib.suppress(Exception):
            text.flush()
        sys.stdout, sys.stderr = old
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


def _call_script(recipe: str, argv: Sequence[str]) -> int:
    """Run ``recipe`` as ``__main__`` with ``argv``; its exit status as a process's."""
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [str(recipe), *argv]
    sys.path.insert(0, str(Path(recipe).resolve().parent))  # as `python recipe`
    try:
        runpy.run_path(str(recipe), run_name="__main__")
        return 0
    except (KeyboardInterrupt, CellTimeout):
        raise
    except SystemExit as exit_:
        if exit_.code is None:
            return 0
        if isinstance(exit_.code, int):
            return exit_.code
        print(exit_.code, file=sys.stderr)
        return 1
    except BaseException:  # what the interpreter would print, and exit 1
        traceback.print_exc()
        return 1
    finally:
        sys.argv = old_argv
        sys.path[:] = old_path


def _set_threads(threads: int | None) -> None:
    if not threads:
        return
    for var in THREAD_VARIABLES:
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _clean_up(run: Run) -> None:
    """Release what a finished cell holds: its log handlers, figures, memory."""
    folder = os.path.abspath(run.output_folder)
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    for logger in loggers:
        if not isinstance(logger, logging.Logger):  # a placeholder
            continue
        for handler in list(logger.handlers):
            path = getattr(handler, "baseFilename", "")
            if path and os.path.abspath(path).startswith(folder + os.sep):
                logger.removeHandler(handler)
                handler.close()
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _tail(path: Path, offset: int = 0, n_lines: int = TAIL_LINES) -> str:
    """The last lines written to ``path`` after ``offset``."""
    try:
        with open(path, "rb") as stream:
            stream.seek(offset)
            text = stream.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-n_lines:])


def run_cell(cell: Cell) -> Outcome:
    """Run one cell in this process; log to ``<run folder>/grid_log.txt``; check it.

    Arguments
    ---------
    cell : Cell
        The cell (its folder is created).

    Returns
    -------
    Outcome
        ``ok`` if the script ends with status 0 and leaves a valid
        results.json of this run, else ``failed`` with the reason and the log
        tail. A ``KeyboardInterrupt`` is raised again after the log is
        written.

    Example
    -------
    >>> script = getfixture("tmp_path") / "boom.py"
    >>> _ = script.write_text("import sys; print('boom'); sys.exit(3)")
    >>> run = Run("en", "de", "proposed", 1, getfixture("tmp_path") / "r")
    >>> out = run_cell(Cell(run, str(script), ()))
    >>> out.status, out.returncode, out.log_tail
    ('failed', 3, 'boom')
    """
    run, command = cell.run, cell.command
    started = datetime.now().isoformat(timespec="seconds")
    log_path = run.output_folder / LOG_NAME
    try:
        run.output_folder.mkdir(parents=True, exist_ok=True)
        record = {"command": command, "started": started}
        (run.output_folder / COMMAND_NAME).write_text(
            json.dumps(record, indent=2) + "\n"
        )
        log = open(log_path, "ab")  # noqa: SIM115 (closed below)
    except Exception as error:  # e.g. the folder cannot be written
        return Outcome(
            run,
            "failed",
            reason=f"could not run: {type(error).__name__}: {error}",
            command=command,
        )
    timed_out = interrupted = False
    returncode: int | None = None
    with log:
        log.write(f"\n===== {started} run_grid: {shlex.join(command)}\n".encode())
        log.flush()
        offset = log.tell()
        clock = time.monotonic()
        _set_threads(cell.threads)
        try:
            with _output_to(log), _time_limit(cell.timeout):
                returncode = _call_script(cell.recipe, cell.argv)
        except CellTimeout:
            timed_out = True
        except KeyboardInterrupt:
            interrupted = True
        finally:
            duration = time.monotonic() - clock
            _clean_up(run)
    outcome = Outcome(run, "failed", returncode, duration=duration, command=command)
    if timed_out:
        outcome.reason = f"stopped after the --timeout of {cell.timeout:g} s"
    elif interrupted:
        outcome.reason = "interrupted"
    elif returncode != 0:
        outcome.reason = f"exited with code {returncode}"
        if run_state(run)[0] == "done":
            outcome.reason += (
                " after writing a valid results.json (kept: the run counts as "
                "done in later calls; delete its folder to redo it)"
            )
    else:
        state, detail = run_state(run)
        if state == "done":
            outcome.status = "ok"
            outcome.result = load_result(run.results_file)
        else:
            outcome.reason = "exited with code 0 but left no valid results.json" + (
                f" ({detail})" if detail else ""
            )
    if not outcome.ok:
        outcome.log_tail = _tail(log_path, offset)
    if interrupted:
        raise KeyboardInterrupt
    return outcome


class CellBatch:
    """Cells run one after the other in one process: the body of a job.

    A callable for every engine (pickled to the worker or the SLURM node).
    Its ``checkpoint`` method makes it requeueable by submitit: when a SLURM
    job is preempted or reaches its time limit, the job is submitted again
    with the cells not finished yet (the cell that was stopped resumes from
    its last checkpoint: see the recipe's run identity).

    Arguments
    ---------
    cells : sequence of Cell
        The cells, in order.

    Example
    -------
    >>> script = getfixture("tmp_path") / "ok.py"
    >>> _ = script.write_text("print('hello')")
    >>> run = Run("en", "de", "proposed", 1, getfixture("tmp_path") / "r")
    >>> [o.reason for o in CellBatch([Cell(run, str(script), ())])()]
    ['exited with code 0 but left no valid results.json']
    """

    def __init__(self, cells: Sequence[Cell]) -> None:
        self.cells = list(cells)
        self.finished: set[str] = set()

    def __call__(self) -> list[Outcome]:
        """Run every cell not finished yet; return their outcomes."""
        outcomes = []
        for cell in self.cells:
            if cell.run.key in self.finished:
                continue
            outcomes.append(run_cell(cell))
            self.finished.add(cell.run.key)
        return outcomes

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """The submission that finishes this batch (submitit requeues it)."""
        with extra("grid", "requeueing a submitit job"):  # submitit calls it
            from submitit.helpers import DelayedSubmission

        rest = [cell for cell in self.cells if cell.run.key not in self.finished]
        return DelayedSubmission(CellBatch(rest))


# ---- Engines (driver side) -------------------------------------------------------


@dataclass
class Unit:
    """Cells that go to one worker call or job, and how often they were started."""

    name: str
    cells: list[Cell]
    attempt: int = 1


class PoolEngine:
    """The ``local`` engine: a standard-library process pool of ``jobs`` workers.

    Workers are started with ``spawn`` (no fork of the driver's threads) and
    kept for many cells (``cells_per_worker``: a worker is replaced after
    that many units, to bound what a long-lived process may accumulate).

    Arguments
    ---------
    jobs : int
        Worker processes, that is cells at once.
    cells_per_worker : int, optional
        Units a worker runs before it is replaced (default: no limit).
    """

    name = "local"
    poll_s = 0.1

    def __init__(self, jobs: int, cells_per_worker: int | None = None) -> None:
        self.limit = jobs
        self._options: dict[str, Any] = {
            "max_workers": jobs,
            "mp_context": multiprocessing.get_context("spawn"),
        }
        if cells_per_worker:  # (Python 3.11+)
            self._options["max_tasks_per_child"] = cells_per_worker
        self._pool = ProcessPoolExecutor(**self._options)

    def submit(self, units: Sequence[Unit]) -> list:
        """Start the units; one future each."""
        return [self._pool.submit(CellBatch(unit.cells)) for unit in units]

    def lost(self, error: BaseException) -> bool:
        """Whether ``error`` means a worker died; a new pool then takes over."""
        if not isinstance(error, BrokenProcessPool):
            return False
        if getattr(self._pool, "_broken", False):  # once per broken pool
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = ProcessPoolExecutor(**self._options)
        return True

    def stop(self) -> None:
        """Stop every worker now (interrupt)."""
        processes = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        for process in processes:
            with contextlib.suppress(Exception):
                process.join(10)

    def close(self) -> None:
        """Wait for the workers to exit."""
        self._pool.shutdown(wait=True)


class SubmititEngine:
    """The submitit engines: ``submitit-local``, ``slurm`` and ``debug``.

    Arguments
    ---------
    executor : submitit.AutoExecutor
        A configured executor (see :func:`make_engine`).
    limit : int, optional
        Jobs in flight at once (None: every job that can start is submitted;
        SLURM then bounds them with ``slurm_array_parallelism``).
    name : str
        The engine's name.
    poll_s : float
        Seconds between two looks at the jobs.
    """

    def __init__(
        self, executor: Any, limit: int | None, name: str, poll_s: float = 1.0
    ) -> None:
        self.executor, self.limit, self.name, self.poll_s = (
            executor,
            limit,
            name,
            poll_s,
        )

    def submit(self, units: Sequence[Unit]) -> list:
        """Submit the units (as one job array when there are several)."""
        if len(units) == 1:
            return [self.executor.submit(CellBatch(units[0].cells))]
        with self.executor.batch():
            jobs = [self.executor.submit(CellBatch(unit.cells)) for unit in units]
        return jobs

    def lost(self, error: BaseException) -> bool:
        """A job that did not return (killed, node failure, error) lost its cells."""
        return isinstance(error, Exception)

    def stop(self) -> None:
        """Nothing to do here: :func:`execute` cancels the jobs it knows."""

    def close(self) -> None:
        """Nothing to release."""


def make_engine(
    name: str,
    jobs: int,
    folder: str | os.PathLike,
    threads: int | None = None,
    cells_per_worker: int | None = None,
    slurm: dict[str, Any] | None = None,
) -> PoolEngine | SubmititEngine:
    """Create the engine ``name`` of :data:`ENGINES`.

    Arguments
    ---------
    name : str
        ``local``, ``submitit-local``, ``slurm`` or ``debug``.
    jobs : int
        Cells (``local``) or jobs (submitit) at once; on SLURM the array
        parallelism.
    folder : str or path-like
        Folder of submitit's job files (``<grid>/.submitit``).
    threads : int, optional
        CPUs per job (SLURM ``--cpus-per-task``).
    cells_per_worker : int, optional
        ``local`` only, see :class:`PoolEngine`.
    slurm : dict, optional
        SLURM settings: ``partition``, ``time_min``, ``gpus``, ``mem_gb``,
        ``options`` (dict of extra ``#SBATCH`` options), ``setup`` (list of
        shell lines run before the job), ``name``.

    Returns
    -------
    PoolEngine or SubmititEngine

    Raises
    ------
    EngineError
        For an unknown engine, or a submitit engine without submitit (or
        without a SLURM cluster).

    Example
    -------
    >>> engine = make_engine("local", jobs=2, folder="unused")
    >>> engine.name, engine.limit
    ('local', 2)
    >>> engine.close()
    >>> make_engine("condor", jobs=1, folder="unused")
    Traceback (most recent call last):
    ...
    zsser_modules.grid_engine.EngineError: Unknown engine 'condor': choose from local, submitit-local, slurm, debug.
    """  # noqa: E501
    if name not in ENGINES:
        raise EngineError(f"Unknown engine {name!r}: choose from {', '.join(ENGINES)}.")
    if name == "local":
        return PoolEngine(jobs, cells_per_worker)
    try:
        import submitit
    except ImportError:
        raise EngineError(
            missing_extra_message("grid", f"--engine {name}", "submitit")
            + "; or pip install submitit, or use --engine local."
        ) from None
    cluster = {"submitit-local": "local", "slurm": "slurm", "debug": "debug"}[name]
    try:
        executor = submitit.AutoExecutor(folder=Path(folder) / "%j", cluster=cluster)
    except RuntimeError as error:  # e.g. no srun: not on a SLURM cluster
        raise EngineError(f"--engine {name}: {error}") from None
    slurm = slurm or {}
    parameters: dict[str, Any] = {"name": slurm.get("name", "zsser-grid")}
    if threads:
        parameters["cpus_per_task"] = threads
    if cluster == "slurm":
        parameters.update(
            timeout_min=int(slurm.get("time_min", 720)),
            gpus_per_node=int(slurm.get("gpus", 1)),
            mem_gb=slurm.get("mem_gb", 32),
            slurm_array_parallelism=jobs,
        )
        if slurm.get("partition"):
            parameters["slurm_partition"] = slurm["partition"]
        if slurm.get("options"):
            parameters["slurm_additional_parameters"] = dict(slurm["options"])
        if slurm.get("setup"):
            parameters["slurm_setup"] = list(slurm["setup"])
    else:  # the local executor stops a job after timeout_min (default 2 min)
        parameters["timeout_min"] = 60 * 24 * 30
    executor.update_parameters(**parameters)
    limit = None if cluster == "slurm" else jobs
    poll_s = {"slurm": 15.0, "local": 0.5, "debug": 0.0}[cluster]
    return SubmititEngine(executor, limit, name, poll_s)


def _salvage(unit: Unit, error: BaseException) -> tuple[list[Outcome], Unit | None]:
    """Outcomes of a unit whose worker or job died, and the unit to run again."""
    outcomes, again = [], []
    for cell in unit.cells:
        if run_state(cell.run)[0] == "done":
            outcomes.append(
                Outcome(
                    cell.run,
                    "ok",
                    0,
                    command=cell.command,
                    result=load_result(cell.run.results_file),
                )
            )
        elif unit.attempt < MAX_ATTEMPTS:
            again.append(cell)
        else:
            reason = (
                f"its worker process or job ended without a result "
                f"({type(error).__name__}: {error})".replace("\n", " ")
            )
            outcomes.append(
                Outcome(
                    cell.run,
                    "failed",
                    reason=reason[:500],
                    command=cell.command,
                    log_tail=_tail(cell.run.output_folder / LOG_NAME),
                )
            )
    retry = replace(unit, cells=again, attempt=unit.attempt + 1) if again else None
    return outcomes, retry


def execute(
    units: Sequence[Unit],
    waits_for: dict[str, set],
    engine: PoolEngine | SubmititEngine,
    on_outcome: Callable[[Outcome], None] = lambda outcome: None,
) -> list[Outcome]:
    """Run the units on the engine, each once the units it waits for are finished.

    Arguments
    ---------
    units : sequence of Unit
        In start order.
    waits_for : dict
        ``unit.name -> set of unit names`` that must finish first (with
        success or not).
    engine : PoolEngine or SubmititEngine
        From :func:`make_engine`; closed at the end.
    on_outcome : callable
        Called with each outcome as it arrives (progress).

    Returns
    -------
    list of Outcome
        In arrival order. On ``KeyboardInterrupt`` the workers or jobs are
        stopped and the interrupt is raised again.

    Example
    -------
    >>> script = getfixture("tmp_path") / "fail.py"
    >>> _ = script.write_text("raise SystemExit(1)")
    >>> run = Run("en", "de", "proposed", 1, getfixture("tmp_path") / "r")
    >>> unit = Unit(run.key, [Cell(run, str(script), ())])
    >>> [o.status for o in execute([unit], {}, make_engine("local", 1, "x"))]
    ['failed']
    """
    pending = list(units)
    running: dict[Any, Unit] = {}
    finished: set = set()
    outcomes: list[Outcome] = []

    def arrive(results: Sequence[Outcome]) -> None:
        for outcome in results:
            outcomes.append(outcome)
            on_outcome(outcome)

    try:
        while pending or running:
            limit = engine.limit if engine.limit is not None else len(pending)
            ready = [u for u in pending if waits_for.get(u.name, set()) <= finished]
            start = ready[: max(0, limit - len(running))]
            if start:
                for unit, handle in zip(start, engine.submit(start)):
                    running[handle] = unit
                    pending.remove(unit)
            if not running:  # cannot happen: a unit only waits for earlier ones
                raise RuntimeError(
                    "grid engine: no unit can start; please report this."
                )
            done = [handle for handle in list(running) if handle.done()]
            if not done:
                time.sleep(engine.poll_s)
                continue
            for handle in done:
                unit = running.pop(handle)
                try:
                    results = handle.result()
                except Exception as error:
                    if not engine.lost(error):
                        raise
                    results, retry = _salvage(unit, error)
                    if retry is not None:
                        pending.insert(0, retry)
                        arrive(results)
                        continue
                arrive(results)
                finished.add(unit.name)
    except BaseException:
        for handle in running:
            with contextlib.suppress(Exception):
                handle.cancel()
        engine.stop()
        raise
    engine.close()
    return outcomes
