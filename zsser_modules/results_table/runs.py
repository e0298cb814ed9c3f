"""Loading runs: one ``results.json`` per run, checked, into the run table.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Union

import pandas as pd

from zsser_modules.predictions import PREDICTIONS_FILE, TARGET_ALL_PREDICTIONS_FILE
from zsser_modules.run_identity import IDENTITY_FILE
from zsser_modules.speaker_norm import TRANSDUCTIVE_NORMS

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


#: Metrics summarised, with their display names.
METRICS: dict[str, str] = {"uar": "UAR", "macro_f1": "Macro-F1"}


#: Probes of ``results.json["diagnostics"]`` (zsser_modules.diagnostics)
#: shown in the diagnostics table, with the key of their chance level.
DIAGNOSTICS: dict[str, tuple[str, str]] = {
    "speaker_probe_acc": ("Speaker probe acc.", "speaker_chance"),
    "language_probe_acc": ("Language probe acc.", "language_chance"),
    "emotion_transfer_uar": ("Emotion transfer UAR", "emotion_chance"),
    "emotion_within_uar": ("Within-language emotion UAR", "emotion_chance"),
}


_DIAGNOSTIC_KEYS = tuple(
    dict.fromkeys(
        key for probe, (_, chance) in DIAGNOSTICS.items() for key in (probe, chance)
    )
)


#: Run-table columns of the diagnostics: ``diag_<key>`` (learned embedding)
#: and ``diag_raw_<key>`` (raw frozen encoder features); NaN when absent.
DIAGNOSTIC_COLUMNS: tuple[str, ...] = tuple(
    f"diag_{prefix}{key}" for prefix in ("", "raw_") for key in _DIAGNOSTIC_KEYS
)


#: Columns of the run table returned by :func:`collect_results`.
RUN_COLUMNS: tuple[str, ...] = (
    "pair",
    "source",
    "target",
    "variant",
    "seed",
    "uar",
    "macro_f1",
    "n_test",
    "encoder",
    "path",
    "same_as",
    "note",
    "predictions",
    "protocol",
    "paper_split",
    "split_seed",
    "target_all_uar",
    "target_all_macro_f1",
    "target_all_n",
    "predictions_target_all",
    *DIAGNOSTIC_COLUMNS,
)


#: The scores a table can show: the run-table columns it reads (UAR,
#: macro-F1, per-utterance predictions) for each. ``test``: the headline
#: (the target's test split under ``protocol: paper``, the whole target
#: under ``protocol: speaker``); ``target_all``: the supplementary score of
#: the zero-shot runs of ``protocol: paper`` on the whole target corpus
#: (``results.json["target_all"]``, ``predictions_target_all.csv``).
SCORES: dict[str, dict[str, str]] = {
    "test": {
        "uar": "uar",
        "macro_f1": "macro_f1",
        "n_test": "n_test",
        "predictions": "predictions",
    },
    "target_all": {
        "uar": "target_all_uar",
        "macro_f1": "target_all_macro_f1",
        "n_test": "target_all_n",
        "predictions": "predictions_target_all",
    },
}


#: Keys every results.json must hold.
REQUIRED_KEYS: tuple[str, ...] = (
    "source",
    "target",
    "variant",
    "seed",
    "uar",
    "macro_f1",
)


#: Suffix of the row of a run with per-speaker normalised features.
SPEAKER_NORM_SUFFIX = " +spk-norm"
#: Row suffix of each ``speaker_norm`` other than ``none``.
SPEAKER_NORM_SUFFIXES = {
    "per_speaker": SPEAKER_NORM_SUFFIX,
    "per_speaker_enrolment": " +spk-enrol",
    "training": " +train-norm",
}
#: Row suffixes of the transductive ``speaker_norm`` values: derived from
#: :data:`zsser_modules.speaker_norm.TRANSDUCTIVE_NORMS` (the one source of
#: which normalisations use every test utterance's speaker statistics).
TRANSDUCTIVE_SUFFIXES: tuple[str, ...] = tuple(
    SPEAKER_NORM_SUFFIXES.get(norm, f" +{norm}") for norm in TRANSDUCTIVE_NORMS
)
#: Suffix of the row of a run whose loss weights came from a tuning study.
TUNED_SUFFIX = " (tuned)"


def row_label(data: dict[str, Any]) -> str:
    """The table row of a run: its variant, marked by the settings that make a row.

    Runs of one variant with and without speaker normalisation
    (``speaker_norm``), or with default and tuned loss weights
    (``tuned_weights``, ``recipes/tune.py``), are different methods and get
    different rows: ``"<variant>[ +spk-norm][ (tuned)]"``. Other settings
    (encoder, sampling, ...) are one per grid folder and stay out of the label.

    Arguments
    ---------
    data : dict
        A results.json (its ``variant``, ``speaker_norm``, ``tuned_weights``).

    Returns
    -------
    str
        The row label.

    Example
    -------
    >>> row_label({"variant": "proposed"})
    'proposed'
    >>> row_label({"variant": "proposed", "speaker_norm": "per_speaker",
    ...            "tuned_weights": {"file": "tuned.yaml"}})
    'proposed +spk-norm (tuned)'
    >>> row_label({"variant": "proposed", "speaker_norm": "per_speaker_enrolment"})
    'proposed +spk-enrol'
    >>> row_label({"variant": "baseline2", "speaker_norm": "none",
    ...            "tuned_weights": None})
    'baseline2'
    """
    label = data["variant"]
    norm = data.get("speaker_norm")
    if isinstance(norm, str) and norm not in ("", "none"):
        label += SPEAKER_NORM_SUFFIXES.get(norm, f" +{norm}")
    if data.get("tuned_weights"):
        label += TUNED_SUFFIX
    return label


def base_variant(label: str) -> str:
    """The variant of a row label (:func:`row_label`).

    Example
    -------
    >>> base_variant("upper_bound +spk-norm"), base_variant("baseline2")
    ('upper_bound', 'baseline2')
    """
    return label.split(" ", 1)[0]


#: Key of a results.json that repeats another run's identical experiment
#: (written by ``recipes/run_grid.py``; its value is that run's key,
#: ``"<pair>/<variant>/seed<k>"``).
SAME_AS_KEY = "same_experiment_as"


class InvalidResultError(ValueError):
    """A results.json file is unreadable or lacks what a table needs.

    Example
    -------
    >>> isinstance(InvalidResultError("no uar"), ValueError)
    True
    """


def load_result(path: PathLike) -> dict[str, Any]:
    """Read and check one ``results.json``; return its row of the run table.

    Arguments
    ---------
    path : str or path-like
        A ``results.json`` written by ``recipes/train.py``.

    Returns
    -------
    dict
        The keys of :data:`RUN_COLUMNS`: ``variant`` is the row label
        (:func:`row_label`: the variant, marked ``+spk-norm`` and ``(tuned)``
        where those apply), ``pair`` is ``"<source>_<target>"``,
        ``seed`` an int, ``uar`` and ``macro_f1`` floats in [0, 1], ``n_test``
        an int (or None), ``encoder`` a str (or None), ``path`` the file,
        ``same_as`` the run whose identical experiment this result repeats
        (:data:`SAME_AS_KEY`; None for a run of its own), ``note`` the
        run's data note (e.g. that the corpus is synthetic; None without),
        ``predictions`` the run's per-utterance predictions file
        (``predictions.csv`` beside the results.json; None for a run
        without one, e.g. one made before such files were written),
        ``protocol``, ``paper_split`` and ``split_seed`` (None where the run
        did not record them; ``split_seed`` also from ``run_identity.json``),
        ``target_all_uar``, ``target_all_macro_f1``, ``target_all_n`` and
        ``predictions_target_all`` (the whole-target supplementary score and
        its ``predictions_target_all.csv``; None for a run without one).

    Raises
    ------
    InvalidResultError
        If the file is not a JSON object, lacks a key of
        :data:`REQUIRED_KEYS`, or holds a metric (its ``target_all``'s
        included) that is not a number in [0, 1] or a seed that is not an
        integer. The message says which.

    Example
    -------
    >>> path = getfixture("tmp_path") / "results.json"
    >>> _ = path.write_text(json.dumps({"source": "en", "target": "de",
    ...     "variant": "proposed", "seed": 1, "uar": 0.6, "macro_f1": 0.55,
    ...     "n_test": 120}))
    >>> row = load_result(path)
    >>> row["pair"], row["seed"], row["uar"], row["n_test"]
    ('en_de', 1, 0.6, 120)
    >>> _ = path.write_text('{"uar": 0.6}')
    >>> load_result(path)
    Traceback (most recent call last):
    ...
    zsser_modules.results_table.runs.InvalidResultError: ... lacks the key(s) ['source', 'target', 'variant', 'seed', 'macro_f1'] ...
    """  # noqa: E501
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InvalidResultError(
            f"{path}: not a readable JSON file ({error})."
        ) from None
    if not isinstance(data, dict):
        raise InvalidResultError(
            f"{path}: expected a JSON object, found {type(data).__name__}."
        )
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise InvalidResultError(
            f"{path}: lacks the key(s) {missing} (a results.json of "
            "recipes/train.py has them all); was the run interrupted?"
        )
    row: dict[str, Any] = {}
    for key in ("source", "target", "variant"):
        if not isinstance(data[key], str) or not data[key]:
            raise InvalidResultError(
                f"{path}: {key!r} must be a non-empty string, found {data[key]!r}."
            )
        row[key] = data[key]
    row["variant"] = row_label(data)
    seed = data["seed"]
    if (
        isinstance(seed, bool)
        or not isinstance(seed, (int, float))
        or seed != int(seed)
    ):
        raise InvalidResultError(f"{path}: 'seed' must be an integer, found {seed!r}.")
    row["seed"] = int(seed)
    for key in METRICS:
        value = data[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0.0 <= value <= 1.0
        ):
            raise InvalidResultError(
                f"{path}: {key!r} must be a fraction in [0, 1], found {value!r}."
            )
        row[key] = float(value)
    n_test = data.get("n_test")
    row["n_test"] = int(n_test) if isinstance(n_test, (int, float)) else None
    encoder = data.get("encoder")
    row["encoder"] = encoder if isinstance(encoder, str) else None
    same_as = data.get(SAME_AS_KEY)
    row["same_as"] = same_as if isinstance(same_as, str) and same_as else None
    note = data.get("note")
    row["note"] = note if isinstance(note, str) and note else None
    row["pair"] = f"{row['source']}_{row['target']}"
    row["path"] = str(path)
    predictions = path.parent / PREDICTIONS_FILE
    row["predictions"] = str(predictions) if predictions.is_file() else None
    row.update(_split_settings(data, path))
    row.update(_target_all(data, path))
    row.update(_diagnostic_values(data.get("diagnostics")))
    return {column: row[column] for column in RUN_COLUMNS}


def _split_settings(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """``protocol``, ``paper_split`` and ``split_seed`` of a run (None: unrecorded).

    ``split_seed`` is read from results.json, else from the settings of the
    run's ``run_identity.json`` beside it.
    """
    row: dict[str, Any] = {}
    for key in ("protocol", "paper_split"):
        value = data.get(key)
        row[key] = value if isinstance(value, str) and value else None
    seed = data.get("split_seed")
    if seed is None:
        try:
            identity = json.loads(
                (path.parent / IDENTITY_FILE).read_text(encoding="utf-8")
            )
            seed = identity["settings"]["split_seed"]
        except (OSError, ValueError, KeyError, TypeError):
            seed = None
    ok = isinstance(seed, int) and not isinstance(seed, bool)
    row["split_seed"] = int(seed) if ok else None
    return row


def _target_all(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The supplementary whole-target score of a run (None where it has none)."""
    row = {
        "target_all_uar": None,
        "target_all_macro_f1": None,
        "target_all_n": None,
        "predictions_target_all": None,
    }
    every = data.get("target_all")
    if not isinstance(every, dict):
        return row
    for key in METRICS:
        value = every.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0.0 <= value <= 1.0
        ):
            raise InvalidResultError(
                f"{path}: 'target_all' must hold {key!r} as a fraction in [0, 1], "
                f"found {value!r}; rerun the run (--test_only) to rewrite it."
            )
        row[f"target_all_{key}"] = float(value)
    n = every.get("n_utterances")
    row["target_all_n"] = int(n) if isinstance(n, (int, float)) else None
    predictions = path.parent / TARGET_ALL_PREDICTIONS_FILE
    row["predictions_target_all"] = str(predictions) if predictions.is_file() else None
    return row


