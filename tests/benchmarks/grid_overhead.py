#!/usr/bin/env python3
"""Overhead of a grid: its wall time against the sum of its runs' training loops.

Runs ``recipes/run_grid.py`` with the given arguments (timing it), or reads
an existing grid folder with ``--wall``, then reads every trained run's
SpeechBrain log (``<run>/log.txt``, timestamps to the millisecond) and
prints, over the runs trained by the timed call:

- **training loop** of a run: ``Brain.fit``, from SpeechBrain's ``Going into
  epoch`` line of its first epoch to the ``epoch: N`` line of its last
  (every epoch's training, validation and checkpoint);
- **evaluation** of a run: from there to its ``results.json`` (test on the
  target, diagnostics probes, model export, t-SNE plot): the run's own
  work, which no engine can save;
- **capacity**: ``jobs x wall time`` (core slots the grid held);
- **overhead** = capacity - sum(training loops) - sum(evaluations), as a
  share of the capacity: process start-up and imports, reading the
  hyperparameters, checking the prepared data and the feature cache,
  building the model, the runner's own work and idle slots. The share
  with the evaluation counted as overhead too is printed as well, and the
  mean start-up (runner start to SpeechBrain's ``Beginning experiment``)
  and set-up (to the first epoch) of a run.

Runs copied from an identical experiment (``same_experiment_as``) did no
work and are not counted.

Example (the sub-grid of the README; data prepared once beforehand)::

    python tests/benchmarks/grid_overhead.py --grid-folder /tmp/bench/new \\
        --jobs 2 -- --hparams hparams/demo.yaml --pairs en_de --seeds 1,2 \\
        -- --results_root=/tmp/bench/results

Everything after the first ``--`` goes to run_grid.py (after
``--grid-folder`` and ``--jobs``); ``--run-grid`` picks another runner
script (e.g. an older version, for a side-by-side comparison).

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - (\S+) - \w+ - (.*)")


def _time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def run_timings(folder: Path) -> dict | None:
    """Training loop and evaluation seconds of a trained run (None: not one)."""
    results = folder / "results.json"
    log = folder / "log.txt"
    if not results.is_file() or not log.is_file():
        return None
    data = json.loads(results.read_text(encoding="utf-8"))
    if data.get("same_experiment_as"):
        return None
    start = end = begun = None
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        match = STAMP.match(line)
        if not match:
            continue
        stamp, name, message = match.groups()
        if message.startswith("Beginning experiment"):
            start = end = None  # the last session counts
            begun = _time(stamp)
        elif name.endswith("epoch_loop") and message.startswith("Going into epoch"):
            start = start if start is not None else _time(stamp)
        elif name.endswith("train_logger") and message.startswith("epoch: "):
            end = _time(stamp)
    if start is None or end is None:
        return None
    try:  # when the runner started the run (to the second)
        started = json.loads((folder / "grid_command.json").read_text())["started"]
        startup = begun - datetime.fromisoformat(started).timestamp()
    except (OSError, ValueError, KeyError, TypeError):
        startup = float("nan")
    return {
        "loop_s": end - start,
        "eval_s": max(0.0, results.stat().st_mtime - end),
        "startup_s": startup,
        "setup_s": start - begun,
        "finished": results.stat().st_mtime,
    }


def report(grid: Path, wall: float, jobs: int, since: float = 0.0) -> dict:
    """Print and return the overhead figures of the runs finished after ``since``."""
    runs = {}
    for results in sorted(grid.rglob("results.json")):
        timing = run_timings(results.parent)
        if timing and timing["finished"] >= since:
            runs[str(results.parent.relative_to(grid))] = timing
    loop = sum(t["loop_s"] for t in runs.values())
    evaluation = sum(t["eval_s"] for t in runs.values())
    capacity = jobs * wall
    figures = {
        "runs": len(runs),
        "wall_s": round(wall, 1),
        "jobs": jobs,
        "capacity_s": round(capacity, 1),
        "training_loops_s": round(loop, 1),
        "evaluation_s": round(evaluation, 1),
        "overhead": round(1 - (loop + evaluation) / capacity, 3) if capacity else None,
        "overhead_counting_evaluation": round(1 - loop / capacity, 3)
        if capacity
        else None,
    }
    print(
        f"{len(runs)} trained runs, {jobs} job(s), wall {wall:.1f} s -> capacity "
        f"{capacity:.1f} s; training loops {loop:.1f} s, evaluation {evaluation:.1f} s"
    )
    if runs:
        startup = sum(t["startup_s"] for t in runs.values()) / len(runs)
        setup = sum(t["setup_s"] for t in runs.values()) / len(runs)
        figures.update(mean_startup_s=round(startup, 2), mean_setup_s=round(setup, 2))
        print(
            f"per run (mean): start-up {startup:.1f} s (runner start -> "
            f"SpeechBrain's 'Beginning experiment'), set-up {setup:.1f} s (-> first "
            f"epoch: data checks, feature cache, model), training loop "
            f"{loop / len(runs):.1f} s, evaluation {evaluation / len(runs):.1f} s"
        )
    print(
        f"overhead: {figures['overhead']:.1%} of the capacity "
        f"({figures['overhead_counting_evaluation']:.1%} if the evaluation counts "
        "as overhead too)"
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run (or read) a grid and print its overhead."""
    argv = sys.argv[1:] if argv is None else argv
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid-folder", required=True)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--run-grid",
        default=str(REPO_ROOT / "recipes" / "run_grid.py"),
        help="the runner script (default: this repository's)",
    )
    parser.add_argument(
        "--wall",
        type=float,
        help="read an existing grid folder whose call took WALL seconds; run nothing",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv[:cut])
    grid = Path(args.grid_folder).resolve()
    since, wall = 0.0, args.wall
    if wall is None:
        command = [
            sys.executable,
            args.run_grid,
            "--grid-folder",
            str(grid),
            "--jobs",
            str(args.jobs),
            "--no-progressbar",
            *argv[cut + 1 :],
        ]
        print("$", " ".join(command), flush=True)
        since = time.time()
        clock = time.monotonic()
        status = subprocess.call(command)
        wall = time.monotonic() - clock
        if status:
            print(f"run_grid exited with {status}", file=sys.stderr)
    figures = report(grid, wall, args.jobs, since)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
