"""Speaker normalisation (zsser_modules/speaker_norm.py, speaker_norm: per_speaker).

Against a numpy reference computed here: every utterance standardised with
its own speaker's statistics, in every split (test speakers included), the
emotion labels never read, the feature cache untouched, the inference
fallback, and the recipe's results.json / exported model.
"""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import REPO_ROOT
from isolation_utils import assert_same_predictions, classify_without_project
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.data_pipeline import provides, takes

from recipes import train
from zsser_modules.audio import audio_pipeline
from zsser_modules.feature_cache import FeatureCache, use_cached_features
from zsser_modules.inference import EmotionRecognizer
from zsser_modules.inference import main as classify_main
from zsser_modules.run import features as run_features
from zsser_modules.run_identity import RunIdentity
from zsser_modules.speaker_norm import (
    EPS,
    SpeakerNorm,
    check_speaker_norm,
    normalize_datasets,
)

DEMO = str(REPO_ROOT / "hparams" / "demo.yaml")
EMOTIONS = ["neutral", "happy", "angry", "sad"]
SPLIT_SPEAKERS = {"train": ["a", "b"], "valid": ["c"], "test": ["t1", "t2"]}


def reference(feats_by_id, speaker_by_id):
    """numpy: z-normalise each utterance with its speaker's mean and std."""
    out = {}
    for speaker in set(speaker_by_id.values()):
        ids = [i for i, s in speaker_by_id.items() if s == speaker]
        block = np.stack([feats_by_id[i] for i in ids]).astype(np.float64)
        mean, std = block.mean(0), np.maximum(block.std(0), EPS)
        for i in ids:
            out[i] = (feats_by_id[i] - mean) / std
    return out


def toy_datasets(rng, emotion_seed=0):
    """Three splits of utterances with [3, 4] features; speakers offset apart."""
    feats, speakers, datasets = {}, {}, {}
    emotions = np.random.default_rng(emotion_seed)
    for split, names in SPLIT_SPEAKERS.items():
        data = {}
        for k, speaker in enumerate(names):
            for u in range(4 + k):
                utt = f"{split}_{speaker}_{u}"
                feats[utt] = (10 * k + rng.normal(size=(3, 4)) * (k + 1)).astype(
                    np.float32
                )
                speakers[utt] = speaker
                data[utt] = {"spk_id": speaker, "emo": emotions.choice(EMOTIONS)}

        @takes("id")
        @provides("encoder_feats")
        def lookup(utt_id):
            return torch.from_numpy(feats[utt_id])

        datasets[split] = DynamicItemDataset(
            data, dynamic_items=[lookup], output_keys=["id", "encoder_feats", "emo"]
        )
    return datasets, feats, speakers


def outputs(datasets):
    return {
        item["id"]: item["encoder_feats"].numpy()
        for dataset in datasets.values()
        for item in dataset
    }


