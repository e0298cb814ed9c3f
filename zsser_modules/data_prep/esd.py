"""ESD (Emotional Speech Dataset, English and Mandarin) data preparation.

Expected folder (as unpacked, e.g. ``Emotional Speech Dataset (ESD)/``)::

    <data_folder>/0001/0001.txt
                 /0001/Neutral/0001_000001.wav
                 /0001/Angry/0001_000351.wav
                 ...
                 /0020/Surprise/0020_001750.wav

Speakers 0001-0010 speak Mandarin (``zh``), 0011-0020 English (``en``). Each
speaker has 350 utterances per emotion, numbered ``<spk>_<idx:06d>`` with idx
1-350 Neutral, 351-700 Angry, 701-1050 Happy, 1051-1400 Sad, 1401-1750
Surprise. Some releases put the files one level deeper, in ``train/``,
``evaluation/`` and ``test/`` sub-folders of each emotion folder: both
layouts are read, and that official utterance-level split is ignored (the
setting builder makes speaker-independent splits).

Label source: the emotion **folder** is the label (present in every release,
one English name for both languages). The speaker's ``<spk>.txt``
(tab-separated ``id, text, emotion``; English words for 0011-0020, Chinese
words 中立 neutral, 快乐 happy, 伤心 sad, 生气 angry, 惊喜 surprise for
0001-0010) is only a cross-check: disagreements are counted in the report as
``label disagreement`` and the folder wins; files missing from the txt are
counted as ``not in transcript``; a missing txt is noted in the report.

Run from the repository root::

    python data_prep/esd.py "/data/Emotional Speech Dataset (ESD)" /data/manifests

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from zsser_modules.data_prep.audio_files import find_files
from zsser_modules.data_prep.corpus import (
    CorpusSpec,
    Utterance,
    layout_error,
    prepare_manifest,
    run_cli,
    subfolder_hint,
)
from zsser_modules.data_prep.manifest import PathLike
from zsser_modules.data_prep.report import UNPARSABLE_NAME, PrepReport, SkipItem

CORPUS = "esd"

#: Emotion folder names, English txt words and Mandarin txt words -> canonical.
LABEL_MAP = {
    "Neutral": "neutral",
    "Happy": "happy",
    "Angry": "angry",
    "Sad": "sad",
    "Surprise": "surprise",
    "中立": "neutral",
    "快乐": "happy",
    "生气": "angry",
    "伤心": "sad",
    "惊喜": "surprise",
}

#: Optional official sub-folders of each emotion folder (ignored as a split).
SPLIT_FOLDERS = ("train", "evaluation", "test")

#: Emotion folders, in ESD's numbering order (350 utterances each).
EMOTION_FOLDERS = ("Neutral", "Angry", "Happy", "Sad", "Surprise")

LAYOUT = (
    "<data_folder>/<spk>/<Emotion>/<spk>_<idx>.wav  (spk 0001-0020, Emotion one "
    "of Neutral Angry Happy Sad Surprise)\n"
    "or <data_folder>/<spk>/<Emotion>/{train,evaluation,test}/<spk>_<idx>.wav\n"
    "plus <data_folder>/<spk>/<spk>.txt (tab-separated: id, text, emotion; "
    "used as a cross-check)\n"
    "(data_folder is the folder holding 0001 ... 0020, e.g. "
    "'Emotional Speech Dataset (ESD)')"
)

_SPEAKER = re.compile(r"^\d{4}$")
_NAME = re.compile(r"^(\d{4})_(\d{6})$")


def speaker_language(speaker: str) -> str | None:
    """Return the language of an ESD speaker: 0001-0010 ``zh``, 0011-0020 ``en``.

    Arguments
    ---------
    speaker : str
        Four-digit speaker folder name.

    Returns
    -------
    str or None
        ``"zh"``, ``"en"``, or None for a speaker outside 0001-0020.

    Example
    -------
    >>> speaker_language("0001"), speaker_language("0011"), speaker_language("0021")
    ('zh', 'en', None)
    """
    number = int(speaker) if speaker.isdigit() else 0
    if 1 <= number <= 10:
        return "zh"
    if 11 <= number <= 20:
        return "en"
    return None


def read_transcript(path: PathLike) -> tuple[dict[str, str], int]:
    r"""Read an ESD speaker txt: ``id<TAB>text<TAB>emotion`` per line.

    The file is decoded as UTF-8 (with or without BOM) or UTF-16 (with BOM),
    falling back to GB18030 for Mandarin files saved in a Chinese code page.
    Lines that do not parse are counted, not fatal.

    Arguments
    ---------
    path : path-like
        ``<spk>/<spk>.txt``.

    Returns
    -------
    labels : dict
        Utterance ID -> emotion word as written in the file.
    n_bad : int
        Non-empty lines that could not be parsed.

    Example
    -------
    >>> import tempfile, pathlib
    >>> txt = pathlib.Path(tempfile.mkdtemp()) / "0001.txt"
    >>> _ = txt.write_text("0001_000001\t打远一看\t中立\nbroken line\n",
    ...                    encoding="utf-8")
    >>> read_transcript(txt)
    ({'0001_000001': '中立'}, 1)
    """
    raw = Path(path).read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16", errors="replace")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("gb18030", errors="replace")
    labels: dict[str, str] = {}
    n_bad = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) < 2 or not _NAME.match(fields[0]) or not fields[-1]:
            n_bad += 1
            continue
        labels[fields[0]] = fields[-1]
    return labels, n_bad


@dataclass
class _Context:
    """Root folder and the txt labels of every speaker that has a txt."""

    root: Path
    transcripts: dict[str, dict[str, str]] = field(default_factory=dict)


def _speaker_dirs(data_folder: Path) -> list[Path]:
    """Return the speaker folders (four digits) of ``data_folder``."""
    return sorted(
        p for p in data_folder.iterdir() if p.is_dir() and _SPEAKER.match(p.name)
    )


def _list_audio(data_folder: Path, options: dict) -> list[Path]:
    """Return every .wav under the speaker folders."""
    speakers = _speaker_dirs(data_folder)
    if not speakers:
        hint = subfolder_hint(
            data_folder, lambda p: (p / "0001").is_dir() or (p / "0011").is_dir()
        )
        raise layout_error(
            SPEC, data_folder, "no speaker folder (0001 ... 0020) in it", hint
        )
    return [wav for spk in speakers for wav in find_files(spk)]


def _metadata_files(data_folder: Path, options: dict) -> list[Path]:
    """Return the speakers' txt files (part of the input fingerprint)."""
    return [
        spk / f"{spk.name}.txt"
        for spk in _speaker_dirs(data_folder)
        if (spk / f"{spk.name}.txt").is_file()
    ]


