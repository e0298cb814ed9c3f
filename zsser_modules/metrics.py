"""Emotion recognition metrics: UAR, macro-F1, per-class recall, confusion matrix.

UAR (unweighted average recall, the usual headline metric of speech emotion
recognition) is the mean over classes of the per-class recall, i.e. the
balanced accuracy. Both UAR and macro-F1 here average over the classes present
in the targets only:

- a class absent from the targets has no defined recall (0 / 0); it is left out
  of the averages rather than counted as 0 or 1, so evaluating on a corpus that
  lacks a class does not penalise the model for it;
- predictions of such a class are still errors: each one lowers the recall of
  the true class of that sample and shows up in the confusion matrix column.

This is ``sklearn.metrics.recall_score(y_true, y_pred, labels=L,
average="macro")`` and ``f1_score(..., labels=L, average="macro")`` with ``L``
the sorted classes present in ``y_true`` (so UAR equals
``sklearn.metrics.balanced_accuracy_score``). They are computed here from the
confusion matrix with numpy, with scikit-learn's arithmetic (recall
``tp / support``, F1 ``2 tp / (support + predicted)``, 0 where undefined,
then the mean), so the core install needs no scikit-learn; a test checks the
values equal scikit-learn's exactly.

Not SpeechBrain's ``ClassificationStats``: it has no UAR, macro-F1 or fixed
class layout, its ratios are float32 (UAR off by up to 1.5e-8 in 996 of 1000
random test sets) and it silently miscounts tensor items and batches without
categories (docs/toolkit_reuse.md, pinned by tests/test_toolkit_reuse.py).

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from speechbrain.utils.metric_stats import MetricStats

_FIELDS = (
    "n",
    "accuracy",
    "uar",
    "macro_f1",
    "per_class_recall",
    "per_class_f1",
    "confusion_matrix",
    "classes",
)


def _to_numpy(values: Any) -> np.ndarray:
    """Turn a tensor, array or sequence into a numpy array."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.is_floating_point():  # numpy has no bfloat16
            values = values.float()
        return values.numpy()
    return np.asarray(values)