def test_every_split_is_normalised_with_its_own_speakers_statistics():
    datasets, feats, speakers = toy_datasets(np.random.default_rng(0))
    summary = normalize_datasets(datasets)
    assert summary["speakers"] == {"train": 2, "valid": 1, "test": 2}
    expected = reference(feats, speakers)
    got = outputs(datasets)
    assert set(got) == set(expected)
    for utt, value in got.items():
        np.testing.assert_allclose(value, expected[utt], rtol=1e-5, atol=1e-5)
    # The target's test speakers: mean 0, std 1 over their own utterances.
    for speaker in SPLIT_SPEAKERS["test"]:
        block = np.stack([got[u] for u in got if speakers[u] == speaker])
        np.testing.assert_allclose(block.mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(block.std(0), 1.0, atol=1e-4)
    # The inference fallback: the training utterances, all speakers pooled.
    train_block = np.stack([feats[u] for u in feats if u.startswith("train")])
    mean, std = summary["global"]
    np.testing.assert_allclose(mean.numpy(), train_block.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std.numpy(), train_block.std(0), rtol=1e-4)
    # The other output keys are untouched.
    assert set(datasets["test"][0]) == {"id", "encoder_feats", "emo"}


def test_emotion_labels_are_never_read():
    """Shuffled (here: redrawn) labels give identical normalised features."""
    first, _, _ = toy_datasets(np.random.default_rng(1), emotion_seed=1)
    second, _, _ = toy_datasets(np.random.default_rng(1), emotion_seed=2)
    labels = [[item["emo"] for item in d] for d in (first["train"], second["train"])]
    assert labels[0] != labels[1]
    normalize_datasets(first)
    normalize_datasets(second)
    a, b = outputs(first), outputs(second)
    assert all(np.array_equal(a[utt], b[utt]) for utt in a)


def test_feature_cache_is_read_once_and_left_unchanged(tmp_path):
    rng = np.random.default_rng(3)
    data = {}
    for speaker in ("s1", "s2"):
        for u in range(3):
            path = tmp_path / f"{speaker}_{u}.wav"
            sf.write(path, rng.normal(size=1600).astype("float32") * 0.1, 16000)
            data[f"{speaker}_{u}"] = {"wav": str(path), "spk_id": speaker}

    class Enc(torch.nn.Module):
        def forward(self, wavs, wav_lens):
            return wavs[:, None, :5].expand(-1, 2, -1) * 3 + 1  # [B, 2, 5]

    dataset = DynamicItemDataset(
        data, dynamic_items=[audio_pipeline()], output_keys=["id", "sig"]
    )
    cache = FeatureCache(tmp_path / "cache", {"encoder": "toy", "shape": [2, 5]})
    use_cached_features([dataset], cache, Enc(), provides="encoder_feats")
    key_hash = cache.key_hash
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*")}
    raw = {u: cache.get(u, d["wav"]).numpy() for u, d in data.items()}

    reads = []
    original_get = cache.get
    cache.get = lambda *args: reads.append(args[0]) or original_get(*args)
    normalize_datasets({"train": dataset})
    assert sorted(reads) == sorted(data)  # one pass over the cache
    got = outputs({"train": dataset})
    expected = reference(raw, {u: d["spk_id"] for u, d in data.items()})
    for utt in data:
        np.testing.assert_allclose(got[utt], expected[utt], rtol=1e-5, atol=1e-5)
    assert cache.key_hash == key_hash
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*")} == files


def test_speaker_norm_module_and_refusals():
    norm = SpeakerNorm([2, 3])
    x = torch.randn(5, 2, 3)
    assert torch.equal(norm(x), x)  # unfitted: identity
    norm.fit(list(x))
    np.testing.assert_allclose(
        norm(x).numpy(),
        (x.numpy() - x.numpy().mean(0)) / x.numpy().std(0),
        rtol=1e-4,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="expected \\[2, 3\\]"):
        norm.set_statistics(torch.zeros(3), torch.ones(3))
    check_speaker_norm("per_speaker", frozen=True, cached=True)
    with pytest.raises(ValueError, match="use_feature_cache"):
        check_speaker_norm("per_speaker", frozen=True, cached=False)
    with pytest.raises(ValueError, match="must be one of"):
        check_speaker_norm("per_utterance", frozen=True, cached=True)


def test_speaker_norm_none_keeps_the_run_identity_of_older_runs():
    base = RunIdentity.from_argv([DEMO])
    assert "speaker_norm" not in base.settings
    assert RunIdentity.from_argv([DEMO, "--speaker_norm=none"]).hash == base.hash
    other = RunIdentity.from_argv([DEMO, "--speaker_norm=per_speaker"])
    assert base.differences(other) == [("speaker_norm", "<absent>", "per_speaker")]


def test_recipe_with_per_speaker_norm_and_its_exported_model(tmp_path, capsys):
    common = [
        f"--results_root={tmp_path / 'results'}",
        "--demo_options={n_speakers: 2, n_per_class_per_speaker: 3}",
        "--number_of_epochs=1",
        "--tsne_per_language=10",
        "--diagnostics=False",
        "--noprogressbar",
        # the speaker protocol: train, valid and test hold disjoint speakers
        "--protocol=speaker",
    ]
    folder = tmp_path / "sn"
    train.main(
        [DEMO, f"--output_folder={folder}", "--speaker_norm=per_speaker", *common]
    )
    results = json.loads((folder / "results.json").read_text())
    assert results["speaker_norm"] == "per_speaker"
    assert results["speaker_norm_pool"] == "own_split"
    # 2 speakers per language: train and valid split the training languages'
    # speakers, and the target's 2 test speakers have their own statistics.
    assert results["speaker_norm_speakers"]["test"] == 2
    assert sum(results["speaker_norm_speakers"].values()) == 2 * 5

    # The exported model normalises with the training data's global statistics.
    recognizer = EmotionRecognizer.from_hparams(source=str(folder / "inference"))
    assert recognizer.speaker_normalized
    exported = recognizer.mods.speaker_norm
    assert exported.feature_shape == [int(recognizer.mods.fbank_stats.output_size)]
    assert float(exported.std.min()) > 0 and float(exported.mean.abs().sum()) > 0
    wavs = sorted((tmp_path / "results" / "data").rglob("demo_de_s*/*.wav"))[:6]
    before = exported.mean.clone()
    recognizer.set_speaker_files(wavs)
    feats = torch.stack(
        [
            recognizer.encode_features(torch.from_numpy(sf.read(w)[0]).float()[None])[0]
            for w in wavs
        ]
    )
    torch.testing.assert_close(exported.mean, feats.mean(0), rtol=1e-4, atol=1e-4)
    assert not torch.equal(exported.mean, before)

    # Without the project (foreign_class, project hidden), the exported
    # speaker-normalised model predicts what the project's recognizer does
    # (the normaliser sits between the encoder and the heads).
    reloaded = EmotionRecognizer.from_hparams(source=str(folder / "inference"))
    assert reloaded.chain.index("speaker_norm") == 1
    isolated = classify_without_project(
        folder / "inference", wavs[:2], tmp_path / "iso"
    )
    assert_same_predictions(isolated, reloaded, wavs[:2])

    # zsser-classify --one-speaker works here, and is refused for a plain model.
    csv = tmp_path / "pred.csv"
    assert (
        classify_main(
            [str(folder), *map(str, wavs), "--one-speaker", "--output", str(csv)]
        )
        == 0
    )
    assert len(csv.read_text().splitlines()) == len(wavs) + 1
    plain = tmp_path / "plain"
    train.main([DEMO, f"--output_folder={plain}", *common])
    plain_results = json.loads((plain / "results.json").read_text())
    assert plain_results["speaker_norm"] == "none"
    assert plain_results["speaker_norm_pool"] is None
    assert not (plain / "inference" / "speaker_norm.ckpt").exists()
    capsys.readouterr()
    assert (
        classify_main([str(plain), str(wavs[0]), "--one-speaker", "--output", str(csv)])
        == 2
    )
    assert "trained without speaker normalisation" in capsys.readouterr().err


def test_recipe_refuses_per_speaker_norm_with_a_trainable_encoder(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        train.main(
            [
                DEMO,
                f"--results_root={tmp_path}",
                "--encoder=fbank",
                "--speaker_norm=per_speaker",
            ]
        )
    assert stop.value.code == 2
    err = capsys.readouterr().err.splitlines()
    refusal = [line for line in err if line.startswith("recipes/train.py:")]
    assert len(refusal) == 1 and "frozen encoder" in refusal[0]
    assert not list(tmp_path.rglob("run_identity.json"))  # no run started


# ---- Inductive alternatives (issue 19): enrolment utterances, training stats --


def enrolment_reference(feats_by_id, speaker_by_id, k, seed):
    """numpy + random: each speaker's k enrolment utterances give its statistics."""
    import random

    out = {}
    for speaker in set(speaker_by_id.values()):
        ids = sorted(i for i, s in speaker_by_id.items() if s == speaker)
        enrol = random.Random(f"{seed}/{speaker}").sample(ids, min(k, len(ids)))
        block = np.stack([feats_by_id[i] for i in enrol]).astype(np.float64)
        mean, std = block.mean(0), np.maximum(block.std(0), EPS)
        for i in ids:
            out[i] = (feats_by_id[i] - mean) / std
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 50])
def test_enrolment_statistics_come_from_k_utterances_per_speaker(k):
    datasets, feats, speakers = toy_datasets(np.random.default_rng(4))
    summary = normalize_datasets(
        datasets, mode="per_speaker_enrolment", enrolment=k, enrolment_seed=7
    )
    expected = enrolment_reference(feats, speakers, k, seed=7)
    got = outputs(datasets)
    for utt, value in got.items():
        np.testing.assert_allclose(value, expected[utt], rtol=1e-5, atol=1e-4)
    # test speakers t1 (4 utterances) and t2 (5)
    assert summary["enrolment"]["test"] == min(k, 4) + min(k, 5)
    if k >= 5:  # every utterance enrolled: the transductive per_speaker
        per_speaker = reference(feats, speakers)
        for utt, value in got.items():
            np.testing.assert_allclose(value, per_speaker[utt], rtol=1e-5, atol=1e-4)


