"""Which pretrained model a task's encoder loads: language-matched backbones.

The paper adapts each task's **source language's own** wav2vec 2.0 Base (the
reading of the public reproduction): English ``facebook/wav2vec2-base-960h``,
Mandarin ``TencentGameMate/chinese-wav2vec2-base``, German
``facebook/wav2vec2-base-de-voxpopuli-v2``, French
``facebook/wav2vec2-base-fr-voxpopuli`` (:data:`PAPER_SSL_SOURCES`). The
recipe's ``ssl_source`` is therefore either one model for every task (a hub
id or a local folder) or a map from source language to model, and
:func:`resolve_ssl_source` picks the task's model.

The upper bound trains on the target language alone but keeps the task's
source backbone (:func:`backbone_language`; the reproduction's reading), so
the upper bound of en->de is the English model trained on German data.

Offline use: a hub id is looked up, in this order, in ``local_dirs`` (a map
from hub id to a local folder, the recipe's ``ssl_local_dirs``), then in the
Hugging Face cache (``cache_dir``, the recipe's ``ssl_folder``). A model
that is neither a folder, nor mapped, nor cached is left to download, unless
the hub is switched off (``HF_HUB_OFFLINE=1``): then, as for a local folder
that does not exist, one line names the key to set.

Example
-------
>>> resolve_ssl_source(PAPER_SSL_SOURCES, "de", check=False)
'facebook/wav2vec2-base-de-voxpopuli-v2'
>>> resolve_ssl_source("microsoft/wavlm-large", "fr", check=False)
'microsoft/wavlm-large'

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

#: Each source language's own wav2vec 2.0 Base (paper, the reproduction's
#: reading). Urdu is never a source in the paper's tasks.
PAPER_SSL_SOURCES: dict[str, str] = {
    "en": "facebook/wav2vec2-base-960h",
    "zh": "TencentGameMate/chinese-wav2vec2-base",
    "de": "facebook/wav2vec2-base-de-voxpopuli-v2",
    "fr": "facebook/wav2vec2-base-fr-voxpopuli",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class BackboneError(ValueError):
    """A model that cannot be found or chosen (one line names the key to set)."""


def backbone_language(source_lang: str, target_lang: str, variant: str) -> str:
    """The language whose backbone a task's encoder loads: its source language.

    Every variant, the upper bound included, uses the task's source
    language's model: the upper bound of en->de trains on German data with
    the English backbone (the reproduction's reading of the paper), so it
    differs from the zero-shot systems in its training data only.

    Arguments
    ---------
    source_lang : str
        The task's source language.
    target_lang : str
        The task's target language (never the backbone's language).
    variant : str
        The system (``proposed``, ``upper_bound``, ...).

    Returns
    -------
    str
        ``source_lang``.

    Example
    -------
    >>> backbone_language("en", "de", "upper_bound")
    'en'
    """
    del target_lang, variant  # the same backbone for every system of a task
    return source_lang


def looks_like_hub_id(source: str) -> bool:
    """Whether ``source`` reads as a hub id (``name`` or ``org/name``), not a path.

    Example
    -------
    >>> looks_like_hub_id("facebook/wav2vec2-base-960h"), looks_like_hub_id("/m/x")
    (True, False)
    """
    return bool(_HUB_ID.match(source)) and not source.startswith(".")


def _cached(repo_id: str, cache_dir: str | None) -> bool:
    """Whether the Hugging Face cache holds a snapshot of ``repo_id``'s config."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir)
    return isinstance(found, str)


def resolve_ssl_source(
    ssl_source: str | Mapping[str, str],
    language: str,
    local_dirs: Mapping[str, str] | None = None,
    cache_dir: str | None = None,
    check: bool = True,
) -> str:
    """The model (local folder or hub id) a task's encoder loads.

    Arguments
    ---------
    ssl_source : str or mapping
        One model for every task, or a map from language to model (the
        recipe's ``ssl_source``).
    language : str
        The backbone's language (:func:`backbone_language`).
    local_dirs : mapping, optional
        Hub id -> local folder holding that model (``ssl_local_dirs``): used
        instead of the hub.
    cache_dir : str, optional
        Hugging Face cache folder of hub ids (``ssl_folder``).
    check : bool
        Check that the model can be found (a folder that exists; a hub id
        mapped, cached or, with the hub on, downloadable).

    Returns
    -------
    str
        A local folder, or a hub id to load (from the cache or the hub).

    Raises
    ------
    BackboneError
        One line naming the key to set: no model for the language, a local
        folder that does not exist, a hub id unavailable offline.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> resolve_ssl_source({"en": "facebook/wav2vec2-base-960h"}, "en",
    ...     local_dirs={"facebook/wav2vec2-base-960h": folder}) == folder
    True
    >>> resolve_ssl_source({"en": "facebook/wav2vec2-base-960h"}, "ur")
    Traceback (most recent call last):
    ...
    zsser_modules.backbones.BackboneError: ssl_source names no model for language 'ur' (it has en): add "ur: <hub id or local folder>" to ssl_source, e.g. --ssl_source="{en: facebook/wav2vec2-base-960h, ur: ...}".
    """  # noqa: E501
    if isinstance(ssl_source, Mapping):
        if language not in ssl_source:
            known = ", ".join(sorted(ssl_source)) or "no language"
            example = ", ".join(f"{k}: {v}" for k, v in sorted(ssl_source.items()))
            raise BackboneError(
                f"ssl_source names no model for language {language!r} (it has "
                f'{known}): add "{language}: <hub id or local folder>" to '
                f'ssl_source, e.g. --ssl_source="{{{example}, {language}: ...}}".'
            )
        source = ssl_source[language]
        key = f"ssl_source[{language}]"
    else:
        source, key = ssl_source, "ssl_source"
    if not isinstance(source, (str, os.PathLike)) or not str(source):
        raise BackboneError(
            f"{key} must be a hub id or a local folder, got {source!r}."
        )
    source = str(source)
    local_dirs = dict(local_dirs or {})
    if source in local_dirs:
        folder = str(local_dirs[source])
        if check and not Path(folder).is_dir():
            raise BackboneError(
                f"ssl_local_dirs maps {source} to {folder}, which is not a folder: "
                f"set ssl_local_dirs to the folder holding that model's "
                "config.json and weights."
            )
        return folder
    if Path(source).is_dir() or not check:
        return source
    if not looks_like_hub_id(source):
        raise BackboneError(
            f"{key} is {source}, which is not a folder (nor a hub id): set {key} "
            "to a model folder (config.json, weights, preprocessor_config.json) "
            "or a hub id."
        )
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    if offline and not _cached(source, cache_dir):
        raise BackboneError(
            f"{key} is the hub id {source}, not in the Hugging Face cache "
            f"({cache_dir or 'the default cache'}) and the hub is off "
            f"(HF_HUB_OFFLINE): set ssl_local_dirs: {{{source}: <local folder>}} "
            f"or {key} to a local folder."
        )
    return source
