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

* the statistics of a speaker are computed over every utterance of that
  speaker in the run's train, valid and test manifests, from the features
  alone (the ``spk_id`` column tells whose utterance it is; the emotion
  column is never read);
* every split uses its own speakers' statistics, the target language's test
  speakers included: the test is transductive (all of a test speaker's
  utterances are seen, unlabelled, before any is classified) but label-free.

Two inductive alternatives (a test speaker's statistics come from k of its
utterances fixed in advance, or from none of them):

* ``speaker_norm: per_speaker_enrolment``: each speaker's statistics come
  from ``speaker_norm_enrolment`` = k of its utterances only, its
  *enrolment* utterances (:func:`enrolment_ids`: k drawn among all of the
  speaker's utterances in the run's manifests by a generator seeded with
  ``f"{seed}/{speaker}"``, seed the run's ``split_seed``; all of them if the
  speaker has k or fewer). Every split is treated alike; a zero-shot
  target's speakers are only in the test split, so their k come from it.
  The enrolment utterances stay in the test set and are scored like the
  others: the table pairs every row on the same test utterances, and
  ``results.json`` records the enrolment utterances per split
  (``speaker_norm_enrolment_utterances``; ``["test"]``: how many scored
  utterances were enrolment ones). A speaker with k or fewer utterances is
  normalised with all of them, as ``per_speaker`` would: under the paper
  protocol's small test splits (EmoDB: 38 utterances from 10 speakers)
  choose k well below a speaker's test count, or read the row as
  transductive. A random draw, not the first k by ID: corpora order their
  IDs by emotion (ESD's first 350 utterances of a speaker are neutral).
* ``speaker_norm: training``: one standardisation for every utterance, with
  the global statistics of the training utterances (all training speakers
  pooled): no test statistic at all (it is what the exported model applies
  to a single file).

Single files at inference have no speaker: the exported model holds a
:class:`SpeakerNorm` with the global statistics of the training utterances
(all training speakers pooled) as a documented fallback, and
:meth:`SpeakerNorm.fit` sets the statistics of a given set of files (e.g. a
folder of one speaker: ``zsser-classify RUN FOLDER --one-speaker``).

The inference side (:class:`SpeakerNorm`, :class:`RunningStats`) is defined in
:mod:`zsser_modules.custom_interface`, the self-contained file copied into
every exported model; :func:`normalize_datasets` wires it into SpeechBrain
datasets for the recipe.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

import torch

# The inference side lives in the self-contained interface copied into every
# exported model folder (one definition, re-exported here).
from zsser_modules.custom_interface import SPEAKER_NORM_EPS as EPS
from zsser_modules.custom_interface import RunningStats, SpeakerNorm

__all__ = [
    "EPS",
    "SPEAKER_NORMS",
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


def check_speaker_norm(value: str, frozen: bool, cached: bool) -> None:
    """Refuse a ``speaker_norm`` that cannot apply to this run (one-line message).

    Arguments
    ---------
    value : str
        The ``speaker_norm`` hyperparameter.
    frozen : bool
        Whether the encoder has no trainable weight.
    cached : bool
        Whether its features come from the feature cache.

    Example
    -------
    >>> check_speaker_norm("none", frozen=False, cached=False)
    >>> check_speaker_norm("per_speaker", frozen=False, cached=False)
    Traceback (most recent call last):
    ...
    ValueError: speaker_norm=per_speaker normalises the features of a frozen ...
    """
    if value not in SPEAKER_NORMS:
        raise ValueError(
            f"speaker_norm must be one of {list(SPEAKER_NORMS)}, got {value!r}."
        )
    if value == "none":
        return
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

    One pass over every dataset reads each utterance's features (from the
    feature cache, through the dataset's ``feats_key`` item) and its speaker
    (the manifest's ``speaker_key`` column, nothing else), accumulates each
    speaker's statistics over all the datasets, then adds a dynamic item
    that standardises ``feats_key`` with the utterance's own speaker's
    statistics, under the same output name. ``mode`` (the module
    docstring): ``per_speaker`` (every utterance of a speaker counts),
    ``per_speaker_enrolment`` (only its :func:`enrolment_ids`, drawn over
    all the splits' utterances of the speaker) or ``training`` (every
    utterance standardised with the global statistics of ``global_split``).

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
        std)`` of ``global_split`` (all its speakers pooled); ``enrolment``:
        {split: its enrolment utterances} (``per_speaker_enrolment``, else
        None).
    """
    if mode not in SPEAKER_NORMS[1:]:
        raise ValueError(
            f"normalize_datasets: mode must be one of {list(SPEAKER_NORMS[1:])}, "
            f"got {mode!r}."
        )
    chosen: set[str] | None = None
    ids = {split: _dataset_ids(dataset) for split, dataset in datasets.items()}
    if mode == "per_speaker_enrolment":  # k per speaker, every split pooled
        chosen = enrolment_ids(
            {
                utt: dataset.data[utt][speaker_key]
                for split, dataset in datasets.items()
                for utt in ids[split]
            },
            enrolment if enrolment is not None else 0,
            enrolment_seed,
        )
    running: dict[str, RunningStats] = {}
    global_stats = RunningStats()
    speakers: dict[str, int] = {}
    for split, dataset in datasets.items():
        seen = set()
        with dataset.output_keys_as(["id", feats_key]):
            for item in dataset:
                speaker = str(dataset.data[item["id"]][speaker_key])
                if split == global_split:
                    global_stats.add(item[feats_key])
                seen.add(speaker)
                if mode == "training":
                    continue
                if chosen is not None and item["id"] not in chosen:
                    continue
                running.setdefault(speaker, RunningStats()).add(item[feats_key])
        speakers[split] = len(seen)
    stats = {speaker: value.result(eps) for speaker, value in running.items()}
    global_mean, global_std = global_stats.result(eps)

    from speechbrain.utils.data_pipeline import provides, takes

    normalized_key = f"{feats_key}_speaker_normalized"

    @takes(feats_key, speaker_key)
    @provides(normalized_key)
    def normalize(feats, speaker):
        if mode == "training":
            return (feats - global_mean) / global_std
        mean, std = stats[str(speaker)]
        return (feats - mean) / std

    pipelines = set()  # a filtered/sorted view shares its parent's pipeline
    for dataset in datasets.values():
        if id(dataset.pipeline) in pipelines:
            continue
        pipelines.add(id(dataset.pipeline))
        dataset.add_dynamic_item(normalize)
        mapping = dict(dataset.pipeline.output_mapping)
        dataset.set_output_keys(
            {
                key: normalized_key if key == feats_key else value
                for key, value in mapping.items()
            }
        )
    return {
        "speakers": speakers,
        "global": (global_mean, global_std),
        "enrolment": None
        if chosen is None
        else {split: len(chosen.intersection(ids[split])) for split in ids},
    }


def _dataset_ids(dataset: Any) -> list[str]:
    """The utterance IDs a (possibly filtered) SpeechBrain dataset gives."""
    return list(getattr(dataset, "data_ids", dataset.data.keys()))
