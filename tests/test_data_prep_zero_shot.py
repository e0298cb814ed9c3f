"""The zero-shot setting builder: guarantees for every ordered language pair."""

import itertools
import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO_ROOT
from data_prep_utils import read_file_list, write_rows

from zsser_modules.data_prep.manifest import read_manifest
from zsser_modules.data_prep.zero_shot import (
    SOURCE_ONLY_VARIANTS,
    VARIANTS,
    SettingError,
    build_setting,
    main,
    setting_folder,
    training_languages,
)
from zsser_modules.labels import EMOTIONS, LANGUAGES

PAIRS = list(itertools.permutations(LANGUAGES, 2))
EXTRA = ("surprise",)


def rows_for(corpus, lang, speakers, per_emotion=1, emotions=EMOTIONS + EXTRA):
    return [
        dict(
            ID=f"{corpus}_{spk}_{emo}_{k}",
            duration=1.0,
            wav=f"/corpora/{corpus}/{spk}_{emo}_{k}.wav",
            emo=emo,
            spk_id=f"{corpus}_{spk}",
            lang=lang,
            corpus=corpus,
            spk_confounded=0,
        )
        for spk in speakers
        for emo in emotions
        for k in range(per_emotion)
    ]


def urdu_rows():
    """The real URDU file list (its speaker-emotion confounding included)."""
    letters = {"A": "angry", "H": "happy", "N": "neutral", "S": "sad"}
    rows = []
    for row in read_file_list("urdu"):
        stem = row["path"].rsplit("/", 1)[-1][:-4]
        rows.append(
            dict(
                ID=f"urdu_{stem}",
                duration=1.0,
                wav=f"/corpora/urdu/{row['path']}",
                emo=letters[row["emotion_label_in_emobox"]],
                spk_id=f"urdu_{stem.split('_')[0]}",
                lang="ur",
                corpus="urdu",
                spk_confounded=0,
            )
        )
    return rows


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    """Corpus manifests with the real speaker structure (no audio needed)."""
    root = tmp_path_factory.mktemp("manifests")
    esd = rows_for("esd", "zh", [f"{n:04d}" for n in range(1, 11)]) + rows_for(
        "esd", "en", [f"{n:04d}" for n in range(11, 21)]
    )
    emodb = ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]
    cafe = [f"{n:02d}" for n in range(1, 13)]
    return [
        write_rows(root / "esd.csv", esd),
        write_rows(root / "emodb.csv", rows_for("emodb", "de", emodb)),
        write_rows(root / "cafe.csv", rows_for("cafe", "fr", cafe)),
        write_rows(root / "urdu.csv", urdu_rows()),
    ]


@pytest.fixture(scope="module")
def corpus_rows(manifests):
    df = pd.concat([read_manifest(p) for p in manifests], ignore_index=True)
    return df[df["emo"].isin(EMOTIONS)]


def confounded_flags_are_recomputed(df):
    n_emotions = df.groupby("spk_id")["emo"].transform("nunique")
    return (df["spk_confounded"] == (n_emotions == 1).astype(int)).all()


