"""The pretrained encoder of a run: frozen, fine-tuned or adapted, on its backbone.

``encoder_options`` (hparams: only references to top-level keys) says which
(``encoder``: ssl or whisper; ``encoder_adaptation``; ``freeze_ssl``) and
on which model: ``ssl_source`` is one model or a map from the task's source
language to its own model (zsser_modules.backbones; the upper bound keeps the
task's source backbone), a hub id read from ``ssl_local_dirs`` or the cache
in ``ssl_folder`` where it is there.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from torch import nn

from zsser_modules.adaptation import AdaptationError
from zsser_modules.backbones import backbone_language, resolve_ssl_source
from zsser_modules.inference import build_module


def pretrained_encoder(
    constructors: Mapping[str, Any], options: Mapping[str, Any]
) -> tuple[nn.Module, str]:
    """Build the ssl / whisper encoder a run's options ask for.

    Arguments
    ---------
    constructors : mapping
        The hparams ``modules`` (``ssl``, ``whisper``: the frozen or
        fine-tuned encoders' constructors).
    options : mapping
        The hparams ``encoder_options``: ``encoder``, ``encoder_adaptation``,
        ``freeze_ssl``, ``ssl_source``, ``ssl_local_dirs``, ``ssl_folder``,
        ``source_lang``, ``target_lang``, ``variant``,
        ``adapted_ssl_encoder``, ``adapted_whisper_encoder``.

    Returns
    -------
    tuple of (torch.nn.Module, str)
        The encoder (built through ``build_module``, so the export rebuilds it)
        and the model it loaded (a local folder or a hub id).

    Raises
    ------
    AdaptationError
        Adapters asked on a backbone that is fine-tuned as a whole.
    zsser_modules.backbones.BackboneError
        No model for the task's language, or one that cannot be found (one
        line naming the key to set).
    """
    name = options["encoder"]
    constructor = constructors[name]
    if options["encoder_adaptation"] != "none":
        if not options["freeze_ssl"]:
            raise AdaptationError(
                f"encoder_adaptation: {options['encoder_adaptation']} trains adapters "
                "on a frozen backbone; drop --freeze_ssl=False (full fine-tuning) or "
                "set --encoder_adaptation=none."
            )
        constructor = options[f"adapted_{name}_encoder"]
    language = backbone_language(
        options["source_lang"], options["target_lang"], options["variant"]
    )
    source = resolve_ssl_source(
        options["ssl_source"],
        language,
        local_dirs=options["ssl_local_dirs"],
        cache_dir=options["ssl_folder"],
    )
    return build_module(functools.partial(constructor, source=source)), source
