r"""MELD (Multimodal EmotionLines Dataset, English, optional) data preparation.

MELD ships video clips (mp4). This script does not decode video: extract the
audio to wav first, one file per utterance, keeping the official names.
Expected folder::

    <data_folder>/train_sent_emo.csv          (the official CSVs)
                 /dev_sent_emo.csv
                 /test_sent_emo.csv
                 /train/dia0_utt0.wav          (audio extracted from
                 /dev/dia0_utt0.wav             train_splits/dia0_utt0.mp4 ...)
                 /test/dia0_utt0.wav

The audio folders may also keep the official names of the video folders
(``train_splits``, ``dev_splits_complete``, ``output_repeated_splits_test``).
One way to extract (any sample rate works; the data pipeline resamples)::

    for f in train_splits/*.mp4; do
        ffmpeg -nostdin -loglevel error -i "$f" -vn -ac 1 -ar 16000 \
            "train/$(basename "${f%.mp4}").wav"
    done

Labels come from the CSV's ``Emotion`` column (neutral, joy -> happy,
sadness -> sad, anger -> angry, surprise, fear, disgust), speakers from its
``Speaker`` column, canonicalised: lower-cased letters only (``meld_ross``,
``meld_mrsgeller``; ``Phoebe Sr.`` and ``Phoebe Sr`` merge), and the labels
that name no single person (``All``, ``Both``, ``X and Y``) become
pseudo-speakers ``meld_pseudo_<name>`` (kept, but not speakers for the
speaker adversary nor for speaker counts). IDs are
``meld_<split>_dia<D>_utt<U>``: the official split stays in the ID, and the
paper protocol uses it (``paper_protocol``). CSV rows whose wav is missing are
counted as ``missing audio``; wav files without a CSV row as ``no metadata
row``. MELD is conversational and imbalanced: expect a much lower UAR than on
the acted corpora.

Run from the repository root::

    python data_prep/meld.py /data/MELD /data/manifests [--splits train dev]

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zsser_modules.data_prep.audio_files import find_files
from zsser_modules.data_prep.corpus import (
    CorpusSpec,
    Utterance,
    layout_error,
    prepare_manifest,
    run_cli,
)
from zsser_modules.data_prep.manifest import PathLike
from zsser_modules.data_prep.report import (
    MISSING_AUDIO,
    NO_METADATA,
    UNPARSABLE_NAME,
    PrepReport,
    SkipItem,
)
from zsser_modules.data_prep.speakers import PSEUDO_SPEAKER_MARK

CORPUS = "meld"
LANG = "en"

#: The official splits, and the official names of their video folders.
SPLITS = ("train", "dev", "test")
OFFICIAL_FOLDERS = {
    "train": "train_splits",
    "dev": "dev_splits_complete",
    "test": "output_repeated_splits_test",
}

#: The CSV's ``Emotion`` column -> canonical emotion.
LABEL_MAP = {
    "neutral": "neutral",
    "joy": "happy",
    "anger": "angry",
    "sadness": "sad",
    "surprise": "surprise",
    "fear": "fear",
    "disgust": "disgust",
}

LAYOUT = (
    "<data_folder>/<split>_sent_emo.csv (official CSVs) and "
    "<data_folder>/<split>/dia<D>_utt<U>.wav (audio extracted from the mp4 "
    "clips), split in train, dev, test\n(the audio folders may keep the "
    "official names train_splits, dev_splits_complete, "
    "output_repeated_splits_test)"
)

_NAME = re.compile(r"^dia(\d+)_utt(\d+)$")


def is_pseudo_label(raw: str) -> bool:
    """Whether a MELD ``Speaker`` label names no single person.

    ``All``, ``Both`` and every ``X and Y`` label (``Joey and Ross``) are
    pseudo-speakers. Labels such as ``Joey/Drake`` (one actor in a role) and
    ``The Guys`` are kept as speakers: with this rule, MELD's 4-class
    training rows hold 237 speakers, the count that makes Table 1's 288 / 286
    / 288 (see ``paper_protocol``).

    Arguments
    ---------
    raw : str
        The ``Speaker`` column.

    Returns
    -------
    bool
        True for a pseudo-speaker.

    Example
    -------
    >>> [is_pseudo_label(s) for s in ("All", "both", "Joey and Ross", "Joey/Drake")]
    [True, True, True, False]
    """
    words = re.findall(r"[a-z]+", raw.lower())
    return words in (["all"], ["both"]) or (len(words) >= 3 and "and" in words[1:-1])


def speaker_name(raw: str) -> str:
    """Turn a MELD ``Speaker`` label into its canonical speaker name.

    The name is the label's letters, lower-cased (``Phoebe Sr.`` and
    ``Phoebe Sr`` are one speaker, as are ``Nurse #1`` and ``Nurse``);
    pseudo-speakers (:func:`is_pseudo_label`) get the ``pseudo_`` mark, so
    their ``spk_id`` is ``meld_pseudo_<name>`` (``speakers.is_pseudo_speaker``):
    their utterances are kept, but the speaker adversary ignores them and
    speaker counts leave them out.

    Arguments
    ---------
    raw : str
        The ``Speaker`` column, e.g. ``"Mrs. Geller"``.

    Returns
    -------
    str
        Lower-case letters (``"unknown"`` if none), ``pseudo_`` first for a
        pseudo-speaker.

    Example
    -------
    >>> [speaker_name(s) for s in ("Mrs. Geller", "Phoebe Sr.", "Nurse #1")]
    ['mrsgeller', 'phoebesr', 'nurse']
    >>> speaker_name("All"), speaker_name("Joey and Ross"), speaker_name("??")
    ('pseudo_all', 'pseudo_joeyandross', 'unknown')
    """
    name = re.sub(r"[^a-z]+", "", raw.lower()) or "unknown"
    return f"{PSEUDO_SPEAKER_MARK}_{name}" if is_pseudo_label(raw) else name


def _audio_dir(data_folder: Path, split: str) -> Path | None:
    """Return the audio folder of a split (``<split>`` or the official name)."""
    for name in (split, OFFICIAL_FOLDERS[split]):
        if (data_folder / name).is_dir():
            return data_folder / name
    return None


def _splits(options: dict) -> tuple[str, ...]:
    splits = tuple(options.get("splits") or SPLITS)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ValueError(f"Unknown MELD split(s) {unknown}; choose from {SPLITS}.")
    return splits


def _check_layout(data_folder: Path, options: dict) -> dict[str, Path]:
    """Return split -> audio folder, or raise a layout error naming what's missing."""
    folders, missing = {}, []
    for split in _splits(options):
        if not (data_folder / f"{split}_sent_emo.csv").is_file():
            missing.append(f"{split}_sent_emo.csv")
        audio = _audio_dir(data_folder, split)
        if audio is None:
            missing.append(f"{split}/ (or {OFFICIAL_FOLDERS[split]}/)")
        else:
            folders[split] = audio
    if missing:
        raise layout_error(
            SPEC,
            data_folder,
            f"missing {', '.join(missing)}",
            "Prepare a subset with splits=('train', 'dev') (--splits train dev) "
            "if you only have some splits.",
        )
    return folders


