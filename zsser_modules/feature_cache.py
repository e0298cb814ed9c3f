"""On-disk cache of pooled features of a frozen encoder.

A frozen encoder gives the same features for an utterance in every epoch,
variant and seed, so they are computed once and read back afterwards. With
``SSLLayerPooling`` each entry is the ``[L+1, D]`` tensor of per-layer
masked means, which keeps the learned layer weighting exact (see
``zsser_modules.encoders``).

Layout (one entry file per utterance, sharded by hash)::

    <cache_dir>/<key hash>/key.json              # the full key, readable
    <cache_dir>/<key hash>/.fill.lock            # one filling process at a time
    <cache_dir>/<key hash>/<2 hex>/<utt id>-<entry hash>.feat

* The key hash covers everything that changes the features: the encoder's
  weights and config (``encoder_fingerprint``), its ``feature_settings()``
  (source, layers, pooling, normalisations, filterbank settings, compute
  precision), the sampling rate, the duration policy (``max_duration``: the
  head crop every clip gets before encoding, and ``min_duration``: the zero
  padding of very short clips) and the storage dtype. Any change gives a
  new folder: stale features are never read, and features of cropped and
  uncropped audio never mix. The cache reads the audio itself, with the
  key's ``sample_rate`` and duration policy, so an entry is always the
  encoder's output on exactly the samples the key names.
* The entry hash covers the utterance id and the audio file identity (real
  path, size, modification time): an edited or replaced file is recomputed.
* An entry file is a small header (magic, format version, shape, BLAKE2b
  checksum of shape and data) followed by the raw data. Entries are written
  to a temporary file in the same folder and moved into place with
  ``os.replace`` (atomic), so an interrupted run never leaves a half-written
  entry under its final name.
* Checking which entries exist reads no entry: only their sizes, which a
  truncated or extended file fails. The checksum is verified lazily, when an
  entry is read; an invalid entry (truncated, corrupt, wrong shape,
  non-finite) is deleted, counted, logged and recomputed, never used.
* A full disk (``ENOSPC``, ``EDQUOT``) while filling stops with a
  ``FeatureCacheFullError`` that says how much space is needed; entries
  already written are complete and are reused by the next run.
* Processes filling the same cache (grid jobs, several runs) take turns
  through a file lock: the second one waits, then reuses what the first
  computed.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np
import torch
from torch import nn

from zsser_modules.atomic_write import atomic_open, write_text_atomic
from zsser_modules.audio import MIN_DURATION, check_max_duration, read_audio

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
CACHE_FORMAT_VERSION = 2
STORAGE_DTYPES = ("float32", "float16")
#: Suffix of an entry file.
ENTRY_SUFFIX = ".feat"
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
# Entry file: magic (8 bytes), checksum (16), ndim (uint32), dims (uint32 each),
# then the array data in C order (the key's storage dtype, little endian).
_MAGIC = b"ZSFEAT02"
_DIGEST_SIZE = 16
_FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# Temporary files younger than this may belong to a process still filling.
_TMP_GRACE_S = 3600.0


class FeatureCacheFullError(OSError):
    """The disk of the feature cache is full (or over quota) while filling.

    Nothing incomplete is left under an entry's name: the entries written
    before are valid and are reused when the run is started again.
    """


def _write_bytes(handle: Any, data: bytes) -> None:
    """Write ``data`` to an open binary file (one place, so tests can fail it)."""
    handle.write(data)


def _entry_bytes(array: np.ndarray) -> bytes:
    """Serialise one entry: header with shape and checksum, then the data."""
    dims = struct.pack(f"<I{array.ndim}I", array.ndim, *array.shape)
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    digest = hashlib.blake2b(dims + data, digest_size=_DIGEST_SIZE).digest()
    return _MAGIC + digest + dims + data


def _entry_size(shape: Sequence[int], dtype: str) -> int:
    """Size in bytes of the entry file of an array of this shape and dtype."""
    count = int(np.prod(shape)) if len(shape) else 1
    return (
        len(_MAGIC)
        + _DIGEST_SIZE
        + 4 * (1 + len(shape))
        + count * np.dtype(dtype).itemsize
    )


def _parse_entry(raw: bytes, dtype: str) -> np.ndarray:
    """Check and decode an entry file's bytes; raise ValueError if invalid."""
    head = len(_MAGIC) + _DIGEST_SIZE
    if len(raw) < head + 4 or raw[: len(_MAGIC)] != _MAGIC:
        raise ValueError(f"not an entry of this format ({len(raw)} bytes)")
    (ndim,) = struct.unpack_from("<I", raw, head)
    if ndim > 8 or len(raw) < head + 4 * (1 + ndim):
        raise ValueError(f"bad header (ndim {ndim}, {len(raw)} bytes)")
    shape = struct.unpack_from(f"<{ndim}I", raw, head + 4)
    expected = _entry_size(shape, dtype)
    if len(raw) != expected:
        raise ValueError(f"{len(raw)} bytes, expected {expected} (truncated?)")
    body = raw[head:]
    digest = hashlib.blake2b(body, digest_size=_DIGEST_SIZE).digest()
    if digest != raw[len(_MAGIC) : head]:
        raise ValueError("checksum mismatch (corrupt data)")
    data = body[4 * (1 + ndim) :]
    return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)


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


