"""Parameter-efficient adaptation of a pretrained encoder: LoRA, bottleneck
adapters, both, each branch with an optional learnable gate.

The paper (Sec. 3.3) adapts each source language's own wav2vec 2.0 Base
with LoRA (Hu et al., 2022), bottleneck adapters (Houlsby et al., 2019) and
"weight gating", without details. Our reading (docs/encoders.md,
"Parameter-efficient adaptation"):

* the backbone's weights are frozen (never updated, bitwise unchanged by
  training), its layer drop and SpecAugment-style masking are off;
* **LoRA** on chosen linear projections of every transformer layer that
  feeds a pooled hidden state (default: the attention's query and value
  projections): ``y = W x + s * B A x`` with ``s = alpha / rank``,
  ``A`` random, ``B`` zero (SpeechBrain's ``speechbrain.nnet.adapters.LoRA``);
* **bottleneck adapters** (Houlsby) after the attention's output projection
  and after the feed-forward block's output projection:
  ``y = W x; y + up(act(down(y)))``, with ``up`` zero-initialised
  (SpeechBrain's ``HoulsbyAdapterLinear``, with the two fixes below);
* **gate**: each branch (one LoRA, one adapter) is scaled by its own scalar
  ``sigmoid(g)``, ``g`` learnable and initialised to 0 (a gate of 0.5). The
  branches start at zero (``B = 0``, ``up = 0``), so the adapted model
  equals the pretrained one before the first step, with or without gates; a
  gate starting at 0.5 is where the sigmoid is steepest, so it learns fast
  to open or close its branch.

SpeechBrain's classes are used, subclassed for the gate and for two
measured faults of ``HoulsbyAdapterLinear`` in SpeechBrain 1.1.2: it sets an
attribute ``requires_grad`` on the wrapped *module*, which freezes no
parameter, and its up-projection is randomly initialised, so the adapted
model does not start equal to the pretrained one
(``tests/test_adaptation.py`` pins both facts).

The adapted encoders (:class:`AdaptedSSLLayerPooling`,
:class:`AdaptedWhisperLayerPooling`) are the frozen encoders of
:mod:`zsser_modules.encoders` with adapters inserted. Only the
adapters and gates require gradients; their checkpoints hold only those
tensors (a few hundred kB instead of the whole backbone), and
``load_state_dict`` accepts exactly such an adapter-only state (strictly:
every adapter key, nothing else). Their features change while training, so
they are never feature-cached (``zsser_modules.feature_cache`` refuses
them).

This module imports only the standard library, torch, SpeechBrain and
:mod:`zsser_modules.encoders`, so that an exported model folder carries it
verbatim as ``zsser_adaptation.py`` (``custom_interface.SHIPPED_MODULES``);
there it imports the folder's ``zsser_encoders.py``, as
``custom_interface.py`` imports its companions.

Example
-------
>>> layer = torch.nn.Linear(8, 8)
>>> lora = GatedLoRA(layer, rank=2, alpha=4.0, gate=True)
>>> x = torch.randn(3, 8)
>>> torch.equal(lora(x), layer(x))  # B = 0: the pretrained output at step 0
True
>>> sorted(n for n, p in lora.named_parameters() if p.requires_grad)
['adapter_down_proj.weight', 'adapter_up_proj.weight', 'gate.logit']

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from speechbrain.nnet.activations import Swish
from speechbrain.nnet.adapters import HoulsbyAdapterLinear, LoRA, replace_module
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)
from torch import nn

if __package__:  # zsser_modules.adaptation, in the project
    from zsser_modules.encoders import (
        SSLLayerPooling,
        WhisperLayerPooling,
        masked_mean,
    )
else:  # zsser_adaptation.py of an exported model folder: its companion there
    from zsser_encoders import SSLLayerPooling, WhisperLayerPooling, masked_mean

#: Values of ``encoder_adaptation`` (``none``: the frozen or fully
#: fine-tuned encoder of ``zsser_modules.encoders``, not built here).
ADAPTATIONS: tuple[str, ...] = ("none", "lora", "adapter", "lora+adapter")

#: Where each target sits inside one transformer layer, per model family
#: (Hugging Face module names relative to the layer).
LAYER_TARGETS: dict[str, dict[str, str]] = {
    family: {
        "q": "attention.q_proj",
        "k": "attention.k_proj",
        "v": "attention.v_proj",
        "attn_out": "attention.out_proj",
        "ffn_in": "feed_forward.intermediate_dense",
        "ffn_out": "feed_forward.output_dense",
    }
    for family in ("wav2vec2", "hubert", "wavlm")
}
LAYER_TARGETS["whisper"] = {
    "q": "self_attn.q_proj",
    "k": "self_attn.k_proj",
    "v": "self_attn.v_proj",
    "attn_out": "self_attn.out_proj",
    "ffn_in": "fc1",
    "ffn_out": "fc2",
}
#: Targets whose weights a family's attention reads directly instead of
#: calling the layer: a wrapper there is never called. Hugging Face WavLM
#: passes q/k/v/out weights to ``F.multi_head_attention_forward``.
UNADAPTABLE: dict[str, tuple[str, ...]] = {"wavlm": ("q", "k", "v", "attn_out")}

#: Default targets (ours; docs/encoders.md): LoRA on the query and value
#: projections (the LoRA paper's choice), adapters at Houlsby's two places.
DEFAULT_LORA_TARGETS: tuple[str, ...] = ("q", "v")
DEFAULT_ADAPTER_TARGETS: tuple[str, ...] = ("attn_out", "ffn_out")


class AdaptationError(ValueError):
    """An adaptation setting that cannot work (one line says why and the fix)."""


class Gate(nn.Module):
    """A learnable scalar gate ``sigmoid(logit)``, ``logit`` starting at ``init``.

    Arguments
    ---------
    init : float
        Initial logit (0: a gate of 0.5).

    Example
    -------
    >>> Gate()()
    tensor(0.5000, grad_fn=<SigmoidBackward0>)
    """

    def __init__(self, init: float = 0.0):
        super().__init__()
        self.logit = nn.Parameter(torch.tensor(float(init)))

    def forward(self) -> torch.Tensor:
        """The gate value in (0, 1)."""
        return torch.sigmoid(self.logit)


class GatedLoRA(LoRA):
    """SpeechBrain's ``LoRA`` with an optional scalar gate on its branch.

    ``y = W x + gate * (alpha / rank) * B A x``; the wrapped layer's
    parameters are frozen, ``B`` starts at zero (SpeechBrain's init), so
    the output equals the wrapped layer's until the first update.

    Arguments
    ---------
    target_module : torch.nn.Linear
        The pretrained layer (frozen here).
    rank : int
        Rank of ``B A``.
    alpha : float
        LoRA's scale numerator (scale ``alpha / rank``).
    gate : bool
        Multiply the branch by a learnable ``sigmoid`` gate (starts at 0.5).

    Example
    -------
    >>> lora = GatedLoRA(torch.nn.Linear(4, 6), rank=2, alpha=2.0, gate=False)
    >>> lora(torch.randn(5, 4)).shape, lora.scaling
    (torch.Size([5, 6]), 1.0)
    """

    def __init__(
        self, target_module: nn.Linear, rank: int, alpha: float, gate: bool = True
    ):
        if not isinstance(target_module, nn.Linear):
            raise AdaptationError(
                f"LoRA: expected a torch.nn.Linear to wrap, got "
                f"{type(target_module).__name__}; choose linear targets."
            )
        if int(rank) < 1:
            raise AdaptationError(f"lora_rank must be a whole number >= 1, got {rank}.")
        super().__init__(target_module, rank=int(rank), alpha=float(alpha))
        self.gate = Gate() if gate else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The pretrained output plus the (gated) low-rank branch."""
        branch = self.adapter_up_proj(self.adapter_down_proj(x)) * self.scaling
        if self.gate is not None:
            branch = self.gate() * branch
        return self.pretrained_module(x) + branch


class BottleneckAdapter(HoulsbyAdapterLinear):
    """Houlsby's bottleneck adapter after a linear layer, optionally gated.

    ``y = W x; out = y + gate * up(act(down(y)))``. Built on SpeechBrain's
    ``HoulsbyAdapterLinear``, fixing two things it does in 1.1.2: the
    wrapped layer's parameters are really frozen here (SpeechBrain sets a
    ``requires_grad`` attribute on the module, which freezes nothing), and
    the up-projection starts at zero (SpeechBrain initialises it randomly),
    so the output equals the wrapped layer's until the first update.

    Arguments
    ---------
    target_linear : torch.nn.Linear
        The pretrained layer (frozen here).
    projection_size : int
        Bottleneck width.
    gate : bool
        Multiply the adapter's branch by a learnable ``sigmoid`` gate.
    activation : type
        Non-linearity class of the bottleneck (SpeechBrain's default, Swish).

    Example
    -------
    >>> layer = torch.nn.Linear(4, 6)
    >>> adapter = BottleneckAdapter(layer, 3, gate=False)
    >>> x = torch.randn(5, 4)
    >>> torch.equal(adapter(x), layer(x)), layer.weight.requires_grad
    (True, False)
    """

    def __init__(
        self,
        target_linear: nn.Linear,
        projection_size: int,
        gate: bool = True,
        activation: type = Swish,
    ):
        if not isinstance(target_linear, nn.Linear):
            raise AdaptationError(
                f"bottleneck adapter: expected a torch.nn.Linear to follow, got "
                f"{type(target_linear).__name__}; choose linear targets."
            )
        if int(projection_size) < 1:
            raise AdaptationError(
                f"adapter_size must be a whole number >= 1, got {projection_size}."
            )
        super().__init__(target_linear, int(projection_size), activation=activation)
        self.pretrained_linear.requires_grad_(False)
        nn.init.zeros_(self.adapter_up_proj.weight)
        if self.adapter_up_proj.bias is not None:
            nn.init.zeros_(self.adapter_up_proj.bias)
        self.gate = Gate() if gate else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The pretrained output plus the (gated) bottleneck branch."""
        hidden = self.pretrained_linear(x)
        branch = self.adapter_up_proj(self.activation(self.adapter_down_proj(hidden)))
        if self.gate is not None:
            branch = self.gate() * branch
        return hidden + branch


def check_adaptation(
    adaptation: str,
    lora_targets: Sequence[str] = DEFAULT_LORA_TARGETS,
    adapter_targets: Sequence[str] = DEFAULT_ADAPTER_TARGETS,
    family: str | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validate an adaptation setting; return the LoRA and adapter targets used.

    Arguments
    ---------
    adaptation : str
        ``"lora"``, ``"adapter"`` or ``"lora+adapter"``.
    lora_targets : sequence of str
        Layers that get LoRA, among ``q, k, v, attn_out, ffn_in, ffn_out``.
    adapter_targets : sequence of str
        Layers followed by a bottleneck adapter (same names).
    family : str, optional
        Model family (``wav2vec2``, ``hubert``, ``wavlm``, ``whisper``), to
        refuse targets it cannot adapt.

    Returns
    -------
    tuple
        ``(lora targets, adapter targets)``, empty for a branch not used.

    Example
    -------
    >>> check_adaptation("lora+adapter")
    (('q', 'v'), ('attn_out', 'ffn_out'))
    >>> check_adaptation("adapter", adapter_targets=["ffn_out"], family="wavlm")
    ((), ('ffn_out',))
    """
    if adaptation not in ADAPTATIONS[1:]:
        raise AdaptationError(
            f"encoder_adaptation must be one of {list(ADAPTATIONS)}, got "
            f"{adaptation!r} ('none' builds the plain frozen or fine-tuned encoder)."
        )
    known = tuple(LAYER_TARGETS["wav2vec2"])
    used = {}
    for key, targets, on in (
        ("lora_targets", lora_targets, "lora" in adaptation),
        ("adapter_targets", adapter_targets, "adapter" in adaptation),
    ):
        if isinstance(targets, str):
            targets = [targets]
        targets = tuple(str(t) for t in (targets or ()))
        if not on:
            used[key] = ()
            continue
        bad = [t for t in targets if t not in known]
        if bad or not targets or len(set(targets)) != len(targets):
            raise AdaptationError(
                f"{key} must be distinct names among {list(known)}, got "
                f"{list(targets)}."
            )
        blocked = [t for t in targets if t in UNADAPTABLE.get(family or "", ())]
        if blocked:
            raise AdaptationError(
                f"{key} {blocked} cannot be adapted on {family}: Hugging Face "
                f"{family} reads those weights directly (F.multi_head_attention_"
                "forward), so a wrapper is never called; choose among "
                f"{[t for t in known if t not in UNADAPTABLE[family]]}."
            )
        used[key] = targets
    overlap = sorted(set(used["lora_targets"]) & set(used["adapter_targets"]))
    if overlap:
        raise AdaptationError(
            f"lora_targets and adapter_targets share {overlap}: a layer takes "
            "LoRA or an adapter after it, not both; remove it from one list."
        )
    return used["lora_targets"], used["adapter_targets"]


def insert_adapters(
    layers: nn.ModuleList,
    family: str,
    adaptation: str,
    gate: bool = True,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_targets: Sequence[str] = DEFAULT_LORA_TARGETS,
    adapter_size: int = 64,
    adapter_targets: Sequence[str] = DEFAULT_ADAPTER_TARGETS,
) -> list[str]:
    """Wrap the target layers of each transformer layer in ``layers``.

    The caller freezes the backbone first; the new branches are trainable.

    Arguments
    ---------
    layers : torch.nn.ModuleList
        The transformer layers to adapt.
    family : str
        ``wav2vec2``, ``hubert``, ``wavlm`` or ``whisper``.
    adaptation : str
        ``"lora"``, ``"adapter"`` or ``"lora+adapter"``.
    gate : bool
        A learnable scalar gate on every branch.
    lora_rank : int
        Rank of every LoRA branch.
    lora_alpha : float
        LoRA scale numerator.
    lora_targets : sequence of str
        Layers that get LoRA (see :func:`check_adaptation`).
    adapter_size : int
        Bottleneck width of every adapter.
    adapter_targets : sequence of str
        Layers followed by an adapter.

    Returns
    -------
    list of str
        Names (relative to ``layers``) of the wrapped layers.
    """
    if family not in LAYER_TARGETS:
        raise AdaptationError(
            f"no adaptation targets known for model family {family!r}; known: "
            f"{sorted(LAYER_TARGETS)}."
        )
    lora, adapters = check_adaptation(adaptation, lora_targets, adapter_targets, family)
    wrapped = []
    for index, layer in enumerate(layers):
        for target in lora + adapters:
            name = LAYER_TARGETS[family][target]
            module = layer.get_submodule(name)
            if target in lora:
                new = GatedLoRA(module, lora_rank, lora_alpha, gate=gate)
            else:
                new = BottleneckAdapter(module, adapter_size, gate=gate)
            replace_module(layer, name, new)
            wrapped.append(f"{index}.{name}")
    return wrapped


@register_checkpoint_hooks
class _AdaptedEncoder:
    """What the adapted SSL and Whisper encoders share (a mixin)."""

    is_adapted = True  # zsser_modules.feature_cache refuses such encoders

    def _adapt(
        self, layers: nn.ModuleList, family: str, kept: Sequence[int], **settings: Any
    ) -> None:
        """Freeze everything, insert adapters in the layers feeding ``kept``."""
        self.requires_grad_(False)
        used = max(kept)  # hidden state k is the output of layer k - 1
        if used == 0:
            raise AdaptationError(
                "the encoder keeps only hidden state 0 (before the transformer "
                "layers): there is nothing to adapt; keep a deeper layer."
            )
        self.adapted_layers = insert_adapters(layers[:used], family, **settings)
        self.adaptation = dict(settings)
        self.adaptation["lora_targets"], self.adaptation["adapter_targets"] = (
            check_adaptation(
                settings["adaptation"],
                settings["lora_targets"],
                settings["adapter_targets"],
                family,
            )
        )
        self.adapter_names = tuple(
            name for name, param in self.named_parameters() if param.requires_grad
        )
        self.freeze = False  # forward with autograd, in the Brain's precision
        self.train(self.training)  # the backbone follows the Brain's mode
        self._check_gradients()

    def _check_gradients(self) -> None:
        """One probe pass: every adapter parameter must receive a gradient.

        A wrapper that the model never calls (an architecture reading a
        weight directly) would otherwise train nothing, silently. The
        probe runs in eval mode on a fixed random second of audio, with
        the global random generators untouched.
        """
        was_training = self.training
        self.eval()
        wav = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
        device = next(self.parameters()).device
        with torch.enable_grad():
            self(wav.to(device), torch.ones(1, device=device)).float().sum().backward()
        params = dict(self.named_parameters())
        missing = [name for name in self.adapter_names if params[name].grad is None]
        for param in params.values():
            param.grad = None
        self.train(was_training)
        if missing:
            raise AdaptationError(
                f"{len(missing)} adapter parameter(s) get no gradient (e.g. "
                f"{missing[0]}): this model does not call the adapted layers; "
                "choose other lora_targets / adapter_targets."
            )

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """The adapters' and gates' tensors (what a checkpoint holds).

        Returns
        -------
        dict
            Parameter name -> detached tensor, for every adapter parameter.
        """
        params = dict(self.named_parameters())
        return {name: params[name].detach().clone() for name in self.adapter_names}

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ):
        """Load a full state dict, or exactly the adapter state (checkpoints).

        A mapping whose keys are exactly :attr:`adapter_names` (what
        :meth:`adapter_state_dict` and the checkpoint saver write) loads
        those tensors and leaves the frozen backbone as loaded from its
        source. Any other mapping loads as ``torch.nn.Module`` does; a
        mapping holding some adapter keys only is refused in one line.

        Arguments
        ---------
        state_dict : mapping
            Full, or adapter-only, state.
        strict : bool
            As ``torch.nn.Module.load_state_dict`` (a full state).
        assign : bool
            As ``torch.nn.Module.load_state_dict``.

        Returns
        -------
        NamedTuple
            ``missing_keys`` and ``unexpected_keys`` (empty for an adapter state).
        """
        keys, adapters = set(state_dict), set(self.adapter_names)
        backbone = set(super().state_dict(keep_vars=True)) - adapters
        if keys and not keys & backbone:  # an adapter-only state
            if keys != adapters:
                missing, extra = sorted(adapters - keys), sorted(keys - adapters)
                raise AdaptationError(
                    f"adapter state does not match this encoder's adaptation "
                    f"({self.adaptation['adaptation']}, {len(adapters)} tensors): "
                    f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
                    f"unexpected {extra[:3]}{'...' if len(extra) > 3 else ''}; "
                    "build the encoder with the settings it was trained with."
                )
            result = super().load_state_dict(state_dict, strict=False, assign=assign)
            return result._replace(missing_keys=[])
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @mark_as_saver
    def _save_adapters(self, path) -> None:
        """Checkpoint saver: the adapter tensors only (the backbone is frozen)."""
        torch.save(self.adapter_state_dict(), path)

    @mark_as_loader
    def _load_adapters(self, path, end_of_epoch: bool) -> None:
        """Checkpoint loader: the adapter tensors, strictly."""
        del end_of_epoch
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def feature_settings(self) -> dict[str, Any]:
        """The frozen encoder's settings plus the adaptation (never a cache key).

        Returns
        -------
        dict
            JSON-serialisable settings, with ``adaptation``.
        """
        settings = super().feature_settings()
        settings["adaptation"] = {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in self.adaptation.items()
        }
        return settings


