"""The light core install: setup.py's core and extras, and the lazy optional imports.

- ``install_requires`` is exactly the core set below: a package added there, or
  imported outside an optional feature, fails here, so the core cannot grow
  silently (docs/install.md says why each one is core);
- every third-party import of ``zsser_modules`` and ``recipes`` is a core
  package, or sits inside a function under a guard naming an extra of
  setup.py that lists the package (``with optional.extra("plots", ...)``, or
  a ``try``/``except ImportError`` whose message names ``zsser[<extra>]``);
- ``zsser_modules.optional.EXTRAS`` and setup.py's extras agree;
- in a subprocess where the extras' packages cannot be found
  (tests/core_only_check.py), every module and recipe imports, the core
  pieces run, and every optional feature gives one line naming its extra.
"""

import ast
import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT
from packaging.requirements import Requirement
from setuptools.dist import Distribution

from zsser_modules import optional

#: The core: normalised distribution names of setup.py's install_requires.
CORE = {
    "speechbrain",
    "torch",
    "torchaudio",
    "numpy",
    "scipy",
    "pandas",
    "hyperpyyaml",
    "ruamel-yaml",
    "pyyaml",
    "soundfile",
    "tqdm",
    "filelock",
    "huggingface-hub",
}

#: Top-level import name -> distribution, where they differ.
IMPORT_TO_DIST = {
    **optional.DISTRIBUTIONS,
    "yaml": "pyyaml",
    "ruamel": "ruamel.yaml",
}

#: Our own top-level names (first party): the package, the recipes, tests.
FIRST_PARTY = {
    "zsser_modules",
    "recipes",
    "conftest",
    # The modules an exported model folder ships beside custom_interface.py
    # (verbatim copies of zsser_modules/<name>.py, zsser_modules.inference).
    "zsser_encoders",
    "zsser_audio",
    "zsser_speaker_norm",
    "zsser_adaptation",
}

#: Known unguarded imports, with why: none left. encoders.py is copied into
#: exported models, so it cannot import zsser_modules.optional: its
#: transformers guard (_import_transformers) names the extra in place.
PENDING: set[tuple[str, str]] = set()


def _normalise(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _setup(monkeypatch) -> Distribution:
    from distutils.core import run_setup  # setuptools' vendored distutils

    monkeypatch.chdir(REPO_ROOT)
    return run_setup(str(REPO_ROOT / "setup.py"), stop_after="config")


def _names(requirements) -> set:
    return {_normalise(Requirement(r).name) for r in requirements}


def test_install_requires_is_exactly_the_core(monkeypatch):
    assert _names(_setup(monkeypatch).install_requires) == CORE


def test_the_extras_of_setup_and_optional_agree(monkeypatch):
    extras = {k: _names(v) for k, v in _setup(monkeypatch).extras_require.items()}
    for name, modules in optional.EXTRAS.items():
        for module in modules:
            assert _normalise(optional.distribution(module)) in extras[name], (
                name,
                module,
            )
    named = set(optional.EXTRAS)
    assert set(extras) == named | {"slurm", "all", "dev"}
    everything = set().union(*(extras[name] for name in named))
    assert extras["all"] == everything
    assert extras["dev"] >= extras["all"] | {"pytest", "ruff"}
    assert not everything & CORE  # an extra brings something the core lacks


def _python_files():
    for folder in ("zsser_modules", "recipes"):
        yield from sorted((REPO_ROOT / folder).rglob("*.py"))


def _guard_extras(node, parents, source_of_local_functions) -> set:
    """The extras named by the guards around an import node (empty: none)."""
    names = set()
    for parent in parents:
        if isinstance(parent, ast.With):
            for item in parent.items:
                call = item.context_expr
                if (
                    isinstance(call, ast.Call)
                    and getattr(call.func, "id", getattr(call.func, "attr", None))
                    == "extra"
                    and call.args
                    and isinstance(call.args[0], ast.Constant)
                ):
                    names.add(call.args[0].value)
        if isinstance(parent, ast.Try) and any(
            node in ast.walk(statement) for statement in parent.body
        ):
            for handler in parent.handlers:
                names |= _extras_named_in(handler, source_of_local_functions)
    return names


def _extras_named_in(handler, source_of_local_functions) -> set:
    """Extras a ``except`` handler names (a string, or a message helper call)."""
    names = set()
    for node in ast.walk(handler):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names |= set(re.findall(r"zsser\[(\w+)\]", node.value))
        if isinstance(node, ast.Call):
            func = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if func in {"missing_extra_message", "require_extra"} and node.args:
                names.add(node.args[0].value)
            source = source_of_local_functions.get(func, "")
            names |= set(re.findall(r"zsser\[(\w+)\]", source))
    return names


def _third_party_imports():
    """(file, import name, inside a function, guard extras) of every import."""
    stdlib = set(sys.stdlib_module_names)
    for path in _python_files():
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        local = {
            node.name: ast.get_source_segment(text, node) or ""
            for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        }

        def visit(node, parents, path=path, local=local):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                else:
                    modules = [] if node.level else [node.module]
                for module in modules:
                    top = module.split(".")[0]
                    if top in stdlib or top in FIRST_PARTY:
                        continue
                    in_function = any(
                        isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef))
                        for p in parents
                    )
                    yield (
                        str(path.relative_to(REPO_ROOT)),
                        top,
                        in_function,
                        _guard_extras(node, parents, local),
                    )
            for child in ast.iter_child_nodes(node):
                yield from visit(child, [*parents, node], path, local)

        yield from visit(tree, [])


