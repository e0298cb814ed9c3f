"""What the recipe ``recipes/train.py`` calls around its Brain, one file per kind.

- :mod:`.options`: checked overrides (unknown keys, ``--tuned_weights``),
  option checks, one-line refusals;
- :mod:`.folder`: one run per output folder (run identity, finished runs);
- :mod:`.variants`: the loss terms and batches of each zero-shot variant;
- :mod:`.data`: corpora prepared, the zero-shot setting, Table 1 check, the
  training batches;
- :mod:`.encoder`: the ssl / whisper encoder (frozen, fine-tuned or adapted) on
  the task's backbone;
- :mod:`.features`: a frozen encoder's feature cache, speaker normalisation;
- :mod:`.brain`: :class:`RecipeBrainMixin` (exact resume, model selection);
- :mod:`.outputs`: results.json, predictions, diagnostics, t-SNE, export.

The names are imported lazily (PEP 562): ``from zsser_modules import run``
costs nothing until one is used.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> submodule defining it.
_EXPORTS = {
    "exit_on": "options",
    "checked_overrides": "options",
    "check_hparams": "options",
    "selection_options": "options",
    "tuned_record": "options",
    "open_run_folder": "folder",
    "RUN_ERRORS": "folder",
    "PREPARATION_ERRORS": "data",
    "VARIANT_LOSSES": "variants",
    "VARIANT_BATCH_SAMPLER": "variants",
    "loss_weights": "variants",
    "batch_sampler_of": "variants",
    "prepare_data": "data",
    "train_loader_options": "data",
    "prepare_features": "features",
    "pretrained_encoder": "encoder",
    "RecipeBrainMixin": "brain",
    "write_outputs": "outputs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name from its submodule on first access."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the module attributes, including the lazily imported ones."""
    return sorted(set(globals()) | set(_EXPORTS))
