"""Layered HyperPyYAML files: a small pair file on top of a shared base file.

A recipe keeps every hyperparameter in one shared file (``hparams/common.yaml``)
and one tiny file per experiment that only sets what differs::

    # hparams/en_de.yaml : English (ESD) -> German (EmoDB)
    base_hparams: common.yaml
    source_lang: en
    target_lang: de

Loading ``en_de.yaml`` loads ``common.yaml`` (path relative to ``en_de.yaml``)
with the pair file's keys as overrides, themselves overridden by the command
line. Every knob therefore stays a top-level key of the base file, and
``--source_lang=fr`` on the command line beats the pair file, which beats the
base file. A base file may itself name a ``base_hparams`` (chains are
followed, cycles are refused). Keys that the base file does not define are
refused with the list of close matches, so a typo never passes silently.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import difflib
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

import ruamel.yaml
from hyperpyyaml import load_hyperpyyaml
from hyperpyyaml.core import recursive_update

PathLike = Union[str, "os.PathLike[str]"]
Overrides = Optional[Union[str, Mapping]]

#: The key of a layered file that names the file it is layered on.
BASE_KEY = "base_hparams"


def _round_trip_yaml() -> ruamel.yaml.YAML:
    """Return a ruamel loader/dumper that keeps HyperPyYAML tags (``!ref`` ...)."""
    return ruamel.yaml.YAML()


def _as_mapping(overrides: Overrides) -> dict:
    """Turn overrides given as a YAML string, a mapping or None into a mapping."""
    if overrides is None:
        return {}
    if isinstance(overrides, str):
        loaded = _round_trip_yaml().load(overrides) if overrides.strip() else None
        if loaded is None:
            return {}
        if not isinstance(loaded, Mapping):
            raise ValueError(
                "Overrides must be a YAML mapping such as 'seed: 3', got "
                f"{overrides!r}."
            )
        return loaded
    if isinstance(overrides, Mapping):
        return overrides
    raise TypeError(
        "Overrides must be a YAML string, a mapping or None, got "
        f"{type(overrides).__name__}."
    )


def _load_tree(path: Path) -> Mapping:
    """Read one YAML file with its tags kept; an empty file is an empty mapping."""
    if not path.is_file():
        raise FileNotFoundError(f"Hyperparameter file not found: '{path}'.")
    with open(path, encoding="utf-8") as stream:
        tree = _round_trip_yaml().load(stream)
    if tree is None:
        return {}
    if not isinstance(tree, Mapping):
        raise ValueError(
            f"'{path}' must hold a YAML mapping of hyperparameters at its top level."
        )
    return tree


def _check_known_keys(overrides: Mapping, base_tree: Mapping, base_path: Path) -> None:
    """Refuse top-level override keys that the base file does not define."""
    unknown = [key for key in overrides if key not in base_tree]
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), [str(k) for k in base_tree], n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        hints.append(f"  {key!r} {hint}".rstrip())
    raise ValueError(
        f"Unknown hyperparameter(s) {unknown}: not defined in '{base_path}'.\n"
        + "\n".join(hints)
        + "\nEvery setting must be a key of the base file: fix the name (in the "
        "layered file or on the command line) or add the key to the base file."
    )


def resolve_layered_hparams(path: PathLike, overrides: Overrides = None) -> tuple:
    r"""Find the base file of a layered hyperparameter file and merge the overrides.

    Follows the ``base_hparams`` chain from ``path`` down to a file without
    ``base_hparams``. The keys of every layered file (minus ``base_hparams``)
    become overrides of the file below it; the closer to ``path``, the higher
    the priority, and ``overrides`` (the command line) beats them all. A file
    without ``base_hparams`` is returned as is with ``overrides``.

    Arguments
    ---------
    path : str or os.PathLike
        The file given on the command line, e.g. ``hparams/en_de.yaml``.
    overrides : str or mapping, optional
        Command-line overrides, as returned by ``speechbrain.parse_arguments``
        (a YAML string) or as a mapping.

    Returns
    -------
    base_path : pathlib.Path
        The file to give to ``load_hyperpyyaml`` (and to
        ``speechbrain.create_experiment_directory``).
    merged_overrides : str
        The merged overrides as a YAML string (tags such as ``!ref`` kept).

    Raises
    ------
    ValueError
        If a key is not defined in the base file, if ``base_hparams`` is given
        as an override, or if the ``base_hparams`` chain loops.
    FileNotFoundError
        If a file of the chain does not exist.

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "common.yaml").write_text("seed: 1\nsource_lang: null\n")
    >>> _ = (folder / "en_de.yaml").write_text(
    ...     "base_hparams: common.yaml\nsource_lang: en\n")
    >>> base, merged = resolve_layered_hparams(folder / "en_de.yaml", "seed: 3")
    >>> base.name
    'common.yaml'
    >>> print(merged.strip())
    source_lang: en
    seed: 3
    """
    path = Path(path)
    cli = _as_mapping(overrides)
    if BASE_KEY in cli:
        raise ValueError(
            f"'{BASE_KEY}' cannot be overridden; write a layered file instead."
        )
    merged: Mapping = cli
    seen = []
    tree = _load_tree(path)
    while BASE_KEY in tree:
        seen.append(path.resolve())
        layer = {key: value for key, value in tree.items() if key != BASE_KEY}
        recursive_update(layer, merged)
        merged = layer
        base_name = tree[BASE_KEY]
        if not isinstance(base_name, str) or not base_name:
            raise ValueError(
                f"'{BASE_KEY}' in '{path}' must be a file name such as "
                f"'common.yaml' (relative to '{path.parent}'), got {base_name!r}."
            )
        path = path.parent / base_name
        if path.resolve() in seen:
            chain = " -> ".join(str(p) for p in [*seen, path.resolve()])
            raise ValueError(f"'{BASE_KEY}' files form a loop: {chain}.")
        tree = _load_tree(path)
    _check_known_keys(merged, tree, path)
    stream = io.StringIO()
    if merged:
        _round_trip_yaml().dump(dict(merged), stream)
    return path, stream.getvalue()


def load_layered_hparams(path: PathLike, overrides: Overrides = None) -> dict[str, Any]:
    r"""Load a (possibly layered) HyperPyYAML file with command-line overrides.

    See :func:`resolve_layered_hparams` for the layering rules. The base file
    is opened by name, so ``!include`` and relative paths in it keep working.

    Arguments
    ---------
    path : str or os.PathLike
        The file given on the command line, e.g. ``hparams/en_de.yaml``.
    overrides : str or mapping, optional
        Command-line overrides (YAML string from ``speechbrain.parse_arguments``
        or a mapping); they beat the layered files.

    Returns
    -------
    dict
        The loaded hyperparameters (objects constructed, references resolved).

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "common.yaml").write_text(
    ...     "source_lang: null\ntarget_lang: null\n"
    ...     "pair: !ref <source_lang>_<target_lang>\n")
    >>> _ = (folder / "en_de.yaml").write_text(
    ...     "base_hparams: common.yaml\nsource_lang: en\ntarget_lang: de\n")
    >>> load_layered_hparams(folder / "en_de.yaml")["pair"]
    'en_de'
    >>> load_layered_hparams(folder / "en_de.yaml", {"target_lang": "fr"})["pair"]
    'en_fr'
    """
    base_path, merged = resolve_layered_hparams(path, overrides)
    with open(base_path, encoding="utf-8") as stream:
        return load_hyperpyyaml(stream, merged)
