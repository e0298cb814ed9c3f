"""Tests of the hierarchical bootstrap (zsser_modules/results_table/intervals.py)."""

import numpy as np
import pandas as pd
import pytest

from zsser_modules.metrics import macro_f1, uar
from zsser_modules.results_table.intervals import (
    Column,
    align_predictions,
    bootstrap_interval,
    hierarchical_weights,
    weighted_scores,
)

N_CLASSES = 4


def toy_table(seed=0, n_speakers=8, per_speaker=12, n_seeds=3, accuracy=0.6):
    """Labels, speakers and the predictions of n_seeds models on them."""
    rng = np.random.default_rng(seed)
    speakers = np.repeat(np.arange(n_speakers), per_speaker)
    labels = rng.integers(0, N_CLASSES, speakers.size)
    skill = rng.normal(0, 1, n_speakers)[speakers]  # speakers differ
    p_right = 1 / (1 + np.exp(-(np.log(accuracy / (1 - accuracy)) + skill)))
    right = rng.random((n_seeds, speakers.size)) < p_right
    wrong = (labels + rng.integers(1, N_CLASSES, (n_seeds, speakers.size))) % N_CLASSES
    return labels, speakers, np.where(right, labels, wrong)


def plain_uar(labels, predictions):
    """UAR written out: the mean recall of the classes present."""
    return np.mean([np.mean(predictions[labels == c] == c) for c in np.unique(labels)])


def reference_interval(labels, speakers, preds, ref=None, n_boot=2000, seed=1):
    """The bootstrap written out: draw speakers, their utterances, seeds; recompute."""
    rng = np.random.default_rng(seed)
    names = np.unique(speakers)
    members = {k: np.flatnonzero(speakers == k) for k in names}
    n_seeds = preds.shape[0]
    values = []
    for _ in range(n_boot):
        drawn = rng.choice(names, size=names.size, replace=True)
        index = np.concatenate(
            [rng.choice(members[k], size=members[k].size) for k in drawn]
        )
        seeds = rng.choice(n_seeds, size=n_seeds, replace=True)
        scores = []
        for s in seeds:
            score = plain_uar(labels[index], preds[s, index])
            if ref is not None:
                score -= plain_uar(labels[index], ref[s, index])
            scores.append(score)
        values.append(np.mean(scores))
    return np.quantile(values, [0.025, 0.975])


def test_weighted_scores_equal_the_metrics_on_the_resampled_set():
    labels, speakers, preds = toy_table()
    rng = np.random.default_rng(3)
    weights = hierarchical_weights(speakers, 20, rng)
    for metric, function in (("uar", uar), ("macro_f1", macro_f1)):
        scores = weighted_scores(labels, preds, weights, N_CLASSES, metric)
        assert scores.shape == (20, preds.shape[0])
        for b in range(20):
            index = np.repeat(np.arange(labels.size), weights[b])
            for s in range(preds.shape[0]):
                expected = function(labels[index], preds[s, index], N_CLASSES)
                assert scores[b, s] == pytest.approx(expected, abs=1e-12)


def test_hierarchical_weights_draw_whole_speakers_then_their_utterances():
    speakers = np.repeat(np.arange(5), [3, 4, 5, 6, 7])
    weights = hierarchical_weights(speakers, 500, np.random.default_rng(0))
    sizes = np.bincount(speakers)
    per_speaker = np.stack([weights[:, speakers == k].sum(1) for k in range(5)], 1)
    # each speaker gets a whole number of copies of its size: c_k * n_k
    assert (per_speaker % sizes == 0).all()
    # 5 speakers drawn per replicate, each utterance drawn once on average
    assert ((per_speaker // sizes).sum(1) == 5).all()
    assert weights.mean() == pytest.approx(1.0, abs=0.05)


def test_bootstrap_cell_matches_a_reference_computed_here():
    labels, speakers, preds = toy_table()
    cell = bootstrap_interval([Column(labels, speakers, preds)], n_boot=2000)
    low, high = reference_interval(labels, speakers, preds)
    # the point estimate is the mean over seeds of the metric, exactly
    assert cell.estimate == pytest.approx(
        np.mean([uar(labels, p, N_CLASSES) for p in preds]), abs=1e-12
    )
    # two Monte Carlo estimates of the same percentiles (sd about 0.003 each)
    assert cell.low == pytest.approx(low, abs=0.015)
    assert cell.high == pytest.approx(high, abs=0.015)
    assert (cell.n_speakers, cell.n_utterances, cell.n_seeds) == (8, 96, 3)


def test_bootstrap_difference_is_paired_and_matches_the_reference():
    labels, speakers, preds = toy_table(seed=1, accuracy=0.65)
    _, _, other = toy_table(seed=2, accuracy=0.5)
    diff = bootstrap_interval(
        [Column(labels, speakers, preds, reference=other)], n_boot=2000
    )
    low, high = reference_interval(labels, speakers, preds, ref=other)
    assert diff.low == pytest.approx(low, abs=0.015)
    assert diff.high == pytest.approx(high, abs=0.015)
    # identical systems: every replicate's difference is 0
    same = bootstrap_interval(
        [Column(labels, speakers, preds, reference=preds)], n_boot=200
    )
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)


def test_average_shares_the_draws_of_one_test_set():
    labels, speakers, preds = toy_table()
    one = bootstrap_interval([Column(labels, speakers, preds)], n_boot=300)
    # two columns on the same test set with the same predictions: the same figure
    twice = bootstrap_interval(
        [Column(labels, speakers, preds), Column(labels, speakers, preds)],
        n_boot=300,
    )
    assert (twice.low, twice.high) == pytest.approx((one.low, one.high))
    # the macro-F1 interval brackets its estimate as well
    f1 = bootstrap_interval([Column(labels, speakers, preds)], "macro_f1", 300)
    assert f1.low <= f1.estimate <= f1.high


def test_more_speakers_give_a_narrower_interval():
    small = bootstrap_interval([Column(*toy_table(n_speakers=5))], n_boot=500)
    large = bootstrap_interval([Column(*toy_table(n_speakers=60))], n_boot=500)
    assert large.high - large.low < small.high - small.low


def test_bad_shapes_and_unpaired_seeds_are_refused():
    labels, speakers, preds = toy_table()
    with pytest.raises(ValueError, match="shape"):
        Column(labels, speakers, preds[:, :-1])
    with pytest.raises(ValueError, match="same seeds"):
        bootstrap_interval(
            [Column(labels, speakers, preds), Column(labels, speakers, preds[:2])]
        )


def test_align_predictions_keeps_the_common_utterances_in_id_order():
    def frame(ids, predictions):
        return pd.DataFrame(
            {
                "ID": ids,
                "spk_id": [i[0] for i in ids],
                "label": "sad",
                "prediction": predictions,
                "logp_happy": 0.0,
                "logp_sad": 0.0,
            }
        )

    a = frame(["b2", "a1", "c3"], ["sad", "happy", "sad"])
    b = frame(["a1", "b2"], ["sad", "sad"])
    labels, speakers, preds, classes, ids = align_predictions([a, b])
    assert ids == ["a1", "b2"] and classes == ["happy", "sad"]
    assert preds.tolist() == [[0, 1], [1, 1]] and list(speakers) == ["a", "b"]
    with pytest.raises(ValueError, match="different 'label'"):
        align_predictions([a, b.assign(label="happy")])