def _list_audio(data_folder: Path, options: dict) -> list[Path]:
    folders = _check_layout(data_folder, options)
    return [wav for folder in folders.values() for wav in find_files(folder)]


def _metadata_files(data_folder: Path, options: dict) -> list[Path]:
    return [data_folder / f"{split}_sent_emo.csv" for split in _splits(options)]


def read_sent_emo(path: PathLike) -> dict[tuple[int, int], tuple[str, str]]:
    r"""Read an official ``<split>_sent_emo.csv``.

    The CSVs contain a few bytes that are not valid UTF-8; they are replaced
    (only ``Speaker``, ``Emotion``, ``Dialogue_ID`` and ``Utterance_ID`` are
    used).

    Arguments
    ---------
    path : path-like
        The CSV file.

    Returns
    -------
    dict
        ``(dialogue, utterance) -> (speaker, emotion)``.

    Raises
    ------
    CorpusLayoutError
        If a needed column is missing.

    Example
    -------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "dev_sent_emo.csv"
    >>> _ = f.write_text("Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,"
    ...                  "Utterance_ID\n1,\"Oh, hi\",Ross,joy,positive,0,0\n")
    >>> read_sent_emo(f)
    {(0, 0): ('Ross', 'joy')}
    """
    text = Path(path).read_bytes().decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    needed = {"Speaker", "Emotion", "Dialogue_ID", "Utterance_ID"}
    if not needed <= set(reader.fieldnames or ()):
        raise layout_error(
            SPEC, Path(path).parent, f"{path} lacks the columns {sorted(needed)}"
        )
    rows = {}
    for row in reader:
        try:
            key = (int(row["Dialogue_ID"]), int(row["Utterance_ID"]))
        except (TypeError, ValueError):
            continue
        rows[key] = (row["Speaker"] or "", row["Emotion"] or "")
    return rows


