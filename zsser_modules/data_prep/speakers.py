"""Speakers and emotion: confounding, and speaker-independent splits.

A speaker whose rows in a manifest all carry one emotion is *confounded* with
emotion (``spk_confounded``); :func:`speaker_split` holds out speakers per
language, seeded, and redraws when a side would miss a class.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pandas as pd


class SplitError(ValueError):
    """A speaker-independent split or a setting cannot be made as requested.

    Example
    -------
    >>> isinstance(SplitError("only 1 speaker"), ValueError)
    True
    """


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


def _draw_held_out(
    speakers: list[str],
    n_out: int,
    counts: dict[str, Counter],
    minimum: int,
    rng: random.Random,
) -> list[str]:
    """The held-out speakers of one group (see :func:`speaker_split`)."""
    if not counts:  # no class to cover: the first shuffle
        order = list(speakers)
        rng.shuffle(order)
        return order[:n_out]
    total = sum(counts.values(), Counter())
    # a class cannot give the held-out side more than all but one of its
    # utterances (the kept side needs one): the search stops at that target
    target = {c: min(minimum, n - 1) for c, n in total.items()}
    best, best_score = None, None
    sizes = range(n_out, len(speakers)) if minimum > 0 else [n_out]
    for size in sizes:
        for _ in range(COVER_ATTEMPTS):
            order = list(speakers)
            rng.shuffle(order)
            held = sum((counts[s] for s in order[:size]), Counter())
            kept = sum((counts[s] for s in order[size:]), Counter())
            held_cov, kept_cov = len(held), len(kept)
            missing = sum(max(0, n - held[c]) for c, n in target.items())
            score = (min(held_cov, kept_cov), -missing, held_cov + kept_cov)
            if best_score is None or score > best_score:
                best, best_score = order[:size], score
            if held_cov == kept_cov == len(total) and missing == 0:
                return best
    return best


def held_out_shortfall(
    held_out: pd.DataFrame, minimum: int, by: str | None = "lang"
) -> dict[str, dict[str, int]]:
    """Classes of each group that a held-out side has fewer than ``minimum`` of.

    Arguments
    ---------
    held_out : pandas.DataFrame
        The held-out rows (e.g. a validation manifest).
    minimum : int
        Utterances required per class and group.
    by : str or None
        The group column (default ``"lang"``; None: one group).

    Returns
    -------
    dict
        ``{group: {emotion: utterances}}`` for the classes under the
        minimum (empty: the minimum holds).

    Example
    -------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"lang": ["de"] * 3, "emo": ["sad", "sad", "happy"]})
    >>> held_out_shortfall(df, 2)
    {'de': {'happy': 1}}
    """
    groups = [("all", held_out)] if by is None else held_out.groupby(by, sort=True)
    out = {}
    for group, part in groups:
        low = {
            emo: int(n) for emo, n in part["emo"].value_counts().items() if n < minimum
        }
        if low:
            out[str(group)] = dict(sorted(low.items()))
    return out


def speaker_split(
    df: pd.DataFrame,
    ratio: float,
    seed: int,
    by: str | None = "lang",
    salt: str = "",
    cover_classes: bool = True,
    min_held_per_class: int = 0,
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

    With ``min_held_per_class`` = m > 0 (the validation sets' minimum), a
    draw must also give the held-out side at least m utterances of every
    emotion of the group; if none of the ``COVER_ATTEMPTS`` draws of
    :func:`n_held_out` speakers does, the held-out side grows by one speaker
    at a time (the same generator drawing on), up to ``n - 1`` speakers. A
    class with fewer than m + 1 utterances asks for all but one of them (the
    kept side keeps one). If no size works, the draw closest to the minimum
    is kept (first: both sides cover every class; then: fewest utterances
    missing) and :func:`held_out_shortfall` tells what is missing.
    With m = 0 the draws are exactly those made without the option.

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
    min_held_per_class : int
        Utterances of every emotion of the group the held-out side must hold
        at least (0: no minimum). Needs ``cover_classes`` and an ``emo``
        column.

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
    >>> _, held = speaker_split(df, 0.25, seed=1, min_held_per_class=2)
    >>> held["spk_id"].nunique(), int(held.groupby("emo").size().min())
    (2, 2)
    """
    if min_held_per_class < 0:
        raise ValueError(f"min_held_per_class must be >= 0, got {min_held_per_class}.")
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
        counts: dict[str, Counter] = {}
        if cover_classes and "emo" in part:
            for spk, emo in zip(part["spk_id"].tolist(), part["emo"].tolist()):
                counts.setdefault(spk, Counter())[emo] += 1
        held_speakers.update(
            _draw_held_out(speakers, n_out, counts, min_held_per_class, rng)
        )
    mask = df["spk_id"].isin(held_speakers)
    kept = mark_confounded_speakers(df[~mask]) if "emo" in df else df[~mask].copy()
    held = mark_confounded_speakers(df[mask]) if "emo" in df else df[mask].copy()
    return kept, held


#: Marks a pseudo-speaker in a ``spk_id``: ``<corpus>_pseudo_<name>``.
PSEUDO_SPEAKER_MARK = "pseudo"


def pseudo_speaker_id(corpus: str, name: str) -> str:
    """Return the ``spk_id`` of a pseudo-speaker: ``<corpus>_pseudo_<name>``.

    A pseudo-speaker is a speaker label that names no single person (MELD's
    ``All``, ``Both``, ``Joey and Ross``): its utterances are kept, but it is
    not a speaker for the speaker adversary nor for speaker counts.

    Arguments
    ---------
    corpus : str
        Corpus name (the ``spk_id`` prefix).
    name : str
        The label, ID-safe.

    Returns
    -------
    str
        The speaker ID.

    Example
    -------
    >>> pseudo_speaker_id("meld", "all")
    'meld_pseudo_all'
    """
    return f"{corpus}_{PSEUDO_SPEAKER_MARK}_{name}"


def is_pseudo_speaker(spk_id: str) -> bool:
    """Whether a ``spk_id`` is a pseudo-speaker (``<corpus>_pseudo_<name>``).

    Arguments
    ---------
    spk_id : str
        A manifest's speaker ID.

    Returns
    -------
    bool
        True for IDs whose second ``_`` field is ``pseudo`` followed by a
        name (corpus names hold no ``_``).

    Example
    -------
    >>> is_pseudo_speaker("meld_pseudo_all"), is_pseudo_speaker("meld_ross")
    (True, False)
    >>> is_pseudo_speaker("meld_pseudo"), is_pseudo_speaker("esd_0001")
    (False, False)
    """
    fields = str(spk_id).split("_", 2)
    return len(fields) == 3 and fields[1] == PSEUDO_SPEAKER_MARK and bool(fields[2])
