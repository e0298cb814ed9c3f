"""Per-corpus preparation on fixture trees with the real file names.

Expected counts come from the file lists' own label column (EmoBox's labels)
and from ESD's naming scheme, not from the code under test.
"""

import json
import os
from collections import Counter

import pandas as pd
import pytest
from data_prep_utils import (
    ESD_EMOTIONS,
    build_esd,
    build_from_file_list,
    expected_counts,
    read_file_list,
)

from zsser_modules.data_prep import prepare_corpus
from zsser_modules.data_prep.cafe import prepare_cafe
from zsser_modules.data_prep.emodb import prepare_emodb
from zsser_modules.data_prep.esd import prepare_esd
from zsser_modules.data_prep.manifest import MANIFEST_COLUMNS, read_manifest
from zsser_modules.data_prep.meld import prepare_meld
from zsser_modules.data_prep.urdu import prepare_urdu
from zsser_modules.labels import ALL_EMOTIONS, EMOTIONS

FOUR = set(EMOTIONS)
ESD_PER_EMOTION = 10


@pytest.fixture(scope="session")
def trees(tmp_path_factory):
    """Build every corpus tree once per session."""
    root = tmp_path_factory.mktemp("corpora")
    return {
        "emodb": build_from_file_list("emodb", root / "emodb"),
        "cafe": build_from_file_list("cafe", root / "cafe"),
        "urdu": build_from_file_list("urdu", root / "urdu"),
        "esd": build_esd(root / "esd", per_emotion=ESD_PER_EMOTION),
        # two speakers with the real 350 utterances per emotion, in the
        # release layout with train/evaluation/test sub-folders
        "esd_full": build_esd(
            root / "esd_full",
            per_emotion=350,
            speakers=["0001", "0011"],
            split_subfolders=True,
        ),
    }


@pytest.fixture(scope="session")
def prepared(trees, tmp_path_factory):
    """Prepare each corpus once (4 classes) and once with every class."""
    out = tmp_path_factory.mktemp("manifests")
    functions = {
        "emodb": prepare_emodb,
        "cafe": prepare_cafe,
        "urdu": prepare_urdu,
        "esd": prepare_esd,
        "esd_full": prepare_esd,
    }
    result = {}
    for name, prepare in functions.items():
        four = prepare(trees[name], out / name / "four")
        every = prepare(trees[name], out / name / "all", keep_all_classes=True)
        result[name] = (read_manifest(four), read_manifest(every), four, every)
    return result


def report_of(csv_path):
    corpus = csv_path.stem
    return json.loads((csv_path.parent / f"{corpus}_report.json").read_text())


def check_schema(df, corpus, lang_set):
    assert tuple(df.columns) == MANIFEST_COLUMNS
    assert df["ID"].is_unique
    assert df["ID"].str.startswith(f"{corpus}_").all()
    assert df["spk_id"].str.startswith(f"{corpus}_").all()
    assert set(df["lang"]) == lang_set
    assert set(df["corpus"]) == {corpus}
    assert set(df["emo"]) <= set(ALL_EMOTIONS)
    assert (df["duration"] == 0.05).all()  # header-only durations, 3 decimals
    assert df["wav"].map(os.path.isabs).all()
    assert df["wav"].map(os.path.isfile).all()
    assert set(df["spk_confounded"]) <= {0, 1}


# ---------------------------------------------------------------------------
# EmoDB
# ---------------------------------------------------------------------------