def test_every_third_party_import_is_core_or_guarded_by_its_extra(monkeypatch):
    extras = {k: _names(v) for k, v in _setup(monkeypatch).extras_require.items()}
    problems, seen = [], set()
    for file, top, in_function, guards in _third_party_imports():
        dist = _normalise(IMPORT_TO_DIST.get(top, top))
        if dist in CORE:
            continue
        seen.add((file, top))
        if (file, top) in PENDING:
            continue
        if not in_function:
            problems.append(f"{file}: {top} imported at module level (not core)")
        elif not guards:
            problems.append(f"{file}: {top} imported without a guard naming an extra")
        for extra in guards:
            if dist not in extras.get(extra, ()):
                problems.append(f"{file}: {top} guarded by {extra!r}, which lacks it")
            if top not in optional.EXTRAS.get(extra, (top,)):
                problems.append(f"{file}: optional.EXTRAS[{extra!r}] lacks {top}")
    assert not problems, "\n".join(problems)
    assert seen, "no optional import found: is the scan looking at the files?"


def _run_check(what: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tests" / "core_only_check.py"),
            what,
            str(REPO_ROOT),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_core_works_without_any_extra():
    done = _run_check("core")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "CORE-ONLY OK" in done.stdout


def test_pretrained_encoders_without_transformers_name_the_extra():
    done = _run_check("encoders")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ENCODERS OK" in done.stdout


def test_missing_extra_message_is_one_line_naming_the_extra():
    with pytest.raises(optional.MissingExtraError) as error:
        with optional.extra("probe", "the probes"):
            raise ModuleNotFoundError("No module named 'sklearn'", name="sklearn")
    assert str(error.value).startswith("the probes needs scikit-learn")
    assert 'pip install "zsser[probe]"' in str(error.value)
    assert isinstance(error.value, ImportError)
    # A module of no extra of the guard is not relabelled.
    with pytest.raises(ModuleNotFoundError, match="torchvision"):
        with optional.extra("probe", "the probes"):
            raise ModuleNotFoundError(
                "No module named 'torchvision'", name="torchvision"
            )
    with pytest.raises(ValueError, match="unknown extra 'plot'"):
        with optional.extra("plot", "typo"):
            pass
