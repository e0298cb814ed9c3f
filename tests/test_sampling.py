"""Training samplers (zsser_modules/sampling.py): natural and language-balanced.

Every sampler is seeded from the run's seed and reshuffled every epoch:
epochs differ, reruns (same seed, same epoch) are equal; balanced draws give
every language the same frequency, with fixed and dynamic batches, in one
process and under DDP.
"""

from collections import Counter

import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.sampler import DistributedSamplerWrapper
from torch.utils.data import DistributedSampler

from zsser_modules.sampling import (
    SeededSamplerMixin,
    WeightedDynamicBatchSampler,
    balancing_weights,
    train_loader_kwargs,
)

# Sizes shaped like the real corpora (ESD large, the others small).
SIZES = {"en": 400, "zh": 400, "fr": 40, "ur": 30}
LOADER = {"batch_size": 16, "shuffle": True, "num_workers": 0}
DYNAMIC = {"max_batch_length": 40, "num_buckets": 5, "shuffle": True}


def _dataset():
    data, i = {}, 0
    for lang, n in SIZES.items():
        for _ in range(n):
            # durations 1.0 .. 4.9 s, every language over the whole range
            data[f"u{i:04d}"] = {"lang": lang, "duration": 1.0 + (i * 7 % 40) / 10}
            i += 1
    dataset = DynamicItemDataset(data)
    dataset.set_output_keys(["id", "lang"])
    return dataset


class _Brain(SeededSamplerMixin, sb.Brain):
    pass


def _brain(seed):
    brain = _Brain(
        modules={"lin": torch.nn.Linear(1, 1)},
        hparams={"seed": seed},
        run_opts={"device": "cpu", "noprogressbar": True},
    )
    return brain


def _epochs(brain, dataset, kwargs, epochs=(1, 2)):
    """The ids of each epoch's batches, as Brain.fit's loop would draw them."""
    loader = brain.make_dataloader(dataset, sb.Stage.TRAIN, ckpt_prefix=None, **kwargs)
    out = []
    for epoch in epochs:
        brain.train_sampler.set_epoch(epoch)  # what Brain._fit_train does
        out.append([tuple(batch.id) for batch in loader])
    return out


def _kwargs(sampling, dynamic, seed):
    return train_loader_kwargs(
        _dataset(),
        sampling,
        seed,
        LOADER,
        dynamic_batching=dynamic,
        dynamic_options=DYNAMIC,
    )


@pytest.mark.parametrize("dynamic", [False, True], ids=["fixed", "dynamic"])
@pytest.mark.parametrize("sampling", ["natural", "balanced"])
def test_epochs_differ_and_reruns_are_equal(sampling, dynamic):
    dataset = _dataset()
    first = _epochs(_brain(7), dataset, _kwargs(sampling, dynamic, 7))
    again = _epochs(_brain(7), dataset, _kwargs(sampling, dynamic, 7))
    other_seed = _epochs(_brain(8), dataset, _kwargs(sampling, dynamic, 8))
    assert first[0] != first[1], "epoch 2 repeated epoch 1's batches"
    assert first == again, "a rerun with the same seed drew other batches"
    assert first != other_seed, "the seed does not change the batches"
    if sampling == "natural":  # every utterance exactly once per epoch
        for epoch in first:
            ids = [i for batch in epoch for i in batch]
            assert sorted(ids) == sorted(dataset.data_ids)


@pytest.mark.parametrize("dynamic", [False, True], ids=["fixed", "dynamic"])
def test_balanced_sampling_draws_every_language_equally_often(dynamic):
    dataset = _dataset()
    lang_of = {uid: dataset.data[uid]["lang"] for uid in dataset.data_ids}
    counts, natural = Counter(), Counter()
    epochs = range(1, 21)  # 20 epochs x 870 draws
    for sampling, counter in (("balanced", counts), ("natural", natural)):
        brain = _brain(3)
        for batches in _epochs(brain, dataset, _kwargs(sampling, dynamic, 3), epochs):
            counter.update(lang_of[i] for batch in batches for i in batch)
    total = sum(counts.values())
    assert total == len(epochs) * len(dataset)  # an epoch keeps its natural length
    for lang in SIZES:
        assert abs(counts[lang] / total - 0.25) < 0.02, (lang, counts)
    # natural sampling keeps the corpora's proportions
    assert natural["ur"] / sum(natural.values()) == pytest.approx(30 / 870)