@pytest.mark.parametrize(
    ("source", "target"), PAIRS, ids=[f"{s}_{t}" for s, t in PAIRS]
)
def test_every_pair_and_variant_keeps_the_target_out(
    manifests, corpus_rows, tmp_path, source, target
):
    target_rows = corpus_rows[corpus_rows["lang"] == target]
    target_speakers = set(target_rows["spk_id"])
    built = {
        variant: build_setting(manifests, source, target, variant, tmp_path, seed=7)
        for variant in VARIANTS
    }
    # the ablations and baseline2 train on the same data as proposed
    for variant in ("baseline2", "no_supcon", "no_spkadv"):
        for split in ("train", "valid", "test"):
            assert (
                built[variant][split].read_bytes()
                == built["proposed"][split].read_bytes()
            )
    for variant in ("baseline1", "proposed", "upper_bound"):
        paths = built[variant]
        assert paths["train"].parent == setting_folder(
            tmp_path, source, target, variant, 7
        )
        train, valid, test = (
            read_manifest(paths[s]) for s in ("train", "valid", "test")
        )
        langs = training_languages(source, target, variant, LANGUAGES)
        assert set(train["lang"]) == set(langs)
        assert set(valid["lang"]) <= set(langs)  # valid: training languages only
        assert set(test["lang"]) == {target}
        for a, b in ((train, valid), (train, test), (valid, test)):
            assert not set(a["spk_id"]) & set(b["spk_id"])  # speaker independent
        if variant == "upper_bound":
            t_train = set(train.loc[train["lang"] == target, "spk_id"])
            assert t_train and set(test["spk_id"]) and not t_train & set(test["spk_id"])
            assert set(test["spk_id"]) < target_speakers
            assert set(valid["lang"]) == set(langs)
        else:
            for df in (train, valid):  # no target speaker or file
                assert target not in set(df["lang"])
                assert not set(df["spk_id"]) & target_speakers
                assert not set(df["ID"]) & set(target_rows["ID"])
                assert not set(df["wav"]) & set(target_rows["wav"])
            assert set(test["ID"]) == set(target_rows["ID"])  # all of T
            assert set(valid["lang"]) == set(langs)
        if variant == "baseline1":
            assert set(train["lang"]) == {source}
        for df in (train, valid, test):
            assert set(df["emo"]) <= set(EMOTIONS)
            assert confounded_flags_are_recomputed(df)
        # every non-test row of the training languages is in train or valid
        pool = corpus_rows[corpus_rows["lang"].isin(langs)]
        used = (
            set(train["ID"])
            | set(valid["ID"])
            | (set(test["ID"]) if variant == "upper_bound" else set())
        )
        assert used == set(pool["ID"])