def score_runs(df: pd.DataFrame, score: str = "test") -> pd.DataFrame:
    """The run table as seen by one score (:data:`SCORES`).

    For ``score="target_all"``, only the runs with a whole-target score are
    kept, and their ``uar``, ``macro_f1``, ``n_test`` and ``predictions``
    columns are replaced by that score's (``target_all_uar``, ...): every function of
    the tables (summary, intervals, comparisons, tests) then works on it
    unchanged. ``"test"`` returns ``df`` itself.

    Arguments
    ---------
    df : pandas.DataFrame
        Run table (:func:`collect_results`).
    score : str
        A key of :data:`SCORES`.

    Returns
    -------
    pandas.DataFrame
        The run table of that score (``attrs`` kept).

    Example
    -------
    >>> df = pd.DataFrame({"pair": "en_de", "variant": ["proposed", "upper_bound"],
    ...     "seed": 1, "uar": [0.6, 0.8], "macro_f1": [0.5, 0.7],
    ...     "predictions": None, "target_all_uar": [0.55, None],
    ...     "target_all_macro_f1": [0.45, None], "predictions_target_all": None})
    >>> view = score_runs(df, "target_all")
    >>> view[["variant", "uar", "macro_f1"]].to_dict("records")
    [{'variant': 'proposed', 'uar': 0.55, 'macro_f1': 0.45}]
    """
    if score not in SCORES:
        raise ValueError(f"Unknown score {score!r}; choose one of {list(SCORES)}.")
    if score == "test":
        return df
    columns = SCORES[score]
    out = df.copy()
    for target, source in columns.items():
        if source not in out.columns:
            out[source] = None
        out[target] = out[source]
    out = out[pd.to_numeric(out["uar"], errors="coerce").notna()]
    out = out.astype({"uar": "float64", "macro_f1": "float64"})
    out = out.reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out


