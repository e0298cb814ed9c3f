"""Rows of tests/recipes/*.csv, SpeechBrain's recipe-test format, and their checks.

Our own code with the semantics of SpeechBrain's ``tests/utils/recipe_tests.py``
(``prepare_test``, ``run_recipe_tests``, ``check_files``,
``check_performance``): a row is run as

    python <Script_file> <Hparam_file> <test_debug_flags> --device=cpu \\
        --output_folder=<output folder of the row>

from the folder its relative paths refer to, and its ``test_debug_checks``
are checked in the output folder:

* ``file_exists=[a,b/c]``: each file exists;
* ``performance_check=[file, variable, <=10, epoch: 2]``: the value of
  ``variable`` (``variable: 1.23``) on the lines of ``file`` that contain
  ``epoch: 2`` (``epoch: -1``: the last non-empty line) meets the threshold
  (``==``, ``>=``, ``>``, ``<=``, ``<``).
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: The header of a recipe-test file, exactly as SpeechBrain's.
HEADER = [
    "Task",
    "Dataset",
    "Script_file",
    "Hparam_file",
    "Data_prep_file",
    "Readme_file",
    "Result_url",
    "HF_repo",
    "test_debug_flags",
    "test_debug_checks",
    "performance",
]
#: Files of a recipe folder that are not recipe-test files (SpeechBrain's skip list).
SKIP = ("README.md", "setup")


@dataclass
class RecipeRow:
    """One row of a recipe-test file; ``recipe_id`` as SpeechBrain names it."""

    recipe_id: str
    fields: dict

    def __getitem__(self, key: str) -> str:
        return self.fields[key].strip()


def read_header(path: Path) -> list[str]:
    """The header of a recipe-test file, as written."""
    with open(path, newline="", encoding="utf-8") as stream:
        return next(csv.reader(stream))


def read_rows(folder: Path) -> list[RecipeRow]:
    """Every row of every recipe-test file of ``folder`` (``<file>_row_<NN>``)."""
    rows = []
    for path in sorted(Path(folder).iterdir()):
        if path.name in SKIP or path.suffix != ".csv":
            continue
        with open(path, newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream, delimiter=",", skipinitialspace=True)
            for i, fields in enumerate(reader):
                rows.append(RecipeRow(f"{path.stem}_row_{i + 2:02d}", fields))
    return rows


def row_command(row: RecipeRow, repo: Path, output_folder: Path, run_opts: str):
    """The shell command of a row (script and hparams file taken from ``repo``)."""
    flags = row["test_debug_flags"]
    command = (
        f"{shlex.quote(sys.executable)} {shlex.quote(str(repo / row['Script_file']))} "
        f"{shlex.quote(str(repo / row['Hparam_file']))} {flags} {run_opts}"
    )
    if "--output_folder" not in flags:
        command += f" --output_folder={shlex.quote(str(output_folder))}"
    return command


def run_row(
    row: RecipeRow,
    repo: Path,
    workdir: Path,
    output_folder: Path,
    run_opts: str = "--device=cpu",
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """Run a row from ``workdir``; stdout and stderr go to the output folder."""
    output_folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(repo), env.get("PYTHONPATH", "")])
    command = row_command(row, repo, output_folder, run_opts)
    with (
        open(output_folder / "stdout.txt", "w") as out,
        open(output_folder / "stderr.txt", "w") as err,
    ):
        return subprocess.run(
            command,
            shell=True,
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=err,
            timeout=timeout,
        )


def missing_files(checks: str, output_folder: Path) -> list[str]:
    """The files of ``file_exists=[...]`` that the output folder lacks."""
    match = re.search(r"file_exists=\[(.*?)\]", checks)
    if match is None:
        return []
    names = match.group(1).split(",")
    return [name for name in names if not (Path(output_folder) / name).exists()]


def extract_value(line: str, key: str) -> str | None:
    """The number after ``key:`` in a log line (with a decimal point), or None.

    Example
    -------
    >>> extract_value("epoch: 2 - test loss: 4.71e-01, test uar: 14.21", "test loss")
    '4.71e-01'
    >>> extract_value("epoch: 2 - train loss: 3", "train loss") is None
    True
    """
    pattern = (
        rf"(?P<key>{re.escape(key)})\s*:\s*(?P<value>[-+]?\d*\.\d+([eE][-+]?\d+)?)"
    )
    match = re.search(pattern, line)
    return match.group("value") if match else None


def meets_threshold(threshold: str, value: float) -> bool:
    """Whether ``value`` meets ``threshold`` (``==15``, ``>=10``, ``<5`` ...).

    Example
    -------
    >>> meets_threshold("<=10", 3.5), meets_threshold(">0.5", 0.5)
    (True, False)
    """
    bound = float(threshold.strip().replace("=", "").replace(">", "").replace("<", ""))
    for operator, test in (
        ("==", value == bound),
        (">=", value >= bound),
        (">", value > bound),
        ("<=", value <= bound),
        ("<", value < bound),
    ):
        if operator in threshold:
            return test
    return False


def performance_problem(checks: str, output_folder: Path) -> str | None:
    """Why ``performance_check=[...]`` fails (None: it passes, or there is none)."""
    match = re.search(r"performance_check=\[(.*?)\]", checks)
    if match is None:
        return None
    parts = [part.strip() for part in match.group(1).split(",")]
    if len(parts) != 4:
        return f"performance_check needs [file, variable, threshold, epoch: N]: {parts}"
    name, variable, threshold, epoch = parts
    path = Path(output_folder) / name
    if not path.is_file():
        return f"{path} does not exist"
    lines = path.read_text(encoding="utf-8").splitlines()
    chosen = [line for line in lines if epoch in line]
    if int(epoch.split(":")[-1]) == -1:
        chosen.append(next((ln for ln in reversed(lines) if ln.strip()), ""))
    if not chosen:
        return f"no line of {path} has '{epoch}'"
    value = extract_value(chosen[0], variable)
    if value is None:
        return f"no '{variable}: <number>' on the line '{chosen[0]}' of {path}"
    if not meets_threshold(threshold, float(value)):
        return f"{variable} = {value} in {path}, expected {threshold}"
    return None
