r"""Confidence intervals from a hierarchical bootstrap over speakers, utterances, seeds.

A cell of the table (a variant on a pair, or its ``Avg.``) is a mean over
seeds of a score computed on one test set. Its uncertainty has two sources:
the test set (a sample of speakers, and of utterances within each speaker)
and the training seed. One bootstrap replicate draws both:

1. the test speakers, with replacement (as many as the test set has);
2. within each drawn speaker, its utterances, with replacement (as many as it
   has); a speaker drawn twice gets two independent draws;
3. the seeds, with replacement (as many as the cell has).

UAR and macro-F1 are recomputed from the per-utterance predictions
(``predictions.csv``, :mod:`zsser_modules.predictions`) of each drawn seed
on the drawn utterances (classes present in the drawn labels, as
:mod:`zsser_modules.metrics` does), and averaged over the drawn seeds (and
over the pairs, for ``Avg.``). The interval is the percentile interval of
the replicates (95 % by default). A paired difference draws the same
speakers, utterances and seeds for both variants (same seed number: same
initialisation and batch order), so what the two share cancels.

Caveats, stated in the tables: drawing both speakers and utterances errs on
the wide side (the two-stage bootstrap counts the within-speaker variance
twice); with few test speakers (fewer than :data:`FEW_SPEAKERS`) percentile
intervals over speakers tend to be too narrow, and with few seeds the seed
part of the interval is rough.

Columns sharing one test set (e.g. ``en_de`` and ``zh_de``) share the
speaker and utterance draws in ``Avg.``, as they share the utterances. The
draws are seeded (:data:`BOOTSTRAP_SEED`): the same tables give the same
intervals.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Confidence level of the intervals.
CONFIDENCE = 0.95
#: Bootstrap replicates per interval.
N_BOOTSTRAP = 2000
#: Seed of the bootstrap draws.
BOOTSTRAP_SEED = 20260606
#: Below this many test speakers, the tables note that the intervals' coverage
#: is doubtful (percentile intervals over few clusters are too narrow).
FEW_SPEAKERS = 20
#: Below this many test speakers, no speaker-level interval is meaningful
#: (a handful of clusters cannot stand for the language's speakers); with a
#: single speaker the interval is conditional on that speaker (it resamples
#: its utterances and the seeds only). The tables say so per column.
MIN_SPEAKERS = 5
#: Metrics recomputed from predictions.
BOOTSTRAP_METRICS = ("uar", "macro_f1")


@dataclass
class Column:
    """One column of a comparison: a test set and the predictions on it.

    Arguments
    ---------
    labels : numpy.ndarray
        True class index of each test utterance, shape ``[N]``.
    speakers : numpy.ndarray
        Speaker of each utterance (any hashable values), shape ``[N]``.
    predictions : numpy.ndarray
        Predicted class indices, shape ``[S, N]``: one row per seed (the same
        seeds, in the same order, in every column of one interval).
    reference : numpy.ndarray, optional
        The reference variant's predictions ``[S, N]`` (same seeds): the
        interval is then that of the difference ``predictions - reference``.
    n_classes : int
        Number of emotion classes (indices ``0 .. n_classes - 1``).
    weight : float
        Weight of the column in the average over columns (``Avg.``).
    key : str
        Columns with the same key share one test set (the same speaker and
        utterance draws); by default the test set's utterance IDs.
    slot : int, optional
        For a test set that differs from seed to seed (a split that follows
        the seed): the column holds one seed, ``predictions`` ``[1, N]``,
        and ``slot`` is that seed's position among the seeds. A cell is then
        one column per seed, each with its own test set.
    group : str
        A name for the caller (e.g. the pair the column belongs to).
    """

    labels: np.ndarray
    speakers: np.ndarray
    predictions: np.ndarray
    reference: np.ndarray | None = None
    n_classes: int = 0
    weight: float = 1.0
    key: str = ""
    slot: int | None = None
    group: str = ""
    _codes: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.predictions = np.atleast_2d(np.asarray(self.predictions, dtype=np.int64))
        if self.reference is not None:
            self.reference = np.atleast_2d(np.asarray(self.reference, dtype=np.int64))
        n = self.labels.size
        if self.predictions.shape[1] != n or (
            self.reference is not None
            and self.reference.shape != self.predictions.shape
        ):
            raise ValueError(
                f"Expected predictions of shape [seeds, {n}] (and a reference of "
                f"the same shape), found {self.predictions.shape}"
                + (f" and {self.reference.shape}" if self.reference is not None else "")
                + "."
            )
        if self.slot is not None and self.predictions.shape[0] != 1:
            raise ValueError(
                f"A column of one seed (slot {self.slot}) holds predictions of "
                f"shape [1, N], found {self.predictions.shape}."
            )
        _, self._codes = np.unique(np.asarray(self.speakers), return_inverse=True)
        top = max(int(self.labels.max(initial=0)), int(self.predictions.max(initial=0)))
        self.n_classes = max(self.n_classes, top + 1)

    def slots(self, n_seeds: int) -> list[int]:
        """The seed positions the column covers."""
        return list(range(n_seeds)) if self.slot is None else [self.slot]

    @property
    def n_speakers(self) -> int:
        """Number of distinct test speakers."""
        return int(self._codes.max(initial=-1) + 1)


def hierarchical_weights(
    speakers: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Utterance multiplicities of a two-stage bootstrap (speakers, then utterances).

    Drawing ``K`` speakers with replacement gives speaker ``k`` a count
    ``c_k``; its ``c_k`` independent draws of its ``n_k`` utterances add up
    to one multinomial draw of ``c_k * n_k`` over them.

    Arguments
    ---------
    speakers : numpy.ndarray
        Speaker code (``0 .. K-1``) of each utterance, shape ``[N]``.
    n_boot : int
        Replicates.
    rng : numpy.random.Generator
        The random generator.

    Returns
    -------
    numpy.ndarray
        Shape ``[n_boot, N]``: how often each utterance is drawn; each row
        sums to ``N`` in expectation (exactly ``sum_k c_k n_k``).

    Example
    -------
    >>> w = hierarchical_weights(np.array([0, 0, 1]), 4, np.random.default_rng(0))
    >>> w.shape, bool((w >= 0).all())
    ((4, 3), True)
    """
    speakers = np.asarray(speakers, dtype=np.int64)
    n_speakers = int(speakers.max(initial=-1) + 1)
    weights = np.zeros((n_boot, speakers.size), dtype=np.int64)
    if n_speakers == 0:
        return weights
    counts = rng.multinomial(n_speakers, np.full(n_speakers, 1.0 / n_speakers), n_boot)
    for k in range(n_speakers):
        where = np.flatnonzero(speakers == k)
        p = np.full(where.size, 1.0 / where.size)
        weights[:, where] = rng.multinomial(counts[:, k] * where.size, p)
    return weights


