"""Canonical label vocabularies shared by data preparation, training and inference.

Every corpus is mapped onto these vocabularies at data-preparation time, so that
the integer index of an emotion (or a language) is the same for every corpus,
every language pair and every run. Label encoders are always built from these
fixed lists, never from the order in which labels happen to be seen in a
manifest.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from speechbrain.dataio.encoder import CategoricalEncoder

#: The four emotion classes of the paper, in their fixed index order.
EMOTIONS: tuple[str, ...] = ("neutral", "happy", "angry", "sad")

#: Further emotions present in some corpora, used only with ``keep_all=True``.
EXTRA_EMOTIONS: tuple[str, ...] = ("surprise", "fear", "disgust", "boredom")

#: The paper's classes followed by the extra ones (indices of ``EMOTIONS`` kept).
ALL_EMOTIONS: tuple[str, ...] = EMOTIONS + EXTRA_EMOTIONS

#: ISO 639-1 codes of the languages handled by the recipe, in fixed index order.
LANGUAGES: tuple[str, ...] = ("en", "zh", "de", "fr", "ur")

#: The paper's nine tasks (``<source>_<target>``, its Table 1): targets German,
#: French and Mandarin, each from the three other non-Urdu languages; Urdu is
#: auxiliary in every task, never a target.
PAPER_TASKS: tuple[str, ...] = (
    "en_de", "zh_de", "fr_de",
    "en_fr", "zh_fr", "de_fr",
    "en_zh", "de_zh", "fr_zh",
)  # fmt: skip


def emotion_classes(keep_all: bool = False) -> tuple[str, ...]:
    """Return the emotion vocabulary used for training and evaluation.

    Arguments
    ---------
    keep_all : bool
        If False (default), the paper's four classes ``EMOTIONS``. If True,
        ``ALL_EMOTIONS``: the four classes followed by ``EXTRA_EMOTIONS``, so
        the index of each of the four classes is unchanged.

    Returns
    -------
    tuple of str
        The class names, in index order.

    Example
    -------
    >>> emotion_classes()
    ('neutral', 'happy', 'angry', 'sad')
    >>> emotion_classes(keep_all=True)[:4] == emotion_classes()
    True
    """
    return ALL_EMOTIONS if keep_all else EMOTIONS


def build_label_encoder(classes: Sequence[str]) -> CategoricalEncoder:
    """Build a SpeechBrain ``CategoricalEncoder`` with indices fixed by list order.

    ``CategoricalEncoder.update_from_iterable`` on a manifest numbers labels in
    first-seen order, which differs between corpora and between runs. This
    function instead gives ``classes[i]`` the index ``i``, always, and checks
    that the encoder holds exactly these labels.

    Arguments
    ---------
    classes : sequence of str
        The label vocabulary in index order, e.g. ``EMOTIONS`` or
        ``emotion_classes(keep_all=True)`` or ``LANGUAGES``.

    Returns
    -------
    speechbrain.dataio.encoder.CategoricalEncoder
        An encoder with ``encode_label(classes[i]) == i`` and
        ``expect_len(len(classes))`` set, so encoding or decoding fails
        loudly if labels are later added to it.

    Raises
    ------
    ValueError
        If ``classes`` is empty, is a single string, or contains duplicates.
    TypeError
        If a class name is not a string.

    Example
    -------
    >>> encoder = build_label_encoder(EMOTIONS)
    >>> encoder.encode_label("angry")
    2
    >>> encoder.decode_ndim([0, 3])
    ['neutral', 'sad']
    >>> len(encoder)
    4
    """
    from speechbrain.dataio.encoder import CategoricalEncoder

    if isinstance(classes, str):
        raise ValueError(
            f"build_label_encoder expects a sequence of class names, got the "
            f"single string {classes!r}. Pass e.g. EMOTIONS or [{classes!r}]."
        )
    classes = list(classes)
    if not classes:
        raise ValueError("build_label_encoder got an empty class list.")
    for name in classes:
        if not isinstance(name, str):
            raise TypeError(
                f"Class names must be strings, got {name!r} "
                f"({type(name).__name__}) in {classes!r}."
            )
    duplicates = sorted({name for name in classes if classes.count(name) > 1})
    if duplicates:
        raise ValueError(
            f"Duplicate class names {duplicates} in {classes!r}: each class "
            "must appear once, its position being its index."
        )
    encoder = CategoricalEncoder()
    for index, name in enumerate(classes):
        encoder.insert_label(name, index)
    encoder.expect_len(len(classes))
    return encoder
