"""Why three pieces are home-made, pinned against SpeechBrain's (docs/toolkit_reuse.md).

Each test states one measured difference between a SpeechBrain 1.1.2 piece
and ours. If a SpeechBrain release closes a difference, its test fails: the
reason in docs/toolkit_reuse.md is then stale, and the toolkit's piece may
replace ours. The numbers quoted in the document come from
``tests/benchmarks/toolkit_reuse.py``.
"""

import os
import random
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from speechbrain.utils.checkpoints import DEFAULT_SAVE_HOOKS, Checkpointer
from speechbrain.utils.metric_stats import ClassificationStats
from speechbrain.utils.repro import SaveableGenerator

from zsser_modules.checkpoints import AtomicCheckpointer, RandomState
from zsser_modules.metrics import EmotionMetricStats

Y_TRUE, Y_PRED = [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 1, 0]


# ------------------------------------------------ metrics: ClassificationStats


def test_classification_stats_ratios_are_float32_ours_are_exact():
    stats = ClassificationStats()
    stats.append(list("abcdef"), Y_PRED, Y_TRUE)
    recall = stats.summarize("classwise_accuracy")[0]
    assert recall != 1 / 3 and recall == pytest.approx(1 / 3, abs=1e-7)
    ours = EmotionMetricStats(["a", "b", "c"])
    ours.append(list("abcdef"), Y_PRED, Y_TRUE)
    assert ours.summarize("per_class_recall")["a"] == 1 / 3
    uar_from_toolkit = float(
        np.mean(list(stats.summary["classwise_accuracy"].values()))
    )
    assert ours.summarize("uar") == 4 / 9 != uar_from_toolkit


def test_classification_stats_takes_tensor_items_for_distinct_classes():
    """A Brain's predictions are tensors: each 0-d tensor becomes its own class."""
    stats = ClassificationStats()
    stats.append(list("abcdef"), torch.tensor(Y_PRED), torch.tensor(Y_TRUE))
    summary = stats.summarize()
    assert len(summary["keys"]) == 6  # 3 classes
    assert set(summary["classwise_accuracy"].values()) == {0.0}  # 4 of 6 correct
    ours = EmotionMetricStats(["a", "b", "c"])
    ours.append(list("abcdef"), torch.tensor(Y_PRED), torch.tensor(Y_TRUE))
    assert ours.summarize("per_class_recall") == {"a": 1 / 3, "b": 1.0, "c": 0.0}


def test_classification_stats_silently_drops_samples_without_a_category():
    stats = ClassificationStats()
    stats.append(["a", "b"], [0, 1], [0, 1], categories=["en", "de"])
    stats.append(["c"], [1], [0])  # a batch without categories: no error
    summary = stats.summarize()
    assert sum(summary["classwise_total"].values()) == 2  # of 3 samples
    ours = EmotionMetricStats(["a", "b"])
    ours.append(["a", "b"], [0, 1], [0, 1], groups=["en", "de"])
    ours.append(["c"], [1], [0])
    assert ours.summarize("n") == 3 and ours.uar_by_group() == {"de": 1.0, "en": 1.0}


def test_classification_stats_has_no_uar_f1_fixed_layout_or_json():
    stats = ClassificationStats()
    stats.append(["a"], [3], [0])
    summary = stats.summarize()
    assert not {"uar", "macro_f1"} & set(summary)
    assert summary["confusion_matrix"].shape == (1, 1)  # classes seen only
    assert isinstance(summary["confusion_matrix"], torch.Tensor)
    ours = EmotionMetricStats(["a", "b", "c", "d"])
    ours.append(["a"], [3], [0])
    assert ours.summarize("confusion_matrix")[0] == [0, 0, 0, 1]


# ------------------------------------------------- checkpoints: Checkpointer

KILLED_SAVE = """
import os, signal, sys, torch
from speechbrain.utils.checkpoints import Checkpointer
from zsser_modules.checkpoints import AtomicCheckpointer
cls = AtomicCheckpointer if sys.argv[2] == "atomic" else Checkpointer
ckpt = cls(sys.argv[1], {"model": torch.nn.Linear(2, 2),
                         "optimizer": torch.nn.Linear(2, 2)})
ckpt.save_checkpoint(meta={"epoch": 1})
ckpt.custom_save_hooks["optimizer"] = lambda obj, path: os.kill(os.getpid(), 9)
ckpt.save_checkpoint(meta={"epoch": 2})
"""


