"""Tests of the emotion metrics (zsser_modules/metrics.py) against scikit-learn."""

import io
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    recall_score,
)

from zsser_modules import EMOTIONS, EmotionMetricStats, macro_f1, uar


def _sklearn_reference(y_true, y_pred):
    present = np.unique(y_true)
    return {
        "uar": recall_score(y_true, y_pred, labels=present, average="macro"),
        "macro_f1": f1_score(
            y_true, y_pred, labels=present, average="macro", zero_division=0
        ),
    }


@pytest.mark.parametrize("seed", range(5))
def test_functions_match_sklearn_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n_classes = 4
    y_true = rng.integers(0, n_classes, size=50)
    y_pred = rng.integers(0, n_classes, size=50)
    ref = _sklearn_reference(y_true, y_pred)
    assert uar(y_true, y_pred, n_classes) == pytest.approx(ref["uar"])
    assert uar(y_true, y_pred, n_classes) == pytest.approx(
        balanced_accuracy_score(y_true, y_pred)
    )
    assert macro_f1(y_true, y_pred, n_classes) == pytest.approx(ref["macro_f1"])
    # With every class present, the label set is the full class list.
    if len(np.unique(y_true)) == n_classes:
        assert macro_f1(y_true, y_pred, n_classes) == pytest.approx(
            f1_score(y_true, y_pred, average="macro")
        )


def test_class_absent_from_targets_is_left_out_but_its_predictions_count():
    # Class 3 never occurs in the targets but is predicted once.
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 3, 1, 1, 2, 0])
    # Recalls: class 0 -> 1/2 (the "3" prediction is a miss), 1 -> 1, 2 -> 1/2.
    assert uar(y_true, y_pred, 4) == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert uar(y_true, y_pred, 4) == pytest.approx(
        _sklearn_reference(y_true, y_pred)["uar"]
    )
    assert macro_f1(y_true, y_pred, 4) == pytest.approx(
        _sklearn_reference(y_true, y_pred)["macro_f1"]
    )
    # The plain sklearn default (union of labels) would count class 3 as F1 = 0:
    assert macro_f1(y_true, y_pred, 4) > f1_score(y_true, y_pred, average="macro")


def test_inputs_as_tensors_scores_and_column_vectors():
    y_true = torch.tensor([0, 1, 2, 2])
    logits = torch.tensor(
        [[3.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 1.0, 0], [0, 5.0, 0, 0]]
    )
    expected = uar(y_true.numpy(), logits.argmax(-1).numpy(), 4)
    assert uar(y_true, logits, 4) == expected
    assert uar(y_true.unsqueeze(1), logits.unsqueeze(1), 4) == expected
    assert uar(y_true, torch.softmax(logits, -1), 4) == expected
    assert macro_f1(y_true.tolist(), logits.argmax(-1).tolist(), 4) == macro_f1(
        y_true, logits, 4
    )


def test_bfloat16_logits_from_mixed_precision():
    logits = torch.tensor([[0.1, 2.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0]])
    stats = EmotionMetricStats(EMOTIONS)
    stats.append(["a", "b"], logits.bfloat16(), torch.tensor([1, 2]))
    assert stats.summarize("confusion_matrix")[2] == [1, 0, 0, 0]
    assert uar(torch.tensor([1, 2]), logits.half(), 4) == 0.5


def test_functions_reject_bad_inputs():
    with pytest.raises(ValueError, match="outside"):
        uar([0, 4], [0, 1], 4)
    with pytest.raises(ValueError, match="one prediction per target"):
        uar([0, 1, 2], [0, 1], 4)
    with pytest.raises(ValueError, match="last dimension"):
        uar([0, 1], np.zeros((2, 3)), 4)
    with pytest.raises(ValueError, match="integer class indices"):
        macro_f1([0, 1], [0.5, 1.0], 4)
    with pytest.raises(ValueError, match="zero samples"):
        uar([], [], 4)
    with pytest.raises(ValueError, match="n_classes"):
        uar([0], [0], 0)


def test_stats_accumulate_batches_and_match_sklearn():
    rng = np.random.default_rng(7)
    stats = EmotionMetricStats(EMOTIONS)
    all_true, all_pred = [], []
    for batch in range(6):
        y_true = rng.integers(0, 4, size=8)
        scores = rng.normal(size=(8, 4))
        stats.append(
            [f"utt{batch}_{i}" for i in range(8)],
            torch.tensor(scores),
            torch.tensor(y_true),
        )
        all_true.append(y_true)
        all_pred.append(scores.argmax(axis=1))
    y_true, y_pred = np.concatenate(all_true), np.concatenate(all_pred)

    summary = stats.summarize()
    assert summary["n"] == 48
    assert summary["accuracy"] == pytest.approx(np.mean(y_true == y_pred))
    assert summary["uar"] == pytest.approx(
        recall_score(y_true, y_pred, average="macro")
    )
    assert summary["macro_f1"] == pytest.approx(
        f1_score(y_true, y_pred, average="macro")
    )
    recalls = recall_score(y_true, y_pred, labels=[0, 1, 2, 3], average=None)
    assert summary["per_class_recall"] == pytest.approx(dict(zip(EMOTIONS, recalls)))
    assert (
        summary["confusion_matrix"]
        == confusion_matrix(y_true, y_pred, labels=[0, 1, 2, 3]).tolist()
    )
    assert summary["classes"] == list(EMOTIONS)
    assert len(stats.ids) == 48
    assert stats.summarize("uar") == summary["uar"]


