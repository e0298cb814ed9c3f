"""The inference command line on bad input (issue 10, item 6).

A small exported model (frozen filterbank statistics + heads, random weights)
is enough: these tests are about what reaches the CSV and the exit code.
"""

import csv
import functools
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from encoder_utils import write_tone
from speechbrain.lobes.models.VanillaNN import VanillaNN
from speechbrain.nnet.linear import Linear

from zsser_modules.encoders import FbankStatsEncoder
from zsser_modules.inference import (
    AUDIO_SUFFIXES,
    MIN_SECONDS,
    EmotionRecognizer,
    build_module,
    export_inference,
    main,
)
from zsser_modules.labels import EMOTIONS


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    encoder = build_module(functools.partial(FbankStatsEncoder, n_mels=20))
    modules = {
        "fbank_stats": encoder,
        "embedding": build_module(
            VanillaNN, input_shape=[None, encoder.output_size], dnn_neurons=8
        ),
        "emo_classifier": build_module(Linear, input_size=8, n_neurons=4),
    }
    folder = tmp_path_factory.mktemp("run") / "inference"
    export_inference(
        folder, "fbank_stats", modules, EMOTIONS, weights_from_source=["fbank_stats"]
    )
    return folder.parent


def run_cli(*args):
    """The command line in a real process: exit code, stdout, stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "zsser_modules.inference", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stdout, done.stderr


def read_rows(path):
    with open(path, newline="") as stream:
        return {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(stream)}


def test_missing_path_is_one_line_and_exit_code_2(model, tmp_path):
    code, out, err = run_cli(model, tmp_path / "nope.wav", "--output", tmp_path / "p")
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"zsser-classify: error: no such file or folder: '{tmp_path / 'nope.wav'}'"
    ]
    assert not (tmp_path / "p").exists()


def test_missing_model_and_empty_folder_exit_code_2(model, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no audio here")
    assert main([str(model), str(empty)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no audio file in folder" in err[0] and ".mp3" in err[0]
    assert main([str(tmp_path), str(empty)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No exported model" in err[0]


def test_bad_files_are_flagged_never_labelled(model, tmp_path):
    audio = tmp_path / "audio"
    write_tone(audio / "good.wav", seconds=1.0)
    nan = 0.1 * np.random.default_rng(0).standard_normal(16000).astype("float32")
    nan[100:137] = np.nan
    nan[200] = np.inf
    sf.write(audio / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(audio / "silence.wav", np.zeros(16000, "float32"), 16000)
    write_tone(audio / "ten_samples.wav", seconds=10 / 16000)
    write_tone(audio / "short.wav", seconds=MIN_SECONDS / 2)
    (audio / "broken.flac").write_bytes(b"not a flac file")
    output = tmp_path / "p.csv"

    code, out, err = run_cli(model, audio, "--output", output)
    assert code == 2 and "Traceback" not in err
    rows = read_rows(output)
    assert list(rows["good.wav"]) == ["path", "emotion", *EMOTIONS, "warning"]
    assert rows["good.wav"]["emotion"] in EMOTIONS
    assert rows["good.wav"]["warning"] == ""
    expected = {
        "nan.wav": "refused: 38 of 16000 samples are not finite (NaN or Inf)",
        "silence.wav": "silent: RMS level -inf dBFS, below -60 dBFS",
        "ten_samples.wav": "too short: 0.001 s, the minimum is 0.5 s",
        "short.wav": "too short: 0.250 s, the minimum is 0.5 s",
        "broken.flac": "unreadable: Could not decode",
    }
    for name, warning in expected.items():
        row = rows[name]
        assert row["warning"].startswith(warning), (name, row["warning"])
        assert row["emotion"] == "" and all(row[e] == "" for e in EMOTIONS), name
    assert "1 classified, 3 flagged" in out and "1 refused" in out
    assert "1 unreadable" in out
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(
        line.startswith("zsser-classify: error") for line in lines
    )
    assert any("nan.wav" in line for line in lines)
    assert any("broken.flac" in line for line in lines)

    # only flagged (not bad) files: exit code 0
    for name in ("nan.wav", "broken.flac"):
        (audio / name).unlink()
    assert run_cli(model, audio, "--output", output)[0] == 0


def test_library_refuses_non_finite_audio(model):
    recognizer = EmotionRecognizer.from_hparams(source=str(model / "inference"))
    wavs = 0.1 * torch.randn(2, 16000)
    wavs[1, :5] = float("nan")
    with pytest.raises(ValueError, match=r"non-finite samples .* \{1: 5\}"):
        recognizer.classify_batch(wavs)
    out_prob = recognizer.classify_batch(wavs[:1])[0]
    assert torch.isfinite(out_prob).all()


def test_every_format_soundfile_writes_is_found_in_folders(model, tmp_path):
    assert ".mp3" in AUDIO_SUFFIXES  # soundfile.available_formats() has MP3
    tone = (0.3 * np.sin(np.arange(16000) * 0.05)).astype("float32")
    written = {}
    for fmt, suffix in (
        ("WAV", ".wav"),
        ("FLAC", ".flac"),
        ("OGG", ".ogg"),
        ("MP3", ".mp3"),
        ("AIFF", ".aiff"),
        ("CAF", ".caf"),
        ("W64", ".w64"),
        ("AU", ".au"),
    ):
        if fmt not in sf.available_formats():
            continue
        path = tmp_path / "audio" / fmt.lower() / f"x{suffix.upper()}"
        path.parent.mkdir(parents=True)
        sf.write(path, tone, 16000, format=fmt)
        written[path.name + fmt] = path
    assert len(written) >= 6
    output = tmp_path / "p.csv"
    assert main([str(model), str(tmp_path / "audio"), "--output", str(output)]) == 0
    rows = read_rows(output)
    assert len(rows) == len(written)
    assert all(row["emotion"] in EMOTIONS for row in rows.values())
