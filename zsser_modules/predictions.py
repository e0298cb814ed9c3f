"""Per-utterance test predictions of a run: ``predictions.csv`` beside results.json.

Every run of ``recipes/train.py`` writes, after testing, one row per test
utterance: its ``ID``, speaker (``spk_id``), language (``lang``), true
emotion (``label``), predicted emotion (``prediction``, the arg-max) and one
natural-log probability column per emotion (``logp_<emotion>``, the model's
log-softmax output). The supplementary whole-target set (a dataset named
``test_all``, where the protocol has one) goes to
``predictions_target_all.csv``. The results tables
(:mod:`zsser_modules.results_table`) recompute UAR and macro-F1 from these
files to give every cell and every paired difference an interval and a test;
``recipes/run_grid.py`` copies them with a repeated experiment's results.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd

from zsser_modules.atomic_write import write_text_atomic

PathLike = Union[str, "os.PathLike[str]"]

#: File of the test split's predictions, in the run folder.
PREDICTIONS_FILE = "predictions.csv"
#: File of the whole-target supplementary set's predictions (``test_all``).
TARGET_ALL_PREDICTIONS_FILE = "predictions_target_all.csv"
#: Prediction files of a run, by the dataset they score.
PREDICTION_FILES: dict[str, str] = {
    "test": PREDICTIONS_FILE,
    "test_all": TARGET_ALL_PREDICTIONS_FILE,
}
#: Prefix of the log-probability columns (``logp_<emotion>``).
LOGP_PREFIX = "logp_"
#: Columns before the log-probabilities.
ID_COLUMNS: tuple[str, ...] = ("ID", "spk_id", "lang", "label", "prediction")


class PredictionsError(ValueError):
    """A predictions file is unreadable or not what :func:`write_predictions` writes.

    Example
    -------
    >>> isinstance(PredictionsError("no ID"), ValueError)
    True
    """


def predictions_frame(
    ids: Sequence[str],
    log_probs: Any,
    manifest: pd.DataFrame,
    classes: Sequence[str],
) -> pd.DataFrame:
    """Build the predictions table of a set from the model's log-probabilities.

    Arguments
    ---------
    ids : sequence of str
        Utterance IDs, one per row of ``log_probs``.
    log_probs : array-like
        Log-probabilities ``[N, n_classes]`` (a torch tensor or an array).
    manifest : pandas.DataFrame
        The set's manifest (columns ``ID``, ``spk_id``, ``lang``, ``emo``).
    classes : sequence of str
        Emotion names in the model's output order.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ID_COLUMNS` then ``logp_<class>``, rows sorted by ID.

    Raises
    ------
    PredictionsError
        If the shapes disagree or an ID is not in the manifest.

    Example
    -------
    >>> manifest = pd.DataFrame({"ID": ["b", "a"], "spk_id": ["s2", "s1"],
    ...     "lang": "de", "emo": ["sad", "happy"]})
    >>> frame = predictions_frame(["a", "b"], np.log([[0.7, 0.3], [0.4, 0.6]]),
    ...                           manifest, ["happy", "sad"])
    >>> frame[["ID", "spk_id", "label", "prediction"]].to_dict("records")
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'ID': 'a', 'spk_id': 's1', 'label': 'happy', 'prediction': 'happy'},
     {'ID': 'b', 'spk_id': 's2', 'label': 'sad', 'prediction': 'sad'}]
    """
    if hasattr(log_probs, "detach"):
        log_probs = log_probs.detach().float().cpu().numpy()
    scores = np.asarray(log_probs, dtype=float)
    scores = scores.reshape(len(scores), -1) if scores.size else scores
    classes = [str(name) for name in classes]
    if scores.ndim != 2 or scores.shape != (len(ids), len(classes)):
        raise PredictionsError(
            f"Expected log-probabilities of shape ({len(ids)}, {len(classes)}) "
            f"(utterances x emotions), found {scores.shape}."
        )
    info = manifest.set_index("ID")
    unknown = [i for i in ids if i not in info.index]
    if unknown:
        raise PredictionsError(
            f"{len(unknown)} predicted ID(s) are not in the manifest, e.g. "
            f"{unknown[0]!r}: pass the manifest of the set that was scored."
        )
    frame = pd.DataFrame(
        {
            "ID": list(ids),
            "spk_id": info.loc[list(ids), "spk_id"].astype(str).to_numpy(),
            "lang": info.loc[list(ids), "lang"].astype(str).to_numpy(),
            "label": info.loc[list(ids), "emo"].astype(str).to_numpy(),
            "prediction": [classes[i] for i in scores.argmax(axis=1)],
        }
    )
    for index, name in enumerate(classes):
        frame[LOGP_PREFIX + name] = scores[:, index]
    return frame.sort_values("ID", kind="stable").reset_index(drop=True)


def write_predictions(frame: pd.DataFrame, path: PathLike) -> Path:
    """Write a predictions table (:func:`predictions_frame`) as CSV, atomically.

    Arguments
    ---------
    frame : pandas.DataFrame
        Columns :data:`ID_COLUMNS` and ``logp_<class>``.
    path : str or path-like
        Target file (its folder is created).

    Returns
    -------
    pathlib.Path
        ``path``.

    Example
    -------
    >>> frame = pd.DataFrame({"ID": ["a"], "spk_id": ["s1"], "lang": ["de"],
    ...     "label": ["sad"], "prediction": ["sad"], "logp_happy": [-2.0],
    ...     "logp_sad": [-0.1]})
    >>> path = write_predictions(frame, getfixture("tmp_path") / "p.csv")
    >>> read_predictions(path).equals(frame)
    True
    """
    _check_frame(frame, str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.6g")
    return write_text_atomic(path, buffer.getvalue())


def class_names(frame: pd.DataFrame) -> list[str]:
    """The emotions of a predictions table, in its column order.

    Example
    -------
    >>> class_names(pd.DataFrame(columns=["ID", "logp_happy", "logp_sad"]))
    ['happy', 'sad']
    """
    return [c[len(LOGP_PREFIX) :] for c in frame.columns if c.startswith(LOGP_PREFIX)]


def _check_frame(frame: pd.DataFrame, where: str) -> None:
    """Refuse a predictions table that lacks a column or holds unknown labels."""
    missing = [column for column in ID_COLUMNS if column not in frame.columns]
    classes = class_names(frame)
    if missing or not classes:
        raise PredictionsError(
            f"{where}: expected the columns {list(ID_COLUMNS)} and at least one "
            f"'{LOGP_PREFIX}<emotion>' column, found {list(frame.columns)}; "
            "rewrite it with zsser_modules.predictions.write_predictions."
        )
    unknown = sorted(
        (set(frame["label"]) | set(frame["prediction"])) - set(classes), key=str
    )
    if unknown:
        raise PredictionsError(
            f"{where}: label(s)/prediction(s) {unknown} have no "
            f"'{LOGP_PREFIX}<emotion>' column (emotions {classes})."
        )
    if frame["ID"].duplicated().any():
        first = frame.loc[frame["ID"].duplicated(), "ID"].iloc[0]
        raise PredictionsError(f"{where}: the ID {first!r} appears more than once.")


def read_predictions(path: PathLike) -> pd.DataFrame:
    r"""Read and check a predictions file written by :func:`write_predictions`.

    Arguments
    ---------
    path : str or path-like
        A ``predictions.csv`` (or ``predictions_target_all.csv``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ID_COLUMNS` (strings) and ``logp_<class>`` (floats).

    Raises
    ------
    PredictionsError
        If the file is unreadable, lacks a column, has a label or
        prediction without a log-probability column, or repeats an ID.

    Example
    -------
    >>> path = getfixture("tmp_path") / "bad.csv"
    >>> _ = path.write_text("ID,label\\na,sad\\n")
    >>> read_predictions(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    zsser_modules.predictions.PredictionsError: ...bad.csv: expected the columns ...
    """
    try:
        frame = pd.read_csv(
            path, dtype={c: str for c in ID_COLUMNS}, keep_default_na=False
        )
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise PredictionsError(f"{path}: not a readable CSV file ({error}).") from None
    _check_frame(frame, str(path))
    for column in frame.columns:
        if column.startswith(LOGP_PREFIX):
            frame[column] = frame[column].astype(float)
    return frame


def predict_dataset(
    brain: Any, dataset: Any, manifest: PathLike | pd.DataFrame, classes: Sequence[str]
) -> pd.DataFrame:
    """Run a trained Brain over a dataset: its predictions table.

    The Brain's modules are used as they are (after ``evaluate``: the
    selected checkpoint), in eval mode, with the test loader options, the
    Brain's evaluation precision context and, in debug mode, its
    ``debug_batches`` limit: the same utterances and outputs as ``evaluate``.

    Arguments
    ---------
    brain : speechbrain.core.Brain
        The recipe's Brain (``compute_forward`` gives ``log_probs``).
    dataset : DynamicItemDataset
        The set to score (e.g. ``datasets["test"]``).
    manifest : path-like or pandas.DataFrame
        Its manifest (for speaker, language and label).
    classes : sequence of str
        Emotion names in the model's output order.

    Returns
    -------
    pandas.DataFrame
        See :func:`predictions_frame`.
    """
    import speechbrain as sb
    import torch

    from zsser_modules.data_prep.manifest import read_manifest

    if not isinstance(manifest, pd.DataFrame):
        manifest = read_manifest(manifest)
    options = {**brain.hparams.test_dataloader_options, "ckpt_prefix": None}
    loader = brain.make_dataloader(dataset, sb.Stage.TEST, **options)
    ids, scores = [], []
    limit = brain.debug_batches if getattr(brain, "debug", False) else None
    context = getattr(brain, "evaluation_ctx", None) or contextlib.nullcontext()
    brain.modules.eval()
    with torch.no_grad():
        for step, batch in enumerate(loader):
            if limit is not None and step >= limit:
                break  # as Brain.evaluate in debug mode
            with context:
                outputs = brain.compute_forward(batch, sb.Stage.TEST)
            log_probs = outputs["log_probs"].float().cpu()
            scores.append(log_probs.reshape(len(batch.id), -1))
            ids += list(batch.id)
    return predictions_frame(ids, torch.cat(scores), manifest, classes)


def write_run_predictions(
    brain: Any, hparams: dict, datasets: dict, manifests: dict
) -> list[Path]:
    """Write a run's prediction files beside its results.json.

    ``predictions.csv`` for ``datasets["test"]``, and
    ``predictions_target_all.csv`` when there is a dataset named
    ``test_all`` (with its manifest). Call it on the main process, after
    ``brain.evaluate`` (the selected checkpoint is loaded).

    Arguments
    ---------
    brain : speechbrain.core.Brain
        The recipe's Brain.
    hparams : dict
        The run's hparams (``results_file``, ``emotions``).
    datasets : dict
        The run's datasets by split.
    manifests : dict
        Their manifest paths by split.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    folder = Path(hparams["results_file"]).parent
    written = []
    for split, name in PREDICTION_FILES.items():
        if split not in datasets or split not in manifests:
            continue
        frame = predict_dataset(
            brain, datasets[split], manifests[split], hparams["emotions"]
        )
        written.append(write_predictions(frame, folder / name))
    return written


def copy_predictions(source_folder: PathLike, target_folder: PathLike) -> list[Path]:
    r"""Copy a run's prediction files to the folder of a run that repeats it.

    Used by ``recipes/run_grid.py`` for a repeated experiment (its results
    are the original's); stale prediction files of the target that the
    source lacks are removed. Each file is copied under a temporary name and
    renamed, so no reader sees half a file.

    Arguments
    ---------
    source_folder : str or path-like
        The original run's folder.
    target_folder : str or path-like
        The repeating run's folder (created).

    Returns
    -------
    list of pathlib.Path
        The files copied.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> (tmp / "a").mkdir()
    >>> _ = (tmp / "a" / PREDICTIONS_FILE).write_text("ID\\n")
    >>> [p.name for p in copy_predictions(tmp / "a", tmp / "b")]
    ['predictions.csv']
    """
    source_folder, target_folder = Path(source_folder), Path(target_folder)
    target_folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in PREDICTION_FILES.values():
        source, target = source_folder / name, target_folder / name
        if not source.is_file():
            target.unlink(missing_ok=True)
            continue
        tmp = target.with_name(f".{name}.copy.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        copied.append(target)
    return copied
