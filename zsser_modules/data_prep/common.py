"""Shared machinery of the per-corpus data preparation scripts.

Everything that is the same for every corpus lives here, once: the manifest
schema and its writer/reader, the mapping of corpus label codes to the
canonical emotion vocabulary, header-only audio checks, the preparation report
(what was skipped and why), the stale-manifest protection (a sidecar JSON with
the options and a cheap fingerprint of the input listing), speaker-emotion
confounding, speaker-independent splits and the command line helper.

A corpus module (``esd.py``, ``emodb.py``, ...) only describes what differs:
its folder layout, its label codes and how a file name or metadata row gives
an utterance ID, a speaker and a label. It does so with a :class:`CorpusSpec`
handed to :func:`prepare_manifest`.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import inspect
import json
import logging
import math
import os
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Union

import pandas as pd
import soundfile as sf
from filelock import FileLock

from zsser_modules.labels import ALL_EMOTIONS, LANGUAGES, emotion_classes

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: Bump when the content written for the same input and options changes, so
#: manifests written by an older version of this code are rebuilt.
PREP_VERSION = 1

#: Columns of every manifest (corpus CSVs and setting CSVs), in this order.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "ID",
    "duration",
    "wav",
    "emo",
    "spk_id",
    "lang",
    "corpus",
    "spk_confounded",
)

#: The corpus used for each language by default.
LANGUAGE_CORPUS: dict[str, str] = {
    "en": "esd",
    "zh": "esd",
    "de": "emodb",
    "fr": "cafe",
    "ur": "urdu",
}

#: Every corpus name a manifest may carry in its ``corpus`` column.
CORPORA: tuple[str, ...] = ("esd", "emodb", "cafe", "urdu", "meld", "demo")

# Reasons for which an item is not written. "class not kept" is a choice of
# the user (keep_all_classes), the others are problems of the input.
CLASS_NOT_KEPT = "class not kept"
UNKNOWN_LABEL = "unknown label"
UNPARSABLE_NAME = "unparsable name"
DUPLICATE_ID = "duplicate ID"
EMPTY_FILE = "empty file"
ZERO_LENGTH = "zero-length audio"
UNREADABLE = "unreadable audio"
MISSING_AUDIO = "missing audio"
NO_METADATA = "no metadata row"

#: Every skip reason, in the order the report lists them.
SKIP_REASONS: tuple[str, ...] = (
    CLASS_NOT_KEPT,
    UNKNOWN_LABEL,
    UNPARSABLE_NAME,
    DUPLICATE_ID,
    EMPTY_FILE,
    ZERO_LENGTH,
    UNREADABLE,
    MISSING_AUDIO,
    NO_METADATA,
)

# Warnings: the item is written, the oddity is counted in the report.
LABEL_DISAGREEMENT = "label disagreement"
UNEXPECTED_SAMPLE_RATE = "unexpected sample rate"


class CorpusLayoutError(ValueError):
    """The data folder is missing or does not have the corpus's layout.

    The message names the folder that was given, what was found and the
    expected layout, so the user can fix the path.

    Example
    -------
    >>> err = CorpusLayoutError("emodb: no wav/ folder in /data")
    >>> isinstance(err, ValueError)
    True
    """


class SplitError(ValueError):
    """A speaker-independent split or a setting cannot be made as requested.

    Example
    -------
    >>> isinstance(SplitError("only 1 speaker"), ValueError)
    True
    """


class SkipItem(Exception):
    """Raised by a corpus parser for an item that must be skipped and counted.

    Arguments
    ---------
    reason : str
        One of ``SKIP_REASONS`` (e.g. ``UNPARSABLE_NAME``).
    detail : str
        What exactly was wrong, shown in the report's examples.

    Example
    -------
    >>> err = SkipItem(UNPARSABLE_NAME, "expected 03a01Wa.wav")
    >>> err.reason, err.detail
    ('unparsable name', 'expected 03a01Wa.wav')
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------


def normalize_label(raw: str) -> str:
    """Normalize a raw label for lookup: stripped and case-folded.

    Arguments
    ---------
    raw : str
        A label as found in a file name, folder name or metadata file.

    Returns
    -------
    str
        The lookup key.

    Example
    -------
    >>> normalize_label("  Neutral ")
    'neutral'
    """
    return raw.strip().casefold()


def canonical_emotion(raw: str | None, label_map: Mapping[str, str]) -> str | None:
    """Map a corpus label code to the canonical emotion vocabulary.

    Lookup is case-insensitive and ignores surrounding white space. Every
    value of ``label_map`` must be in ``ALL_EMOTIONS``.

    Arguments
    ---------
    raw : str or None
        The corpus's label (e.g. ``"W"`` for EmoDB anger, ``"快乐"`` for ESD).
    label_map : mapping of str to str
        Corpus code -> canonical emotion.

    Returns
    -------
    str or None
        The canonical emotion, or None if ``raw`` is None or unknown.

    Example
    -------
    >>> canonical_emotion("w", {"W": "angry"})
    'angry'
    >>> canonical_emotion("X", {"W": "angry"}) is None
    True
    """
    if raw is None:
        return None
    key = normalize_label(raw)
    for code, emotion in label_map.items():
        if normalize_label(code) == key:
            return emotion
    return None


def _normalized_label_map(label_map: Mapping[str, str]) -> dict[str, str]:
    """Return ``label_map`` keyed by normalized codes, checking its values."""
    out: dict[str, str] = {}
    for code, emotion in label_map.items():
        if emotion not in ALL_EMOTIONS:
            raise ValueError(
                f"Label map sends {code!r} to {emotion!r}, which is not a canonical "
                f"emotion {ALL_EMOTIONS}."
            )
        out[normalize_label(code)] = emotion
    return out


# ---------------------------------------------------------------------------
# Audio headers
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Manifests
# ---------------------------------------------------------------------------


