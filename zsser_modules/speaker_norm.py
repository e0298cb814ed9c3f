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
    "normalize_datasets",
    "speaker_statistics",
]

#: Values of the ``speaker_norm`` hyperparameter.
SPEAKER_NORMS: tuple[str, ...] = ("none", "per_speaker")


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
            "speaker_norm=per_speaker normalises the features of a frozen encoder, "
            "but this encoder trains (encoder=fbank, or freeze_ssl=False): use "
            "encoder=fbank_stats, ssl or whisper with freeze_ssl=True, or "
            "speaker_norm=none."
        )
    if not cached:
        raise ValueError(
            "speaker_norm=per_speaker computes the speakers' statistics from the "
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


def normalize_datasets(
    datasets: Mapping[str, Any],
    feats_key: str = "encoder_feats",
    speaker_key: str = "spk_id",
    global_split: str = "train",
    eps: float = EPS,
) -> dict[str, Any]:
    """Make SpeechBrain datasets give speaker-normalised features.

    One pass over every dataset reads each utterance's features (from the
    feature cache, through the dataset's ``feats_key`` item) and its speaker
    (the manifest's ``speaker_key`` column, nothing else), accumulates each
    speaker's statistics over all the datasets, then adds a dynamic item
    that standardises ``feats_key`` with the utterance's own speaker's
    statistics, under the same output name.

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

    Returns
    -------
    dict
        ``speakers``: {split: number of speakers}; ``global``: the ``(mean,
        std)`` of ``global_split`` (all its speakers pooled).
    """
    running: dict[str, RunningStats] = {}
    global_stats = RunningStats()
    speakers: dict[str, int] = {}
    for split, dataset in datasets.items():
        seen = set()
        with dataset.output_keys_as(["id", feats_key]):
            for item in dataset:
                speaker = str(dataset.data[item["id"]][speaker_key])
                running.setdefault(speaker, RunningStats()).add(item[feats_key])
                if split == global_split:
                    global_stats.add(item[feats_key])
                seen.add(speaker)
        speakers[split] = len(seen)
    stats = {speaker: value.result(eps) for speaker, value in running.items()}

    from speechbrain.utils.data_pipeline import provides, takes

    normalized_key = f"{feats_key}_speaker_normalized"

    @takes(feats_key, speaker_key)
    @provides(normalized_key)
    def normalize(feats, speaker):
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
    return {"speakers": speakers, "global": global_stats.result(eps)}