@dataclass
class _Context:
    folder_split: dict[Path, str] = field(default_factory=dict)
    rows: dict[tuple[str, int, int], tuple[str, str]] = field(default_factory=dict)


def _load_context(data_folder: Path, options: dict, report: PrepReport) -> _Context:
    """Read the CSVs; count rows whose wav is missing."""
    context = _Context()
    for split, folder in _check_layout(data_folder, options).items():
        context.folder_split[folder] = split
        rows = read_sent_emo(data_folder / f"{split}_sent_emo.csv")
        present = {p.stem for p in find_files(folder)}
        for (dia, utt), value in rows.items():
            context.rows[(split, dia, utt)] = value
            if f"dia{dia}_utt{utt}" not in present:
                report.skip(MISSING_AUDIO, f"{folder}/dia{dia}_utt{utt}.wav", "CSV row")
    report.notes["csv_rows"] = len(context.rows)
    return context


def _parse(path: Path, context: _Context) -> Utterance:
    split = context.folder_split.get(path.parent)
    match = _NAME.match(path.stem)
    if split is None or match is None:
        raise SkipItem(UNPARSABLE_NAME, "expected <split>/dia<D>_utt<U>.wav")
    dia, utt = int(match.group(1)), int(match.group(2))
    row = context.rows.get((split, dia, utt))
    if row is None:
        raise SkipItem(NO_METADATA, f"no row in {split}_sent_emo.csv")
    speaker, emotion = row
    return Utterance(
        f"{split}_dia{dia}_utt{utt}", path, emotion, speaker_name(speaker), LANG
    )


SPEC = CorpusSpec(
    name=CORPUS,
    layout=LAYOUT,
    label_map=LABEL_MAP,
    list_audio=_list_audio,
    parse=_parse,
    load_context=_load_context,
    metadata_files=_metadata_files,
)


def prepare_meld(
    data_folder: PathLike,
    save_folder: PathLike,
    keep_all_classes: bool = False,
    splits: Sequence[str] = SPLITS,
) -> Path:
    r"""Prepare the MELD manifest ``<save_folder>/meld.csv`` (English, ``en``).

    Its official splits are merged into one manifest (the split is kept in
    the ID): the paper protocol uses them, the speaker protocol makes its own
    speaker-independent splits. With the 4 default classes, surprise, fear
    and disgust are not kept (counted).

    Arguments
    ---------
    data_folder : path-like
        Folder with ``<split>_sent_emo.csv`` and ``<split>/dia<D>_utt<U>.wav``.
    save_folder : path-like
        Where ``meld.csv``, ``meld_report.json`` and ``meld_prep.json`` go.
    keep_all_classes : bool
        Also keep surprise, fear and disgust.
    splits : sequence of str
        Official splits to read (default all: train, dev, test).

    Returns
    -------
    Path
        The manifest path.

    Raises
    ------
    CorpusLayoutError
        If a CSV or an audio folder of the requested splits is missing.

    Example
    -------
    >>> import tempfile, pathlib, numpy, soundfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "dev_sent_emo.csv").write_text(
    ...     "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n"
    ...     "1,Hi,Ross,joy,positive,0,0\n2,No,Mrs. Geller,anger,negative,0,1\n"
    ...     "3,Hey!,All,joy,positive,0,2\n")
    >>> (root / "dev").mkdir()
    >>> for name in ("dia0_utt0", "dia0_utt1", "dia0_utt2"):
    ...     soundfile.write(root / "dev" / f"{name}.wav", numpy.zeros(800), 16000)
    >>> import pandas
    >>> df = pandas.read_csv(prepare_meld(root, root / "out", splits=["dev"]))
    >>> df[["ID", "emo", "spk_id"]].values.tolist()
    [['meld_dev_dia0_utt0', 'happy', 'meld_ross'], ['meld_dev_dia0_utt1', 'angry', 'meld_mrsgeller'], ['meld_dev_dia0_utt2', 'happy', 'meld_pseudo_all']]
    """  # noqa: E501
    return prepare_manifest(
        SPEC, data_folder, save_folder, keep_all_classes, {"splits": list(splits)}
    )


def _add_arguments(parser) -> None:
    """Add ``--splits`` to the command line."""
    parser.add_argument(
        "--splits",
        nargs="+",
        default=list(SPLITS),
        choices=SPLITS,
        help="official splits to read (default: train dev test)",
    )


if __name__ == "__main__":
    run_cli(prepare_meld, CORPUS, add_arguments=_add_arguments)