def test_setting_is_deterministic_and_seeds_differ(manifests, tmp_path):
    a = build_setting(manifests, "en", "de", "proposed", tmp_path / "a", seed=1)
    b = build_setting(manifests, "en", "de", "proposed", tmp_path / "b", seed=1)
    for split in ("train", "valid", "test"):
        assert a[split].read_bytes() == b[split].read_bytes()
    c = build_setting(manifests, "en", "de", "proposed", tmp_path / "a", seed=2)
    assert c["valid"].parent != a["valid"].parent  # seed<seed> folders
    valid_1 = set(read_manifest(a["valid"])["spk_id"])
    valid_2 = set(read_manifest(c["valid"])["spk_id"])
    assert valid_1 != valid_2
    # a language's valid speakers depend on the seed only, not on the pair
    other = build_setting(manifests, "zh", "fr", "baseline2", tmp_path / "o", seed=1)
    en_valid = lambda p: set(  # noqa: E731
        read_manifest(p).query("lang == 'en'")["spk_id"]
    )
    assert en_valid(other["valid"]) == en_valid(a["valid"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_only_source_only_variants_depend_on_the_source(manifests, tmp_path, variant):
    # recipes/run_grid.py runs en_de and zh_de once for the other variants:
    # their three manifests must be the same bytes.
    a = build_setting(manifests, "en", "de", variant, tmp_path, seed=1)
    b = build_setting(manifests, "zh", "de", variant, tmp_path, seed=1)
    same = [a[split].read_bytes() == b[split].read_bytes() for split in a]
    assert same == (
        [False, False, True] if variant in SOURCE_ONLY_VARIANTS else [True] * 3
    )
    # with a restricted pool too (the source is always part of it)
    pool = ["en", "fr", "de"]
    c = build_setting(manifests, "fr", "de", variant, tmp_path / "r", 1, languages=pool)
    d = build_setting(manifests, "en", "de", variant, tmp_path / "r", 1, languages=pool)
    shared = c["train"].read_bytes() == d["train"].read_bytes()
    assert shared == (variant not in SOURCE_ONLY_VARIANTS)


def test_split_sizes_follow_the_ratio_rule(manifests, tmp_path):
    paths = build_setting(manifests, "en", "de", "upper_bound", tmp_path, seed=3)
    summary = json.loads((paths["train"].parent / "setting.json").read_text())
    # round-half-up(0.2 * n), at least 1, per language; T: 0.3 test first
    # de (10 speakers): 3 test, then round(0.2 * 7) = 1 valid, 6 train
    assert summary["n_speakers"]["valid"] == {
        "en": 2,
        "zh": 2,
        "de": 1,
        "fr": 2,
        "ur": 6,
    }
    assert summary["n_speakers"]["test"] == {"de": 3}
    assert summary["n_speakers"]["train"] == {
        "en": 8,
        "zh": 8,
        "de": 6,
        "fr": 10,
        "ur": 23,
    }
    assert summary["languages"] == {
        "train": ["en", "zh", "de", "fr", "ur"],
        "valid": ["en", "zh", "de", "fr", "ur"],
        "test": ["de"],
    }
    assert summary["training_languages"] == ["en", "zh", "fr", "ur", "de"]
    assert summary["counts"]["test"]["de"] == {e: 3 for e in EMOTIONS}
    assert summary["dropped_rows_class_not_kept"]["en"] == 10  # surprise
    assert summary["n_confounded_speakers"]["train"] >= 1  # URDU


def test_confounding_is_recomputed_within_each_manifest(manifests, tmp_path):
    # speaker 01 has two emotions in the corpus, but one of them (surprise) is
    # not kept: within the setting's manifests it is confounded
    rows = rows_for("cafe", "fr", ["02", "03", "04", "05"]) + rows_for(
        "cafe", "fr", ["01"], emotions=("sad", "surprise")
    )
    assert {r["spk_confounded"] for r in rows} == {0}
    fr = write_rows(tmp_path / "fr.csv", rows)
    paths = build_setting([fr, manifests[1]], "fr", "de", "baseline1", tmp_path)
    frames = [read_manifest(paths[s]) for s in ("train", "valid")]
    both = pd.concat(frames)
    assert set(both.loc[both["spk_confounded"] == 1, "spk_id"]) == {"cafe_01"}
    assert all(confounded_flags_are_recomputed(df) for df in frames)
    # URDU: 26 of 29 speakers have one emotion; the flags follow each split
    paths = build_setting(manifests, "ur", "de", "baseline1", tmp_path)
    train, valid = read_manifest(paths["train"]), read_manifest(paths["valid"])
    n_confounded = sum(
        df.loc[df["spk_confounded"] == 1, "spk_id"].nunique() for df in (train, valid)
    )
    assert n_confounded == 26


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_confounded_target_splits_still_cover_every_class(manifests, tmp_path, seed):
    # URDU: a random speaker split easily leaves a class out of valid or test;
    # the seeded redraw keeps every class on both sides
    paths = build_setting(manifests, "de", "ur", "upper_bound", tmp_path, seed=seed)
    valid, test = read_manifest(paths["valid"]), read_manifest(paths["test"])
    assert set(valid.loc[valid["lang"] == "ur", "emo"]) == set(EMOTIONS)
    assert set(test["emo"]) == set(EMOTIONS)


def test_rerun_skips_and_changed_options_rebuild(manifests, tmp_path):
    paths = build_setting(manifests, "fr", "ur", "proposed", tmp_path)
    before = paths["train"].stat().st_mtime_ns
    build_setting(manifests, "fr", "ur", "proposed", tmp_path)
    assert paths["train"].stat().st_mtime_ns == before  # skipped
    n_valid = len(read_manifest(paths["valid"]))
    build_setting(manifests, "fr", "ur", "proposed", tmp_path, valid_ratio=0.4)
    assert len(read_manifest(paths["valid"])) > n_valid  # rebuilt in place
    build_setting(
        manifests, "fr", "ur", "proposed", tmp_path, languages=["fr", "de", "ur"]
    )
    assert set(read_manifest(paths["train"])["lang"]) == {"fr", "de"}


def test_changed_manifest_content_rebuilds(manifests, tmp_path):
    root = tmp_path / "m"
    copies = []
    for path in manifests:
        copies.append(root / path.name)
        copies[-1].parent.mkdir(exist_ok=True)
        copies[-1].write_bytes(path.read_bytes())
    paths = build_setting(copies, "en", "de", "baseline1", tmp_path / "out")
    n_test = len(read_manifest(paths["test"]))
    emodb = read_manifest(root / "emodb.csv")
    write_rows(root / "emodb.csv", emodb[emodb["spk_id"] != "emodb_03"])
    build_setting(copies, "en", "de", "baseline1", tmp_path / "out")
    assert len(read_manifest(paths["test"])) == n_test - 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(source="xx", target="de"), "Unknown source language 'xx'"),
        (dict(source="en", target="en"), "both 'en'"),
        (dict(source="en", target="de", variant="best"), "Unknown variant 'best'"),
        (dict(source="en", target="de", languages=["ja"]), "no manifest covers"),
        (dict(source="en", target="de", classes=["joy"]), "Unknown classes"),
    ],
)
def test_impossible_requests_are_refused(manifests, tmp_path, kwargs, message):
    kwargs = {"variant": "proposed", **kwargs}
    with pytest.raises(SettingError, match=message):
        build_setting(manifests, save_folder=tmp_path, **kwargs)


