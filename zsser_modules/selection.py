"""Model selection on the validation speakers of the training languages.

The best epoch is the one with the highest validation score under the
criterion ``selection``:

- ``mean_language_uar`` (default): the mean over the training languages of
  each language's own UAR, so a small language (EmoDB, 339 utterances)
  counts as much as a large one (ESD, 14,000);
- ``pooled_uar``: the UAR of all validation utterances pooled, which on the
  real corpora is in practice ESD's UAR (about 97 % of the validation data
  for most settings).

Every epoch's checkpoint stores both scores (and each language's UAR) in its
meta, so ``Checkpointer.find_checkpoint(max_key=selection)`` picks the epoch
the criterion says.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zsser_modules.choices import check_choice

#: Values of ``selection``: keys of the checkpoint meta written by
#: :func:`validation_meta`.
SELECTION_CRITERIA = ("mean_language_uar", "pooled_uar")


def check_selection(value: str) -> str:
    """Return ``value`` if it is a known selection criterion.

    Example
    -------
    >>> check_selection("pooled_uar")
    'pooled_uar'
    >>> check_selection("uar")
    Traceback (most recent call last):
    ...
    ValueError: selection must be mean_language_uar or pooled_uar, got 'uar' (e.g. --selection=pooled_uar).
    """  # noqa: E501
    return check_choice(
        "selection", value, SELECTION_CRITERIA, "e.g. --selection=pooled_uar"
    )


def validation_meta(
    pooled_uar: float, uar_per_language: Mapping[str, float], epoch: int
) -> dict[str, Any]:
    """The checkpoint meta of one validated epoch (every selection score).

    Arguments
    ---------
    pooled_uar : float
        UAR over all validation utterances.
    uar_per_language : mapping
        ``{language: UAR}`` over each training language's validation utterances.
    epoch : int
        The epoch.

    Returns
    -------
    dict
        ``uar`` (pooled, kept for older readers), ``pooled_uar``,
        ``mean_language_uar``, ``uar_per_language`` and ``epoch``.

    Example
    -------
    >>> meta = validation_meta(0.8, {"en": 0.9, "de": 0.5}, epoch=3)
    >>> meta["mean_language_uar"], meta["pooled_uar"], meta["epoch"]
    (0.7, 0.8, 3)
    """
    per_language = {lang: float(uar) for lang, uar in uar_per_language.items()}
    if not per_language:
        raise ValueError("validation_meta: no validation language was given.")
    return {
        "uar": float(pooled_uar),
        "pooled_uar": float(pooled_uar),
        "mean_language_uar": sum(per_language.values()) / len(per_language),
        "uar_per_language": per_language,
        "epoch": int(epoch),
    }
