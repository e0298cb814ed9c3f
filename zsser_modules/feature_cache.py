"""On-disk cache of pooled features of a frozen encoder.

A frozen encoder gives the same features for an utterance in every epoch,
variant and seed, so they are computed once and read back afterwards. With
``SSLLayerPooling`` each entry is the ``[L+1, D]`` tensor of per-layer
masked means, which keeps the learned layer weighting exact (see
``zsser_modules.encoders``).

Layout (one float32 ``.npy`` file per utterance, sharded by hash)::

    <cache_dir>/<key hash>/key.json              # the full key, readable
    <cache_dir>/<key hash>/<2 hex>/<utt id>-<entry hash>.npy

* The key hash covers everything that changes the features: the encoder's
  weights and config (``encoder_fingerprint``), its settings (source, layers,
  pooling, normalisations), the sampling rate and the storage dtype. Any
  change gives a new folder: stale features are never read.
* The entry hash covers the utterance id and the audio file identity (real
  path, size, modification time): an edited or replaced file is recomputed.
* Entries are written to a temporary file in the same folder and moved into
  place with ``os.replace`` (atomic), so an interrupted run never leaves a
  half-written entry under its final name. Entries are validated when read
  (loadable, shape, dtype, finite); an invalid one is deleted, counted,
  logged, and recomputed by the next ``fill``.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np
import torch
from torch import nn

from zsser_modules.audio import read_audio

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
CACHE_FORMAT_VERSION = 1
STORAGE_DTYPES = ("float32", "float16")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def _canonical_json(obj: Any) -> str:
    """Serialise ``obj`` deterministically (sorted keys, no spaces)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def encoder_fingerprint(encoder_or_source: nn.Module | PathLike) -> str:
    """Content hash identifying an encoder's weights (and config, for folders).

    For a module: the class name and every tensor of its ``state_dict``
    (names, dtypes, shapes and bytes), so the same weights give the same
    fingerprint wherever they were loaded from, and any fine-tuned or
    re-initialised weight gives a new one. For a path: the bytes of the file,
    or of every file of the folder (e.g. ``config.json`` +
    ``model.safetensors`` + ``preprocessor_config.json``). Hashing a large
    (300 M parameter) model reads about 1.2 GB once per run.

    Arguments
    ---------
    encoder_or_source : torch.nn.Module or str or os.PathLike
        A loaded encoder, or a local model file or folder.

    Returns
    -------
    str
        32 hex characters.

    Example
    -------
    >>> a = encoder_fingerprint(torch.nn.Linear(2, 2))
    >>> len(a), a == encoder_fingerprint(torch.nn.Linear(2, 2))
    (32, False)
    """
    digest = hashlib.blake2b(digest_size=16)
    if isinstance(encoder_or_source, nn.Module):
        digest.update(type(encoder_or_source).__qualname__.encode())
        for name, tensor in encoder_or_source.state_dict().items():
            tensor = tensor.detach().cpu().contiguous()
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
        return digest.hexdigest()
    path = Path(encoder_or_source)
    if not path.exists():
        raise ValueError(
            f"encoder_fingerprint: '{path}' is not a local file or folder. For a "
            "hub id, load the encoder first and pass the module."
        )
    files = (
        [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    )
    for file in files:
        digest.update(
            str(file.relative_to(path) if file != path else file.name).encode()
        )
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def encoder_cache_key(
    encoder: nn.Module, sample_rate: int = 16000, dtype: str = "float32"
) -> dict[str, Any]:
    """Build the cache key of a frozen encoder.

    Arguments
    ---------
    encoder : torch.nn.Module
        The encoder whose outputs are cached. If it has a
        ``feature_settings()`` method (``SSLLayerPooling`` does), its result
        is part of the key; ``num_layers`` and ``output_size`` attributes
        give the expected entry shape.
    sample_rate : int
        Rate the audio is read at (``read_audio(path, sample_rate)``).
    dtype : str
        Storage dtype, ``"float32"`` (exact, default) or ``"float16"``.

    Returns
    -------
    dict
        JSON-serialisable key for ``FeatureCache``.

    Example
    -------
    >>> key = encoder_cache_key(torch.nn.Identity())
    >>> sorted(key)
    ['dtype', 'encoder', 'fingerprint', 'format', 'sample_rate', 'settings', 'shape']
    """
    settings = (
        encoder.feature_settings() if hasattr(encoder, "feature_settings") else {}
    )
    shape = None
    if hasattr(encoder, "num_layers") and hasattr(encoder, "output_size"):
        shape = [int(encoder.num_layers), int(encoder.output_size)]
    return {
        "format": CACHE_FORMAT_VERSION,
        "encoder": type(encoder).__qualname__,
        "fingerprint": encoder_fingerprint(encoder),
        "settings": settings,
        "sample_rate": int(sample_rate),
        "dtype": dtype,
        "shape": shape,
    }


class FeatureCache:
    """Per-utterance feature cache for a frozen encoder, keyed by content.

    Arguments
    ---------
    cache_dir : str or os.PathLike
        Root folder, shared by all encoders (each key gets a sub-folder).
    key : dict
        Everything that changes the features (see ``encoder_cache_key``).
        Optional entries: ``"sample_rate"`` (default 16000), ``"dtype"``
        (``"float32"`` default or ``"float16"``), ``"shape"`` (expected entry
        shape, checked on read).

    Example
    -------
    >>> import tempfile, numpy as np, soundfile as sf
    >>> tmp = tempfile.mkdtemp()
    >>> sf.write(f"{tmp}/a.wav", np.zeros(1600, dtype="float32"), 16000)
    >>> class Enc(torch.nn.Module):
    ...     def forward(self, wavs, wav_lens):
    ...         return wavs[:, None, :4].expand(-1, 2, -1)  # [B, 2, 4]
    >>> cache = FeatureCache(f"{tmp}/cache", {"encoder": "toy"})
    >>> cache.fill(Enc(), [("utt1", f"{tmp}/a.wav")], progressbar=False)
    {'computed': 1, 'reused': 0, 'corrupt': 0}
    >>> cache.get("utt1", f"{tmp}/a.wav").shape
    torch.Size([2, 4])
    >>> cache.fill(Enc(), [("utt1", f"{tmp}/a.wav")], progressbar=False)
    {'computed': 0, 'reused': 1, 'corrupt': 0}
    >>> import shutil; shutil.rmtree(tmp)
    """

    def __init__(self, cache_dir: PathLike, key: dict[str, Any]):
        self.key = dict(key)
        self.sample_rate = int(self.key.get("sample_rate", 16000))
        self.dtype = str(self.key.get("dtype", "float32"))
        if self.dtype not in STORAGE_DTYPES:
            raise ValueError(
                f"key['dtype'] must be one of {STORAGE_DTYPES}, got {self.dtype!r}"
            )
        shape = self.key.get("shape")
        self.entry_shape = tuple(shape) if shape else None
        self.key_hash = hashlib.blake2b(
            _canonical_json(self.key).encode(), digest_size=8
        ).hexdigest()
        self.root = Path(cache_dir) / self.key_hash
        self.root.mkdir(parents=True, exist_ok=True)
        key_file = self.root / "key.json"
        if not key_file.exists():
            _atomic_write_text(
                key_file, json.dumps(self.key, indent=2, sort_keys=True, default=str)
            )
        self.n_corrupt = 0

    def __repr__(self) -> str:
        return f"FeatureCache(root='{self.root}', dtype={self.dtype})"

    def path_for(self, utt_id: str, wav_path: PathLike) -> Path:
        """Entry file of an utterance (depends on the audio file's identity).

        Arguments
        ---------
        utt_id : str
            Utterance id (manifest ``ID``).
        wav_path : str or os.PathLike
            Audio file of the utterance (must exist).

        Returns
        -------
        Path
            Where the entry is (or would be) stored.
        """
        real = os.path.realpath(wav_path)
        try:
            stat = os.stat(real)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"FeatureCache: audio file of '{utt_id}' not found: '{wav_path}'."
            ) from None
        identity = f"{utt_id}\n{real}\n{stat.st_size}\n{stat.st_mtime_ns}"
        entry_hash = hashlib.blake2b(identity.encode(), digest_size=8).hexdigest()
        safe_id = _UNSAFE_CHARS.sub("_", str(utt_id))[:80]
        return self.root / entry_hash[:2] / f"{safe_id}-{entry_hash}.npy"

    def get(self, utt_id: str, wav_path: PathLike) -> torch.Tensor | None:
        """Cached features of an utterance, or None when absent or invalid.

        An invalid entry (unreadable, wrong shape or dtype, non-finite) is
        deleted, counted in ``n_corrupt`` and logged; ``fill`` recomputes it.

        Arguments
        ---------
        utt_id : str
            Utterance id.
        wav_path : str or os.PathLike
            Audio file of the utterance.

        Returns
        -------
        torch.Tensor or None
            float32 features (e.g. ``[L+1, D]``), or None.
        """
        path = self.path_for(utt_id, wav_path)
        if not path.exists():
            return None
        problem = None
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            problem = f"unreadable ({err})"
        else:
            if array.dtype != np.dtype(self.dtype):
                problem = f"dtype {array.dtype}, expected {self.dtype}"
            elif self.entry_shape is not None and array.shape != self.entry_shape:
                problem = f"shape {array.shape}, expected {self.entry_shape}"
            elif not np.isfinite(array).all():
                problem = "non-finite values"
        if problem is not None:
            self.n_corrupt += 1
            logger.warning(
                "FeatureCache: invalid entry for '%s' (%s): %s; deleted, it will "
                "be recomputed (%d invalid entries so far).",
                utt_id,
                path,
                problem,
                self.n_corrupt,
            )
            path.unlink(missing_ok=True)
            return None
        return torch.from_numpy(array.astype(np.float32, copy=False))

    def put(self, utt_id: str, wav_path: PathLike, feats: torch.Tensor) -> Path:
        """Store the features of an utterance atomically.

        Arguments
        ---------
        utt_id : str
            Utterance id.
        wav_path : str or os.PathLike
            Audio file of the utterance.
        feats : torch.Tensor
            Features of this utterance (no batch axis).

        Returns
        -------
        Path
            The entry file.
        """
        array = feats.detach().cpu().numpy().astype(self.dtype)
        if self.entry_shape is not None and array.shape != self.entry_shape:
            raise ValueError(
                f"FeatureCache.put: features of '{utt_id}' have shape "
                f"{array.shape}, but the key says {self.entry_shape}."
            )
        if not np.isfinite(array).all():
            raise ValueError(
                f"FeatureCache.put: features of '{utt_id}' are not finite."
            )
        path = self.path_for(utt_id, wav_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=path.name + ".", suffix=".tmp", dir=path.parent
        )
        try:
            os.fchmod(fd, 0o644)  # mkstemp creates 0600 files
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def missing(
        self, items: Iterable[tuple[str, PathLike]]
    ) -> list[tuple[str, PathLike]]:
        """Items without a valid entry (invalid entries are removed).

        Arguments
        ---------
        items : iterable of (str, path)
            ``(utt_id, wav_path)`` pairs.

        Returns
        -------
        list of (str, path)
            The pairs to compute, each once.
        """
        todo, seen = [], {}
        for utt_id, wav_path in items:
            if utt_id in seen:
                if os.path.realpath(seen[utt_id]) != os.path.realpath(wav_path):
                    raise ValueError(
                        f"FeatureCache: utterance id '{utt_id}' is listed with two "
                        f"audio files: '{seen[utt_id]}' and '{wav_path}'."
                    )
                continue
            seen[utt_id] = wav_path
            if self.get(utt_id, wav_path) is None:
                todo.append((utt_id, wav_path))
        return todo

    @torch.no_grad()
    def fill(
        self,
        encoder: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        items: Sequence[tuple[str, PathLike]],
        batch_size: int = 8,
        device: str | torch.device = "cpu",
        progressbar: bool = True,
    ) -> dict[str, int]:
        """Compute and store the features of every item not cached yet.

        Audio is read with ``read_audio(wav, key sample rate)``, grouped into
        batches of similar file size, padded, and encoded with
        ``encoder(wavs, wav_lens)`` (relative lengths, padded with SpeechBrain's
        ``batch_pad_right`` like ``PaddedBatch``) in eval mode, without
        autograd. Each entry is written as soon as its batch is done, so an
        interrupted run resumes where it stopped.

        Arguments
        ---------
        encoder : callable
            ``encoder(wavs [B, T], wav_lens [B]) -> [B, ...]``, e.g.
            a frozen ``SSLLayerPooling``. A module must have no trainable
            parameter; it is put in eval mode for the call and its mode
            restored afterwards.
        items : sequence of (str, path)
            ``(utt_id, wav_path)`` pairs (duplicates are computed once).
        batch_size : int
            Utterances per encoder call.
        device : str or torch.device
            Where the batch is sent (the encoder must be there already).
        progressbar : bool
            Show a tqdm progress bar.

        Returns
        -------
        dict
            ``{"computed": ..., "reused": ..., "corrupt": ...}`` counts, where
            ``corrupt`` counts invalid entries found (and recomputed).
        """
        from speechbrain.utils.data_utils import batch_pad_right
        from tqdm import tqdm

        if isinstance(encoder, nn.Module) and any(
            p.requires_grad for p in encoder.parameters()
        ):
            raise ValueError(
                "FeatureCache.fill: the encoder has trainable parameters, so its "
                "features change during training and must not be cached. Cache a "
                "frozen encoder (e.g. SSLLayerPooling(..., freeze=True)) and train "
                "the layers after it (WeightedLayerSum, heads)."
            )
        corrupt_before = self.n_corrupt
        unique = len({utt_id for utt_id, _ in items})
        todo = self.missing(items)
        todo.sort(key=lambda item: os.path.getsize(item[1]))
        was_training = isinstance(encoder, nn.Module) and encoder.training
        if isinstance(encoder, nn.Module):
            encoder.eval()
        try:
            with tqdm(
                total=len(todo),
                desc=f"Caching features in {self.root}",
                unit="utt",
                disable=not progressbar,
            ) as bar:
                for start in range(0, len(todo), batch_size):
                    chunk = todo[start : start + batch_size]
                    wavs, wav_lens = batch_pad_right(
                        [read_audio(wav, self.sample_rate) for _, wav in chunk]
                    )
                    feats = encoder(wavs.to(device), wav_lens.to(device))
                    for (utt_id, wav_path), feat in zip(chunk, feats):
                        self.put(utt_id, wav_path, feat)
                    bar.update(len(chunk))
        finally:
            if was_training:
                encoder.train()
        corrupt = self.n_corrupt - corrupt_before
        if corrupt:
            logger.warning("FeatureCache: recomputed %d invalid entries.", corrupt)
        return {"computed": len(todo), "reused": unique - len(todo), "corrupt": corrupt}

    def pipeline(
        self, takes: Sequence[str] = ("id", "wav"), provides: str = "feats"
    ) -> Callable[..., torch.Tensor]:
        """SpeechBrain dynamic item reading cached features.

        Arguments
        ---------
        takes : sequence of str
            Keys holding the utterance id and the audio path. ``"id"`` is
            the manifest ``ID`` column in a ``DynamicItemDataset``.
        provides : str
            Name of the produced item.

        Returns
        -------
        Callable
            Decorated function for ``add_dynamic_item``; raises ``KeyError``
            for an utterance that ``fill`` has not cached.
        """
        from speechbrain.utils.data_pipeline import provides as sb_provides
        from speechbrain.utils.data_pipeline import takes as sb_takes

        @sb_takes(*takes)
        @sb_provides(provides)
        def _load(utt_id: str, wav_path: str) -> torch.Tensor:
            feats = self.get(utt_id, wav_path)
            if feats is None:
                raise KeyError(
                    f"No cached features for '{utt_id}' ({wav_path}) in {self.root}. "
                    "Run FeatureCache.fill(encoder, items) on every split first."
                )
            return feats

        return _load

    def prune(self, items: Iterable[tuple[str, PathLike]]) -> int:
        """Delete entries (and leftover temporary files) not in ``items``.

        Entries of changed audio files are not reused but stay on disk until
        pruned. Only this key's folder is touched.

        Arguments
        ---------
        items : iterable of (str, path)
            The ``(utt_id, wav_path)`` pairs to keep (missing files are skipped).

        Returns
        -------
        int
            Number of files deleted.
        """
        keep = set()
        for utt_id, wav_path in items:
            if os.path.exists(wav_path):
                keep.add(self.path_for(utt_id, wav_path))
        removed = 0
        for file in self.root.glob("??/*"):
            if file not in keep:
                file.unlink(missing_ok=True)
                removed += 1
        return removed


