r"""Paired tests of two variants: a stratified permutation test, a seed t-test, Holm.

**The test.** Two variants scored on the same test utterances, each with the
same seeds (seed ``s`` of both: same initialisation and batch order). The
statistic is the mean over seeds of the UAR difference,
:math:`T = \frac{1}{S}\sum_s (\mathrm{UAR}_s(a) - \mathrm{UAR}_s(b))`
(for ``Avg.``, its weighted mean over the pairs). Under the null hypothesis
the two variants' predictions are exchangeable on every test item of every
seed: within each seed (the strata), swapping the two predictions of an
utterance (or of all the utterances of a speaker, ``unit="speaker"``)
leaves the distribution unchanged. The test draws such swaps at random,
independently per seed and unit, and the two-sided p-value is
:math:`(1 + \#\{|T^*| \ge |T|\}) / (1 + n_{perm})`.

With the labels fixed, UAR is linear in the per-utterance hits: utterance
``i`` of class ``y`` adds :math:`1 / (C \cdot n_y)` when right (``C``
classes present, ``n_y`` utterances of class ``y``), so a swap flips the
sign of that utterance's contribution to the difference and every
permutation costs one matrix product.

What it tests and what it does not: it asks whether the two variants, as
trained with these seeds, differ on these test items, pooling the evidence
of every seed (so it can reject with 3 or 5 seeds, which a sign flip over
seeds alone cannot: with 5 seeds its smallest two-sided p-value is
:math:`2/2^5 = 0.0625`). It conditions on the trained models: when a
model's quality varies from seed to seed as a whole (one seed's model
better on most utterances), that variation is not in its null
distribution, and it rejects identical variants too often. Measured on
simulated identical variants (180 utterances, 10 speakers, 5 seeds, each
model's logit shifted by a seed effect of sd 0.3 or 0.6, i.e. seed stds of
UAR of a few points, as in our tables; 400 simulations): false-positive
rate 0.27 and 0.54 swapping utterances, 0.23 and 0.41 swapping speakers;
without seed effects 0.06 (nominal 0.05, within the simulation's error).

**The seed t-test** (:func:`seed_t_test`) takes each seed's pair of models
as one replicate: a one-sample t-test of the per-seed UAR differences
(:math:`S - 1` degrees of freedom; with 5 seeds it rejects at
:math:`|t| > 2.78`). In the same simulations its false-positive rate was
0.06, 0.035 and 0.04. The tables give both tests, Holm-adjusted, and mark
a difference (bold) only when both reject: the permutation test alone
would declare seed noise a difference, the t-test alone has little power
at 3 seeds. The bootstrap interval of the difference (:mod:`.intervals`),
which resamples seeds as well as speakers and utterances, excluded 0 for
0.0 %, 1.0 % and 5.2 % of those identical pairs.

**Multiple comparisons.** :func:`holm` adjusts the p-values of a table's
tests (Holm's step-down method, which controls the family-wise error rate
at any dependence), each kind of test over its own family. A repeated
experiment (a ``†`` column) is one test, counted once.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from zsser_modules.results_table.intervals import Column, seed_layout

#: Random swaps per test.
N_PERMUTATIONS = 10000
#: Seed of the swaps.
PERMUTATION_SEED = 20260607
#: Family-wise error rate of the tables' verdicts (after Holm).
ALPHA = 0.05
#: Units whose predictions are swapped together.
UNITS = ("utterance", "speaker")


@dataclass
class PairedTest:
    """Result of :func:`paired_permutation_test`.

    ``statistic``: mean over seeds (and weighted over columns) of the UAR
    difference, a fraction; ``p_value``: two-sided; ``n_units``: units that
    can change the statistic (items where the two variants differ in
    correctness), summed over columns and seeds; ``n_seeds``: the strata.
    """

    statistic: float
    p_value: float
    n_units: int = 0
    n_seeds: int = 0


def uar_contributions(
    labels: np.ndarray, predictions: np.ndarray, n_classes: int
) -> np.ndarray:
    """Each utterance's share of the UAR: ``hit / (classes present * class size)``.

    Arguments
    ---------
    labels : numpy.ndarray
        True class indices ``[N]``.
    predictions : numpy.ndarray
        Predicted class indices ``[S, N]``.
    n_classes : int
        Number of classes.

    Returns
    -------
    numpy.ndarray
        ``[S, N]``; each row sums to that seed's UAR.

    Example
    -------
    >>> c = uar_contributions(np.array([0, 0, 1]), np.array([[0, 1, 1]]), 2)
    >>> c.round(3).tolist(), float(c.sum())
    ([[0.25, 0.0, 0.5]], 0.75)
    """
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    present = int((counts > 0).sum())
    share = 1.0 / (max(present, 1) * np.maximum(counts[labels], 1))
    return (np.atleast_2d(predictions) == labels) * share


def paired_permutation_test(
    columns: Sequence[Column],
    n_perm: int = N_PERMUTATIONS,
    seed: int = PERMUTATION_SEED,
    unit: str = "utterance",
) -> PairedTest:
    """Stratified paired permutation test of a UAR difference (seeds as strata).

    Arguments
    ---------
    columns : sequence of Column
        Each with ``predictions`` (variant) and ``reference`` (the variant
        it is compared with), seeds in the same order; several columns (the
        pairs of ``Avg.``) are combined with their weights.
    n_perm : int
        Random swaps.
    seed : int
        Seed of the swaps.
    unit : str
        ``"utterance"`` (default) or ``"speaker"``: what is swapped as one.

    Returns
    -------
    PairedTest
        Statistic and two-sided p-value (``nan`` without columns).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2, 3], 50)
    >>> speakers = np.tile(np.arange(10), 20)
    >>> def model(accuracy):
    ...     right = rng.random((3, 200)) < accuracy
    ...     return np.where(right, labels, (labels + 1) % 4)
    >>> better = Column(labels, speakers, model(0.7), reference=model(0.5))
    >>> test = paired_permutation_test([better], n_perm=2000)
    >>> test.statistic > 0.1, test.p_value < 0.01, test.n_seeds
    (True, True, 3)
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, found {unit!r}.")
    if not columns:
        return PairedTest(math.nan, math.nan)
    if any(c.reference is None for c in columns):
        raise ValueError("A paired test needs a reference in every column.")
    n_seeds, shares = seed_layout(columns)
    parts = []
    for column, share in zip(columns, shares):
        diff = uar_contributions(
            column.labels, column.predictions, column.n_classes
        ) - uar_contributions(column.labels, column.reference, column.n_classes)
        if unit == "speaker":  # sum each speaker's utterances: one unit
            codes = column._codes
            diff = np.stack([np.bincount(codes, weights=row) for row in diff])
        parts.append((share / n_seeds) * diff.ravel())
    values = np.concatenate(parts)
    values = values[values != 0]  # units that cannot change T
    observed = float(values.sum())
    if values.size == 0:
        return PairedTest(observed, 1.0, 0, n_seeds)
    rng = np.random.default_rng(seed)
    exceed, done = 0, 0
    chunk = max(1, min(n_perm, 20_000_000 // values.size))
    tolerance = 1e-12 * max(1.0, abs(observed))
    while done < n_perm:
        size = min(chunk, n_perm - done)
        # fair coin flips, eight per random byte
        packed = rng.integers(0, 256, (size, (values.size + 7) // 8), dtype=np.uint8)
        flips = np.unpackbits(packed, axis=1, count=values.size)
        permuted = observed - 2.0 * (flips @ values)
        exceed += int((np.abs(permuted) >= abs(observed) - tolerance).sum())
        done += size
    return PairedTest(
        statistic=observed,
        p_value=(1 + exceed) / (1 + n_perm),
        n_units=int(values.size),
        n_seeds=n_seeds,
    )


def seed_t_test(columns: Sequence[Column]) -> PairedTest:
    """Paired t-test over seeds of the UAR difference (seeds as the replicates).

    Each seed gives one difference ``UAR(a) - UAR(b)`` (weighted mean over
    the columns); the test is Student's one-sample t-test of those
    differences against 0 (two-sided, ``S - 1`` degrees of freedom). It
    treats each seed's pair of trained models as one replicate, so
    seed-to-seed variation of the models (one seed's model better on every
    utterance) is part of its null distribution, which the permutation test
    leaves out; it needs no exchangeability of single utterances, and with
    5 seeds it rejects at |t| > 2.78.

    Arguments
    ---------
    columns : sequence of Column
        As for :func:`paired_permutation_test`.

    Returns
    -------
    PairedTest
        Statistic (mean difference) and p-value; NaN with fewer than two
        seeds or when every seed gives the same non-zero difference; p = 1
        when every difference is 0.

    Example
    -------
    >>> labels = np.array([0, 0, 1, 1])
    >>> a = np.array([[0, 0, 1, 1], [0, 0, 1, 0], [0, 1, 1, 1]])
    >>> b = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [0, 1, 1, 0]])
    >>> test = seed_t_test([Column(labels, np.zeros(4), a, reference=b)])
    >>> round(test.statistic, 3), round(test.p_value, 3), test.n_seeds
    (0.417, 0.038, 3)
    """
    if not columns:
        return PairedTest(math.nan, math.nan)
    if any(c.reference is None for c in columns):
        raise ValueError("A paired test needs a reference in every column.")
    n_seeds, _ = seed_layout(columns)
    differences, totals = np.zeros(n_seeds), np.zeros(n_seeds)
    for column in columns:
        slots = column.slots(n_seeds)
        differences[slots] += column.weight * (
            uar_contributions(column.labels, column.predictions, column.n_classes)
            - uar_contributions(column.labels, column.reference, column.n_classes)
        ).sum(axis=1)
        totals[slots] += column.weight
    differences /= np.maximum(totals, 1e-300)
    mean = float(differences.mean())
    if n_seeds < 2:
        return PairedTest(mean, math.nan, 0, n_seeds)
    if np.ptp(differences) <= 1e-12:
        p = 1.0 if abs(mean) <= 1e-12 else math.nan
        return PairedTest(mean, p, 0, n_seeds)
    p = float(stats.ttest_1samp(differences, 0.0).pvalue)
    return PairedTest(mean, p, 0, n_seeds)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries are left out and kept NaN).

    The ``k``-th smallest of ``m`` p-values is multiplied by ``m - k + 1``;
    the adjusted values are made non-decreasing in that order and capped at 1.
    A test is rejected at family-wise level ``alpha`` when its adjusted
    p-value is at most ``alpha``.

    Arguments
    ---------
    p_values : sequence of float
        The family's p-values (NaN: no test).

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, in the input order.

    Example
    -------
    >>> holm([0.01, 0.04, 0.03, float("nan")]).round(2).tolist()
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    valid = np.flatnonzero(np.isfinite(p))
    m = valid.size
    if m == 0:
        return adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = p[order] * (m - np.arange(m))
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted
