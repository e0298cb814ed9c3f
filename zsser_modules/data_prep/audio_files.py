"""Finding a corpus's audio files and checking their headers (never the samples).

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import soundfile as sf

from zsser_modules.data_prep.manifest import PathLike
from zsser_modules.data_prep.report import (
    EMPTY_FILE,
    MISSING_AUDIO,
    UNREADABLE,
    ZERO_LENGTH,
)


class AudioInfo(NamedTuple):
    """What prep reads from an audio header (never the samples).

    Example
    -------
    >>> AudioInfo(duration=1.5, sample_rate=16000, channels=1, frames=24000)
    AudioInfo(duration=1.5, sample_rate=16000, channels=1, frames=24000)
    """

    duration: float
    sample_rate: int
    channels: int
    frames: int


def check_audio(path: PathLike) -> tuple[AudioInfo | None, str | None, str]:
    """Read an audio header and classify the file as usable or not.

    Only the header is read (``soundfile.info``), so this is fast. A file
    whose header is valid but whose data is truncated is not detected here;
    the data pipeline will fail on it when reading.

    Arguments
    ---------
    path : path-like
        The audio file.

    Returns
    -------
    info : AudioInfo or None
        Duration, sample rate, channels and frames, or None if unusable.
    reason : str or None
        None if usable, else ``EMPTY_FILE``, ``ZERO_LENGTH``, ``UNREADABLE``
        or ``MISSING_AUDIO``.
    detail : str
        The error message of the reader, if any.

    Example
    -------
    >>> import tempfile, numpy, soundfile
    >>> tmp = tempfile.mkdtemp()
    >>> soundfile.write(f"{tmp}/a.wav", numpy.zeros(800), 16000)
    >>> check_audio(f"{tmp}/a.wav")
    (AudioInfo(duration=0.05, sample_rate=16000, channels=1, frames=800), None, '')
    >>> open(f"{tmp}/b.wav", "wb").close()
    >>> check_audio(f"{tmp}/b.wav")[1]
    'empty file'
    """
    try:
        info = sf.info(str(path))
    except Exception as err:  # libsndfile raises several types
        try:
            size = os.path.getsize(path)
        except OSError:
            return None, MISSING_AUDIO, "file not found"
        if size == 0:
            return None, EMPTY_FILE, "0 bytes"
        return None, UNREADABLE, str(err)
    if info.frames <= 0 or info.samplerate <= 0:
        return None, ZERO_LENGTH, f"{info.frames} frames"
    duration = info.frames / info.samplerate
    return AudioInfo(duration, info.samplerate, info.channels, info.frames), None, ""


def find_files(
    root: PathLike, suffix: str = ".wav", recursive: bool = True
) -> list[Path]:
    """List files with a given suffix under ``root``, sorted (deterministic).

    The suffix test is case-insensitive (``.WAV`` files are found too) and
    hidden files (``._x.wav`` from macOS archives) are ignored.

    Arguments
    ---------
    root : path-like
        Folder to search.
    suffix : str
        File name ending, e.g. ``".wav"``.
    recursive : bool
        Search sub-folders too.

    Returns
    -------
    list of Path
        Absolute paths, sorted.

    Example
    -------
    >>> import tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> (tmp / "sub").mkdir()
    >>> for name in ("sub/b.wav", "a.WAV", "c.txt", "._a.wav"):
    ...     (tmp / name).touch()
    >>> [p.name for p in find_files(tmp)]
    ['a.WAV', 'b.wav']
    """
    root = os.path.abspath(root)
    suffix = suffix.lower()
    found: list[str] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if not name.startswith(".") and name.lower().endswith(suffix):
                    found.append(os.path.join(dirpath, name))
    else:
        with os.scandir(root) as entries:
            for entry in entries:
                name = entry.name
                if (
                    not name.startswith(".")
                    and name.lower().endswith(suffix)
                    and entry.is_file()
                ):
                    found.append(entry.path)
    found.sort()
    return [Path(p) for p in found]
