"""Tests of the synthetic eSpeak NG demo corpus (zsser_modules/data_prep/demo*.py).

A tiny corpus (5 languages x 2 speakers x 4 emotions x 2 = 80 utterances,
about a second to generate) is made once per module and reused.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from zsser_modules.data_prep import demo, demo_espeak, demo_profiles, demo_prosody
from zsser_modules.data_prep.manifest import MANIFEST_COLUMNS, read_manifest
from zsser_modules.labels import EMOTIONS, LANGUAGES

TINY = dict(n_per_class_per_speaker=2, n_speakers=2, progress=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return demo.prepare_demo(tmp_path_factory.mktemp("demo_a"), **TINY)


@pytest.fixture(scope="module")
def tiny_df(tiny):
    return read_manifest(tiny)


def _wav_bytes(df):
    return {uid: open(path, "rb").read() for uid, path in zip(df["ID"], df["wav"])}


def test_manifest_schema_and_counts(tiny, tiny_df):
    assert tiny.name == "demo.csv"
    assert tuple(tiny_df.columns) == MANIFEST_COLUMNS
    assert len(tiny_df) == len(LANGUAGES) * 2 * len(EMOTIONS) * 2
    assert set(tiny_df["corpus"]) == {"demo"}
    assert tiny_df["ID"].is_unique
    assert tiny_df["ID"].str.startswith("demo_").all()
    assert (tiny_df["spk_confounded"] == 0).all()  # every speaker has 4 emotions
    for path in tiny_df["wav"]:
        assert os.path.isabs(path) and os.path.isfile(path)


def test_every_language_and_emotion_present_balanced(tiny_df):
    assert set(tiny_df["lang"]) == set(LANGUAGES)
    counts = tiny_df.groupby(["lang", "emo"]).size()
    assert len(counts) == len(LANGUAGES) * len(EMOTIONS)
    assert (counts == 2 * 2).all()


def test_speakers_disjoint_across_languages(tiny, tiny_df):
    langs_per_speaker = tiny_df.groupby("spk_id")["lang"].nunique()
    assert (langs_per_speaker == 1).all()
    assert tiny_df.groupby("lang")["spk_id"].nunique().eq(2).all()
    # The eSpeak voice variants themselves differ between languages.
    voices = json.loads((tiny.parent / "demo_info.json").read_text())["voices"]
    variants = [voice.split("+")[1] for voice in voices.values()]
    assert len(variants) == len(set(variants)) == len(LANGUAGES) * 2


def test_audio_is_16k_mono_nonsilent_sane_duration(tiny_df):
    for row in tiny_df.itertuples():
        info = sf.info(row.wav)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert row.duration == pytest.approx(info.frames / 16000, abs=1e-3)
        assert 0.5 < row.duration < 8.0, row.ID  # default corpus: 1.2 to 6.7 s
        audio, _ = sf.read(row.wav)
        assert np.sqrt(np.mean(audio**2)) > 1e-3, f"{row.ID} is silent"
        assert np.max(np.abs(audio)) <= demo_prosody.PEAK_LIMIT + 1e-4


def test_labelled_as_synthetic_everywhere(tiny, capsys):
    info = json.loads((tiny.parent / "demo_info.json").read_text())
    assert "not acted" in info["description"].lower()
    readme = (tiny.parent / "demo_wavs" / "README.txt").read_text()
    assert "SYNTHETIC PROSODY, NOT ACTED EMOTION" in readme
    report = json.loads((tiny.parent / "demo_report.json").read_text())
    assert report["notes"]["synthetic"] == demo.SYNTHETIC_NOTICE
    assert "not acted" in demo.__doc__.lower()
    demo.main([str(tiny.parent), "--n-speakers", "2", "--n-per-class", "2", "--quiet"])
    assert "NOT acted" in capsys.readouterr().out


def test_same_seed_gives_identical_bytes(tiny, tiny_df, tmp_path):
    again = demo.prepare_demo(tmp_path, **TINY)
    df = read_manifest(again)
    assert _wav_bytes(df) == _wav_bytes(tiny_df)
    # Manifests are identical apart from the folder they live in.
    relocated = again.read_text().replace(str(tmp_path), str(tiny.parent))
    assert relocated == tiny.read_text()


def test_language_subset_gives_the_same_audio(tiny_df, tmp_path):
    # Each speaker is synthesised from a fresh eSpeak state: what is generated
    # for other languages does not change a speaker's audio.
    sub = read_manifest(demo.prepare_demo(tmp_path, languages=["fr"], **TINY))
    full = tiny_df[tiny_df["lang"] == "fr"]
    assert _wav_bytes(sub) == _wav_bytes(full)


def test_rerun_skips_and_option_change_regenerates(tmp_path):
    options = dict(TINY, languages=["en", "zh"])
    csv = demo.prepare_demo(tmp_path, **options)
    df = read_manifest(csv)
    stamps = {p: os.stat(p).st_mtime_ns for p in [csv, *df["wav"]]}
    assert demo.prepare_demo(tmp_path, **options) == csv
    assert {p: os.stat(p).st_mtime_ns for p in stamps} == stamps

    # A missing output is noticed and regenerated.
    os.remove(df["wav"][0])
    demo.prepare_demo(tmp_path, **options)
    assert os.path.isfile(df["wav"][0])

    # Another seed: new audio, same IDs.
    before = _wav_bytes(df)
    df_seed = read_manifest(demo.prepare_demo(tmp_path, seed=7, **options))
    assert df_seed["ID"].tolist() == df["ID"].tolist()
    assert _wav_bytes(df_seed) != before

    # Fewer utterances: the old wavs are gone, not left behind.
    fewer = dict(options, n_per_class_per_speaker=1)
    df_small = read_manifest(demo.prepare_demo(tmp_path, **fewer))
    on_disk = sorted(str(p) for p in (tmp_path / "demo_wavs").rglob("*.wav"))
    assert on_disk == sorted(df_small["wav"])
    assert len(df_small) == 2 * 2 * len(EMOTIONS)


def test_prosody_differs_by_emotion_in_the_intended_direction(tiny_df):
    def active_rms_db(path):
        audio, _ = sf.read(path)
        speech = audio[np.abs(audio) > 0]  # without the digital-silence padding
        return 10 * np.log10(np.mean(speech**2))

    def speech_seconds(path):
        audio, sr = sf.read(path)
        nonzero = np.flatnonzero(audio)
        return (nonzero[-1] - nonzero[0]) / sr

    by_emotion = tiny_df.groupby("emo")["wav"]
    loudness = by_emotion.apply(lambda s: np.mean([active_rms_db(p) for p in s]))
    duration = by_emotion.apply(lambda s: np.mean([speech_seconds(p) for p in s]))
    assert loudness["angry"] > loudness["neutral"] > loudness["sad"]
    assert loudness["happy"] > loudness["sad"]
    # Emotions get different sentences in a corpus this small: only the
    # large sad/angry contrast is robust.
    assert duration["sad"] > duration["angry"]


def test_profiles_share_arousal_but_differ_between_languages():
    profiles = demo_prosody.PROSODY_PROFILES
    assert set(profiles) == set(LANGUAGES)
    for table in profiles.values():
        assert set(table) == set(EMOTIONS)
        assert table["neutral"] == demo_prosody.Prosody()
        for emo in ("happy", "angry"):
            assert table[emo].gain_db > 0 > table["sad"].gain_db
        assert table["sad"].rate < 1 and table["sad"].range < 1
    # The cue separating angry from happy is not the same everywhere: pitch
    # is higher for happy in English but higher for angry in French.
    en, fr = profiles["en"], profiles["fr"]
    assert en["happy"].pitch_st > en["angry"].pitch_st
    assert fr["angry"].pitch_st > fr["happy"].pitch_st


def test_noise_is_added_at_the_requested_snr(tmp_path):
    options = dict(TINY, languages=["de"], n_speakers=1, n_per_class_per_speaker=1)
    clean = read_manifest(demo.prepare_demo(tmp_path / "clean", **options))
    noisy = read_manifest(
        demo.prepare_demo(tmp_path / "noisy", noise_snr_db=10.0, **options)
    )
    for clean_wav, noisy_wav in zip(clean["wav"], noisy["wav"]):
        x, _ = sf.read(clean_wav)
        y, _ = sf.read(noisy_wav)
        assert len(x) == len(y)
        nonzero = np.flatnonzero(x)
        speech = x[nonzero[0] : nonzero[-1] + 1]
        assert np.all(x[: nonzero[0]] == 0) and np.any(y[: nonzero[0]] != 0)
        snr = 10 * np.log10(np.mean(speech**2) / np.mean((y - x) ** 2))
        assert snr == pytest.approx(10.0, abs=1.0)


def test_bad_options_are_rejected_clearly(tmp_path):
    with pytest.raises(ValueError, match="subset of"):
        demo.prepare_demo(tmp_path, languages=["xx"])
    with pytest.raises(ValueError, match="n_speakers must be between 1 and"):
        demo.prepare_demo(tmp_path, n_speakers=demo_profiles.MAX_SPEAKERS + 1)
    with pytest.raises(ValueError, match="n_per_class_per_speaker"):
        demo.prepare_demo(tmp_path, n_per_class_per_speaker=0)


def test_foreign_files_in_the_audio_folder_are_not_deleted(tmp_path):
    keep = tmp_path / "demo_wavs" / "notes.txt"
    keep.parent.mkdir()
    keep.write_text("mine")
    with pytest.raises(FileExistsError, match="did not write"):
        demo.prepare_demo(tmp_path, **dict(TINY, languages=["en"]))
    assert keep.read_text() == "mine"


def test_missing_espeak_library_gives_a_clear_error(tmp_path, monkeypatch):
    data = demo_espeak.espeak_paths()[1]
    monkeypatch.setenv("ZSSER_ESPEAK_LIBRARY", str(tmp_path / "nowhere.so"))
    monkeypatch.setenv("ZSSER_ESPEAK_DATA", str(data))
    with pytest.raises(demo_espeak.EspeakUnavailableError) as err:
        demo.prepare_demo(tmp_path, **TINY)
    message = str(err.value)
    assert "nowhere.so" in message and "does not exist" in message
    assert "Fix:" in message and "espeakng-loader" in message


def test_unloadable_espeak_library_gives_a_clear_error(tmp_path, monkeypatch):
    broken = tmp_path / "libespeak-ng.so"
    broken.write_bytes(b"not a shared library")
    monkeypatch.setenv("ZSSER_ESPEAK_LIBRARY", str(broken))
    with pytest.raises(demo_espeak.EspeakUnavailableError, match="Could not load"):
        demo.prepare_demo(tmp_path / "out", **TINY)


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main([str(tmp_path), "--n-speakers", "99", "--quiet"])
    assert exit_info.value.code == 2
    assert "n_speakers must be between" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# Profiles: the default mirrors the real corpora (docs/demo.md)
# ---------------------------------------------------------------------------

#: Documented in docs/demo.md and zsser_modules/data_prep/demo_profiles.py (PROFILES).
REALISTIC = {
    # lang: (speakers, utterances, {emotion: utterances}, confounded speakers)
    "en": (41, 1135, {"neutral": 644, "happy": 230, "angry": 161, "sad": 100}, 14),
    "zh": (10, 1400, {"neutral": 350, "happy": 350, "angry": 350, "sad": 350}, 0),
    "de": (10, 179, {"neutral": 43, "happy": 37, "angry": 65, "sad": 34}, 0),
    "fr": (12, 252, {"neutral": 36, "happy": 72, "angry": 72, "sad": 72}, 0),
    "ur": (29, 200, {"neutral": 50, "happy": 50, "angry": 50, "sad": 50}, 26),
}


def _plan_frame(**options):
    import pandas as pd

    from zsser_modules.data_prep.speakers import mark_confounded_speakers

    plan = demo._plan(
        Path("/x"),
        demo_profiles.speaker_counts(**options),
        demo_profiles.official_split_counts(options.get("profile", "realistic")),
    )
    return mark_confounded_speakers(pd.DataFrame(plan))


def test_realistic_profile_mirrors_the_real_corpora():
    df = _plan_frame()
    assert len(df) == sum(row[1] for row in REALISTIC.values()) == 3166
    for lang, (n_spk, n_utt, per_emotion, n_confounded) in REALISTIC.items():
        rows = df[df["lang"] == lang]
        assert rows["spk_id"].nunique() == n_spk, lang
        assert len(rows) == n_utt, lang
        assert rows["emo"].value_counts().to_dict() == per_emotion, lang
        confounded = rows.groupby("spk_id")["spk_confounded"].first()
        assert int(confounded.sum()) == n_confounded, lang
    # EmoDB's imbalance survives the scaling: angry the largest, sad the smallest.
    de = df[df["lang"] == "de"]["emo"].value_counts()
    assert de.idxmax() == "angry" and de.idxmin() == "sad"
    # Every speaker has its own voice, never shared between languages.
    for lang, (n_spk, *_rest) in REALISTIC.items():
        assert len(set(demo_profiles.SPEAKER_VARIANTS[lang][:n_spk])) == n_spk
    all_voices = [v for lang in LANGUAGES for v in demo_profiles.SPEAKER_VARIANTS[lang]]
    assert len(all_voices) == len(set(all_voices))


def test_balanced_profile_is_the_first_release_corpus():
    df = _plan_frame(profile="balanced")
    assert len(df) == 2000 and (df["spk_confounded"] == 0).all()
    assert df.groupby(["lang", "spk_id", "emo"]).size().eq(20).all()
    assert df.groupby("lang")["spk_id"].nunique().eq(5).all()


def test_realistic_urdu_is_generated_with_its_confounded_speakers(tmp_path):
    csv = demo.prepare_demo(tmp_path, languages=["ur"], progress=False)
    df = read_manifest(csv)
    assert len(df) == REALISTIC["ur"][1] and df["spk_id"].nunique() == 29
    per_speaker = df.groupby("spk_id")
    single = per_speaker["emo"].nunique() == 1
    assert int(single.sum()) == 26
    assert (per_speaker["spk_confounded"].first() == single.astype(int)).all()
    info = json.loads((tmp_path / "demo_info.json").read_text())
    assert info["options"]["profile"] == "realistic"


def test_profile_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="set profile: balanced"):
        demo.prepare_demo(tmp_path, profile="realistic", n_speakers=2)
    with pytest.raises(ValueError, match="profile must be one of"):
        demo.prepare_demo(tmp_path, profile="tiny")


# ---------------------------------------------------------------------------
# The English part is shaped like MELD (docs/demo.md)
# ---------------------------------------------------------------------------

#: MELD's official 4-class rows / 10, rounded half up (docs/demo.md).
MELD_DEMO = {
    "train": {"neutral": 471, "happy": 174, "angry": 111, "sad": 68},
    "dev": {"neutral": 47, "happy": 16, "angry": 15, "sad": 11},
    "test": {"neutral": 126, "happy": 40, "angry": 35, "sad": 21},
}


def _english_plan():
    df = _plan_frame()
    return df[df["lang"] == "en"].copy()


def test_english_has_melds_official_split_in_its_ids():
    en = _english_plan()
    split = en["ID"].str.extract(r"^demo_en_(train|dev|test)_s\d+_")[0]
    assert split.notna().all()  # every English ID names its split
    assert (split == en["split"]).all()
    counts = en.groupby([split, en["emo"]]).size().unstack().to_dict("index")
    assert counts == MELD_DEMO
    sizes = split.value_counts()
    assert sizes.to_dict() == {"train": 824, "dev": 89, "test": 222}
    for name, real in zip(("train", "dev", "test"), (8245, 897, 2211)):
        assert sizes[name] / len(en) == pytest.approx(real / 11353, abs=0.005)
    # The other languages have no official split and keep their IDs.
    others = _plan_frame().query("lang != 'en'")
    assert not others["ID"].str.contains("_(?:train|dev|test)_").any()
    assert others["split"].isna().all()


def test_english_class_shares_are_melds():
    en = _english_plan()
    share = en["emo"].value_counts(normalize=True)
    assert share["neutral"] == pytest.approx(0.57, abs=0.01)
    assert share.idxmin() == "sad" and share.idxmax() == "neutral"
    for split in MELD_DEMO:  # sad is the rarest class in every split
        per_class = en[en["split"] == split]["emo"].value_counts()
        assert per_class.idxmin() == "sad", split


def test_english_speakers_are_skewed_like_melds():
    en = _english_plan()
    voices = demo_profiles.SPEAKER_VARIANTS["en"]
    assert en["spk_id"].nunique() == len(voices) == 41
    turns = en["spk_id"].value_counts()
    main = [f"demo_en_s{k}" for k in range(1, 7)]
    # Six main speakers speak about 83 % of the turns, as MELD's six friends.
    assert set(turns.index[:6]) == set(main)
    assert turns[main].sum() / len(en) == pytest.approx(0.826, abs=0.01)
    minor = turns.drop(main)
    assert minor.max() < turns[main].min() / 3
    assert minor.median() <= 3 and (minor <= 2).sum() >= 10
    # Main speakers speak in every split; minor ones recur across splits
    # (as in MELD) or speak in one split only, a few in test only.
    splits = en.groupby("spk_id")["split"].agg(set)
    assert all(splits[spk] == {"train", "dev", "test"} for spk in main)
    minor_splits = splits.drop(main)
    assert (minor_splits.map(len) > 1).sum() >= 3
    assert (minor_splits == {"test"}).sum() >= 3
    # Minor speakers with a single emotion are marked, as the real preparation
    # marks them (the speaker adversary skips them).
    single = en.groupby("spk_id")["emo"].nunique() == 1
    marked = en.groupby("spk_id")["spk_confounded"].first()
    assert (marked == single.astype(int)).all() and single[main].sum() == 0


def test_english_turns_are_short_conversational_lines():
    lines = demo_profiles.CONVERSATION_LINES
    words = [len(line.split()) for line in lines]
    acted = [len(s.split()) for s in demo_profiles.SENTENCES["en"]]
    assert np.median(words) < min(acted) and max(words) <= 12
    en = _english_plan()
    assert set(en["text"]) == set(lines)
    # Every line equally often (to one) in every emotion: the text says
    # nothing about the emotion.
    table = en.groupby(["emo", "text"]).size().unstack()
    assert (table.max(axis=1) - table.min(axis=1) <= 1).all()


def test_english_plan_is_deterministic():
    first = demo_profiles.meld_split_counts(41)
    assert demo_profiles.meld_split_counts(41) == first
    a, b = _english_plan(), _english_plan()
    assert a[["ID", "text", "spk_id"]].equals(b[["ID", "text", "spk_id"]])
    with pytest.raises(ValueError, match="at least 7 speakers"):
        demo_profiles.meld_split_counts(6)


def test_every_english_voice_is_voiced_and_loads():
    # whisper/whisperf are left out: unvoiced speech has no pitch to shape.
    voices = demo_profiles.SPEAKER_VARIANTS["en"]
    assert not {"whisper", "whisperf"} & set(voices)
    with demo_espeak.EspeakSynth() as tts:
        for variant in voices:
            tts.set_voice(f"en+{variant}")


def test_klatt_voices_do_not_depend_on_what_came_before():
    # The Klatt synthesiser draws noise from the C library's rand(): each
    # open() seeds it, so a Klatt voice sounds the same whatever preceded it.
    def say(tts, voice, text):
        tts.open(seed=3)
        tts.set_voice(voice)
        out = tts.synth(text)
        tts.close()
        return out.tobytes()

    sentence = "Le train part à sept heures du matin."
    tts = demo_espeak.EspeakSynth()
    alone = say(tts, "fr+caleb", sentence)  # Klatt, breath only (demo_fr_s10)
    say(tts, "en+klatt2", "Where is he? Okay, so we meet at the coffee house.")
    assert say(tts, "fr+caleb", sentence) == alone
    assert say(demo_espeak.EspeakSynth(), "fr+caleb", sentence) == alone


def test_realistic_english_is_generated_with_short_turns(tmp_path):
    csv = demo.prepare_demo(tmp_path, languages=["en"], progress=False)
    df = read_manifest(csv)
    assert len(df) == REALISTIC["en"][1] and df["spk_id"].nunique() == 41
    assert df["ID"].str.match(r"demo_en_(train|dev|test)_s\d+_").all()
    assert 0.3 < df["duration"].min() and df["duration"].max() < 8.0
    assert df["duration"].median() < 1.8  # the acted sentences: about 2.5 s
    info = json.loads((tmp_path / "demo_info.json").read_text())
    assert info["official_splits"] == {"en": {"train": 824, "dev": 89, "test": 222}}
    assert info["sentences"]["en"] == list(demo_profiles.CONVERSATION_LINES)
    assert info["demo_version"] == demo.DEMO_VERSION >= 3
    readme = (tmp_path / "demo_wavs" / "README.txt").read_text()
    assert "train 824 / dev 89 / test 222" in readme
