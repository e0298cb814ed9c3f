"""The paper's protocol: exact split counts, Table 1, MELD speakers, settings.

Manifests of the real sizes are built in memory from the real IDs (EmoDB,
CaFE and URDU from the package's file lists, ESD from its numbering; MELD
with its official counts and 237 speakers), without audio.
"""

import json
import logging

import pandas as pd
import pytest
from data_prep_utils import wav_bytes, write_rows

from recipes import train
from zsser_modules.data_prep import prepare_corpus
from zsser_modules.data_prep.corpus import CorpusLayoutError
from zsser_modules.data_prep.manifest import read_manifest
from zsser_modules.data_prep.meld import prepare_meld
from zsser_modules.data_prep.paper_protocol import (
    PAPER_SPLITS,
    PAPER_TASKS,
    SPLIT_COUNTS,
    TABLE1,
    Table1Error,
    assign_paper_splits,
    build_committed_splits,
    check_table1,
    committed_splits,
    count_speakers,
    real_id_rows,
    split_counts,
    table1_applies,
    verify_fingerprints,
)
from zsser_modules.data_prep.speakers import is_pseudo_speaker
from zsser_modules.data_prep.zero_shot import VARIANTS, build_setting, main
from zsser_modules.labels import EMOTIONS
from zsser_modules.run import data as run_data

DRAWN = ("esd", "emodb", "cafe", "urdu")


@pytest.fixture(scope="module")
def real():
    """Real-ID manifests of the drawn corpora (4 classes)."""
    return {corpus: real_id_rows(corpus) for corpus in DRAWN}


