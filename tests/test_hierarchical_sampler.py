"""The paper's hierarchical cross-lingual batches (zsser_modules.hierarchical_sampler).

Batch composition (N_lang x N_cls x N_sam), cross-lingual positives,
determinism, per-epoch reshuffle, resume through SpeechBrain's
SaveableDataLoader, DDP shares (simulated ranks and a real 2-process gloo
run through a Brain), small cells, languages missing an emotion and the
errors; the wiring in zsser_modules.sampling and recipes/train.py.
"""

import os
import re
from collections import Counter

import pytest
import speechbrain as sb
import torch
from conftest import REPO_ROOT
from speechbrain.dataio.dataloader import SaveableDataLoader
from speechbrain.dataio.dataset import DynamicItemDataset

from recipes import train
from zsser_modules.data_prep.zero_shot import VARIANTS
from zsser_modules.hierarchical_sampler import (
    HierarchicalBatchSampler,
    HierarchicalSamplerError,
)
from zsser_modules.run import variants
from zsser_modules.sampling import SeededSamplerMixin, train_loader_kwargs

EMOTIONS = ("neu", "hap", "ang", "sad")


def corpus(sizes):
    """Languages and labels with ``sizes[lang][emo]`` utterances, interleaved."""
    langs, emos = [], []
    for lang, per_emotion in sizes.items():
        for emo, n in per_emotion.items():
            langs += [lang] * n
            emos += [emo] * n
    return langs, emos


# Shaped like a paper training set: a large ESD language, MELD-like English
# with a small sad cell, small EmoDB/URDU-like languages.
SIZES = {
    "zh": dict.fromkeys(EMOTIONS, 60),
    "en": {"neu": 80, "hap": 30, "ang": 20, "sad": 2},
    "fr": dict.fromkeys(EMOTIONS, 10),
    "ur": {"neu": 7, "hap": 5, "ang": 6, "sad": 4},
}
LANGS, EMOS = corpus(SIZES)


def sampler(**kwargs):
    return HierarchicalBatchSampler(LANGS, EMOS, **{"seed": 7, **kwargs})


def cells_of(batch):
    return Counter((LANGS[i], EMOS[i]) for i in batch)


