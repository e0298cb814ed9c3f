"""Utterance encoders: a frozen SSL model with per-layer masked pooling, a
trainable filterbank ECAPA-TDNN encoder, frozen filterbank statistics, and a
Whisper encoder with per-layer pooling.

They are defined once, in :mod:`zsser_modules.custom_interface` (the file
every exported model folder carries as ``custom_interface.py``, so that the
model loads without this project); this module is their usual import path.
See that module for the design (padding-exact pooling, cached frozen
features, Whisper's cut context, compute precision, pinned hub revisions).
The adapted encoders (``AdaptedSSLLayerPooling``, ``AdaptedWhisperLayerPooling``:
the same encoders, backbone frozen, with LoRA / bottleneck adapters / gates)
are defined in :mod:`zsser_modules.adaptation` and re-exported here.

Example
-------
>>> from zsser_modules.encoders import FbankStatsEncoder
>>> FbankStatsEncoder(n_mels=20).output_size
120

Authors
 * zsser contributors 2026
"""

from zsser_modules.adaptation import (
    ADAPTATIONS,
    AdaptedSSLLayerPooling,
    AdaptedWhisperLayerPooling,
    is_adapted,
)
from zsser_modules.custom_interface import (
    BATCH_MODES,
    ENCODER_PRECISIONS,
    SSL_WRAPPERS,
    WHISPER_BATCH_MODES,
    WHISPER_CONTEXTS,
    FbankEncoder,
    FbankStatsEncoder,
    SSLLayerPooling,
    WeightedLayerSum,
    WhisperLayerPooling,
    check_precision,
    encoder_precision,
    masked_mean,
    pretrained_forward,
    resolve_pretrained,
)

__all__ = [
    "ADAPTATIONS",
    "AdaptedSSLLayerPooling",
    "AdaptedWhisperLayerPooling",
    "is_adapted",
    "BATCH_MODES",
    "ENCODER_PRECISIONS",
    "SSL_WRAPPERS",
    "WHISPER_BATCH_MODES",
    "WHISPER_CONTEXTS",
    "FbankEncoder",
    "FbankStatsEncoder",
    "SSLLayerPooling",
    "WeightedLayerSum",
    "WhisperLayerPooling",
    "check_precision",
    "encoder_precision",
    "masked_mean",
    "pretrained_forward",
    "resolve_pretrained",
]