def refuse_adapted(encoder: Any, where: str) -> None:
    """Refuse an adapted encoder (LoRA, adapters): its features are never cached.

    Its adapters change its output at every step, and even adapters frozen
    after training would make a cache key of one run's weights; the recipe
    runs an adapted encoder on the audio (``zsser_modules.adaptation``).
    This holds whether or not its adapters still require gradients.

    Arguments
    ---------
    encoder : Any
        The encoder about to be cached.
    where : str
        The caller, named in the message.

    Example
    -------
    >>> refuse_adapted(torch.nn.Identity(), "fill")  # not adapted: no error
    """
    if getattr(encoder, "is_adapted", False):
        raise ValueError(
            f"{where}: {type(encoder).__name__} is an adapted encoder (LoRA / "
            "adapters): its features change with training and are never cached; "
            "run it on the audio (use_feature_cache applies to frozen encoders "
            "only, encoder_adaptation: none)."
        )


def encoder_cache_key(
    encoder: nn.Module,
    sample_rate: int = 16000,
    dtype: str = "float32",
    max_duration: float | None = None,
) -> dict[str, Any]:
    """Build the cache key of a frozen encoder.

    Arguments
    ---------
    encoder : torch.nn.Module
        The encoder whose outputs are cached. Its ``feature_settings()``
        method (``SSLLayerPooling`` and ``FbankStatsEncoder`` have one)
        returns everything besides the weights that changes its output; that
        dict is part of the key. An encoder without it but made by
        ``zsser_modules.inference.build_module`` is keyed by its recorded
        constructor call instead. The expected entry shape is
        ``feature_shape`` if the encoder has it, else ``[num_layers,
        output_size]`` when it has those attributes.
    sample_rate : int
        Rate the audio is read at (``read_audio(path, sample_rate)``).
    dtype : str
        Storage dtype, ``"float32"`` (exact, default) or ``"float16"``.
    max_duration : float, optional
        Seconds of each clip that are encoded (the head crop of the
        recipe's ``max_duration``; None: whole clips). Recorded with the
        padding rule (``min_duration``: ``MIN_DURATION``).

    Returns
    -------
    dict
        JSON-serialisable key for ``FeatureCache``.

    Example
    -------
    >>> key = encoder_cache_key(torch.nn.Identity(), max_duration=15.0)
    >>> sorted(key)  # doctest: +NORMALIZE_WHITESPACE
    ['dtype', 'encoder', 'fingerprint', 'format', 'max_duration', 'min_duration',
     'sample_rate', 'settings', 'shape']
    >>> key["max_duration"], key["min_duration"]
    (15.0, 0.05)
    """
    refuse_adapted(encoder, "encoder_cache_key")
    if hasattr(encoder, "feature_settings"):
        settings = encoder.feature_settings()
    else:
        spec = getattr(encoder, "_zsser_constructor", None)  # build_module's record
        settings = {"constructor": list(spec)} if spec is not None else {}
    shape = None
    if getattr(encoder, "feature_shape", None) is not None:
        shape = [int(size) for size in encoder.feature_shape]
    elif hasattr(encoder, "num_layers") and hasattr(encoder, "output_size"):
        shape = [int(encoder.num_layers), int(encoder.output_size)]
    return {
        "format": CACHE_FORMAT_VERSION,
        "encoder": type(encoder).__qualname__,
        "fingerprint": encoder_fingerprint(encoder),
        "settings": settings,
        "sample_rate": int(sample_rate),
        "max_duration": check_max_duration(max_duration),
        "min_duration": MIN_DURATION,
        "dtype": dtype,
        "shape": shape,
    }