def test_every_batch_is_3_languages_x_4_emotions_x_3_utterances():
    batches = list(sampler())
    assert len(batches) == -(-len(LANGS) // 36)  # ceil(N / 36)
    for batch in batches:
        cells = cells_of(batch)
        assert len(batch) == 36 and len(cells) == 12
        assert set(cells.values()) == {3}
        assert len({lang for lang, _ in cells}) == 3
        assert len({emo for _, emo in cells}) == 4
    # Languages are drawn uniformly, whatever their size.
    counts = Counter(lang for b in sampler(num_batches=400) for lang, _ in cells_of(b))
    assert all(abs(n / 400 / 4 - 0.75) < 0.08 for n in counts.values()), counts


def test_every_anchor_has_a_same_emotion_positive_in_another_language():
    for batch in sampler(num_batches=50):
        for anchor in batch:
            positives = [
                i
                for i in batch
                if EMOS[i] == EMOS[anchor] and LANGS[i] != LANGS[anchor]
            ]
            assert len(positives) == 6  # n_sam x (n_lang - 1)


def test_deterministic_given_seed_and_epoch_reshuffled_every_epoch():
    first, again = sampler(), sampler()
    assert list(first) == list(again)
    assert list(first) != list(sampler(seed=8))
    epoch0 = list(first)
    first.set_epoch(1)
    epoch1 = list(first)
    assert epoch1 != epoch0
    # An epoch is a function of (seed, epoch) alone: order of calls is irrelevant.
    fresh = sampler()
    fresh.set_epoch(1)
    assert list(fresh) == epoch1
    first.set_epoch(0)
    assert list(first) == epoch0
    assert sampler(epoch=1).global_batches() == epoch1


def test_epoch_length_is_a_parameter():
    assert len(sampler()) == -(-len(LANGS) // 36)
    assert len(sampler(num_batches=5)) == 5
    assert len(sampler(n_sam=2)) == -(-len(LANGS) // 24)


def test_small_cells_cycle_and_repeat_within_a_batch_only_below_n_sam():
    batches = sampler(num_batches=300).global_batches()
    draws = {cell: [] for cell in {(lang, emo) for lang, emo in zip(LANGS, EMOS)}}
    for batch in batches:
        for i in batch:
            draws[(LANGS[i], EMOS[i])].append(i)
        for cell, n in cells_of(batch).items():
            picked = [i for i in batch if (LANGS[i], EMOS[i]) == cell]
            size = SIZES[cell[0]][cell[1]]
            if size >= 3:  # never a repeat within a batch
                assert len(set(picked)) == n
            else:  # the 2-utterance sad cell of en: both, one twice
                assert len(set(picked)) == size
    # Each cell is walked in cycles: every utterance once before any repeat.
    for (lang, emo), drawn in draws.items():
        size = SIZES[lang][emo]
        members = {i for i, key in enumerate(zip(LANGS, EMOS)) if key == (lang, emo)}
        for start in range(0, len(drawn) - size + 1, size):
            assert set(drawn[start : start + size]) == members, (lang, emo)


def test_a_language_missing_an_emotion_is_drawn_with_the_emotions_it_has():
    sizes = {**SIZES, "ur": {"neu": 7, "hap": 5, "ang": 6}}  # no sad
    langs, emos = corpus(sizes)
    three = HierarchicalBatchSampler(langs, emos, n_cls=3, seed=1, num_batches=200)
    with_ur = 0
    for batch in three:
        cells = Counter((langs[i], emos[i]) for i in batch)
        assert len(batch) == 27 and set(cells.values()) == {3} and len(cells) == 9
        if any(lang == "ur" for lang, _ in cells):
            with_ur += 1
            assert all(emo != "sad" for _, emo in cells)
    assert with_ur > 50
    # With 4 emotions per batch, ur could never be drawn: refused.
    with pytest.raises(HierarchicalSamplerError) as error:
        HierarchicalBatchSampler(langs, emos, n_cls=4)
    message = str(error.value)
    assert "\n" not in message and "would never draw language ur" in message
    assert "--hier_n_cls" in message and "--batch_sampler=random" in message


def test_too_few_languages_and_bad_arguments_are_one_clear_line():
    langs, emos = corpus({"en": SIZES["en"], "de": SIZES["fr"]})
    with pytest.raises(HierarchicalSamplerError) as error:
        HierarchicalBatchSampler(langs, emos)
    assert str(error.value) == (
        "hierarchical batches need n_lang=3 languages with at least n_cls=4 "
        "emotions each, the training set has 2 (de, en): lower n_lang "
        "(--hier_n_lang=2) or use random batches (--batch_sampler=random)."
    )
    assert len(list(HierarchicalBatchSampler(langs, emos, n_lang=2))) == -(
        -len(langs) // 24
    )
    for kwargs, expected in (
        ({"n_sam": 0}, "n_sam must be a positive integer, got 0"),
        ({"num_batches": 0}, "num_batches must be a positive integer"),
        ({"rank": 2, "world_size": 2}, "rank must be in [0, world_size)"),
    ):
        with pytest.raises(HierarchicalSamplerError, match=re.escape(expected)):
            sampler(**kwargs)
    with pytest.raises(HierarchicalSamplerError, match="got 3 languages and 2"):
        HierarchicalBatchSampler(["en"] * 3, ["neu"] * 2)
    with pytest.raises(HierarchicalSamplerError, match="no column 'emotion'"):
        HierarchicalBatchSampler.from_dataset(dataset(), label_key="emotion")


@pytest.mark.parametrize("world_size", [2, 3])
def test_ddp_shares_are_disjoint_equal_and_make_the_global_sequence(world_size):
    shares = [
        sampler(rank=rank, world_size=world_size, num_batches=10)
        for rank in range(world_size)
    ]
    global_batches = shares[0].global_batches()
    assert len(global_batches) == world_size * -(-10 // world_size)  # rounded up
    assert all(s.global_batches() == global_batches for s in shares)
    lists = [list(share) for share in shares]
    assert len({len(batches) for batches in lists}) == 1
    assert all(len(share) == len(lists[0]) for share in shares)
    # Interleaved, the shares are the global sequence, each batch drawn once.
    merged = [
        lists[step % world_size][step // world_size]
        for step in range(len(global_batches))
    ]
    assert merged == global_batches
    # Every process gets full 3 x 4 x 3 batches.
    assert all(set(cells_of(b).values()) == {3} for share in lists for b in share)


def dataset():
    data = {
        f"u{i:04d}": {"lang": lang, "emo": emo, "x": float(i)}
        for i, (lang, emo) in enumerate(zip(LANGS, EMOS))
    }
    ds = DynamicItemDataset(data)
    ds.set_output_keys(["id", "x"])
    return ds


def test_resume_skips_the_consumed_batches_of_the_same_draw(tmp_path):
    """A SaveableDataLoader saved after k batches resumes with batch k + 1."""
    train_set = dataset()
    hierarchical = HierarchicalBatchSampler.from_dataset(train_set, seed=3)
    hierarchical.set_epoch(2)
    loader = SaveableDataLoader(train_set, batch_sampler=hierarchical)
    epoch = [batch["id"] for batch in loader]
    iterator = iter(loader)
    for _ in range(3):
        next(iterator)
    loader._speechbrain_save(tmp_path / "loader.ckpt")

    # A new process: a new sampler (same seed), the loader's recovery, set_epoch.
    again = HierarchicalBatchSampler.from_dataset(train_set, seed=3)
    resumed = SaveableDataLoader(train_set, batch_sampler=again)
    resumed._speechbrain_load(tmp_path / "loader.ckpt", end_of_epoch=False)
    again.set_epoch(2)
    assert [batch["id"] for batch in resumed] == epoch[3:]
    assert [batch["id"] for batch in resumed] == epoch  # the next pass: whole


class Recorder(SeededSamplerMixin, sb.Brain):
    """A Brain that records the IDs of its training batches."""

    def compute_forward(self, batch, stage):
        self.seen.setdefault(self.hparams.epoch_counter.current, []).append(
            list(batch.id)
        )
        return self.modules.lin(torch.ones(len(batch.id), 1))

    def compute_objectives(self, predictions, batch, stage):
        return predictions.pow(2).mean()


def recorder(seed=5):
    brain = Recorder(
        modules={"lin": torch.nn.Linear(1, 1)},
        opt_class=lambda params: torch.optim.SGD(params, lr=0.0),
        hparams={
            "seed": seed,
            "epoch_counter": sb.utils.epoch_loop.EpochCounter(limit=2),
        },
        run_opts={"device": "cpu", "noprogressbar": True},
    )
    brain.seen = {}
    return brain


def test_a_brain_reshuffles_it_every_epoch_through_the_mixin():
    train_set = dataset()
    options = train_loader_kwargs(
        train_set,
        "natural",
        5,
        {"batch_size": 36, "shuffle": True},
        batch_sampler="hierarchical",
    )
    brain = recorder()
    brain.fit(brain.hparams.epoch_counter, train_set, train_loader_kwargs=options)
    assert brain.train_sampler is options["batch_sampler"]
    ids = {data_id: n for n, data_id in enumerate(train_set.data_ids)}
    for epoch in (1, 2):
        expected = options["batch_sampler"].global_batches(epoch)
        assert [[ids[i] for i in b] for b in brain.seen[epoch]] == expected
    assert brain.seen[1] != brain.seen[2]


def test_hierarchical_batches_are_not_dynamic_batches():
    with pytest.raises(ValueError) as error:
        train_loader_kwargs(
            dataset(),
            "natural",
            1,
            {"batch_size": 36},
            dynamic_batching=True,
            batch_sampler="hierarchical",
        )
    assert "--dynamic_batching=False" in str(error.value)
    with pytest.raises(ValueError, match="batch_sampler must be random or hier"):
        train_loader_kwargs(dataset(), "natural", 1, {}, batch_sampler="auto")


def test_the_recipe_picks_the_batches_per_variant():
    assert variants.VARIANT_BATCH_SAMPLER == {
        "baseline1": "random",
        "baseline2": "random",
        "baseline2_hier": "hierarchical",
        "upper_bound": "random",
        "no_supcon": "hierarchical",
        "no_spkadv": "hierarchical",
        "proposed": "hierarchical",
    }
    assert VARIANTS.index("baseline2_hier") == VARIANTS.index("baseline2") + 1
    assert variants.VARIANT_LOSSES["baseline2_hier"] == ()


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--dynamic_batching=True"], "use --dynamic_batching=False or"),
        (["--batch_sampler=hier"], "batch_sampler must be one of"),
        (
            ["--languages=[en,de]"],
            "batch_sampler=hierarchical (the default of variant proposed) needs "
            "hier_n_lang=3 training languages, this run has 1 (en): set "
            "--hier_n_lang=1",
        ),
        (
            ["--batch_sampler=hierarchical", "--variant=baseline1"],
            "(set) needs hier_n_lang=3",
        ),
    ],
)
def test_the_recipe_refuses_bad_batch_settings_in_one_line(
    tmp_path, capsys, extra, expected
):
    argv = [str(REPO_ROOT / "hparams" / "demo.yaml"), f"--output_folder={tmp_path}/r"]
    with pytest.raises(SystemExit) as done:
        train.main([*argv, *extra])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err and err.startswith("recipes/train.py:")


def _ddp_worker(rank, world_size, store, out):
    """One process of a real gloo job: a Brain's train loader, its batches."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{store}", rank=rank, world_size=world_size
    )
    try:
        train_set = dataset()
        options = train_loader_kwargs(
            train_set, "natural", 5, {"batch_size": 36}, batch_sampler="hierarchical"
        )
        brain = recorder()
        loader = brain.make_dataloader(train_set, sb.Stage.TRAIN, **options)
        assert loader.batch_sampler is options["batch_sampler"]  # not wrapped
        brain.train_sampler.set_epoch(3)
        ids = {data_id: n for n, data_id in enumerate(train_set.data_ids)}
        batches = [[ids[i] for i in batch["id"]] for batch in loader]
        torch.save({"batches": batches, "len": len(loader)}, f"{out}.{rank}")
    finally:
        torch.distributed.destroy_process_group()


def test_a_real_two_process_gloo_job_splits_the_global_batches(tmp_path):
    torch.multiprocessing.spawn(
        _ddp_worker,
        args=(2, str(tmp_path / "store"), str(tmp_path / "out")),
        nprocs=2,
        join=True,
    )
    shares = [torch.load(tmp_path / f"out.{rank}") for rank in range(2)]
    expected = HierarchicalBatchSampler.from_dataset(
        dataset(), seed=5, world_size=2, rank=0, epoch=3
    ).global_batches()
    assert shares[0]["len"] == shares[1]["len"] == len(expected) // 2
    assert shares[0]["batches"] == expected[0::2]
    assert shares[1]["batches"] == expected[1::2]
