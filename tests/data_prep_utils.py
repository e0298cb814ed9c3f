"""Fixture builders for the data-prep tests: corpus trees with the real file names.

EmoDB, CaFE and URDU trees are built from
``zsser_modules/data_prep/file_lists/*.csv`` (every real file of these
corpora, folder names as they unpack, including CaFE's mis-encoded ones); ESD
from its naming scheme. Every file is the same tiny wav (0.05 s of
low-amplitude noise) at the corpus's sample rate, written from one byte
string, so thousands of files take a fraction of a second.
"""

from __future__ import annotations

import collections
import csv
import io
from pathlib import Path

import numpy as np
import soundfile as sf

FILE_LISTS = (
    Path(__file__).resolve().parents[1] / "zsser_modules" / "data_prep" / "file_lists"
)

#: (sample rate, channels) used for each corpus's fixture files. The file
#: lists give the rates; channel counts are not listed: URDU is written as
#: stereo to exercise multi-channel headers.
FORMATS = {
    "esd": (16000, 1),
    "emodb": (16000, 1),
    "cafe": (48000, 1),
    "urdu": (44100, 2),
    "meld": (16000, 1),
}

#: ESD emotion folders in numbering order (350 utterances each).
ESD_EMOTIONS = ("Neutral", "Angry", "Happy", "Sad", "Surprise")
ESD_ZH_WORDS = {
    "Neutral": "中立",
    "Angry": "生气",
    "Happy": "快乐",
    "Sad": "伤心",
    "Surprise": "惊喜",
}

# The file lists' label column (as EmoBox wrote it) -> canonical emotion:
# used by the tests as an expectation independent of the code under test.
EMOBOX_TO_CANONICAL = {
    "emodb": {
        "anger": "angry",
        "happy": "happy",
        "sad": "sad",
        "neutral": "neutral",
        "boredem": "boredom",
        "disgust": "disgust",
        "fear": "fear",
    },
    "cafe": {
        "c": "angry",
        "j": "happy",
        "t": "sad",
        "n": "neutral",
        "d": "disgust",
        "p": "fear",
        "s": "surprise",
    },
    "urdu": {"A": "angry", "H": "happy", "S": "sad", "N": "neutral"},
}


def wav_bytes(sample_rate: int, channels: int = 1, seconds: float = 0.05) -> bytes:
    """Return a tiny 16-bit wav of low-amplitude noise, as bytes."""
    rng = np.random.default_rng(0)
    frames = int(round(sample_rate * seconds))
    data = (rng.standard_normal((frames, channels)) * 30).astype(np.int16)
    buffer = io.BytesIO()
    sf.write(buffer, data, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def read_file_list(corpus: str) -> list[dict[str, str]]:
    """Rows of ``file_lists/<corpus>-files.csv`` (path, label, rate)."""
    with open(FILE_LISTS / f"{corpus}-files.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def expected_counts(corpus: str, classes=None) -> dict[str, collections.Counter]:
    """Per-emotion and per-speaker counts computed from the file list's labels.

    Speakers: EmoDB the first two characters, CaFE the first field, URDU the
    first underscore field of the file name.
    """
    emotions: collections.Counter = collections.Counter()
    speakers: collections.Counter = collections.Counter()
    for row in read_file_list(corpus):
        emo = EMOBOX_TO_CANONICAL[corpus][row["emotion_label_in_emobox"]]
        if classes is not None and emo not in classes:
            continue
        name = row["path"].rsplit("/", 1)[-1]
        speaker = {"emodb": name[:2], "cafe": name.split("-")[0]}.get(
            corpus, name.split("_")[0]
        )
        emotions[emo] += 1
        speakers[f"{corpus}_{speaker}"] += 1
    return {"emotion": emotions, "speaker": speakers}


def build_from_file_list(corpus: str, root: Path) -> Path:
    """Write every file of a corpus's file list under ``root`` (tiny audio)."""
    blob = wav_bytes(*FORMATS[corpus])
    made = set()
    for row in read_file_list(corpus):
        path = root / row["path"]
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(blob)
    return root


def esd_index(emotion: str, k: int) -> int:
    """Real ESD numbering: k-th (1-based) utterance of an emotion folder."""
    return ESD_EMOTIONS.index(emotion) * 350 + k


def build_esd(
    root: Path,
    per_emotion: int = 10,
    speakers=None,
    split_subfolders: bool = False,
    transcripts: bool = True,
) -> Path:
    """Write an ESD tree: ``<spk>/<Emotion>/[split/]<spk>_<idx:06d>.wav`` + txt.

    ``per_emotion`` utterances per emotion and speaker with the real numbering
    (the first ones of each 350 block). With ``split_subfolders``, files go to
    ``train``/``evaluation``/``test`` like the official split (300/20/30 of
    350, proportionally for fewer). Mandarin speakers' txt use Chinese words.
    """
    blob = wav_bytes(*FORMATS["esd"])
    speakers = speakers or [f"{n:04d}" for n in range(1, 21)]
    for spk in speakers:
        lines = []
        mandarin = int(spk) <= 10
        for emotion in ESD_EMOTIONS:
            for k in range(1, per_emotion + 1):
                utt = f"{spk}_{esd_index(emotion, k):06d}"
                folder = root / spk / emotion
                if split_subfolders:
                    position = (k - 1) * 350 // per_emotion
                    folder /= (
                        "train"
                        if position < 300
                        else "evaluation"
                        if position < 320
                        else "test"
                    )
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{utt}.wav").write_bytes(blob)
                word = ESD_ZH_WORDS[emotion] if mandarin else emotion
                lines.append(f"{utt}\tsome text {k}\t{word}")
        if transcripts:
            (root / spk / f"{spk}.txt").write_text(
                "\n".join(lines) + "\n", encoding="utf-8"
            )
    return root


def write_rows(path: Path, rows: list[dict]) -> Path:
    """Write manifest-like rows with the manifest writer of data_prep."""
    from zsser_modules.data_prep.manifest import write_manifest

    return write_manifest(rows, path)
