"""Run identity: the settings that define a run, stored with it and checked.

A run folder (``output_folder``) holds one experiment. Its identity is every
resolved hyperparameter (the YAML file with its ``!ref`` resolved and the
command-line overrides applied) and every
SpeechBrain run option, *minus* an explicit list of keys that cannot change
the results: where files go (:data:`PATH_KEYS`), how fast the run goes
(:data:`SPEED_KEYS`, :data:`SPEED_RUN_OPTIONS`) and how the run is driven
(:data:`CONTROL_KEYS`), and the ``modules:`` block, which only refers to other
keys (:data:`DERIVED_KEYS`). A key added to the YAML later is part of the identity
automatically; only a key that cannot change the numbers should be added to
one of these lists. The number of processes (``WORLD_SIZE``) is part of the
identity: under DDP it changes the global batch.

The recipe stores the identity in ``<output_folder>/run_identity.json``
(with the excluded values and the feature-cache key, for the record) and
its short hash in ``results.json`` (``"run_identity"``). When a run starts
in a folder that already holds one made with other settings, it stops with
the keys that differ (old -> new) instead of resuming, or of reporting the
old model's numbers under the new settings; ``--overwrite=True`` moves the
old run aside (:func:`archive_run`) and starts afresh.
``recipes/run_grid.py`` computes the same identity for its "done" check.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ruamel.yaml
import speechbrain as sb
from hyperpyyaml import resolve_references

from zsser_modules.atomic_write import write_json_atomic
from zsser_modules.tuning import tuned_overrides

#: Where the files of a run go: never part of its identity.
PATH_KEYS = (
    "results_root",
    "output_folder",
    "save_folder",
    "train_log",
    "results_file",
    "tsne_file",
    "inference_folder",
    "prep_folder",
    "settings_folder",
    "feature_cache_folder",
    "ssl_folder",  # download cache of the SSL model (its weights: feature-cache key)
    "ssl_encoder.save_path",  # the same download cache
    "whisper_encoder.save_path",  # the same download cache
    "adapted_ssl_encoder.save_path",  # the same download cache
    "adapted_whisper_encoder.save_path",  # the same download cache
    "ssl_local_dirs",  # local folders of hub ids (like ssl_folder)
    "checkpointer",  # a checkpoint folder and the objects it saves
    "train_logger",  # a log file
    # Where the corpora are unpacked: their content is checked by data prep.
    "data_folder",
    "esd_folder",
    "emodb_folder",
    "cafe_folder",
    "urdu_folder",
    "meld_folder",
    # A tuned-weights file (recipes/tune.py): its values for the run's target
    # are applied as overrides below, so the identity holds the values.
    "tuned_weights",
)
#: Settings of speed and resources that do not change the numbers.
SPEED_KEYS = (
    "num_workers",
    "train_dataloader_options.num_workers",
    "test_dataloader_options.num_workers",
    "torch_num_threads",
    "feature_cache_batch_size",  # pooling is padding-exact
    "use_feature_cache",  # cached features are the live encoder's output
)
#: How the run is driven, not what it computes.
CONTROL_KEYS = (
    "overwrite",
    "skip_prep",
    "tsne_per_language",  # only the t-SNE figure
    "table1_check",  # stops a run or lets it go; never changes its numbers
)
#: Option groups: each hands the options of one consumer of recipes/train.py
#: to it (``run.prepare_data(hparams["data_options"])``), as SpeechBrain's
#: ``dataloader_options``; their entries are only ``!ref <key>`` of top-level
#: keys, which are part of the identity themselves.
OPTION_GROUPS = (
    "data_options",
    "train_sampler_options",
    "selection_options",
    "aux_loss_weights",
    "feature_options",
    "output_options",
    "encoder_options",
)
#: Keys that only restate other keys: the ``modules:`` block holds references
#: to the modules' constructors, and the option groups to options.
DERIVED_KEYS = ("modules",) + OPTION_GROUPS
#: SpeechBrain run options that do not change the numbers (the others,
#: e.g. precision, grad_accumulation_factor, max_grad_norm, are identity).
SPEED_RUN_OPTIONS = (
    "test_only",
    "device",
    "data_parallel_backend",
    "data_parallel_count",
    "distributed_backend",
    "distributed_launch",
    "find_unused_parameters",
    "jit",
    "jit_module_keys",
    "compile",
    "compile_module_keys",
    "compile_mode",
    "compile_using_fullgraph",
    "compile_using_dynamic_shape_tracing",
    "noprogressbar",
    "ckpt_interval_minutes",
    "ckpt_interval_steps",
    "tqdm_colored_bar",
    "tqdm_barcolor",
    "profile_training",
    "profile_warmup",
    "profile_steps",
    "log_config",
    "param_file",
    "overridden_args",
    "debug_persistently",
)
#: Keys added after runs were made, with the value that reproduces those runs
#: bit for bit: a key holding it is left out of the identity, so the older
#: runs keep theirs (neither retrained nor refused); any other value is part
#: of the identity as usual.
NEUTRAL_DEFAULTS = {
    "speaker_norm": "none",
    # read only by speaker_norm: per_speaker_enrolment (added with it)
    "speaker_norm_enrolment": 5,
    "encoder_adaptation": "none",  # the frozen / fine-tuned encoder, as before
}
#: Keys read only when another key is not at its neutral default (above):
#: left out of the identity while it is, so adding them changes no older run.
NEUTRAL_WHEN = {
    "encoder_adaptation": (
        "adapter_gate",
        "lora_rank",
        "lora_alpha",
        "lora_targets",
        "adapter_size",
        "adapter_targets",
        "lr_adapters",
        "adapted_ssl_encoder",
        "adapted_whisper_encoder",
    ),
}
#: Every excluded dotted key of the hyperparameters.
EXCLUDED_KEYS = PATH_KEYS + SPEED_KEYS + CONTROL_KEYS + DERIVED_KEYS
#: File of the identity in the run folder.
IDENTITY_FILE = "run_identity.json"
#: Key of the identity hash in results.json.
RESULTS_KEY = "run_identity"
#: Length of the short hash.
HASH_CHARS = 12


def option_groups(hparams_file: str | os.PathLike) -> dict[str, list[str]]:
    """The file's derived groups (:data:`DERIVED_KEYS`): ``{group: [its keys]}``.

    Each entry of a group is ``!ref <key>`` of a top-level key; the list
    holds those keys. A group of the file with any other entry raises
    ValueError (one line): it would not be a mere restatement.
    """
    from zsser_modules.hparams import read_raw_hparams

    groups = {}
    for name, value in read_raw_hparams(hparams_file).items():
        if name not in DERIVED_KEYS:
            continue
        entries = dict(value) if isinstance(value, Mapping) else {}
        refs = [
            str(v.value).strip("<>")
            for v in entries.values()
            if getattr(getattr(v, "tag", None), "value", None) == "!ref"
        ]
        if not entries or len(refs) != len(entries):
            raise ValueError(
                f"{hparams_file}: '{name}' must be a mapping of '!ref <key>' "
                "entries only (it restates other keys); put any value of its own "
                "in a top-level key and refer to it."
            )
        groups[str(name)] = refs
    return groups


class RunIdentityError(RuntimeError):
    """A run folder holds a run with other settings (the message says what to do)."""


def _plain(node: Any) -> Any:
    """A ruamel tree as JSON-able Python: tags kept as ``{"!tag": ...}``."""
    tag = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(node, Mapping):
        value: Any = {str(k): _plain(v) for k, v in node.items()}
    elif isinstance(node, (list, tuple)):
        value = [_plain(v) for v in node]
    elif isinstance(node, bool) or node is None:
        value = node
    elif isinstance(node, int):
        value = int(node)
    elif isinstance(node, float):
        value = float(node)
    else:
        value = str(getattr(node, "value", node))
    if tag and tag.startswith("!"):
        if isinstance(value, dict):
            return {"!tag": tag, **value}
        return {"!tag": tag, "args": value}
    return value


def flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"a.b": leaf}`` (lists and scalars are leaves).

    Example
    -------
    >>> flatten({"a": 1, "b": {"c": [1, 2], "d": {"e": None}}})
    {'a': 1, 'b.c': [1, 2], 'b.d.e': None}
    """
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def _drop(tree: dict, dotted: str) -> Any:
    """Remove ``a.b.c`` from a nested dict (tags skipped); return its value."""
    *parents, last = dotted.split(".")
    node = tree
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    return node.pop(last, None) if isinstance(node, dict) else None