def test_language_without_corpus_or_with_too_few_speakers(manifests, tmp_path):
    esd, emodb = manifests[0], manifests[1]
    with pytest.raises(SettingError, match="No prepared corpus for the target"):
        build_setting([esd], "en", "de", "baseline1", tmp_path)
    lonely = write_rows(tmp_path / "fr.csv", rows_for("cafe", "fr", ["01"]))
    with pytest.raises(SettingError, match="lang='fr'.*1 speaker"):
        build_setting([esd, lonely], "fr", "en", "baseline1", tmp_path)
    # a one-speaker target is fine when T is not split ...
    build_setting([esd, lonely], "en", "fr", "baseline1", tmp_path)
    # ... but the upper bound needs 3 target speakers (test, valid, train)
    pair = write_rows(tmp_path / "fr2.csv", rows_for("cafe", "fr", ["01", "02"]))
    with pytest.raises(SettingError, match="target valid speakers"):
        build_setting([esd, pair], "en", "fr", "upper_bound", tmp_path)
    with pytest.raises(SettingError, match="given twice"):
        build_setting([esd, esd], "en", "zh", "baseline1", tmp_path)
    with pytest.raises(SettingError, match="does not exist"):
        build_setting([emodb, tmp_path / "x.csv"], "de", "en", "baseline1", tmp_path)


def test_command_line(manifests, tmp_path, capsys):
    built = main(
        ["--source", "de", "--target", "fr", "--variant", "baseline1", "upper_bound",
         "--manifests", *map(str, manifests), "--save-folder", str(tmp_path),
         "--seed", "5", "--protocol", "speaker"]
    )  # fmt: skip
    assert set(built) == {"baseline1", "upper_bound"}
    assert str(tmp_path / "de_fr" / "upper_bound" / "seed5") in capsys.readouterr().out
    with pytest.raises(SystemExit) as err:
        main(["--source", "de", "--target", "de", "--manifests", str(manifests[1]),
              "--save-folder", str(tmp_path)])  # fmt: skip
    assert err.value.code == 2
    assert "both 'de'" in capsys.readouterr().err