def seed_weights(n_seeds: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Seed multiplicities of a bootstrap over seeds, shape ``[n_boot, n_seeds]``.

    Example
    -------
    >>> seed_weights(3, 2, np.random.default_rng(0)).sum(axis=1).tolist()
    [3, 3]
    """
    return rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), n_boot)


def weighted_scores(
    labels: np.ndarray,
    predictions: np.ndarray,
    weights: np.ndarray,
    n_classes: int,
    metric: str = "uar",
) -> np.ndarray:
    """UAR or macro-F1 of predictions on weighted (resampled) utterances.

    An utterance of weight ``w`` counts as ``w`` copies of itself: the same
    score as computing the metric on the resampled set with
    :mod:`zsser_modules.metrics` (classes absent from the drawn labels are
    left out; a present class never predicted has recall 0 and F1 0).

    Arguments
    ---------
    labels : numpy.ndarray
        True class indices ``[N]``.
    predictions : numpy.ndarray
        Predicted class indices ``[S, N]`` (or ``[N]``).
    weights : numpy.ndarray
        Multiplicities ``[B, N]``.
    n_classes : int
        Number of classes.
    metric : str
        ``"uar"`` or ``"macro_f1"``.

    Returns
    -------
    numpy.ndarray
        Scores ``[B, S]`` (``[B]`` for 1-d predictions).

    Example
    -------
    >>> labels, preds = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    >>> weighted_scores(labels, preds, np.ones((1, 4)), 2).tolist()
    [0.75]
    >>> weighted_scores(labels, preds, np.array([[2, 0, 1, 1]]), 2).tolist()
    [1.0]
    """
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(
            f"Unknown metric {metric!r}; choose one of {BOOTSTRAP_METRICS}."
        )
    flat = np.ndim(predictions) == 1
    predictions = np.atleast_2d(predictions)
    weights = np.asarray(weights, dtype=float)
    eye = np.eye(n_classes)
    truth = eye[labels]  # [N, C]
    guesses = eye[predictions]  # [S, N, C]
    # One pass over the (large) weights: support, hits and, for F1, guesses.
    parts = [truth[None], truth[None] * guesses]
    if metric == "macro_f1":
        parts.append(guesses)
    stacked = np.concatenate(parts, axis=0)  # [1 + S (+ S), N, C]
    counts = weights @ stacked.transpose(1, 0, 2).reshape(labels.size, -1)
    counts = counts.reshape(weights.shape[0], -1, n_classes)  # [B, parts, C]
    n_seeds = predictions.shape[0]
    support = counts[:, :1]  # [B, 1, C]
    hits = counts[:, 1 : 1 + n_seeds]  # [B, S, C]
    present = support > 0
    n_present = np.maximum(present.sum(axis=2), 1)  # [B, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "uar":
            per_class = np.where(present, hits / support, 0.0)
        else:
            denom = support + counts[:, 1 + n_seeds :]
            per_class = np.where(present & (denom > 0), 2 * hits / denom, 0.0)
    scores = per_class.sum(axis=2) / n_present  # [B, S]
    return scores[:, 0] if flat else scores


#: Draws of the test sets met lately, by (test set, replicates, seed).
_DRAWS: dict[tuple, np.ndarray] = {}
#: How many test sets' draws are kept (each ``n_boot x N`` floats).
_KEEP_DRAWS = 8


def draws_of_test_set(column: Column, n_boot: int, seed: int) -> np.ndarray:
    """The speaker and utterance draws of a column's test set (kept for reuse).

    The draws are a function of the test set (``column.key``, or its labels
    and speakers), ``n_boot`` and ``seed`` only: every cell and comparison on
    one test set uses the same draws (common random numbers), and the draws
    are made once.

    Arguments
    ---------
    column : Column
        Any column on the test set.
    n_boot : int
        Replicates.
    seed : int
        Seed of the draws.

    Returns
    -------
    numpy.ndarray
        Multiplicities ``[n_boot, N]`` as floats (:func:`hierarchical_weights`).

    Example
    -------
    >>> column = Column(np.array([0, 1, 1]), np.array(["a", "a", "b"]),
    ...                 np.array([[0, 1, 0]]))
    >>> draws = draws_of_test_set(column, 5, 0)
    >>> draws.shape, draws is draws_of_test_set(column, 5, 0)
    ((5, 3), True)
    """
    key = column.key or (column.labels.tobytes() + column._codes.tobytes())
    data = key.encode("utf-8") if isinstance(key, str) else key
    cache_key = (data, column._codes.tobytes(), n_boot, seed)
    if cache_key not in _DRAWS:
        rng = np.random.default_rng([seed, zlib.crc32(data)])
        while len(_DRAWS) >= _KEEP_DRAWS:
            del _DRAWS[next(iter(_DRAWS))]
        _DRAWS[cache_key] = hierarchical_weights(column._codes, n_boot, rng).astype(
            float
        )
    return _DRAWS[cache_key]


def _column_scores(column: Column, weights: np.ndarray, metric: str) -> np.ndarray:
    """Per-replicate, per-seed score (or difference) of a column, ``[B, S]``."""
    scores = weighted_scores(
        column.labels, column.predictions, weights, column.n_classes, metric
    )
    if column.reference is not None:
        scores = scores - weighted_scores(
            column.labels, column.reference, weights, column.n_classes, metric
        )
    return scores


@dataclass
class Interval:
    """A point estimate and its bootstrap interval (fractions).

    ``n_speakers`` is the smallest number of test speakers of the columns,
    ``n_utterances`` the largest number of test utterances, ``n_seeds`` the
    seeds used.
    """

    estimate: float
    low: float
    high: float
    n_speakers: int = 0
    n_utterances: int = 0
    n_seeds: int = 0


#: The interval of a cell without predictions.
NO_INTERVAL = Interval(math.nan, math.nan, math.nan)


def seed_layout(columns: Sequence[Column]) -> tuple[int, list[float]]:
    """The number of seeds of some columns, and each column's share.

    A column covering every seed counts its weight; a column of one seed
    (``slot``) counts its weight once per seed it covers, over the seeds:
    the shares make the statistic ``sum_c share_c * sum_{s in c} score / S``
    the weighted mean over columns of the mean over seeds.

    Example
    -------
    >>> one = Column(np.array([0]), np.array([0]), np.array([[0]]), slot=0)
    >>> two = Column(np.array([0]), np.array([0]), np.array([[0]]), slot=1)
    >>> seed_layout([one, two])
    (2, [1.0, 1.0])
    """
    whole = {c.predictions.shape[0] for c in columns if c.slot is None}
    slotted = {c.slot for c in columns if c.slot is not None}
    n_seeds = max(whole | {max(slotted, default=-1) + 1})
    if len(whole) > 1 or (whole and slotted and max(slotted) >= n_seeds) or not n_seeds:
        raise ValueError(
            "Every column of a bootstrap needs predictions for the same seeds; "
            f"found {[c.predictions.shape[0] for c in columns]}."
        )
    covered = sum(c.weight * len(c.slots(n_seeds)) for c in columns) / n_seeds
    return n_seeds, [c.weight / covered for c in columns]


def bootstrap_interval(
    columns: Sequence[Column],
    metric: str = "uar",
    n_boot: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> Interval:
    """Hierarchical bootstrap interval of a mean over seeds (and columns).

    The statistic is ``sum_c w_c * mean_s score(c, s) / sum_c w_c``, where
    ``score`` is the metric of the column's predictions on seed ``s`` (minus
    the reference's, for a difference) and ``w_c`` the column weight.

    Arguments
    ---------
    columns : sequence of Column
        The columns (one for a cell, every pair for ``Avg.``), all with the
        same seeds in the same order.
    metric : str
        ``"uar"`` or ``"macro_f1"``.
    n_boot : int
        Replicates.
    seed : int
        Seed of the draws.
    confidence : float
        Level of the percentile interval.

    Returns
    -------
    Interval
        The statistic on the data as observed, and the interval.

    Example
    -------
    >>> rng = np.random.default_rng(1)
    >>> labels = np.repeat([0, 1], 50)
    >>> speakers = np.tile(np.arange(10), 10)
    >>> preds = np.where(rng.random((3, 100)) < 0.7, labels, 1 - labels)
    >>> cell = bootstrap_interval([Column(labels, speakers, preds)], n_boot=500)
    >>> cell.low < cell.estimate < cell.high, cell.n_speakers, cell.n_seeds
    (True, 10, 3)
    """
    if not columns:
        return NO_INTERVAL
    n_seeds, shares = seed_layout(columns)
    observed, replicates = 0.0, np.zeros(n_boot)
    rng = np.random.default_rng([seed, n_seeds])
    seeds = seed_weights(n_seeds, n_boot, rng) / n_seeds  # [B, S]
    for column, share in zip(columns, shares):
        draws = draws_of_test_set(column, n_boot, seed)
        ones = np.ones((1, column.labels.size))
        slots = column.slots(n_seeds)
        observed += share * float(_column_scores(column, ones, metric).sum()) / n_seeds
        scores = _column_scores(column, draws, metric)  # [B, len(slots)]
        replicates += share * (scores * seeds[:, slots]).sum(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(replicates, [alpha, 1 - alpha])
    return Interval(
        estimate=observed,
        low=float(low),
        high=float(high),
        n_speakers=min(c.n_speakers for c in columns),
        n_utterances=max(c.labels.size for c in columns),
        n_seeds=n_seeds,
    )


# ---- From prediction files to columns ------------------------------------------


def align_predictions(
    frames: Sequence[pd.DataFrame], classes: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """Align the prediction tables of several runs on their common utterances.

    Arguments
    ---------
    frames : sequence of pandas.DataFrame
        Tables of :func:`zsser_modules.predictions.read_predictions` (one per
        run: seeds, or variant and reference seeds).
    classes : sequence of str, optional
        Class order (default: the first table's ``logp_`` columns, then any
        other label or prediction found, sorted).

    Returns
    -------
    labels : numpy.ndarray
        Class index of each common utterance ``[N]`` (sorted by ID).
    speakers : numpy.ndarray
        Speaker of each ``[N]``.
    predictions : numpy.ndarray
        Predicted class indices ``[len(frames), N]``.
    classes : list of str
        The class order.
    ids : list of str
        The common utterance IDs.

    Raises
    ------
    ValueError
        If two runs give one utterance different labels or speakers.

    Example
    -------
    >>> a = pd.DataFrame({"ID": ["u1", "u2"], "spk_id": "s", "label": ["sad", "happy"],
    ...                   "prediction": ["sad", "sad"], "logp_happy": 0.0, "logp_sad": 0.0})
    >>> labels, speakers, preds, classes, ids = align_predictions([a, a.iloc[::-1]])
    >>> labels.tolist(), preds.tolist(), classes
    ([1, 0], [[1, 1], [1, 1]], ['happy', 'sad'])
    """  # noqa: E501
    from zsser_modules.predictions import class_names

    indexed = [frame.set_index("ID") for frame in frames]
    common = sorted(set.intersection(*(set(f.index) for f in indexed)))
    if classes is None:
        classes = class_names(frames[0])
        extra = set()
        for frame in frames:
            extra |= set(frame["label"]) | set(frame["prediction"])
        classes = list(classes) + sorted(extra - set(classes))
    code = pd.Index(list(classes))
    aligned = [frame.loc[common] for frame in indexed]
    first = aligned[0]
    for other in aligned[1:]:
        for column in ("label", "spk_id"):
            if not (other[column].to_numpy() == first[column].to_numpy()).all():
                raise ValueError(
                    f"Two runs give the same utterance a different {column!r}: their "
                    "predictions are of different test sets; rerun the older one."
                )
    labels = code.get_indexer(first["label"]).astype(np.int64)
    predictions = np.array(
        [code.get_indexer(frame["prediction"]) for frame in aligned], dtype=np.int64
    ).reshape(len(indexed), len(common))
    return labels, first["spk_id"].to_numpy(), predictions, list(classes), common