def use_cached_features(
    datasets: Iterable[Any],
    cache: FeatureCache,
    encoder: nn.Module,
    replaces: str = "sig",
    provides: str = "feats",
    wav_key: str = "wav",
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    progressbar: bool = True,
) -> dict[str, int]:
    """Cache the features of every utterance of some datasets and train on them.

    Fills ``cache`` with ``encoder``'s output for every utterance of the
    datasets (SpeechBrain ``DynamicItemDataset``), computing only what is not
    cached yet, then makes each dataset output the cached features under the
    name ``provides`` in place of its output ``replaces`` (the audio). In a
    distributed (torchrun) job only the main process computes, with
    ``speechbrain.utils.distributed.run_on_main``; the others wait and read.

    Arguments
    ---------
    datasets : iterable of DynamicItemDataset
        Datasets with ``id`` and ``wav_key`` items (filtered or sorted views
        included: they share their parent's pipeline).
    cache : FeatureCache
        The cache, keyed by ``encoder_cache_key(encoder)``.
    encoder : torch.nn.Module
        The frozen encoder (``encoder(wavs, wav_lens)``); moved to ``device``.
    replaces : str
        Output key to replace (the audio signal).
    provides : str
        Name of the cached-feature item (one ``[L+1, D]`` tensor per
        utterance; ``PaddedBatch`` stacks them to ``[B, L+1, D]``).
    wav_key : str
        Key of the audio path.
    batch_size : int
        Utterances per encoder call while filling.
    device : str or torch.device
        Where the audio batches are sent while filling.
    progressbar : bool
        Show a progress bar while filling.

    Returns
    -------
    dict
        ``FeatureCache.fill`` counts (from the main process).

    Example
    -------
    >>> import tempfile, numpy as np, soundfile as sf
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> from zsser_modules.audio import audio_pipeline
    >>> tmp = tempfile.mkdtemp()
    >>> sf.write(f"{tmp}/a.wav", np.zeros(1600, dtype="float32"), 16000)
    >>> data = DynamicItemDataset({"u1": {"wav": f"{tmp}/a.wav"}},
    ...     dynamic_items=[audio_pipeline()], output_keys=["id", "sig"])
    >>> class Enc(torch.nn.Module):
    ...     def forward(self, wavs, wav_lens):
    ...         return wavs[:, None, :4].expand(-1, 2, -1) + 1.0  # [B, 2, 4]
    >>> cache = FeatureCache(f"{tmp}/cache", {"encoder": "toy"})
    >>> use_cached_features([data], cache, Enc(), progressbar=False)
    {'computed': 1, 'reused': 0, 'corrupt': 0}
    >>> sorted(data[0]), data[0]["feats"].shape
    (['feats', 'id'], torch.Size([2, 4]))
    >>> import shutil; shutil.rmtree(tmp)
    """
    from speechbrain.utils.distributed import run_on_main

    datasets = list(datasets)
    items = [
        (utt_id, dataset.data[utt_id][wav_key])
        for dataset in datasets
        for utt_id in dataset.data_ids
    ]
    stats = run_on_main(
        cache.fill,
        args=[encoder.to(device), items],
        kwargs={"batch_size": batch_size, "device": device, "progressbar": progressbar},
    )
    pipelines = set()  # a filtered/sorted view shares its parent's pipeline
    for dataset in datasets:
        if id(dataset.pipeline) in pipelines:
            continue
        pipelines.add(id(dataset.pipeline))
        if replaces not in dataset.pipeline.output_mapping:
            raise ValueError(
                f"use_cached_features: the dataset outputs "
                f"{list(dataset.pipeline.output_mapping)}, not '{replaces}'; pass "
                "the output key of the audio as `replaces`."
            )
        dataset.add_dynamic_item(
            cache.pipeline(takes=("id", wav_key), provides=provides)
        )
        dataset.set_output_keys(
            [
                provides if key == replaces else key
                for key in dataset.pipeline.output_mapping
            ]
        )
    logger.info(
        "Feature cache %s: %d computed, %d reused; the data pipeline now gives '%s' "
        "instead of '%s'.",
        cache.root,
        stats["computed"],
        stats["reused"],
        provides,
        replaces,
    )
    return stats


def _atomic_write_text(path: Path, text: str) -> None:
    """Write a text file through a temporary file and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
