"""Shared pytest configuration.

Makes the repository root and this folder importable (for ``recipes`` and the
fixture helpers in ``tests/*_utils.py``) and keeps every test offline.
"""

import logging
import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
for _path in (str(REPO_ROOT), str(TESTS_DIR)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

# No model hub and no dataset download on CI: fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _restore_logging_handlers():
    """Give every test the logging handlers it started with.

    A recipe run in a test (``train.main``) configures SpeechBrain's logging,
    whose handlers write to the ``sys.stderr`` of that moment: under
    ``capsys`` a capture stream that is closed when the test ends. A later
    test's log records would then fail on it ("--- Logging error ---" in
    that test's stderr). Handlers added during a test are removed after it.
    """
    before = {name: list(logging.getLogger(name).handlers) for name in _loggers()}
    yield
    for name in _loggers():
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if handler not in before.get(name, ()):
                logger.removeHandler(handler)


def _loggers():
    """The root logger's name and every named logger's."""
    return [""] + list(logging.Logger.manager.loggerDict)