def _to_indices(
    values: Any,
    name: str,
    n_classes: int,
    allow_scores: bool,
    class_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Convert targets or predictions to a 1-D int64 array of class indices.

    Accepted: indices [N] or [N, 1]; with ``allow_scores``, scores
    (logits or probabilities) [..., n_classes], reduced by argmax; with
    ``class_names``, class-name strings.
    """
    array = _to_numpy(values)
    if array.dtype.kind in "US" or (array.dtype == object and array.size > 0):
        if class_names is None:
            raise TypeError(
                f"{name} holds non-numeric values ({array.ravel()[:3].tolist()}...); "
                "pass integer class indices."
            )
        lookup = {cls: index for index, cls in enumerate(class_names)}
        unknown = sorted({str(v) for v in array.ravel() if v not in lookup})
        if unknown:
            raise ValueError(
                f"{name} contains unknown classes {unknown}; expected one of "
                f"{list(class_names)}."
            )
        array = np.vectorize(lookup.__getitem__, otypes=[np.int64])(array)
    if array.ndim == 0:
        raise ValueError(
            f"{name} must have one entry per sample, got a scalar ({array!r})."
        )
    if array.ndim >= 2 and array.shape[-1] == 1:
        array = array.reshape(array.shape[:-1])
    if array.ndim >= 2:
        if not allow_scores:
            raise ValueError(
                f"{name} must be class indices of shape [N], got shape {array.shape}."
            )
        if array.shape[-1] != n_classes:
            raise ValueError(
                f"{name} of shape {array.shape} looks like scores, but its last "
                f"dimension should be the number of classes ({n_classes})."
            )
        array = array.argmax(axis=-1)
    array = array.reshape(-1)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ValueError(
                f"{name} of shape [N] must hold integer class indices, got "
                f"non-integer values such as {array[:3].tolist()}. Pass scores "
                f"as [N, {n_classes}] to take the argmax."
            )
    elif array.dtype.kind not in "iub" and array.size > 0:
        raise TypeError(f"{name} must hold class indices, got dtype {array.dtype}.")
    array = array.astype(np.int64)
    bad = array[(array < 0) | (array >= n_classes)]
    if bad.size:
        raise ValueError(
            f"{name} contains class indices {sorted(set(bad.tolist()))} outside "
            f"[0, {n_classes})."
        )
    return array


def _check_n_classes(n_classes: int) -> int:
    """Validate the number of classes."""
    if (
        isinstance(n_classes, bool)
        or not isinstance(n_classes, numbers.Integral)
        or n_classes < 1
    ):
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}.")
    return int(n_classes)


def _prepare(targets, predictions, n_classes, class_names=None):
    """Validate and convert a pair of targets/predictions to index arrays."""
    n_classes = _check_n_classes(n_classes)
    y_true = _to_indices(targets, "targets", n_classes, False, class_names)
    y_pred = _to_indices(predictions, "predictions", n_classes, True, class_names)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"Got {y_true.size} targets but {y_pred.size} predictions; expected "
            "one prediction per target."
        )
    if y_true.size == 0:
        raise ValueError("Cannot compute metrics on zero samples.")
    return y_true, y_pred


def uar(targets: Any, predictions: Any, n_classes: int) -> float:
    """Unweighted average recall (balanced accuracy) over the classes in ``targets``.

    Classes absent from ``targets`` are left out of the average (their recall
    is undefined); predicting such a class still counts as an error for the
    true class. Equals ``sklearn.metrics.recall_score(targets, predictions,
    labels=np.unique(targets), average="macro")``.

    Arguments
    ---------
    targets : array-like or torch.Tensor
        True class indices [N] (or [N, 1]).
    predictions : array-like or torch.Tensor
        Predicted class indices [N], or scores (logits or probabilities)
        [N, n_classes] whose argmax is taken.
    n_classes : int
        Number of classes; indices must be in ``[0, n_classes)``.

    Returns
    -------
    float
        The UAR, in [0, 1].

    Example
    -------
    >>> uar([0, 0, 0, 1], [0, 0, 0, 0], n_classes=4)  # recalls 1 and 0
    0.5
    >>> uar([0, 1], [[2.0, 0.1, 0.0], [0.0, 0.1, 3.0]], n_classes=3)
    0.5
    """
    y_true, y_pred = _prepare(targets, predictions, n_classes)
    return _present_scores(y_true, y_pred)[0]


def macro_f1(targets: Any, predictions: Any, n_classes: int) -> float:
    """Macro-averaged F1 over the classes present in ``targets``.

    Classes absent from ``targets`` are left out of the average, as for
    :func:`uar`; predicting such a class lowers the recall (hence F1) of the
    true class. Equals ``sklearn.metrics.f1_score(targets, predictions,
    labels=np.unique(targets), average="macro", zero_division=0)``.

    Arguments
    ---------
    targets : array-like or torch.Tensor
        True class indices [N] (or [N, 1]).
    predictions : array-like or torch.Tensor
        Predicted class indices [N], or scores [N, n_classes] (argmax).
    n_classes : int
        Number of classes; indices must be in ``[0, n_classes)``.

    Returns
    -------
    float
        The macro-F1, in [0, 1].

    Example
    -------
    >>> round(macro_f1([0, 0, 1, 1], [0, 1, 1, 1], n_classes=4), 4)
    0.7333
    """
    y_true, y_pred = _prepare(targets, predictions, n_classes)
    return _present_scores(y_true, y_pred)[1]


def _confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Counts [n, n] of validated index arrays: rows true, columns predicted."""
    return np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)


