"""Tuned loss weights: the file ``recipes/tune.py`` writes and the recipe reads.

``recipes/tune.py`` tunes the loss weights of a setting by leave-one-language-
out over its training languages (docs/recipe.md, "Zero-shot-safe tuning"):
the target language is never used. It writes one entry per target language
into a YAML file (several targets can share one file)::

    de:                          # target_lang of the runs that use this entry
      values: {supcon_weight: 0.41, adv_weight: 0.07, temperature: 0.12,
               cross_lingual_weight: 2.5}
      pool: [en, fr, ur, zh]     # the training languages it was tuned on
      objective: {...}           # mean held-out UAR, per fold, ...
      study: {...}               # how it was tuned (sampler, seed, budget, ...)

``recipes/train.py ... --tuned_weights=<file>`` takes the entry of its
``target_lang``: its ``values`` become command-line overrides (an explicit
command-line value of the same key that differs is refused), before the
hyperparameters are loaded and before the run identity is computed, so the
identity holds the values themselves (the file's path is not part of it).
``results.json`` records the file, its content hash and the whole entry.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import ruamel.yaml
import yaml

PathLike = Union[str, "os.PathLike[str]"]

#: Hyperparameters the tuner searches, with their search ranges
#: ``(low, high, log scale)`` and the loss term that uses each (the tuner
#: searches only the keys of the terms its variant trains).
TUNABLE: dict[str, dict[str, Any]] = {
    "supcon_weight": {"low": 0.03, "high": 1.0, "log": True, "term": "supcon"},
    "adv_weight": {"low": 0.01, "high": 1.0, "log": True, "term": "spk_adv"},
    "temperature": {"low": 0.05, "high": 0.5, "log": True, "term": "supcon"},
    "cross_lingual_weight": {"low": 1.0, "high": 4.0, "log": False, "term": "supcon"},
    # Encoder adaptation (issue 21; ours): tuned when encoder_adaptation is
    # not none, the rank with LoRA, the bottleneck width with adapters.
    "lr_adapters": {"low": 1e-5, "high": 3e-3, "log": True, "term": "adaptation"},
    "lora_rank": {"low": 2, "high": 32, "log": True, "term": "lora", "int": True},
    "adapter_size": {
        "low": 16,
        "high": 256,
        "log": True,
        "term": "adapter",
        "int": True,
    },
}
#: Settings of the study that a run taking its weights must share (an
#: entry tuned on filterbank statistics does not serve Whisper features).
MATCHED_KEYS: tuple[str, ...] = (
    "encoder",
    "ssl_source",
    "speaker_norm",
    "encoder_adaptation",
)


def tuned_value(key: str, value: Any) -> float | int:
    """A tuned value as the recipe takes it: an int for integer keys, else a float.

    Example
    -------
    >>> tuned_value("lora_rank", 7.6), tuned_value("supcon_weight", 1)
    (8, 1.0)
    """
    return int(round(float(value))) if TUNABLE[key].get("int") else float(value)


def adaptation_terms(tree: dict[str, Any]) -> tuple[str, ...]:
    """The adaptation "terms" a run trains (keys of :data:`TUNABLE` they unlock).

    Example
    -------
    >>> adaptation_terms({"encoder": "ssl", "encoder_adaptation": "lora+adapter"})
    ('adaptation', 'lora', 'adapter')
    >>> adaptation_terms({"encoder": "fbank_stats", "encoder_adaptation": "lora"})
    ()
    """
    kind = tree.get("encoder_adaptation", "none")
    if tree.get("encoder") not in ("ssl", "whisper") or kind in (None, "none"):
        return ()
    return ("adaptation", *[part for part in ("lora", "adapter") if part in kind])


#: The hyperparameter naming the file.
KEY = "tuned_weights"


class TunedWeightsError(ValueError):
    """A tuned-weights file that cannot be used (one line says why)."""


def file_hash(path: PathLike) -> str:
    """SHA-256 of a file's bytes (hex)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_tuned_file(path: PathLike) -> dict[str, Any]:
    """Read and check a tuned-weights file: ``{target: entry}``.

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "tuned.yaml"
    >>> write_entry(path, "de", {"supcon_weight": 0.5}, pool=["en", "zh"])
    >>> read_tuned_file(path)["de"]["values"]
    {'supcon_weight': 0.5}
    >>> _ = path.write_text("de: {values: {lr: 1.0}, pool: [en]}")
    >>> read_tuned_file(path)
    Traceback (most recent call last):
    ...
    zsser_modules.tuning.TunedWeightsError: ...: entry 'de' sets ['lr'], which recipes/tune.py does not tune (expected keys among [...]).
    """  # noqa: E501
    path = Path(path)
    if not path.is_file():
        raise TunedWeightsError(
            f"tuned_weights: no such file '{path}'. Expected the YAML written by "
            "recipes/tune.py (--tuned-file)."
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise TunedWeightsError(
            f"tuned_weights: '{path}' is not valid YAML ({' '.join(str(err).split())})."
        ) from None
    if not isinstance(data, dict) or not data:
        raise TunedWeightsError(
            f"tuned_weights: '{path}' must map target languages to entries "
            "(written by recipes/tune.py), got "
            f"{type(data).__name__ if data else 'nothing'}."
        )
    for target, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("values"), dict):
            raise TunedWeightsError(
                f"tuned_weights: '{path}': entry {target!r} has no 'values' mapping."
            )
        unknown = sorted(set(entry["values"]) - set(TUNABLE))
        if unknown:
            raise TunedWeightsError(
                f"tuned_weights: '{path}': entry {target!r} sets {unknown}, which "
                "recipes/tune.py does not tune (expected keys among "
                f"{sorted(TUNABLE)})."
            )
        pool = entry.get("pool")
        if not isinstance(pool, list) or target in pool:
            raise TunedWeightsError(
                f"tuned_weights: '{path}': entry {target!r} must record the training "
                f"pool it was tuned on, without {target!r} itself; got pool={pool!r}."
            )
    return data