def protocols_of(df: pd.DataFrame) -> list[str]:
    """The distinct (protocol, paper_split) of a run table, as readable names.

    ``"paper (stratified)"``, ``"speaker"``; ``"unrecorded"`` for runs made
    before results.json recorded its protocol (speaker-independent settings).

    Example
    -------
    >>> protocols_of(pd.DataFrame({"protocol": ["paper", "paper", None],
    ...     "paper_split": ["stratified", "stratified", None]}))
    ['paper (stratified)', 'unrecorded']
    """
    if "protocol" not in df.columns:
        return ["unrecorded"] if len(df) else []
    splits = df["paper_split"] if "paper_split" in df.columns else [None] * len(df)
    names = set()
    for protocol, split in zip(df["protocol"], splits):
        if not isinstance(protocol, str) or not protocol:
            names.add("unrecorded")
        elif isinstance(split, str) and split:
            names.add(f"{protocol} ({split})")
        else:
            names.add(protocol)
    return sorted(names)


def check_protocols(df: pd.DataFrame) -> None:
    """Refuse a run table whose runs have different protocols or paper splits.

    Raises
    ------
    InvalidResultError
        One line naming the protocols found and how to fix it.

    Example
    -------
    >>> check_protocols(pd.DataFrame({"protocol": ["paper", "speaker"],
    ...     "paper_split": ["stratified", None]}))
    Traceback (most recent call last):
    ...
    zsser_modules.results_table.runs.InvalidResultError: The runs mix protocols ...
    """
    found = protocols_of(df)
    if len(found) > 1:
        raise InvalidResultError(
            f"The runs mix protocols {found}: a table compares runs of one "
            "protocol and paper_split; collect one grid folder per protocol (or "
            "pass --allow-mixed-protocols to write a table marked as mixed)."
        )