def test_script_form(manifests, tmp_path):
    done = subprocess.run(
        [sys.executable, "data_prep/zero_shot.py", "--source", "en", "--target",
         "de", "--variant", "proposed", "--manifests", *map(str, manifests),
         "--save-folder", str(tmp_path), "--protocol", "speaker"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "en_de" / "proposed" / "seed1234" / "setting.json").is_file()


# ---- Validation sets with a minimum per class and language (issue 19) --------


def test_valid_minimum_per_class_holds_on_urdu(tmp_path):
    # URDU's speakers mostly hold one emotion: the plain split (minimum 0)
    # leaves a class with a single validation utterance for some seeds
    from zsser_modules.data_prep.speakers import held_out_shortfall, speaker_split

    urdu = pd.DataFrame(urdu_rows())
    urdu = urdu[urdu["emo"].isin(EMOTIONS)]
    for seed in range(1, 21):
        kept, held = speaker_split(urdu, 0.2, seed, salt="valid", min_held_per_class=5)
        assert held_out_shortfall(held, 5) == {}, seed
        assert set(kept["emo"]) == set(EMOTIONS)  # training keeps every class
        assert not set(kept["spk_id"]) & set(held["spk_id"])


def test_valid_minimum_zero_is_the_plain_split():
    from zsser_modules.data_prep.speakers import speaker_split

    urdu = pd.DataFrame(urdu_rows())
    for seed in (1, 2, 3):
        plain = speaker_split(urdu, 0.2, seed, salt="valid")[1]
        zero = speaker_split(urdu, 0.2, seed, salt="valid", min_held_per_class=0)[1]
        assert plain["ID"].tolist() == zero["ID"].tolist()


def test_valid_minimum_grows_the_held_out_speakers_when_needed():
    from zsser_modules.data_prep.speakers import speaker_split

    # 10 speakers with one utterance per class: 2 held out (ratio 0.2) give 2
    # per class, a minimum of 4 needs 4 speakers
    df = pd.DataFrame(rows_for("esd", "en", [f"{i:02d}" for i in range(10)]))
    _, held = speaker_split(df, 0.2, 1, min_held_per_class=1)
    assert held["spk_id"].nunique() == 2
    _, held = speaker_split(df, 0.2, 1, min_held_per_class=4)
    assert held["spk_id"].nunique() == 4
    assert held.groupby("emo").size().min() == 4


def test_an_unreachable_minimum_keeps_the_closest_split_and_reports_it(
    tmp_path, caplog
):
    from zsser_modules.data_prep.speakers import held_out_shortfall, speaker_split

    # a class with 2 utterances: the kept side keeps one, valid gets one
    df = pd.DataFrame(rows_for("esd", "en", [f"{i:02d}" for i in range(4)]))
    df = df[(df["emo"] != "sad") | df["spk_id"].isin(["esd_00", "esd_01"])]
    kept, held = speaker_split(df, 0.25, 1, min_held_per_class=3)
    assert set(kept["emo"]) == set(held["emo"]) >= set(EMOTIONS)
    assert held_out_shortfall(held, 3, by=None)["all"]["sad"] == 1
    write_rows(tmp_path / "esd.csv", df.to_dict("records"))
    write_rows(tmp_path / "emodb.csv", rows_for("emodb", "de", ["a", "b"]))
    with caplog.at_level("WARNING"):
        build_setting(
            [tmp_path / "esd.csv", tmp_path / "emodb.csv"],
            "en",
            "de",
            "baseline1",
            tmp_path / "out",
            valid_min_per_class=3,
        )
    assert "valid_min_per_class=3 cannot hold" in caplog.text
    summary = json.loads(
        (setting_folder(tmp_path / "out", "en", "de", "baseline1", 1234))
        .joinpath("setting.json")
        .read_text()
    )
    assert summary["valid_shortfall"]["en"]["sad"] == 1


@pytest.mark.parametrize("variant", ["proposed", "upper_bound"])
def test_build_setting_valid_minimum_per_language(manifests, tmp_path, variant):
    paths = build_setting(
        manifests, "de", "ur", variant, tmp_path, seed=3, valid_min_per_class=3
    )
    valid = read_manifest(paths["valid"])
    counts = valid.groupby(["lang", "emo"]).size()
    assert counts.min() >= 3
    for lang in set(valid["lang"]):  # every class of the language is there
        assert set(valid.loc[valid["lang"] == lang, "emo"]) == set(EMOTIONS)