def write_entry(
    path: PathLike,
    target: str,
    values: Mapping[str, float],
    pool: list[str],
    **record: Any,
) -> None:
    """Write (or replace) the entry of ``target`` in a tuned-weights file.

    The file is updated under a file lock and replaced atomically, so tuning
    commands of several targets can share it.

    Arguments
    ---------
    path : path-like
        The tuned-weights file (created with its folder if missing).
    target : str
        The target language the entry is for.
    values : mapping
        Hyperparameter -> tuned value (keys of ``TUNABLE``).
    pool : list of str
        The training languages tuned on (``target`` must not be one).
    **record : dict
        Further plain facts stored in the entry (``objective``, ``study``).
    """
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "values": {k: tuned_value(k, v) for k, v in values.items()},
        "pool": list(pool),
    }
    entry.update(json.loads(json.dumps(record, default=str)))
    with FileLock(str(path) + ".lock"):
        data = (
            yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
        )
        data = dict(data or {})
        data[target] = entry
        header = (
            "# Loss weights tuned by recipes/tune.py: leave-one-language-out over\n"
            "# each target's training pool, the target never used. A run of\n"
            "# recipes/train.py with --tuned_weights=<this file> takes the entry\n"
            "# of its target_lang (docs/recipe.md, Zero-shot-safe tuning).\n"
        )
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(
            header + yaml.safe_dump(data, sort_keys=False, width=88), encoding="utf-8"
        )
        os.replace(tmp, path)
    read_tuned_file(path)  # what was written is usable


def _resolved_tree(hparams_file: PathLike, overrides: str) -> dict:
    """The hyperparameters with ``!ref`` resolved, no object built."""
    from hyperpyyaml import resolve_references

    with open(hparams_file, encoding="utf-8") as fin:
        text = resolve_references(fin, overrides).getvalue()
    return yaml.load(text, Loader=_TagIgnoringLoader) or {}


class _TagIgnoringLoader(yaml.SafeLoader):
    """A YAML loader that reads HyperPyYAML tags (``!new:``...) as plain nodes."""


def _ignore_tag(loader, suffix, node):  # noqa: ANN001
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


_TagIgnoringLoader.add_multi_constructor("!", _ignore_tag)


def tuned_overrides(hparams_file: PathLike, overrides: str | None) -> str | None:
    """Add the tuned values of the run's target to its overrides, if asked.

    With ``tuned_weights: null`` (the default) ``overrides`` is returned as
    is. Otherwise the entry of the run's ``target_lang`` is read and its
    values are added to the overrides. Called by ``recipes/train.py`` before
    loading the hyperparameters and by ``RunIdentity.from_hparams``, so the
    run and its identity see the same values.

    Arguments
    ---------
    hparams_file : path-like
        The base hyperparameter file (after any layering).
    overrides : str or None
        The overrides as a YAML string.

    Returns
    -------
    str or None
        The overrides with the tuned values.

    Raises
    ------
    TunedWeightsError
        Missing file or entry, or a command-line value that contradicts it.
    """
    tree = _resolved_tree(hparams_file, overrides or "")
    path = tree.get(KEY)
    if not path:
        return overrides
    target = tree.get("target_lang")
    data = read_tuned_file(path)
    if target not in data:
        raise TunedWeightsError(
            f"tuned_weights: '{path}' has no entry for target_lang={target!r} (it has "
            f"{sorted(data)}). Tune it first: python recipes/tune.py <hparams> "
            f"--target {target} --tuned-file {path}."
        )
    values = data[target]["values"]
    tuned_on = (data[target].get("study") or {}).get("setting") or {}
    differ = {
        key: (value, tree.get(key))
        for key, value in tuned_on.items()
        if key in MATCHED_KEYS and value != tree.get(key)
    }
    if differ:
        raise TunedWeightsError(
            f"tuned_weights: the entry {target!r} of '{path}' was tuned with "
            + ", ".join(f"{k}={v[0]!r}" for k, v in differ.items())
            + " but this run has "
            + ", ".join(f"{k}={v[1]!r}" for k, v in differ.items())
            + ": tune this setting into another file (recipes/tune.py --tuned-file)."
        )
    mapping = ruamel.yaml.YAML().load(overrides or "") or {}
    clashes = {
        key: (mapping[key], value)
        for key, value in values.items()
        if key in mapping and float(mapping[key]) != float(value)
    }
    if clashes:
        raise TunedWeightsError(
            f"tuned_weights: the command line sets {sorted(clashes)} to "
            f"{[clashes[k][0] for k in sorted(clashes)]} but '{path}' sets "
            f"{[clashes[k][1] for k in sorted(clashes)]} for target {target!r}: "
            "drop one of them."
        )
    for key, value in values.items():
        mapping[key] = tuned_value(key, value)
    stream = io.StringIO()
    ruamel.yaml.YAML().dump(mapping, stream)
    return stream.getvalue()


def tuned_record(path: PathLike | None, target: str) -> dict[str, Any] | None:
    """What ``results.json`` records of the tuned weights (None without them).

    Returns ``{"file": absolute path, "sha256": of the file, "target": ...,
    **the entry}`` (values, pool, objective, study).
    """
    if not path:
        return None
    data = read_tuned_file(path)
    return {
        "file": str(Path(path).resolve()),
        "sha256": file_hash(path),
        "target": target,
        **data[target],
    }