def killed_in_second_save(folder, kind):
    """Save epoch 1, then SIGKILL the process inside the save of epoch 2."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-c", KILLED_SAVE, str(folder), kind], env=env, check=False
    )
    assert done.returncode == -signal.SIGKILL
    cls = AtomicCheckpointer if kind == "atomic" else Checkpointer
    return cls(
        folder, {"model": torch.nn.Linear(2, 2), "optimizer": torch.nn.Linear(2, 2)}
    )


@pytest.mark.slow
def test_speechbrain_checkpointer_killed_mid_save_leaves_a_broken_newest(tmp_path):
    ckpt = killed_in_second_save(tmp_path / "save", "speechbrain")
    newest = ckpt.find_checkpoint()
    assert newest.meta["epoch"] == 2  # CKPT.yaml was written first
    assert sorted(newest.paramfiles) == ["model"]
    with pytest.raises(KeyError, match="optimizer"):
        ckpt.recover_if_possible()


@pytest.mark.slow
def test_atomic_checkpointer_killed_mid_save_resumes_from_the_last_whole_one(tmp_path):
    ckpt = killed_in_second_save(tmp_path / "save", "atomic")
    assert [c.meta["epoch"] for c in ckpt.find_checkpoints()] == [1]
    assert ckpt.recover_if_possible().meta["epoch"] == 1
    assert not list((tmp_path / "save").glob(".partial-*"))


# --------------------------------------------- random state: SaveableGenerator


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_saveable_generator_restores_torch_only_and_saves_on_the_main_process(tmp_path):
    for name, obj, restored in (
        ("sb", SaveableGenerator(), [False, False, True]),
        ("ours", RandomState(), [True, True, True]),
    ):
        ckpt = Checkpointer(tmp_path / name, {"rng": obj})
        ckpt.save_checkpoint()
        first = draws()
        ckpt.recover_if_possible()
        assert [a == b for a, b in zip(first, draws())] == restored
    # main_process_only wraps the saver: under DDP rank r loads rank 0's state
    assert DEFAULT_SAVE_HOOKS[SaveableGenerator] is not SaveableGenerator.save
    assert DEFAULT_SAVE_HOOKS[RandomState] is RandomState.__dict__["save"]


def test_a_new_loader_iterator_draws_from_torch_s_generator():
    """Why RandomState.restore_loaded exists (resume within an epoch)."""
    loader = torch.utils.data.DataLoader(list(range(8)), batch_size=2, shuffle=True)
    state = torch.get_rng_state()
    iter(loader)
    assert not torch.equal(state, torch.get_rng_state())
    assert not hasattr(SaveableGenerator, "restore_loaded")


# ------------------------------------------------ encoders: WeightedSSLModel


def test_statistics_pooling_adds_noise_to_the_mean_masked_mean_does_not():
    from speechbrain.nnet.pooling import StatisticsPooling

    from zsser_modules.encoders import masked_mean

    x = torch.randn(2, 50, 8, generator=torch.Generator().manual_seed(0))
    lens = torch.tensor([0.6, 1.0])
    pool = StatisticsPooling(return_std=False).eval()
    assert not torch.equal(pool(x, lens), pool(x, lens))  # not cacheable
    assert torch.equal(masked_mean(x, lens), masked_mean(x, lens))
    assert torch.allclose(pool(x, lens)[:, 0], masked_mean(x, lens), atol=1e-3)


@pytest.fixture(scope="module")
def padded_pair():
    gen = torch.Generator().manual_seed(0)
    short = 0.1 * torch.randn(1, 8000, generator=gen)
    batch = torch.zeros(2, 24000)
    batch[0, :8000], batch[1] = short[0], 0.1 * torch.randn(24000, generator=gen)
    return short, batch, torch.tensor([1 / 3, 1.0])


@pytest.mark.slow
def test_weighted_ssl_model_leaks_padding_and_drops_out_when_frozen(
    tmp_path, padded_pair
):
    pytest.importorskip("transformers")
    from encoder_utils import make_tiny_ssl
    from speechbrain.integrations.huggingface.weighted_ssl import WeightedSSLModel

    from zsser_modules.encoders import SSLLayerPooling, WeightedLayerSum, masked_mean

    short, batch, lens = padded_pair
    folder = make_tiny_ssl(tmp_path / "wavlm")
    sb = WeightedSSLModel(str(folder), save_path=str(tmp_path / "hf"), freeze=True)
    sb.model.config.layerdrop = 0.0
    frames = int(sb.model._get_feat_extract_output_lengths(torch.tensor(8000)))
    with torch.no_grad():
        alone = sb(short).mean(1)[0]
        out = sb(batch, lens)  # frames [B, T, D]: wav_lens is not used
        padded = masked_mean(out, torch.tensor([frames, frames]))[0]
    assert (padded - alone).abs().max() > 1e-2
    ours = SSLLayerPooling(str(folder), save_path=str(tmp_path / "hf"))
    pool = WeightedLayerSum(ours.num_layers)
    with torch.no_grad():
        assert torch.allclose(
            pool(ours(short))[0], pool(ours(batch, lens))[0], atol=1e-5, rtol=0
        )
    sb.train()  # Brain.fit calls .train() on every module
    assert sb.model.training
    with torch.no_grad():
        assert not torch.equal(sb(short), sb(short))  # dropout in a frozen model


@pytest.mark.slow
def test_speechbrain_whisper_pads_to_30_s_and_normalises_over_the_batch(
    tmp_path, padded_pair
):
    pytest.importorskip("transformers")
    from encoder_utils import make_tiny_whisper
    from speechbrain.integrations.huggingface.weighted_ssl import WeightedSSLModel
    from speechbrain.integrations.huggingface.whisper import Whisper

    from zsser_modules.encoders import WhisperLayerPooling

    folder = str(make_tiny_whisper(tmp_path / "whisper"))
    short, batch, lens = padded_pair
    with pytest.raises(ValueError, match="3000"):
        WeightedSSLModel(folder, save_path=str(tmp_path / "hf"), freeze=True)(short)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sb = Whisper(
            folder,
            str(tmp_path / "hf"),
            encoder_only=True,
            freeze=True,
            output_all_hiddens=True,
        )
    loud = batch.clone()
    loud[1] *= 100.0
    with torch.no_grad():
        assert sb(short).shape[2] == 1500  # 30 s of frames for 0.5 s
        # the log-mel floor (max - 8) is taken over the whole batch
        assert (sb._get_mel(loud)[0] - sb._get_mel(batch)[0]).abs().max() > 0.5
    ours = WhisperLayerPooling(folder, str(tmp_path / "hf"))
    with torch.no_grad():
        assert torch.equal(ours(batch, lens)[0], ours(loud, lens)[0])
