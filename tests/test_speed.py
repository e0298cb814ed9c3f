"""Speed features of the recipe: feature cache, dynamic batching, bf16.

- Training on cached SSL features gives the same model as encoding the audio
  live at every step (and the live SSL model stays frozen).
- Dynamic batches respect max_batch_length and cover the epoch once.
- A --precision=bf16 run (SupCon + adversary) finishes with finite losses.

Speed figures themselves: tests/benchmarks/run_benchmarks.py (no timing here).
"""

import math
import re

import numpy as np
import pytest
import soundfile as sf
import speechbrain as sb
import torch
from recipe_utils import load_hparams, recipe_args, run_recipe, session_fixture
from speechbrain.utils.epoch_loop import EpochCounter

from recipes import train
from zsser_modules.encoders import SSLLayerPooling
from zsser_modules.inference import spec_only
from zsser_modules.run import data as run_data
from zsser_modules.run import features as run_features
from zsser_modules.run import variants

pytestmark = pytest.mark.slow

TRAINABLE = ("layer_sum", "embedding", "emo_classifier", "projection", "spk_adversary")


def recipe_hparams(tmp_path_factory, results, *extra):
    fixture = session_fixture(tmp_path_factory)
    return load_hparams(
        recipe_args("en_de", fixture, results, "--languages=[en,zh,de]", *extra)
    )


def build_brain(hparams):
    """Data, modules (cache filled if in use) and Brain, as main() builds them."""
    manifests, _ = run_data.prepare_data(hparams["data_options"])
    datasets, speakers = train.dataio_prep(hparams, manifests)
    hparams["loss_weights"] = variants.loss_weights(
        hparams["variant"], hparams["aux_loss_weights"]
    )
    modules = train.build_modules(hparams, n_speakers=len(speakers))
    hparams["encoder_is_cached"] = hparams["use_feature_cache"]
    run_opts = {"device": "cpu", "noprogressbar": True}
    if hparams["encoder_is_cached"]:
        counts = run_features.cache_encoder_features(
            hparams, hparams["feature_options"], modules["ssl"], datasets, run_opts
        )
        assert counts["computed"] + counts["reused"] == sum(map(len, datasets.values()))
        modules["ssl"] = spec_only(modules["ssl"])
    brain = train.ZeroShotSER(
        modules=modules,
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        selection=hparams["selection_options"],
    )
    return brain, datasets


def test_cached_features_train_the_same_model_as_live_encoding(tmp_path_factory):
    """One epoch on the same batches (same init, same dropout draws): the loss
    terms and the trained weights agree within float rounding (the cache is
    filled with other batch compositions than training: up to about 4e-7 on
    the features; measured 5.8e-7 on the weights after one epoch)."""
    results = tmp_path_factory.mktemp("cache_vs_live")
    trained = {}
    for use_cache in (False, True):
        hparams = recipe_hparams(
            tmp_path_factory,
            results,
            f"--use_feature_cache={use_cache}",
            "--sorting=ascending",  # same batches in both runs
            "--feature_cache_batch_size=3",
        )
        brain, datasets = build_brain(hparams)
        if not use_cache:
            initial = {k: v.clone() for k, v in brain.modules.state_dict().items()}
            ssl_before = {
                k: v.clone() for k, v in brain.modules["ssl"].state_dict().items()
            }
        else:  # start from the very same weights
            brain.modules.load_state_dict(
                {k: v for k, v in initial.items() if not k.startswith("ssl.")}
            )
        keys = datasets["train"].pipeline.output_mapping
        assert ("encoder_feats" in keys) == use_cache and ("sig" in keys) != use_cache
        torch.manual_seed(0)  # same dropout draws in the adversary
        brain.fit(
            EpochCounter(1),  # an epoch limit: the reversal coefficient's schedule
            datasets["train"],
            train_loader_kwargs=hparams["train_dataloader_options"],
        )
        trained[use_cache] = (brain.train_stats, brain.modules.state_dict())
        if not use_cache:  # the live SSL model stayed frozen
            for name, value in brain.modules["ssl"].state_dict().items():
                assert torch.equal(value, ssl_before[name]), name
            assert not any(p.requires_grad for p in brain.modules["ssl"].parameters())

    (live_stats, live), (cached_stats, cached) = trained[False], trained[True]
    assert set(live_stats) == {"loss", "ce", "supcon", "spk_adv"}
    for term, value in live_stats.items():
        assert cached_stats[term] == pytest.approx(value, abs=1e-5), term
    for name, value in cached.items():
        assert torch.allclose(live[name], value, atol=1e-5), name
        if name.split(".")[0] in TRAINABLE and value.is_floating_point():
            changed = (value - initial[name]).abs().max()
            assert name.endswith("num_batches_tracked") or changed > 0, name


