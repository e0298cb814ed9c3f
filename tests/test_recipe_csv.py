"""The recipe-test rows of tests/recipes/*.csv, run as SpeechBrain runs them.

Each row's ``test_debug_flags`` are run on fixture data (the demo corpus with
tiny ``demo_options``; ESD and EmoDB fixture trees in their real layouts and a
tiny WavLM, written by ``python tests/recipe_utils.py tests/tmp/zsser_fixture``),
from a scratch folder that stands for the repository root of SpeechBrain's
runner, and its ``test_debug_checks`` are checked (tests/recipe_csv.py).
Every row's hparams file also passes the YAML-vs-script consistency check,
as SpeechBrain's ``tests/consistency/test_yaml.py`` runs it on every row.
"""

from pathlib import Path

import pytest
from recipe_csv import (
    HEADER,
    missing_files,
    performance_problem,
    read_header,
    read_rows,
    run_row,
)
from recipe_utils import build_fixture
from yaml_consistency import check_yaml_vs_script

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "tests" / "recipes"
ROWS = read_rows(RECIPES)
#: Where the rows' flags expect the fixture trees (relative to the run folder).
FIXTURE = Path("tests/tmp/zsser_fixture")


def test_recipe_files_have_speechbrains_header():
    files = sorted(RECIPES.glob("*.csv"))
    assert files
    for path in files:
        assert read_header(path) == HEADER, path


def test_rows_cover_the_demo_and_a_real_corpus_pair():
    assert {row["Hparam_file"] for row in ROWS} >= {
        "hparams/demo.yaml",
        "hparams/en_de.yaml",
    }
    for row in ROWS:
        assert row["test_debug_flags"] and "file_exists=[" in row["test_debug_checks"]


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.recipe_id)
def test_the_files_of_a_row_exist_and_agree(row):
    for field in ("Script_file", "Hparam_file", "Data_prep_file", "Readme_file"):
        assert (REPO / row[field]).is_file(), f"{row.recipe_id}: {field}"
    assert (
        check_yaml_vs_script(REPO / row["Hparam_file"], REPO / row["Script_file"]) == []
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The scratch run folder, with the fixture trees where the flags expect them."""
    folder = tmp_path_factory.mktemp("recipe_rows")
    build_fixture(folder / FIXTURE)
    return folder


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.recipe_id)
def test_a_row_runs_on_fixture_data_and_passes_its_checks(row, workdir):
    output_folder = workdir / "tests" / "tmp" / row.recipe_id
    done = run_row(row, REPO, workdir, output_folder)
    stderr = (output_folder / "stderr.txt").read_text()
    assert done.returncode == 0, f"{row.recipe_id} failed:\n{stderr[-3000:]}"
    checks = row["test_debug_checks"]
    assert missing_files(checks, output_folder) == []
    assert performance_problem(checks, output_folder) is None
    # SpeechBrain's runner gives every row its own output folder.
    assert "test UAR" in (output_folder / "stdout.txt").read_text()


def test_the_checks_fail_when_they_should(tmp_path):
    log = tmp_path / "train_log.txt"
    log.write_text(
        "epoch: 1, lr: 1.00e-03 - train loss: 3.04 - valid loss: 2.58\n"
        "epoch: 2, lr: 1.00e-03 - train loss: 12.50 - valid loss: 2.12\n"
    )
    check = "file_exists=[train_log.txt,missing.txt] performance_check=[train_log.txt, train loss, <=10, epoch: 2]"  # noqa: E501
    assert missing_files(check, tmp_path) == ["missing.txt"]
    assert "train loss = 12.50" in performance_problem(check, tmp_path)
    assert performance_problem(check.replace("epoch: 2", "epoch: 1"), tmp_path) is None
    assert performance_problem(check.replace("epoch: 2", "epoch: -1"), tmp_path)
    assert "no line" in performance_problem(
        check.replace("epoch: 2", "epoch: 7"), tmp_path
    )
