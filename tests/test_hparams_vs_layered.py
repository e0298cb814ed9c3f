"""Transition check: each generated file loads as today's layered pair file did.

Compares, for every file of hparams/, the plain load of the generated file
(references resolved, tags kept, and the objects built by load_hyperpyyaml)
with the layered load (zsser_modules.hparams) of the same file at commit
29d20df, the last commit with base_hparams layering. Removed with the
layering code.
"""

import subprocess
from pathlib import Path

import pytest
import ruamel.yaml
from hyperpyyaml import load_hyperpyyaml, resolve_references

from zsser_modules.hparams import resolve_layered_hparams
from zsser_modules.run_identity import RunIdentity, _plain

REPO = Path(__file__).resolve().parents[1]
LAYERED_COMMIT = "29d20df"
FILES = sorted(p.name for p in (REPO / "hparams").glob("*.yaml"))


def git_show(path):
    return subprocess.run(
        ["git", "show", f"{LAYERED_COMMIT}:{path}"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture(scope="module")
def layered_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("layered")
    for name in ["common.yaml", *FILES]:
        (folder / name).write_text(git_show(f"hparams/{name}"))
    return folder


def resolved(path, overrides=""):
    with open(path) as fin:
        return _plain(
            ruamel.yaml.YAML().load(resolve_references(fin, overrides).getvalue())
        )


def comparable(value):
    """Loaded hyperparameters as comparable data (objects by type and state)."""
    import functools

    import torch

    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value).__name__, [comparable(v) for v in value]
    if isinstance(value, functools.partial):
        return (
            "partial",
            value.func.__module__,
            value.func.__qualname__,
            comparable(value.keywords),
        )
    if isinstance(value, torch.nn.Module):
        return (
            type(value).__qualname__,
            repr(value),
            {k: v.tolist() for k, v in value.state_dict().items()},
        )
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    return type(value).__qualname__, comparable(
        {
            k: v
            for k, v in vars(value).items()
            if isinstance(v, (str, int, float, bool, type(None), list, dict, tuple))
        }
    ) if hasattr(value, "__dict__") else repr(value)


@pytest.mark.parametrize("name", FILES)
def test_plain_load_equals_the_layered_load(layered_dir, name):
    base, merged = resolve_layered_hparams(layered_dir / name)
    assert base.name == "common.yaml"
    plain = resolved(REPO / "hparams" / name)
    layered = resolved(base, merged)
    assert plain == layered
    with open(REPO / "hparams" / name) as fin:
        plain_objects = load_hyperpyyaml(fin)
    with open(base) as fin:
        layered_objects = load_hyperpyyaml(fin, merged)
    assert set(plain_objects) == set(layered_objects)
    assert comparable(plain_objects) == comparable(layered_objects)
    assert (
        RunIdentity.from_hparams(REPO / "hparams" / name, "seed: 3").hash
        == RunIdentity.from_hparams(layered_dir / name, "seed: 3").hash
    )