def test_dynamic_batches_respect_the_length_cap():
    sampler = _kwargs("balanced", True, 1)["batch_sampler"]
    assert isinstance(sampler, WeightedDynamicBatchSampler)
    for batch in sampler:
        lengths = sampler.get_durations(batch)
        assert len(batch) == 1 or max(lengths) * len(batch) <= 40 + 1e-9


def test_sorted_data_cannot_be_balanced():
    with pytest.raises(ValueError, match="--sorting=random"):
        train_loader_kwargs(
            _dataset(), "balanced", 1, {"batch_size": 4, "shuffle": False}
        )
    with pytest.raises(
        ValueError, match="language_sampling must be natural or balanced"
    ):
        train_loader_kwargs(_dataset(), "uniform", 1, LOADER)


@pytest.fixture
def one_process_group(tmp_path):
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    yield
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize(
    "sampling, dynamic",
    [("natural", False), ("balanced", False), ("natural", True), ("balanced", True)],
    ids=["natural-fixed", "balanced-fixed", "natural-dynamic", "balanced-dynamic"],
)
def test_ddp_samplers_follow_the_seed(one_process_group, sampling, dynamic):
    dataset = _dataset()
    runs = {}
    for key, seed in (("a", 5), ("b", 5), ("c", 6)):
        brain = _brain(seed)
        brain.distributed_launch, brain.rank = True, 0  # as under torchrun
        runs[key] = _epochs(brain, dataset, _kwargs(sampling, dynamic, seed))
        assert isinstance(brain.train_sampler, DistributedSampler)
        assert brain.train_sampler.seed == seed
        if not dynamic:  # SpeechBrain wraps our seeded sampler
            assert isinstance(brain.train_sampler, DistributedSamplerWrapper)
    assert runs["a"] == runs["b"] and runs["a"] != runs["c"]
    assert runs["a"][0] != runs["a"][1]


def test_ddp_default_sampler_gets_the_seed(one_process_group):
    """Without a sampler of ours (sorted data), SpeechBrain's own gets the seed."""
    brain = _brain(11)
    brain.distributed_launch, brain.rank = True, 0
    brain.make_dataloader(
        _dataset(), sb.Stage.TRAIN, ckpt_prefix=None, batch_size=4, shuffle=False
    )
    assert type(brain.train_sampler) is DistributedSampler
    assert brain.train_sampler.seed == 11


def test_balanced_dynamic_batches_keep_their_number_under_ddp():
    """Skewed durations make the weighted draw fill the buckets differently in
    every epoch; the number of batches stays that of the first epoch, so each
    of two DDP processes gets the same share in every epoch."""
    data, i = {}, 0
    for lang, n in SIZES.items():
        for k in range(n):  # the small languages hold only long clips
            long = lang != max(SIZES, key=SIZES.get)
            data[f"u{i:04d}"] = {"lang": lang, "duration": 8.0 if long else 0.5 + k % 3}
            i += 1
    dataset = DynamicItemDataset(data)
    weights = balancing_weights([row["lang"] for row in data.values()])
    sampler = WeightedDynamicBatchSampler(
        dataset, weights, max_batch_length=16, num_buckets=4, seed=3
    )
    counts = []
    for epoch in range(6):
        sampler.set_epoch(epoch)
        counts.append(len(list(iter(sampler))))
    assert set(counts) == {len(sampler)}
    shares = []
    for rank in (0, 1):
        wrapper = DistributedSamplerWrapper(sampler, num_replicas=2, rank=rank)
        for epoch in range(6):
            wrapper.set_epoch(epoch)
            shares.append(len(list(iter(wrapper))))
    assert len(set(shares)) == 1