def _diagnostic_values(diagnostics: Any) -> dict[str, float]:
    """The :data:`DIAGNOSTIC_COLUMNS` of a run (NaN for what it lacks)."""
    values = {column: math.nan for column in DIAGNOSTIC_COLUMNS}
    if not isinstance(diagnostics, dict):
        return values
    raw = diagnostics.get("raw")
    for prefix, probes in (("", diagnostics), ("raw_", raw)):
        if not isinstance(probes, dict):
            continue
        for key in _DIAGNOSTIC_KEYS:
            value = probes.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values[f"diag_{prefix}{key}"] = float(value)
    return values


def run_notes(df: pd.DataFrame) -> list[str]:
    """The distinct data notes of a run table, e.g. that a corpus is synthetic.

    The tables and the figure repeat them, so that results on the built-in
    synthetic corpus are never shown without saying so.

    Arguments
    ---------
    df : pandas.DataFrame
        Run table (:func:`collect_results`).

    Returns
    -------
    list of str
        Sorted; empty if no run has a note (or the table has no ``note``).

    Example
    -------
    >>> run_notes(pd.DataFrame({"note": [None, "synthetic corpus", None]}))
    ['synthetic corpus']
    """
    if "note" not in df.columns:
        return []
    return sorted({note for note in df["note"] if isinstance(note, str) and note})