def test_emodb_counts_match_the_real_corpus(prepared):
    four, every, four_csv, _ = prepared["emodb"]
    check_schema(four, "emodb", {"de"})
    assert len(read_file_list("emodb")) == 535
    assert len(every) == 535
    assert len(four) == 339
    exp4 = expected_counts("emodb", FOUR)
    assert Counter(four["emo"]) == exp4["emotion"]
    assert Counter(four["spk_id"]) == exp4["speaker"]
    assert Counter(every["emo"]) == expected_counts("emodb")["emotion"]
    assert four["spk_id"].nunique() == 10
    assert "emodb_03a01Wa" in set(four["ID"])
    report = report_of(four_csv)
    assert report["n_found"] == 535 and report["n_written"] == 339
    assert report["skipped"]["class not kept"] == 535 - 339
    assert report["not_kept_by_emotion"] == {"boredom": 81, "disgust": 46, "fear": 69}
    assert report["n_skipped_problems"] == 0
    assert report["audio"]["formats"] == {"16000 Hz, 1 ch": 339}


# ---------------------------------------------------------------------------
# CaFE
# ---------------------------------------------------------------------------


def test_cafe_counts_match_the_real_corpus(prepared, trees):
    four, every, four_csv, _ = prepared["cafe"]
    check_schema(four, "cafe", {"fr"})
    assert len(every) == 936 and len(four) == 504
    exp4 = expected_counts("cafe", FOUR)
    assert Counter(four["emo"]) == exp4["emotion"]
    assert Counter(four["emo"]) == {
        "neutral": 72,
        "happy": 144,
        "angry": 144,
        "sad": 144,
    }
    assert Counter(four["spk_id"]) == exp4["speaker"]
    assert four["spk_id"].nunique() == 12
    assert Counter(every["emo"]) == expected_counts("cafe")["emotion"]
    # the fixture has the mis-encoded folder names: labels never come from them
    folders = {p.name for p in (trees["cafe"] / "CaFE_48k").iterdir()}
    assert "ColŠre" in folders and "D‚go–t" in folders
    angry = four[four["wav"].str.contains("/ColŠre/")]
    assert len(angry) == 144 and set(angry["emo"]) == {"angry"}
    assert report_of(four_csv)["n_skipped_problems"] == 0


def test_cafe_accepts_the_release_folder_itself_and_refuses_two_releases(
    trees, tmp_path
):
    direct = prepare_cafe(trees["cafe"] / "CaFE_48k", tmp_path / "direct")
    assert len(read_manifest(direct)) == 504
    root = tmp_path / "two"
    for release in ("CaFE_48k", "CaFE_192k"):
        (root / release / "Neutre").mkdir(parents=True)
        src = trees["cafe"] / "CaFE_48k" / "Neutre" / "01-N-1-1.wav"
        (root / release / "Neutre" / "01-N-1-1.wav").write_bytes(src.read_bytes())
    with pytest.raises(ValueError, match="several releases"):
        prepare_cafe(root, tmp_path / "out")
    chosen = prepare_cafe(root, tmp_path / "out", release="48k")
    assert read_manifest(chosen)["wav"].str.contains("CaFE_48k").all()


# ---------------------------------------------------------------------------
# URDU
# ---------------------------------------------------------------------------


def test_urdu_counts_and_confounding_match_the_real_corpus(prepared):
    four, every, four_csv, _ = prepared["urdu"]
    check_schema(four, "urdu", {"ur"})
    assert len(four) == 400 and len(every) == 400
    assert Counter(four["emo"]) == {e: 100 for e in EMOTIONS}
    assert Counter(four["spk_id"]) == expected_counts("urdu")["speaker"]
    # confounding computed independently from the file list
    per_speaker = {}
    for row in read_file_list("urdu"):
        name = row["path"].rsplit("/", 1)[-1]
        per_speaker.setdefault(name.split("_")[0], set()).add(
            row["emotion_label_in_emobox"]
        )
    single = {f"urdu_{s}" for s, emos in per_speaker.items() if len(emos) == 1}
    assert len(per_speaker) == 29 and len(single) == 26
    assert set(four.loc[four["spk_confounded"] == 1, "spk_id"]) == single
    report = report_of(four_csv)
    assert report["confounding"]["n_speakers"] == 29
    assert report["confounding"]["n_confounded"] == 26
    assert set(report["confounding"]["confounded_speakers"]) == single
    assert report["warnings"].get("label disagreement", 0) == 0  # folder agrees
    assert report["audio"]["formats"] == {"44100 Hz, 2 ch": 400}


