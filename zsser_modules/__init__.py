"""Reusable SpeechBrain modules for zero-shot cross-lingual speech emotion recognition.

Losses, adversarial pieces, encoders, a feature cache, metrics, plotting and
label vocabularies that any SpeechBrain recipe can import. Corpus knowledge is
confined to the :mod:`zsser_modules.data_prep` subpackage (the data
preparation), which nothing else in the package imports.

The public names are imported lazily (PEP 562), so that e.g. a data-preparation
script doing ``from zsser_modules.labels import EMOTIONS`` does not pay for
importing torch, scikit-learn and matplotlib.

Example
-------
>>> import torch
>>> from zsser_modules import SupConLoss, EMOTIONS
>>> loss = SupConLoss()(torch.randn(4, 8), torch.tensor([0, 0, 1, 1]))
>>> loss.dim(), len(EMOTIONS)
(0, 4)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> submodule defining it.
_EXPORTS = {
    "SupConLoss": "supcon",
    "GradientReversal": "adversarial",
    "grad_reverse": "adversarial",
    "AdversarialClassifier": "adversarial",
    "adversarial_loss": "adversarial",
    "dann_lambda": "adversarial",
    "adversary_loss": "adversarial",
    "set_reversal_coefficient": "adversarial",
    "reversal_layers": "adversarial",
    "unwrap_module": "adversarial",
    "AddedModulesMixin": "added_modules",
    "ModuleSetupError": "added_modules",
    "check_optimized_and_checkpointed": "added_modules",
    "optimize_and_checkpoint": "added_modules",
    "flag_pipeline": "dataio",
    "parse_flag": "dataio",
    "EmotionMetricStats": "metrics",
    "uar": "metrics",
    "macro_f1": "metrics",
    "plot_tsne": "tsne",
    "EMOTIONS": "labels",
    "EXTRA_EMOTIONS": "labels",
    "ALL_EMOTIONS": "labels",
    "LANGUAGES": "labels",
    "emotion_classes": "labels",
    "build_label_encoder": "labels",
    "read_audio": "audio",
    "audio_pipeline": "audio",
    "SSLLayerPooling": "encoders",
    "WeightedLayerSum": "encoders",
    "WhisperLayerPooling": "encoders",
    "FbankEncoder": "encoders",
    "FbankStatsEncoder": "encoders",
    "masked_mean": "encoders",
    "FeatureCache": "feature_cache",
    "encoder_cache_key": "feature_cache",
    "encoder_fingerprint": "feature_cache",
    "use_cached_features": "feature_cache",
    "run_diagnostics": "diagnostics",
    "DistributedBrainMixin": "distributed",
    "mean_across_processes": "distributed",
    "EmotionRecognizer": "inference",
    "RandomState": "checkpoints",
    "AtomicCheckpointer": "checkpoints",
    "RunIdentity": "run_identity",
    "check_run_folder": "run_identity",
    "HierarchicalBatchSampler": "hierarchical_sampler",
}

__all__ = [
    "ALL_EMOTIONS",
    "AddedModulesMixin",
    "ModuleSetupError",
    "adversary_loss",
    "check_optimized_and_checkpointed",
    "flag_pipeline",
    "optimize_and_checkpoint",
    "parse_flag",
    "reversal_layers",
    "set_reversal_coefficient",
    "unwrap_module",
    "AtomicCheckpointer",
    "RandomState",
    "RunIdentity",
    "check_run_folder",
    "DistributedBrainMixin",
    "EmotionRecognizer",
    "FbankEncoder",
    "FbankStatsEncoder",
    "FeatureCache",
    "HierarchicalBatchSampler",
    "SSLLayerPooling",
    "WeightedLayerSum",
    "WhisperLayerPooling",
    "audio_pipeline",
    "encoder_cache_key",
    "encoder_fingerprint",
    "masked_mean",
    "mean_across_processes",
    "read_audio",
    "run_diagnostics",
    "AdversarialClassifier",
    "EMOTIONS",
    "EXTRA_EMOTIONS",
    "EmotionMetricStats",
    "GradientReversal",
    "LANGUAGES",
    "SupConLoss",
    "adversarial_loss",
    "build_label_encoder",
    "dann_lambda",
    "emotion_classes",
    "grad_reverse",
    "macro_f1",
    "plot_tsne",
    "uar",
    "use_cached_features",
]

if TYPE_CHECKING:  # pragma: no cover
    from .added_modules import (
        AddedModulesMixin,
        ModuleSetupError,
        check_optimized_and_checkpointed,
        optimize_and_checkpoint,
    )
    from .adversarial import (
        AdversarialClassifier,
        GradientReversal,
        adversarial_loss,
        adversary_loss,
        dann_lambda,
        grad_reverse,
        reversal_layers,
        set_reversal_coefficient,
        unwrap_module,
    )
    from .audio import audio_pipeline, read_audio
    from .checkpoints import AtomicCheckpointer, RandomState
    from .dataio import flag_pipeline, parse_flag
    from .diagnostics import run_diagnostics
    from .distributed import DistributedBrainMixin, mean_across_processes
    from .encoders import (
        FbankEncoder,
        FbankStatsEncoder,
        SSLLayerPooling,
        WeightedLayerSum,
        WhisperLayerPooling,
        masked_mean,
    )
    from .feature_cache import (
        FeatureCache,
        encoder_cache_key,
        encoder_fingerprint,
        use_cached_features,
    )
    from .hierarchical_sampler import HierarchicalBatchSampler
    from .inference import EmotionRecognizer
    from .labels import (
        ALL_EMOTIONS,
        EMOTIONS,
        EXTRA_EMOTIONS,
        LANGUAGES,
        build_label_encoder,
        emotion_classes,
    )
    from .metrics import EmotionMetricStats, macro_f1, uar
    from .run_identity import RunIdentity, check_run_folder
    from .supcon import SupConLoss
    from .tsne import plot_tsne


def __getattr__(name: str) -> Any:
    """Import a public name from its submodule on first access."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
    value = getattr(module, name)
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    """List the module attributes, including the lazily imported ones."""
    return sorted(set(globals()) | set(_EXPORTS))