def load_entry(path: PathLike, dtype: str = "float32") -> np.ndarray:
    """Read and verify one entry file (format, size, checksum).

    Arguments
    ---------
    path : str or os.PathLike
        An entry file (``.feat``) of a ``FeatureCache``.
    dtype : str
        The cache key's storage dtype.

    Returns
    -------
    numpy.ndarray
        The stored array (read-only).

    Raises
    ------
    ValueError
        If the file is not a valid entry.

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "x.feat"
    >>> _ = path.write_bytes(_entry_bytes(np.ones((2, 3), dtype="float32")))
    >>> load_entry(path).shape
    (2, 3)
    """
    return _parse_entry(Path(path).read_bytes(), dtype)


class FeatureCache:
    """Per-utterance feature cache for a frozen encoder, keyed by content.

    Arguments
    ---------
    cache_dir : str or os.PathLike
        Root folder, shared by all encoders (each key gets a sub-folder).
    key : dict
        Everything that changes the features (see ``encoder_cache_key``).
        Optional entries: ``"sample_rate"`` (default 16000),
        ``"max_duration"`` (seconds of each clip read; default None: all),
        ``"min_duration"`` (zero padding of short clips, default
        ``MIN_DURATION``), ``"dtype"`` (``"float32"`` default or
        ``"float16"``), ``"shape"`` (expected entry shape, checked on read).

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
        self.max_duration = check_max_duration(self.key.get("max_duration"))
        self.min_duration = float(self.key.get("min_duration", MIN_DURATION))
        self.dtype = str(self.key.get("dtype", "float32"))
        if self.dtype not in STORAGE_DTYPES:
            raise ValueError(
                f"key['dtype'] must be one of {STORAGE_DTYPES}, got {self.dtype!r}"
            )
        shape = self.key.get("shape")
        self.entry_shape = tuple(shape) if shape else None
        self.entry_size = (
            _entry_size(self.entry_shape, self.dtype) if self.entry_shape else None
        )
        self.key_hash = hashlib.blake2b(
            _canonical_json(self.key).encode(), digest_size=8
        ).hexdigest()
        self.root = Path(cache_dir) / self.key_hash
        self.root.mkdir(parents=True, exist_ok=True)
        key_file = self.root / "key.json"
        if not key_file.exists():
            with self._full_disk_is_clear(key_file):
                write_text_atomic(
                    key_file,
                    json.dumps(self.key, indent=2, sort_keys=True, default=str),
                )
        self.n_corrupt = 0
        self.n_written = 0
        self._encoder_factory: Callable[[], Any] | None = None
        self._rebuilt_encoder: Any = None

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
        return self.root / entry_hash[:2] / f"{safe_id}-{entry_hash}{ENTRY_SUFFIX}"

    def _invalid(self, utt_id: str, path: Path, problem: str) -> None:
        """Delete an invalid entry, count it and log why."""
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

    def has(self, utt_id: str, wav_path: PathLike) -> bool:
        """Whether an entry of plausible size exists, without reading it.

        A file of the wrong size (truncated, or from another shape) is
        deleted, counted and reported absent. The checksum is verified later,
        when ``get`` reads the entry.

        Arguments
        ---------
        utt_id : str
            Utterance id.
        wav_path : str or os.PathLike
            Audio file of the utterance.

        Returns
        -------
        bool
            True if the entry file exists with the expected size.
        """
        path = self.path_for(utt_id, wav_path)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return False
        minimum = _entry_size((), self.dtype)
        if (self.entry_size is not None and size != self.entry_size) or (
            size < minimum
        ):
            expected = self.entry_size or f">= {minimum}"
            self._invalid(utt_id, path, f"{size} bytes, expected {expected}")
            return False
        return True

    def get(self, utt_id: str, wav_path: PathLike) -> torch.Tensor | None:
        """Cached features of an utterance, or None when absent or invalid.

        The entry is fully verified (format, size, checksum, shape, finite).
        An invalid one is deleted, counted in ``n_corrupt`` and logged;
        ``fill`` (or the ``pipeline``'s encoder factory) recomputes it.

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
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            array = _parse_entry(raw, self.dtype)
            if self.entry_shape is not None and array.shape != self.entry_shape:
                raise ValueError(f"shape {array.shape}, expected {self.entry_shape}")
            if not np.isfinite(array).all():
                raise ValueError("non-finite values")
        except ValueError as err:
            self._invalid(utt_id, path, str(err))
            return None
        return torch.from_numpy(array.astype(np.float32))

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
        with self._full_disk_is_clear(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(path, "wb") as handle:
                _write_bytes(handle, _entry_bytes(array))
        self.n_written += 1
        return path

    @contextlib.contextmanager
    def _full_disk_is_clear(self, path: Path) -> Iterator[None]:
        """Turn a full-disk OSError into a FeatureCacheFullError saying what to do."""
        try:
            yield
        except FeatureCacheFullError:
            raise
        except OSError as err:
            if err.errno not in _FULL_DISK_ERRNOS:
                raise
            raise FeatureCacheFullError(
                err.errno,
                f"FeatureCache: the disk of '{self.root}' is full "
                f"({os.strerror(err.errno)}) while writing '{path.name}'. "
                f"{self.n_written} entries were written by this process and are "
                "valid; nothing incomplete was left. Free space, or point "
                "feature_cache_folder to a larger disk, then run the same command "
                "again: written entries are reused.",
            ) from None

    def missing(
        self, items: Iterable[tuple[str, PathLike]]
    ) -> list[tuple[str, PathLike]]:
        """Items without an entry of the expected size (no entry is read).

        Entries of the wrong size are removed (see ``has``); the others are
        verified when read (``get``).

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
            if not self.has(utt_id, wav_path):
                todo.append((utt_id, wav_path))
        return todo

    def fill(
        self,
        encoder: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        items: Sequence[tuple[str, PathLike]],
        batch_size: int = 8,
        device: str | torch.device = "cpu",
        progressbar: bool = True,
    ) -> dict[str, int]:
        """Compute and store the features of every item not cached yet.

        Audio is read with ``read_audio`` at the key's sample rate and
        duration policy (``max_duration``, ``min_duration``), grouped into
        batches of similar file size, padded, and encoded with
        ``encoder(wavs, wav_lens)`` (relative lengths, padded with SpeechBrain's
        ``batch_pad_right`` like ``PaddedBatch``) in eval mode, without
        autograd. Each entry is written as soon as its batch is done, so an
        interrupted run resumes where it stopped. One process fills a key at
        a time (a ``filelock`` on ``<root>/.fill.lock``): another process
        filling the same cache waits, then computes only what is still
        missing. Before computing, the free disk space is checked against
        the size of the missing entries.

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
        refuse_adapted(encoder, "FeatureCache.fill")
        if isinstance(encoder, nn.Module) and any(
            p.requires_grad for p in encoder.parameters()
        ):
            raise ValueError(
                "FeatureCache.fill: the encoder has trainable parameters, so its "
                "features change during training and must not be cached. Cache a "
                "frozen encoder (e.g. SSLLayerPooling(..., freeze=True)) and train "
                "the layers after it (WeightedLayerSum, heads)."
            )
        from filelock import FileLock

        corrupt_before = self.n_corrupt
        unique = len({utt_id for utt_id, _ in items})
        lock = FileLock(str(self.root / ".fill.lock"))
        try:
            lock.acquire(timeout=0)
        except TimeoutError:
            logger.info(
                "FeatureCache: another process is filling %s; waiting for it.",
                self.root,
            )
            lock.acquire()
        except OSError as err:  # e.g. a complete cache shared read-only
            todo = self.missing(items)
            if todo:
                raise OSError(
                    err.errno,
                    f"FeatureCache: cannot lock '{self.root}' to fill it ({err}), "
                    f"and {len(todo)} entries are missing. Make the folder "
                    "writable or point feature_cache_folder elsewhere.",
                ) from None
            return {"computed": 0, "reused": unique, "corrupt": 0}
        try:
            todo = self.missing(items)
            self._check_free_space(len(todo))
            todo.sort(key=lambda item: os.path.getsize(item[1]))
            self._encode_and_put(encoder, todo, batch_size, device, progressbar)
        finally:
            lock.release()
        corrupt = self.n_corrupt - corrupt_before
        if corrupt:
            logger.warning("FeatureCache: recomputed %d invalid entries.", corrupt)
        return {"computed": len(todo), "reused": unique - len(todo), "corrupt": corrupt}

    def _check_free_space(self, n_entries: int) -> None:
        """Refuse to start filling when the missing entries cannot fit on disk."""
        if not n_entries or self.entry_size is None:
            return
        # an entry takes at least one file-system block
        needed = n_entries * max(self.entry_size, 4096)
        free = shutil.disk_usage(self.root).free
        if needed > free:
            raise FeatureCacheFullError(
                errno.ENOSPC,
                f"FeatureCache: {n_entries} entries of {self.entry_size} bytes "
                f"need about {needed / 1e9:.2f} GB, but the disk of '{self.root}' "
                f"has {free / 1e9:.2f} GB free. Free space, or point "
                "feature_cache_folder to a larger disk.",
            )

    def _encode_and_put(
        self,
        encoder: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        todo: Sequence[tuple[str, PathLike]],
        batch_size: int,
        device: str | torch.device,
        progressbar: bool,
    ) -> None:
        """Encode ``todo`` in batches (eval mode, no autograd) and store each entry."""
        from speechbrain.utils.data_utils import batch_pad_right
        from tqdm import tqdm

        was_training = isinstance(encoder, nn.Module) and encoder.training
        if isinstance(encoder, nn.Module):
            encoder.eval()
        try:
            bar = tqdm(
                total=len(todo),
                desc=f"Caching features in {self.root}",
                unit="utt",
                disable=not progressbar,
            )
            with torch.no_grad(), bar:
                for start in range(0, len(todo), batch_size):
                    chunk = todo[start : start + batch_size]
                    wavs, wav_lens = batch_pad_right(
                        [self.read(wav) for _, wav in chunk]
                    )
                    feats = encoder(wavs.to(device), wav_lens.to(device))
                    for (utt_id, wav_path), feat in zip(chunk, feats):
                        self.put(utt_id, wav_path, feat)
                    bar.update(len(chunk))
        finally:
            if was_training:
                encoder.train()

    def read(self, wav_path: PathLike) -> torch.Tensor:
        """Read an audio file as this key's encoder input (rate, duration policy).

        Arguments
        ---------
        wav_path : str or os.PathLike
            Audio file.

        Returns
        -------
        torch.Tensor
            1-D waveform: ``read_audio(wav_path, sample_rate, max_duration,
            min_duration)`` with the key's values.
        """
        return read_audio(
            wav_path, self.sample_rate, self.max_duration, self.min_duration
        )

    def pipeline(
        self,
        takes: Sequence[str] = ("id", "wav"),
        provides: str = "feats",
        encoder_factory: Callable[[], Any] | None = None,
    ) -> Callable[..., torch.Tensor]:
        """SpeechBrain dynamic item reading cached features.

        Arguments
        ---------
        takes : sequence of str
            Keys holding the utterance id and the audio path. ``"id"`` is
            the manifest ``ID`` column in a ``DynamicItemDataset``.
        provides : str
            Name of the produced item.
        encoder_factory : callable, optional
            Builds the encoder again (e.g. from its YAML constructor). An
            entry found invalid when read (its checksum fails) is then
            recomputed on the CPU, alone (the same within float tolerance as
            in a padded batch), and stored again; the encoder is built at
            the first such entry only. Without it, an invalid entry raises a
            ``KeyError`` saying to run again (``fill`` recomputes it).

        Returns
        -------
        Callable
            Decorated function for ``add_dynamic_item``; raises ``KeyError``
            for an utterance that is not cached (and cannot be recomputed).
        """
        self._encoder_factory = encoder_factory
        from speechbrain.utils.data_pipeline import provides as sb_provides
        from speechbrain.utils.data_pipeline import takes as sb_takes

        @sb_takes(*takes)
        @sb_provides(provides)
        def _load(utt_id: str, wav_path: str) -> torch.Tensor:
            feats = self.get(utt_id, wav_path)
            if feats is None and self._encoder_factory is not None:
                feats = self.recompute(utt_id, wav_path)
            if feats is None:
                raise KeyError(
                    f"No valid cached features for '{utt_id}' ({wav_path}) in "
                    f"{self.root}. Run FeatureCache.fill(encoder, items) on every "
                    "split first (the recipe does: run the same command again)."
                )
            return feats

        return _load

    def recompute(self, utt_id: str, wav_path: PathLike) -> torch.Tensor:
        """Compute one utterance's entry with the encoder factory, store it.

        Arguments
        ---------
        utt_id : str
            Utterance id.
        wav_path : str or os.PathLike
            Audio file of the utterance.

        Returns
        -------
        torch.Tensor
            The float32 features (as stored).
        """
        if self._encoder_factory is None:
            raise ValueError("FeatureCache.recompute needs an encoder_factory.")
        if self._rebuilt_encoder is None:
            logger.warning(
                "FeatureCache: rebuilding the encoder to recompute invalid entries."
            )
            self._rebuilt_encoder = self._encoder_factory().eval()
        self._encode_and_put(
            self._rebuilt_encoder, [(utt_id, wav_path)], 1, "cpu", progressbar=False
        )
        feats = self.get(utt_id, wav_path)
        assert feats is not None, "an entry just written must be valid"
        return feats

    def prune(self, items: Iterable[tuple[str, PathLike]]) -> int:
        """Delete entries (and leftover temporary files) not in ``items``.

        Entries of changed audio files are not reused but stay on disk until
        pruned. Only this key's folder is touched. Temporary files younger
        than an hour are kept: another process may be writing them.

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
        removed, now = 0, time.time()
        for file in self.root.glob("??/*"):
            if file in keep:
                continue
            if file.suffix == ".tmp":
                try:
                    if now - file.stat().st_mtime < _TMP_GRACE_S:
                        continue
                except FileNotFoundError:
                    continue
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
    encoder_factory: Callable[[], Any] | None = None,
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
    encoder_factory : callable, optional
        Rebuilds the encoder, to recompute an entry found corrupt when read
        (see ``FeatureCache.pipeline``); lets the caller free ``encoder``.

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
            cache.pipeline(
                takes=("id", wav_key),
                provides=provides,
                encoder_factory=encoder_factory,
            )
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
