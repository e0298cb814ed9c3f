"""Stale-output protection: a stamp of the options and input, kept in a sidecar.

A preparation stamps what it was asked for (:func:`make_stamp`: options and a
cheap fingerprint of the input listing) and writes the stamp last
(:func:`save_sidecar`); the next run with the same stamp and every output
present reuses the outputs (:func:`is_up_to_date`), any other run rebuilds
them and logs why.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from zsser_modules.data_prep.manifest import PathLike

logger = logging.getLogger(__name__)

#: Bump when the content written for the same input and options changes, so
#: manifests written by an older version of this code are rebuilt.
PREP_VERSION = 1


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
