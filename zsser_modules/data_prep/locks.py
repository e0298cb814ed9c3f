"""One preparation at a time per output folder: a file lock around the function.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock


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
