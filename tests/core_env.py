"""Build a real environment holding only what ``pip install zsser[EXTRAS]`` installs.

Not part of the test suite (docs/install.md, "A real core-only environment").
The dependency closure of setup.py's ``CORE`` (plus the requirements of the
named extras) is read from the metadata of the packages installed in the
running environment (markers and requirement extras evaluated), linked into a
folder, and that folder is put on the path of a new virtual environment (a
``.pth`` file). zsser itself is then installed with ``--no-deps`` and
``pip check`` verifies that nothing is missing. No download::

    python tests/core_env.py /tmp/zsser-core            # the core only
    python tests/core_env.py /tmp/zsser-demo demo       # the core + [demo]
    cd /work && /tmp/zsser-core/venv/bin/python -c "import zsser_modules"

The running environment must hold every package of the closure (a ``[dev]``
install does).
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import subprocess
import sys
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parents[1]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(extras: list[str]) -> list[str]:
    """setup.py's CORE plus the requirements of ``extras`` (setup() not run)."""
    source = (REPO_ROOT / "setup.py").read_text(encoding="utf-8")
    definitions: dict = {}
    exec(source[source.index("CORE = [") : source.index("setup(")], definitions)
    found = list(definitions["CORE"])
    for extra in extras:
        found += definitions["EXTRAS"][extra]
    return found


def closure(roots: list[str]) -> dict[str, metadata.Distribution]:
    """Every installed distribution the requirements ``roots`` need."""
    environment = default_environment()
    todo = [Requirement(r) for r in roots]
    seen: dict[str, metadata.Distribution] = {}
    done: set[tuple[str, str]] = set()
    while todo:
        requirement = todo.pop()
        name = _normalise(requirement.name)
        dist = metadata.distribution(requirement.name)
        if requirement.specifier and dist.version not in requirement.specifier:
            raise SystemExit(f"{dist.name} {dist.version} does not meet {requirement}")
        seen[name] = dist
        for extra in ["", *sorted(requirement.extras)]:
            if (name, extra) in done:
                continue
            done.add((name, extra))
            for line in dist.requires or []:
                needed = Requirement(line)
                marker = needed.marker
                if marker and not marker.evaluate({**environment, "extra": extra}):
                    continue
                if extra and not (marker and "extra" in str(marker)):
                    continue  # added with extra ""
                todo.append(needed)
    return seen


def build(target: Path, extras: list[str]) -> None:
    """Make ``target/venv`` with exactly the closure, and zsser installed."""
    dists = closure(requirements(extras))
    print(f"{len(dists)} distributions: {' '.join(sorted(dists))}")
    site = Path(metadata.distribution("torch")._path).parent  # noqa: SLF001
    shadow = target / "closure"
    shadow.mkdir(parents=True)
    entries = set()
    for dist in dists.values():
        entries.add(Path(dist._path).name)  # noqa: SLF001 (its .dist-info)
        for file in dist.files or []:
            top = file.parts[0]
            if top not in ("..", "__pycache__") and not top.endswith(".pth"):
                entries.add(top)
    for entry in sorted(entries):
        if (site / entry).exists():
            os.symlink(site / entry, shadow / entry)
    venv = target / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site_packages = next((venv / "lib").glob("python3*/site-packages"))
    (site_packages / "zsser_closure.pth").write_text(f"{shadow}\n", encoding="utf-8")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "-q"]
    # the venv's own old setuptools would hide the closure's (torch needs it)
    subprocess.run([*pip, "uninstall", "-y", "setuptools"], check=True)
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", str(REPO_ROOT)],
        check=True,
    )
    subprocess.run([*pip, "check"], check=True)
    print(f"{venv}/bin/python: zsser with {sorted(extras) or 'the core only'}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    build(Path(sys.argv[1]), sys.argv[2].split(",") if len(sys.argv) == 3 else [])
