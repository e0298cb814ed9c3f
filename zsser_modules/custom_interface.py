"""Self-contained inference interface of the zero-shot SER recipe.

This one file is copied verbatim into every exported model folder as
``custom_interface.py``, so that::

    from speechbrain.inference.interfaces import foreign_class
    recognizer = foreign_class(source="<model folder>",
                               pymodule_file="custom_interface.py",
                               classname="EmotionRecognizer")
    out_prob, score, index, text_lab = recognizer.classify_file("speech.wav")

works on a machine with SpeechBrain, torch and transformers but without
this project. It therefore imports nothing but the standard library, torch,
SpeechBrain and (lazily) transformers / huggingface_hub, and it is the one
definition of everything the exported model runs: the encoders
(``FbankStatsEncoder``, ``FbankEncoder``, ``SSLLayerPooling``,
``WhisperLayerPooling``, ``WeightedLayerSum``, their precision contexts),
the audio loading (:func:`load_audio`: SpeechBrain's ``audio_io.load`` and
``AudioNormalizer``, as ``Pretrained.load_audio``, then the duration policy
:func:`fit_duration`: head crop to ``max_duration``, zero padding to
``MIN_DURATION``) and :class:`EmotionRecognizer`. The project imports these from here
(``zsser_modules.encoders``, ``zsser_modules.audio`` and
``zsser_modules.inference`` re-export them): training and inference run the
same code.

Encoders
--------
Frozen self-supervised path (the paper's setting)::

    wav [B, T] --SSLLayerPooling--> [B, L+1, D] --WeightedLayerSum--> [B, D]

``SSLLayerPooling`` mean-pools every hidden layer over the valid frames of
each utterance only, so its output does not depend on how the batch was
padded, and it has no trainable parameters when frozen: its output can be
cached per utterance (see ``zsser_modules.feature_cache``). The learned layer
weights come after the pooling. Because the softmax-weighted sum over layers
and the masked mean over time are both linear, their order does not matter::

    sum_l w_l * mean_t h[l, t] == mean_t sum_l w_l * h[l, t]

so caching the pooled ``[L+1, D]`` tensor of each utterance is exact.

Trainable path (no download): ``FbankEncoder`` = SpeechBrain ``Fbank`` ->
sentence mean normalisation -> ``ECAPA_TDNN`` with length-aware attentive
statistics pooling.

Whisper path: ``WhisperLayerPooling`` is the same ``[B, L+1, D]`` interface for
a Whisper encoder (``openai/whisper-base`` and the like). It computes the
log-mel input itself and runs the encoder on the clip's length instead of
Whisper's fixed 30 s window (position table cut to match), which is about
16x cheaper for 3 s clips; ``context="full"`` reproduces the 30 s padded
model exactly.

Frozen filterbank path (no download, the built-in demo): ``FbankStatsEncoder``
= mean and standard deviation of log mel filterbanks (and deltas) over the
valid frames; like the frozen SSL path, only the heads above it are trained.

Pretrained encoders from the hub are pinned: ``SSLLayerPooling`` and
``WhisperLayerPooling`` take a ``revision`` (the commit hash recorded at
export) and load exactly that snapshot (:func:`pinned_source`).

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from speechbrain.inference.interfaces import Pretrained
from torch import nn

logger = logging.getLogger(__name__)

# model_type of the Hugging Face config -> (SpeechBrain module, wrapper class)
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


class SSLLayerPooling(nn.Module):
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
    layers in training mode, changing the number of returned layers). A
    frozen model stays in eval mode even when the Brain calls ``.train()``
    (no dropout, deterministic features) and runs without autograd.

    Arguments
    ---------
    source : str
        Hugging Face hub id (e.g. ``"microsoft/wavlm-large"``) or a local
        folder with ``config.json``, weights and ``preprocessor_config.json``.
    save_path : str, optional
        Hugging Face cache folder of a hub ``source`` (default: the user's
        Hugging Face cache).
    freeze : bool
        If True (default), no parameter is trainable and the model stays in
        eval mode.
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
    normalize_layers : bool
        If True, each frame of each layer is layer-normalised (no affine)
        before pooling, evening out the very different scales of layers.
    freeze_feature_extractor : bool
        When ``freeze=False``, keep the convolutional front-end frozen.
    precision : str
        Compute precision of a frozen model (``"fp32"`` default, ``"bf16"``,
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
        super().__init__()
        self.precision = check_precision(precision)
        source = str(source)
        save_path = None if save_path is None else str(save_path)
        folder, self.revision = resolve_pretrained(source, save_path, revision)
        if hub_class == "auto":
            from transformers import AutoConfig

            hub_class = AutoConfig.from_pretrained(folder).model_type
        wrapper_cls = _import_wrapper(hub_class)
        self.ssl = wrapper_cls(
            source=folder,
            save_path=save_path or "",
            output_norm=False,
            freeze=freeze,
            freeze_feature_extractor=freeze_feature_extractor,
            apply_spec_augment=False,
            output_all_hiddens=True,
        )
        config = self.ssl.model.config
        config.layerdrop = 0.0
        self.source = source
        self.hub_class = hub_class
        self.freeze = freeze
        self.normalize_wav = bool(self.ssl.normalize_wav)
        self.normalize_layers = normalize_layers

        self.layers = _kept_layers(layers, config.num_hidden_layers + 1)
        self.num_layers = len(self.layers)
        self.output_size = int(config.hidden_size)

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
    def hf_model(self) -> nn.Module:
        """The underlying Hugging Face model."""
        return self.ssl.model

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

    def train(self, mode: bool = True) -> SSLLayerPooling:
        """Set training mode; a frozen SSL model always stays in eval mode.

        Arguments
        ---------
        mode : bool
            Training (True) or evaluation (False) mode.

        Returns
        -------
        SSLLayerPooling
            self
        """
        super().train(mode)
        if self.freeze:
            self.ssl.model.eval()
        return self

    def export_arguments(self) -> dict[str, Any]:
        """Constructor arguments an export must pin: the hub commit loaded.

        Returns
        -------
        dict
            ``{"revision": <commit hash>}`` for a model from the hub (or a
            Hugging Face cache snapshot), else empty.
        """
        return {"revision": self.revision} if self.revision else {}

    def feature_settings(self) -> dict[str, Any]:
        """Everything besides the weights that changes this encoder's output.

        Used by ``zsser_modules.feature_cache`` to key cached features.

        Returns
        -------
        dict
            JSON-serialisable settings (source, wrapper, kept layers, pooling,
            normalisations, batch mode, compute precision, and the model
            config).
        """
        config = {
            key: value
            for key, value in self.ssl.model.config.to_dict().items()
            if key not in _VOLATILE_CONFIG_KEYS
        }
        return {
            "source": self.source,
            "hub_class": self.hub_class,
            "layers": list(self.layers),
            "pooling": "masked_mean",
            "normalize_wav": self.normalize_wav,
            "normalize_layers": self.normalize_layers,
            "batch_mode": self.batch_mode,
            "precision": self.precision if self.freeze else "brain",
            "config": config,
        }

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
        frames = self.ssl.model._get_feat_extract_output_lengths(num_samples)
        return torch.as_tensor(frames).long()

    def forward(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Encode a padded batch and pool each kept layer over valid frames.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, T]`` waveforms at the model's rate (16 kHz), right-padded.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths (SpeechBrain convention). Default: all 1.

        Returns
        -------
        torch.Tensor
            ``[B, num_layers, output_size]`` pooled features.
        """
        if wavs.dim() != 2:
            raise ValueError(
                f"SSLLayerPooling expects wavs of shape [batch, time], got "
                f"{tuple(wavs.shape)}; use wav.unsqueeze(0) for a single signal."
            )
        batch, total = wavs.shape
        if wav_lens is None:
            wav_lens = torch.ones(batch, device=wavs.device)
        num_samples = torch.round(wav_lens.float() * total).long().clamp(max=total)
        frames = self.frame_lengths(num_samples.cpu())
        if (frames < 1).any():
            short = num_samples[frames < 1].tolist()
            raise ValueError(
                f"SSLLayerPooling: utterance(s) of {short} samples are too short "
                "to give one encoder frame (about 400 samples = 25 ms at 16 kHz). "
                "Filter very short files out of the manifest."
            )
        with pretrained_forward(self.freeze, self.precision, wavs.device):
            if self.batch_mode == "padded":
                return self._pool(wavs, num_samples, frames, use_mask=True)
            return torch.cat(
                [
                    self._pool(
                        wavs[i : i + 1, : num_samples[i]],
                        num_samples[i : i + 1],
                        frames[i : i + 1],
                        use_mask=False,
                    )
                    for i in range(batch)
                ]
            )

    def _pool(
        self,
        wavs: torch.Tensor,
        num_samples: torch.Tensor,
        frames: torch.Tensor,
        use_mask: bool,
    ) -> torch.Tensor:
        """Run the HF model on one (padded) batch and pool the kept layers."""
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
        attention_mask = sample_mask.long() if use_mask else None
        out = self.ssl.model(
            wavs, attention_mask=attention_mask, output_hidden_states=True
        )
        hidden = torch.stack([out.hidden_states[i] for i in self.layers], dim=1)
        if self.freeze:  # pool in float32, whatever the compute precision
            hidden = hidden.float()
        if self.normalize_layers:
            hidden = F.layer_norm(hidden, hidden.shape[-1:])
        return masked_mean(hidden, frames.to(hidden.device), dim=2)