def _load_context(data_folder: Path, options: dict, report: PrepReport) -> _Context:
    """Read every speaker's txt once (the cross-check labels)."""
    context = _Context(data_folder)
    for spk in _speaker_dirs(data_folder):
        txt = spk / f"{spk.name}.txt"
        if txt.is_file():
            context.transcripts[spk.name], n_bad = read_transcript(txt)
            if n_bad:
                report.warn("unparsable transcript line", txt, count=n_bad)
        else:
            report.warn("transcript file missing", txt, "no cross-check")
    return context


def _parse(path: Path, context: _Context) -> Utterance:
    """Parse ``<spk>/<Emotion>/[split/]<spk>_<idx>.wav``."""
    parts = path.relative_to(context.root).parts
    if len(parts) == 4 and parts[2].lower() in SPLIT_FOLDERS:
        parts = (parts[0], parts[1], parts[3])
    if len(parts) != 3:
        raise SkipItem(UNPARSABLE_NAME, "expected <spk>/<Emotion>/[split/]<file>")
    speaker, folder, _ = parts
    match = _NAME.match(path.stem)
    if match is None or match.group(1) != speaker:
        raise SkipItem(UNPARSABLE_NAME, f"expected {speaker}_<6 digits>.wav")
    lang = speaker_language(speaker)
    if lang is None:
        raise SkipItem(UNPARSABLE_NAME, f"speaker {speaker} is not in 0001-0020")
    notes: tuple[str, ...] = ()
    check = None
    transcript = context.transcripts.get(speaker)
    if transcript is not None:
        check = transcript.get(path.stem)
        if check is None:
            notes = ("not in transcript",)
    return Utterance(path.stem, path, folder, speaker, lang, check, notes)


SPEC = CorpusSpec(
    name=CORPUS,
    layout=LAYOUT,
    label_map=LABEL_MAP,
    list_audio=_list_audio,
    parse=_parse,
    load_context=_load_context,
    metadata_files=_metadata_files,
    sample_rates=(16000,),
)


def prepare_esd(
    data_folder: PathLike, save_folder: PathLike, keep_all_classes: bool = False
) -> Path:
    r"""Prepare the ESD manifest ``<save_folder>/esd.csv`` (``en`` and ``zh``).

    Labels come from the emotion folder, cross-checked against the speaker's
    txt (disagreements counted in the report, the folder wins). Speakers
    0001-0010 are Mandarin (``zh``), 0011-0020 English (``en``); ``spk_id`` is
    ``esd_<spk>``, the ID ``esd_<spk>_<idx>``. With the 4 default classes,
    Surprise is not kept (counted). Reruns with the same options and input
    listing skip the work (see ``esd_prep.json``).

    Arguments
    ---------
    data_folder : path-like
        The folder holding the speaker folders ``0001`` ... ``0020``.
    save_folder : path-like
        Where ``esd.csv``, ``esd_report.json`` and ``esd_prep.json`` go.
    keep_all_classes : bool
        Also keep surprise.

    Returns
    -------
    Path
        The manifest path.

    Raises
    ------
    CorpusLayoutError
        If ``data_folder`` is missing or holds no speaker folder.

    Example
    -------
    >>> import tempfile, pathlib, numpy, soundfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for rel in ("0011/Neutral/0011_000001.wav",
    ...             "0011/Angry/train/0011_000351.wav",
    ...             "0001/Sad/0001_001051.wav"):
    ...     (root / rel).parent.mkdir(parents=True, exist_ok=True)
    ...     soundfile.write(root / rel, numpy.zeros(800), 16000)
    >>> _ = (root / "0001" / "0001.txt").write_text(
    ...     "0001_001051\t文本\t伤心\n", encoding="utf-8")
    >>> import pandas
    >>> df = pandas.read_csv(prepare_esd(root, root / "out"))
    >>> df[["ID", "emo", "spk_id", "lang"]].values.tolist()
    ... # doctest: +NORMALIZE_WHITESPACE
    [['esd_0001_001051', 'sad', 'esd_0001', 'zh'],
     ['esd_0011_000001', 'neutral', 'esd_0011', 'en'],
     ['esd_0011_000351', 'angry', 'esd_0011', 'en']]
    """
    return prepare_manifest(SPEC, data_folder, save_folder, keep_all_classes)


if __name__ == "__main__":
    run_cli(prepare_esd, CORPUS)