def _empty_runs() -> pd.DataFrame:
    """An empty run table with the columns and dtypes of a filled one."""
    frame = pd.DataFrame({column: pd.Series(dtype=object) for column in RUN_COLUMNS})
    return frame.astype(
        {
            "seed": "int64",
            "uar": "float64",
            "macro_f1": "float64",
            "target_all_uar": "float64",
            "target_all_macro_f1": "float64",
        }
    )


def collect_results(root: PathLike) -> pd.DataFrame:
    """Gather every ``results.json`` under ``root`` into a tidy run table.

    Files that cannot be used (see :func:`load_result`) are skipped with a
    logged warning; their paths and reasons are kept in
    ``frame.attrs["skipped"]`` (a list of ``(path, reason)``), and
    :func:`write_tables` reports them.

    Arguments
    ---------
    root : str or path-like
        Folder searched recursively (e.g. a grid folder).

    Returns
    -------
    pandas.DataFrame
        One row per run, columns :data:`RUN_COLUMNS`, sorted by pair,
        variant and seed (``uar``, ``macro_f1`` as fractions).

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder.

    Example
    -------
    >>> root = getfixture("tmp_path")
    >>> for seed, uar in [(1, 0.5), (2, 0.7)]:
    ...     run = root / "en_de" / "proposed" / f"seed{seed}"
    ...     run.mkdir(parents=True)
    ...     _ = (run / "results.json").write_text(json.dumps({"source": "en",
    ...         "target": "de", "variant": "proposed", "seed": seed, "uar": uar,
    ...         "macro_f1": uar - 0.1, "n_test": 100}))
    >>> df = collect_results(root)
    >>> print(df[["pair", "variant", "seed", "uar"]].to_string(index=False))
     pair  variant  seed  uar
    en_de proposed     1  0.5
    en_de proposed     2  0.7
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"No folder '{root}': give the folder that holds the runs (e.g. the "
            "grid folder of recipes/run_grid.py)."
        )
    rows, skipped = [], []
    for path in sorted(root.rglob("results.json")):
        try:
            rows.append(load_result(path))
        except InvalidResultError as error:
            skipped.append((str(path), str(error)))
    if skipped:
        logger.warning(
            "collect_results: skipped %d unusable results.json file(s) under %s, "
            "e.g. %s",
            len(skipped),
            root,
            skipped[0][1],
        )
    frame = pd.DataFrame(rows, columns=list(RUN_COLUMNS)) if rows else _empty_runs()
    frame = frame.sort_values(["pair", "variant", "seed"], kind="stable")
    frame = frame.reset_index(drop=True)
    frame.attrs["skipped"] = skipped
    return frame
