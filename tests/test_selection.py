"""Per-language validation UAR and the model-selection criterion."""

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score
from speechbrain.utils.checkpoints import Checkpointer

from zsser_modules.metrics import EmotionMetricStats
from zsser_modules.selection import SELECTION_CRITERIA, validation_meta

CLASSES = ["neutral", "happy", "angry", "sad"]


def test_uar_per_language_matches_scikit_learn():
    rng = np.random.default_rng(0)
    # a large balanced language, a small imbalanced one, one with 2 classes only
    langs = ["en"] * 200 + ["de"] * 23 + ["ur"] * 11
    targets = np.concatenate(
        [
            rng.integers(0, 4, 200),
            [0] * 3 + [1] * 4 + [2] * 12 + [3] * 4,
            [1] * 6 + [3] * 5,
        ]
    )
    predictions = np.where(
        rng.random(len(targets)) < 0.6, targets, rng.integers(0, 4, len(targets))
    )
    predictions[200:203] = 3  # de: neutral always wrong
    stats = EmotionMetricStats(CLASSES)
    for start in range(0, len(targets), 32):  # batch by batch, as in the recipe
        rows = slice(start, start + 32)
        stats.append(
            [f"u{i}" for i in range(len(targets))][rows],
            predictions[rows],
            targets[rows],
            groups=langs[rows],
        )
    per_language = stats.uar_by_group()
    assert list(per_language) == ["de", "en", "ur"]
    langs = np.array(langs)
    for lang, value in per_language.items():
        rows = langs == lang
        y_true, y_pred = targets[rows], predictions[rows]
        present = np.isin(y_pred, np.unique(y_true))  # balanced_accuracy's classes
        expected = np.mean(
            [np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]
        )
        assert value == pytest.approx(expected)
        if present.all():
            assert value == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert stats.summarize("uar") == pytest.approx(
        balanced_accuracy_score(targets, predictions)
    )


# Per epoch: (pooled UAR, {language: UAR}). The pooled UAR follows the large
# language; the mean over languages peaks where the small ones do.
EPOCHS = {
    1: (0.60, {"en": 0.62, "zh": 0.61, "fr": 0.30, "ur": 0.25}),
    2: (0.75, {"en": 0.78, "zh": 0.76, "fr": 0.35, "ur": 0.30}),  # best pooled
    3: (0.70, {"en": 0.70, "zh": 0.70, "fr": 0.60, "ur": 0.55}),  # best mean
    4: (0.72, {"en": 0.74, "zh": 0.73, "fr": 0.45, "ur": 0.40}),
}


@pytest.mark.parametrize(
    "selection, best", [("pooled_uar", 2), ("mean_language_uar", 3)]
)
def test_selection_picks_the_epoch_of_its_criterion(tmp_path, selection, best):
    assert selection in SELECTION_CRITERIA
    checkpointer = Checkpointer(tmp_path)
    for epoch, (pooled, per_language) in EPOCHS.items():
        meta = validation_meta(pooled, per_language, epoch)
        checkpointer.save_and_keep_only(meta=meta, max_keys=[selection])
    chosen = checkpointer.find_checkpoint(max_key=selection)
    assert chosen.meta["epoch"] == best
    assert chosen.meta["uar_per_language"] == EPOCHS[best][1]
    assert chosen.meta["mean_language_uar"] == pytest.approx(
        np.mean(list(EPOCHS[best][1].values()))
    )
