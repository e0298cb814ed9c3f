"""Speaker normalisation of a frozen encoder's features.

``speaker_norm: per_speaker`` standardises each utterance's frozen-encoder
features (the pooled layers ``[L+1, D]`` of an SSL or Whisper model, the
statistics vector of ``FbankStatsEncoder``) with the mean and standard
deviation, element by element, of the features of *that speaker's own*
utterances::

    x_norm = (x - mean_speaker) / max(std_speaker, EPS)

It is the classic speaker z-normalisation of cross-corpus speech emotion
recognition: it re-centres every speaker, which the speaker adversary does
not. What it uses, exactly (docs/recipe.md, Speaker normalisation):

* **each split is its own pool** (:data:`STATISTICS_POOL`): an utterance is
  standardised with the statistics of its speaker over the utterances of
  *its own split* only, each utterance ID counted once. The train split's
  speakers use their train utterances, the valid split's their valid
  utterances, the test split's their test utterances, and the paper
  protocol's supplementary ``test_all`` (the whole target corpus) its own
  utterances. So the test split is normalised identically for every system
  of a task, zero-shot and upper bound alike, whatever the other splits
  hold (under the paper protocol's stratified splits the upper bound's
  train and valid splits share the target's test speakers; their
  utterances never reach the test statistics), and ``test_all`` never
  changes the test rows;
* the statistics come from the features alone (the ``spk_id`` column tells
  whose utterance it is; the emotion column is never read);
* the target language's test speakers use their own test utterances: the
  test is transductive (all of a test speaker's test utterances are seen,
  unlabelled, before any is classified) but label-free.

Two inductive alternatives (a test speaker's statistics come from k of its
utterances fixed in advance, or from none of them):

* ``speaker_norm: per_speaker_enrolment``: each speaker's statistics come
  from ``speaker_norm_enrolment`` = k of its utterances only, its
  *enrolment* utterances (:func:`enrolment_ids`: k drawn among the
  speaker's utterances *in the same split* (pool) by a generator seeded
  with ``f"{seed}/{speaker}"``, seed the run's ``split_seed``; all of them if
  the speaker has k or fewer there). Every split is treated alike: a test
  speaker's k come from the test split, identical for every system.
  The enrolment utterances stay in the test set and are scored like the
  others: the table pairs every row on the same test utterances, and
  ``results.json`` records the enrolment utterances per split
  (``speaker_norm_enrolment_utterances``; ``["test"]``: how many scored
  utterances were enrolment ones). A speaker with k or fewer utterances in
  its split is normalised with all of them, as ``per_speaker`` would (a
  *fallback*, transductive in practice): ``results.json`` counts them per
  split (``speaker_norm_enrolment_fallback_speakers``) and the recipe warns
  when a test speaker fell back. Under the paper protocol's small test
  splits (EmoDB: 38 utterances from 10 speakers) choose k well below a
  speaker's test count, or read the row as transductive. A random draw,
  not the first k by ID: corpora order their IDs by emotion (ESD's first
  350 utterances of a speaker are neutral).
* ``speaker_norm: training``: one standardisation for every utterance, with
  the global statistics of the training utterances (all training speakers
  pooled): no test statistic at all (it is what the exported model applies
  to a single file).

Single files at inference have no speaker: the exported model holds a
:class:`SpeakerNorm` with the global statistics of the training utterances
(all training speakers pooled) as a documented fallback, and
:meth:`SpeakerNorm.fit` sets the statistics of a given set of files (e.g. a
folder of one speaker: ``zsser-classify RUN FOLDER --one-speaker``).

The inference side is :class:`SpeakerNorm` (with :class:`RunningStats`);
every exported model folder carries a verbatim copy of this file
(``zsser_speaker_norm.py``), so it imports only the standard library and
torch. :func:`normalize_datasets` wires it into SpeechBrain datasets for the
recipe.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

__all__ = [
    "EPS",
    "SPEAKER_NORMS",
    "STATISTICS_POOL",
    "RunningStats",
    "SpeakerNorm",
    "check_speaker_norm",
    "enrolment_ids",
    "normalize_datasets",
    "speaker_statistics",
]

#: Values of the ``speaker_norm`` hyperparameter.
SPEAKER_NORMS: tuple[str, ...] = (
    "none",
    "per_speaker",
    "per_speaker_enrolment",
    "training",
)
#: Values that use statistics of the test speakers' own utterances, all of
#: them (transductive; the table reports those rows apart).
TRANSDUCTIVE_NORMS: tuple[str, ...] = ("per_speaker",)
#: Where a speaker's statistics come from (``results.json["speaker_norm_pool"]``
#: for ``per_speaker`` and ``per_speaker_enrolment``): the utterances of the
#: normalised utterance's own split, each ID once (module docstring).
STATISTICS_POOL: str = "own_split"


#: Floor of a standard deviation (an element constant over a speaker's
#: utterances, or a speaker with one utterance, maps to 0, not to inf).
EPS: float = 1e-5


class RunningStats:
    """Element-wise mean and standard deviation of tensors, in one pass (float64).

    Example
    -------
    >>> stats = RunningStats()
    >>> for value in ([1.0, 2.0], [3.0, 2.0]):
    ...     stats.add(torch.tensor(value))
    >>> mean, std = stats.result()  # a constant element gets the floor EPS
    >>> mean.tolist(), std.tolist() == [1.0, torch.tensor(EPS).item()]
    ([2.0, 2.0], True)
    """

    def __init__(self) -> None:
        self.count = 0
        self.total: torch.Tensor | None = None
        self.squares: torch.Tensor | None = None

    def add(self, feats: torch.Tensor) -> None:
        """Add one utterance's features (any shape, the same for every call)."""
        feats = feats.detach().to("cpu", torch.float64)
        if self.total is None:
            self.total = torch.zeros_like(feats)
            self.squares = torch.zeros_like(feats)
        self.total += feats
        self.squares += feats * feats
        self.count += 1

    def result(self, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)`` as float32 (population std, floored at ``eps``)."""
        if not self.count:
            raise ValueError("RunningStats: no feature was added.")
        mean = self.total / self.count
        var = (self.squares / self.count - mean * mean).clamp_min(0.0)
        return mean.float(), var.sqrt().clamp_min(eps).float()


class SpeakerNorm(torch.nn.Module):
    """Standardise features with one set of statistics: ``(x - mean) / std``.

    The statistics are buffers (saved in the module's state dict). The
    recipe exports it with the global statistics of the training data; a
    user with several files of one speaker sets theirs with :meth:`fit`.

    Arguments
    ---------
    feature_shape : sequence of int
        Shape of one utterance's features (``[L+1, D]`` or ``[D]``).
    eps : float
        Floor of the standard deviation.

    Example
    -------
    >>> norm = SpeakerNorm([2])
    >>> norm.fit([torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.0])])
    >>> norm(torch.tensor([[3.0, 0.0]])).tolist()
    [[1.0, 0.0]]
    """

    def __init__(self, feature_shape: Sequence[int], eps: float = EPS):
        super().__init__()
        self.feature_shape = [int(size) for size in feature_shape]
        self.eps = float(eps)
        self.register_buffer("mean", torch.zeros(self.feature_shape))
        self.register_buffer("std", torch.ones(self.feature_shape))

    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Use these statistics (shape ``feature_shape``)."""
        for name, value in (("mean", mean), ("std", std)):
            if list(value.shape) != self.feature_shape:
                raise ValueError(
                    f"SpeakerNorm: {name} has shape {list(value.shape)}, expected "
                    f"{self.feature_shape}."
                )
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(self.eps))

    def fit(self, features: Iterable[torch.Tensor]) -> None:
        """Set the statistics of these utterances' features (e.g. one speaker's)."""
        stats = RunningStats()
        for feats in features:
            stats.add(feats)
        self.set_statistics(*stats.result(self.eps))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Standardise ``feats`` ``[batch, *feature_shape]`` (or one utterance)."""
        return (feats - self.mean) / self.std


def check_speaker_norm(
    value: str, frozen: bool, cached: bool, enrolment: Any = 5
) -> None:
    """Refuse a ``speaker_norm`` that cannot apply to this run (one-line message).

    Arguments
    ---------
    value : str
        The ``speaker_norm`` hyperparameter.
    frozen : bool
        Whether the encoder has no trainable weight.
    cached : bool
        Whether its features come from the feature cache.
    enrolment : int
        The ``speaker_norm_enrolment`` hyperparameter (k), checked with
        ``per_speaker_enrolment``: a whole number, at least 1.

    Example
    -------
    >>> check_speaker_norm("none", frozen=False, cached=False)
    >>> check_speaker_norm("per_speaker", frozen=False, cached=False)
    Traceback (most recent call last):
    ...
    ValueError: speaker_norm=per_speaker normalises the features of a frozen ...
    >>> check_speaker_norm("per_speaker_enrolment", True, True, enrolment=0)
    Traceback (most recent call last):
    ...
    ValueError: speaker_norm_enrolment must be a whole number of utterances ...
    """
    if value not in SPEAKER_NORMS:
        raise ValueError(
            f"speaker_norm must be one of {list(SPEAKER_NORMS)}, got {value!r}."
        )
    if value == "none":
        return
    if value == "per_speaker_enrolment" and (
        isinstance(enrolment, bool) or not isinstance(enrolment, int) or enrolment < 1
    ):
        raise ValueError(
            "speaker_norm_enrolment must be a whole number of utterances per "
            f"speaker, at least 1, got {enrolment!r}: set "
            "--speaker_norm_enrolment=5 (or another positive whole number)."
        )
    if not frozen:
        raise ValueError(
            f"speaker_norm={value} normalises the features of a frozen encoder, "
            "but this encoder trains (encoder=fbank, or freeze_ssl=False): use "
            "encoder=fbank_stats, ssl or whisper with freeze_ssl=True, or "
            "speaker_norm=none."
        )
    if not cached:
        raise ValueError(
            f"speaker_norm={value} computes the statistics from the "
            "feature cache, but use_feature_cache is False: set "
            "--use_feature_cache=True."
        )


def speaker_statistics(
    items: Iterable[tuple[str, torch.Tensor]], eps: float = EPS
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-speaker ``(mean, std)`` of features given as ``(speaker, feats)``.

    Example
    -------
    >>> stats = speaker_statistics([("a", torch.tensor([1.0])),
    ...     ("a", torch.tensor([3.0])), ("b", torch.tensor([5.0]))])
    >>> {spk: (m.item(), round(s.item(), 6)) for spk, (m, s) in stats.items()}
    {'a': (2.0, 1.0), 'b': (5.0, 1e-05)}
    """
    running: dict[str, RunningStats] = {}
    for speaker, feats in items:
        running.setdefault(speaker, RunningStats()).add(feats)
    return {speaker: stats.result(eps) for speaker, stats in running.items()}