def _kept_layers(layers: Sequence[int] | None, n_hidden: int) -> tuple[int, ...]:
    """Validate hidden-state indices (negative ones count from the end)."""
    if layers is None:
        layers = range(n_hidden)
    kept = []
    for layer in layers:
        if not -n_hidden <= int(layer) < n_hidden:
            raise ValueError(
                f"layers: index {layer} out of range for a model with "
                f"{n_hidden} hidden states (0 .. {n_hidden - 1})."
            )
        kept.append(int(layer) % n_hidden)
    if not kept:
        raise ValueError("layers: keep at least one hidden state.")
    return tuple(kept)


WHISPER_CONTEXTS = ("cut", "full")
WHISPER_BATCH_MODES = ("padded", "per_utterance")


class WhisperLayerPooling(nn.Module):
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
    source : str
        Hugging Face hub id (e.g. ``"openai/whisper-base"``) or a local folder
        with ``config.json``, weights and ``preprocessor_config.json``.
    save_path : str, optional
        Hugging Face cache folder of a hub ``source`` (default: the user's
        Hugging Face cache).
    freeze : bool
        If True (default), no parameter is trainable and the encoder stays in
        eval mode.
    layers : sequence of int, optional
        Hidden-state indices to keep (0 .. encoder_layers; negative indices
        count from the end). Default: all.
    context : str
        ``"cut"`` (default): encode the clip's length only. ``"full"``: pad
        each clip to 30 s as Whisper was trained (about 10-16x slower).
    batch_mode : str
        ``"padded"`` (default) or ``"per_utterance"`` (only for ``"cut"``;
        ``"full"`` always runs one clip at a time).
    normalize_layers : bool
        Layer-normalise each frame of each layer (no affine) before pooling.
    precision : str
        Compute precision of a frozen model (``"fp32"`` default, ``"bf16"``,
        ``"fp16"``), applied in every stage whatever ``--precision`` or
        ``--eval_precision`` say (see ``encoder_precision``); the log-mel
        front-end always runs in float32 and the pooled features are
        returned in float32. Part of ``feature_settings()``, hence of the
        feature-cache key. A fine-tuned model (``freeze=False``) ignores it
        and follows the Brain's precision.
    revision : str, optional
        Hub revision of a hub ``source`` (as for ``SSLLayerPooling``); the
        commit loaded is ``self.revision``.

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
        super().__init__()
        from transformers import AutoConfig, WhisperFeatureExtractor, WhisperModel

        self.precision = check_precision(precision)

        source = str(source)
        save_path = None if save_path is None else str(save_path)
        folder, self.revision = resolve_pretrained(source, save_path, revision)
        model_type = AutoConfig.from_pretrained(folder).model_type
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
        self.encoder = WhisperModel.from_pretrained(folder).get_encoder()
        self.encoder.config.encoder_layerdrop = 0.0
        extractor = WhisperFeatureExtractor.from_pretrained(folder)
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
        self.source = source
        self.freeze = freeze
        self.context = context
        self.batch_mode = "per_utterance" if context == "full" else batch_mode
        self.normalize_layers = normalize_layers
        self.layers = _kept_layers(layers, config.encoder_layers + 1)
        self.num_layers = len(self.layers)
        self.output_size = int(config.d_model)
        self._warned_long = False
        if freeze:
            self.encoder.requires_grad_(False)
        else:  # the sinusoidal position table is fixed in Whisper
            self.encoder.embed_positions.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> WhisperLayerPooling:
        """Set training mode; a frozen encoder always stays in eval mode.

        Arguments
        ---------
        mode : bool
            Training (True) or evaluation (False) mode.

        Returns
        -------
        WhisperLayerPooling
            self
        """
        super().train(mode)
        if self.freeze:
            self.encoder.eval()
        return self

    def export_arguments(self) -> dict[str, Any]:
        """Constructor arguments an export must pin: the hub commit loaded.

        Returns
        -------
        dict
            ``{"revision": <commit hash>}`` for a model from the hub (or a
            Hugging Face cache snapshot), else empty.
        """
        return {"revision": self.revision} if self.revision else {}

    def feature_settings(self) -> dict[str, Any]:
        """Everything besides the weights that changes this encoder's output.

        Used by ``zsser_modules.feature_cache`` to key cached features.

        Returns
        -------
        dict
            JSON-serialisable settings.
        """
        config = {
            key: value
            for key, value in self.encoder.config.to_dict().items()
            if key not in _VOLATILE_CONFIG_KEYS and not key.startswith("_")
        }
        return {
            "source": self.source,
            "hub_class": "whisper",
            "layers": list(self.layers),
            "pooling": "masked_mean",
            "context": self.context,
            "batch_mode": self.batch_mode,
            "normalize_layers": self.normalize_layers,
            "precision": self.precision if self.freeze else "brain",
            "log_mel": {
                "n_fft": self.n_fft,
                "hop_length": self.hop_length,
                "n_mels": int(self.mel_filters.shape[0]),
                "sampling_rate": self.sampling_rate,
            },
            "config": config,
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

    def forward(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Encode a padded batch and pool each kept layer over valid frames.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, T]`` waveforms at 16 kHz, right-padded.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths (SpeechBrain convention). Default: all 1.

        Returns
        -------
        torch.Tensor
            ``[B, num_layers, output_size]`` pooled features.
        """
        wav_lens = _batch_lengths(wavs, wav_lens, "WhisperLayerPooling")
        batch, total = wavs.shape
        num_samples = torch.round(wav_lens.float() * total).long().clamp(max=total)
        if (num_samples < self.n_fft).any():
            short = num_samples[num_samples < self.n_fft].tolist()
            raise ValueError(
                f"WhisperLayerPooling: utterance(s) of {short} samples are "
                f"shorter than one analysis window ({self.n_fft} samples = 25 ms "
                "at 16 kHz). Filter very short files out of the manifest."
            )
        if (num_samples > self.max_samples).any():
            if not self._warned_long:
                logger.warning(
                    "WhisperLayerPooling: clip(s) longer than %.0f s are truncated "
                    "to their first %.0f s (Whisper has no position beyond).",
                    self.max_samples / self.sampling_rate,
                    self.max_samples / self.sampling_rate,
                )
                self._warned_long = True
            num_samples = num_samples.clamp(max=self.max_samples)
        num_samples = num_samples.cpu()
        with pretrained_forward(self.freeze, self.precision, wavs.device):
            mels = []
            for i in range(batch):
                wav = wavs[i, : num_samples[i]]
                if self.context == "full":
                    wav = F.pad(wav, (0, self.max_samples - wav.shape[0]))
                mels.append(self.log_mel(wav))
            frames = self.frame_lengths(num_samples)
            if self.batch_mode == "padded":
                return self._pool(mels, frames)
            return torch.cat(
                [self._pool(mels[i : i + 1], frames[i : i + 1]) for i in range(batch)]
            )

    def _pool(self, mels: list[torch.Tensor], frames: torch.Tensor) -> torch.Tensor:
        """Run the encoder on a list of log-mels and pool the kept layers."""
        hidden = self.hidden_states(mels)
        hidden = torch.stack([hidden[i] for i in self.layers], dim=1)
        if self.freeze:  # pool in float32, whatever the compute precision
            hidden = hidden.float()
        if self.normalize_layers:
            hidden = F.layer_norm(hidden, hidden.shape[-1:])
        return masked_mean(hidden, frames.to(hidden.device), dim=2)

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
            f"{name} expects wavs of shape [batch, time], got {tuple(wavs.shape)}."
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
            ``[B, T]`` right-padded waveforms.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths. Default: all 1.

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
            ``[B, T]`` right-padded waveforms.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths. Default: all 1.

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


# ---------------------------------------------------------------------------
# Where pretrained encoders and the model folder's own files come from
# ---------------------------------------------------------------------------

#: Name of this file in an exported model folder.
INTERFACE_FILE = "custom_interface.py"
#: Files of a Hugging Face model folder the encoders load: the configs (model,
#: feature extractor) and the weights, safetensors if the repository has them.
MODEL_FILE_PATTERNS: tuple[tuple[str, ...], ...] = (
    ("*.json", "*.safetensors"),
    ("*.json", "*.bin"),
)
# Sources of the model folders being loaded by EmotionRecognizer.from_hparams.
_LOADING: list[str] = []


def hub_origin(folder: str | os.PathLike) -> tuple[str, str] | None:
    """Return the hub repository and commit of a Hugging Face cache snapshot.

    Arguments
    ---------
    folder : str or os.PathLike
        A folder, e.g. ``<cache>/models--org--name/snapshots/<commit>``.

    Returns
    -------
    tuple of str or None
        ``(repo_id, commit)``, or None if ``folder`` is not such a snapshot.

    Example
    -------
    >>> hub_origin("/cache/models--facebook--wav2vec2-base/snapshots/0123abc")
    ('facebook/wav2vec2-base', '0123abc')
    >>> hub_origin("/data/my_model") is None
    True
    """
    parts = Path(folder).parts
    if len(parts) >= 3 and parts[-2] == "snapshots":
        if parts[-3].startswith("models--"):
            return parts[-3][len("models--") :].replace("--", "/"), parts[-1]
    return None


def resolve_pretrained(
    source: str, cache_dir: str | None = None, revision: str | None = None
) -> tuple[str, str | None]:
    """Return the local folder to load a pretrained model from, and its commit.

    A local folder is used as it is (its commit is known when it is a
    Hugging Face cache snapshot, else None). Anything else is a hub id: the
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
        origin = hub_origin(Path(source).absolute())
        return source, origin[1] if origin else None
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


def _link_chain(path: Path) -> list[Path]:
    """Folders of ``path`` and of every symbolic link it leads through."""
    folders = [path.parent]
    for _ in range(16):
        if not path.is_symlink():
            break
        path = path.parent / os.readlink(path)
        folders.append(Path(os.path.normpath(path.parent)))
    return folders


def model_file(name: str) -> str:
    """Return the path of a file or folder of the model folder being loaded.

    The exported ``hyperparams.yaml`` names its own files (``label_encoder.txt``,
    a copied local encoder) through this function, because SpeechBrain reads
    relative paths from the working directory. The model folder is, in this
    order: the ``source`` given to :meth:`EmotionRecognizer.from_hparams`;
    under ``foreign_class``, the folder it fetched this file into (the last
    one on ``sys.path``), followed through symbolic links back to where it came
    from; the folder of this file. A model folder on the Hugging Face hub is
    completed from the hub (``huggingface_hub.snapshot_download``).

    Arguments
    ---------
    name : str
        Relative path inside the model folder.

    Returns
    -------
    str
        The path of ``name``.

    Raises
    ------
    FileNotFoundError
        If no candidate folder holds ``name`` (the message lists them).
    """
    candidates: list[Path] = []
    hub: list[tuple[str, str | None]] = []
    for source in _LOADING[-1:]:
        if Path(source).is_dir():
            candidates.append(Path(source))
        else:
            hub.append((source, None))
    for entry in reversed(sys.path):
        start = Path(entry or ".") / INTERFACE_FILE
        if start.is_file():
            candidates += _link_chain(start)
    candidates += _link_chain(Path(__file__))
    for folder in candidates:
        if (folder / name).exists():
            return str(folder / name)
    hub += [origin for origin in map(hub_origin, candidates) if origin]
    for repo_id, commit in hub[:1]:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            repo_id, revision=commit, allow_patterns=[name, f"{name}/*"]
        )
        if (Path(folder) / name).exists():
            return str(Path(folder) / name)
    raise FileNotFoundError(
        f"'{name}' of the exported model was not found in "
        f"{[str(c) for c in dict.fromkeys(candidates)]}. It belongs next to "
        f"hyperparams.yaml and {INTERFACE_FILE}; load the model with "
        "EmotionRecognizer.from_hparams(source=<model folder>) or "
        "foreign_class(source=<model folder>, ...), or pass its location in "
        "`overrides`."
    )


