"""The contribution path: the recipe staged into a SpeechBrain-shaped tree.

``tools/stage_speechbrain.py`` lays the recipe, its CSV and the rows' debug
data into a tree beside SpeechBrain's own check kit (``../shared/speechbrain``
or ``$ZSSER_SPEECHBRAIN_KIT``); from the root of that tree, as the toolkit
runs them, these tests run

- its consistency tests, ``tests/consistency/test_recipe.py`` (every
  function) and ``tests/consistency/test_yaml.py`` (``check_yaml_vs_script``
  on every row);
- its recipe-test runner, ``tests/utils/recipe_tests.py``, on every row of
  ``tests/recipes/ZeroShotCrossLingualSER.csv``, as its release checks call it
  (``do_checks=True``: each row's files and training-loss bound are checked),
  and one row as its documentation calls it (``do_checks=False``: the run
  gets ``--debug --debug_persistently``).

The runner starts every row as ``PYTHONPATH=<recipe folder> python ...``,
which hides this checkout where another copy of ``zsser_modules`` is
installed (a git worktree): a ``python`` placed first on ``PATH`` for the
runner adds this checkout after the recipe folder.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zsser_modules.labels import PAPER_TASKS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "stage_speechbrain.py"
KIT = Path(
    os.environ.get("ZSSER_SPEECHBRAIN_KIT") or REPO.parent / "shared" / "speechbrain"
)
NAME = "ZeroShotCrossLingualSER"
RECIPE = Path("recipes") / NAME
TASKS = PAPER_TASKS

if not (KIT / "tests" / "consistency" / "test_recipe.py").is_file():
    pytest.skip(
        f"SpeechBrain's check kit is not at {KIT}: put it at ../shared/speechbrain "
        "or set ZSSER_SPEECHBRAIN_KIT to a SpeechBrain checkout",
        allow_module_level=True,
    )


def run(command, cwd, env=None, timeout=600):
    """Run a command; return the completed process (output as text)."""
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """A staged tree (built once for the module)."""
    out = tmp_path_factory.mktemp("speechbrain") / "tree"
    done = run([sys.executable, str(TOOL), str(out), "--kit", str(KIT)], cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def runner_env(tmp_path_factory):
    """The environment of the runner: this checkout's zsser_modules (see above)."""
    bin_dir = tmp_path_factory.mktemp("bin")
    shim = bin_dir / "python"
    shim.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{REPO}" '
        f'exec "{sys.executable}" "$@"\n'
    )
    shim.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": "",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }


def run_recipe_tests(root, env, **options):
    """The toolkit's runner on this recipe's rows, from the staged root."""
    arguments = ", ".join(f"{key}={value!r}" for key, value in options.items())
    code = (
        "import sys\n"
        "from tests.utils.recipe_tests import run_recipe_tests\n"
        f"sys.exit(0 if run_recipe_tests({arguments}) else 1)\n"
    )
    return run([sys.executable, "-c", code], cwd=root, env=env)


def test_the_tree_holds_the_recipe_in_the_toolkits_shape(staged):
    recipe = staged / RECIPE
    assert (recipe / "train.py").read_bytes() == (
        REPO / "recipes" / "train.py"
    ).read_bytes()
    assert sorted(p.name for p in (recipe / "hparams").iterdir()) == sorted(
        [f"{task}.yaml" for task in TASKS] + ["demo.yaml"]
    )  # the generator's inputs (hparams/template/) are not staged
    for corpus in ("esd", "emodb", "cafe", "urdu", "meld", "demo", "zero_shot"):
        assert (recipe / "data_prep" / f"{corpus}.py").is_file()
    assert "# **Citing SpeechBrain**" in (recipe / "README.md").read_text()
    requirement = (recipe / "extra_requirements.txt").read_text().splitlines()[-1]
    assert requirement.startswith("zsser") and REPO.as_uri() in requirement
    # This recipe's CSV is the only one (the kit's own are left out).
    assert [p.name for p in (staged / "tests" / "recipes").glob("*.csv")] == [
        f"{NAME}.csv"
    ]
    assert (staged / "tests" / "tmp" / NAME / "data" / "demo.csv").is_file()


def consistency_tests(root, *tests):
    """The toolkit's consistency tests, run with pytest from the staged root."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *tests]
    return run(command, cwd=root, env={**os.environ, "PYTHONPATH": ""})


def test_the_toolkits_recipe_consistency_test_passes(staged):
    done = consistency_tests(staged, "tests/consistency/test_recipe.py")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "4 passed" in done.stdout  # every function of the file


def test_every_hparams_key_is_used_by_the_script_as_the_toolkit_checks(staged):
    """tests/consistency/test_yaml.py: check_yaml_vs_script on every row."""
    done = consistency_tests(staged, "tests/consistency/test_yaml.py")
    assert done.returncode == 0, done.stdout[-3000:]


def test_the_consistency_test_refuses_an_unlisted_yaml(staged):
    """A yaml of the recipe folder with no row fails it (the check is live)."""
    extra = staged / RECIPE / "hparams" / "template" / "common.yaml"
    extra.parent.mkdir()
    extra.write_text((REPO / "hparams" / "template" / "common.yaml").read_text())
    try:
        done = consistency_tests(
            staged, "tests/consistency/test_recipe.py::test_recipe_list"
        )
    finally:
        extra.unlink()
        extra.parent.rmdir()
    assert done.returncode != 0
    assert "hparams/template/common.yaml is not listed" in done.stdout


def test_the_toolkits_runner_passes_every_row(staged, runner_env):
    done = run_recipe_tests(
        staged,
        runner_env,
        filters_fields=["Dataset"],
        filters=[[NAME]],
        run_opts="--device=cpu",
    )
    assert done.returncode == 0, done.stderr[-5000:]
    outputs = sorted((staged / "tests" / "tmp").glob(f"{NAME}_row_*"))
    assert len(outputs) == len(TASKS) + 1
    runs = {}
    for folder in outputs:
        results = json.loads((folder / "results.json").read_text())
        hparams = (folder / "hyperparams.yaml").read_text()
        runs[(results["source"], results["target"], results["encoder"])] = hparams
    # Each task's file ran its own pair on its own encoder (the tiny SSL
    # model), the demo on filterbank statistics.
    assert set(runs) == {(*task.split("_"), "ssl") for task in TASKS} | {
        ("en", "de", "fbank_stats")
    }


def test_a_row_passes_the_runner_in_debug_mode(staged, runner_env, tmp_path):
    """As the toolkit's README calls the runner: --debug --debug_persistently."""
    done = run_recipe_tests(
        staged,
        runner_env,
        filters_fields=["Hparam_file"],
        filters=[[f"{RECIPE}/hparams/en_de.yaml"]],
        do_checks=False,
        run_opts="--device=cpu",
        output_folder=f"{tmp_path}/",
    )
    assert done.returncode == 0, done.stderr[-5000:]
    (folder,) = tmp_path.glob(f"{NAME}_row_*")
    assert json.loads((folder / "results.json").read_text())["debug"] is True


def test_the_tool_refuses_a_wrong_kit_or_a_used_folder(tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "file").write_text("")
    for arguments, expected in (
        ([str(tmp_path / "new"), "--kit", str(tmp_path)], "is not a SpeechBrain"),
        ([str(used), "--kit", str(KIT)], "is not empty"),
    ):
        done = run([sys.executable, str(TOOL), *arguments], cwd=REPO)
        assert done.returncode == 2
        assert expected in done.stderr and len(done.stderr.splitlines()) == 1
