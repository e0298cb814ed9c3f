"""CaFE (Canadian French Emotional speech dataset) data preparation.

Expected folder (as unpacked)::

    <data_folder>/CaFE_48k/Colère/Faible/01-C-1-1.wav
                 /CaFE_48k/Colère/Fort/01-C-2-1.wav
                 /CaFE_48k/Neutre/01-N-1-1.wav      (no intensity folder)
                 ...                                 (936 files, 48 kHz)

The file name ``AA-E-I-S.wav`` holds everything: AA the actor (01-12, odd =
male), E the emotion letter (C anger, D disgust, J joy, N neutral, P fear,
S surprise, T sadness), I the intensity (1 weak, 2 strong), S the sentence
(1-6). Labels and speakers are read **only from the file name**: depending on
the unzip tool the emotion folders arrive as ``Colère`` or mis-encoded
(``ColŠre``, ``D‚go–t``), so folder names are never parsed.

``data_folder`` may also be the ``CaFE_48k`` (or ``CaFE_192k``) folder itself.
If both releases are unpacked side by side, choose one with ``release``.

Run from the repository root::

    python data_prep/cafe.py /data/CaFE /data/manifests [--release 48k]

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
)
from zsser_modules.data_prep.manifest import PathLike
from zsser_modules.data_prep.report import UNPARSABLE_NAME, SkipItem

CORPUS = "cafe"
LANG = "fr"

#: Field 2 of ``AA-E-I-S.wav`` -> canonical emotion.
LABEL_MAP = {
    "C": "angry",  # Colère
    "D": "disgust",  # Dégoût
    "J": "happy",  # Joie
    "N": "neutral",  # Neutre
    "P": "fear",  # Peur
    "S": "surprise",  # Surprise
    "T": "sad",  # Tristesse
}

LAYOUT = (
    "<data_folder>/CaFE_48k/<Emotion>/<Faible|Fort>/AA-E-I-S.wav (Neutre has no "
    "intensity folder), e.g. CaFE_48k/Joie/Fort/03-J-2-4.wav\n"
    "(or CaFE_192k/...; or pass the CaFE_48k folder itself; the emotion is the "
    "letter E of the file name)"
)

_NAME = re.compile(r"^(\d{2})-([A-Za-z])-(\d)-(\d)$")


def _release_dirs(data_folder: Path) -> list[Path]:
    """Return the ``CaFE_*`` release folders in ``data_folder``."""
    return sorted(
        p
        for p in data_folder.iterdir()
        if p.is_dir() and p.name.lower().startswith("cafe_")
    )


def _list_audio(data_folder: Path, options: dict) -> list[Path]:
    """Return the .wav files of the chosen release folder."""
    release = options.get("release")
    releases = _release_dirs(data_folder)
    if release:
        root = data_folder / f"CaFE_{release}"
        if not root.is_dir():
            found = ", ".join(p.name for p in releases) or "none"
            raise layout_error(
                SPEC, data_folder, f"no CaFE_{release} folder in it (found: {found})"
            )
    elif len(releases) == 1:
        root = releases[0]
    elif len(releases) > 1:
        names = ", ".join(p.name for p in releases)
        raise layout_error(
            SPEC,
            data_folder,
            f"it holds several releases ({names})",
            "Choose one with release='48k' (command line: --release 48k).",
        )
    else:
        root = data_folder  # the release folder itself
    files = find_files(root)
    if not any(_NAME.match(p.stem) for p in files):
        raise layout_error(
            SPEC, data_folder, "no file named like AA-E-I-S.wav found under it"
        )
    return files


def parse_name(path: Path, context: object = None) -> Utterance:
    """Parse a CaFE file name ``AA-E-I-S.wav`` (never the folder names).

    Arguments
    ---------
    path : Path
        A CaFE file.
    context : object
        Unused.

    Returns
    -------
    Utterance
        ID = the stem, speaker = the actor number AA, emotion = the letter E.

    Raises
    ------
    SkipItem
        With reason ``UNPARSABLE_NAME`` for any other name.

    Example
    -------
    >>> utt = parse_name(Path("/d/CaFE_48k/ColŠre/Fort/12-C-2-5.wav"))
    >>> utt.utt_id, utt.speaker, utt.emotion, utt.lang
    ('12-C-2-5', '12', 'C', 'fr')
    """
    match = _NAME.match(path.stem)
    if match is None:
        raise SkipItem(UNPARSABLE_NAME, "expected AA-E-I-S.wav, e.g. 01-C-1-1.wav")
    return Utterance(path.stem, path, match.group(2), match.group(1), LANG)


SPEC = CorpusSpec(
    name=CORPUS,
    layout=LAYOUT,
    label_map=LABEL_MAP,
    list_audio=_list_audio,
    parse=parse_name,
    sample_rates=(48000, 192000),
)


def prepare_cafe(
    data_folder: PathLike,
    save_folder: PathLike,
    keep_all_classes: bool = False,
    release: str | None = None,
) -> Path:
    """Prepare the CaFE manifest ``<save_folder>/cafe.csv`` (French, ``fr``).

    Labels come from the letter E of ``AA-E-I-S.wav`` and speakers from AA
    (``spk_id`` = ``cafe_01``); IDs are ``cafe_<stem>``. With the 4 default
    classes, disgust, fear and surprise are not kept (counted in the report).
    Reruns with the same options and input listing skip the work.

    Arguments
    ---------
    data_folder : path-like
        The folder holding ``CaFE_48k/`` (or a release folder itself).
    save_folder : path-like
        Where ``cafe.csv``, ``cafe_report.json`` and ``cafe_prep.json`` go.
    keep_all_classes : bool
        Also keep disgust, fear and surprise.
    release : str, optional
        ``"48k"`` or ``"192k"``: which ``CaFE_<release>`` folder to read when
        several are present (default: the only one present).

    Returns
    -------
    Path
        The manifest path.

    Raises
    ------
    CorpusLayoutError
        If ``data_folder`` is missing, holds no CaFE file, or holds several
        releases and ``release`` is not given.

    Example
    -------
    >>> import tempfile, pathlib, numpy, soundfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for rel in ("CaFE_48k/ColŠre/Faible/01-C-1-1.wav",
    ...             "CaFE_48k/Neutre/02-N-1-3.wav",
    ...             "CaFE_48k/Peur/Fort/02-P-2-3.wav"):
    ...     (root / rel).parent.mkdir(parents=True, exist_ok=True)
    ...     soundfile.write(root / rel, numpy.zeros(2400), 48000)
    >>> import pandas
    >>> df = pandas.read_csv(prepare_cafe(root, root / "out"))
    >>> df[["ID", "emo", "spk_id"]].values.tolist()
    [['cafe_01-C-1-1', 'angry', 'cafe_01'], ['cafe_02-N-1-3', 'neutral', 'cafe_02']]
    """
    return prepare_manifest(
        SPEC, data_folder, save_folder, keep_all_classes, {"release": release}
    )


def _add_arguments(parser) -> None:
    """Add ``--release`` to the command line."""
    parser.add_argument(
        "--release",
        default=None,
        help="CaFE_<release> folder to read if several are present (48k or 192k)",
    )


if __name__ == "__main__":
    run_cli(prepare_cafe, CORPUS, add_arguments=_add_arguments)