# ---------------------------------------------------------------------------
# Duration policy: head crop of long clips, zero padding of very short ones
# ---------------------------------------------------------------------------

#: Shortest clip an encoder is given, in seconds (800 samples at 16 kHz).
#: A shorter clip is right-padded with zeros to this length. The frozen SSL
#: encoders (wav2vec2, WavLM, HuBERT: a 400-sample convolutional receptive
#: field) and Whisper (a 400-sample analysis window) refuse fewer than 400
#: samples, and the trainable filterbank + ECAPA-TDNN encoder fails on a
#: clip alone under about 640 samples (reflect padding of its dilated
#: convolutions); 0.05 s clears all of them.
MIN_DURATION: float = 0.05


def duration_samples(seconds: float, sample_rate: int) -> int:
    """Number of samples of ``seconds`` at ``sample_rate`` (nearest integer).

    Arguments
    ---------
    seconds : float
        A duration.
    sample_rate : int
        Samples per second.

    Returns
    -------
    int
        ``round(seconds * sample_rate)``.

    Example
    -------
    >>> duration_samples(15.0, 16000), duration_samples(0.05, 16000)
    (240000, 800)
    """
    return int(round(float(seconds) * int(sample_rate)))


def check_max_duration(max_duration: Any) -> float | None:
    """Validate ``max_duration``: None (no crop) or seconds above ``MIN_DURATION``.

    Arguments
    ---------
    max_duration : float or None
        The setting (seconds).

    Returns
    -------
    float or None
        The value as a float, or None.

    Raises
    ------
    ValueError
        One line: what was expected, what was found, how to fix it.

    Example
    -------
    >>> check_max_duration(15), check_max_duration(None)
    (15.0, None)
    >>> check_max_duration(0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: max_duration must be null (no crop) or a number of seconds ...
    """
    if max_duration is None:
        return None
    bad = isinstance(max_duration, bool) or not isinstance(max_duration, (int, float))
    if bad or not MIN_DURATION < float(max_duration) < float("inf"):
        raise ValueError(
            "max_duration must be null (no crop) or a number of seconds above "
            f"{MIN_DURATION:g} (MIN_DURATION), got {max_duration!r}; set e.g. "
            "--max_duration=15.0."
        )
    return float(max_duration)


