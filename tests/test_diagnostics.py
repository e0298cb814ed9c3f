"""Tests of zsser_modules.diagnostics on fabricated representations whose
content is known, and of the recipe's results.json["diagnostics"]."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from recipe_utils import ssl_run

from zsser_modules.diagnostics import (
    HELD_OUT_UTTERANCES,
    diagnostic_sets,
    emotion_transfer,
    emotion_uar_cv,
    language_probe,
    make_probe,
    run_diagnostics,
    speaker_probe,
)

EMOTIONS = ["neutral", "happy", "angry", "sad"]


def corpus(n_langs=2, n_speakers=4, per_emotion=10, seed=0):
    """Labels of a balanced corpus: langs x speakers x emotions x utterances."""
    rows = [
        (f"l{lang}", f"l{lang}s{spk}", emo)
        for lang in range(n_langs)
        for spk in range(n_speakers)
        for emo in EMOTIONS
        for _ in range(per_emotion)
    ]
    langs, spks, emos = (np.array(column) for column in zip(*rows))
    return langs, spks, emos, np.random.default_rng(seed)


def one_hot(labels, scale=3.0):
    return scale * (labels[:, None] == np.unique(labels)[None]).astype(float)


def test_speaker_probe_perfect_and_random():
    langs, spks, emos, rng = corpus()
    noise = rng.normal(size=(len(spks), 16))
    perfect = speaker_probe(np.hstack([one_hot(spks), noise]), spks)
    assert perfect["acc"] > 0.97
    assert perfect["chance"] == pytest.approx(1 / 8, abs=0.01)
    random = speaker_probe(noise, spks)
    assert random["acc"] < random["chance"] + 0.12


def test_speaker_probe_is_scikit_learn_on_a_split_within_speakers():
    from sklearn.model_selection import train_test_split

    _, spks, _, rng = corpus()
    x = one_hot(spks, 0.5) + rng.normal(size=(len(spks), 8))
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, spks, test_size=96, stratify=spks, random_state=3
    )
    expected = np.mean(make_probe(3).fit(x_tr, y_tr).predict(x_te) == y_te)
    assert speaker_probe(x, spks, seed=3)["acc"] == pytest.approx(expected)
    assert set(y_tr) == set(y_te)  # same speakers, disjoint utterances


def test_language_probe_groups_speakers():
    """Features that identify speakers but not languages: a split within
    speakers would read the language off the voice; grouped, it cannot."""
    langs, spks, _, rng = corpus(n_speakers=5)
    centres = {s: rng.normal(size=8) * 3 for s in np.unique(spks)}
    voices = np.array([centres[s] for s in spks]) + rng.normal(size=(len(spks), 8))
    result = language_probe(voices, langs, spks)
    assert result["chance"] == 0.5
    assert result["acc"] < 0.75
    encoded = np.hstack([one_hot(langs), rng.normal(size=(len(spks), 8))])
    assert language_probe(encoded, langs, spks)["acc"] > 0.97
    assert language_probe(voices, ["en"] * len(spks), spks) == "needs 2 languages"
    one_speaker_each = np.where(langs == "l0", "a", "b")
    assert "needs 2 speakers" in language_probe(voices, langs, one_speaker_each)


def test_emotion_transfer_shared_and_language_specific():
    langs, spks, emos, rng = corpus()
    noise = rng.normal(size=(len(emos), 8))
    shared = np.hstack([one_hot(emos), noise])
    out = emotion_transfer(shared, emos, langs)
    assert out["uar"] > 0.97 and out["chance"] == 0.25
    assert sorted(out["pairs"]) == ["l0->l1", "l1->l0"]
    # Emotion in a different subspace per language: learnable within each
    # language, not transferable.
    codes = one_hot(emos)
    specific = np.where(
        (langs == "l0")[:, None],
        np.hstack([codes, 0 * codes]),
        np.hstack([0 * codes, codes]),
    ) + 0.5 * rng.normal(size=(len(emos), 8))
    out = emotion_transfer(specific, emos, langs)
    assert out["uar"] < 0.5
    mask = langs == "l0"
    assert emotion_uar_cv(specific[mask], emos[mask], spks[mask]) > 0.95


def test_run_diagnostics_keys_raw_and_speaker_rows():
    langs, spks, emos, rng = corpus()
    embedding = np.hstack([one_hot(emos), rng.normal(size=(len(emos), 8))])
    raw = np.hstack([one_hot(spks), one_hot(langs), rng.normal(size=(len(emos), 4))])
    rows = np.isin(spks, [s for s in np.unique(spks) if not s.endswith("s3")])
    out = run_diagnostics(
        embedding, spks, langs, emos, raw=raw, raw_description="r", speaker_rows=rows
    )
    for key in (
        "speaker_probe_acc",
        "speaker_chance",
        "language_probe_acc",
        "language_chance",
        "emotion_transfer_uar",
        "emotion_chance",
    ):
        assert isinstance(out[key], float) and isinstance(out["raw"][key], float)
    assert out["n_speaker_probe_speakers"] == 6
    assert out["speaker_chance"] == pytest.approx(1 / 6, abs=0.01)
    # The embedding holds emotion only; the raw features speaker and language.
    assert out["speaker_probe_acc"] < 0.35 < 0.95 < out["raw"]["speaker_probe_acc"]
    assert out["language_probe_acc"] < 0.75 < 0.95 < out["raw"]["language_probe_acc"]
    assert out["emotion_transfer_uar"] > 0.95 > out["raw"]["emotion_transfer_uar"]
    assert out["raw_features"] == "r" and out["notes"] == []


def test_single_language_run_says_what_it_skipped():
    langs, spks, emos, rng = corpus(n_langs=1)
    out = run_diagnostics(rng.normal(size=(len(emos), 4)), spks, langs, emos)
    assert out["language_probe_acc"] is None and out["emotion_transfer_uar"] is None
    assert out["raw"] is None and out["speaker_probe_acc"] is not None
    assert "language probe skipped: needs 2 languages" in out["notes"]
    assert "emotion transfer skipped: needs 2 languages" in out["notes"]


@pytest.mark.slow
def test_every_run_writes_diagnostics(tmp_path_factory):
    _, folder = ssl_run(tmp_path_factory)
    results = json.loads((folder / "results.json").read_text())
    diagnostics = results["diagnostics"]
    assert diagnostics["languages"] == ["en", "zh"]
    assert diagnostics["utterances"] == HELD_OUT_UTTERANCES
    for probes in (diagnostics, diagnostics["raw"]):
        assert 0 <= probes["speaker_probe_acc"] <= 1
        assert 0 < probes["speaker_chance"] < 1
        assert 0 <= probes["emotion_transfer_uar"] <= 1
        assert probes["emotion_chance"] == 0.25
        # one validation speaker per language in this tiny fixture: the
        # speaker-grouped language probe cannot be estimated (and says so)
        assert probes["language_probe_acc"] is None
    assert any("language probe skipped" in note for note in diagnostics["notes"])
    assert diagnostics["raw_features"].startswith("frozen ssl encoder")
    post_hoc = results["diagnostics_post_hoc"]
    assert post_hoc["label"] == "post hoc"
    assert post_hoc["languages"] == ["de", "en", "zh"]


def test_diagnostics_never_see_a_training_utterance(tmp_path_factory, monkeypatch):
    """The recipe's probes (held out and post hoc) use no training utterance."""
    from recipe_utils import recipe_args, run_recipe, session_fixture

    from recipes import train
    from zsser_modules.data_prep.manifest import read_manifest

    fixture = session_fixture(tmp_path_factory)
    results_root = tmp_path_factory.mktemp("diag_held_out")
    probed = []
    representations = train.ZeroShotSER.representations

    def recording(self, dataset):
        out = representations(self, dataset)
        probed.extend(out["ids"])
        return out

    monkeypatch.setattr(train.ZeroShotSER, "representations", recording)
    brain = run_recipe(
        recipe_args(
            "en_de",
            fixture,
            results_root,
            "--encoder=fbank_stats",
            "--languages=[en,zh,de]",
            "--number_of_epochs=1",
            "--valid_ratio=0.5",
        )
    )
    folder = Path(brain.hparams.output_folder)
    results = json.loads((folder / "results.json").read_text())
    setting = {k: read_manifest(v) for k, v in results["setting"].items()}
    trained = set(setting["train"]["ID"])
    assert probed and not set(probed) & trained
    assert set(probed) <= set(setting["valid"]["ID"]) | set(setting["test"]["ID"])
    held, post_hoc = results["diagnostics"], results["diagnostics_post_hoc"]
    n_valid = len(setting["valid"])  # fewer than diagnostics_per_speaker each
    assert held["n_utterances"] == n_valid
    assert post_hoc["n_utterances"] == n_valid + len(setting["test"])
    assert held["n_training_utterances"] == post_hoc["n_training_utterances"] == 0
    # speaker protocol: held-out speakers; the post hoc speaker probe: the
    # target's test speakers
    assert held["n_speakers_seen_in_training"] == 0
    assert post_hoc["n_speaker_probe_speakers"] == setting["test"]["spk_id"].nunique()
    assert post_hoc["label"] == "post hoc"
    # the raw features are probed on the same utterances
    assert held["raw"] is not None and post_hoc["raw"] is not None
    assert set(post_hoc["emotion_transfer_pairs"]) >= {"en->de", "zh->de"}
    assert 0 <= post_hoc["emotion_transfer_to_target_uar"] <= 1