def test_enrolment_statistics_ignore_the_other_utterances():
    """Changing a test speaker's non-enrolment utterances changes nothing else."""
    from zsser_modules.speaker_norm import enrolment_ids

    datasets, feats, speakers = toy_datasets(np.random.default_rng(5))
    enrolled = enrolment_ids(speakers, 2, seed=3)
    normalize_datasets(
        datasets, mode="per_speaker_enrolment", enrolment=2, enrolment_seed=3
    )
    before = outputs(datasets)
    changed, feats_again, _ = toy_datasets(np.random.default_rng(5))
    for utt in feats_again:  # the lookup reads this dict: shift non-enrolled
        if speakers[utt] == "t1" and utt not in enrolled:
            feats_again[utt] += 100.0
    normalize_datasets(
        changed, mode="per_speaker_enrolment", enrolment=2, enrolment_seed=3
    )
    after = outputs(changed)
    for utt in before:
        if speakers[utt] != "t1" or utt in enrolled:
            np.testing.assert_array_equal(before[utt], after[utt])
        else:  # its own features moved, its speaker's statistics did not
            shift = 100.0 / _std_of(feats, speakers, enrolled)
            np.testing.assert_allclose(after[utt] - before[utt], shift, rtol=1e-4)


def _std_of(feats, speakers, enrolled):
    block = np.stack([feats[u] for u in enrolled if speakers[u] == "t1"])
    return np.maximum(block.astype(np.float64).std(0), EPS)


