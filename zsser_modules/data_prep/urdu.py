"""URDU (Urdu emotional speech, Latif et al.) data preparation.

Expected folder (as cloned from the URDU-Dataset repository)::

    <data_folder>/Angry/SM1_F10_A010.wav
                 /Happy/SF9_F1_H01.wav
                 /Neutral/SM20_F8_N012.wav
                 /Sad/...                  (400 files, 100 per class, 44.1 kHz)

The file name ``S{M|F}<n>_F<n>_<E><n>.wav`` gives the speaker (first field,
e.g. ``SM1``) and the emotion: the letter after the second underscore
(A angry, H happy, N neutral, S sad). The label is read from the **file
name**; the emotion folder is a cross-check (disagreements counted in the
report, the file name wins).

Known trap: 26 of the 29 speaker ids occur with a single emotion, so speaker
identity predicts emotion. The report counts these speakers and the
manifest marks them with ``spk_confounded=1`` (the speaker adversary skips
them).

Run from the repository root::

    python data_prep/urdu.py /data/URDU-Dataset /data/manifests

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import re
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
from zsser_modules.data_prep.report import UNPARSABLE_NAME, SkipItem

CORPUS = "urdu"
LANG = "ur"

#: Emotion folders of the corpus.
EMOTION_FOLDERS = ("Angry", "Happy", "Neutral", "Sad")

#: File-name letters and folder names -> canonical emotion.
LABEL_MAP = {
    "A": "angry",
    "H": "happy",
    "N": "neutral",
    "S": "sad",
    "Angry": "angry",
    "Happy": "happy",
    "Neutral": "neutral",
    "Sad": "sad",
}

LAYOUT = (
    "<data_folder>/<Angry|Happy|Neutral|Sad>/S<M|F><n>_F<n>_<A|H|N|S><n>.wav, "
    "e.g. Angry/SM1_F10_A010.wav\n(the folder holding the four emotion folders; "
    "the emotion is the letter after the second underscore)"
)

_NAME = re.compile(r"^(S[MF]\d+)_([A-Za-z]+\d+)_([A-Za-z])(\d+)$")
_FOLDERS = {name.lower() for name in EMOTION_FOLDERS}


def _list_audio(data_folder: Path, options: dict) -> list[Path]:
    """Return the .wav files under ``data_folder`` (emotion folders required)."""
    folders = [
        p for p in data_folder.iterdir() if p.is_dir() and p.name.lower() in _FOLDERS
    ]
    if not folders:
        hint = subfolder_hint(
            data_folder,
            lambda p: any((p / name).is_dir() for name in EMOTION_FOLDERS),
        )
        raise layout_error(
            SPEC, data_folder, "no Angry/Happy/Neutral/Sad folder in it", hint
        )
    return find_files(data_folder)


def parse_name(path: Path, context: object = None) -> Utterance:
    """Parse a URDU file name; the parent folder is kept as a cross-check.

    Arguments
    ---------
    path : Path
        A URDU file, e.g. ``Angry/SM1_F10_A010.wav``.
    context : object
        Unused.

    Returns
    -------
    Utterance
        ID = the stem, speaker = first field (``SM1``), emotion = the letter
        after the second underscore, ``emotion_check`` = the folder name.

    Raises
    ------
    SkipItem
        With reason ``UNPARSABLE_NAME`` if the name does not follow the scheme.

    Example
    -------
    >>> utt = parse_name(Path("/d/Angry/SM1_F10_A010.wav"))
    >>> utt.utt_id, utt.speaker, utt.emotion, utt.emotion_check, utt.lang
    ('SM1_F10_A010', 'SM1', 'A', 'Angry', 'ur')
    """
    match = _NAME.match(path.stem)
    if match is None:
        raise SkipItem(UNPARSABLE_NAME, "expected e.g. SM1_F10_A010.wav")
    return Utterance(
        path.stem, path, match.group(3), match.group(1), LANG, path.parent.name
    )


SPEC = CorpusSpec(
    name=CORPUS,
    layout=LAYOUT,
    label_map=LABEL_MAP,
    list_audio=_list_audio,
    parse=parse_name,
    sample_rates=(44100,),
)


def prepare_urdu(
    data_folder: PathLike, save_folder: PathLike, keep_all_classes: bool = False
) -> Path:
    """Prepare the URDU manifest ``<save_folder>/urdu.csv`` (Urdu, ``ur``).

    Labels come from the file name (folder as cross-check), speakers from its
    first field (``spk_id`` = ``urdu_SM1``), IDs are ``urdu_<stem>``. The
    four classes are the corpus's own, so ``keep_all_classes`` changes
    nothing here (accepted for a uniform interface). Speaker-emotion
    confounding is reported and marked in ``spk_confounded``.

    Arguments
    ---------
    data_folder : path-like
        The folder holding ``Angry/``, ``Happy/``, ``Neutral/``, ``Sad/``.
    save_folder : path-like
        Where ``urdu.csv``, ``urdu_report.json`` and ``urdu_prep.json`` go.
    keep_all_classes : bool
        Accepted for a uniform interface (URDU has the 4 classes only).

    Returns
    -------
    Path
        The manifest path.

    Raises
    ------
    CorpusLayoutError
        If ``data_folder`` is missing or holds no emotion folder.

    Example
    -------
    >>> import tempfile, pathlib, numpy, soundfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for rel in ("Angry/SM1_F10_A010.wav", "Sad/SM1_F2_S02.wav",
    ...             "Happy/SF9_F1_H01.wav"):
    ...     (root / rel).parent.mkdir(parents=True, exist_ok=True)
    ...     soundfile.write(root / rel, numpy.zeros(2205), 44100)
    >>> import pandas
    >>> df = pandas.read_csv(prepare_urdu(root, root / "out"))
    >>> df[["ID", "emo", "spk_id", "spk_confounded"]].values.tolist()
    ... # doctest: +NORMALIZE_WHITESPACE
    [['urdu_SF9_F1_H01', 'happy', 'urdu_SF9', 1],
     ['urdu_SM1_F10_A010', 'angry', 'urdu_SM1', 0],
     ['urdu_SM1_F2_S02', 'sad', 'urdu_SM1', 0]]
    """
    return prepare_manifest(SPEC, data_folder, save_folder, keep_all_classes)


if __name__ == "__main__":
    run_cli(prepare_urdu, CORPUS)
