"""What ``pip install`` puts into site-packages: one top-level package only."""

from pathlib import Path

from conftest import REPO_ROOT
from setuptools.dist import Distribution


def _setup_distribution(monkeypatch) -> Distribution:
    """``setup.py`` read as pip reads it (configuration only, nothing built)."""
    from distutils.core import run_setup  # setuptools' vendored distutils

    monkeypatch.chdir(REPO_ROOT)  # pip runs setup.py from the project folder
    return run_setup(str(REPO_ROOT / "setup.py"), stop_after="config")


def test_only_zsser_modules_is_installed_at_the_top_level(monkeypatch):
    packages = _setup_distribution(monkeypatch).packages
    assert {name.split(".")[0] for name in packages} == {"zsser_modules"}
    assert "zsser_modules.data_prep" in packages
    assert not (REPO_ROOT / "data_prep" / "__init__.py").exists()


def test_the_file_lists_are_package_data(monkeypatch):
    package_data = _setup_distribution(monkeypatch).package_data[
        "zsser_modules.data_prep"
    ]
    folder = REPO_ROOT / "zsser_modules" / "data_prep"
    shipped = {p.name for pattern in package_data for p in folder.glob(pattern)}
    lists = {"cafe-files.csv", "emodb-files.csv", "urdu-files.csv"}
    # paper_splits.json: the committed split of the real corpora (paper_protocol)
    assert shipped == lists | {"paper_splits.json"}
    assert all(Path(folder, "file_lists", name).stat().st_size for name in lists)
    assert Path(folder, "paper_splits.json").stat().st_size