def test_training_statistics_standardise_every_utterance():
    datasets, feats, _ = toy_datasets(np.random.default_rng(6))
    summary = normalize_datasets(datasets, mode="training")
    train = np.stack([feats[u] for u in feats if u.startswith("train")])
    mean, std = train.astype(np.float64).mean(0), train.astype(np.float64).std(0)
    got = outputs(datasets)
    for utt, value in got.items():
        np.testing.assert_allclose(value, (feats[utt] - mean) / std, rtol=1e-4)
    assert summary["enrolment"] is None
    np.testing.assert_allclose(summary["global"][0].numpy(), mean, rtol=1e-5)


def test_enrolment_needs_a_positive_k_and_modes_are_checked():
    datasets, _, _ = toy_datasets(np.random.default_rng(0))
    with pytest.raises(ValueError, match="--speaker_norm_enrolment=5"):
        normalize_datasets(datasets, mode="per_speaker_enrolment", enrolment=0)
    with pytest.raises(ValueError, match="mode must be one of"):
        normalize_datasets(datasets, mode="none")
    for mode in ("per_speaker_enrolment", "training"):
        check_speaker_norm(mode, frozen=True, cached=True)
        with pytest.raises(ValueError, match=f"speaker_norm={mode} normalises"):
            check_speaker_norm(mode, frozen=False, cached=True)


def test_inductive_rows_get_their_own_labels():
    from zsser_modules.results_table.runs import row_label

    labels = {
        norm: row_label({"variant": "proposed", "speaker_norm": norm})
        for norm in ("none", "per_speaker", "per_speaker_enrolment", "training")
    }
    assert labels == {
        "none": "proposed",
        "per_speaker": "proposed +spk-norm",
        "per_speaker_enrolment": "proposed +spk-enrol",
        "training": "proposed +train-norm",
    }


def test_recipe_records_the_enrolment(tmp_path, monkeypatch):
    folder = tmp_path / "enrol"
    logged = []  # the recipe's logger does not propagate to caplog
    monkeypatch.setattr(
        run_features.logger, "warning", lambda msg, *a, **k: logged.append(msg)
    )
    train.main(
        [
            DEMO,
            f"--results_root={tmp_path / 'results'}",
            "--demo_options={n_speakers: 2, n_per_class_per_speaker: 3}",
            "--number_of_epochs=1",
            "--tsne_per_language=0",
            "--diagnostics=False",
            "--noprogressbar",
            f"--output_folder={folder}",
            "--speaker_norm=per_speaker_enrolment",
            "--speaker_norm_enrolment=4",
        ]
    )
    results = json.loads((folder / "results.json").read_text())
    assert results["speaker_norm"] == "per_speaker_enrolment"
    assert results["speaker_norm_enrolment"] == 4
    assert results["speaker_norm_pool"] == "own_split"
    # The paper protocol's demo test split: 3 utterances of the target's 2
    # speakers, both with 4 or fewer there: all enrolled (scored too), both
    # counted as fallbacks, and a warning. The whole target (test_all, 12
    # utterances per speaker) draws its own 4 per speaker.
    assert results["n_test"] == 3
    assert results["speaker_norm_speakers"]["test"] == 2
    assert results["speaker_norm_enrolment_utterances"]["test"] == 3
    assert results["speaker_norm_enrolment_utterances"]["test_all"] == 2 * 4
    fallback = results["speaker_norm_enrolment_fallback_speakers"]
    assert fallback["test"] == 2 and fallback["test_all"] == 0
    warnings = [msg for msg in logged if "fewer test" in msg]
    assert len(warnings) == 1 and "2 test speaker(s)" in warnings[0]
    identity = RunIdentity.from_argv([DEMO, "--speaker_norm_enrolment=5"])
    assert identity.hash == RunIdentity.from_argv([DEMO]).hash


