"""Tests of the layer-wise probe tool (python -m zsser_modules.probe)."""

import json

import pandas as pd
import pytest
from encoder_utils import TINY_LAYERS, make_tiny_whisper, write_tone

from zsser_modules.probe import main

FREQ = {"calm": 140.0, "furious": 420.0}  # any emotion labels


def write_manifest(root, languages=("xx", "yy"), speakers=4, per_emotion=3):
    rows = []
    for lang in languages:
        for spk in range(speakers):
            for emo, freq in FREQ.items():
                for k in range(per_emotion):
                    utt = f"{lang}_{spk}_{emo}_{k}"
                    wav = write_tone(
                        root / "wavs" / f"{utt}.wav",
                        seconds=0.3,
                        freq=freq * (1 + 0.05 * spk),
                        seed=len(rows),
                    )
                    rows.append(
                        dict(
                            ID=utt,
                            duration=0.3,
                            wav=str(wav),
                            emo=emo,
                            spk_id=f"{lang}{spk}",
                            lang=lang,
                            corpus="t",
                            spk_confounded=0,
                        )
                    )
    path = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def run(tmp_path, manifest, *extra):
    out = tmp_path / "probe.json"
    result = main(
        [
            str(manifest),
            "--cache_dir",
            str(tmp_path / "cache"),
            "--json",
            str(out),
            "--noprogressbar",
            *extra,
        ]
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    return result


def test_json_shape_per_layer(tmp_path, capsys):
    manifest = write_manifest(tmp_path, speakers=3, per_emotion=2)
    whisper = make_tiny_whisper(tmp_path / "tiny_whisper")
    result = run(
        tmp_path,
        manifest,
        "--encoder",
        "whisper",
        "--ssl_source",
        str(whisper),
        "--save_path",
        str(tmp_path / "hf"),
    )
    assert [layer["layer"] for layer in result["layers"]] == list(
        range(TINY_LAYERS + 1)
    )
    for layer in result["layers"]:
        assert set(layer) == {"layer", "emo_uar", "spk_acc", "lang_acc"}
        assert all(0 <= layer[k] <= 1 for k in ("emo_uar", "spk_acc", "lang_acc"))
    assert result["chance"]["emo_uar"] == 0.5
    assert result["chance"]["spk_acc"] == pytest.approx(2 / 7)  # 7 held out
    assert result["chance"]["lang_acc"] == 0.5
    assert result["emotions"] == ["calm", "furious"]
    assert result["cache"]["computed"] == 24
    table = capsys.readouterr().out
    assert "| layer | emo UAR | spk acc | lang acc |" in table
    assert "| chance | 50.0 | 28.6 | 50.0 |" in table


def test_single_language_skips_the_language_probe(tmp_path, capsys):
    manifest = write_manifest(tmp_path, languages=("ur",), speakers=3, per_emotion=3)
    result = run(tmp_path, manifest, "--encoder", "fbank_stats")
    assert len(result["layers"]) == 1
    layer = result["layers"][0]
    assert layer["lang_acc"] is None and layer["emo_uar"] > 0.9
    assert layer["spk_acc"] is not None
    assert result["skipped"] == [
        "lang_acc: needs 2 languages (the manifest has ur only)"
    ]
    assert "skipped: lang_acc: needs 2 languages" in capsys.readouterr().out
    # The second call reads the cache.
    again = run(tmp_path, manifest, "--encoder", "fbank_stats")
    assert again["cache"]["computed"] == 0 and again["layers"] == result["layers"]


@pytest.mark.parametrize(
    "problem, expected",
    [
        ("missing_file", "not found"),
        ("missing_column", "lacks the column(s) ['lang']"),
        ("no_source", "needs --ssl_source"),
        ("missing_wav", "not found"),
        ("duplicate_id", "repeats the ID(s)"),
        ("unreadable_wav", "broken.wav"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, problem, expected):
    manifest = write_manifest(tmp_path, speakers=2, per_emotion=2)
    frame = pd.read_csv(manifest)
    args = ["--encoder", "fbank_stats"]
    if problem == "missing_file":
        manifest = tmp_path / "nope.csv"
    elif problem == "missing_column":
        frame.drop(columns="lang").to_csv(manifest, index=False)
    elif problem == "no_source":
        args = ["--encoder", "whisper"]
    elif problem == "missing_wav":
        frame.loc[0, "wav"] = str(tmp_path / "gone.wav")
        frame.to_csv(manifest, index=False)
    elif problem == "unreadable_wav":  # not audio: libsndfile refuses it
        (tmp_path / "broken.wav").write_bytes(b"RIFF0000WAVEnot audio at all")
        frame.loc[0, "wav"] = str(tmp_path / "broken.wav")
        frame.to_csv(manifest, index=False)
    else:
        frame.loc[1, "ID"] = frame.loc[0, "ID"]
        frame.to_csv(manifest, index=False)
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                str(manifest),
                "--cache_dir",
                str(tmp_path / "c"),
                "--noprogressbar",
                *args,
            ]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("probe: error:") and expected in err
    assert len(err.splitlines()) == 1
