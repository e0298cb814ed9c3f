"""Tests of the paired test and Holm (zsser_modules/results_table/significance.py)."""

import math

import numpy as np
import pandas as pd
import pytest

from zsser_modules.metrics import uar
from zsser_modules.results_table import adjust_pvalues
from zsser_modules.results_table.intervals import Column
from zsser_modules.results_table.significance import (
    ALPHA,
    holm,
    paired_permutation_test,
    seed_t_test,
    uar_contributions,
)

N_CLASSES = 4


def simulate(rng, accuracy_a, accuracy_b, n_seeds=3, n_speakers=10, per_speaker=18):
    """One test set (speakers differ in difficulty) and two variants' predictions.

    Every model (variant x seed) predicts each utterance independently given
    the utterance's difficulty; with equal accuracies the two variants are
    identical systems.
    """
    speakers = np.repeat(np.arange(n_speakers), per_speaker)
    labels = rng.integers(0, N_CLASSES, speakers.size)
    difficulty = rng.normal(0, 1, n_speakers)[speakers] + rng.normal(
        0, 1, speakers.size
    )

    def model(accuracy):
        logit = np.log(accuracy / (1 - accuracy)) + difficulty
        right = rng.random((n_seeds, speakers.size)) < 1 / (1 + np.exp(-logit))
        shift = rng.integers(1, N_CLASSES, (n_seeds, speakers.size))
        return np.where(right, labels, (labels + shift) % N_CLASSES)

    return Column(labels, speakers, model(accuracy_a), reference=model(accuracy_b))


def test_uar_contributions_add_up_to_the_uar():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, N_CLASSES, 50)
    preds = rng.integers(0, N_CLASSES, (3, 50))
    sums = uar_contributions(labels, preds, N_CLASSES).sum(axis=1)
    assert sums == pytest.approx([uar(labels, p, N_CLASSES) for p in preds])


def test_statistic_is_the_mean_over_seeds_of_the_uar_difference():
    column = simulate(np.random.default_rng(1), 0.6, 0.5)
    test = paired_permutation_test([column], n_perm=200)
    expected = np.mean(
        [
            uar(column.labels, a, N_CLASSES) - uar(column.labels, b, N_CLASSES)
            for a, b in zip(column.predictions, column.reference)
        ]
    )
    assert test.statistic == pytest.approx(expected)
    assert test.n_seeds == 3 and 0 < test.p_value <= 1


@pytest.mark.parametrize("unit", ["utterance", "speaker"])
def test_false_positive_rate_on_identical_variants_is_at_most_nominal(unit):
    rng = np.random.default_rng(2026)
    n_sim = 2000  # about 1 s: the rate's own sd is then 0.005
    p_values = np.array(
        [
            paired_permutation_test(
                [simulate(rng, 0.55, 0.55)], n_perm=300, seed=i, unit=unit
            ).p_value
            for i in range(n_sim)
        ]
    )
    rate = float(np.mean(p_values <= ALPHA))
    # at or below the nominal level, up to the simulation's own error (2 sd)
    assert rate <= ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / n_sim)
    # and not conservative to uselessness: p-values roughly uniform
    assert 0.4 < p_values.mean() < 0.6


def test_power_on_a_planted_difference_at_three_seeds():
    rng = np.random.default_rng(7)
    rejected = [
        paired_permutation_test([simulate(rng, 0.65, 0.5)], n_perm=400, seed=i).p_value
        <= ALPHA
        for i in range(40)
    ]
    assert np.mean(rejected) >= 0.8
    # five seeds: a sign flip over seeds alone could not go below 2/2^5 = 0.0625
    five = simulate(rng, 0.65, 0.5, n_seeds=5)
    assert paired_permutation_test([five], n_perm=2000).p_value < 0.01


def test_no_difference_at_all_gives_p_one():
    column = simulate(np.random.default_rng(3), 0.6, 0.6)
    column.reference = column.predictions.copy()
    test = paired_permutation_test([column], n_perm=100)
    assert (test.statistic, test.p_value, test.n_units) == (0.0, 1.0, 0)