def fit_duration(
    wav: torch.Tensor,
    sample_rate: int,
    max_duration: float | None = None,
    min_duration: float = MIN_DURATION,
) -> torch.Tensor:
    """Apply the duration policy to one waveform (time on the last axis).

    Keeps the first ``round(max_duration * sample_rate)`` samples (a
    deterministic head crop; None: no crop), then right-pads with zeros to
    ``round(min_duration * sample_rate)`` samples. A waveform the policy
    does not change is returned as is (the same tensor).

    Arguments
    ---------
    wav : torch.Tensor
        Waveform ``[..., time]`` at ``sample_rate``.
    sample_rate : int
        Its rate.
    max_duration : float, optional
        Longest kept duration in seconds (None: keep everything).
    min_duration : float
        Shortest duration in seconds; shorter waveforms are zero-padded.

    Returns
    -------
    torch.Tensor
        The cropped or padded waveform.

    Example
    -------
    >>> fit_duration(torch.ones(40000), 16000, max_duration=2.0).shape
    torch.Size([32000])
    >>> short = fit_duration(torch.ones(100), 16000)
    >>> short.shape, float(short[:100].sum()), float(short[100:].abs().sum())
    (torch.Size([800]), 100.0, 0.0)
    """
    max_duration = check_max_duration(max_duration)
    if max_duration is not None:
        keep = duration_samples(max_duration, sample_rate)
        if wav.shape[-1] > keep:
            wav = wav[..., :keep]
    shortest = duration_samples(min_duration, sample_rate)
    if wav.shape[-1] < shortest:
        wav = F.pad(wav, (0, shortest - wav.shape[-1]))
    return wav