def test_feature_cache_is_shared_across_runs(tmp_path_factory):
    """A run with another seed (and a separately loaded model) computes nothing."""
    results = tmp_path_factory.mktemp("cache_reuse")
    first = recipe_hparams(tmp_path_factory, results)
    build_brain(first)
    second = recipe_hparams(tmp_path_factory, results, "--seed=7")
    manifests, _ = run_data.prepare_data(second["data_options"])
    datasets, _ = train.dataio_prep(second, manifests)
    ssl = SSLLayerPooling(
        second["ssl_source"], save_path=str(results / "hf"), freeze=True
    )
    counts = run_features.cache_encoder_features(
        second, second["feature_options"], ssl, datasets, {"noprogressbar": True}
    )
    assert counts["computed"] == 0 and counts["reused"] > 0


def write_varied_corpus(folder, durations):
    """A manifest of utterances with the given durations (seconds)."""
    rows = ["ID,duration,wav,emo,spk_id,lang,corpus,spk_confounded"]
    for i, seconds in enumerate(durations):
        wav = folder / f"u{i}.wav"
        sf.write(wav, np.zeros(int(seconds * 16000), dtype="float32"), 16000)
        emo = ("neutral", "happy", "angry", "sad")[i % 4]
        rows.append(f"u{i},{seconds:.3f},{wav},{emo},demo_s{i % 3},en,demo,0")
    csv = folder / "train.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def test_dynamic_batches_respect_max_batch_length(tmp_path_factory, tmp_path):
    rng = np.random.default_rng(0)
    durations = rng.uniform(0.2, 3.0, size=60).round(3)
    csv = write_varied_corpus(tmp_path, durations)
    hparams = recipe_hparams(
        tmp_path_factory,
        tmp_path / "results",
        "--dynamic_batching=True",
        "--batch_sampler=random",  # hierarchical batches are not dynamic
        "--dynamic_batch_sampler={max_batch_length: 6.0, num_buckets: 5, "
        "shuffle: True, batch_ordering: random}",
    )
    dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(csv)
    options = run_data.train_loader_options(
        hparams, hparams["train_sampler_options"], dataset
    )
    sampler = options["batch_sampler"]
    for epoch in (1, 2):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        seen = sorted(i for batch in batches for i in batch)
        assert seen == list(range(len(durations)))  # each utterance once
        for batch in batches:
            padded = len(batch) * max(durations[i] for i in batch)
            assert padded <= 6.0 + 1e-6, (batch, padded)
        assert len(batches) < len(durations) / 1.5  # batches of several items
    # The sampler is seeded with the run's seed (not SpeechBrain's fixed 42).
    other = recipe_hparams(
        tmp_path_factory, tmp_path / "r2", "--seed=5", "--batch_sampler=random"
    )
    other["dynamic_batching"] = True
    other["train_sampler_options"]["dynamic_batching"] = True  # the group restates it
    other_sampler = run_data.train_loader_options(
        other, other["train_sampler_options"], dataset
    )["batch_sampler"]
    sampler.set_epoch(1)
    other_sampler.set_epoch(1)
    assert list(other_sampler) != list(sampler)


def epoch_stats(log_text):
    """The numbers of the 'train' fields of each epoch line of train_log.txt."""
    stats = []
    for line in re.findall(r"^epoch: \d+.*$", log_text, flags=re.M):
        fields = re.findall(r"train (\w+): ([^,\s]+)", line)
        stats.append({name: float(value) for name, value in fields})
    return stats


def test_bf16_run_with_dynamic_batches_has_finite_losses(tmp_path_factory, tmp_path):
    """--precision=bf16 end to end (fbank, SupCon + adversary, dynamic batches)."""
    fixture = session_fixture(tmp_path_factory)
    args = recipe_args(
        "en_de",
        fixture,
        tmp_path,
        "--encoder=fbank",
        "--languages=[en,zh,de]",
        "--precision=bf16",
        "--number_of_epochs=2",
        "--debug",
        "--debug_epochs=2",
        "--dynamic_batching=True",
        "--batch_sampler=random",  # hierarchical batches are not dynamic
        "--dynamic_batch_sampler={max_batch_length: 2.5, num_buckets: 2, "
        "shuffle: True, batch_ordering: random}",
    )
    brain = run_recipe(args)
    assert brain.precision == "bf16"
    log = (tmp_path / "en_de/fbank/proposed/1234/train_log.txt").read_text()
    stats = epoch_stats(log)
    assert len(stats) == 2
    for epoch in stats:
        assert {"loss", "ce", "supcon", "spk_adv"} <= set(epoch)
        assert all(math.isfinite(value) for value in epoch.values()), epoch
    assert brain.nonfinite_count == 0