# ---- Pools: each split its own, each utterance ID once (test_all beside) ----


def with_test_all(rng, upper_bound=False):
    """toy_datasets + ``test_all``: the test utterances again, and more of t1/t2.

    ``upper_bound``: the train split also holds utterances of t1 (as the
    upper bound's stratified train split holds the target's test speakers).
    """
    datasets, feats, speakers = toy_datasets(rng)
    extra = {}
    for speaker in SPLIT_SPEAKERS["test"]:
        for u in range(3):
            utt = f"rest_{speaker}_{u}"
            feats[utt] = (50 + 5 * rng.normal(size=(3, 4))).astype(np.float32)
            speakers[utt] = speaker
            extra[utt] = {"spk_id": speaker, "emo": "sad"}
    test_ids = [utt for utt in feats if utt.startswith("test_")]
    data = {utt: {"spk_id": speakers[utt], "emo": "sad"} for utt in test_ids}
    reads = []

    @takes("id")
    @provides("encoder_feats")
    def lookup(utt_id):
        reads.append(utt_id)
        return torch.from_numpy(feats[utt_id])

    datasets["test_all"] = DynamicItemDataset(
        {**data, **extra},
        dynamic_items=[lookup],
        output_keys=["id", "encoder_feats", "emo"],
    )
    if upper_bound:
        train_data = dict(datasets["train"].data)
        for u in range(6):
            utt = f"train_t1_{u}"
            feats[utt] = (-20 + rng.normal(size=(3, 4))).astype(np.float32)
            speakers[utt] = "t1"
            train_data[utt] = {"spk_id": "t1", "emo": "happy"}

        @takes("id")
        @provides("encoder_feats")
        def train_lookup(utt_id):
            return torch.from_numpy(feats[utt_id])

        datasets["train"] = DynamicItemDataset(
            train_data,
            dynamic_items=[train_lookup],
            output_keys=["id", "encoder_feats", "emo"],
        )
    return datasets, feats, speakers, reads


def split_outputs(dataset):
    return {item["id"]: item["encoder_feats"].numpy() for item in dataset}


def pooled_reference(feats, speakers, ids):
    return reference({u: feats[u] for u in ids}, {u: speakers[u] for u in ids})


@pytest.mark.parametrize("upper_bound", [False, True])
def test_test_split_is_normalised_from_its_own_utterances_whatever_else(
    upper_bound,
):
    """test_all (the test utterances again and more) and target speakers in
    train change nothing of the test split; test_all uses its own utterances,
    each read and counted once."""
    plain, feats, speakers = toy_datasets(np.random.default_rng(8))
    normalize_datasets(plain)
    zero_shot = split_outputs(plain["test"])

    datasets, feats, speakers, reads = with_test_all(
        np.random.default_rng(8), upper_bound
    )
    normalize_datasets(datasets)
    got = {split: split_outputs(dataset) for split, dataset in datasets.items()}
    assert got["test"].keys() == zero_shot.keys()
    for utt, value in got["test"].items():
        np.testing.assert_array_equal(value, zero_shot[utt])  # identical rows
    for outs in got.values():
        expected = pooled_reference(feats, speakers, list(outs))
        for utt, value in outs.items():
            np.testing.assert_allclose(value, expected[utt], rtol=1e-5, atol=1e-5)
    # the statistics pass read each test_all utterance once (then one output
    # read per utterance above)
    assert len(reads) == 2 * len(datasets["test_all"])
    assert sorted(reads[: len(datasets["test_all"])]) == sorted(got["test_all"])
    if upper_bound:  # t1's train utterances standardised with train's t1 only
        train_t1 = [u for u in got["train"] if speakers[u] == "t1"]
        block = np.stack([got["train"][u] for u in train_t1])
        np.testing.assert_allclose(block.mean(0), 0.0, atol=1e-5)