def test_holm_against_a_hand_computed_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> 0.06
    adjusted = holm([0.01, 0.04, 0.03, 0.005, math.nan])
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[4])
    assert holm([0.5, 0.6]).tolist() == [1.0, 1.0]  # capped at 1
    assert holm([]).size == 0


def test_a_repeated_column_is_one_test_of_the_family():
    rows = pd.DataFrame(
        {
            "variant": "proposed",
            "reference": "baseline2",
            "metric": ["uar"] * 4 + ["macro_f1"],
            "pair": ["en_de", "zh_de", "en_fr", "Avg.", "en_de"],
            "p_value": [0.01, 0.01, 0.02, 0.03, math.nan],
            "repeat_of": ["", "en_de", "", "", ""],
        }
    )
    adjusted = adjust_pvalues(rows).set_index(["metric", "pair"])["p_holm"]
    assert adjust_pvalues(rows)["p_seed_t_holm"].isna().all()  # no seed t-test
    # family of three (zh_de repeats en_de): 0.01*3, 0.02*2, 0.03*1 -> 0.03 0.04 0.04
    assert adjusted[("uar", "en_de")] == pytest.approx(0.03)
    assert adjusted[("uar", "zh_de")] == pytest.approx(0.03)
    assert adjusted[("uar", "en_fr")] == pytest.approx(0.04)
    assert adjusted[("uar", "Avg.")] == pytest.approx(0.04)
    assert math.isnan(adjusted[("macro_f1", "en_de")])


def test_bad_input_is_refused_in_one_line():
    column = simulate(np.random.default_rng(4), 0.6, 0.6)
    with pytest.raises(ValueError, match="unit must be one of"):
        paired_permutation_test([column], unit="seed")
    column.reference = None
    with pytest.raises(ValueError, match="needs a reference"):
        paired_permutation_test([column])


def simulate_seed_effects(rng, sd, n_seeds=5):
    """Identical variants whose models differ as a whole from seed to seed."""
    column = simulate(rng, 0.55, 0.55, n_seeds=n_seeds)
    labels = column.labels
    for which in ("predictions", "reference"):
        shift = rng.normal(0, sd, (n_seeds, 1))  # one seed's model better overall
        p_right = 1 / (1 + np.exp(-(np.log(0.55 / 0.45) + shift)))
        right = rng.random((n_seeds, labels.size)) < p_right
        wrong = (labels + rng.integers(1, N_CLASSES, right.shape)) % N_CLASSES
        setattr(column, which, np.where(right, labels, wrong))
    return column


def test_seed_effects_fool_the_permutation_test_but_not_the_seed_t_test():
    # The permutation test conditions on the trained models (documented in
    # significance.py); the seed t-test, and so the tables' bold (both must
    # reject), stays at the nominal level.
    # (20,000 simulations of this setting: seed t-test at 0.0502)
    rng = np.random.default_rng(2)
    n_sim = 1000
    perm, seed_t, both = [], [], []
    for i in range(n_sim):
        column = simulate_seed_effects(rng, sd=0.5)
        p = paired_permutation_test([column], n_perm=200, seed=i).p_value
        t = seed_t_test([column]).p_value
        perm.append(p <= ALPHA)
        seed_t.append(t <= ALPHA)
        both.append(p <= ALPHA and t <= ALPHA)
    bound = ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / n_sim)
    assert np.mean(perm) > 2 * ALPHA  # the known limitation
    assert np.mean(seed_t) <= bound and np.mean(both) <= bound


def test_seed_t_test_edge_cases():
    column = simulate(np.random.default_rng(6), 0.6, 0.6, n_seeds=1)
    assert math.isnan(seed_t_test([column]).p_value)  # one seed: no test
    column = simulate(np.random.default_rng(6), 0.6, 0.6)
    column.reference = column.predictions.copy()
    assert seed_t_test([column]).p_value == 1.0  # no difference at all
    strong = simulate(np.random.default_rng(8), 0.8, 0.4, n_seeds=5)
    assert seed_t_test([strong]).p_value < 0.01