def test_urdu_folder_is_a_cross_check_only(trees, tmp_path):
    root = tmp_path / "urdu"
    (root / "Angry").mkdir(parents=True)
    (root / "Sad").mkdir()
    blob = (trees["urdu"] / "Angry" / "SM1_F10_A010.wav").read_bytes()
    (root / "Angry" / "SM1_F10_A010.wav").write_bytes(blob)
    (root / "Sad" / "SM1_F11_A011.wav").write_bytes(blob)  # misplaced file
    csv_path = prepare_urdu(root, tmp_path / "out")
    df = read_manifest(csv_path)
    assert set(df["emo"]) == {"angry"}  # the file name wins
    assert report_of(csv_path)["warnings"]["label disagreement"] == 1


# ---------------------------------------------------------------------------
# ESD
# ---------------------------------------------------------------------------


def test_esd_counts_per_speaker_emotion_language(prepared):
    four, every, four_csv, _ = prepared["esd"]
    check_schema(four, "esd", {"en", "zh"})
    assert len(every) == 20 * 5 * ESD_PER_EMOTION
    assert len(four) == 20 * 4 * ESD_PER_EMOTION
    per = four.groupby(["spk_id", "emo"]).size()
    assert (per == ESD_PER_EMOTION).all() and len(per) == 20 * 4
    langs = four.drop_duplicates("spk_id").set_index("spk_id")["lang"]
    assert {s for s, lang in langs.items() if lang == "zh"} == {
        f"esd_{n:04d}" for n in range(1, 11)
    }
    assert {s for s, lang in langs.items() if lang == "en"} == {
        f"esd_{n:04d}" for n in range(11, 21)
    }
    assert Counter(four["lang"]) == {"en": 4 * 10 * ESD_PER_EMOTION, "zh": 400}
    assert "esd_0011_000001" in set(four["ID"]) and "esd_0001_001401" in set(
        every["ID"]
    )
    assert set(every["emo"]) == FOUR | {"surprise"}
    report = report_of(four_csv)
    # the txt (Chinese words for 0001-0010) agrees with every folder
    assert report["warnings"] == {}
    assert report["not_kept_by_emotion"] == {"surprise": 20 * ESD_PER_EMOTION}


def test_esd_full_speakers_with_split_subfolders(prepared, trees):
    four, every, _, _ = prepared["esd_full"]
    assert (trees["esd_full"] / "0011" / "Angry" / "evaluation").is_dir()
    per = four.groupby(["spk_id", "emo"]).size()
    assert (per == 350).all() and len(per) == 2 * 4  # 4-class: 350 per emotion
    assert Counter(four["lang"]) == {"en": 1400, "zh": 1400}
    assert len(every) == 2 * 1750
    # real numbering: emotion blocks of 350 in folder order
    for emotion, start in zip(ESD_EMOTIONS, range(1, 1750, 350)):
        ids = every[every["emo"] == emotion.lower()]["ID"]
        numbers = ids.str.slice(-6).astype(int)
        assert numbers.min() == start and numbers.max() == start + 349


def test_esd_txt_disagreement_is_counted_and_folder_wins(tmp_path):
    root = build_esd(tmp_path / "esd", per_emotion=2, speakers=["0001", "0011"])
    txt = root / "0001" / "0001.txt"
    txt.write_text(
        txt.read_text(encoding="utf-8").replace(
            "0001_000001\tsome text 1\t中立", "0001_000001\tsome text 1\t快乐"
        ),
        encoding="utf-8",
    )
    (root / "0011" / "0011.txt").unlink()
    csv_path = prepare_esd(root, tmp_path / "out")
    df = read_manifest(csv_path).set_index("ID")
    assert df.loc["esd_0001_000001", "emo"] == "neutral"
    warnings = report_of(csv_path)["warnings"]
    assert warnings["label disagreement"] == 1
    assert warnings["transcript file missing"] == 1