def _manifest_tuples(
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
) -> Iterable[tuple[Any, ...]]:
    """Yield rows as tuples in ``MANIFEST_COLUMNS`` order."""
    if isinstance(rows, pd.DataFrame):
        missing = [c for c in MANIFEST_COLUMNS if c not in rows.columns]
        if missing:
            raise ValueError(f"DataFrame misses manifest columns {missing}.")
        yield from zip(*(rows[c].tolist() for c in MANIFEST_COLUMNS))
        return
    for row in rows:
        try:
            yield tuple(row[c] for c in MANIFEST_COLUMNS)
        except KeyError as err:
            raise ValueError(
                f"Manifest row misses column {err}; columns are "
                f"{MANIFEST_COLUMNS}: {dict(row)}"
            ) from None


def _checked_row(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Check one row (tuple in ``MANIFEST_COLUMNS`` order); return it formatted."""
    uid, duration, wav, emo, spk_id, lang, corpus, confounded = values
    uid, spk_id = str(uid), str(spk_id)
    if emo not in ALL_EMOTIONS:
        raise ValueError(f"Row {uid}: emo {emo!r} not in {ALL_EMOTIONS}.")
    if lang not in LANGUAGES:
        raise ValueError(f"Row {uid}: lang {lang!r} not in {LANGUAGES}.")
    if corpus not in CORPORA:
        raise ValueError(f"Row {uid}: corpus {corpus!r} not in {CORPORA}.")
    prefix = f"{corpus}_"
    if not uid.startswith(prefix) or not spk_id.startswith(prefix):
        raise ValueError(
            f"Row {uid}: ID and spk_id must start with the corpus name "
            f"{prefix!r} (got ID={uid!r}, spk_id={spk_id!r})."
        )
    duration = float(duration)
    if not duration > 0:
        raise ValueError(f"Row {uid}: duration must be > 0, got {duration}.")
    confounded = int(confounded)
    if confounded not in (0, 1):
        raise ValueError(f"Row {uid}: spk_confounded must be 0 or 1.")
    return (uid, f"{duration:.3f}", wav, emo, spk_id, lang, corpus, confounded)


def write_manifest(
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame, path: PathLike
) -> Path:
    """Write manifest rows to a CSV with the schema ``MANIFEST_COLUMNS``.

    Every row is checked against the schema (canonical emotion and language,
    corpus-prefixed ``ID`` and ``spk_id``, positive duration, unique IDs).
    Durations are written in seconds with 3 decimals. The file is written to
    a temporary name and renamed, so a crash never leaves a half-written
    manifest behind.

    Arguments
    ---------
    rows : iterable of mappings, or pandas.DataFrame
        One mapping per utterance, with (at least) the keys of
        ``MANIFEST_COLUMNS``.
    path : path-like
        Output CSV; parent folders are created.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If a row misses a column, breaks the schema, or an ID repeats.

    Example
    -------
    >>> import tempfile
    >>> row = dict(ID="demo_a", duration=1.23456, wav="/x/a.wav", emo="sad",
    ...            spk_id="demo_s1", lang="en", corpus="demo", spk_confounded=1)
    >>> out = write_manifest([row], f"{tempfile.mkdtemp()}/m.csv")
    >>> print(out.read_text().strip())
    ID,duration,wav,emo,spk_id,lang,corpus,spk_confounded
    demo_a,1.235,/x/a.wav,sad,demo_s1,en,demo,1
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(MANIFEST_COLUMNS)
            for values in _manifest_tuples(rows):
                row = _checked_row(values)
                if row[0] in seen:
                    raise ValueError(f"Duplicate ID {row[0]!r} in manifest {path}.")
                seen.add(row[0])
                writer.writerow(row)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path


def read_manifest(path: PathLike) -> pd.DataFrame:
    """Read a manifest written by :func:`write_manifest`, checking its columns.

    Arguments
    ---------
    path : path-like
        A manifest CSV.

    Returns
    -------
    pandas.DataFrame
        Columns ``MANIFEST_COLUMNS``; ``duration`` float, ``spk_confounded``
        int, the others strings (no NaN conversion of strings).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If its columns are not ``MANIFEST_COLUMNS``.

    Example
    -------
    >>> import tempfile
    >>> row = dict(ID="demo_a", duration=1.0, wav="/x/a.wav", emo="sad",
    ...            spk_id="demo_s1", lang="en", corpus="demo", spk_confounded=0)
    >>> df = read_manifest(write_manifest([row], f"{tempfile.mkdtemp()}/m.csv"))
    >>> df.loc[0, "emo"], float(df.loc[0, "duration"])
    ('sad', 1.0)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Manifest {path} does not exist.")
    dtypes = {c: str for c in MANIFEST_COLUMNS}
    dtypes.update(duration=float, spk_confounded=int)
    df = pd.read_csv(path, dtype=dtypes, keep_default_na=False)
    if tuple(df.columns) != MANIFEST_COLUMNS:
        raise ValueError(
            f"{path} is not a zsser manifest: columns {list(df.columns)}, expected "
            f"{list(MANIFEST_COLUMNS)}. Write manifests with data_prep "
            "(python data_prep/<corpus>.py DATA_FOLDER SAVE_FOLDER)."
        )
    return df


def _single_emotion_speakers(
    spk_ids: Iterable[str], emos: Iterable[str]
) -> tuple[set[str], int]:
    """Return (speakers seen with one emotion only, number of speakers)."""
    emotions: dict[str, set[str]] = {}
    for spk, emo in zip(spk_ids, emos):
        emotions.setdefault(spk, set()).add(emo)
    return {s for s, e in emotions.items() if len(e) == 1}, len(emotions)


def mark_confounded_speakers(df: pd.DataFrame) -> pd.DataFrame:
    """Recompute ``spk_confounded`` for the rows of one manifest.

    A speaker is confounded with emotion in a manifest when all of its rows
    there carry a single emotion class: its identity then predicts emotion,
    and a speaker adversary trained on it would remove emotion information.
    The flag depends on the manifest (a speaker can be confounded in a train
    split but not in the whole corpus), so recompute it after any split.

    Arguments
    ---------
    df : pandas.DataFrame
        Rows with ``spk_id`` and ``emo`` columns.

    Returns
    -------
    pandas.DataFrame
        A copy with ``spk_confounded`` set to 1 for the rows of confounded
        speakers and 0 otherwise.

    Example
    -------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"spk_id": ["a", "a", "b", "b"],
    ...                    "emo": ["sad", "sad", "sad", "happy"]})
    >>> mark_confounded_speakers(df)["spk_confounded"].tolist()
    [1, 1, 0, 0]
    """
    out = df.copy()
    confounded, _ = _single_emotion_speakers(
        out["spk_id"].tolist(), out["emo"].tolist()
    )
    out["spk_confounded"] = out["spk_id"].isin(confounded).astype(int)
    return out


def confounding_summary(df: pd.DataFrame) -> dict[str, Any]:
    """Measure speaker-emotion confounding in a manifest.

    Arguments
    ---------
    df : pandas.DataFrame
        Rows with ``spk_id`` and ``emo`` columns.

    Returns
    -------
    dict
        ``n_speakers``, ``n_confounded`` (speakers with a single emotion) and
        ``confounded_speakers`` (sorted list).

    Example
    -------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"spk_id": ["a", "b", "b"], "emo": ["sad", "sad", "angry"]})
    >>> confounding_summary(df)
    {'n_speakers': 2, 'n_confounded': 1, 'confounded_speakers': ['a']}
    """
    confounded, n_speakers = _single_emotion_speakers(
        df["spk_id"].tolist(), df["emo"].tolist()
    )
    return {
        "n_speakers": n_speakers,
        "n_confounded": len(confounded),
        "confounded_speakers": sorted(confounded),
    }


def n_held_out(n_speakers: int, ratio: float) -> int:
    """Number of speakers a split holds out: ``round(ratio * n)`` in ``[1, n-1]``.

    Rounding is half up (2.5 -> 3). The result is clipped so that both sides
    get at least one speaker.

    Arguments
    ---------
    n_speakers : int
        Speakers of the group (a language); must be >= 2.
    ratio : float
        Fraction held out, strictly between 0 and 1.

    Returns
    -------
    int
        Held-out speakers.

    Raises
    ------
    SplitError
        If ``n_speakers < 2``.
    ValueError
        If ``ratio`` is not in (0, 1).

    Example
    -------
    >>> [n_held_out(n, 0.2) for n in (2, 10, 12, 29)]
    [1, 2, 2, 6]
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"Split ratio must be strictly between 0 and 1, got {ratio}.")
    if n_speakers < 2:
        raise SplitError(
            f"A speaker-independent split needs at least 2 speakers, got {n_speakers}."
        )
    return min(max(int(math.floor(ratio * n_speakers + 0.5)), 1), n_speakers - 1)


