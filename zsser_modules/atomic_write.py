"""Writing a file so that no reader ever sees it half-written.

Every file the project writes for others to read (a run's ``results.json``
and identity, a manifest, a feature-cache entry and its key) goes through
:func:`atomic_open`: the content goes to a temporary file in the same folder
(``<name>.<random>.tmp``), which replaces the target with ``os.replace`` only
once it is complete. A crash or a kill leaves the previous file (or none) and
at most a stray ``.tmp`` file; an exception removes the temporary file.
:func:`write_text_atomic` and :func:`write_json_atomic` are the one-call forms.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Union

PathLike = Union[str, "os.PathLike[str]"]

#: Permissions of the written files (``mkstemp`` alone would give 0600).
FILE_MODE = 0o644


@contextlib.contextmanager
def atomic_open(
    path: PathLike,
    mode: str = "w",
    encoding: str | None = "utf-8",
    newline: str | None = None,
) -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` when the block ends well.

    Arguments
    ---------
    path : path-like
        The target file; its folder must exist.
    mode : str
        ``"w"`` (text) or ``"wb"`` (bytes).
    encoding : str or None
        Text encoding (ignored in binary mode).
    newline : str or None
        As for :func:`open` (``""`` for the :mod:`csv` module).

    Yields
    ------
    file object
        The open temporary file.

    Example
    -------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_open(target) as handle:
    ...     _ = handle.write("complete")
    >>> target.read_text()
    'complete'
    >>> try:
    ...     with atomic_open(target) as handle:
    ...         _ = handle.write("half")
    ...         raise RuntimeError("killed")
    ... except RuntimeError:
    ...     pass
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('complete', ['a.txt'])
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}.")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, FILE_MODE)
        if mode == "wb":
            handle = os.fdopen(fd, mode)
        else:
            handle = os.fdopen(fd, mode, encoding=encoding, newline=newline)
        with handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_open`).

    Arguments
    ---------
    path : path-like
        The target file; its folder must exist.
    text : str
        The whole content.

    Returns
    -------
    Path
        ``path``.

    Example
    -------
    >>> import tempfile
    >>> write_text_atomic(Path(tempfile.mkdtemp()) / "a.txt", "hi").read_text()
    'hi'
    """
    with atomic_open(path) as handle:
        handle.write(text)
    return Path(path)


def write_json_atomic(path: PathLike, data: Any, **dumps_kwargs: Any) -> Path:
    r"""Write ``data`` as indented JSON (and a final newline) atomically.

    Arguments
    ---------
    path : path-like
        The target file; its folder must exist.
    data : Any
        JSON-serialisable content.
    **dumps_kwargs : dict
        Further arguments of :func:`json.dumps` (``indent`` defaults to 2).

    Returns
    -------
    Path
        ``path``.

    Example
    -------
    >>> import tempfile
    >>> out = write_json_atomic(Path(tempfile.mkdtemp()) / "r.json", {"uar": 0.5})
    >>> out.read_text()
    '{\n  "uar": 0.5\n}\n'
    """
    dumps_kwargs.setdefault("indent", 2)
    return write_text_atomic(path, json.dumps(data, **dumps_kwargs) + "\n")