def short_hash(settings: Mapping) -> str:
    """A short, stable hash of JSON-able settings.

    Example
    -------
    >>> short_hash({"b": 1, "a": [1, 2]}) == short_hash({"a": [1, 2], "b": 1})
    True
    >>> len(short_hash({}))
    12
    """
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


class RunIdentity:
    """The settings that define a run, and the ones recorded but not compared.

    Arguments
    ---------
    settings : dict
        The identity: resolved hyperparameters and run options (nested).
    excluded : dict
        The excluded keys' values (``{dotted key: value}``), for the record.

    Example
    -------
    >>> a = RunIdentity({"lr": 0.1, "seed": 1}, {})
    >>> b = RunIdentity({"lr": 0.2, "seed": 1}, {})
    >>> a.differences(b)
    [('lr', 0.1, 0.2)]
    >>> a.hash == RunIdentity({"seed": 1, "lr": 0.1}, {"output_folder": "x"}).hash
    True
    """

    def __init__(self, settings: dict, excluded: dict | None = None):
        self.settings = settings
        self.excluded = excluded or {}

    @property
    def hash(self) -> str:
        """Short hash of :attr:`settings`."""
        return short_hash(self.settings)

    @classmethod
    def from_hparams(
        cls,
        hparams_file: str | os.PathLike,
        overrides: Any = None,
        run_opts: Mapping | None = None,
        world_size: int | None = None,
    ) -> RunIdentity:
        """Identity of a run of ``hparams_file`` with ``overrides``.

        Arguments
        ---------
        hparams_file : path
            The YAML file given to the recipe, e.g. ``hparams/en_de.yaml``.
        overrides : str or mapping, optional
            Command-line overrides (YAML text as given by ``sb.parse_arguments``).
        run_opts : mapping, optional
            SpeechBrain run options (``sb.parse_arguments``); missing ones
            take SpeechBrain's defaults.
        world_size : int, optional
            Number of processes (default: ``$WORLD_SIZE`` or 1).

        Returns
        -------
        RunIdentity
        """
        merged = tuned_overrides(hparams_file, overrides)  # --tuned_weights=<file>
        with open(hparams_file, encoding="utf-8") as fin:
            resolved = resolve_references(fin, merged or {}).getvalue()
        tree = _plain(ruamel.yaml.YAML().load(resolved) or {})
        excluded = {}
        for key in EXCLUDED_KEYS:
            value = _drop(tree, key)
            if value is not None:
                excluded[key] = value
        for key, neutral in NEUTRAL_DEFAULTS.items():
            if key in tree and tree[key] == neutral:
                del tree[key]
                for dependent in NEUTRAL_WHEN.get(key, ()):
                    tree.pop(dependent, None)
        options = dict(sb.core.RunOptions().as_dict())
        options.update(dict(run_opts or {}))
        for key in SPEED_RUN_OPTIONS:
            if key in options:
                excluded[f"run_opts.{key}"] = _plain(options.pop(key))
        options = {key: _plain(value) for key, value in options.items()}
        if world_size is None:
            world_size = int(os.environ.get("WORLD_SIZE", 1))
        options["world_size"] = int(world_size)
        tree["run_opts"] = options
        return cls(tree, json.loads(json.dumps(excluded, default=str)))

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> RunIdentity:
        """Identity of ``recipes/train.py ARGV`` (hparams file, then options).

        Example
        -------
        >>> hp = str(Path(__file__).resolve().parents[1] / "hparams" / "demo.yaml")
        >>> a = RunIdentity.from_argv([hp, "--output_folder=/tmp/a", "--num_workers=2"])
        >>> b = RunIdentity.from_argv([hp, "--output_folder=/tmp/b"])
        >>> c = RunIdentity.from_argv([hp, "--supcon_weight=0.6"])
        >>> a.hash == b.hash, a.hash == c.hash
        (True, False)
        >>> b.differences(c)
        [('supcon_weight', 1.0, 0.6)]
        """
        hparams_file, run_opts, overrides = sb.parse_arguments(list(argv))
        return cls.from_hparams(hparams_file, overrides, run_opts)

    def differences(self, other: RunIdentity) -> list[tuple[str, Any, Any]]:
        """``(dotted key, self's value, other's value)`` for every differing key."""
        mine, theirs = flatten(self.settings), flatten(other.settings)
        missing = "<absent>"
        return [
            (key, mine.get(key, missing), theirs.get(key, missing))
            for key in sorted(set(mine) | set(theirs))
            if mine.get(key, missing) != theirs.get(key, missing)
        ]

    def to_json(self, **extra: Any) -> dict:
        """The content of ``run_identity.json``."""
        return {
            "hash": self.hash,
            "settings": self.settings,
            "excluded": self.excluded,
            **extra,
        }

    @classmethod
    def load(cls, path: str | os.PathLike) -> tuple[RunIdentity, dict]:
        """Read a ``run_identity.json``; return the identity and the whole file."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(data["settings"], data.get("excluded")), data


def describe_differences(diffs: Sequence[tuple[str, Any, Any]], limit: int = 20) -> str:
    """``key: old -> new`` lines (at most ``limit``, then a count).

    Example
    -------
    >>> print(describe_differences([("lr", 0.1, 0.2), ("seed", 1, 2)]))
      lr: 0.1 -> 0.2
      seed: 1 -> 2
    """
    lines = [
        f"  {key}: {json.dumps(old)} -> {json.dumps(new)}"
        for key, old, new in diffs[:limit]
    ]
    if len(diffs) > limit:
        lines.append(f"  ... and {len(diffs) - limit} more")
    return "\n".join(lines)


def archive_run(folder: str | os.PathLike) -> Path:
    """Move a run folder aside to ``<folder>.replaced-<time>``; return the new path.

    Example
    -------
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp()) / "run"
    >>> run.mkdir()
    >>> archive_run(run).name.startswith("run.replaced-"), run.exists()
    (True, False)
    """
    folder = Path(folder)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder.with_name(f"{folder.name}.replaced-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = folder.with_name(f"{folder.name}.replaced-{stamp}-{n}")
    os.replace(folder, target)
    return target


def _holds_a_run(folder: Path) -> bool:
    """Whether a folder holds results or checkpoints of a run."""
    return (folder / "results.json").exists() or any((folder / "save").glob("CKPT+*"))


def check_run_folder(
    folder: str | os.PathLike,
    identity: RunIdentity,
    overwrite: bool = False,
    write: bool = True,
) -> str:
    """Accept, refuse or archive the run already in ``folder``; record ``identity``.

    Arguments
    ---------
    folder : path
        The run's ``output_folder``.
    identity : RunIdentity
        The identity of the run about to start.
    overwrite : bool
        Move a run with other settings aside (:func:`archive_run`) instead of
        refusing.
    write : bool
        Write ``run_identity.json`` (the main process); other processes only
        check.

    Returns
    -------
    str
        ``"new"`` (nothing there, or only the identity of an attempt that
        stopped before its first checkpoint: replaced), ``"same"`` (the same
        run: resume or report it), or ``"archived:<path>"``. With
        ``overwrite``, a *finished* run (``results.json``) with the same
        settings is archived too (trained afresh); an unfinished one with
        the same settings is resumed.

    Raises
    ------
    RunIdentityError
        The folder holds a run with other settings (or a run without
        ``run_identity.json``) and ``overwrite`` is False.

    Example
    -------
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp()) / "run"
    >>> check_run_folder(run, RunIdentity({"lr": 0.1}))
    'new'
    >>> check_run_folder(run, RunIdentity({"lr": 0.1}))
    'same'
    >>> (run / "results.json").write_text("{}")  # the run finished
    2
    >>> check_run_folder(run, RunIdentity({"lr": 0.2}))
    Traceback (most recent call last):
    ...
    zsser_modules.run_identity.RunIdentityError: ...
      lr: 0.1 -> 0.2
    ...
    >>> check_run_folder(run, RunIdentity({"lr": 0.2}), overwrite=True)[:9]
    'archived:'
    """
    folder = Path(folder)
    path = folder / IDENTITY_FILE
    state = "new"
    finished = (folder / "results.json").exists()
    if path.is_file():
        old, _ = RunIdentity.load(path)
        diffs = old.differences(identity)
        if not diffs and not (overwrite and finished):
            return "same"
        if diffs and not _holds_a_run(folder):
            # An attempt with other settings that stopped before its first
            # checkpoint (e.g. a data preparation error): nothing of it can
            # be resumed, so its identity is replaced rather than blocking
            # the corrected command.
            problem = None
        elif diffs:
            problem = (
                f"{folder} holds a run made with other settings (run identity "
                f"{old.hash}, this command {identity.hash}); they differ in:\n"
                f"{describe_differences(diffs)}\n"
            )
        else:  # --overwrite=True on a finished run with the same settings
            problem = f"{folder} holds this run, finished.\n"
    elif _holds_a_run(folder):
        problem = (
            f"{folder} holds results or checkpoints but no {IDENTITY_FILE} (a run "
            "made before run identities were recorded, or by another tool): its "
            "settings cannot be checked.\n"
        )
    else:
        problem = None
    if problem is not None:
        if not overwrite:
            raise RunIdentityError(
                problem + "Nothing was changed. Use another --output_folder for "
                "these settings, run the old command again to resume or report "
                "that run, or add --overwrite=True to move the old run aside to "
                f"{folder.name}.replaced-<time> and start afresh."
            )
        if write:
            state = f"archived:{archive_run(folder)}"
    if write:
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, identity.to_json())
    return state


def record_feature_cache_key(
    folder: str | os.PathLike, key: str | None, write: bool = True
) -> None:
    """Store the feature-cache key in ``run_identity.json``; refuse a changed one.

    The key hashes a frozen encoder's weights and settings: under unchanged
    hyperparameters it still changes when, e.g., the local folder named by
    ``ssl_source`` holds other weights. With ``write=False`` (processes
    other than the main one) it only checks. A folder without
    ``run_identity.json`` is not a run folder: nothing is done.

    Example
    -------
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> _ = check_run_folder(run, RunIdentity({"lr": 0.1}))
    >>> record_feature_cache_key(run, "abc")
    >>> record_feature_cache_key(run, "abc")
    >>> record_feature_cache_key(run, "def")
    Traceback (most recent call last):
    ...
    zsser_modules.run_identity.RunIdentityError: ...
    """
    path = Path(folder) / IDENTITY_FILE
    if not path.is_file():  # not a run folder (e.g. a benchmark): nothing to record
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    old = data.get("feature_cache_key")
    key = json.loads(json.dumps(key, sort_keys=True, default=str))  # as stored
    if old is not None and old != key:
        raise RunIdentityError(
            f"{folder} holds a run whose frozen encoder had feature-cache key "
            f"{old}; the encoder now gives {key} (same settings, other weights or "
            "encoder code). Use another --output_folder, or add --overwrite=True "
            "to move the old run aside."
        )
    if old != key and write:
        data["feature_cache_key"] = key
        write_json_atomic(path, data)