def enrolment_ids(speakers: Mapping[str, str], k: int, seed: int | str = 0) -> set[str]:
    """The enrolment utterances of ``per_speaker_enrolment``: k per speaker.

    For each speaker, its utterance IDs are sorted and ``min(k, n)`` of them
    drawn by ``random.Random(f"{seed}/{speaker}").sample``: stable across
    runs and Python versions, and independent of the other speakers.

    Arguments
    ---------
    speakers : mapping
        Utterance ID -> speaker (one split).
    k : int
        Enrolment utterances per speaker (>= 1).
    seed : int or str
        Seed of the draw (the recipe passes ``split_seed``).

    Returns
    -------
    set of str
        The enrolment IDs.

    Example
    -------
    >>> ids = {f"a{i}": "a" for i in range(10)} | {"b0": "b", "b1": "b"}
    >>> chosen = enrolment_ids(ids, 3, seed=1)
    >>> len(chosen), {"b0", "b1"} <= chosen
    (5, True)
    >>> chosen == enrolment_ids(dict(reversed(ids.items())), 3, seed=1)
    True
    """
    if int(k) < 1:
        raise ValueError(
            f"speaker_norm_enrolment must be at least 1 utterance per speaker, got "
            f"{k}: set --speaker_norm_enrolment=5 (or another positive number)."
        )
    by_speaker: dict[str, list[str]] = {}
    for utt, speaker in speakers.items():
        by_speaker.setdefault(str(speaker), []).append(str(utt))
    chosen: set[str] = set()
    for speaker, ids in by_speaker.items():
        ids.sort()
        rng = random.Random(f"{seed}/{speaker}")
        chosen.update(rng.sample(ids, min(int(k), len(ids))))
    return chosen


