"""Utterance encoders: waveforms ``[B, T]`` to one embedding per utterance.

Defined once here for training, the feature cache and inference: every
exported model folder carries a verbatim copy of this file
(``zsser_encoders.py``, :mod:`zsser_modules.inference`), so it imports only
the standard library, torch, SpeechBrain and (lazily) transformers /
huggingface_hub, never this project.

Frozen self-supervised path (the paper's setting)::

    wav [B, T] --SSLLayerPooling--> [B, L+1, D] --WeightedLayerSum--> [B, D]

``SSLLayerPooling`` mean-pools every hidden layer over the valid frames of
each utterance only, so its output does not depend on how the batch was
padded, and it has no trainable parameters when frozen: its output can be
cached per utterance (``zsser_modules.feature_cache``). The learned layer
weights come after the pooling. Because the softmax-weighted sum over layers
and the masked mean over time are both linear, their order does not matter::

    sum_l w_l * mean_t h[l, t] == mean_t sum_l w_l * h[l, t]

so caching the pooled ``[L+1, D]`` tensor of each utterance is exact.
SpeechBrain's ``WeightedSSLModel`` is not used because it leaks padding
(no attention mask; the waveform normalisation spans the padded row):
docs/encoders.md measures it.

Whisper path: ``WhisperLayerPooling`` is the same ``[B, L+1, D]`` interface for
a Whisper encoder (``openai/whisper-base`` and the like). It computes the
log-mel input itself and runs the encoder on the clip's length instead of
Whisper's fixed 30 s window (position table cut to match), about 16x cheaper
for 3 s clips; ``context="full"`` reproduces the 30 s padded model exactly.
Both share :class:`PretrainedLayerPooling` (loading at a pinned hub revision,
frozen or fine-tuned, padding-exact pooling of the kept layers).

Trainable filterbank path (no download): ``FbankEncoder`` = SpeechBrain
``Fbank`` -> sentence mean normalisation -> ``ECAPA_TDNN`` with length-aware
attentive statistics pooling.

Frozen filterbank path (no download, the built-in demo): ``FbankStatsEncoder``
= mean and standard deviation of log mel filterbanks (and deltas) over the
valid frames; like the frozen SSL path, only the heads above it are trained.

A new encoder is a class here whose constructor takes plain values (numbers,
strings, lists, a ``source``): the recipe builds it from the YAML through
``zsser_modules.inference.build_module``, and the export writes that same
constructor call into the model folder's ``hyperparams.yaml``.

Not SpeechBrain's ``WeightedSSLModel``, ``Whisper`` wrapper or ``StatisticsPooling``:
they leak padding, pad Whisper to 30 s with a batch-wide log-mel floor, and add
noise to the pooled mean (measured in docs/toolkit_reuse.md, pinned by
tests/test_toolkit_reuse.py).

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

SSL_WRAPPERS = {
    "wav2vec2": ("speechbrain.integrations.huggingface.wav2vec2", "Wav2Vec2"),
    "wavlm": ("speechbrain.integrations.huggingface.wavlm", "WavLM"),
    "hubert": ("speechbrain.integrations.huggingface.hubert", "HuBERT"),
}
BATCH_MODES = ("auto", "padded", "per_utterance")
# HF config keys that do not change the features of a frozen model in eval mode
_VOLATILE_CONFIG_KEYS = ("_name_or_path", "transformers_version", "layerdrop")
#: Compute precisions of a frozen encoder (``frozen_encoder_precision``).
ENCODER_PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def check_precision(precision: str) -> str:
    """Validate a frozen encoder's precision name and return it.

    Arguments
    ---------
    precision : str
        ``"fp32"``, ``"bf16"`` or ``"fp16"``.

    Returns
    -------
    str
        ``precision``, unchanged.

    Example
    -------
    >>> check_precision("bf16")
    'bf16'
    """
    if precision not in ENCODER_PRECISIONS:
        raise ValueError(
            f"frozen encoder precision must be one of {sorted(ENCODER_PRECISIONS)}, "
            f"got {precision!r} (set frozen_encoder_precision in the YAML)."
        )
    return precision


def encoder_precision(
    precision: str, device: torch.device | str
) -> contextlib.AbstractContextManager:
    """Context fixing the compute dtype of a frozen encoder, whatever surrounds it.

    A frozen encoder must give the same features in training (where
    SpeechBrain's ``--precision=bf16`` wraps ``compute_forward`` in
    ``torch.autocast``), in validation and test (``--eval_precision``, fp32
    by default), while filling the feature cache and at inference. This
    context replaces any surrounding autocast state on ``device``'s type:
    ``"fp32"`` disables autocast, ``"bf16"``/``"fp16"`` enable it with that
    dtype. Frozen encoders (``SSLLayerPooling(freeze=True)``,
    ``FbankStatsEncoder``, and any encoder whose output is cached) run their
    forward pass inside it.

    Arguments
    ---------
    precision : str
        ``"fp32"``, ``"bf16"`` or ``"fp16"``.
    device : torch.device or str
        Device of the encoder's input (its type selects the autocast).

    Returns
    -------
    contextlib.AbstractContextManager
        A ``torch.autocast`` context.

    Example
    -------
    >>> lin, x = torch.nn.Linear(4, 4), torch.randn(2, 4)
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     with encoder_precision("fp32", "cpu"):
    ...         inner = lin(x)
    ...     outer = lin(x)
    >>> inner.dtype, outer.dtype
    (torch.float32, torch.bfloat16)
    """
    device_type = torch.device(device).type
    if check_precision(precision) == "fp32":
        return torch.autocast(device_type=device_type, enabled=False)
    return torch.autocast(device_type=device_type, dtype=ENCODER_PRECISIONS[precision])


@contextlib.contextmanager
def pretrained_forward(freeze: bool, precision: str, device: torch.device | str):
    """Context of a pretrained encoder's forward pass (SSL, Whisper).

    Frozen (``freeze=True``): no gradient and the fixed compute precision of
    ``encoder_precision``. Fine-tuned: gradients as the caller has them and
    the surrounding (the Brain's) precision.

    Arguments
    ---------
    freeze : bool
        Whether the encoder is frozen.
    precision : str
        Its ``frozen_encoder_precision`` (used only when frozen).
    device : torch.device or str
        Device of the encoder's input.

    Example
    -------
    >>> lin, x = torch.nn.Linear(4, 4), torch.randn(2, 4)
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     with pretrained_forward(True, "fp32", "cpu"):
    ...         frozen = lin(x)
    ...     with pretrained_forward(False, "fp32", "cpu"):
    ...         tuned = lin(x)
    >>> frozen.dtype, frozen.requires_grad, tuned.dtype, tuned.requires_grad
    (torch.float32, False, torch.bfloat16, True)
    """
    if not freeze:
        yield
        return
    with encoder_precision(precision, device), torch.no_grad():
        yield


def _import_transformers(what: str) -> Any:
    """``import transformers``, or stop with one line naming the encoders extra.

    This file is copied into exported models, so it names the extra itself
    (not through ``zsser_modules.optional``; docs/install.md).
    """
    try:
        import transformers
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] != "transformers":
            raise
        raise ImportError(
            f"{what} needs transformers, which is not installed: "
            'pip install "zsser[encoders]" (in a clone of the repository: '
            'pip install -e ".[encoders]"; or pip install transformers)'
        ) from None
    return transformers


def masked_mean(x: torch.Tensor, lengths: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Mean of ``x`` over its time axis, counting valid (unpadded) steps only.

    Padded steps are excluded with ``torch.where`` (not multiplied by 0), so
    even non-finite values in the padding cannot leak into the result.

    Arguments
    ---------
    x : torch.Tensor
        Batch-first tensor ``[B, ..., T, ...]`` with time at ``dim``.
    lengths : torch.Tensor
        ``[B]`` lengths. Floating point tensors are relative lengths in
        (0, 1] (SpeechBrain convention, ``round(len * T)`` valid steps);
        integer tensors are absolute numbers of valid steps.
    dim : int
        Time axis of ``x`` (not 0, the batch axis).

    Returns
    -------
    torch.Tensor
        ``x`` averaged over ``dim`` (that axis removed).

    Raises
    ------
    ValueError
        If an utterance has no valid step or more steps than ``x`` holds.

    Example
    -------
    >>> x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    >>> masked_mean(x, torch.tensor([2, 3]))
    tensor([[2.],
            [4.]])
    >>> masked_mean(x, torch.tensor([2 / 3, 1.0]))
    tensor([[2.],
            [4.]])
    """
    dim = dim % x.dim()
    if dim == 0:
        raise ValueError("masked_mean: dim must be a time axis, not the batch axis 0.")
    steps = x.shape[dim]
    if lengths.shape != (x.shape[0],):
        raise ValueError(
            f"masked_mean: expected lengths of shape [{x.shape[0]}] (one per "
            f"utterance), got {tuple(lengths.shape)}."
        )
    if lengths.is_floating_point():
        counts = torch.round(lengths * steps).long()
    else:
        counts = lengths.long()
    counts = counts.to(x.device)
    if (counts < 1).any() or (counts > steps).any():
        raise ValueError(
            f"masked_mean: every utterance needs between 1 and {steps} valid "
            f"steps, got {counts.tolist()}. Relative lengths must be in (0, 1]; "
            "absolute lengths must be integers."
        )
    mask_shape = [1] * x.dim()
    mask_shape[0], mask_shape[dim] = x.shape[0], steps
    mask = torch.arange(steps, device=x.device)[None, :] < counts[:, None]
    mask = mask.view(mask_shape)
    total = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
    count_shape = [1] * (x.dim() - 1)
    count_shape[0] = x.shape[0]
    return total.sum(dim) / counts.view(count_shape).to(x.dtype)


def _import_wrapper(model_type: str) -> type:
    """Return the SpeechBrain wrapper class for a Hugging Face model type."""
    if model_type == "whisper":
        raise ValueError(
            "This checkpoint is a Whisper model: use --encoder=whisper "
            "(zsser_modules.encoders.WhisperLayerPooling), not the wav2vec2-family "
            "SSL encoder."
        )
    if model_type not in SSL_WRAPPERS:
        raise ValueError(
            f"No SpeechBrain wrapper for model_type '{model_type}'. Supported: "
            f"{sorted(SSL_WRAPPERS)}. A wav2vec2-like model of another type may "
            "load with hub_class='wav2vec2' (SpeechBrain's generic AutoModel path)."
        )
    module, name = SSL_WRAPPERS[model_type]
    return getattr(importlib.import_module(module), name)


class PretrainedLayerPooling(nn.Module):
    """A pretrained encoder whose kept hidden states are mean-pooled per utterance.

    What :class:`SSLLayerPooling` and :class:`WhisperLayerPooling` share: the
    model is loaded from a hub id at a pinned ``revision`` or from a local
    folder (:func:`resolve_pretrained`); frozen, it stays in eval mode, runs
    without autograd at its fixed compute ``precision`` (``pretrained_forward``)
    and pools in float32; each kept hidden state is optionally
    layer-normalised, then averaged over the utterance's valid frames only
    (:func:`masked_mean`), so the output does not depend on the padding.
    ``batch_mode="padded"`` encodes the batch in one forward pass,
    ``"per_utterance"`` each utterance alone, trimmed to its length.

    A subclass loads its model after calling this constructor, then calls
    :meth:`keep_layers` and :meth:`train`, and defines ``model`` (the
    pretrained module), :meth:`frame_lengths`, ``_check_lengths`` and
    ``_hidden_states`` (the hidden states of a padded batch).

    Arguments
    ---------
    source : str
        Hugging Face hub id (e.g. ``"microsoft/wavlm-large"``) or a local
        folder with ``config.json``, weights and ``preprocessor_config.json``.
    save_path : str, optional
        Hugging Face cache folder of a hub ``source`` (default: the user's
        Hugging Face cache).
    freeze : bool
        If True, no parameter is trainable and the model stays in eval mode
        (no dropout, deterministic features) even when the Brain calls
        ``.train()``, and runs without autograd.
    normalize_layers : bool
        If True, each frame of each layer is layer-normalised (no affine)
        before pooling, evening out the very different scales of layers.
    precision : str
        Compute precision of a frozen model (``"fp32"``, ``"bf16"``,
        ``"fp16"``), applied in every stage whatever ``--precision`` or
        ``--eval_precision`` say (see ``encoder_precision``); the pooled
        features are returned in float32. Part of ``feature_settings()``,
        hence of the feature-cache key. A fine-tuned model (``freeze=False``)
        ignores it and follows the Brain's precision.
    revision : str, optional
        Hub revision (commit hash, branch or tag) of a hub ``source``: that
        snapshot is loaded (:func:`resolve_pretrained`). Default: the
        newest. The commit actually loaded is ``self.revision`` (None for a
        local folder), which the export pins.
    """

    model: nn.Module
    batch_mode: str

    def __init__(
        self,
        source: str,
        save_path: str | None,
        freeze: bool,
        normalize_layers: bool,
        precision: str,
        revision: str | None,
    ):
        super().__init__()
        self.precision = check_precision(precision)
        self.source = str(source)
        self.save_path = None if save_path is None else str(save_path)
        self.folder, self.revision = resolve_pretrained(
            self.source, self.save_path, revision
        )
        self.freeze = freeze
        self.normalize_layers = normalize_layers

    def keep_layers(self, layers: Sequence[int] | None, config: Any) -> None:
        """Set the kept hidden states (``layers``) and the output width.

        Arguments
        ---------
        layers : sequence of int, optional
            Hidden-state indices (negative ones count from the end; None: all).
        config : transformers.PretrainedConfig
            The model's configuration (``num_hidden_layers``, ``hidden_size``).
        """
        n_hidden = int(config.num_hidden_layers) + 1
        layers = range(n_hidden) if layers is None else layers
        for layer in layers:
            if not -n_hidden <= int(layer) < n_hidden:
                raise ValueError(
                    f"layers: index {layer} out of range for a model with "
                    f"{n_hidden} hidden states (0 .. {n_hidden - 1})."
                )
        if not layers:
            raise ValueError("layers: keep at least one hidden state.")
        self.layers = tuple(int(layer) % n_hidden for layer in layers)
        self.num_layers = len(self.layers)
        self.output_size = int(config.hidden_size)

    def train(self, mode: bool = True) -> PretrainedLayerPooling:
        """Set training mode; a frozen model always stays in eval mode.

        Arguments
        ---------
        mode : bool
            Training (True) or evaluation (False) mode.

        Returns
        -------
        PretrainedLayerPooling
            self
        """
        super().train(mode)
        if self.freeze:
            self.model.eval()
        return self

    def export_arguments(self) -> dict[str, Any]:
        """Constructor arguments an export must pin: the hub commit loaded.

        Returns
        -------
        dict
            ``{"revision": <commit hash>}`` for a model from the hub, else empty.
        """
        return {"revision": self.revision} if self.revision else {}

    def feature_settings(self) -> dict[str, Any]:
        """Everything besides the weights that changes this encoder's output.

        Used by ``zsser_modules.feature_cache`` to key cached features.

        Returns
        -------
        dict
            JSON-serialisable settings: source, kept layers, pooling, batch
            mode, compute precision, the model config, and the subclass's own
            (``_own_settings``).
        """
        config = {
            key: value
            for key, value in self.model.config.to_dict().items()
            if key not in _VOLATILE_CONFIG_KEYS and not key.startswith("_")
        }
        return {
            "source": self.source,
            "layers": list(self.layers),
            "pooling": "masked_mean",
            "normalize_layers": self.normalize_layers,
            "batch_mode": self.batch_mode,
            "precision": self.precision if self.freeze else "brain",
            "config": config,
            **self._own_settings(),
        }

    def _own_settings(self) -> dict[str, Any]:
        """The subclass's settings that change the output (besides the common)."""
        return {}

    def frame_lengths(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Number of valid encoder frames of clips of ``num_samples`` samples."""
        raise NotImplementedError

    def _check_lengths(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Refuse clips too short to encode; return the samples to encode."""
        raise NotImplementedError

    def _hidden_states(
        self, wavs: torch.Tensor, num_samples: torch.Tensor
    ) -> Sequence[torch.Tensor]:
        """Every hidden state ``[B, frames, D]`` of a right-padded batch."""
        raise NotImplementedError

    def _refuse_short(self, short: torch.Tensor, need: str) -> None:
        """One-line error for clips of ``short`` samples (``need``: the minimum)."""
        if len(short):
            raise ValueError(
                f"{type(self).__name__}: utterance(s) of {short.tolist()} samples "
                f"are {need}. Filter very short files out of the manifest."
            )

    def forward(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Encode a padded batch and pool each kept layer over valid frames.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, T]`` waveforms at 16 kHz, right-padded.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths (SpeechBrain convention; default: all 1).

        Returns
        -------
        torch.Tensor
            ``[B, num_layers, output_size]`` pooled features.
        """
        wav_lens = _batch_lengths(wavs, wav_lens, type(self).__name__)
        batch, total = wavs.shape
        num_samples = torch.round(wav_lens.float() * total).long().clamp(max=total)
        num_samples = self._check_lengths(num_samples.cpu())
        with pretrained_forward(self.freeze, self.precision, wavs.device):
            if self.batch_mode == "padded":
                return self._pool(wavs, num_samples)
            return torch.cat(
                [
                    self._pool(
                        wavs[i : i + 1, : num_samples[i]], num_samples[i : i + 1]
                    )
                    for i in range(batch)
                ]
            )

    def _pool(self, wavs: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        """Encode one (padded) batch and pool its kept layers."""
        states = self._hidden_states(wavs, num_samples)
        hidden = torch.stack([states[i] for i in self.layers], dim=1)
        if self.freeze:  # pool in float32, whatever the compute precision
            hidden = hidden.float()
        if self.normalize_layers:
            hidden = F.layer_norm(hidden, hidden.shape[-1:])
        frames = self.frame_lengths(num_samples)
        return masked_mean(hidden, frames.to(hidden.device), dim=2)


class SSLLayerPooling(PretrainedLayerPooling):
    """Hugging Face SSL encoder returning every hidden layer, mean-pooled
    over the valid frames of each utterance.

    The model (wav2vec 2.0, XLS-R, WavLM or HuBERT; hub id or local folder)
    is loaded through SpeechBrain's wrappers
    (``speechbrain.integrations.huggingface``), but called here directly with
    padding handled correctly, because the wrappers leak padding in two places:

    * the waveform normalisation (``feature_extractor.do_normalize``) is a
      ``layer_norm`` over the whole padded row, so padding shifts the mean
      and variance of shorter utterances; here each waveform is normalised
      over its own samples only;
    * ``WeightedSSLModel`` passes no attention mask at all.

    The attention mask is built from the relative lengths, and the number of
    valid frames of each utterance is the model's
    ``_get_feat_extract_output_lengths`` of its true sample count.

    Base-sized checkpoints (``feat_extract_norm == "group"``: wav2vec2-base,
    HuBERT-base, WavLM-base/base-plus) normalise the first convolution with
    a GroupNorm over *time*, which sees the padding whatever the mask; for
    them ``batch_mode="auto"`` runs each utterance alone, trimmed to its true
    length. Large models (``"layer"``: XLS-R, wav2vec2-large-lv60,
    WavLM-large, HuBERT-large) run as one padded batch with the mask.

    Layer dropout is forced to 0 (the Hugging Face default 0.1 drops whole
    layers in training mode, changing the number of returned layers).

    Arguments
    ---------
    source, save_path, freeze, normalize_layers, precision, revision
        As :class:`PretrainedLayerPooling` (frozen and fp32 by default).
    hub_class : str
        ``"auto"`` (choose the wrapper from the config's ``model_type``),
        ``"wav2vec2"``, ``"wavlm"`` or ``"hubert"``.
    layers : sequence of int, optional
        Hidden-state indices to keep (0 = output of the convolutional
        front-end projection, L = last transformer layer; negative indices
        count from the end). Default: all L+1.
    batch_mode : str
        ``"auto"``, ``"padded"`` (one padded forward with attention mask) or
        ``"per_utterance"`` (each utterance alone; exact for any model).
    freeze_feature_extractor : bool
        When ``freeze=False``, keep the convolutional front-end frozen.

    Example
    -------
    >>> import tempfile, transformers
    >>> tmp = tempfile.mkdtemp()
    >>> cfg = transformers.WavLMConfig(
    ...     hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
    ...     intermediate_size=32, conv_dim=(8,) * 7, num_conv_pos_embeddings=8,
    ...     num_conv_pos_embedding_groups=2, feat_extract_norm="layer",
    ...     do_stable_layer_norm=True, num_buckets=16, max_bucket_distance=32)
    >>> transformers.WavLMModel(cfg).save_pretrained(f"{tmp}/tiny")
    >>> _ = transformers.Wav2Vec2FeatureExtractor(
    ...     return_attention_mask=True).save_pretrained(f"{tmp}/tiny")
    >>> enc = SSLLayerPooling(f"{tmp}/tiny", save_path=f"{tmp}/hf")
    >>> enc.num_layers, enc.output_size
    (3, 16)
    >>> feats = enc(torch.randn(2, 8000), torch.tensor([1.0, 0.6]))
    >>> feats.shape
    torch.Size([2, 3, 16])
    >>> import shutil; shutil.rmtree(tmp)
    """

    def __init__(
        self,
        source: str,
        save_path: str | None = None,
        freeze: bool = True,
        hub_class: str = "auto",
        layers: Sequence[int] | None = None,
        batch_mode: str = "auto",
        normalize_layers: bool = False,
        freeze_feature_extractor: bool = False,
        precision: str = "fp32",
        revision: str | None = None,
    ):
        super().__init__(
            source, save_path, freeze, normalize_layers, precision, revision
        )
        transformers = _import_transformers("SSLLayerPooling (--encoder=ssl)")
        if hub_class == "auto":
            config = transformers.AutoConfig.from_pretrained(self.folder)
            hub_class = config.model_type
        self.ssl = _import_wrapper(hub_class)(
            source=self.folder,
            save_path=self.save_path or "",
            output_norm=False,
            freeze=freeze,
            freeze_feature_extractor=freeze_feature_extractor,
            apply_spec_augment=False,
            output_all_hiddens=True,
        )
        config = self.ssl.model.config
        config.layerdrop = 0.0
        self.hub_class = hub_class
        self.normalize_wav = bool(self.ssl.normalize_wav)
        self.keep_layers(layers, config)
        if batch_mode not in BATCH_MODES:
            raise ValueError(
                f"batch_mode must be one of {BATCH_MODES}, got {batch_mode!r}"
            )
        if batch_mode == "auto":
            group_norm = getattr(config, "feat_extract_norm", "layer") == "group"
            batch_mode = "per_utterance" if group_norm else "padded"
        self.batch_mode = batch_mode
        self.train(self.training)
        # Fine-tuned: freeze what never gets a gradient (DDP would wait for it).
        self.unused_parameters = [] if freeze else self._freeze_unused_parameters()

    @property
    def model(self) -> nn.Module:
        """The underlying Hugging Face model."""
        return self.ssl.model

    hf_model = model

    def _freeze_unused_parameters(self) -> list[str]:
        """Freeze the parameters that can never get a gradient; return their names.

        Fine-tuned, some weights of the model take no part in the pooled
        layers: the spec-augment mask embedding (spec augment is off), the
        final layer norm of some architectures, the layers above the highest
        kept one. They would never change (Adam skips a parameter without a
        gradient), but DDP waits for their gradients and stops at the second
        step. One probe forward and backward pass (eval mode, a fixed random
        second of audio, the global generators untouched) finds them.
        """
        was_training = self.training
        self.eval()
        wav = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
        with torch.enable_grad():
            self(wav, torch.ones(1)).float().sum().backward()
        unused = []
        for name, param in self.named_parameters():
            if param.requires_grad and param.grad is None:
                param.requires_grad_(False)
                unused.append(name)
            param.grad = None
        self.train(was_training)
        return unused

    def _own_settings(self) -> dict[str, Any]:
        return {"hub_class": self.hub_class, "normalize_wav": self.normalize_wav}

    def frame_lengths(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Number of encoder frames computed from whole utterances.

        Arguments
        ---------
        num_samples : torch.Tensor
            ``[B]`` integer numbers of valid samples.

        Returns
        -------
        torch.Tensor
            ``[B]`` integer numbers of valid frames.
        """
        frames = self.model._get_feat_extract_output_lengths(num_samples)
        return torch.as_tensor(frames).long()

    def _check_lengths(self, num_samples: torch.Tensor) -> torch.Tensor:
        self._refuse_short(
            num_samples[self.frame_lengths(num_samples) < 1],
            "too short to give one encoder frame (about 400 samples = 25 ms at 16 kHz)",
        )
        return num_samples

    def _hidden_states(
        self, wavs: torch.Tensor, num_samples: torch.Tensor
    ) -> Sequence[torch.Tensor]:
        sample_mask = (
            torch.arange(wavs.shape[1], device=wavs.device)[None, :]
            < num_samples.to(wavs.device)[:, None]
        )
        if self.normalize_wav:
            # layer_norm of each waveform over its own samples (same maths and
            # eps as SpeechBrain's F.layer_norm on an unpadded signal)
            count = num_samples.to(wavs.device, wavs.dtype)[:, None]
            zero = torch.zeros((), dtype=wavs.dtype, device=wavs.device)
            mean = torch.where(sample_mask, wavs, zero).sum(1, keepdim=True) / count
            centred = torch.where(sample_mask, wavs - mean, zero)
            var = centred.square().sum(1, keepdim=True) / count
            wavs = centred / torch.sqrt(var + 1e-5)
        # a batch encoded alone (per_utterance) is trimmed: it needs no mask
        mask = sample_mask.long() if self.batch_mode == "padded" else None
        return self.model(
            wavs, attention_mask=mask, output_hidden_states=True
        ).hidden_states


WHISPER_CONTEXTS = ("cut", "full")
WHISPER_BATCH_MODES = ("padded", "per_utterance")


class WhisperLayerPooling(PretrainedLayerPooling):
    """Whisper encoder returning every hidden layer, mean-pooled over the
    valid frames of each utterance (same interface as ``SSLLayerPooling``).

    Whisper (Radford et al., 2022) encodes 80 (or 128) log-mel bins at 100
    frames per second into 50 frames per second, and was trained on inputs
    always padded to 30 s (3000 mel frames, 1500 encoder frames); the Hugging
    Face encoder refuses anything else. Paying for 30 s on a 3 s clip is
    about 10x the necessary compute, so by default (``context="cut"``) the
    encoder runs on the clip's own mel frames with the sinusoidal position
    table cut to the same number of frames. This is not numerically the
    padded model: Whisper's self-attention has no padding mask, so in the
    30 s model every valid frame also attends to the ~27 s of encoded
    silence. The measured difference (docs/encoders.md) is nil for the
    hidden state 0 except the last frame, and grows with depth;
    ``context="full"`` runs the exact padded model (and pools over the valid
    frames only) for whoever needs the original behaviour.

    The log-mel front-end is Whisper's (``WhisperFeatureExtractor``: STFT 400
    / hop 160, the checkpoint's mel filters, log10, floor at max - 8, (x+4)/4),
    computed in torch on each utterance's own samples. Hidden state 0 is the
    convolutional front-end plus positions, hidden state i the output of
    encoder layer i, the last one after the final layer norm (the encoder's
    output), as in Hugging Face's ``output_hidden_states``.

    With ``batch_mode="padded"`` a batch of clips runs as one forward: the mel
    frames beyond each clip are zeroed, so are the first convolution's outputs
    beyond it (the convolutions then see exactly the zero padding of a
    clip encoded alone), and attention ignores the padded frames (key mask).
    ``"per_utterance"`` runs each clip alone (bit-exact whatever the batch).
    Clips longer than 30 s are truncated to their first 30 s (a warning is
    logged): Whisper has no position beyond.

    Arguments
    ---------
    source, save_path, freeze, normalize_layers, precision, revision
        As :class:`PretrainedLayerPooling` (a hub id such as
        ``"openai/whisper-base"``; frozen and fp32 by default); the log-mel
        front-end always runs in float32.
    layers : sequence of int, optional
        Hidden-state indices to keep (0 .. encoder_layers; negative indices
        count from the end). Default: all.
    context : str
        ``"cut"`` (default): encode the clip's length only. ``"full"``: pad
        each clip to 30 s as Whisper was trained (about 10-16x slower).
    batch_mode : str
        ``"padded"`` (default) or ``"per_utterance"`` (only for ``"cut"``;
        ``"full"`` always runs one clip at a time).

    Example
    -------
    >>> import tempfile, transformers
    >>> tmp = tempfile.mkdtemp()
    >>> cfg = transformers.WhisperConfig(d_model=16, encoder_layers=2,
    ...     encoder_attention_heads=2, encoder_ffn_dim=32, decoder_layers=1,
    ...     decoder_attention_heads=2, decoder_ffn_dim=32, num_mel_bins=80,
    ...     vocab_size=100, max_target_positions=8, pad_token_id=0,
    ...     bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    >>> transformers.WhisperModel(cfg).save_pretrained(f"{tmp}/tiny")
    >>> _ = transformers.WhisperFeatureExtractor().save_pretrained(f"{tmp}/tiny")
    >>> enc = WhisperLayerPooling(f"{tmp}/tiny", save_path=f"{tmp}/hf")
    >>> enc.num_layers, enc.output_size
    (3, 16)
    >>> enc(torch.randn(2, 16000), torch.tensor([1.0, 0.6])).shape
    torch.Size([2, 3, 16])
    >>> import shutil; shutil.rmtree(tmp)
    """

    def __init__(
        self,
        source: str,
        save_path: str | None = None,
        freeze: bool = True,
        layers: Sequence[int] | None = None,
        context: str = "cut",
        batch_mode: str = "padded",
        normalize_layers: bool = False,
        precision: str = "fp32",
        revision: str | None = None,
    ):
        super().__init__(
            source, save_path, freeze, normalize_layers, precision, revision
        )
        transformers = _import_transformers("WhisperLayerPooling (--encoder=whisper)")
        AutoConfig = transformers.AutoConfig
        WhisperFeatureExtractor = transformers.WhisperFeatureExtractor
        WhisperModel = transformers.WhisperModel

        model_type = AutoConfig.from_pretrained(self.folder).model_type
        if model_type != "whisper":
            raise ValueError(
                f"WhisperLayerPooling: '{source}' is a {model_type!r} model, not "
                "Whisper; use --encoder=ssl for wav2vec2, WavLM and HuBERT."
            )
        if context not in WHISPER_CONTEXTS:
            raise ValueError(
                f"context must be one of {WHISPER_CONTEXTS}, got {context!r}."
            )
        if batch_mode not in WHISPER_BATCH_MODES:
            raise ValueError(
                f"batch_mode must be one of {WHISPER_BATCH_MODES}, got {batch_mode!r}."
            )
        # The decoder is loaded with the checkpoint and dropped here.
        self.encoder = WhisperModel.from_pretrained(self.folder).get_encoder()
        self.encoder.config.encoder_layerdrop = 0.0
        extractor = WhisperFeatureExtractor.from_pretrained(self.folder)
        self.n_fft = int(extractor.n_fft)
        self.hop_length = int(extractor.hop_length)
        self.sampling_rate = int(extractor.sampling_rate)
        # [n_mels, n_freq]; derived from the preprocessor config (in the key).
        self.register_buffer(
            "mel_filters",
            torch.from_numpy(extractor.mel_filters).float().T.contiguous(),
            persistent=False,
        )
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        config = self.encoder.config
        self.max_frames = int(config.max_source_positions)
        stride = self.encoder.conv1.stride[0] * self.encoder.conv2.stride[0]
        self.max_mel_frames = self.max_frames * stride
        self.max_samples = self.max_mel_frames * self.hop_length
        self.context = context
        self.batch_mode = "per_utterance" if context == "full" else batch_mode
        self.keep_layers(layers, config)
        self._warned_long = False
        if freeze:
            self.encoder.requires_grad_(False)
        else:  # the sinusoidal position table is fixed in Whisper
            self.encoder.embed_positions.requires_grad_(False)
        self.train(self.training)

    @property
    def model(self) -> nn.Module:
        """The Whisper encoder (Hugging Face ``WhisperEncoder``)."""
        return self.encoder

    def _own_settings(self) -> dict[str, Any]:
        return {
            "hub_class": "whisper",
            "context": self.context,
            "log_mel": {
                "n_fft": self.n_fft,
                "hop_length": self.hop_length,
                "n_mels": int(self.mel_filters.shape[0]),
                "sampling_rate": self.sampling_rate,
            },
        }

    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """Whisper's log-mel spectrogram of one waveform.

        Arguments
        ---------
        wav : torch.Tensor
            ``[T]`` waveform at 16 kHz (at least ``n_fft`` samples).

        Returns
        -------
        torch.Tensor
            ``[n_mels, T // hop_length]`` normalised log-mel frames.
        """
        # float32 even under bf16/fp16 autocast: log10 of small powers.
        with torch.autocast(device_type=wav.device.type, enabled=False):
            stft = torch.stft(
                wav.float(),
                self.n_fft,
                self.hop_length,
                window=self.window,
                return_complex=True,
            )
            power = (stft[..., :-1].abs() ** 2).contiguous()
            log_spec = torch.clamp(self.mel_filters @ power, min=1e-10).log10()
            log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
            return (log_spec + 4.0) / 4.0

    def frame_lengths(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Number of valid encoder frames of clips of ``num_samples`` samples.

        Arguments
        ---------
        num_samples : torch.Tensor
            ``[B]`` integer numbers of valid samples (at most 30 s).

        Returns
        -------
        torch.Tensor
            ``[B]`` integer numbers of encoder frames (50 per second).
        """
        mel = torch.as_tensor(num_samples).long() // self.hop_length
        return (mel + 1) // 2

    def _check_lengths(self, num_samples: torch.Tensor) -> torch.Tensor:
        self._refuse_short(
            num_samples[num_samples < self.n_fft],
            f"shorter than one analysis window ({self.n_fft} samples = 25 ms at "
            "16 kHz)",
        )
        if (num_samples > self.max_samples).any() and not self._warned_long:
            seconds = self.max_samples / self.sampling_rate
            logger.warning(
                "WhisperLayerPooling: clip(s) longer than %.0f s are truncated "
                "to their first %.0f s (Whisper has no position beyond).",
                seconds,
                seconds,
            )
            self._warned_long = True
        return num_samples.clamp(max=self.max_samples)

    def _hidden_states(
        self, wavs: torch.Tensor, num_samples: torch.Tensor
    ) -> Sequence[torch.Tensor]:
        mels = []
        for wav, length in zip(wavs, num_samples.tolist()):
            wav = wav[:length]
            if self.context == "full":
                wav = F.pad(wav, (0, self.max_samples - length))
            mels.append(self.log_mel(wav))
        return self.hidden_states(mels)

    def hidden_states(self, mels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Every hidden state of the encoder for a list of log-mel inputs.

        Arguments
        ---------
        mels : list of torch.Tensor
            ``[n_mels, F_i]`` log-mel inputs (``F_i`` at most 3000).

        Returns
        -------
        list of torch.Tensor
            ``encoder_layers + 1`` tensors ``[B, T, D]``, ``T`` the longest
            ``ceil(F_i / 2)``; frames beyond an input's own are padding.
        """
        enc = self.encoder
        lengths = torch.tensor([mel.shape[-1] for mel in mels])
        longest = int(lengths.max())
        x = torch.stack([F.pad(mel, (0, longest - mel.shape[-1])) for mel in mels])
        device = x.device
        padded = bool((lengths < longest).any())
        x = F.gelu(enc.conv1(x))
        if padded:  # conv2 must see zeros beyond each input, as when alone
            keep = torch.arange(longest)[None, :] < lengths[:, None]
            x = x * keep[:, None, :].to(device, x.dtype)
        x = F.gelu(enc.conv2(x)).permute(0, 2, 1)
        steps = x.shape[1]
        x = x + enc.embed_positions.weight[:steps].to(x.dtype)
        x = F.dropout(x, p=enc.dropout, training=enc.training)
        mask = None
        if padded:
            valid = torch.arange(steps)[None, :] < ((lengths + 1) // 2)[:, None]
            mask = torch.zeros(len(mels), 1, 1, steps, dtype=x.dtype)
            mask = mask.masked_fill(~valid[:, None, None, :], torch.finfo(x.dtype).min)
            mask = mask.expand(-1, 1, steps, steps).to(device)
        states = [x]
        # transformers 4.x layers take a head mask and return a tuple; 5.x not.
        takes_head_mask = (
            "layer_head_mask"
            in inspect.signature(type(enc.layers[0]).forward).parameters
        )
        for layer in enc.layers:
            extra = {"layer_head_mask": None} if takes_head_mask else {}
            x = layer(x, mask, **extra)
            x = x[0] if isinstance(x, tuple) else x
            states.append(x)
        states[-1] = enc.layer_norm(x)
        return states


class WeightedLayerSum(nn.Module):
    """Learned softmax-weighted sum over the layer axis.

    With ``x`` the ``[B, L, D]`` output of ``SSLLayerPooling``, this is the
    SUPERB-style weighted layer sum applied after pooling. Since the weighted
    sum and the masked time mean are both linear, it equals the masked mean of
    the frame-level weighted sum, which is why pooled per-layer features can
    be cached exactly while the weights are trained.

    Arguments
    ---------
    num_layers : int
        Size of the layer axis (``SSLLayerPooling.num_layers``).

    Example
    -------
    >>> pool = WeightedLayerSum(3)
    >>> x = torch.randn(4, 3, 8)
    >>> pool(x).shape
    torch.Size([4, 8])
    >>> torch.allclose(pool(x), x.mean(1))  # uniform weights at start
    True
    """

    def __init__(self, num_layers: int):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_layers = num_layers
        self.weights = nn.Parameter(torch.zeros(num_layers))

    def layer_weights(self) -> torch.Tensor:
        """Return the current softmax weights over layers.

        Returns
        -------
        torch.Tensor
            ``[num_layers]`` non-negative weights summing to 1.
        """
        return torch.softmax(self.weights, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Weighted sum over dim 1.

        Arguments
        ---------
        x : torch.Tensor
            ``[B, num_layers, ...]`` (e.g. ``[B, L, D]`` or ``[B, L, T, D]``).

        Returns
        -------
        torch.Tensor
            ``x`` summed over dim 1 with the softmax weights.
        """
        if x.dim() < 2 or x.shape[1] != self.num_layers:
            raise ValueError(
                f"WeightedLayerSum expects [batch, {self.num_layers}, ...], got "
                f"{tuple(x.shape)}. Set num_layers to the encoder's num_layers."
            )
        weights = self.layer_weights().to(x.dtype)
        return torch.tensordot(x.movedim(1, -1), weights, dims=1)


def _batch_lengths(
    wavs: torch.Tensor, wav_lens: torch.Tensor | None, name: str
) -> torch.Tensor:
    """Check a ``[batch, time]`` waveform batch; return its relative lengths."""
    if wavs.dim() != 2:
        raise ValueError(
            f"{name} expects wavs of shape [batch, time], got {tuple(wavs.shape)}; "
            "use wav.unsqueeze(0) for a single signal."
        )
    if wav_lens is None:
        return torch.ones(wavs.shape[0], device=wavs.device)
    return wav_lens


class FbankEncoder(nn.Module):
    """Trainable filterbank encoder: Fbank -> sentence mean norm -> ECAPA-TDNN.

    Log mel filterbanks (SpeechBrain ``Fbank``) are mean-normalised per
    utterance over its valid frames (``InputNormalization(norm_type=
    "sentence", std_norm=False)``: stateless, so nothing to checkpoint and no
    train/eval mismatch), padded frames are set to 0 (the normalised mean),
    and SpeechBrain's ``ECAPA_TDNN`` produces the embedding with its
    length-aware attentive statistics pooling.

    Padding is masked in the normalisation statistics, the squeeze-excitation
    means and the attentive pooling. It is not exactly invisible: the
    convolutions near the last valid frame (receptive field about +-15 frames)
    see padded frames instead of reflection padding, and BatchNorm batch
    statistics in training mode include padded frames. Sorting batches by
    duration keeps the effect small.

    Arguments
    ---------
    n_mels : int
        Number of mel filters.
    channels : sequence of int
        ECAPA-TDNN channels (the last one is the multi-layer aggregation).
        SpeechBrain's speaker-verification setting ``[512]*4 + [1536]``
        (attention/SE 128) has 6.2 M parameters; the default here 0.62 M.
    kernel_sizes : sequence of int
        Kernel size of each block.
    dilations : sequence of int
        Dilation of each block.
    attention_channels : int
        Hidden size of the attentive statistics pooling.
    res2net_scale : int
        Res2Net scale of the SE-Res2Net blocks (must divide the channels).
    se_channels : int
        Squeeze-excitation bottleneck size.
    emb_dim : int
        Output embedding size.
    sample_rate : int
        Sampling rate of the input waveforms.

    Example
    -------
    >>> enc = FbankEncoder(n_mels=40, channels=(32, 32, 32, 32, 96), emb_dim=16)
    >>> enc.output_size
    16
    >>> enc(torch.randn(2, 8000), torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 16])
    """

    def __init__(
        self,
        n_mels: int = 80,
        channels: Sequence[int] = (128, 128, 128, 128, 384),
        kernel_sizes: Sequence[int] = (5, 3, 3, 3, 1),
        dilations: Sequence[int] = (1, 2, 3, 4, 1),
        attention_channels: int = 64,
        res2net_scale: int = 8,
        se_channels: int = 64,
        emb_dim: int = 192,
        sample_rate: int = 16000,
    ):
        super().__init__()
        from speechbrain.lobes.features import Fbank
        from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
        from speechbrain.processing.features import InputNormalization

        bad = [c for c in channels[:-1] if c % res2net_scale]
        if bad:
            raise ValueError(
                f"FbankEncoder: res2net_scale={res2net_scale} must divide every "
                f"block channel size, got channels {list(channels)}."
            )
        self.fbank = Fbank(n_mels=n_mels, sample_rate=sample_rate)
        self.norm = InputNormalization(norm_type="sentence", std_norm=False)
        self.ecapa = ECAPA_TDNN(
            input_size=n_mels,
            lin_neurons=emb_dim,
            channels=list(channels),
            kernel_sizes=list(kernel_sizes),
            dilations=list(dilations),
            attention_channels=attention_channels,
            res2net_scale=res2net_scale,
            se_channels=se_channels,
        )
        self.output_size = emb_dim

    def forward(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Compute utterance embeddings.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, T]`` waveforms at ``sample_rate``, right-padded.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths (default: all 1): the padded frames are
            left out of the normalisation statistics and the pooling.

        Returns
        -------
        torch.Tensor
            ``[B, emb_dim]`` embeddings.
        """
        wav_lens = _batch_lengths(wavs, wav_lens, "FbankEncoder")
        feats = self.fbank(wavs)
        feats = self.norm(feats, wav_lens)
        steps = feats.shape[1]
        valid = torch.round(wav_lens * steps)[:, None]
        mask = torch.arange(steps, device=feats.device)[None, :] < valid
        feats = feats * mask[:, :, None]
        return self.ecapa(feats, wav_lens).squeeze(1)


class FbankStatsEncoder(nn.Module):
    """Frozen filterbank encoder: utterance statistics of log mel filterbanks.

    The mean and the standard deviation, over the valid frames of each
    utterance, of SpeechBrain's log mel filterbanks and (optionally) their
    first and second time derivatives: ``2 * n_mels * (3 if deltas else 1)``
    values per utterance, computed one utterance at a time so that padding
    never changes them. It has no trainable parameter, like the paper's
    frozen SSL encoder, so the same recipe trains only the heads on top of it
    and its output can be cached per utterance (``FeatureCache``). It is the
    encoder of the built-in demo: training it is fast on a CPU, and every loss
    of the method acts on the learned embedding exactly as with the SSL model.

    Every argument changes the features, so all of them are in
    ``feature_settings()`` (hence in the feature-cache key).

    Arguments
    ---------
    n_mels : int
        Number of mel filters.
    deltas : bool
        Also use the first and second derivatives of the filterbanks.
    sample_rate : int
        Sampling rate of the input waveforms.
    f_min : float
        Lowest filter frequency (Hz).
    f_max : float, optional
        Highest filter frequency (Hz); default ``sample_rate / 2``.
    n_fft : int
        FFT size.
    win_length : float
        Window length in ms.
    hop_length : float
        Frame shift in ms.
    precision : str
        Compute precision (``"fp32"`` default), fixed in every stage (see
        ``encoder_precision``); the statistics are returned in float32.

    Example
    -------
    >>> enc = FbankStatsEncoder(n_mels=20)
    >>> enc.output_size, enc.feature_shape
    (120, (120,))
    >>> feats = enc(torch.randn(2, 8000), torch.tensor([1.0, 0.5]))
    >>> feats.shape
    torch.Size([2, 120])
    >>> wav = torch.randn(1, 4000)
    >>> padded = torch.cat([wav, torch.zeros(1, 4000)], dim=1)
    >>> alone, in_batch = enc(wav), enc(padded, torch.tensor([0.5]))
    >>> torch.equal(alone, in_batch)
    True
    >>> enc.feature_settings()["f_max"] == FbankStatsEncoder(20, f_max=4000.0
    ...     ).feature_settings()["f_max"]
    False
    """

    def __init__(
        self,
        n_mels: int = 40,
        deltas: bool = True,
        sample_rate: int = 16000,
        f_min: float = 0.0,
        f_max: float | None = None,
        n_fft: int = 400,
        win_length: float = 25,
        hop_length: float = 10,
        precision: str = "fp32",
    ):
        super().__init__()
        from speechbrain.lobes.features import Fbank

        self.settings = {
            "n_mels": int(n_mels),
            "deltas": bool(deltas),
            "sample_rate": int(sample_rate),
            "f_min": float(f_min),
            "f_max": float(sample_rate / 2 if f_max is None else f_max),
            "n_fft": int(n_fft),
            "win_length": float(win_length),
            "hop_length": float(hop_length),
        }
        self.precision = check_precision(precision)
        self.fbank = Fbank(**self.settings)
        self.output_size = 2 * n_mels * (3 if deltas else 1)
        self.feature_shape = (self.output_size,)
        self.requires_grad_(False)

    def feature_settings(self) -> dict[str, Any]:
        """Everything that changes this encoder's output (it has no weights).

        Used by ``zsser_modules.feature_cache`` to key cached features.

        Returns
        -------
        dict
            The filterbank settings, the statistics and the compute precision.
        """
        return {
            **self.settings,
            "statistics": "mean, std (correction 0) over valid frames",
            "precision": self.precision,
        }

    def forward(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Compute the utterance statistics.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, T]`` waveforms at ``sample_rate``, right-padded.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths (default: all 1): each utterance is cut
            to its own samples before its filterbanks are computed.

        Returns
        -------
        torch.Tensor
            ``[B, output_size]`` float32: means, then standard deviations.
        """
        wav_lens = _batch_lengths(wavs, wav_lens, "FbankStatsEncoder")
        n_samples = torch.round(wav_lens * wavs.shape[1]).long().tolist()
        stats = []
        with torch.no_grad(), encoder_precision(self.precision, wavs.device):
            # One utterance at a time, trimmed to its valid samples: the
            # edge frames and the deltas then never see the padding, so the
            # output does not depend on the batch (exact for the cache).
            for wav, n in zip(wavs.float(), n_samples):
                feats = self.fbank(wav[None, : max(n, 1)])[0].float()
                stats.append(torch.cat([feats.mean(0), feats.std(0, correction=0)]))
        return torch.stack(stats)


#: Files of a Hugging Face model folder the encoders load: the configs (model,
#: feature extractor) and the weights, safetensors if the repository has them.
MODEL_FILE_PATTERNS: tuple[tuple[str, ...], ...] = (
    ("*.json", "*.safetensors"),
    ("*.json", "*.bin"),
)


def resolve_pretrained(
    source: str, cache_dir: str | None = None, revision: str | None = None
) -> tuple[str, str | None]:
    """Return the local folder to load a pretrained model from, and its commit.

    A local folder is used as it is, commit None (the export names a Hugging
    Face cache snapshot folder by its hub id and commit itself). Anything
    else is a hub id: the
    snapshot of ``revision`` (default: the newest) is fetched into
    ``cache_dir`` (or found there offline) with
    ``huggingface_hub.snapshot_download``, configs and weights only, and its
    commit hash is returned. An exported model records that commit, so it
    reloads exactly the encoder it was trained with.

    Arguments
    ---------
    source : str
        Local model folder or hub id.
    cache_dir : str, optional
        Hugging Face cache folder (default: the user's).
    revision : str, optional
        Commit hash, branch or tag of a hub id.

    Returns
    -------
    tuple
        ``(folder, commit)``.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.mkdtemp()
    >>> resolve_pretrained(tmp) == (tmp, None)
    True
    """
    if Path(source).is_dir():
        return source, None
    from huggingface_hub import snapshot_download

    try:
        for patterns in MODEL_FILE_PATTERNS:
            folder = snapshot_download(
                source,
                revision=revision,
                cache_dir=cache_dir,
                allow_patterns=list(patterns),
            )
            if any(Path(folder).glob(patterns[-1])):
                break
    except Exception as err:  # huggingface_hub raises many kinds
        at = f" at revision {revision}" if revision else ""
        raise OSError(
            f"Cannot load the pretrained model '{source}'{at}: "
            f"{' '.join(str(err).split())} Expected a local model folder, or "
            "a Hugging Face hub id that is reachable or already in the cache "
            f"({cache_dir or 'the default Hugging Face cache'})."
        ) from err
    return folder, Path(folder).name