def fit_batch_duration(
    wavs: torch.Tensor,
    wav_lens: torch.Tensor | None,
    sample_rate: int,
    max_duration: float | None = None,
    min_duration: float = MIN_DURATION,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply :func:`fit_duration` to every row of a right-padded batch.

    Each row keeps its first ``round(max_duration * sample_rate)`` valid
    samples and is zero-padded to ``round(min_duration * sample_rate)``
    valid samples; the relative lengths are recomputed for the new width.
    A batch the policy leaves unchanged is returned as is, so applying it
    twice, or to a batch of already fitted waveforms (the recipe's), changes
    nothing.

    Arguments
    ---------
    wavs : torch.Tensor
        Waveforms ``[batch, time]``, right-padded.
    wav_lens : torch.Tensor or None
        Relative lengths ``[batch]`` (1.0 = ``time``); None: all 1.
    sample_rate : int
        Rate of the waveforms.
    max_duration : float, optional
        Longest kept duration in seconds (None: no crop).
    min_duration : float
        Shortest duration in seconds.

    Returns
    -------
    wavs : torch.Tensor
        ``[batch, new_time]``; samples past a row's length are zeros.
    wav_lens : torch.Tensor
        The relative lengths in ``new_time``.

    Example
    -------
    >>> wavs, lens = fit_batch_duration(torch.ones(2, 48000),
    ...                                 torch.tensor([1.0, 0.5]), 16000, 2.0)
    >>> wavs.shape, lens.tolist()
    (torch.Size([2, 32000]), [1.0, 0.75])
    """
    max_duration = check_max_duration(max_duration)
    width = wavs.shape[-1]
    if wav_lens is None:
        wav_lens = torch.ones(wavs.shape[0], device=wavs.device)
    lengths = torch.round(wav_lens.double() * width).long().clamp(0, width)
    keep = lengths
    if max_duration is not None:
        keep = lengths.clamp(max=duration_samples(max_duration, sample_rate))
    shortest = duration_samples(min_duration, sample_rate)
    new_lengths = keep.clamp(min=shortest)
    if bool((new_lengths == lengths).all()):
        return wavs, wav_lens
    new_width = int(new_lengths.max())
    if new_width > width:
        wavs = F.pad(wavs, (0, new_width - width))
    wavs = wavs[..., :new_width]
    steps = torch.arange(new_width, device=wavs.device)
    valid = steps[None, :] < keep.to(wavs.device)[:, None]
    wavs = wavs.masked_fill(~valid, 0.0)
    return wavs, (new_lengths.double() / new_width).to(wav_lens.dtype)


# ---------------------------------------------------------------------------
# Audio: SpeechBrain's loading and normalisation, in training and inference
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def audio_normalizer(sample_rate: int = 16000) -> Any:
    """Return SpeechBrain's ``AudioNormalizer`` for a rate, one per process.

    It averages the channels to mono and resamples with cached resamplers
    (``speechbrain.dataio.preprocess.AudioNormalizer``, what
    ``Pretrained.load_audio`` uses).

    Arguments
    ---------
    sample_rate : int
        Rate of the returned signals.

    Returns
    -------
    speechbrain.dataio.preprocess.AudioNormalizer
        The shared normaliser (do not modify it).

    Example
    -------
    >>> audio_normalizer(16000) is audio_normalizer(16000)
    True
    >>> audio_normalizer(16000)(torch.zeros(4800, 2), 48000).shape
    torch.Size([1600])
    """
    from speechbrain.dataio.preprocess import AudioNormalizer

    return AudioNormalizer(sample_rate=int(sample_rate))


def load_audio(
    path: str | os.PathLike,
    sample_rate: int = 16000,
    normalizer: Any = None,
    max_duration: float | None = None,
    min_duration: float = MIN_DURATION,
) -> torch.Tensor:
    """Read an audio file as a mono float32 waveform at ``sample_rate``.

    SpeechBrain's ``Pretrained.load_audio`` for a local file:
    ``speechbrain.dataio.audio_io.load`` (soundfile: any format and rate it
    reads) then ``AudioNormalizer`` (resampling with a cached torchaudio
    resampler when the rate differs, mean of the channels), with one-line
    errors; then the duration policy (:func:`fit_duration`), applied AFTER
    resampling: the result is exactly the first ``round(max_duration *
    sample_rate)`` samples of the uncropped waveform at ``sample_rate``,
    whatever the file's own rate, zero-padded to ``min_duration`` if
    shorter. The recipe reads its training audio (and its feature cache)
    with this function and :class:`EmotionRecognizer` its input files, with
    the same ``max_duration``, so both see identical samples; a 16 kHz mono
    file no longer than ``max_duration`` is returned unchanged.

    Arguments
    ---------
    path : str or os.PathLike
        Audio file to read.
    sample_rate : int
        Rate of the returned waveform (ignored when ``normalizer`` is given).
    normalizer : speechbrain.dataio.preprocess.AudioNormalizer, optional
        Normaliser to use (default: :func:`audio_normalizer` of
        ``sample_rate``).
    max_duration : float, optional
        Keep the first ``max_duration`` seconds (None: the whole file).
    min_duration : float
        Zero-pad shorter waveforms to this many seconds (``MIN_DURATION``).

    Returns
    -------
    torch.Tensor
        1-D float32 tensor of samples in [-1, 1] (for integer PCM files).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If soundfile cannot decode the file, or the file holds no samples.

    Example
    -------
    >>> import tempfile, numpy as np, soundfile as sf
    >>> tmp = tempfile.mkdtemp()
    >>> sf.write(f"{tmp}/a.wav", np.zeros((4800, 2), dtype="float32"), 48000)
    >>> sig = load_audio(f"{tmp}/a.wav")
    >>> sig.shape, sig.dtype
    (torch.Size([1600]), torch.float32)
    >>> load_audio(f"{tmp}/a.wav", max_duration=0.08).shape  # first 0.08 s
    torch.Size([1280])
    >>> import shutil; shutil.rmtree(tmp)
    """
    from speechbrain.dataio import audio_io

    if normalizer is None:
        normalizer = audio_normalizer(int(sample_rate))
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Audio file not found (or not a regular file): '{path}'. Check "
            "the path (in a recipe: the 'wav' column of the manifest, which "
            "must hold absolute paths to existing files; re-run data "
            "preparation if the corpus moved)."
        )
    try:
        signal, rate = audio_io.load(str(path), channels_first=False)
    except RuntimeError as err:  # audio_io wraps soundfile's errors
        cause = err.__cause__ or err
        raise ValueError(
            f"Could not decode audio file '{path}' ({cause}). Expected a format "
            "that soundfile/libsndfile reads (wav, flac, ogg, ...); convert it "
            "or remove it from the manifest."
        ) from err
    if signal.shape[0] == 0:
        raise ValueError(
            f"Audio file '{path}' holds no samples. Remove it from the manifest "
            "(data preparation should skip empty files)."
        )
    wav = normalizer(signal, rate)
    return fit_duration(wav, int(normalizer.sample_rate), max_duration, min_duration)


def count_non_finite(wavs: torch.Tensor) -> int:
    """Number of NaN or infinite samples.

    Arguments
    ---------
    wavs : torch.Tensor
        Waveform(s), any shape.

    Returns
    -------
    int
        How many samples are not finite.

    Example
    -------
    >>> count_non_finite(torch.tensor([0.1, float("nan"), float("inf")]))
    2
    """
    return int((~torch.isfinite(wavs)).sum())


# ---------------------------------------------------------------------------
# Speaker normalisation (speaker_norm: per_speaker; zsser_modules/speaker_norm.py)
# ---------------------------------------------------------------------------

#: Floor of a standard deviation (an element constant over a speaker's
#: utterances, or a speaker with one utterance, maps to 0, not to inf).
SPEAKER_NORM_EPS: float = 1e-5


class RunningStats:
    """Element-wise mean and standard deviation of tensors, in one pass (float64).

    Example
    -------
    >>> stats = RunningStats()
    >>> for value in ([1.0, 2.0], [3.0, 2.0]):
    ...     stats.add(torch.tensor(value))
    >>> mean, std = stats.result()  # a constant element gets the floor SPEAKER_NORM_EPS
    >>> mean.tolist(), std.tolist() == [1.0, torch.tensor(SPEAKER_NORM_EPS).item()]
    ([2.0, 2.0], True)
    """

    def __init__(self) -> None:
        self.count = 0
        self.total: torch.Tensor | None = None
        self.squares: torch.Tensor | None = None

    def add(self, feats: torch.Tensor) -> None:
        """Add one utterance's features (any shape, the same for every call)."""
        feats = feats.detach().to("cpu", torch.float64)
        if self.total is None:
            self.total = torch.zeros_like(feats)
            self.squares = torch.zeros_like(feats)
        self.total += feats
        self.squares += feats * feats
        self.count += 1

    def result(
        self, eps: float = SPEAKER_NORM_EPS
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)`` as float32 (population std, floored at ``eps``)."""
        if not self.count:
            raise ValueError("RunningStats: no feature was added.")
        mean = self.total / self.count
        var = (self.squares / self.count - mean * mean).clamp_min(0.0)
        return mean.float(), var.sqrt().clamp_min(eps).float()


class SpeakerNorm(torch.nn.Module):
    """Standardise features with one set of statistics: ``(x - mean) / std``.

    The statistics are buffers (saved in the module's state dict). The
    recipe exports it with the global statistics of the training data; a
    user with several files of one speaker sets theirs with :meth:`fit`.

    Arguments
    ---------
    feature_shape : sequence of int
        Shape of one utterance's features (``[L+1, D]`` or ``[D]``).
    eps : float
        Floor of the standard deviation.

    Example
    -------
    >>> norm = SpeakerNorm([2])
    >>> norm.fit([torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.0])])
    >>> norm(torch.tensor([[3.0, 0.0]])).tolist()
    [[1.0, 0.0]]
    """

    def __init__(self, feature_shape: Sequence[int], eps: float = SPEAKER_NORM_EPS):
        super().__init__()
        self.feature_shape = [int(size) for size in feature_shape]
        self.eps = float(eps)
        self.register_buffer("mean", torch.zeros(self.feature_shape))
        self.register_buffer("std", torch.ones(self.feature_shape))

    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Use these statistics (shape ``feature_shape``)."""
        for name, value in (("mean", mean), ("std", std)):
            if list(value.shape) != self.feature_shape:
                raise ValueError(
                    f"SpeakerNorm: {name} has shape {list(value.shape)}, expected "
                    f"{self.feature_shape}."
                )
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(self.eps))

    def fit(self, features: Iterable[torch.Tensor]) -> None:
        """Set the statistics of these utterances' features (e.g. one speaker's)."""
        stats = RunningStats()
        for feats in features:
            stats.add(feats)
        self.set_statistics(*stats.result(self.eps))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Standardise ``feats`` ``[batch, *feature_shape]`` (or one utterance)."""
        return (feats - self.mean) / self.std


# ---------------------------------------------------------------------------
# The pretrained interface
# ---------------------------------------------------------------------------

#: Module names of the encoder, in forward order, per encoder type.
ENCODER_MODULES: dict[str, tuple[str, ...]] = {
    "ssl": ("ssl", "layer_sum"),
    "whisper": ("whisper", "layer_sum"),
    "fbank": ("fbank",),
    "fbank_stats": ("fbank_stats",),
}
#: Optional module on the encoder's output: a :class:`SpeakerNorm` holding the
#: training data's global feature statistics (``speaker_norm: per_speaker``).
SPEAKER_NORM_MODULE = "speaker_norm"
#: The heads after the encoder: the shared embedding, the emotion classifier.
HEAD_MODULES: tuple[str, ...] = ("embedding", "emo_classifier")


def model_chain(encoder: str, features: Sequence[str] = ()) -> list[str]:
    """Return the modules of the inference model in forward order.

    Arguments
    ---------
    encoder : str
        Key of ``ENCODER_MODULES``.
    features : sequence of str
        Modules applied to the encoder's output (tensor in, tensor out),
        e.g. a normalisation of the frozen features (``speaker_norm``): they
        come right after the encoder's first module, before a learned layer
        weighting, as the recipe applies them to the cached features.

    Returns
    -------
    list of str
        The encoder's first module, ``features``, its other modules, then
        ``HEAD_MODULES``.

    Example
    -------
    >>> model_chain("ssl")
    ['ssl', 'layer_sum', 'embedding', 'emo_classifier']
    >>> model_chain("fbank_stats", ["speaker_norm"])
    ['fbank_stats', 'speaker_norm', 'embedding', 'emo_classifier']
    >>> model_chain("whisper", ["speaker_norm"])
    ['whisper', 'speaker_norm', 'layer_sum', 'embedding', 'emo_classifier']
    """
    if encoder not in ENCODER_MODULES:
        raise ValueError(
            f"encoder must be one of {sorted(ENCODER_MODULES)}, got {encoder!r}."
        )
    first, *rest = ENCODER_MODULES[encoder]
    return [first, *features, *rest, *HEAD_MODULES]


class EmotionRecognizer(Pretrained):
    """Classify the emotion of utterances with a model exported by the recipe.

    The model runs the modules of ``hparams.model_chain`` in order (the
    encoder on the waveforms, then tensor to tensor: e.g. ``fbank_stats ->
    embedding -> emo_classifier``); the output is the log-softmax of the
    emotion classifier, as in training (``log_softmax`` + NLL). Audio files
    are read with :func:`load_audio` (SpeechBrain's ``audio_io.load`` and
    the ``audio_normalizer`` of ``hyperparams.yaml``: mono mix, resampled to
    ``sample_rate``), the function the recipe trains with, and cut to the
    training run's ``max_duration`` (``hyperparams.yaml``; a folder without
    it: no crop): the first ``max_duration`` seconds, zero-padded to
    ``MIN_DURATION`` if shorter. Waveforms given to :meth:`classify_batch`
    and :meth:`encode_batch` get the same policy, row by row.

    Outputs of :meth:`classify_batch` and :meth:`classify_file` follow
    SpeechBrain's ``EncoderClassifier``:

    - ``out_prob``: tensor [batch, n_emotions], log-probabilities (their
      ``exp()`` sums to 1), columns in the order of the label encoder;
    - ``score``: tensor [batch], the log-probability of the predicted emotion;
    - ``index``: tensor [batch], the index of the predicted emotion;
    - ``text_lab``: list of the predicted emotion names.

    Load an exported folder with :meth:`from_hparams` or, without the
    project installed, with ``foreign_class(source=<folder>,
    pymodule_file="custom_interface.py", classname="EmotionRecognizer")``.

    Arguments
    ---------
    *args, **kwargs
        See ``speechbrain.inference.interfaces.Pretrained``.
    """

    HPARAMS_NEEDED = ["encoder", "sample_rate", "emotions", "label_encoder"]
    MODULES_NEEDED = list(HEAD_MODULES)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        encoder = self.hparams.encoder
        chain = getattr(self.hparams, "model_chain", None)
        self.chain = list(chain) if chain else model_chain(encoder)
        missing = [name for name in self.chain if name not in self.mods]
        if missing:
            raise ValueError(
                f"hyperparams.yaml: model_chain {self.chain} names modules "
                f"{missing} that are not in `modules`."
            )
        encoder_modules = ENCODER_MODULES.get(encoder)
        if (
            encoder_modules is None
            or self.chain[0] != encoder_modules[0]
            or not set(encoder_modules) <= set(self.chain)
        ):
            raise ValueError(
                f"hyperparams.yaml: encoder must be one of {sorted(ENCODER_MODULES)} "
                f"and model_chain must start with its modules; got {encoder!r} "
                f"and {self.chain}."
            )
        labels = self.hparams.label_encoder
        labels.expect_len(len(labels))  # read from label_encoder.txt
        decoded = [labels.ind2lab[i] for i in range(len(labels))]
        if decoded != list(self.hparams.emotions):
            raise ValueError(
                f"hyperparams.yaml: label_encoder.txt holds {decoded}, but "
                f"`emotions` says {list(self.hparams.emotions)}; the files do "
                "not belong together (export the model again)."
            )

    @classmethod
    def from_hparams(cls, source: Any, *args: Any, **kwargs: Any) -> Any:
        """Load an exported model folder (local folder or hub repository).

        As ``Pretrained.from_hparams``; while ``hyperparams.yaml`` is read,
        ``source`` is where :func:`model_file` looks first, and the name
        ``custom_interface`` (the module the exported file names its classes
        with) means this very module, so that a project that ships this file
        under another name builds its own classes.

        Arguments
        ---------
        source : str or os.PathLike
            The exported folder, or a hub repository id.
        *args : tuple
            As ``Pretrained.from_hparams``.
        **kwargs : dict
            As ``Pretrained.from_hparams`` (``savedir``, ``run_opts``, ...).

        Returns
        -------
        EmotionRecognizer
            The loaded recognizer.
        """
        this = sys.modules.get(__name__)  # None if loaded by file path
        name = Path(INTERFACE_FILE).stem
        previous = sys.modules.get(name)
        if this is not None:
            sys.modules[name] = this
        _LOADING.append(
            str(Path(source).absolute()) if Path(str(source)).is_dir() else str(source)
        )
        try:
            return super().from_hparams(source, *args, **kwargs)
        finally:
            _LOADING.pop()
            if this is not None and previous is None:
                sys.modules.pop(name, None)
            elif this is not None:
                sys.modules[name] = previous

    @property
    def emotions(self) -> list[str]:
        """The emotion names, in the column order of ``out_prob``."""
        return list(self.hparams.emotions)

    @property
    def max_duration(self) -> float | None:
        """Seconds of each clip the model sees (the training run's; None: all)."""
        return check_max_duration(getattr(self.hparams, "max_duration", None))

    def fit_batch(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The duration policy of training, applied to a batch of waveforms.

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms [batch, time] at ``hparams.sample_rate``, right-padded.
        wav_lens : torch.Tensor, optional
            Relative lengths [batch]. Default: all 1.

        Returns
        -------
        tuple of torch.Tensor
            The waveforms and relative lengths, each row cut to
            :attr:`max_duration` and padded to ``MIN_DURATION``
            (:func:`fit_batch_duration`).
        """
        return fit_batch_duration(
            wavs, wav_lens, int(self.hparams.sample_rate), self.max_duration
        )

    def load_audio(
        self,
        path: str | os.PathLike,
        savedir: Any = None,
        min_duration: float = MIN_DURATION,
    ):
        """Read a local audio file as this model's input (see :func:`load_audio`).

        Arguments
        ---------
        path : str or os.PathLike
            Audio file (any rate, mono or multi-channel).
        savedir : None
            Unused (``Pretrained.load_audio``'s signature).
        min_duration : float
            Zero-pad shorter clips to this many seconds (``MIN_DURATION``,
            as in training; 0: no padding, e.g. to measure the true length:
            :meth:`classify_batch` pads anyway).

        Returns
        -------
        torch.Tensor
            1-D waveform at ``hparams.sample_rate``: the first
            :attr:`max_duration` seconds of the file.
        """
        return load_audio(
            path,
            normalizer=self.audio_normalizer,
            max_duration=self.max_duration,
            min_duration=min_duration,
        )

    def encode_batch(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Compute the utterance embeddings (the space of the t-SNE figure).

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms [batch, time] (or [time]) at ``hparams.sample_rate``,
            right-padded.
        wav_lens : torch.Tensor, optional
            Relative lengths [batch] (1.0 = longest). Default: all 1.

        Returns
        -------
        torch.Tensor
            Embeddings [batch, emb_dim] (the input of the last module).

        Raises
        ------
        ValueError
            If a waveform holds non-finite samples (never a NaN output).
        """
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        bad = [count_non_finite(row) for row in wavs]
        if any(bad):
            rows = {i: n for i, n in enumerate(bad) if n}
            raise ValueError(
                f"Refused: non-finite samples (NaN or Inf) in the waveforms "
                f"(row: count) {rows}. Expected finite audio; check the file or "
                "the processing that produced it."
            )
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        wavs, wav_lens = self.fit_batch(wavs.float(), wav_lens.float())
        wavs = wavs.to(self.device)
        wav_lens = wav_lens.float().to(self.device)
        with torch.no_grad():
            out = self.mods[self.chain[0]](wavs, wav_lens)
            for name in self.chain[1:-1]:
                out = self.mods[name](out)
            return out

    def encode_features(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The encoder's output (before any speaker normalisation), no autograd.

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms [batch, time] at ``hparams.sample_rate``.
        wav_lens : torch.Tensor, optional
            Relative lengths [batch]. Default: all 1.

        Returns
        -------
        torch.Tensor
            The first module's output (e.g. pooled layers [batch, L+1, D]).
        """
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        wavs, wav_lens = self.fit_batch(wavs.float(), wav_lens.float())
        with torch.no_grad():
            return self.mods[self.chain[0]](
                wavs.to(self.device), wav_lens.float().to(self.device)
            )

    @property
    def speaker_normalized(self) -> bool:
        """Whether the model was trained on speaker-normalised features."""
        return SPEAKER_NORM_MODULE in self.chain

    def set_speaker_files(self, paths: Sequence[str | os.PathLike]) -> None:
        """Normalise with the statistics of these files, taken as one speaker.

        For a model trained with ``speaker_norm: per_speaker`` only: its
        exported statistics (the training data's, all speakers pooled) are
        replaced by the element-wise mean and std of these files' encoder
        features, as the recipe does for every speaker of every split. Reload
        the model to go back to the exported statistics.

        Arguments
        ---------
        paths : sequence of path-like
            Audio files of one speaker (the more, the closer to training).
        """
        if not self.speaker_normalized:
            raise ValueError(
                "This model was trained without speaker normalisation "
                "(speaker_norm: none): there are no speaker statistics to set."
            )
        self.mods[SPEAKER_NORM_MODULE].fit(
            self.encode_features(self.load_audio(path)[None])[0].cpu() for path in paths
        )
        self.mods[SPEAKER_NORM_MODULE].to(self.device)

    def classify_batch(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        """Classify a batch of waveforms.

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms [batch, time] (or [time]) at ``hparams.sample_rate``.
        wav_lens : torch.Tensor, optional
            Relative lengths [batch]. Default: all 1.

        Returns
        -------
        out_prob : torch.Tensor
            Emotion log-probabilities [batch, n_emotions].
        score : torch.Tensor
            Log-probability of the predicted emotion [batch].
        index : torch.Tensor
            Index of the predicted emotion [batch].
        text_lab : list of str
            Predicted emotion names.
        """
        emb = self.encode_batch(wavs, wav_lens)
        with torch.no_grad():
            logits = self.mods[self.chain[-1]](emb)
            out_prob = torch.log_softmax(logits.float(), dim=-1)
        score, index = torch.max(out_prob, dim=-1)
        text_lab = self.hparams.label_encoder.decode_torch(index)
        return out_prob, score, index, text_lab

    def classify_file(
        self, path: str | os.PathLike
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        """Classify one audio file (any rate, mono or multi-channel).

        Arguments
        ---------
        path : str or os.PathLike
            Audio file readable by soundfile (wav, flac, ogg, ...).

        Returns
        -------
        tuple
            ``(out_prob, score, index, text_lab)`` for a batch of one, as in
            :meth:`classify_batch`.
        """
        wav = self.load_audio(path)
        return self.classify_batch(wav.unsqueeze(0), torch.ones(1))

    def forward(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        """Same as :meth:`classify_batch`."""
        return self.classify_batch(wavs, wav_lens)
