"""Bad input, stale-manifest protection and the command line of data_prep."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO_ROOT
from data_prep_utils import build_esd, build_from_file_list, wav_bytes

from zsser_modules.data_prep.corpus import CorpusLayoutError
from zsser_modules.data_prep.emodb import prepare_emodb
from zsser_modules.data_prep.esd import prepare_esd
from zsser_modules.data_prep.manifest import read_manifest
from zsser_modules.data_prep.urdu import prepare_urdu

GOOD = ["03a01Wa", "03a01Nc", "08a02Fe", "09b03Ta", "10a04Wb", "11b01Nd"]


@pytest.fixture
def emodb(tmp_path):
    """A small EmoDB tree with six valid files (4 classes)."""
    wav = tmp_path / "emodb" / "wav"
    wav.mkdir(parents=True)
    blob = wav_bytes(16000)
    for name in GOOD:
        (wav / f"{name}.wav").write_bytes(blob)
    return tmp_path / "emodb"


def report(save_folder, corpus="emodb"):
    return json.loads((save_folder / f"{corpus}_report.json").read_text())


# ---------------------------------------------------------------------------
# Missing / wrong data folder
# ---------------------------------------------------------------------------


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusLayoutError) as err:
        prepare_emodb(tmp_path / "nope", tmp_path / "out")
    message = str(err.value)
    assert "does not exist" in message and "Expected layout" in message
    assert "wav/03a01Wa.wav" in message
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("prepare", "expected"),
    [
        (prepare_emodb, "no wav/ folder"),
        (prepare_esd, "no speaker folder"),
        (prepare_urdu, "no Angry/Happy/Neutral/Sad folder"),
    ],
)
def test_wrong_folder_is_a_clear_error(tmp_path, prepare, expected):
    wrong = build_from_file_list("cafe", tmp_path / "cafe")  # not this corpus
    with pytest.raises(CorpusLayoutError, match=expected) as err:
        prepare(wrong, tmp_path / "out")
    assert "Expected layout" in str(err.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_wrong_folder_suggests_the_right_one(emodb, tmp_path):
    with pytest.raises(CorpusLayoutError, match="Did you mean .*emodb"):
        prepare_emodb(tmp_path, tmp_path / "out")
    with pytest.raises(CorpusLayoutError, match="pass its parent folder"):
        prepare_emodb(emodb / "wav", tmp_path / "out")


def test_folder_without_any_usable_file_is_an_error_with_a_report(emodb, tmp_path):
    for path in (emodb / "wav").iterdir():
        path.write_bytes(b"")
    with pytest.raises(CorpusLayoutError, match="none of the 6 audio files"):
        prepare_emodb(emodb, tmp_path / "out")
    assert report(tmp_path / "out")["skipped"]["empty file"] == 6
    assert not (tmp_path / "out" / "emodb.csv").exists()


# ---------------------------------------------------------------------------
# Bad items: skipped and counted, nothing valid lost
# ---------------------------------------------------------------------------


def test_bad_items_are_skipped_and_counted(emodb, tmp_path, caplog):
    wav = emodb / "wav"
    (wav / "12a01Wa.wav").write_bytes(b"")  # empty file
    sf.write(wav / "12a01Nb.wav", np.zeros((0,), np.int16), 16000)  # 0 frames
    (wav / "12a02Ta.wav").write_bytes(b"RIFF garbage, not audio" * 10)  # unreadable
    (wav / "12a02Xa.wav").write_bytes(wav_bytes(16000))  # unknown label X
    (wav / "notes.wav").write_bytes(wav_bytes(16000))  # unparsable name
    (wav / "13a05La.wav").write_bytes(wav_bytes(16000))  # boredom: class not kept
    with caplog.at_level(logging.INFO, logger="zsser_modules.data_prep"):
        csv_path = prepare_emodb(emodb, tmp_path / "out")
    df = read_manifest(csv_path)
    assert sorted(df["ID"]) == sorted(f"emodb_{n}" for n in GOOD)  # nothing lost
    rep = report(tmp_path / "out")
    assert rep["n_found"] == len(GOOD) + 6
    skipped = rep["skipped"]
    assert skipped["empty file"] == 1
    assert skipped["zero-length audio"] == 1
    assert skipped["unreadable audio"] == 1
    assert skipped["unknown label"] == 1
    assert skipped["unparsable name"] == 1
    assert skipped["class not kept"] == 1
    assert rep["n_skipped_problems"] == 5
    assert any("12a02Xa" in e for e in rep["examples"]["unknown label"])
    # problems are logged as a warning with the summary line
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "5 skipped for problems" in warnings[0].getMessage()


def test_duplicate_ids_are_skipped_and_counted(tmp_path):
    # the same ESD utterance in the flat layout and in a train/ sub-folder
    root = build_esd(tmp_path / "esd", per_emotion=2, speakers=["0011"])
    src = root / "0011" / "Angry" / "0011_000351.wav"
    (root / "0011" / "Angry" / "train").mkdir()
    (root / "0011" / "Angry" / "train" / src.name).write_bytes(src.read_bytes())
    csv_path = prepare_esd(root, tmp_path / "out")
    df = read_manifest(csv_path)
    assert len(df) == 4 * 2 and df["ID"].is_unique
    kept = df.set_index("ID").loc["esd_0011_000351", "wav"]
    assert kept == str(src)  # first path in sorted order wins
    rep = report(tmp_path / "out", "esd")
    assert rep["skipped"]["duplicate ID"] == 1
    assert "already from" in rep["examples"]["duplicate ID"][0]


def test_invalid_first_copy_does_not_hide_a_valid_duplicate(tmp_path):
    root = tmp_path / "urdu"
    for folder in ("Angry", "Happy"):
        (root / folder).mkdir(parents=True)
    (root / "Angry" / "SM1_F1_A01.wav").write_bytes(b"")  # broken copy first
    (root / "Happy" / "SM1_F1_A01.wav").write_bytes(wav_bytes(44100))
    (root / "Happy" / "SM2_F1_H01.wav").write_bytes(wav_bytes(44100))
    df = read_manifest(prepare_urdu(root, tmp_path / "out"))
    assert sorted(df["ID"]) == ["urdu_SM1_F1_A01", "urdu_SM2_F1_H01"]
    rep = report(tmp_path / "out", "urdu")
    assert rep["skipped"]["empty file"] == 1 and rep["skipped"]["duplicate ID"] == 0


# ---------------------------------------------------------------------------
# Stale-manifest protection
# ---------------------------------------------------------------------------


def test_rerun_with_same_options_skips(emodb, tmp_path, caplog):
    out = tmp_path / "out"
    csv_path = prepare_emodb(emodb, out)
    before = csv_path.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="zsser_modules.data_prep"):
        assert prepare_emodb(emodb, out) == csv_path
    assert csv_path.stat().st_mtime_ns == before
    assert "skipping preparation" in caplog.text


def test_changed_option_rebuilds(emodb, tmp_path, caplog):
    (emodb / "wav" / "13a05La.wav").write_bytes(wav_bytes(16000))  # boredom
    out = tmp_path / "out"
    assert len(read_manifest(prepare_emodb(emodb, out))) == 6
    with caplog.at_level(logging.INFO, logger="zsser_modules.data_prep"):
        every = read_manifest(prepare_emodb(emodb, out, keep_all_classes=True))
    assert len(every) == 7 and "boredom" in set(every["emo"])
    assert "keep_all_classes: False -> True" in caplog.text
    assert len(read_manifest(prepare_emodb(emodb, out))) == 6  # and back


def test_changed_input_rebuilds(emodb, tmp_path):
    out = tmp_path / "out"
    assert len(read_manifest(prepare_emodb(emodb, out))) == 6
    (emodb / "wav" / "14a01Fa.wav").write_bytes(wav_bytes(16000))  # new file
    assert len(read_manifest(prepare_emodb(emodb, out))) == 7
    (emodb / "wav" / "14a01Fa.wav").unlink()  # removed file
    assert len(read_manifest(prepare_emodb(emodb, out))) == 6
    sf.write(emodb / "wav" / "03a01Wa.wav", np.zeros(1600, np.int16), 16000)
    df = read_manifest(prepare_emodb(emodb, out))  # replaced file
    assert df.set_index("ID").loc["emodb_03a01Wa", "duration"] == 0.1


def test_missing_or_edited_outputs_rebuild(emodb, tmp_path):
    out = tmp_path / "out"
    csv_path = prepare_emodb(emodb, out)
    csv_path.unlink()
    assert len(read_manifest(prepare_emodb(emodb, out))) == 6
    (out / "emodb_prep.json").write_text("{not json")
    before = csv_path.stat().st_mtime_ns
    prepare_emodb(emodb, out)
    assert csv_path.stat().st_mtime_ns != before


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def run_script(*args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_script_form_runs_from_the_repository_root(emodb, tmp_path):
    out = tmp_path / "out"
    done = run_script("data_prep/emodb.py", str(emodb), str(out), "--keep-all-classes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out / "emodb.csv")
    assert "6 rows written" in done.stderr  # the summary is logged
    assert len(read_manifest(out / "emodb.csv")) == 6
    failed = run_script("data_prep/emodb.py", str(tmp_path / "nope"), str(out))
    assert failed.returncode == 2
    assert "Expected layout" in failed.stderr and "Traceback" not in failed.stderr


def test_every_documented_command_is_a_script_of_a_runnable_module():
    """``python data_prep/<name>.py`` (README, docs) runs data_prep.<name>'s main."""
    import importlib.util
    import re
    from pathlib import Path

    scripts = sorted(p.stem for p in (REPO_ROOT / "data_prep").glob("*.py"))
    for name in scripts:
        module = f"zsser_modules.data_prep.{name}"
        script = (REPO_ROOT / "data_prep" / f"{name}.py").read_text(encoding="utf-8")
        assert re.search(rf'runpy\.run_module\(\s*"{module}"', script), name
        source = Path(importlib.util.find_spec(module).origin).read_text("utf-8")
        assert 'if __name__ == "__main__":' in source, module
    documents = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    text = "\n".join(p.read_text(encoding="utf-8") for p in documents)
    documented = set(re.findall(r"python data_prep/(\w+)\.py", text))
    assert documented and documented <= set(scripts), documented - set(scripts)


def test_exclusive_serialises_concurrent_preparations(tmp_path):
    import threading
    import time

    from zsser_modules.data_prep.locks import exclusive

    inside, overlaps = [], []

    @exclusive("toy")
    def prepare(save_folder):
        inside.append(1)
        if len(inside) > 1:
            overlaps.append(1)
        time.sleep(0.05)
        inside.pop()

    threads = [threading.Thread(target=prepare, args=(tmp_path,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not overlaps
    assert list(tmp_path.iterdir()) == []  # the lock is not in the output folder
