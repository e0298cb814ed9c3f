"""Consistency of a hyperparameter file with its training script.

Our own version of the rules of SpeechBrain's ``check_yaml_vs_script`` and
``check_module_vars`` (``tests/utils/check_yaml.py`` of speechbrain, run on
every recipe by ``tests/consistency/test_yaml.py``), read with the ``ast`` of
the script instead of text patterns:

* every top-level key of the YAML is used by the script (``hparams["x"]``,
  ``hparams.x``, ``self.hparams.x``, ``hparams.get("x")``,
  ``getattr(self.hparams, "x")``) or referenced by another entry
  (``!ref <x>``); keys that only run code at load time (``__set_seed``) and
  SpeechBrain's run options (``debug``, ``device``...: read by ``Brain``
  itself) are exempt, as in SpeechBrain;
* every key the script reads is defined by the YAML, or set by the script
  itself (``hparams["x"] = ...``);
* every ``self.modules.x`` / ``self.modules["x"]`` of the script is listed in
  the YAML's ``modules:`` block.

A key read through an f-string (``hparams[f"{name}_encoder"]``) counts as a
use of every key that matches it, and is reported too (SpeechBrain warns).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import ruamel.yaml
import speechbrain as sb

#: Methods of the hparams dict / namespace and of nn.ModuleDict: not keys.
CONTAINER_METHODS = frozenset(
    dir(dict) + ["parameters", "named_parameters", "train", "eval", "to", "children"]
)
_REF = re.compile(r"<([A-Za-z_]\w*)")


@dataclass
class ScriptUse:
    """What a script reads from (and writes to) its hyperparameters."""

    reads: set = field(default_factory=set)
    writes: set = field(default_factory=set)
    patterns: set = field(default_factory=set)  # f-string keys, as regexes
    modules: set = field(default_factory=set)


def _is_named(node: ast.AST, name: str) -> bool:
    """``name`` or ``<anything>.name``."""
    return (isinstance(node, ast.Name) and node.id == name) or (
        isinstance(node, ast.Attribute) and node.attr == name
    )


def _key(node: ast.AST):
    """A constant string key, an f-string pattern (compiled), or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = [
            re.escape(v.value) if isinstance(v, ast.Constant) else r"\w+"
            for v in node.values
        ]
        return re.compile("".join(parts))
    return None


#: The recipe's helper package: the keys it sets at run time (e.g.
#: ``encoder_is_cached``) count as set for a script that imports it. The keys
#: it reads do not count as used: recipes/train.py hands each helper its
#: options (a YAML group such as ``data_options``), as SpeechBrain's check
#: (a text check of the script alone) needs.
HELPERS = Path(__file__).resolve().parents[1] / "zsser_modules" / "run"


def helper_files(tree: ast.AST) -> list[Path]:
    """The files of zsser_modules.run when the script imports it (else [])."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = {alias.name for alias in node.names}
            if node.module.startswith("zsser_modules.run") or (
                node.module == "zsser_modules" and "run" in names
            ):
                return sorted(HELPERS.glob("*.py"))
    return []


def script_use(script: Path) -> ScriptUse:
    """The hyperparameters and modules that ``script`` uses.

    Read in the script's own text only; with the recipe's helpers
    (zsser_modules.run, when the script imports it), a key they write counts
    as written by the script (it need not be in the YAML).
    """
    tree = ast.parse(Path(script).read_text(encoding="utf-8"))
    use = ScriptUse()
    for helper in helper_files(tree):
        helper_use = ScriptUse()
        _record_use(ast.parse(helper.read_text(encoding="utf-8")), helper_use)
        use.writes |= helper_use.writes
    _record_use(tree, use)
    return use


def _record_use(tree: ast.AST, use: ScriptUse) -> None:
    """Add what the code of ``tree`` reads and writes to ``use``."""

    def record(key, target):
        if isinstance(key, str):
            target.add(key)
        elif key is not None:
            use.patterns.add(key)

    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_named(node.value, "hparams"):
            key = _key(node.slice)
            if isinstance(node.ctx, ast.Store):
                record(key, use.writes)
            else:
                record(key, use.reads)
        elif isinstance(node, ast.Attribute) and _is_named(node.value, "hparams"):
            if node.attr not in CONTAINER_METHODS:
                (use.writes if isinstance(node.ctx, ast.Store) else use.reads).add(
                    node.attr
                )
        elif isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "get"
                and _is_named(func.value, "hparams")
                and node.args
            ):
                record(_key(node.args[0]), use.reads)
            if (
                isinstance(func, ast.Name)
                and func.id in ("getattr", "hasattr")
                and len(node.args) >= 2
                and _is_named(node.args[0], "hparams")
            ):
                record(_key(node.args[1]), use.reads)
        if isinstance(node, ast.Attribute) and _is_named(node.value, "modules"):
            if isinstance(node.value, ast.Attribute) and node.attr not in (
                CONTAINER_METHODS
            ):
                use.modules.add(node.attr)  # self.modules.x
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
            if node.value.attr == "modules":
                key = _key(node.slice)
                if isinstance(key, str):
                    use.modules.add(key)  # self.modules["x"]


def _refs(node) -> set:
    """Names referenced (``!ref <x>``, ``!copy <x>``) anywhere under a node."""
    found = set()
    tag = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(node, dict):
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    elif tag in ("!ref", "!copy"):
        found |= set(_REF.findall(str(getattr(node, "value", node))))
    return found


def yaml_keys(hparams_file: Path) -> tuple[dict, set]:
    """Top-level keys (raw values) and every name referenced by an entry."""
    with open(hparams_file, encoding="utf-8") as stream:
        tree = ruamel.yaml.YAML().load(stream) or {}
    return dict(tree), _refs(tree)


def check_yaml_vs_script(hparams_file: Path, script: Path) -> list[str]:
    """Every inconsistency between ``hparams_file`` and ``script`` (none: [])."""
    values, referenced = yaml_keys(hparams_file)
    use = script_use(script)
    run_options = set(sb.core.RunOptions().as_dict())
    problems = []

    def used(key):
        if key in use.reads or key in referenced:
            return True
        return any(pattern.fullmatch(key) for pattern in use.patterns)

    for key in values:
        if key.startswith("__") or key in run_options or used(key):
            continue
        problems.append(
            f"{hparams_file}: '{key}' is defined but not used by {script} "
            "nor referenced by another entry"
        )
    for key in sorted(use.reads - set(values) - use.writes - run_options):
        problems.append(f"{script} reads '{key}', which {hparams_file} does not define")
    listed = set(values.get("modules") or {})
    for name in sorted(use.modules - listed):
        problems.append(
            f"{script} uses self.modules.{name}, which the 'modules:' block of "
            f"{hparams_file} does not list"
        )
    return problems