def test_stats_with_classes_absent_from_a_batch_and_entirely():
    stats = EmotionMetricStats(EMOTIONS)
    # "sad" (3) is never a target; "angry" (2) only in the second batch;
    # "sad" is predicted once.
    stats.append(["a", "b", "c"], torch.tensor([0, 1, 3]), torch.tensor([0, 1, 1]))
    stats.append(["d", "e"], torch.tensor([2, 0]), torch.tensor([2, 2]))
    summary = stats.summarize()
    y_true, y_pred = [0, 1, 1, 2, 2], [0, 1, 3, 2, 0]
    assert summary["uar"] == pytest.approx(_sklearn_reference(y_true, y_pred)["uar"])
    assert summary["uar"] == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert summary["macro_f1"] == pytest.approx(
        _sklearn_reference(y_true, y_pred)["macro_f1"]
    )
    assert summary["per_class_recall"] == {
        "neutral": 1.0,
        "happy": 0.5,
        "angry": 0.5,
        "sad": None,
    }
    assert summary["per_class_f1"]["sad"] is None
    # The confusion matrix keeps the fixed 4x4 layout, rows = true.
    assert summary["confusion_matrix"] == [
        [1, 0, 0, 0],
        [0, 1, 0, 1],
        [1, 0, 1, 0],
        [0, 0, 0, 0],
    ]


def test_summary_is_json_serialisable_plain_python():
    stats = EmotionMetricStats(EMOTIONS)
    stats.append(
        ["a", "b"], torch.tensor([[0.1, 0.9, 0.0, 0.0]] * 2), torch.tensor([[1], [3]])
    )
    summary = stats.summarize()
    assert json.loads(json.dumps(summary)) == summary
    assert type(summary["n"]) is int and type(summary["uar"]) is float
    assert all(type(v) is int for row in summary["confusion_matrix"] for v in row)


def test_stats_accept_class_names():
    stats = EmotionMetricStats(EMOTIONS)
    stats.append(["a", "b"], ["happy", "sad"], ["happy", "angry"])
    assert stats.summarize("confusion_matrix")[2] == [0, 0, 0, 1]
    with pytest.raises(ValueError, match="unknown classes"):
        stats.append(["c"], ["joy"], ["happy"])


def test_clear_resets_and_empty_summary_raises():
    stats = EmotionMetricStats(EMOTIONS)
    stats.append(["a"], torch.tensor([0]), torch.tensor([0]))
    stats.clear()
    assert stats.ids == [] and stats.summary == {}
    with pytest.raises(ValueError, match="no samples"):
        stats.summarize()


def test_stats_reject_bad_inputs():
    stats = EmotionMetricStats(EMOTIONS)
    with pytest.raises(ValueError, match="ids"):
        stats.append(["a"], torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="outside"):
        stats.append(["a"], torch.tensor([5]), torch.tensor([0]))
    stats.append(["a"], torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(KeyError, match="available"):
        stats.summarize("wer")
    with pytest.raises(ValueError, match="unique"):
        EmotionMetricStats(["happy", "happy"])


def test_write_stats_is_readable():
    stats = EmotionMetricStats(EMOTIONS)
    stats.append(["a", "b"], torch.tensor([0, 1]), torch.tensor([0, 2]))
    stream = io.StringIO()
    stats.write_stats(stream)
    text = stream.getvalue()
    assert "UAR: 0.5000" in text
    assert "sad" in text and "None" in text
    assert "rows: true" in text


@pytest.mark.parametrize("seed", range(40))
def test_numpy_metrics_equal_sklearn_exactly(seed):
    # metrics.py computes from the confusion matrix with numpy (the core
    # install has no scikit-learn): the values must be scikit-learn's, bit for
    # bit, including classes absent from the targets or never predicted.
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 7))
    size = int(rng.integers(1, 120))
    y_true = rng.integers(0, n_classes - int(seed % 3 == 0), size=size)
    y_pred = rng.integers(0, n_classes, size=size)
    present = np.unique(y_true)
    labels = list(range(n_classes))
    assert uar(y_true, y_pred, n_classes) == float(
        recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    )
    assert macro_f1(y_true, y_pred, n_classes) == float(
        f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    )
    stats = EmotionMetricStats([f"c{i}" for i in labels])
    stats.append(list(range(size)), torch.tensor(y_pred), torch.tensor(y_true))
    summary = stats.summarize()
    recalls = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    f1s = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    for i in labels:
        expected = (float(recalls[i]), float(f1s[i])) if i in present else (None, None)
        got = (summary["per_class_recall"][f"c{i}"], summary["per_class_f1"][f"c{i}"])
        assert got == expected
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    assert summary["confusion_matrix"] == matrix.tolist()
