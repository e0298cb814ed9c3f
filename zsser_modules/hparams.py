"""Reading a hyperparameter file without building it: raw values, known keys.

Every file of ``hparams/`` is a standalone HyperPyYAML file (generated from
``hparams/template/`` by ``recipes/generate_hparams.py``) and is loaded with
plain ``hyperpyyaml.load_hyperpyyaml``. Two helpers read such a file as text,
without building any object or resolving any reference:

* :func:`read_raw_hparams`: its top-level mapping, tags (``!ref`` ...) kept,
  e.g. to read a key's value as written (``zsser_modules/grid_dedupe.py``);
* :func:`check_overrides`: refuse command-line overrides of keys the file
  does not define, with the close matches (HyperPyYAML refuses them too, but
  with a traceback listing every key).

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any, Union

import ruamel.yaml

PathLike = Union[str, "os.PathLike[str]"]


def _load_yaml_text(text: str, where: str) -> Any:
    """Parse YAML text with HyperPyYAML's tags kept (ruamel round trip)."""
    try:
        return ruamel.yaml.YAML().load(text)
    except ruamel.yaml.YAMLError as error:
        detail = str(error).replace("\n", " ")
        raise ValueError(f"{where} is not valid YAML: {detail}") from None


def read_raw_hparams(path: PathLike) -> dict[str, Any]:
    """The top-level keys of a hyperparameter file, as written.

    Nothing is built and no reference is resolved: a value is what the file
    says (``!ref <results_root>/data`` stays a tagged string). Nested
    mappings and lists are ruamel's (they behave as dict and list).

    Arguments
    ---------
    path : str or os.PathLike
        A HyperPyYAML file, e.g. ``hparams/en_de.yaml``.

    Returns
    -------
    dict
        ``{key: raw value}`` in file order.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not YAML, or not a mapping at its top level.

    Example
    -------
    >>> from pathlib import Path
    >>> en_de = Path(__file__).resolve().parents[1] / "hparams" / "en_de.yaml"
    >>> raw = read_raw_hparams(en_de)
    >>> raw["source_lang"], list(raw["languages"]), str(raw["prep_folder"].value)
    ('en', ['en', 'zh', 'de', 'fr', 'ur'], '<results_root>/data')
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Hyperparameter file not found: '{path}'.")
    with open(path, encoding="utf-8") as stream:
        tree = _load_yaml_text(stream.read(), f"'{path}'")
    if tree is None:
        return {}
    if not isinstance(tree, Mapping):
        raise ValueError(
            f"'{path}' must hold a YAML mapping of hyperparameters at its top level."
        )
    return dict(tree)


def check_overrides(path: PathLike, overrides: str | Mapping | None = None) -> None:
    r"""Refuse overrides of top-level keys that the file does not define.

    Arguments
    ---------
    path : str or os.PathLike
        The hyperparameter file.
    overrides : str or mapping, optional
        Command-line overrides: YAML text as given by
        ``speechbrain.parse_arguments``, or a mapping.

    Raises
    ------
    ValueError
        With every unknown key and its close matches.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "h.yaml")
    >>> _ = open(path, "w").write("seed: 1\nlr: 0.1\n")
    >>> check_overrides(path, "seed: 3\n")
    >>> check_overrides(path, {"sed": 3})
    Traceback (most recent call last):
    ...
    ValueError: Unknown hyperparameter(s) ['sed'] ... 'sed' did you mean 'seed'? ...
    """
    if isinstance(overrides, str):
        overrides = _load_yaml_text(overrides, "The overrides") if overrides else None
    if not overrides:
        return
    if not isinstance(overrides, Mapping):
        raise ValueError(
            f"Overrides must be a mapping such as 'seed: 3', got {overrides!r}."
        )
    known = read_raw_hparams(path)
    unknown = [str(key) for key in overrides if key not in known]
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, [str(k) for k in known], n=3)
        hint = f" did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        hints.append(f"{key!r}{hint}")
    raise ValueError(
        f"Unknown hyperparameter(s) {unknown} (not keys of '{path}'): "
        + "; ".join(hints)
        + " Fix the name, or add the key to the file (for hparams/: to "
        "hparams/template/common.yaml, then run recipes/generate_hparams.py)."
    )
