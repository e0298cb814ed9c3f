"""EmoDB (Berlin Database of Emotional Speech, German) data preparation.

Expected folder (as unpacked from the official ``download.zip``)::

    <data_folder>/wav/03a01Wa.wav
                 /wav/03a01Nc.wav
                 ...                    (535 files, 16 kHz mono)

The file name is ``<speaker:2 digits><text code:a01..b10><emotion><version>``:
the 6th character is the emotion (W anger, L boredom, E disgust, A fear,
F happiness, T sadness, N neutral), the first two digits the speaker (10
speakers: 03 08 09 10 11 12 13 14 15 16). Other folders of the archive
(``lablaut/``, ``silb/``, ...) are not read.

Run from the repository root::

    python data_prep/emodb.py /data/emodb /data/manifests [--keep-all-classes]

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

CORPUS = "emodb"
LANG = "de"

#: The 6th character of an EmoDB file name -> canonical emotion.
LABEL_MAP = {
    "W": "angry",  # Wut / Ärger
    "L": "boredom",  # Langeweile
    "E": "disgust",  # Ekel
    "A": "fear",  # Angst
    "F": "happy",  # Freude
    "T": "sad",  # Trauer
    "N": "neutral",
}

LAYOUT = (
    "<data_folder>/wav/<speaker><text><emotion><version>.wav, e.g. "
    "wav/03a01Wa.wav\n(the folder that contains wav/, as unpacked from EmoDB's "
    "download.zip; the 6th character of the name is the emotion)"
)

_NAME = re.compile(r"^(\d{2})([a-z]\d{2})([A-Z])([a-z])$")


def _list_audio(data_folder: Path, options: dict) -> list[Path]:
    """Return the files of ``<data_folder>/wav``."""
    wav_dir = data_folder / "wav"
    if not wav_dir.is_dir():
        if find_files(data_folder, recursive=False):
            hint = "It holds .wav files itself: pass its parent folder."
        else:
            hint = subfolder_hint(data_folder, lambda p: (p / "wav").is_dir())
        raise layout_error(SPEC, data_folder, "there is no wav/ folder in it", hint)
    return find_files(wav_dir, recursive=False)


def parse_name(path: Path, context: object = None) -> Utterance:
    """Parse an EmoDB file name into ID, speaker and emotion code.

    Arguments
    ---------
    path : Path
        An EmoDB file, e.g. ``wav/03a01Wa.wav``.
    context : object
        Unused (no metadata file).

    Returns
    -------
    Utterance
        ID = the file stem, speaker = the first two digits, emotion = the 6th
        character.

    Raises
    ------
    SkipItem
        With reason ``UNPARSABLE_NAME`` if the name does not follow EmoDB's
        scheme.

    Example
    -------
    >>> utt = parse_name(Path("/d/wav/03a01Wa.wav"))
    >>> utt.utt_id, utt.speaker, utt.emotion, utt.lang
    ('03a01Wa', '03', 'W', 'de')
    """
    match = _NAME.match(path.stem)
    if match is None:
        raise SkipItem(UNPARSABLE_NAME, "expected e.g. 03a01Wa.wav")
    return Utterance(path.stem, path, match.group(3), match.group(1), LANG)


SPEC = CorpusSpec(
    name=CORPUS,
    layout=LAYOUT,
    label_map=LABEL_MAP,
    list_audio=_list_audio,
    parse=parse_name,
    sample_rates=(16000,),
)


def prepare_emodb(
    data_folder: PathLike, save_folder: PathLike, keep_all_classes: bool = False
) -> Path:
    """Prepare the EmoDB manifest ``<save_folder>/emodb.csv`` (German, ``de``).

    Labels come from the 6th character of the file name, speakers from its
    first two digits (``spk_id`` = ``emodb_03``), IDs from the stem
    (``emodb_03a01Wa``). With the 4 default classes, boredom, disgust and
    fear files are not kept (counted in the report). Reruns with the same
    options and input listing skip the work (see ``emodb_prep.json``).

    Arguments
    ---------
    data_folder : path-like
        The folder that contains ``wav/``.
    save_folder : path-like
        Where ``emodb.csv``, ``emodb_report.json`` and ``emodb_prep.json``
        are written.
    keep_all_classes : bool
        Also keep boredom, disgust and fear.

    Returns
    -------
    Path
        The manifest path.

    Raises
    ------
    CorpusLayoutError
        If ``data_folder`` is missing or has no ``wav/`` folder with EmoDB
        files.

    Example
    -------
    >>> import tempfile, pathlib, numpy, soundfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "wav").mkdir()
    >>> for name in ("03a01Wa", "03a01Nc", "08b02Ld"):
    ...     soundfile.write(root / "wav" / f"{name}.wav", numpy.zeros(800), 16000)
    >>> csv_path = prepare_emodb(root, root / "manifests")
    >>> print(csv_path.read_text().splitlines()[1].replace(str(root), "<root>"))
    emodb_03a01Nc,0.050,<root>/wav/03a01Nc.wav,neutral,emodb_03,de,emodb,0
    """
    return prepare_manifest(SPEC, data_folder, save_folder, keep_all_classes)


if __name__ == "__main__":
    run_cli(prepare_emodb, CORPUS)
