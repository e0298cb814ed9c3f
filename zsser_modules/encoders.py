"""Utterance encoders: a frozen SSL model with per-layer masked pooling, a
trainable filterbank ECAPA-TDNN encoder and frozen filterbank statistics.

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

Frozen filterbank path (no download, the built-in demo): ``FbankStatsEncoder``
= mean and standard deviation of log mel filterbanks (and deltas) over the
valid frames; like the frozen SSL path, only the heads above it are trained.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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
    save_path : str
        Download/cache folder used by SpeechBrain's wrapper.
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
        save_path: str,
        freeze: bool = True,
        hub_class: str = "auto",
        layers: Sequence[int] | None = None,
        batch_mode: str = "auto",
        normalize_layers: bool = False,
        freeze_feature_extractor: bool = False,
        precision: str = "fp32",
    ):
        super().__init__()
        self.precision = check_precision(precision)
        source, save_path = str(source), str(save_path)
        if hub_class == "auto":
            from transformers import AutoConfig

            hub_class = AutoConfig.from_pretrained(
                source, cache_dir=save_path
            ).model_type
        wrapper_cls = _import_wrapper(hub_class)
        self.ssl = wrapper_cls(
            source=source,
            save_path=save_path,
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

        n_hidden = config.num_hidden_layers + 1
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
        self.layers = tuple(kept)
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
        precision = (
            encoder_precision(self.precision, wavs.device)
            if self.freeze
            else contextlib.nullcontext()
        )
        with (
            precision,
            torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze),
        ):
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
