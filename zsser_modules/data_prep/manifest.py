"""The manifest: its columns, the corpora and languages it carries, writer and reader.

Every CSV of the data preparation (a corpus's ``<corpus>.csv`` and a setting's
``train``/``valid``/``test`` CSVs) has the columns :data:`MANIFEST_COLUMNS`;
:func:`write_manifest` checks each row against the schema and writes
atomically, :func:`read_manifest` reads one back with its types.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union

import pandas as pd

from zsser_modules.atomic_write import atomic_open
from zsser_modules.labels import ALL_EMOTIONS, LANGUAGES

PathLike = Union[str, "os.PathLike[str]"]

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
    with atomic_open(path, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        for values in _manifest_tuples(rows):
            row = _checked_row(values)
            if row[0] in seen:
                raise ValueError(f"Duplicate ID {row[0]!r} in manifest {path}.")
            seen.add(row[0])
            writer.writerow(row)
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