def meld_rows(n_train=8245, n_dev=897, n_test=2211):
    """A MELD-shaped manifest with the official counts and 237 speakers.

    The IDs follow MELD's scheme (meld_<split>_dia<D>_utt<U>); speakers are
    canonical letter names, plus one pseudo-speaker ("All").
    """
    names = [f"s{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(237)]
    rows = []
    for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        for i in range(n):
            spk = "meld_pseudo_all" if i % 97 == 5 else f"meld_{names[i % 237]}"
            rows.append(
                dict(
                    ID=f"meld_{split}_dia{i // 10}_utt{i % 10}",
                    duration=1.0,
                    wav=f"/meld/{split}/{i}.wav",
                    emo=EMOTIONS[i % 4],
                    spk_id=spk,
                    lang="en",
                    corpus="meld",
                    spk_confounded=0,
                )
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def real_manifests(real, tmp_path_factory):
    """Manifest CSVs of the five corpora at their real sizes (no audio)."""
    root = tmp_path_factory.mktemp("real")
    frames = {"meld": meld_rows(), **real}
    return {
        c: write_rows(root / f"{c}.csv", f.to_dict("records"))
        for c, f in frames.items()
    }


# ---------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("paper_split", PAPER_SPLITS)
@pytest.mark.parametrize("corpus", DRAWN)
def test_exact_counts_on_the_real_ids(real, corpus, paper_split):
    df = real[corpus]
    parts = assign_paper_splits(df, 1234, paper_split)
    counts = tuple(int((parts == p).sum()) for p in ("train", "dev", "test"))
    assert counts == SPLIT_COUNTS[corpus]
    assert parts.index.equals(df.index)


def test_stratified_by_emotion_and_esd_by_speaker_and_emotion(real):
    emodb = real["emodb"]
    parts = assign_paper_splits(emodb, 1234)
    n_emo = emodb["emo"].value_counts()
    test_emo = emodb[parts == "test"]["emo"].value_counts()
    for emo, n in n_emo.items():  # largest remainder: within one of the quota
        assert abs(test_emo[emo] - 38 * n / 339) < 1
    esd = real["esd"]
    parts = assign_paper_splits(esd, 1234)
    cells = esd.assign(part=parts).groupby(["spk_id", "emo", "part"]).size()
    assert set(cells.xs("test", level="part")) == {35}
    assert set(cells.xs("dev", level="part")) == {35}
    # Table 1's speaker counts: every speaker of every corpus stays in train.
    for corpus in DRAWN:
        df = real[corpus]
        train_part = df[assign_paper_splits(df, 1234) == "train"]
        assert train_part["spk_id"].nunique() == df["spk_id"].nunique()


def test_split_is_seeded_and_depends_on_the_corpus_only(real):
    emodb, cafe = real["emodb"], real["cafe"]
    a = assign_paper_splits(emodb, 1234)
    assert a.equals(assign_paper_splits(emodb, 1234))
    assert not a.equals(assign_paper_splits(emodb, 7))
    both = pd.concat([cafe, emodb], ignore_index=True)
    joint = assign_paper_splits(both, 1234)
    assert joint.iloc[len(cafe) :].tolist() == a.tolist()


@pytest.mark.parametrize(("corpus", "n_spk"), [("cafe", 12), ("esd", 10)])
def test_speaker_held_out_on_cafe_and_esd(real, corpus, n_spk):
    df = real[corpus]
    parts = assign_paper_splits(df, 1234, "speaker_held_out")
    speakers = {p: set(df.loc[parts == p, "spk_id"]) for p in ("train", "dev", "test")}
    assert len(speakers["dev"]) == len(speakers["test"]) == 1
    assert len(speakers["train"]) == n_spk - 2
    assert not (speakers["train"] & (speakers["dev"] | speakers["test"]))
    assert speakers["dev"] != speakers["test"]


@pytest.mark.parametrize("corpus", ["emodb", "urdu"])
def test_speaker_held_out_falls_back_to_stratified(real, corpus, caplog):
    df = real[corpus]
    with caplog.at_level(logging.INFO):
        held = assign_paper_splits(df, 1234, "speaker_held_out")
    assert held.equals(assign_paper_splits(df, 1234, "stratified"))
    assert f"{corpus} (" in caplog.text and "stratified by emotion" in caplog.text


def test_proportional_counts_on_small_corpora():
    assert split_counts(24, "emodb") == (19, 2, 3)
    assert split_counts(40, "urdu") == (30, 2, 8)
    assert split_counts(3, "cafe") == (1, 1, 1)
    assert sum(split_counts(1234, "esd")) == 1234
    rows = [
        dict(ID=f"demo_{lang}_{s}_{e}_{k}", emo=e, spk_id=f"demo_{lang}{s}",
             lang=lang, corpus="demo")
        for lang in ("de", "fr", "zh") for s in range(6) for e in EMOTIONS
        for k in range(5)
    ]  # fmt: skip
    rows += [
        dict(ID=f"demo_en_{split}_{k}", emo=EMOTIONS[k % 4], spk_id="demo_en1",
             lang="en", corpus="demo")
        for split, n in (("train", 30), ("dev", 4), ("test", 8)) for k in range(n)
    ]  # fmt: skip
    df = pd.DataFrame(rows)
    parts = assign_paper_splits(df, 1)
    counts = df.assign(part=parts).groupby(["lang", "part"]).size()
    assert counts["en"].to_dict() == {"dev": 4, "test": 8, "train": 30}  # official
    assert tuple(counts["de"][p] for p in ("train", "dev", "test")) == split_counts(
        120, "emodb"
    )
    assert tuple(counts["zh"][p] for p in ("train", "dev", "test")) == split_counts(
        120, "esd"
    )
    # speaker_held_out in proportion: CaFE's rule on the demo's French.
    held = assign_paper_splits(df, 1, "speaker_held_out")
    fr = df[df["lang"] == "fr"].assign(part=held)
    assert fr.groupby("part")["spk_id"].nunique().to_dict() == {
        "dev": 1,
        "test": 1,
        "train": 4,
    }


def test_committed_split_matches_and_a_change_is_one_warning(real, caplog):
    built = build_committed_splits()
    committed = committed_splits()
    assert committed["split_seed"] == 1234
    for corpus in DRAWN:
        assert built["corpora"][corpus] == committed["corpora"][corpus]
    assert committed["corpora"]["meld"]["stratified"]["counts"] == {
        "train": 8245,
        "dev": 897,
        "test": 2211,
    }
    emodb = real["emodb"]
    parts = assign_paper_splits(emodb, 1234)
    with caplog.at_level(logging.INFO):
        (line,) = verify_fingerprints(emodb, parts, 1234, "stratified")
    assert "the committed split" in line
    swapped = parts.copy()
    test_row = swapped[swapped == "test"].index[0]
    train_row = swapped[swapped == "train"].index[0]
    swapped[test_row], swapped[train_row] = "train", "test"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        (line,) = verify_fingerprints(emodb, swapped, 1234, "stratified")
    assert "differs from the committed split" in line and "committed" in line
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert verify_fingerprints(emodb, parts, 99, "stratified") == []  # other seed


# ---------------------------------------------------------------------------
# Settings under the paper protocol, Table 1
# ---------------------------------------------------------------------------


PAPER_CORPORA = {"en": "meld", "zh": "esd", "de": "emodb", "fr": "cafe", "ur": "urdu"}


def recipe_hparams(source, target, variant):
    """The keys of the recipe's hparams that its Table 1 check reads."""
    return {
        "source_lang": source,
        "target_lang": target,
        "variant": variant,
        "languages": list(PAPER_CORPORA),
        "protocol": "paper",
        "keep_all_classes": False,
    }


@pytest.mark.parametrize("target", ["de", "fr", "zh"])
def test_table1_sizes_and_speakers_on_the_real_sizes(
    real_manifests, tmp_path, target, capsys
):
    source = "en"
    paths = build_setting(
        list(real_manifests.values()), source, target, "proposed", tmp_path,
        seed=1234, protocol="paper",
    )  # fmt: skip
    train_df = read_manifest(paths["train"])
    assert len(train_df) == TABLE1[target][0]
    assert sum(count_speakers(train_df).values()) == TABLE1[target][1]
    line = check_table1(train_df, target)
    run_data.run_table1_check(recipe_hparams(source, target, "proposed"), paths,
                              PAPER_CORPORA)  # fmt: skip
    assert capsys.readouterr().out.strip() == line
    baseline1 = build_setting(
        list(real_manifests.values()), source, target, "baseline1", tmp_path,
        protocol="paper",
    )  # fmt: skip
    run_data.run_table1_check(recipe_hparams(source, target, "baseline1"), baseline1,
                              PAPER_CORPORA)  # fmt: skip
    assert capsys.readouterr().out == ""  # not a Table 1 training set
    assert f"{TABLE1[target][0]:,} training utterances" in line
    assert f"{TABLE1[target][1]} speakers (paper: {TABLE1[target][1]};" in line
    summary = json.loads((paths["train"].parent / "setting.json").read_text())
    sizes = {k.split("/")[0]: n for k, n in summary["corpus_sizes"].items()}
    paper = {"en": "meld", "zh": "esd", "de": "emodb", "fr": "cafe", "ur": "urdu"}
    langs = list(paper)
    assert table1_applies(source, target, True, langs, paper, sizes) == (True, "")
    assert not table1_applies(source, target, True, langs, {**paper, "en": "esd"},
                              sizes)[0]  # fmt: skip
    assert not table1_applies(source, target, False, langs, paper, sizes)[0]
    test_df = read_manifest(paths["test"])
    corpus = paper[target]
    assert len(test_df) == SPLIT_COUNTS[corpus][2]
    assert len(read_manifest(paths["test_all"])) == sum(SPLIT_COUNTS[corpus])
    valid_df = read_manifest(paths["valid"])
    assert len(valid_df) == sum(
        SPLIT_COUNTS[c][1] for lang, c in paper.items() if lang != target
    )


def test_table1_stops_with_one_line_on_8244_meld_rows(real, tmp_path):
    frames = {"meld": meld_rows(n_train=8244), **real}
    manifests = [
        write_rows(tmp_path / f"{c}.csv", f.to_dict("records"))
        for c, f in frames.items()
    ]
    paths = build_setting(manifests, "zh", "de", "baseline2", tmp_path / "s",
                          protocol="paper")  # fmt: skip
    with pytest.raises(Table1Error) as error:
        check_table1(read_manifest(paths["train"]), "de")
    # The recipe's check (recipes/train.py) stops with the same line.
    with pytest.raises(Table1Error) as from_recipe:
        run_data.run_table1_check(recipe_hparams("zh", "de", "baseline2"), paths,
                                  PAPER_CORPORA)  # fmt: skip
    assert str(from_recipe.value) == str(error.value)
    message = str(error.value)
    assert "\n" not in message
    assert "meld expected 8,245, found 8,244" in message
    assert "20,164" in message and "20,165" in message
    assert "--table1_check=False" in message and "issue #39" in message
    assert "esd" not in message  # only the corpus that differs is named


def test_upper_bound_holds_the_target_only(real_manifests, tmp_path):
    paths = build_setting(list(real_manifests.values()), "en", "fr", "upper_bound",
                          tmp_path, protocol="paper")  # fmt: skip
    assert sorted(paths) == ["test", "train", "valid"]  # no test_all
    frames = {split: read_manifest(path) for split, path in paths.items()}
    for frame in frames.values():
        assert set(frame["lang"]) == {"fr"}
    assert [len(frames[s]) for s in ("train", "valid", "test")] == [420, 42, 42]
    zero_shot = build_setting(list(real_manifests.values()), "en", "fr",
                              "proposed", tmp_path, protocol="paper")  # fmt: skip
    assert (
        read_manifest(zero_shot["test"])["ID"].tolist() == frames["test"]["ID"].tolist()
    )
    assert zero_shot["train"].parent != paths["train"].parent


def test_every_variant_under_the_paper_protocol(real, tmp_path):
    manifests = [write_rows(tmp_path / f"{c}.csv", real[c].to_dict("records"))
                 for c in ("emodb", "cafe", "urdu")]  # fmt: skip
    assert "baseline2_hier" in VARIANTS
    for variant in VARIANTS:
        paths = build_setting(
            manifests, "fr", "de", variant, tmp_path, protocol="paper"
        )
        train_df = read_manifest(paths["train"])
        test_df = read_manifest(paths["test"])
        assert set(test_df["lang"]) == {"de"} and len(test_df) == 38
        if variant == "upper_bound":
            assert set(train_df["lang"]) == {"de"}
            continue
        assert "de" not in set(train_df["lang"])
        assert len(read_manifest(paths["test_all"])) == 339
        assert set(read_manifest(paths["valid"])["lang"]) <= {"fr", "ur"}
        if variant == "baseline1":
            assert set(train_df["lang"]) == {"fr"} and len(train_df) == 420
        else:
            assert len(train_df) == 420 + 300
    hier = build_setting(manifests, "fr", "de", "baseline2_hier", tmp_path,
                         protocol="paper")  # fmt: skip
    plain = build_setting(manifests, "fr", "de", "baseline2", tmp_path,
                          protocol="paper")  # fmt: skip
    assert hier["train"].read_bytes() == plain["train"].read_bytes()


def test_settings_folder_differs_by_protocol_and_split(real, tmp_path):
    manifests = [write_rows(tmp_path / f"{c}.csv", real[c].to_dict("records"))
                 for c in ("emodb", "cafe")]  # fmt: skip
    folders = {
        build_setting(manifests, "fr", "de", "proposed", tmp_path, **kw)["train"]
        .parent.relative_to(tmp_path)
        .as_posix()
        for kw in (
            {},
            {"protocol": "paper"},
            {"protocol": "paper", "paper_split": "speaker_held_out"},
        )
    }
    assert folders == {
        "fr_de/proposed/seed1234",
        "fr_de/proposed/paper_stratified/seed1234",
        "fr_de/proposed/paper_speaker_held_out/seed1234",
    }
    built = main(["--source", "de", "--target", "fr", "--manifests",
                  *map(str, manifests), "--save-folder", str(tmp_path / "cli"),
                  "--paper-split", "speaker_held_out"])  # fmt: skip
    train_df = read_manifest(built["proposed"]["train"])
    valid_df = read_manifest(built["proposed"]["valid"])
    assert "paper_speaker_held_out" in str(built["proposed"]["train"])
    assert len(train_df) == 266 and len(valid_df) == 35
    test_df = read_manifest(built["proposed"]["test"])
    assert test_df["spk_id"].nunique() == 1 and len(test_df) == 42


# ---------------------------------------------------------------------------
# MELD: official CSVs, speakers, pseudo-speakers
# ---------------------------------------------------------------------------

#: Real rows of MELD's annotation files (split, Speaker, Emotion, Sentiment,
#: Dialogue_ID, Utterance_ID, Season, Episode, StartTime, EndTime).
MELD_ROWS = [
    line.split("|")
    for line in """\
train|Nurse|neutral|neutral|22|1|1|23|00:09:03,834|00:09:06,169
train|All|joy|positive|142|1|2|5|00:03:14,360|00:03:16,820
train|Ross|neutral|neutral|125|3|4|18|00:02:42,287|00:02:48,021
train|Phoebe Sr.|joy|positive|261|3|4|1|00:19:12,276|00:19:14,318
train|Phoebe Sr|neutral|neutral|401|0|3|25|00:05:04,178|00:05:06,179
train|Both|neutral|neutral|466|4|1|4|00:20:14,588|00:20:15,880
train|Nurse #1|sadness|negative|594|7|7|4|00:18:55,467|00:18:58,803
train|Joey and Ross|neutral|neutral|658|9|1|20|00:02:04,207|00:02:05,791
dev|Phoebe|sadness|negative|0|0|4|7|00:20:57,256|00:21:00,049
dev|Monica|surprise|negative|0|1|4|7|00:21:01,927|00:21:03,261
dev|All|joy|positive|1|5|4|4|0:12:44,074|0:12:45,189
test|Rachel|anger|negative|0|1|3|19|00:14:40,629|00:14:47,385
test|Phoebe Sr|joy|positive|32|1|3|25|00:06:00,651|00:06:06,156
test|Nurse|neutral|neutral|72|0|8|23|0:19:16,476|0:19:18,145
""".splitlines()
]
MELD_HEADER = ("Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,"
               "Utterance_ID,Season,Episode,StartTime,EndTime")  # fmt: skip


def build_meld(root):
    """MELD's layout: the official CSVs and wavs under the video folder names."""
    blob = wav_bytes(16000)
    folders = {"train": "train_splits", "dev": "dev_splits_complete",
               "test": "output_repeated_splits_test"}  # fmt: skip
    root.mkdir(parents=True)
    for split, folder in folders.items():
        (root / folder).mkdir()
        lines = [MELD_HEADER]
        for n, row in enumerate(r for r in MELD_ROWS if r[0] == split):
            _, spk, emo, sent, dia, utt, season, episode, start, end = row
            lines.append(f'{n + 1},"Oh, hi.",{spk},{emo},{sent},{dia},{utt},'
                         f'{season},{episode},"{start}","{end}"')  # fmt: skip
            (root / folder / f"dia{dia}_utt{utt}.wav").write_bytes(blob)
        (root / f"{split}_sent_emo.csv").write_text("\n".join(lines) + "\n")
    return root


def test_meld_speakers_pseudo_speakers_and_official_split(tmp_path):
    csv_path = prepare_meld(build_meld(tmp_path / "MELD"), tmp_path / "out")
    df = read_manifest(csv_path).set_index("ID")
    assert len(df) == 13  # Monica's surprise is not in the 4 classes
    spk = df["spk_id"]
    assert (
        spk["meld_train_dia261_utt3"]
        == spk["meld_train_dia401_utt0"]
        == ("meld_phoebesr")
    )
    assert spk["meld_train_dia594_utt7"] == spk["meld_train_dia22_utt1"] == "meld_nurse"
    pseudo = sorted(set(s for s in spk if is_pseudo_speaker(s)))
    assert pseudo == ["meld_pseudo_all", "meld_pseudo_both", "meld_pseudo_joeyandross"]
    assert count_speakers(df[df.index.str.startswith("meld_train")]) == {"meld": 3}
    # The paper protocol takes MELD's official split from the IDs.
    parts = assign_paper_splits(df.reset_index(), 1234)
    assert parts.tolist() == [i.split("_")[1] for i in df.index]


def test_pseudo_speakers_get_the_adversary_ignore_index(tmp_path):
    rows = [
        dict(ID=f"meld_train_dia0_utt{i}", duration=1.0, wav="/x.wav", emo="sad",
             spk_id=spk, lang="en", corpus="meld", spk_confounded=0)
        for i, spk in enumerate(["meld_ross", "meld_pseudo_all", "meld_monica"])
    ]  # fmt: skip
    path = write_rows(tmp_path / "train.csv", rows)
    hparams = {
        "emotions": list(EMOTIONS),
        "save_folder": str(tmp_path / "save"),
        "adv_skip_confounded": True,
        "adv_ignore_index": -100,
        "sample_rate": 16000,
        "max_duration": 15.0,
        "sorting": "random",
        "train_dataloader_options": {},
    }
    datasets, encoder = train.dataio_prep(
        hparams, {"train": path, "valid": path, "test": path}
    )
    assert len(encoder) == 2  # ross, monica: the pseudo-speaker is no class
    datasets["train"].set_output_keys(["id", "spk_encoded"])
    labels = {item["id"]: int(item["spk_encoded"]) for item in datasets["train"]}
    assert labels["meld_train_dia0_utt1"] == -100
    assert sorted(v for k, v in labels.items() if k != "meld_train_dia0_utt1") == [0, 1]


def test_bad_corpus_folders_name_the_corpus(tmp_path, capsys):
    with pytest.raises(CorpusLayoutError, match=r"^meld: data_folder"):
        prepare_corpus("meld", tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "EmoDB").mkdir()
    with pytest.raises(CorpusLayoutError, match=r"^emodb: data_folder"):
        prepare_corpus("emodb", tmp_path / "EmoDB", tmp_path / "out")
    with pytest.raises(SystemExit) as error:
        train.main(
            [
                "hparams/en_de.yaml",
                f"--results_root={tmp_path / 'results'}",
                "--language_corpus={en: meld}",
                f"--meld_folder={tmp_path / 'nowhere'}",
                f"--data_folder={tmp_path}",
                "--noprogressbar",
            ]
        )
    assert error.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("recipes/train.py: meld: data_folder")
    assert str(tmp_path / "nowhere") in err


def test_paper_tasks_are_nine_with_three_targets():
    assert len(PAPER_TASKS) == 9
    assert {task.split("_")[1] for task in PAPER_TASKS} == set(TABLE1)
    assert "ur" not in {lang for task in PAPER_TASKS for lang in task.split("_")}
