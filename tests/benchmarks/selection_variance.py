#!/usr/bin/env python3
"""Seed-to-seed spread of the headline comparison under model-selection settings.

For one language pair (default en_de on ``hparams/demo.yaml`` with the frozen
``fbank_stats`` encoder) and each selection setting, runs baseline2 and
proposed over the seeds twice through ``recipes/run_grid.py``:

- **split fixed**: ``--split-seed fixed`` (the file's ``split_seed`` for every
  seed: the spread is the training's alone);
- **split varied**: ``--split-seed follow`` (``split_seed = seed``: the
  spread includes which utterances the splits hold).

One grid folder per setting and split mode:
``<out>/<setting>/split_<fixed|varied>/<pair>/<variant>/seed<k>/``
(finished runs are skipped by the grid, so a rerun resumes). Then it prints,
for each setting, the headline comparison **proposed minus baseline2, paired
by seed**: its mean and its across-seed standard deviation (ddof 1) on the
target's test split (``uar``) and on the whole target (``target_all``'s UAR,
zero-shot systems under the paper protocol), split fixed and varied side by
side; and writes the numbers to ``<out>/summary.json``.

A setting is ``NAME:key=value[,key=value...]``, the keys being the recipe's
hyperparameters (each becomes ``--key=value`` for every run of the setting;
values cannot hold commas). Everything after ``--`` goes to every run.

Example (the full measurement: 4 settings x 2 split modes x 2 variants x 5
seeds = 80 runs)::

    python tests/benchmarks/selection_variance.py --out results/selection_variance \\
        --jobs 2 --settings "best:selection=mean_language_uar" \\
        "avg3:selection_average=3" "last:selection=last" \\
        "cosine:lr_schedule=cosine"

Tiny check (2 seeds, 2 epochs, a small corpus)::

    python tests/benchmarks/selection_variance.py --out /tmp/sv --seeds 1,2 \\
        --settings best:selection=mean_language_uar last:selection=last \\
        -- --number_of_epochs=2 "--demo_options={n_speakers: 2}"

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("baseline2", "proposed")
SPLIT_MODES = {"fixed": "fixed", "varied": "follow"}  # name: run_grid --split-seed
DEFAULT_SETTINGS = (
    "best:selection=mean_language_uar",
    "avg3:selection_average=3",
    "last:selection=last",
    "cosine:lr_schedule=cosine",
)


def parse_setting(text: str) -> tuple[str, list[str]]:
    """``NAME:key=value,...`` -> (name, recipe overrides).

    Example
    -------
    >>> parse_setting("avg3l:selection_average=3,selection_average_of=last")
    ('avg3l', ['--selection_average=3', '--selection_average_of=last'])
    >>> parse_setting("avg3")
    Traceback (most recent call last):
    ...
    ValueError: a setting must be NAME:key=value[,key=value...], got 'avg3' (e.g. avg3:selection_average=3).
    """  # noqa: E501
    name, sep, rest = text.partition(":")
    pairs = [item.strip() for item in rest.split(",") if item.strip()]
    if (
        not sep
        or not name
        or "/" in name
        or not pairs
        or any("=" not in p or p.startswith("=") for p in pairs)
    ):
        raise ValueError(
            "a setting must be NAME:key=value[,key=value...], got "
            f"{text!r} (e.g. avg3:selection_average=3)."
        )
    return name, [f"--{pair.lstrip('-')}" for pair in pairs]


def grid_command(
    grid_folder: Path,
    args: argparse.Namespace,
    split_mode: str,
    overrides: Sequence[str],
    extra: Sequence[str],
) -> list[str]:
    """The run_grid.py command of one setting and split mode."""
    return [
        sys.executable,
        str(REPO_ROOT / "recipes" / "run_grid.py"),
        f"--grid-folder={grid_folder}",
        f"--hparams={args.hparams}",
        f"--pairs={args.pair}",
        f"--variants={','.join(VARIANTS)}",
        f"--seeds={args.seeds}",
        f"--split-seed={SPLIT_MODES[split_mode]}",
        f"--jobs={args.jobs}",
        "--no-table",
        "--no-progressbar",
        "--",
        f"--encoder={args.encoder}",
        *overrides,
        *extra,
    ]


def read_runs(grid_folder: Path, pair: str) -> dict[str, dict[int, dict]]:
    """``{variant: {seed: results.json}}`` of one grid folder (finished runs)."""
    runs: dict[str, dict[int, dict]] = {}
    for variant in VARIANTS:
        runs[variant] = {}
        for path in sorted((grid_folder / pair / variant).glob("seed*/results.json")):
            results = json.loads(path.read_text())
            runs[variant][int(results["seed"])] = results
    return runs


def _target_all_uar(results: Mapping) -> float | None:
    block = results.get("target_all")
    return None if not block else float(block["uar"])


def paired_spread(runs: Mapping[str, Mapping[int, Mapping]]) -> dict:
    """Mean and across-seed std (ddof 1) of proposed - baseline2, paired by seed.

    Example
    -------
    >>> runs = {
    ...     "baseline2": {1: {"uar": 0.5, "target_all": {"uar": 0.4}},
    ...                   2: {"uar": 0.6, "target_all": None}},
    ...     "proposed": {1: {"uar": 0.7, "target_all": {"uar": 0.5}},
    ...                  2: {"uar": 0.6, "target_all": None}},
    ... }
    >>> out = paired_spread(runs)
    >>> out["seeds"], round(out["test"]["mean"], 3), round(out["test"]["std"], 4)
    ([1, 2], 0.1, 0.1414)
    >>> out["target_all"]["n"], out["target_all"]["std"]
    (1, None)
    """
    seeds = sorted(set(runs["baseline2"]) & set(runs["proposed"]))
    out: dict = {"seeds": seeds}
    for key, read in (
        ("test", lambda r: float(r["uar"])),
        ("target_all", _target_all_uar),
    ):
        diffs = []
        for seed in seeds:
            a, b = read(runs["proposed"][seed]), read(runs["baseline2"][seed])
            if a is not None and b is not None:
                diffs.append(a - b)
        out[key] = {
            "n": len(diffs),
            "mean": statistics.fmean(diffs) if diffs else None,
            "std": statistics.stdev(diffs) if len(diffs) > 1 else None,
            "differences": diffs,
        }
    return out


def _points(value: float | None) -> str:
    return "   n/a" if value is None or math.isnan(value) else f"{100 * value:6.2f}"


def format_table(summary: Mapping[str, Mapping[str, dict]]) -> str:
    """The side-by-side table (UAR points) of :func:`paired_spread` per setting.

    Example
    -------
    >>> cell = {"seeds": [1, 2], "test": {"n": 2, "mean": 0.1, "std": 0.02},
    ...         "target_all": {"n": 2, "mean": 0.05, "std": 0.01}}
    >>> print(format_table({"best": {"fixed": cell, "varied": cell}}))
    ... # doctest: +NORMALIZE_WHITESPACE
    proposed - baseline2 (UAR points), paired by seed: mean and across-seed std
    setting  | split fixed: n mean(test) std(test) std(all) | split varied: n mean(test) std(test) std(all)
    best     | 2  10.00  2.00  1.00 | 2  10.00  2.00  1.00
    """  # noqa: E501
    lines = [
        "proposed - baseline2 (UAR points), paired by seed: mean and across-seed std",
        "setting  | split fixed: n mean(test) std(test) std(all) "
        "| split varied: n mean(test) std(test) std(all)",
    ]
    for name, modes in summary.items():
        cells = []
        for mode in SPLIT_MODES:
            cell = modes[mode]
            cells.append(
                f"{len(cell['seeds'])} {_points(cell['test']['mean'])} "
                f"{_points(cell['test']['std'])} {_points(cell['target_all']['std'])}"
            )
        lines.append(f"{name:8} | " + " | ".join(cells))
    return "\n".join(lines)


def paired_variance_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Ratio of the spreads ``std(a) / std(b)`` and the Pitman-Morgan test's p-value.

    ``a`` and ``b`` are paired (the same seeds, hence correlated): the test of
    equal variances for paired normal samples is the test of zero correlation
    between ``a + b`` and ``a - b`` (t with n - 2 degrees of freedom).

    Example
    -------
    >>> ratio, p = paired_variance_test([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    >>> ratio, p
    (1.0, 1.0)
    >>> ratio, p = paired_variance_test([0, 4, 1, 8, 2], [1, 1.5, 1.2, 2, 1.1])
    >>> round(ratio, 1), p < 0.05
    (7.8, True)
    """
    from scipy import stats

    if len(a) != len(b) or len(a) < 3:
        return math.nan, math.nan
    sums = [x + y for x, y in zip(a, b)]
    diffs = [x - y for x, y in zip(a, b)]
    ratio = statistics.stdev(a) / statistics.stdev(b)
    if statistics.pstdev(diffs) == 0 or statistics.pstdev(sums) == 0:
        return ratio, 1.0
    r = float(stats.pearsonr(sums, diffs)[0])
    n = len(a)
    t = r * math.sqrt((n - 2) / max(1e-300, 1 - r * r))
    return ratio, float(2 * stats.t.sf(abs(t), n - 2))