def test_diagnostic_sets_exclude_training_ids():
    rng = np.random.default_rng(0)

    def manifest(split, n):
        return pd.DataFrame(
            {
                "ID": [f"{split}{i}" for i in range(n)],
                "spk_id": [f"{split}_s{i % 3}" for i in range(n)],
                "lang": rng.choice(["en", "zh"], n),
                "emo": rng.choice(EMOTIONS, n),
                "spk_confounded": 0,
            }
        )

    train, valid, test = manifest("tr", 50), manifest("va", 30), manifest("te", 30)
    leaked = train.sample(5, random_state=0)
    valid, test = pd.concat([valid, leaked]), pd.concat([test, leaked])
    sets = diagnostic_sets(train, valid, test, per_speaker=100, seed=1)
    for frame in sets.values():
        assert not set(frame["ID"]) & set(train["ID"])
    assert len(sets["held_out"]) == 30 and len(sets["post_hoc"]) == 60
    assert not sets["held_out"]["ID"].duplicated().any()
    # a speaker confounded with emotion is not a speaker-probe row
    test.loc[test["spk_id"] == "te_s0", "spk_confounded"] = 1
    sets = diagnostic_sets(train, valid, test, per_speaker=100, seed=1)
    probe = sets["post_hoc"].loc[sets["post_hoc"]["probe_speaker"], "spk_id"]
    assert set(probe) == {"te_s1", "te_s2"}