def _per_class(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall and F1 of every class of a confusion matrix (0 where undefined)."""
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(support + predicted > 0, 2.0 * tp / (support + predicted), 0.0)
    return recall, f1


def _present_scores(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """UAR and macro-F1 over the classes present in ``y_true``."""
    n = int(max(y_true.max(), y_pred.max())) + 1
    recall, f1 = _per_class(_confusion_matrix(y_true, y_pred, n))
    present = np.unique(y_true)
    return float(np.mean(recall[present])), float(np.mean(f1[present]))


class EmotionMetricStats(MetricStats):
    """Accumulates emotion predictions over a stage and summarises them.

    Follows SpeechBrain's ``MetricStats`` protocol: ``clear()`` at stage
    start, ``append(ids, predictions, targets)`` per batch, ``summarize()``
    at stage end. The summary is a dict of plain Python types (JSON
    serialisable):

    - ``n`` (int): number of samples;
    - ``accuracy`` (float): fraction of correct predictions;
    - ``uar`` (float): unweighted average recall over the classes present in
      the targets (see :func:`uar`);
    - ``macro_f1`` (float): macro-F1 over the same classes (see
      :func:`macro_f1`);
    - ``per_class_recall`` / ``per_class_f1`` (dict str -> float or None):
      for every class of ``classes``; None for a class absent from the
      targets (undefined, left out of ``uar`` / ``macro_f1``);
    - ``confusion_matrix`` (list of lists of int): rows are true classes,
      columns predicted classes, both in the order of ``classes``;
    - ``classes`` (list of str): that order.

    Arguments
    ---------
    classes : sequence of str
        Class names in index order, e.g. ``zsser_modules.EMOTIONS``.

    Example
    -------
    >>> import torch
    >>> stats = EmotionMetricStats(["neutral", "happy", "angry", "sad"])
    >>> stats.append(["a", "b"], torch.tensor([[0.9, 0.1, 0.0, 0.0],
    ...                                        [0.2, 0.7, 0.1, 0.0]]),
    ...              torch.tensor([0, 1]))
    >>> stats.append(["c", "d"], torch.tensor([2, 1]), torch.tensor([[2], [2]]))
    >>> summary = stats.summarize()
    >>> round(summary["uar"], 4), summary["accuracy"], summary["n"]
    (0.8333, 0.75, 4)
    >>> summary["per_class_recall"]
    {'neutral': 1.0, 'happy': 1.0, 'angry': 0.5, 'sad': None}
    >>> summary["confusion_matrix"][2]
    [0, 1, 1, 0]
    >>> round(stats.summarize("macro_f1"), 4)
    0.7778
    """

    def __init__(self, classes: Sequence[str]):
        if isinstance(classes, str):
            raise ValueError(
                f"classes must be a sequence of class names, got the string "
                f"{classes!r}."
            )
        classes = [str(name) for name in classes]
        if not classes:
            raise ValueError("EmotionMetricStats needs at least one class.")
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes must be unique, got {classes}.")
        self.classes = classes
        self.n_classes = len(classes)
        self.clear()

    def clear(self) -> None:
        """Remove all accumulated samples (call at the start of a stage)."""
        self.ids: list = []
        self.targets: list[int] = []
        self.predictions: list[int] = []
        self.groups: list = []
        self.summary: dict = {}

    def append(
        self,
        ids: Sequence,
        predictions: Any,
        targets: Any,
        groups: Sequence | None = None,
    ) -> None:
        """Add a batch of predictions.

        Arguments
        ---------
        ids : sequence
            Sample IDs, one per sample.
        predictions : torch.Tensor or array-like
            Predicted class indices [B] (or [B, 1]), scores
            [B, n_classes] or [B, 1, n_classes] (logits or probabilities,
            argmax taken), or class-name strings.
        targets : torch.Tensor or array-like
            True class indices [B] (or [B, 1]) or class-name strings.
        groups : sequence, optional
            A group per sample (e.g. its language) for :meth:`uar_by_group`.
        """
        y_true, y_pred = _prepare(targets, predictions, self.n_classes, self.classes)
        ids = list(ids)
        groups = [None] * len(ids) if groups is None else list(groups)
        if len(ids) != y_true.size or len(groups) != y_true.size:
            raise ValueError(
                f"Got {len(ids)} ids and {len(groups)} groups for {y_true.size} "
                "targets; expected one of each per sample."
            )
        self.groups.extend(groups)
        self.ids.extend(ids)
        self.targets.extend(y_true.tolist())
        self.predictions.extend(y_pred.tolist())

    def summarize(self, field: str | None = None) -> Any:
        """Compute the metrics over everything appended since ``clear()``.

        Arguments
        ---------
        field : str, optional
            If given, return only this entry of the summary (e.g. ``"uar"``).

        Returns
        -------
        dict or value
            The summary dict described in the class docstring, or one of
            its values.
        """
        if field is not None and field not in _FIELDS:
            raise KeyError(f"Unknown field {field!r}; available: {list(_FIELDS)}.")
        if not self.targets:
            raise ValueError(
                "EmotionMetricStats.summarize: no samples were appended since "
                "the last clear()."
            )
        y_true = np.asarray(self.targets, dtype=np.int64)
        y_pred = np.asarray(self.predictions, dtype=np.int64)
        present = set(np.unique(y_true).tolist())
        matrix = _confusion_matrix(y_true, y_pred, self.n_classes)
        recalls, f1s = _per_class(matrix)
        uar_value, f1_value = _present_scores(y_true, y_pred)
        self.summary = {
            "n": int(y_true.size),
            "accuracy": float(np.mean(y_true == y_pred)),
            "uar": uar_value,
            "macro_f1": f1_value,
            "per_class_recall": {
                name: float(recalls[i]) if i in present else None
                for i, name in enumerate(self.classes)
            },
            "per_class_f1": {
                name: float(f1s[i]) if i in present else None
                for i, name in enumerate(self.classes)
            },
            "confusion_matrix": matrix.astype(int).tolist(),
            "classes": list(self.classes),
        }
        if field is not None:
            return self.summary[field]
        return self.summary

    def uar_by_group(self) -> dict:
        """UAR of each group given to :meth:`append` (e.g. of each language).

        Returns
        -------
        dict
            ``{group: uar}`` in sorted group order; samples appended without
            a group are left out.

        Example
        -------
        >>> stats = EmotionMetricStats(["neutral", "happy"])
        >>> stats.append(["a", "b", "c"], [0, 0, 1], [0, 1, 1],
        ...              groups=["en", "en", "de"])
        >>> stats.uar_by_group()
        {'de': 1.0, 'en': 0.5}
        """
        y_true = np.asarray(self.targets, dtype=np.int64)
        y_pred = np.asarray(self.predictions, dtype=np.int64)
        groups = np.asarray(self.groups, dtype=object)
        names = sorted({g for g in self.groups if g is not None})
        return {
            g: _present_scores(y_true[groups == g], y_pred[groups == g])[0]
            for g in names
        }

    def write_stats(self, filestream, verbose: bool = False) -> None:
        """Write a human-readable summary (metrics and confusion matrix).

        Arguments
        ---------
        filestream : file-like
            Stream to write to, e.g. an open file or ``sys.stdout``.
        verbose : bool
            Also print the summary to stdout.
        """
        summary = self.summary or self.summarize()
        width = max(len(name) for name in self.classes)
        lines = [
            f"n: {summary['n']}  accuracy: {summary['accuracy']:.4f}  "
            f"UAR: {summary['uar']:.4f}  macro-F1: {summary['macro_f1']:.4f}",
            "Per-class recall (None: class absent from the targets):",
        ]
        for name, value in summary["per_class_recall"].items():
            shown = "None" if value is None else f"{value:.4f}"
            lines.append(f"  {name:<{width}} {shown}")
        lines.append("Confusion matrix (rows: true, columns: predicted):")
        lines.append(
            " " * (width + 2) + " ".join(f"{n:>{width}}" for n in self.classes)
        )
        for name, row in zip(self.classes, summary["confusion_matrix"]):
            cells = " ".join(f"{count:>{width}}" for count in row)
            lines.append(f"  {name:<{width}} {cells}")
        message = "\n".join(lines) + "\n"
        filestream.write(message)
        if verbose:
            print(message, end="")