def normalize_datasets(
    datasets: Mapping[str, Any],
    feats_key: str = "encoder_feats",
    speaker_key: str = "spk_id",
    global_split: str = "train",
    eps: float = EPS,
    mode: str = "per_speaker",
    enrolment: int | None = None,
    enrolment_seed: int | str = 0,
) -> dict[str, Any]:
    """Make SpeechBrain datasets give speaker-normalised features.

    One pass reads each utterance's features (from the feature cache,
    through the dataset's ``feats_key`` item) and its speaker (the
    manifest's ``speaker_key`` column, nothing else) and accumulates each
    speaker's statistics **within each split** (:data:`STATISTICS_POOL`;
    one dataset given under two names is one pool), every utterance ID
    counted once (a view listing an ID twice counts it once); then a
    dynamic item
    standardises ``feats_key`` with the utterance's own speaker's
    statistics of its own split, under the same output name. ``mode`` (the
    module docstring): ``per_speaker`` (every utterance of the speaker in
    the split counts), ``per_speaker_enrolment`` (only its
    :func:`enrolment_ids`, drawn among the speaker's utterances of the
    split) or ``training`` (every utterance standardised with the global
    statistics of ``global_split``).

    Arguments
    ---------
    datasets : mapping
        Split name -> ``DynamicItemDataset`` giving ``feats_key``.
    feats_key : str
        Output key of the features.
    speaker_key : str
        Manifest column of the speaker.
    global_split : str
        Split whose utterances give the global statistics (the inference
        fallback).
    eps : float
        Floor of the standard deviations.
    mode : str
        ``per_speaker``, ``per_speaker_enrolment`` or ``training``.
    enrolment : int, optional
        ``per_speaker_enrolment``: utterances per speaker (k).
    enrolment_seed : int or str
        ``per_speaker_enrolment``: seed of :func:`enrolment_ids`.

    Returns
    -------
    dict
        ``speakers``: {split: number of speakers}; ``global``: the ``(mean,
        std)`` of ``global_split`` (all its speakers pooled, each ID once;
        None without that split);
        ``enrolment``: {split: its enrolment utterances}; ``fallback``:
        {split: its speakers with k or fewer utterances there, normalised
        with all of them} (both ``per_speaker_enrolment`` only, else None).
    """
    if mode not in SPEAKER_NORMS[1:]:
        raise ValueError(
            f"normalize_datasets: mode must be one of {list(SPEAKER_NORMS[1:])}, "
            f"got {mode!r}."
        )
    ids = {split: _dataset_ids(dataset) for split, dataset in datasets.items()}
    # One pool per split (per pipeline: a filtered/sorted view deep-copies
    # its parent's pipeline, so only one dataset under two names shares one).
    pool_of = {split: id(dataset.pipeline) for split, dataset in datasets.items()}
    pool_speakers: dict[int, dict[str, str]] = {}  # pool -> {utt: speaker}
    for split, dataset in datasets.items():
        members = pool_speakers.setdefault(pool_of[split], {})
        for utt in ids[split]:
            members[utt] = str(dataset.data[utt][speaker_key])
    chosen: dict[int, set[str]] | None = None
    fallback: dict[str, int] | None = None
    if mode == "per_speaker_enrolment":  # k per speaker of each pool
        k = enrolment if enrolment is not None else 0
        chosen = {
            pool: enrolment_ids(members, k, enrolment_seed)
            for pool, members in pool_speakers.items()
        }
        counts = {
            pool: _utterances_per_speaker(members)
            for pool, members in pool_speakers.items()
        }
        fallback = {
            split: sum(
                counts[pool_of[split]][speaker] <= int(k)
                for speaker in {pool_speakers[pool_of[split]][u] for u in ids[split]}
            )
            for split in datasets
        }
    running: dict[int, dict[str, RunningStats]] = {pool: {} for pool in pool_speakers}
    done: dict[int, set[str]] = {pool: set() for pool in pool_speakers}
    global_stats, global_done = RunningStats(), set()
    speakers: dict[str, int] = {}
    for split, dataset in datasets.items():
        pool = pool_of[split]
        members = pool_speakers[pool]
        speakers[split] = len({members[utt] for utt in ids[split]})
        with dataset.output_keys_as(["id", feats_key]):
            for index, utt in enumerate(ids[split]):
                to_global = split == global_split and utt not in global_done
                to_pool = (
                    mode != "training"
                    and utt not in done[pool]
                    and (chosen is None or utt in chosen[pool])
                )
                if not (to_global or to_pool):
                    continue  # counted already (or not enrolled): not read
                feats = dataset[index][feats_key]
                if to_global:
                    global_done.add(utt)
                    global_stats.add(feats)
                if to_pool:
                    done[pool].add(utt)
                    running[pool].setdefault(members[utt], RunningStats()).add(feats)
    stats = {
        pool: {speaker: value.result(eps) for speaker, value in by_speaker.items()}
        for pool, by_speaker in running.items()
    }
    global_mean, global_std = (
        global_stats.result(eps) if global_stats.count else (None, None)
    )
    if mode == "training" and global_mean is None:
        raise ValueError(
            f"normalize_datasets: mode=training needs the {global_split!r} split "
            f"among the datasets, got {list(datasets)}."
        )

    from speechbrain.utils.data_pipeline import provides, takes

    normalized_key = f"{feats_key}_speaker_normalized"

    def normalizer(pool_stats):
        @takes(feats_key, speaker_key)
        @provides(normalized_key)
        def normalize(feats, speaker):
            if mode == "training":
                return (feats - global_mean) / global_std
            mean, std = pool_stats[str(speaker)]
            return (feats - mean) / std

        return normalize

    pipelines = set()  # one dataset given under two names: normalised once
    for split, dataset in datasets.items():
        if pool_of[split] in pipelines:
            continue
        pipelines.add(pool_of[split])
        dataset.add_dynamic_item(normalizer(stats[pool_of[split]]))
        mapping = dict(dataset.pipeline.output_mapping)
        dataset.set_output_keys(
            {
                key: normalized_key if key == feats_key else value
                for key, value in mapping.items()
            }
        )
    return {
        "speakers": speakers,
        "global": None if global_mean is None else (global_mean, global_std),
        "enrolment": None
        if chosen is None
        else {
            split: len(chosen[pool_of[split]].intersection(ids[split])) for split in ids
        },
        "fallback": fallback,
    }


def _utterances_per_speaker(members: Mapping[str, str]) -> dict[str, int]:
    """Speaker -> number of (unique) utterance IDs, from ``{utt: speaker}``."""
    counts: dict[str, int] = {}
    for speaker in members.values():
        counts[speaker] = counts.get(speaker, 0) + 1
    return counts


def _dataset_ids(dataset: Any) -> list[str]:
    """The utterance IDs a (possibly filtered) SpeechBrain dataset gives."""
    return list(getattr(dataset, "data_ids", dataset.data.keys()))
