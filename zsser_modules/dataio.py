"""Data-io pipeline helpers for manifest columns that SpeechBrain reads as strings.

SpeechBrain's CSV reader gives every column as a string: a manifest's
``spk_confounded`` column (``0``/``1`` as written by ``zsser_modules.data_prep``,
``True``/``False`` as written by pandas from a bool column) reaches a batch
as a list of strings, and ``bool("0")`` is True. :func:`flag_pipeline` turns
such a column into a bool per utterance, which ``PaddedBatch`` collates into a
bool tensor [batch], and refuses any other value with one clear line.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import numbers

import speechbrain as sb

#: The accepted spellings of a flag in a manifest, and their values.
FLAG_VALUES = {"True": True, "1": True, "False": False, "0": False}


def parse_flag(value, column: str = "spk_confounded") -> bool:
    """One manifest flag as a bool: ``"True"``/``"1"`` or ``"False"``/``"0"``.

    Arguments
    ---------
    value : str, bool or int
        The column's value (a string from a CSV; a bool or 0/1 from JSON).
    column : str
        The column's name, for the error message.

    Returns
    -------
    bool

    Raises
    ------
    ValueError
        For any other value (``"yes"``, ``""``, ``"2"``, ``"true"``...).

    Example
    -------
    >>> parse_flag("1"), parse_flag("False"), parse_flag(0)
    (True, False, False)
    >>> parse_flag("yes")
    Traceback (most recent call last):
    ...
    ValueError: spk_confounded: expected True, False, 1 or 0, got 'yes'; ...
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value in FLAG_VALUES:
        return FLAG_VALUES[value]
    raise ValueError(
        f"{column}: expected True, False, 1 or 0, got {value!r}; fix that "
        "manifest column."
    )


def flag_pipeline(column: str = "spk_confounded", provides: str = "confounded"):
    """A dynamic item that parses a flag column of the manifest (:func:`parse_flag`).

    Add it to a ``DynamicItemDataset`` and put ``provides`` in its output
    keys: ``batch.<provides>`` is then a bool tensor [batch], ready for
    ``zsser_modules.adversary_loss(..., ignore=batch.confounded)``.

    Arguments
    ---------
    column : str
        The manifest column to read.
    provides : str
        The name of the parsed item (it must differ from ``column``: the raw
        column keeps its name).

    Returns
    -------
    speechbrain.utils.data_pipeline.DynamicItem

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = {"a": {"spk_confounded": "0"}, "b": {"spk_confounded": "True"}}
    >>> dataset = DynamicItemDataset(data, dynamic_items=[flag_pipeline()],
    ...                              output_keys=["id", "confounded"])
    >>> PaddedBatch([dataset[0], dataset[1]]).confounded
    tensor([False,  True])
    """
    if column == provides:
        raise ValueError(
            f"flag_pipeline: provides must differ from the column it parses "
            f"({column!r}); e.g. provides='confounded'."
        )

    @sb.utils.data_pipeline.takes(column)
    @sb.utils.data_pipeline.provides(provides)
    def parse(value):
        return parse_flag(value, column)

    return parse
