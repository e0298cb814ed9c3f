"""Features of a frozen encoder: computed once (feature cache), standardised.

A frozen encoder (an SSL or Whisper model with freeze_ssl, the filterbank
statistics) gives the same output in every epoch: :func:`prepare_features`
computes it once per utterance into the feature cache, frees the encoder
(only its constructor call is exported) and, with ``speaker_norm``,
standardises the cached features (zsser_modules.speaker_norm).

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import speechbrain as sb
import torch
from speechbrain.utils.distributed import run_on_main
from speechbrain.utils.logger import get_logger

from zsser_modules.feature_cache import (
    FeatureCache,
    encoder_cache_key,
    use_cached_features,
)
from zsser_modules.inference import build_module, spec_only
from zsser_modules.run_identity import record_feature_cache_key
from zsser_modules.speaker_norm import SpeakerNorm, normalize_datasets

logger = get_logger(__name__)


def prepare_features(
    hparams: dict,
    options: Mapping[str, Any],
    modules: dict,
    datasets: dict,
    run_opts: dict,
) -> tuple[bool, SpeakerNorm | None]:
    """Cache a frozen encoder's features and standardise them (speaker_norm).

    ``options`` is the YAML's ``feature_options`` (feature cache, speaker
    normalisation: every such option is read there).
    Sets ``hparams["encoder_is_cached"]`` (the datasets then give
    ``encoder_feats`` instead of ``sig``) and replaces a cached encoder in
    ``modules`` by its constructor call (zsser_modules.inference.spec_only).

    Returns
    -------
    frozen : bool
        Whether the encoder has no trainable weight (it is then not
        checkpointed: its constructor rebuilds it).
    speaker_norm : SpeakerNorm or None
        The inference fallback of :func:`speaker_normalize` (None:
        speaker_norm: none).
    """
    encoder = hparams["encoder"]
    frozen = not any(p.requires_grad for p in modules[encoder].parameters())
    hparams["encoder_is_cached"] = frozen and options["use_feature_cache"]
    if hparams["encoder_is_cached"]:
        cache_encoder_features(hparams, options, modules[encoder], datasets, run_opts)
        modules[encoder] = spec_only(modules[encoder])
    return frozen, speaker_normalize(hparams, options, datasets)


def cache_encoder_features(
    hparams: dict,
    options: Mapping[str, Any],
    encoder: torch.nn.Module,
    datasets: dict,
    run_opts: dict,
) -> dict:
    """Compute a frozen encoder's output for every utterance once.

    The outputs (pooled layers [L+1, D] float32 for a frozen SSL model, the
    statistics vector for FbankStatsEncoder) are stored in
    feature_cache_folder under a key of the encoder's weights and settings,
    so every later epoch, run, variant and seed with the same encoder reads
    them back; the datasets then give ``encoder_feats`` instead of the audio
    ``sig``. Under DDP the main process computes them while the others wait.
    Returns the counts of computed and reused entries.
    """
    key = encoder_cache_key(
        encoder,
        sample_rate=hparams["sample_rate"],
        max_duration=hparams["max_duration"],
    )
    # The key hashes the encoder's weights: a run refuses to resume with
    # another encoder under the same settings (zsser_modules.run_identity).
    record_feature_cache_key(hparams["output_folder"], key, write=False)
    run_on_main(record_feature_cache_key, args=[hparams["output_folder"], key])
    cache = FeatureCache(options["feature_cache_folder"], key)
    return use_cached_features(
        datasets.values(),
        cache,
        encoder,
        replaces="sig",
        provides="encoder_feats",
        batch_size=options["feature_cache_batch_size"],
        device=run_opts.get("device") or sb.utils.distributed.infer_device(),
        progressbar=not run_opts.get("noprogressbar", False),
        # rebuilds the (released) encoder if an entry is found corrupt when read
        encoder_factory=functools.partial(
            build_module, hparams["modules"][hparams["encoder"]]
        ),
    )


def speaker_normalize(
    hparams: dict, options: Mapping[str, Any], datasets: dict
) -> SpeakerNorm | None:
    """Standardise the cached features (speaker_norm: zsser_modules.speaker_norm).

    per_speaker: every utterance uses its speaker's statistics over its own
    split's utterances (test_all: over test_all's; so the test split is
    normalised alike for every system), computed in one pass over the
    feature cache from the features and the ``spk_id`` column only
    (transductive for the test speakers). per_speaker_enrolment: each
    speaker's statistics from speaker_norm_enrolment of its utterances in
    the split (drawn with split_seed; a speaker with that many or fewer uses
    all, counted per split, with a warning for the test split). training:
    the training utterances' global
    statistics for every utterance. Returns the inference fallback, a
    SpeakerNorm holding the global statistics of the training utterances,
    or None with speaker_norm: none (nothing changes).
    """
    mode = options["speaker_norm"]
    if mode == "none":
        return None
    summary = normalize_datasets(
        datasets,
        mode=mode,
        enrolment=options["speaker_norm_enrolment"],
        enrolment_seed=options["split_seed"],
    )
    hparams["speaker_norm_speakers"] = summary["speakers"]
    if summary["enrolment"] is not None:
        hparams["speaker_norm_enrolment_utterances"] = summary["enrolment"]
        hparams["speaker_norm_enrolment_fallback_speakers"] = summary["fallback"]
        if summary["fallback"].get("test"):
            logger.warning(
                f"speaker_norm=per_speaker_enrolment: {summary['fallback']['test']} "
                f"test speaker(s) have speaker_norm_enrolment="
                f"{options['speaker_norm_enrolment']} or fewer test utterances and "
                "are normalised with all of them (transductive in practice): "
                "choose a smaller --speaker_norm_enrolment."
            )
    mean, std = summary["global"]
    fallback = build_module(SpeakerNorm, feature_shape=list(mean.shape))
    fallback.set_statistics(mean, std)
    logger.info(
        f"Features standardised ({mode}): speakers per split {summary['speakers']}"
        + (
            f", enrolment utterances per split {summary['enrolment']}"
            if summary["enrolment"] is not None
            else ""
        )
        + "."
    )
    return fallback