# ---------------------------------------------------------------------------
# MELD (optional)
# ---------------------------------------------------------------------------


def test_meld_from_official_csvs_and_extracted_wavs(tmp_path):
    from data_prep_utils import wav_bytes

    root = tmp_path / "meld"
    header = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID"
    rows = {
        "train": [
            (0, 0, "Ross", "joy"),
            (0, 1, "Mrs. Geller", "anger"),
            (1, 0, "Ross", "fear"),
            (1, 1, "Monica", "sadness"),
        ],
        "dev": [(0, 0, "Monica", "neutral"), (0, 1, "Ross", "surprise")],
    }
    blob = wav_bytes(16000)
    for split, items in rows.items():
        lines = [header] + [
            f'{i},"Hi, there",{spk},{emo},neutral,{d},{u}'
            for i, (d, u, spk, emo) in enumerate(items)
        ]
        (root).mkdir(exist_ok=True)
        (root / f"{split}_sent_emo.csv").write_text("\n".join(lines) + "\n")
        folder = root / ("train_splits" if split == "train" else split)
        folder.mkdir()
        for d, u, _, _ in items:
            if (split, d, u) != ("train", 1, 1):  # one wav missing
                (folder / f"dia{d}_utt{u}.wav").write_bytes(blob)
    (root / "dev" / "dia9_utt9.wav").write_bytes(blob)  # no CSV row
    with pytest.raises(ValueError, match="test_sent_emo.csv"):
        prepare_meld(root, tmp_path / "out")
    csv_path = prepare_meld(root, tmp_path / "out", splits=("train", "dev"))
    df = read_manifest(csv_path)
    assert df["ID"].tolist() == [
        "meld_dev_dia0_utt0",
        "meld_train_dia0_utt0",
        "meld_train_dia0_utt1",
    ]
    assert df["emo"].tolist() == ["neutral", "happy", "angry"]
    assert df["spk_id"].tolist() == ["meld_monica", "meld_ross", "meld_mrsgeller"]
    assert set(df["lang"]) == {"en"}
    report = report_of(csv_path)
    assert report["skipped"]["missing audio"] == 1
    assert report["skipped"]["no metadata row"] == 1
    assert report["skipped"]["class not kept"] == 2  # fear, surprise


def test_prepare_corpus_dispatches_by_name(trees, tmp_path):
    csv_path = prepare_corpus("urdu", trees["urdu"], tmp_path)
    assert csv_path == tmp_path / "urdu.csv"
    assert len(pd.read_csv(csv_path)) == 400


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030", "utf-16"])
def test_esd_mandarin_txt_in_other_encodings(tmp_path, encoding):
    root = build_esd(tmp_path / "esd", per_emotion=1, speakers=["0001"])
    txt = root / "0001" / "0001.txt"
    txt.write_text(txt.read_text(encoding="utf-8"), encoding=encoding)
    csv_path = prepare_esd(root, tmp_path / "out")
    assert report_of(csv_path)["warnings"] == {}  # every Chinese word agrees
    assert len(read_manifest(csv_path)) == 4


def test_prepare_corpus_calls_the_generated_demo_without_data_folder(
    monkeypatch, tmp_path
):
    import zsser_modules.data_prep.demo

    calls = []
    monkeypatch.setattr(
        zsser_modules.data_prep.demo,
        "prepare_demo",
        lambda save_folder, **kw: calls.append((save_folder, kw)) or tmp_path,
    )
    prepare_corpus("demo", None, tmp_path, keep_all_classes=False, seed=3)
    assert calls == [(tmp_path, {"seed": 3})]
    with pytest.raises(ValueError, match="4 classes only"):
        prepare_corpus("demo", None, tmp_path, keep_all_classes=True)