def format_variance_tests(summary: Mapping[str, Mapping[str, dict]]) -> str:
    """Each setting's spread against the first setting's, per column (Holm over all).

    Example
    -------
    >>> def cell(xs):
    ...     return {"seeds": [1, 2, 3, 4], "test": {"differences": xs},
    ...             "target_all": {"differences": xs}}
    >>> s = {"best": {m: cell([0.1, 0.2, 0.1, 0.3]) for m in ("fixed", "varied")},
    ...      "alt": {m: cell([0.1, 0.2, 0.1, 0.3]) for m in ("fixed", "varied")}}
    >>> print(format_variance_tests(s))  # doctest: +NORMALIZE_WHITESPACE
    std ratio against best, Pitman-Morgan p (Holm over the 4 tests)
    setting  | fixed test | fixed all | varied test | varied all
    alt      | 1.00 (p 1.00) | 1.00 (p 1.00) | 1.00 (p 1.00) | 1.00 (p 1.00)
    """
    from zsser_modules.results_table.significance import holm

    names = list(summary)
    reference = names[0]
    columns = [(mode, key) for mode in SPLIT_MODES for key in ("test", "target_all")]
    rows, p_values = [], []
    for name in names[1:]:
        row = []
        for mode, key in columns:
            a = summary[name][mode][key].get("differences", [])
            b = summary[reference][mode][key].get("differences", [])
            row.append(paired_variance_test(a, b))
            p_values.append(row[-1][1])
        rows.append((name, row))
    adjusted = iter(holm(p_values))
    lines = [
        f"std ratio against {reference}, Pitman-Morgan p (Holm over the "
        f"{len(p_values)} tests)",
        "setting  | fixed test | fixed all | varied test | varied all",
    ]
    for name, row in rows:
        cells = [f"{ratio:.2f} (p {next(adjusted):.2f})" for ratio, _ in row]
        lines.append(f"{name:8} | " + " | ".join(cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run (unless --no-run) and summarise every setting; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        index = argv.index("--")
        argv, extra = argv[:index], argv[index + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/selection_variance"))
    parser.add_argument("--pair", default="en_de")
    parser.add_argument("--hparams", default=str(REPO_ROOT / "hparams" / "demo.yaml"))
    parser.add_argument("--encoder", default="fbank_stats")
    parser.add_argument("--seeds", default="1-5")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS))
    parser.add_argument(
        "--no-run", action="store_true", help="summarise the grid folders only"
    )
    args = parser.parse_args(argv)
    try:
        settings = dict(parse_setting(text) for text in args.settings)
    except ValueError as error:
        print(f"selection_variance.py: {error}", file=sys.stderr)
        return 2
    if len(settings) != len(args.settings):
        print("selection_variance.py: two settings share a name.", file=sys.stderr)
        return 2

    summary: dict[str, dict[str, dict]] = {}
    for name, overrides in settings.items():
        summary[name] = {}
        for mode in SPLIT_MODES:
            folder = args.out / name / f"split_{mode}"
            if not args.no_run:
                command = grid_command(folder, args, mode, overrides, extra)
                print("$", " ".join(command[1:]), flush=True)
                subprocess.run(command, cwd=REPO_ROOT, check=False)
            summary[name][mode] = paired_spread(read_runs(folder, args.pair))
            summary[name][mode]["overrides"] = overrides
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(format_table(summary))
    if len(summary) > 1:
        print(format_variance_tests(summary))
    print(f"(numbers in {args.out / 'summary.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