#: Shuffles tried per group by :func:`speaker_split` to cover every class.
COVER_ATTEMPTS = 200


def speaker_split(
    df: pd.DataFrame,
    ratio: float,
    seed: int,
    by: str | None = "lang",
    salt: str = "",
    cover_classes: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a manifest by speaker, per language, seeded.

    Within each group (each value of column ``by``; the whole manifest if
    ``by`` is None), the sorted speaker list is shuffled by a random generator
    seeded with the string ``f"{seed}/{salt}/{group}"`` (stable across Python
    runs) and its first :func:`n_held_out` speakers are held out. The split of
    a language therefore depends only on the seed, the salt and that
    language's speakers, not on the other languages of the manifest.

    With ``cover_classes`` (default), if a side of that split misses one of
    the group's emotions (only possible when speakers are confounded with
    emotion, as in URDU), the same generator draws further shuffles, up to
    ``COVER_ATTEMPTS``, and keeps the first where both sides cover every
    emotion of the group (else the draw covering most). When every speaker
    has every emotion, the first shuffle is kept, as without the option.
    ``spk_confounded`` is recomputed on each side.

    Arguments
    ---------
    df : pandas.DataFrame
        A manifest.
    ratio : float
        Fraction of speakers held out per group, in (0, 1).
    seed : int
        Random seed.
    by : str or None
        Column defining the groups split separately (default ``"lang"``).
    salt : str
        Distinguishes independent splits made with the same seed (e.g.
        ``"valid"`` and ``"test"``).
    cover_classes : bool
        Redraw (seeded) when a side would miss an emotion of the group.

    Returns
    -------
    kept : pandas.DataFrame
        Rows of the speakers not held out.
    held_out : pandas.DataFrame
        Rows of the held-out speakers.

    Raises
    ------
    SplitError
        If a group has fewer than 2 speakers.

    Example
    -------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"spk_id": list("aabbccdd"), "lang": ["de"] * 8,
    ...                    "emo": ["sad", "happy"] * 4})
    >>> kept, held = speaker_split(df, 0.25, seed=1)
    >>> held["spk_id"].nunique(), kept["spk_id"].nunique()
    (1, 3)
    >>> set(kept["spk_id"]) & set(held["spk_id"])
    set()
    >>> confounded = pd.DataFrame({"spk_id": list("abcdef"), "lang": ["ur"] * 6,
    ...                            "emo": ["sad"] * 4 + ["happy"] * 2})
    >>> [sorted(set(side["emo"])) for side in speaker_split(confounded, 0.4, seed=1)]
    [['happy', 'sad'], ['happy', 'sad']]
    """
    groups = [(None, df)] if by is None else list(df.groupby(by, sort=True))
    held_speakers: set[str] = set()
    for group, part in groups:
        speakers = sorted(part["spk_id"].unique())
        try:
            n_out = n_held_out(len(speakers), ratio)
        except SplitError:
            where = "" if group is None else f" {by}={group!r}"
            raise SplitError(
                f"Cannot split{where} by speaker: it has {len(speakers)} speaker(s) "
                f"({speakers}); at least 2 are needed (one on each side)."
            ) from None
        rng = random.Random(f"{seed}/{salt}/{group}")
        emotions: dict[str, set[str]] = {}
        if cover_classes and "emo" in part:
            for spk, emo in zip(part["spk_id"].tolist(), part["emo"].tolist()):
                emotions.setdefault(spk, set()).add(emo)
        n_classes = len(set().union(*emotions.values())) if emotions else 0
        best, best_score = None, (-1, -1)
        for _ in range(COVER_ATTEMPTS if emotions else 1):
            order = list(speakers)
            rng.shuffle(order)
            if not emotions:
                best = order[:n_out]
                break
            held_cov = len(set().union(*(emotions[s] for s in order[:n_out])))
            kept_cov = len(set().union(*(emotions[s] for s in order[n_out:])))
            score = (min(held_cov, kept_cov), held_cov + kept_cov)
            if score > best_score:
                best, best_score = order[:n_out], score
            if held_cov == kept_cov == n_classes:
                break
        held_speakers.update(best)
    mask = df["spk_id"].isin(held_speakers)
    kept = mark_confounded_speakers(df[~mask]) if "emo" in df else df[~mask].copy()
    held = mark_confounded_speakers(df[mask]) if "emo" in df else df[mask].copy()
    return kept, held


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


class PrepReport:
    """Counts of what a preparation found, wrote, skipped and warned about.

    Every skipped item is counted under a reason (``SKIP_REASONS``) with a few
    example paths; warnings count oddities of written items (e.g. a label
    cross-check disagreement). :meth:`finalize` adds counts per emotion,
    language and speaker, audio formats and speaker-emotion confounding.
    The report is logged as a short summary and saved as JSON beside the
    manifest.

    Arguments
    ---------
    corpus : str
        Corpus name.
    data_folder : path-like, optional
        The folder that was read.
    options : mapping, optional
        The options of the preparation.
    max_examples : int
        Example items kept per reason.

    Example
    -------
    >>> report = PrepReport("demo")
    >>> report.n_found = 3
    >>> report.skip(UNKNOWN_LABEL, "/x/c.wav", "label 'Z'")
    >>> rows = [dict(ID="demo_a", emo="sad", spk_id="demo_s1", lang="en",
    ...              corpus="demo", duration=1.0),
    ...         dict(ID="demo_b", emo="angry", spk_id="demo_s1", lang="en",
    ...              corpus="demo", duration=2.0)]
    >>> report.finalize(rows)
    >>> report.n_problems, report.n_written, report.confounding["n_confounded"]
    (1, 2, 0)
    >>> print(report.summary())
    demo: 3 files found, 2 rows written; 1 skipped for problems, 0 not kept (class)
      emotions: angry 1, sad 1
      SKIPPED: unknown label 1 (examples in the report JSON)
      speakers: 1, confounded with emotion (single emotion, spk_confounded=1): 0 of 1
    """

    def __init__(
        self,
        corpus: str,
        data_folder: PathLike | None = None,
        options: Mapping[str, Any] | None = None,
        max_examples: int = 5,
    ) -> None:
        self.corpus = corpus
        self.data_folder = None if data_folder is None else str(data_folder)
        self.options = dict(options or {})
        self.max_examples = max_examples
        self.n_found = 0
        self.n_written = 0
        self.manifest: str | None = None
        self.skipped: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        self.not_kept: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self.audio: dict[str, Any] = {}
        self.confounding: dict[str, Any] = {}
        self.notes: dict[str, Any] = {}
        self.formats: Counter[str] = Counter()

    def _example(self, reason: str, item: Any, detail: str) -> None:
        examples = self.examples.setdefault(reason, [])
        if len(examples) < self.max_examples:
            examples.append(f"{item} ({detail})" if detail else str(item))

    def skip(
        self, reason: str, item: Any, detail: str = "", emotion: str | None = None
    ) -> None:
        """Count an item that is not written.

        Arguments
        ---------
        reason : str
            Why (one of ``SKIP_REASONS``).
        item : Any
            The file or row (shown in the examples).
        detail : str
            What exactly was wrong.
        emotion : str, optional
            For ``CLASS_NOT_KEPT``: the canonical emotion that was dropped.

        Example
        -------
        >>> report = PrepReport("demo")
        >>> report.skip(CLASS_NOT_KEPT, "x.wav", emotion="fear")
        >>> report.skipped[CLASS_NOT_KEPT], report.not_kept["fear"]
        (1, 1)
        """
        self.skipped[reason] += 1
        if emotion is not None:
            self.not_kept[emotion] += 1
        self._example(reason, item, detail)

    def warn(self, reason: str, item: Any, detail: str = "", count: int = 1) -> None:
        """Count an oddity of an item that is still written.

        Arguments
        ---------
        reason : str
            Short name of the oddity, e.g. ``LABEL_DISAGREEMENT``.
        item : Any
            The file or row.
        detail : str
            Details shown in the examples.
        count : int
            How many occurrences to add (default 1).

        Example
        -------
        >>> report = PrepReport("demo")
        >>> report.warn(LABEL_DISAGREEMENT, "x.wav", "folder sad, txt happy")
        >>> report.warnings[LABEL_DISAGREEMENT]
        1
        """
        self.warnings[reason] += count
        self._example(reason, item, detail)

    def record_audio(self, info: AudioInfo) -> None:
        """Count the format (sample rate, channels) of a written file.

        Arguments
        ---------
        info : AudioInfo
            Header information of the file.

        Example
        -------
        >>> report = PrepReport("demo")
        >>> report.record_audio(AudioInfo(1.0, 16000, 1, 16000))
        >>> report.formats
        Counter({'16000 Hz, 1 ch': 1})
        """
        self.formats[f"{info.sample_rate} Hz, {info.channels} ch"] += 1

    @property
    def n_problems(self) -> int:
        """Items skipped because of a problem of the input (not by choice)."""
        return sum(n for r, n in self.skipped.items() if r != CLASS_NOT_KEPT)

    def finalize(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add counts of the written rows (emotion, language, speaker, corpus).

        Arguments
        ---------
        rows : sequence of mappings
            The written manifest rows (keys ``emo``, ``lang``, ``spk_id``,
            ``corpus``, ``duration``).

        Example
        -------
        >>> report = PrepReport("demo")
        >>> report.finalize([dict(emo="sad", lang="en", spk_id="demo_a",
        ...                       corpus="demo", duration=1.0)])
        >>> report.counts["emotion"], report.confounding["n_confounded"]
        ({'sad': 1}, 1)
        """
        self.n_written = len(rows)

        def ordered(counter: Counter, order: Sequence[str] = ()) -> dict[str, int]:
            keys = [k for k in order if k in counter]
            keys += sorted(k for k in counter if k not in keys)
            return {k: counter[k] for k in keys}

        self.counts = {
            "emotion": ordered(Counter(r["emo"] for r in rows), ALL_EMOTIONS),
            "language": ordered(Counter(r["lang"] for r in rows), LANGUAGES),
            "corpus": ordered(Counter(r["corpus"] for r in rows)),
            "speaker": ordered(Counter(r["spk_id"] for r in rows)),
        }
        total = sum(float(r["duration"]) for r in rows)
        self.audio = {"hours": round(total / 3600, 3), "formats": dict(self.formats)}
        confounded, n_speakers = _single_emotion_speakers(
            (r["spk_id"] for r in rows), (r["emo"] for r in rows)
        )
        self.confounding = {
            "n_speakers": n_speakers,
            "n_confounded": len(confounded),
            "confounded_speakers": sorted(confounded),
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-serializable dict.

        Returns
        -------
        dict
            Every field of the report.

        Example
        -------
        >>> PrepReport("demo").to_dict()["skipped"]["unknown label"]
        0
        """
        skipped = {r: self.skipped.get(r, 0) for r in SKIP_REASONS}
        skipped.update({r: n for r, n in self.skipped.items() if r not in skipped})
        return {
            "corpus": self.corpus,
            "data_folder": self.data_folder,
            "manifest": self.manifest,
            "options": self.options,
            "n_found": self.n_found,
            "n_written": self.n_written,
            "n_skipped_problems": self.n_problems,
            "skipped": skipped,
            "not_kept_by_emotion": dict(sorted(self.not_kept.items())),
            "warnings": dict(self.warnings),
            "examples": self.examples,
            "counts": self.counts,
            "audio": self.audio,
            "confounding": self.confounding,
            "notes": self.notes,
        }

    def save(self, path: PathLike) -> Path:
        """Save the report as JSON (UTF-8, indented).

        Arguments
        ---------
        path : path-like
            Output file, conventionally ``<save_folder>/<corpus>_report.json``.

        Returns
        -------
        Path
            ``path``.

        Example
        -------
        >>> import json, tempfile
        >>> out = PrepReport("demo").save(f"{tempfile.mkdtemp()}/demo_report.json")
        >>> json.loads(out.read_text())["corpus"]
        'demo'
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        return path

    def summary(self) -> str:
        """Return a short, human-readable summary (first line: the totals).

        Returns
        -------
        str
            A few lines: totals, emotions, skipped items by reason, warnings
            and speaker-emotion confounding.

        Example
        -------
        >>> print(PrepReport("demo").summary().splitlines()[0])
        demo: 0 files found, 0 rows written; 0 skipped for problems, 0 not kept (class)
        """
        lines = [
            f"{self.corpus}: {self.n_found} files found, {self.n_written} rows "
            f"written; {self.n_problems} skipped for problems, "
            f"{self.skipped.get(CLASS_NOT_KEPT, 0)} not kept (class)"
        ]
        if self.counts.get("emotion"):
            emos = ", ".join(f"{k} {v}" for k, v in self.counts["emotion"].items())
            lines.append(f"  emotions: {emos}")
        if self.not_kept:
            dropped = ", ".join(f"{k} {v}" for k, v in sorted(self.not_kept.items()))
            lines.append(f"  not kept (class not kept): {dropped}")
        problems = {r: n for r, n in self.skipped.items() if r != CLASS_NOT_KEPT and n}
        if problems:
            text = ", ".join(f"{r} {n}" for r, n in problems.items())
            lines.append(f"  SKIPPED: {text} (examples in the report JSON)")
        if self.warnings:
            text = ", ".join(f"{r} {n}" for r, n in self.warnings.items())
            lines.append(f"  warnings: {text}")
        if self.confounding:
            c = self.confounding
            lines.append(
                f"  speakers: {c['n_speakers']}, confounded with emotion (single "
                f"emotion, spk_confounded=1): {c['n_confounded']} of {c['n_speakers']}"
            )
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# Stale-manifest protection
# ---------------------------------------------------------------------------


def input_fingerprint(paths: Iterable[PathLike]) -> dict[str, Any]:
    """Cheap fingerprint of an input listing: file count, total size, newest mtime.

    Adding, removing, replacing or touching an input file changes it; only
    ``stat`` is called, the files are not read.

    Arguments
    ---------
    paths : iterable of path-like
        The input files.

    Returns
    -------
    dict
        ``n_files``, ``total_bytes`` and ``newest_mtime_ns``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.wav"
    >>> _ = f.write_bytes(b"1234")
    >>> fp = input_fingerprint([f])
    >>> fp["n_files"], fp["total_bytes"]
    (1, 4)
    """
    n_files = total = newest = 0
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        n_files += 1
        total += st.st_size
        newest = max(newest, st.st_mtime_ns)
    return {"n_files": n_files, "total_bytes": total, "newest_mtime_ns": newest}


def _jsonable(obj: Any) -> Any:
    """Normalize an object through JSON (tuples become lists, Paths strings)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def make_stamp(
    options: Mapping[str, Any], fingerprint: Mapping[str, Any]
) -> dict[str, Any]:
    """Build the sidecar content describing one preparation.

    Arguments
    ---------
    options : mapping
        Every option that changes the output (classes, splits, seed, paths).
    fingerprint : mapping
        The input fingerprint (see :func:`input_fingerprint`).

    Returns
    -------
    dict
        ``{"prep_version", "options", "input"}``, JSON-normalized.

    Example
    -------
    >>> make_stamp({"seed": 1}, {"n_files": 2})["options"]
    {'seed': 1}
    """
    return _jsonable(
        {
            "prep_version": PREP_VERSION,
            "options": dict(options),
            "input": dict(fingerprint),
        }
    )


def exclusive(lock_name: str, folder_arg: str = "save_folder") -> Callable:
    """Decorate a preparation function so that one process runs it at a time.

    The wrapped function holds a file lock named after ``lock_name`` and the
    absolute path of its argument ``folder_arg`` while it runs. Several runs
    started at once on the same folders (a grid with parallel jobs, DDP, two
    shells) then never delete or half-write each other's outputs: the first
    one prepares, the others wait and find the outputs up to date. The lock
    file lives in the system's temporary folder (nothing is added to the
    output folder, not even on a failed call), so it serialises the processes
    of one machine.

    Arguments
    ---------
    lock_name : str
        Name of the lock file (one per kind of output).
    folder_arg : str
        Name of the argument holding the output folder.

    Returns
    -------
    callable
        The decorator.

    Example
    -------
    >>> import tempfile, pathlib
    >>> @exclusive("toy")
    ... def write(save_folder):
    ...     (pathlib.Path(save_folder) / "out.csv").write_text("ID")
    ...     return sorted(p.name for p in pathlib.Path(save_folder).iterdir())
    >>> write(tempfile.mkdtemp())
    ['out.csv']
    """

    def decorator(function: Callable) -> Callable:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            folder = signature.bind(*args, **kwargs).arguments[folder_arg]
            key = hashlib.sha1(str(Path(folder).resolve()).encode()).hexdigest()
            lock = Path(tempfile.gettempdir()) / f"zsser-{lock_name}-{key[:16]}.lock"
            with FileLock(str(lock)):
                return function(*args, **kwargs)

        return wrapper

    return decorator


def is_up_to_date(
    sidecar: PathLike, stamp: Mapping[str, Any], outputs: Iterable[PathLike]
) -> bool:
    """Tell whether outputs can be reused: same stamp and every output present.

    When the stamp differs, the differing keys are logged, so the user sees
    why the preparation runs again.

    Arguments
    ---------
    sidecar : path-like
        The sidecar JSON written by :func:`save_sidecar` after the last run.
    stamp : mapping
        The stamp of the requested run (:func:`make_stamp`).
    outputs : iterable of path-like
        Files the run produces.

    Returns
    -------
    bool
        True if all outputs exist and the sidecar holds the same stamp.

    Example
    -------
    >>> import tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> (tmp / "out.csv").touch()
    >>> stamp = make_stamp({"seed": 1}, {})
    >>> is_up_to_date(tmp / "side.json", stamp, [tmp / "out.csv"])
    False
    >>> _ = save_sidecar(tmp / "side.json", stamp)
    >>> is_up_to_date(tmp / "side.json", stamp, [tmp / "out.csv"])
    True
    >>> is_up_to_date(tmp / "side.json", make_stamp({"seed": 2}, {}), [tmp / "out.csv"])
    False
    """
    sidecar = Path(sidecar)
    if not sidecar.is_file():
        return False
    missing = [str(p) for p in outputs if not Path(p).is_file()]
    if missing:
        logger.info("Rebuilding: output(s) missing: %s", ", ".join(missing))
        return False
    try:
        old = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.info("Rebuilding: sidecar %s is unreadable.", sidecar)
        return False
    new = _jsonable(stamp)
    if old == new:
        return True
    changes = []
    for section in ("prep_version", "options", "input"):
        before, after = old.get(section), new.get(section)
        if isinstance(before, dict) and isinstance(after, dict):
            for key in sorted(set(before) | set(after)):
                if before.get(key) != after.get(key):
                    changes.append(
                        f"{section}.{key}: {before.get(key)!r} -> {after.get(key)!r}"
                    )
        elif before != after:
            changes.append(f"{section}: {before!r} -> {after!r}")
    logger.info("Rebuilding %s: %s", sidecar.parent, "; ".join(changes))
    return False


def save_sidecar(sidecar: PathLike, stamp: Mapping[str, Any]) -> Path:
    """Write the stamp of a finished run (do this last, after every output).

    Arguments
    ---------
    sidecar : path-like
        Sidecar JSON path.
    stamp : mapping
        The stamp (:func:`make_stamp`).

    Returns
    -------
    Path
        ``sidecar``.

    Example
    -------
    >>> import tempfile
    >>> save_sidecar(f"{tempfile.mkdtemp()}/s.json", make_stamp({}, {})).name
    's.json'
    """
    sidecar = Path(sidecar)
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    sidecar.write_text(json.dumps(_jsonable(stamp), indent=2) + "\n", encoding="utf-8")
    return sidecar


# ---------------------------------------------------------------------------
# The corpus-independent preparation driver
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    """One utterance as a corpus parser sees it, before checks.

    Arguments
    ---------
    utt_id : str
        Corpus-unique ID without the corpus prefix (e.g. ``"03a01Wa"``).
    wav : path-like
        Absolute path of the audio file.
    emotion : str
        The corpus's label code (mapped through the corpus's label map).
    speaker : str
        Speaker within the corpus, without prefix (e.g. ``"03"``).
    lang : str
        Language code (one of ``LANGUAGES``).
    emotion_check : str, optional
        The label as given by a second source (e.g. a folder name), only
        cross-checked: a disagreement is counted, the primary label is kept.
    notes : tuple of str
        Warnings to count for this item (it is still written).

    Example
    -------
    >>> Utterance("03a01Wa", "/d/wav/03a01Wa.wav", "W", "03", "de").speaker
    '03'
    """

    utt_id: str
    wav: PathLike
    emotion: str
    speaker: str
    lang: str
    emotion_check: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CorpusSpec:
    """What a corpus module tells :func:`prepare_manifest` about its corpus.

    Arguments
    ---------
    name : str
        Corpus name (file names, ID and speaker prefix).
    layout : str
        Human-readable expected layout, shown in every layout error.
    label_map : mapping of str to str
        Label code -> canonical emotion, for ``Utterance.emotion`` and
        ``Utterance.emotion_check`` (case-insensitive).
    list_audio : callable
        ``list_audio(data_folder, options) -> list[Path]``: the audio files
        (raise :class:`CorpusLayoutError` if the layout is not found).
    parse : callable
        ``parse(path, context) -> Utterance``; raise :class:`SkipItem` for an
        item to skip.
    load_context : callable, optional
        ``load_context(data_folder, options, report) -> context`` (e.g. a
        metadata table), called once before parsing.
    metadata_files : callable, optional
        ``metadata_files(data_folder, options) -> list[Path]``: non-audio
        inputs included in the input fingerprint.
    sample_rates : tuple of int
        Native sample rates; other rates are counted as warnings.

    Example
    -------
    >>> spec = CorpusSpec("demo", "<data_folder>/*.wav", {"s": "sad"},
    ...                   list_audio=lambda folder, opts: [],
    ...                   parse=lambda path, ctx: None)
    >>> spec.name
    'demo'
    """

    name: str
    layout: str
    label_map: Mapping[str, str]
    list_audio: Callable[[Path, Mapping[str, Any]], list[Path]]
    parse: Callable[[Path, Any], Utterance]
    load_context: Callable[[Path, Mapping[str, Any], PrepReport], Any] | None = None
    metadata_files: Callable[[Path, Mapping[str, Any]], list[Path]] | None = None
    sample_rates: tuple[int, ...] = field(default=())


def layout_error(
    spec: CorpusSpec, data_folder: PathLike, problem: str, hint: str = ""
) -> CorpusLayoutError:
    """Build a :class:`CorpusLayoutError` naming the folder and expected layout.

    Arguments
    ---------
    spec : CorpusSpec
        The corpus.
    data_folder : path-like
        The folder given by the user.
    problem : str
        What was found instead.
    hint : str
        How to fix it, if known.

    Returns
    -------
    CorpusLayoutError
        The exception, to raise.

    Example
    -------
    >>> spec = CorpusSpec("demo", "<data_folder>/*.wav", {}, list, list)
    >>> print(layout_error(spec, "/nowhere", "it does not exist"))
    demo: data_folder /nowhere: it does not exist.
    Expected layout:
    <data_folder>/*.wav
    """
    message = f"{spec.name}: data_folder {data_folder}: {problem}."
    if hint:
        message += f" {hint}"
    message += f"\nExpected layout:\n{spec.layout}"
    return CorpusLayoutError(message)


def subfolder_hint(data_folder: Path, looks_right: Callable[[Path], bool]) -> str:
    """Suggest a sub-folder of ``data_folder`` that looks like the corpus root.

    Arguments
    ---------
    data_folder : Path
        The folder given by the user.
    looks_right : callable
        Test applied to each sub-folder (up to two levels down).

    Returns
    -------
    str
        ``"Did you mean <folder>?"`` or ``""``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> (tmp / "corpus" / "wav").mkdir(parents=True)
    >>> subfolder_hint(tmp, lambda p: (p / "wav").is_dir()).startswith("Did you mean")
    True
    """
    try:
        candidates = [p for p in data_folder.iterdir() if p.is_dir()]
        candidates += [q for p in candidates for q in p.iterdir() if q.is_dir()]
    except OSError:
        return ""
    for candidate in sorted(candidates):
        if looks_right(candidate):
            return f"Did you mean {candidate}?"
    return ""


@exclusive("prepare")
def prepare_manifest(
    spec: CorpusSpec,
    data_folder: PathLike,
    save_folder: PathLike,
    keep_all_classes: bool = False,
    options: Mapping[str, Any] | None = None,
) -> Path:
    """Prepare ``<save_folder>/<corpus>.csv`` for one corpus (the shared driver).

    Steps: check the folder; list the audio files; compare options and input
    fingerprint with the sidecar ``<corpus>_prep.json`` and skip if nothing
    changed; parse each file (label, speaker, ID); map the label to the
    canonical vocabulary (unknown labels skipped, label cross-check counted,
    classes outside ``emotion_classes(keep_all_classes)`` not kept); read the
    header (empty, zero-length and unreadable files skipped); skip duplicate
    IDs (the first path in sorted order wins); mark confounded speakers; write
    the CSV, then ``<corpus>_report.json``, then the sidecar.

    Arguments
    ---------
    spec : CorpusSpec
        The corpus description.
    data_folder : path-like
        The corpus folder, as unpacked.
    save_folder : path-like
        Where the manifest, report and sidecar are written.
    keep_all_classes : bool
        Keep every class of ``ALL_EMOTIONS`` instead of the 4 canonical ones.
    options : mapping, optional
        Further corpus-specific options (passed to ``spec`` callables and
        stored in the sidecar).

    Returns
    -------
    Path
        The manifest path ``<save_folder>/<corpus>.csv``.

    Raises
    ------
    CorpusLayoutError
        If the folder is missing, does not have the layout, or yields no
        usable utterance.

    Example
    -------
    >>> import tempfile, pathlib, numpy, soundfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("s1_sad_1", "s1_happy_2", "s2_sad_3", "s2_fear_4"):
    ...     soundfile.write(root / f"{name}.wav", numpy.zeros(160), 16000)
    >>> def parse(path, context):
    ...     spk, emo, idx = path.stem.split("_")
    ...     return Utterance(path.stem, path, emo, spk, "en")
    >>> spec = CorpusSpec("demo", "<data_folder>/<spk>_<emo>_<n>.wav",
    ...                   {e: e for e in ("sad", "happy", "fear")},
    ...                   list_audio=lambda folder, opts: find_files(folder),
    ...                   parse=parse)
    >>> csv_path = prepare_manifest(spec, root, root / "out")
    >>> read_manifest(csv_path)["spk_confounded"].tolist()
    [0, 0, 1]
    >>> report = json.loads((root / "out" / "demo_report.json").read_text())
    >>> report["skipped"]["class not kept"], report["confounding"]["n_confounded"]
    (1, 1)
    """
    name = spec.name
    given = data_folder
    data_folder = Path(os.path.abspath(os.path.expanduser(str(data_folder))))
    if not data_folder.exists():
        raise layout_error(spec, given, "it does not exist")
    if not data_folder.is_dir():
        raise layout_error(spec, given, "it is not a folder")
    save_folder = Path(save_folder)
    csv_path = save_folder / f"{name}.csv"
    report_path = save_folder / f"{name}_report.json"
    sidecar = save_folder / f"{name}_prep.json"

    opts = {"keep_all_classes": bool(keep_all_classes), **dict(options or {})}
    audio = spec.list_audio(data_folder, opts)
    if not audio:
        raise layout_error(spec, given, "no audio file found where expected")
    meta = spec.metadata_files(data_folder, opts) if spec.metadata_files else []
    stamp = make_stamp(
        {**opts, "data_folder": str(data_folder)}, input_fingerprint([*audio, *meta])
    )
    if is_up_to_date(sidecar, stamp, [csv_path, report_path]):
        logger.info(
            "%s: skipping preparation, %s is up to date (same options and input "
            "listing; report: %s).",
            name,
            csv_path,
            report_path,
        )
        return csv_path
    if sidecar.exists():
        sidecar.unlink()  # never leave a sidecar vouching for an outdated CSV

    report = PrepReport(name, data_folder, opts)
    report.n_found = len(audio)
    context = (
        spec.load_context(data_folder, opts, report) if spec.load_context else None
    )
    label_map = _normalized_label_map(spec.label_map)
    classes = set(emotion_classes(keep_all_classes))
    rates = set(spec.sample_rates)
    rows: list[dict[str, Any]] = []
    first_path: dict[str, str] = {}
    for path in audio:
        try:
            utt = spec.parse(path, context)
        except SkipItem as err:
            report.skip(err.reason, path, err.detail)
            continue
        for note in utt.notes:
            report.warn(note, path)
        emotion = label_map.get(normalize_label(utt.emotion))
        if emotion is None:
            report.skip(UNKNOWN_LABEL, path, f"label {utt.emotion!r}")
            continue
        if utt.emotion_check is not None:
            check = label_map.get(normalize_label(utt.emotion_check))
            if check != emotion:
                report.warn(
                    LABEL_DISAGREEMENT,
                    path,
                    f"kept {emotion!r}; second source says {utt.emotion_check!r}",
                )
        if emotion not in classes:
            report.skip(CLASS_NOT_KEPT, path, emotion, emotion=emotion)
            continue
        info, reason, detail = check_audio(utt.wav)
        if info is None:
            report.skip(reason, path, detail)
            continue
        uid = f"{name}_{utt.utt_id}"
        if uid in first_path:
            report.skip(DUPLICATE_ID, path, f"{uid} already from {first_path[uid]}")
            continue
        first_path[uid] = str(utt.wav)
        report.record_audio(info)
        if rates and info.sample_rate not in rates:
            report.warn(UNEXPECTED_SAMPLE_RATE, path, f"{info.sample_rate} Hz")
        rows.append(
            {
                "ID": uid,
                "duration": info.duration,
                "wav": str(utt.wav),
                "emo": emotion,
                "spk_id": f"{name}_{utt.speaker}",
                "lang": utt.lang,
                "corpus": name,
                "spk_confounded": 0,
            }
        )

    report.finalize(rows)
    report.manifest = str(csv_path)
    if not rows:
        report.save(report_path)
        raise layout_error(
            spec,
            given,
            f"none of the {len(audio)} audio files gave a usable utterance "
            f"(see {report_path})",
        )
    confounded = set(report.confounding["confounded_speakers"])
    for row in rows:
        row["spk_confounded"] = int(row["spk_id"] in confounded)
    rows.sort(key=lambda r: r["ID"])
    write_manifest(rows, csv_path)
    report.save(report_path)
    save_sidecar(sidecar, stamp)
    level = logging.WARNING if report.n_problems else logging.INFO
    logger.log(
        level,
        "%s\n  manifest: %s\n  report: %s",
        report.summary(),
        csv_path,
        report_path,
    )
    return csv_path


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def run_cli(
    prepare: Callable[..., Path],
    corpus: str,
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> Path:
    """Command line front end shared by the corpus scripts.

    Parses ``DATA_FOLDER SAVE_FOLDER [--keep-all-classes] [corpus options]``,
    calls ``prepare(data_folder=..., save_folder=..., keep_all_classes=...,
    **corpus_options)``, prints the report summary and the manifest path.
    A layout error exits with status 2 and the message (no traceback).

    Arguments
    ---------
    prepare : callable
        The corpus's ``prepare_<corpus>`` function.
    corpus : str
        Corpus name (program name and help).
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).
    add_arguments : callable, optional
        Adds corpus-specific options to the parser; their ``dest`` names must
        be keyword arguments of ``prepare``.

    Returns
    -------
    Path
        The manifest path.

    Example
    -------
    >>> import tempfile
    >>> def prepare(data_folder, save_folder, keep_all_classes=False):
    ...     return Path(save_folder) / "x.csv"
    >>> run_cli(prepare, "x", ["/data", "/out"]).name  # doctest: +ELLIPSIS
    /out/x.csv
    'x.csv'
    """
    doc = (prepare.__doc__ or "").strip().splitlines()
    parser = argparse.ArgumentParser(
        prog=f"python data_prep/{corpus}.py",
        description=doc[0] if doc else f"Prepare the {corpus} manifest.",
    )
    parser.add_argument("data_folder", help=f"the {corpus} folder, as unpacked")
    parser.add_argument("save_folder", help=f"where {corpus}.csv and the report go")
    parser.add_argument(
        "--keep-all-classes",
        action="store_true",
        help="keep every emotion class (default: neutral, happy, angry, sad)",
    )
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = prepare(**vars(args))
    except CorpusLayoutError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(path)
    return path