def _adaptation_settings(
    encoder: type,
    kwargs: Mapping[str, Any],
    frozen_keys: Sequence[str],
    **settings: Any,
) -> dict[str, Any]:
    """The adaptation arguments of an adapted encoder, checked and normalised.

    ``kwargs`` (for the frozen encoder ``encoder``) may not set
    ``frozen_keys``: the backbone is always frozen. Lists become tuples, the
    gate a bool, and the setting is checked (:func:`check_adaptation`).
    """
    for key in frozen_keys:
        if key in kwargs:
            raise AdaptationError(
                f"Adapted{encoder.__name__} takes no {key!r}: the backbone is "
                f"always frozen (use {encoder.__name__} to fine-tune it)."
            )
    for key in ("lora_targets", "adapter_targets"):
        value = settings[key]
        settings[key] = (value,) if isinstance(value, str) else tuple(value or ())
    settings["gate"] = bool(settings["gate"])
    check_adaptation(
        settings["adaptation"], settings["lora_targets"], settings["adapter_targets"]
    )
    return settings


class AdaptedSSLLayerPooling(_AdaptedEncoder, SSLLayerPooling):
    """``SSLLayerPooling`` (wav2vec 2.0, HuBERT, WavLM) with LoRA and/or
    bottleneck adapters in its transformer layers, the backbone frozen.

    Every other argument is as ``SSLLayerPooling``'s (the model is loaded
    frozen: its weights never change; layer drop and SpecAugment are off).
    The transformer layers below the highest kept hidden state are adapted.
    The backbone follows the Brain's train/eval mode (its dropout is active
    in training, as in fine-tuning) and its precision (``precision`` is
    ignored, as for a fine-tuned model).

    Arguments
    ---------
    source : str
        Hub id or local model folder.
    adaptation : str
        ``"lora"``, ``"adapter"`` or ``"lora+adapter"``.
    gate : bool
        A learnable scalar gate ``sigmoid(g)`` (``g`` starts at 0) on every branch.
    lora_rank : int
        Rank of every LoRA branch.
    lora_alpha : float
        LoRA scale numerator (scale ``lora_alpha / lora_rank``).
    lora_targets : sequence of str
        Linear layers that get LoRA, among ``q, k, v, attn_out, ffn_in,
        ffn_out`` (WavLM: feed-forward layers only).
    adapter_size : int
        Bottleneck width of every adapter.
    adapter_targets : sequence of str
        Linear layers followed by an adapter (same names; Houlsby:
        ``attn_out`` and ``ffn_out``).
    **kwargs : dict
        ``SSLLayerPooling``'s other arguments (``save_path``, ``hub_class``,
        ``layers``, ``batch_mode``, ``normalize_layers``, ``revision``...).

    Example
    -------
    >>> import tempfile, transformers
    >>> tmp = tempfile.mkdtemp()
    >>> cfg = transformers.Wav2Vec2Config(
    ...     hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
    ...     intermediate_size=32, conv_dim=(8,) * 7, num_conv_pos_embeddings=8,
    ...     num_conv_pos_embedding_groups=2)
    >>> transformers.Wav2Vec2Model(cfg).save_pretrained(f"{tmp}/tiny")
    >>> _ = transformers.Wav2Vec2FeatureExtractor(
    ...     return_attention_mask=True).save_pretrained(f"{tmp}/tiny")
    >>> enc = AdaptedSSLLayerPooling(f"{tmp}/tiny", adaptation="lora+adapter",
    ...     lora_rank=2, adapter_size=4, save_path=f"{tmp}/hf")
    >>> len(enc.adapted_layers), len(enc.adapter_names)
    (8, 32)
    >>> enc(torch.randn(2, 8000), torch.tensor([1.0, 0.6])).shape
    torch.Size([2, 3, 16])

    From cached front-end outputs (each clip's alone; one padded pass):

    >>> from speechbrain.utils.data_utils import batch_pad_right
    >>> fronts = enc.frontend(torch.randn(2, 8000), torch.tensor([1.0, 0.6]))
    >>> [tuple(f.shape) for f in fronts]
    [(24, 8), (14, 8)]
    >>> enc.forward_frontend(*batch_pad_right(fronts)).shape
    torch.Size([2, 3, 16])
    >>> import shutil; shutil.rmtree(tmp)
    """

    def __init__(
        self,
        source: str,
        adaptation: str = "lora+adapter",
        gate: bool = True,
        lora_rank: int = 8,
        lora_alpha: float = 16.0,
        lora_targets: Sequence[str] = DEFAULT_LORA_TARGETS,
        adapter_size: int = 64,
        adapter_targets: Sequence[str] = DEFAULT_ADAPTER_TARGETS,
        **kwargs: Any,
    ):
        settings = _adaptation_settings(
            SSLLayerPooling,
            kwargs,
            ("freeze", "freeze_feature_extractor"),
            adaptation=adaptation,
            gate=gate,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            lora_targets=lora_targets,
            adapter_size=adapter_size,
            adapter_targets=adapter_targets,
        )
        super().__init__(source, freeze=True, **kwargs)
        model = self.ssl.model
        model.config.layerdrop = 0.0
        model.config.apply_spec_augment = False
        # Hugging Face's feature encoder makes its input require grad in
        # training mode unless frozen this way: the backward pass would then
        # run through the whole frozen front-end down to the waveform
        # (measured: about as slow as full fine-tuning on CPU).
        freeze_frontend = getattr(model.feature_extractor, "_freeze_parameters", None)
        if callable(freeze_frontend):
            freeze_frontend()
        self._adapt(model.encoder.layers, self.hub_class, self.layers, **settings)

    def forward(
        self,
        wavs: torch.Tensor,
        wav_lens: torch.Tensor | None = None,
        from_frontend: bool = False,
    ) -> torch.Tensor:
        """Pooled features of waveforms, or of cached front-end outputs.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, T]`` waveforms, or with ``from_frontend`` the ``[B, frames,
            C]`` padded front-end outputs (:meth:`frontend`).
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths.
        from_frontend : bool
            Take cached front-end outputs (:meth:`forward_frontend`). Going
            through ``forward`` keeps DDP's gradient synchronisation (a
            ``DistributedDataParallel`` wrapper calls ``forward`` only).

        Returns
        -------
        torch.Tensor
            ``[B, num_layers, output_size]``.
        """
        if from_frontend:
            return self.forward_frontend(wavs, wav_lens)
        if wavs.dim() != 2:
            raise AdaptationError(
                f"{type(self).__name__}: expected waveforms [B, T], got shape "
                f"{list(wavs.shape)}; pass from_frontend=True for cached "
                "front-end outputs [B, frames, C]."
            )
        return super().forward(wavs, wav_lens)

    # -- cached convolutional front-end (docs/encoders.md, "Speed without
    # the feature cache"): exact for the recipe's batches, measured there.

    def frontend_samples(self, frames: torch.Tensor) -> torch.Tensor:
        """The fewest samples whose front-end output has ``frames`` frames.

        Arguments
        ---------
        frames : torch.Tensor
            ``[B]`` integer numbers of frames (>= 1).

        Returns
        -------
        torch.Tensor
            ``[B]`` numbers of samples: the receptive field plus
            ``frames - 1`` hops of the convolution stack.
        """
        field, hop = 1, 1
        config = self.model.config
        for kernel, stride in zip(config.conv_kernel, config.conv_stride):
            field, hop = field + (int(kernel) - 1) * hop, hop * int(stride)
        return field + (torch.as_tensor(frames).long() - 1) * hop

    def frontend(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """The frozen convolutional front-end's output, each utterance alone.

        Each waveform is trimmed to its length and normalised over its own
        samples, exactly as the encoder's forward pass does in
        ``per_utterance`` mode, then run through the frozen front-end in
        float32 (autocast off), without autograd. The result depends on
        nothing but the utterance's samples (the group norm over time of
        base-sized models included), so it can be cached per utterance
        (:class:`SSLFrontend`) and fed to :meth:`forward_frontend`.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, T]`` waveforms at 16 kHz, right-padded.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths (default: all 1).

        Returns
        -------
        list of torch.Tensor
            ``B`` tensors ``[frames_i, C]`` (C: the last convolution's width).
        """
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0], device=wavs.device)
        total = wavs.shape[1]
        num_samples = torch.round(wav_lens.float() * total).long().clamp(max=total)
        num_samples = self._check_lengths(num_samples.cpu())
        out = []
        with torch.no_grad(), torch.autocast(wavs.device.type, enabled=False):
            for row, count in zip(wavs, num_samples.tolist()):
                wav = row[None, :count].float()
                if self.normalize_wav:  # the same maths as the forward pass
                    mean = wav.sum(1, keepdim=True) / count
                    centred = wav - mean
                    var = centred.square().sum(1, keepdim=True) / count
                    wav = centred / torch.sqrt(var + 1e-5)
                out.append(self.model.feature_extractor(wav)[0].transpose(0, 1))
        return out

    def forward_frontend(
        self, feats: torch.Tensor, feat_lens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Pooled features from cached front-end outputs, in one padded pass.

        The transformer (with its adapters) runs on the right-padded batch
        of :meth:`frontend` outputs with a frame-level attention mask: the
        padded frames are zeroed before the positional convolution and
        masked in attention, so each utterance's result equals its
        per-utterance forward pass up to float rounding (measured: about
        1e-7; docs/encoders.md), for group-norm (base) and layer-norm
        models alike.

        Arguments
        ---------
        feats : torch.Tensor
            ``[B, frames, C]`` front-end outputs, right-padded (as
            SpeechBrain's ``PaddedBatch`` pads cached entries).
        feat_lens : torch.Tensor, optional
            ``[B]`` relative lengths (1.0 = ``frames``; default: all 1).

        Returns
        -------
        torch.Tensor
            ``[B, num_layers, output_size]``, as :meth:`forward`.
        """
        batch, total, width = feats.shape
        if feat_lens is None:
            feat_lens = torch.ones(batch)
        frames = torch.round(feat_lens.float().cpu() * total).long().clamp(max=total)
        if (frames < 1).any() or width != self.model.config.conv_dim[-1]:
            raise AdaptationError(
                f"forward_frontend: expected cached front-end outputs [B, frames, "
                f"{self.model.config.conv_dim[-1]}] with >= 1 frame each, got "
                f"{list(feats.shape)} with {frames.tolist()} frames; cache them "
                "with SSLFrontend of this encoder."
            )
        samples = self.frontend_samples(frames)
        mask = torch.arange(int(samples.max()))[None, :] < samples[:, None]
        mask = mask.long().to(feats.device)
        extractor = self.model.feature_extractor
        cached = feats.transpose(1, 2)
        extractor.forward = lambda _wavs: cached  # skip the convolutions
        try:
            states = self.model(
                mask, attention_mask=mask, output_hidden_states=True
            ).hidden_states
        finally:
            del extractor.forward
        hidden = torch.stack([states[i] for i in self.layers], dim=1)
        if self.normalize_layers:
            hidden = F.layer_norm(hidden, hidden.shape[-1:])
        return masked_mean(hidden, frames.to(hidden.device), dim=2)


class SSLFrontend(nn.Module):
    """The frozen convolutional front-end of an adapted SSL encoder, as an
    encoder whose outputs ``zsser_modules.feature_cache`` may store.

    Its output for an utterance is :meth:`AdaptedSSLLayerPooling.frontend`:
    a function of the utterance's samples alone (each utterance runs alone,
    trimmed), which the adapters never change. Cached with the recipe's
    duration policy in the key (``encoder_cache_key(..., max_duration=)``,
    a deterministic head crop), it is exactly the front-end output the
    encoder would compute in training; :meth:`AdaptedSSLLayerPooling.
    forward_frontend` takes the padded batch of entries. Its state dict is
    the front-end's weights (the cache fingerprint); it has no trainable
    parameter.

    Arguments
    ---------
    encoder : AdaptedSSLLayerPooling
        The adapted encoder whose front-end this is (shared, not copied).
    """

    feature_shape = None  # [frames, C]: the number of frames varies

    def __init__(self, encoder: AdaptedSSLLayerPooling):
        if not isinstance(encoder, AdaptedSSLLayerPooling):
            raise AdaptationError(
                f"SSLFrontend: expected an AdaptedSSLLayerPooling, got "
                f"{type(encoder).__name__} (a frozen encoder caches its pooled "
                "features instead: use_feature_cache)."
            )
        super().__init__()
        self.extractor = encoder.model.feature_extractor
        self._encoder = (encoder,)  # not a submodule: no adapter in the key

    def forward(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """:meth:`AdaptedSSLLayerPooling.frontend` of the batch."""
        return self._encoder[0].frontend(wavs, wav_lens)

    def feature_settings(self) -> dict[str, Any]:
        """What changes the front-end's output besides its weights.

        Returns
        -------
        dict
            JSON-serialisable: source, model family, waveform normalisation,
            the convolution stack and its norm, float32 compute.
        """
        encoder = self._encoder[0]
        config = encoder.model.config
        return {
            "frontend_of": encoder.source,
            "hub_class": encoder.hub_class,
            "normalize_wav": encoder.normalize_wav,
            "conv": [
                list(config.conv_dim),
                list(config.conv_kernel),
                list(config.conv_stride),
                bool(config.conv_bias),
            ],
            "feat_extract_norm": config.feat_extract_norm,
            "batch_mode": "per_utterance",
            "precision": "fp32",
        }


class AdaptedWhisperLayerPooling(_AdaptedEncoder, WhisperLayerPooling):
    """``WhisperLayerPooling`` with LoRA and/or bottleneck adapters in its
    encoder layers, the backbone frozen.

    Arguments as :class:`AdaptedSSLLayerPooling`; the other keyword
    arguments are ``WhisperLayerPooling``'s (``save_path``, ``layers``,
    ``context``, ``batch_mode``, ``normalize_layers``, ``revision``).

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
    >>> enc = AdaptedWhisperLayerPooling(f"{tmp}/tiny", adaptation="lora",
    ...     lora_rank=2, save_path=f"{tmp}/hf")
    >>> enc.adapted_layers  # doctest: +NORMALIZE_WHITESPACE
    ['0.self_attn.q_proj', '0.self_attn.v_proj',
     '1.self_attn.q_proj', '1.self_attn.v_proj']
    >>> import shutil; shutil.rmtree(tmp)
    """

    def __init__(
        self,
        source: str,
        adaptation: str = "lora+adapter",
        gate: bool = True,
        lora_rank: int = 8,
        lora_alpha: float = 16.0,
        lora_targets: Sequence[str] = DEFAULT_LORA_TARGETS,
        adapter_size: int = 64,
        adapter_targets: Sequence[str] = DEFAULT_ADAPTER_TARGETS,
        **kwargs: Any,
    ):
        settings = _adaptation_settings(
            WhisperLayerPooling,
            kwargs,
            ("freeze",),
            adaptation=adaptation,
            gate=gate,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            lora_targets=lora_targets,
            adapter_size=adapter_size,
            adapter_targets=adapter_targets,
        )
        super().__init__(source, freeze=True, **kwargs)
        self.encoder.config.encoder_layerdrop = 0.0
        self._adapt(self.encoder.layers, "whisper", self.layers, **settings)


def is_adapted(module: Any) -> bool:
    """Whether ``module`` is an adapted encoder (never feature-cached).

    Example
    -------
    >>> is_adapted(torch.nn.Linear(2, 2))
    False
    """
    return bool(getattr(module, "is_adapted", False))