def test_repeated_ids_are_counted_once():
    """A test view listing some IDs twice: numpy over its unique IDs (not
    with the repeats counted twice), each ID read once; test_all apart."""
    from speechbrain.dataio.dataset import FilteredSortedDynamicItemDataset

    datasets, feats, speakers, reads = with_test_all(np.random.default_rng(9))
    whole = datasets["test_all"]
    test_ids = sorted(u for u in feats if u.startswith("test_"))
    repeats = [u for u in test_ids if speakers[u] == "t1"][:3]
    view = FilteredSortedDynamicItemDataset(whole, test_ids + repeats)
    assert len(view) == len(test_ids) + 3
    summary = normalize_datasets({"test": view, "test_all": whole})
    assert sorted(reads) == sorted(test_ids + list(whole.data))  # once per pool
    assert summary["speakers"] == {"test": 2, "test_all": 2}
    unique = pooled_reference(feats, speakers, test_ids)
    for item in view:
        np.testing.assert_allclose(
            item["encoder_feats"].numpy(), unique[item["id"]], atol=1e-5
        )
    whole_reference = pooled_reference(feats, speakers, list(whole.data))
    for item in whole:
        np.testing.assert_allclose(
            item["encoder_feats"].numpy(), whole_reference[item["id"]], atol=1e-5
        )
    # numpy with the repeats counted twice gives other features for t1
    dup = {f"dup_{u}": u for u in repeats}
    twice = pooled_reference(
        {**feats, **{d: feats[u] for d, u in dup.items()}},
        {**speakers, **{d: speakers[u] for d, u in dup.items()}},
        test_ids + list(dup),
    )
    assert not np.allclose(twice[repeats[0]], unique[repeats[0]], atol=1e-3)
    # one dataset under two names: one pool, read once
    again, feats, speakers, reads = with_test_all(np.random.default_rng(9))
    normalize_datasets({"test_all": again["test_all"], "alias": again["test_all"]})
    assert sorted(reads) == sorted(again["test_all"].data)


def test_enrolment_draws_within_each_split_and_counts_fallbacks():
    datasets, feats, speakers, _ = with_test_all(np.random.default_rng(10))
    summary = normalize_datasets(
        datasets, mode="per_speaker_enrolment", enrolment=4, enrolment_seed=2
    )
    got = {split: split_outputs(dataset) for split, dataset in datasets.items()}
    for outs in got.values():  # numpy + random, split by split
        expected = enrolment_reference(
            {u: feats[u] for u in outs}, {u: speakers[u] for u in outs}, 4, seed=2
        )
        for utt, value in outs.items():
            np.testing.assert_allclose(value, expected[utt], rtol=1e-5, atol=1e-4)
    # speakers with 4 or fewer utterances in their split: train a (4 of a, 5
    # of b), valid c (4), test t1 (4 of t1, 5 of t2); test_all: 7 and 8
    assert summary["fallback"] == {"train": 1, "valid": 1, "test": 1, "test_all": 0}
    assert summary["enrolment"] == {"train": 8, "valid": 4, "test": 8, "test_all": 8}
    small = normalize_datasets(
        toy_datasets(np.random.default_rng(10))[0],
        mode="per_speaker_enrolment",
        enrolment=3,
    )
    assert small["fallback"] == {"train": 0, "valid": 0, "test": 0}


@pytest.mark.parametrize("k", [0, -2, 2.5, "five", True, None])
def test_a_bad_enrolment_count_is_refused_in_one_line(k, tmp_path, capsys):
    with pytest.raises(ValueError, match="--speaker_norm_enrolment=5"):
        check_speaker_norm("per_speaker_enrolment", True, True, enrolment=k)
    check_speaker_norm("per_speaker", True, True, enrolment=k)  # not used
    check_speaker_norm("per_speaker_enrolment", True, True, enrolment=1)


def test_recipe_refuses_a_bad_enrolment_count_before_the_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        train.main(
            [
                DEMO,
                f"--results_root={tmp_path}",
                "--speaker_norm=per_speaker_enrolment",
                "--speaker_norm_enrolment=0",
            ]
        )
    assert stop.value.code == 2
    err = capsys.readouterr().err.splitlines()
    refusal = [line for line in err if line.startswith("recipes/train.py:")]
    assert len(refusal) == 1 and "--speaker_norm_enrolment=5" in refusal[0]
    assert not list(tmp_path.rglob("run_identity.json"))  # no run started
