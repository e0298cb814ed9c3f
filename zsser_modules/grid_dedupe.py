"""Identical experiments of a grid: found before running, trained once, copied.

Every variant but baseline1 trains on all the pool's languages except the
target, so the source does not change it: ``en_de`` and ``zh_de`` of such a
variant, with the same hyperparameters (apart from ``source_lang``),
overrides and seed, are one experiment. ``recipes/run_grid.py`` trains the
first of them and gives the others its results:

* :func:`experiment_identity` and :func:`find_repeats`: which planned runs
  repeat an earlier one (from the raw files, before anything runs);
* :func:`write_repeated_result` and :func:`repeat_run`: a repeat's
  ``results.json`` written from its original (``"same_experiment_as"``);
* :func:`is_copied` and :func:`stale_copy`: whether a finished run's results
  were copied, and whether its original has changed since;
* :func:`raw_hparams`, :func:`hparam_value` and :func:`override_value`: a
  key's value as the file and the pass-through overrides write it.

Why not :class:`zsser_modules.run_identity.RunIdentity`? The two answer
different questions. ``RunIdentity`` is a run's own resolved identity (the
``!ref`` resolved, SpeechBrain's run options added, paths and speed settings
left out): "was this folder made with these settings?". The experiment
identity compares *two different runs* before either exists. Resolved, every
value derived from ``source_lang`` (an ``!ref`` to it in a folder name or a
setting) differs between ``en_de`` and ``zh_de`` and would have to be found
and dropped one by one; raw, only ``source_lang`` itself differs, and it is
dropped. It also keeps what ``RunIdentity`` leaves out (the overrides as
given, e.g. ``--device``), so two runs share results only when the grid
would have run them with the same file text and the same arguments; and it
needs neither SpeechBrain nor the resolution of every file. Sharing on the
resolved identity would change which runs count as identical.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path  # noqa: F401 (doctests)
from typing import Any

from ruamel.yaml import YAML

from zsser_modules.atomic_write import write_json_atomic
from zsser_modules.data_prep.zero_shot import SOURCE_ONLY_VARIANTS
from zsser_modules.grid_engine import COMMAND_NAME, Outcome, Run, run_state
from zsser_modules.grid_plan import hparams_file, plan_runs  # noqa: F401 (doctests)
from zsser_modules.hparams import read_raw_hparams
from zsser_modules.predictions import copy_predictions
from zsser_modules.results_table import (
    SAME_AS_KEY,
    InvalidResultError,
    load_result,
)
from zsser_modules.run_identity import RESULTS_KEY as IDENTITY_KEY

#: Round-trip YAML (keeps HyperPyYAML tags such as !ref) for the identities.
_YAML = YAML()


# ---- Finding identical experiments ----------------------------------------------


def experiment_identity(run: Run, hparams: str, overrides: Sequence[str] = ()) -> tuple:
    """What a run's results depend on: two runs with one identity are one experiment.

    For a variant of :data:`zsser_modules.data_prep.zero_shot.SOURCE_ONLY_VARIANTS`
    (baseline1) the identity is the run itself. For the others it is the
    target, variant and seed, every raw hyperparameter (:func:`raw_hparams`)
    but ``source_lang`` and the pass-through overrides: the source
    only has to be in the language pool (``languages``), which is one of
    those values. A run whose source is not in its pool (the recipe refuses
    it), or whose pool cannot be read as a list, keeps its own identity.

    Arguments
    ---------
    run : Run
        The run.
    hparams : str
        Hyperparameter file or pattern (see :func:`hparams_file`).
    overrides : sequence of str
        Pass-through arguments of the grid.

    Returns
    -------
    tuple
        Hashable; equal for runs that are the same experiment. A file that
        cannot be read gives the run's own identity (no sharing).

    Example
    -------
    >>> hp = str(Path(__file__).resolve().parents[1] / "hparams" / "{pair}.yaml")
    >>> def identity(s, t, v): return experiment_identity(Run(s, t, v, 1, Path("g")), hp)
    >>> identity("en", "de", "proposed") == identity("zh", "de", "proposed")
    True
    >>> identity("en", "de", "baseline1") == identity("zh", "de", "baseline1")
    False
    >>> identity("en", "de", "proposed") == identity("en", "fr", "proposed")
    False
    """  # noqa: E501
    own = ("run", run.key, str(hparams_file(hparams, run)), tuple(overrides))
    if run.variant in SOURCE_ONLY_VARIANTS:
        return own
    path = hparams_file(hparams, run)
    try:
        tree = raw_hparams(path)
        pool = hparam_value(path, "languages", overrides)
    except Exception:  # unreadable: the run itself will report it
        return own
    if not isinstance(pool, list) or run.source not in pool:
        return own  # the recipe refuses a source outside the pool
    tree.pop("source_lang", None)
    stream = io.StringIO()
    _YAML.dump(tree, stream)
    return (
        "experiment",
        stream.getvalue(),
        tuple(overrides),
        run.target,
        run.variant,
        run.seed,
    )


def find_repeats(
    runs: Sequence[Run],
    hparams: str,
    overrides: Sequence[str] = (),
    exclude: Iterable[str] = (),
) -> dict[str, Run]:
    """Map each run that repeats an earlier run's experiment to that run.

    Arguments
    ---------
    runs : sequence of Run
        The runs, in plan order (the first of an experiment is the one run).
    hparams : str
        Hyperparameter file or pattern.
    overrides : sequence of str
        Pass-through arguments of the grid.
    exclude : iterable of str
        Keys of runs that take no part (e.g. folders holding another run's
        results): they are neither an original nor a repeat.

    Returns
    -------
    dict
        ``run.key -> Run`` whose results it shares (runs of their own are
        not in it).

    Example
    -------
    >>> hp = str(Path(__file__).resolve().parents[1] / "hparams" / "{pair}.yaml")
    >>> runs = plan_runs("g", ["en_de", "zh_de"], ["baseline1", "proposed"], [1])
    >>> {key: run.key for key, run in find_repeats(runs, hp).items()}
    {'zh_de/proposed/seed1': 'en_de/proposed/seed1'}
    """
    first: dict[tuple, Run] = {}
    repeats = {}
    excluded = set(exclude)
    for run in runs:
        if run.key in excluded:
            continue
        identity = experiment_identity(run, hparams, overrides)
        if identity in first:
            repeats[run.key] = first[identity]
        else:
            first[identity] = run
    return repeats


def raw_hparams(path: str | os.PathLike) -> dict:
    """The raw mapping a hyperparameter file gives the recipe (tags kept, unresolved).

    The one place of the grid that knows how hyperparameter files are
    written: a file is standalone HyperPyYAML, so this is the file's own
    mapping (:func:`zsser_modules.hparams.read_raw_hparams`).

    Arguments
    ---------
    path : str or path-like
        A file given to the recipe.

    Returns
    -------
    dict
        A new mapping (the caller may change it).

    Raises
    ------
    ValueError, OSError
        If the file cannot be read as a mapping.

    Example
    -------
    >>> en_de = Path(__file__).resolve().parents[1] / "hparams" / "en_de.yaml"
    >>> tree = raw_hparams(en_de)
    >>> tree["source_lang"], tree["target_lang"], "seed" in tree
    ('en', 'de', True)
    """
    return read_raw_hparams(path)


def hparam_value(path: str | os.PathLike, key: str, overrides: Sequence[str] = ()):
    """A key's raw value for a run: the last override of it, else the file's.

    Arguments
    ---------
    path : str or path-like
        The run's hyperparameter file.
    key : str
        A top-level key.
    overrides : sequence of str
        The recipe arguments after the file (``--key=value`` or
        ``--key value``).

    Returns
    -------
    object
        The value as YAML gives it (None if the key is absent).

    Example
    -------
    >>> en_de = Path(__file__).resolve().parents[1] / "hparams" / "en_de.yaml"
    >>> hparam_value(en_de, "languages")
    ['en', 'zh', 'de', 'fr', 'ur']
    >>> hparam_value(en_de, "languages", ["--languages=[en, de]"])
    ['en', 'de']
    """
    found, value = override_value(key, overrides)
    if found:
        return value
    return raw_hparams(path).get(key)


def override_value(key: str, overrides: Sequence[str]) -> tuple[bool, Any]:
    """The last ``--key=value`` (or ``--key value``) of the overrides, as YAML."""
    found, value = False, None
    for i, token in enumerate(overrides):
        if token.startswith(f"--{key}="):
            found, text = True, token.split("=", 1)[1]
        elif token == f"--{key}" and i + 1 < len(overrides):
            found, text = True, overrides[i + 1]
        else:
            continue
        try:
            value = _YAML.load(text)
        except Exception:
            value = None
    return found, value


# ---- Results taken from an identical experiment -------------------------------


def write_repeated_result(
    run: Run, original: Run, command: Sequence[str] | None = None
) -> dict[str, Any]:
    r"""Write ``run``'s results.json from the identical experiment ``original``.

    The metrics, confusion matrix, setting paths and prediction files
    (``predictions.csv``, :mod:`zsser_modules.predictions`) are the
    original's; the source is the run's own, and :data:`SAME_AS_KEY` names
    the run that was trained (the original, or the run the original itself
    was taken from).
    The original's run identity describes the original's settings (its own
    source), so it is kept as ``same_experiment_run_identity``, not as the
    copy's ``run_identity``.

    Arguments
    ---------
    run : Run
        The run that repeats ``original`` (its folder is created).
    original : Run
        The run of the same experiment; it must have a valid results.json.
    command : sequence of str, optional
        ``run``'s own command line, recorded in its ``grid_command.json`` so
        that a later call with other overrides reports the copy as changed.

    Returns
    -------
    dict
        The run's row of the run table (:func:`load_result`).

    Raises
    ------
    InvalidResultError
        If ``original`` has no valid results.json.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> a = Run("en", "de", "proposed", 1, tmp / "en_de")
    >>> b = Run("zh", "de", "proposed", 1, tmp / "zh_de")
    >>> a.output_folder.mkdir()
    >>> _ = a.results_file.write_text(json.dumps({"source": "en",
    ...     "target": "de", "variant": "proposed", "seed": 1, "uar": 0.5,
    ...     "macro_f1": 0.4, "run_identity": "0123456789ab"}))
    >>> row = write_repeated_result(b, a)
    >>> row["pair"], row["uar"], row["same_as"]
    ('zh_de', 0.5, 'en_de/proposed/seed1')
    >>> copied = json.loads(b.results_file.read_text())
    >>> "run_identity" in copied, copied["same_experiment_run_identity"]
    (False, '0123456789ab')
    >>> _ = (a.output_folder / "predictions.csv").write_text("ID\\n")
    >>> _ = write_repeated_result(b, a)
    >>> (b.output_folder / "predictions.csv").read_text()
    'ID\\n'
    """
    load_result(original.results_file)  # refuse an unusable original
    data = json.loads(original.results_file.read_text(encoding="utf-8"))
    data["source"] = run.source
    if IDENTITY_KEY in data:
        data["same_experiment_run_identity"] = data.pop(IDENTITY_KEY)
    if not data.get(SAME_AS_KEY):  # else: keep the run that was trained
        data[SAME_AS_KEY] = original.key
        data["same_experiment_folder"] = str(original.output_folder)
    run.output_folder.mkdir(parents=True, exist_ok=True)
    # The per-utterance predictions too (the tables' intervals and tests).
    copy_predictions(original.output_folder, run.output_folder)
    record = {
        SAME_AS_KEY: data[SAME_AS_KEY],
        "command": list(command) if command else [],
        "written": datetime.now().isoformat(timespec="seconds"),
    }
    write_json_atomic(run.output_folder / COMMAND_NAME, record)
    write_json_atomic(run.results_file, data)
    return load_result(run.results_file)


def repeat_run(
    run: Run, original: Run, command: Sequence[str] | None = None
) -> Outcome:
    """Give ``run`` the results of the identical experiment ``original``.

    Arguments
    ---------
    run : Run
        A run found by :func:`find_repeats`.
    original : Run
        The run of the same experiment that was trained.
    command : sequence of str, optional
        ``run``'s own command line (recorded, see
        :func:`write_repeated_result`).

    Returns
    -------
    Outcome
        ``ok`` (reason: the original's key) once its results.json is
        written; ``failed`` if the original has no valid results of its own.

    Example
    -------
    >>> tmp = getfixture("tmp_path") / "repeat_run"
    >>> a = Run("en", "de", "proposed", 1, tmp / "en_de")
    >>> b = Run("zh", "de", "proposed", 1, tmp / "zh_de")
    >>> failed = repeat_run(b, a)
    >>> failed.status, failed.reason  # doctest: +ELLIPSIS
    ('failed', 'same experiment as en_de/proposed/seed1, which has no valid ...')
    >>> a.output_folder.mkdir(parents=True)
    >>> _ = a.results_file.write_text(json.dumps({"source": "en",
    ...     "target": "de", "variant": "proposed", "seed": 1, "uar": 0.5,
    ...     "macro_f1": 0.4}))
    >>> done = repeat_run(b, a)
    >>> done.ok, done.reason, done.result["uar"]
    (True, 'same experiment as en_de/proposed/seed1', 0.5)
    """  # noqa: E501
    reason = f"same experiment as {original.key}"
    state, detail = run_state(original)
    if state != "done":
        outcome = Outcome(
            run,
            "failed",
            reason=f"{reason}, which has no valid results.json"
            + (f" ({detail})" if detail else "")
            + "; see its entry",
        )
    else:
        try:
            row = write_repeated_result(run, original, command)
            outcome = Outcome(run, "ok", reason=reason, result=row)
        except (OSError, InvalidResultError) as error:
            outcome = Outcome(run, "failed", reason=f"{reason}: {error}")
    return outcome


def is_copied(run: Run) -> bool:
    """Whether a run's results.json was taken from an identical run."""
    try:
        data = json.loads(run.results_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and bool(data.get(SAME_AS_KEY))


def stale_copy(run: Run, original: Run) -> bool:
    """Whether a copied result no longer matches its original (or it has none)."""
    if run_state(original)[0] != "done":
        return True  # the original is to be (re)trained: copy again after it
    copy, source = load_result(run.results_file), load_result(original.results_file)
    return any(copy[key] != source[key] for key in ("uar", "macro_f1", "n_test"))
