"""Domain-adversarial training pieces: gradient reversal and an adversarial classifier.

A gradient reversal layer (GRL, Ganin et al., 2016) is the identity in the
forward pass and multiplies the gradient by ``-lambda`` in the backward pass.
Placed between an encoder and a classifier of a nuisance attribute (speaker,
language), it trains the classifier to predict the attribute while pushing the
encoder to remove it from the representation.

Naming: this ``lambda`` (``lambda_`` in the code) is the **reversal
coefficient**. It is not the SupCon cross-lingual weight, which the paper also
calls lambda (``SupConLoss(cross_lingual_weight=...)``). Its DANN schedule is
:func:`dann_lambda`; ``zsser_modules.added_modules.AddedModulesMixin`` drives
it from a Brain's training progress.

Under DDP a Brain's modules are wrapped in ``DistributedDataParallel``, which
has neither ``set_lambda`` nor ``loss``: :func:`set_reversal_coefficient` and
:func:`adversary_loss` take a wrapped module or a plain one alike.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn as nn
import torch.nn.functional as F


def _check_lambda(value) -> float:
    """Return ``value`` as a float after checking it is finite and >= 0."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"lambda_ must be a real number, got {value!r} ({type(value).__name__})."
        ) from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(
            f"lambda_ must be a finite number >= 0 (0 disables the reversed "
            f"gradient, 1 is the plain reversal), got {value!r}."
        )
    return value


class _GradientReversalFunction(torch.autograd.Function):
    """Identity forward, gradient times ``-lambda_`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambda_: float) -> torch.Tensor:
        ctx.lambda_ = lambda_
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output.neg() * ctx.lambda_, None


def grad_reverse(x: torch.Tensor, lambda_: float = 1.0) -> torch.Tensor:
    """Apply gradient reversal: identity forward, gradient times ``-lambda_``.

    Arguments
    ---------
    x : torch.Tensor
        Any tensor.
    lambda_ : float
        Scale (>= 0) of the reversed gradient.

    Returns
    -------
    torch.Tensor
        ``x`` unchanged in value; the gradient flowing back through it is
        multiplied by ``-lambda_``.

    Example
    -------
    >>> import torch
    >>> x = torch.ones(3, requires_grad=True)
    >>> grad_reverse(x, lambda_=0.5).sum().backward()
    >>> x.grad
    tensor([-0.5000, -0.5000, -0.5000])
    """
    return _GradientReversalFunction.apply(x, _check_lambda(lambda_))


class GradientReversal(nn.Module):
    """Gradient reversal layer (Ganin et al., 2016) as a module.

    The scale ``lambda_`` (the reversal coefficient) can be changed at any
    time, e.g. at every step from :func:`dann_lambda`: set the ``lambda_``
    attribute or call :meth:`set_lambda` (or :func:`set_reversal_coefficient`
    on a DDP-wrapped module); the next forward pass uses the new value. It is
    a plain attribute, not a buffer: it is not saved in checkpoints, recompute
    it from the training progress after resuming (``AddedModulesMixin`` does).

    Arguments
    ---------
    lambda_ : float
        Scale (>= 0) of the reversed gradient.

    Example
    -------
    >>> import torch
    >>> grl = GradientReversal(lambda_=2.0)
    >>> x = torch.ones(2, requires_grad=True)
    >>> y = grl(x)
    >>> torch.equal(y, x)
    True
    >>> y.sum().backward()
    >>> x.grad
    tensor([-2., -2.])
    >>> grl.set_lambda(0.0)
    >>> grl
    GradientReversal(lambda_=0.0)
    """

    def __init__(self, lambda_: float = 1.0):
        super().__init__()
        self.lambda_ = lambda_

    @property
    def lambda_(self) -> float:
        """The current scale of the reversed gradient."""
        return self._lambda

    @lambda_.setter
    def lambda_(self, value: float) -> None:
        self._lambda = _check_lambda(value)

    def set_lambda(self, value: float) -> None:
        """Set the scale of the reversed gradient (used from the next backward).

        Arguments
        ---------
        value : float
            New scale, >= 0.
        """
        self.lambda_ = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` (identity); its gradient is reversed and scaled.

        Arguments
        ---------
        x : torch.Tensor
            Any tensor.

        Returns
        -------
        torch.Tensor
            ``x`` unchanged in value.
        """
        return _GradientReversalFunction.apply(x, self._lambda)

    def extra_repr(self) -> str:
        """Show lambda when the module is printed."""
        return f"lambda_={self._lambda}"


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """DANN schedule of the reversal coefficient (Ganin et al., 2016).

    ``lambda = 2 / (1 + exp(-gamma * progress)) - 1`` grows smoothly from 0 at
    the start of training to about 1 at the end, so the adversary's noisy
    early gradients do not disturb the encoder.

    Arguments
    ---------
    progress : float
        Training progress in [0, 1], e.g. ``step / total_steps``. Values
        above 1 (training continued past the planned length, e.g. after
        resuming with more epochs) are clipped to 1; negative or non-finite
        values raise a ValueError.
    gamma : float
        Steepness (> 0); 10 in the DANN paper.

    Returns
    -------
    float
        The scale in [0, 1): 0 at progress 0, 0.99991 at progress 1 with
        ``gamma=10``. Multiply it by a maximum value if you want another
        ceiling.

    Example
    -------
    >>> dann_lambda(0.0)
    0.0
    >>> round(dann_lambda(1.0), 4)
    0.9999
    >>> dann_lambda(0.25) < dann_lambda(0.5)
    True
    """
    progress = float(progress)
    if not math.isfinite(progress) or progress < 0:
        raise ValueError(
            f"dann_lambda: progress must be a finite number in [0, 1] "
            f"(e.g. step / total_steps), got {progress!r}."
        )
    if not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"dann_lambda: gamma must be finite and > 0, got {gamma!r}.")
    progress = min(progress, 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


def adversarial_loss(
    logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100
) -> torch.Tensor:
    """Cross-entropy of an adversary, averaged over the non-ignored samples.

    The reduction behind :meth:`AdversarialClassifier.loss`, usable on logits
    already computed (e.g. by a DDP-wrapped adversary, whose wrapper has no
    ``loss`` method).

    Arguments
    ---------
    logits : torch.Tensor
        Adversary logits [..., n_classes] (already through the gradient
        reversal layer).
    targets : torch.Tensor
        Integer class indices with the leading shape of ``logits`` (e.g.
        [batch] or [batch, 1]); ``ignore_index`` marks samples that must not
        train the adversary (e.g. speakers confounded with emotion).
    ignore_index : int
        Target value of the samples to leave out.

    Returns
    -------
    torch.Tensor
        Scalar float32 loss. If every target is ignored it is a 0 connected to
        the graph (zero gradient, not NaN).

    Example
    -------
    >>> logits = torch.zeros(3, 4, requires_grad=True)
    >>> loss = adversarial_loss(logits, torch.tensor([1, -100, 2]))
    >>> round(float(loss), 4)  # log(4): uniform logits, two kept samples
    1.3863
    >>> float(adversarial_loss(logits, torch.tensor([-100, -100, -100])))
    0.0
    """
    n_classes = logits.shape[-1]
    logits = logits.reshape(-1, n_classes)
    if not isinstance(targets, torch.Tensor):
        targets = torch.as_tensor(targets)
    if targets.is_floating_point() or targets.is_complex():
        raise TypeError(
            "adversarial_loss: targets must be integer class indices, got "
            f"dtype {targets.dtype}."
        )
    if targets.numel() != logits.shape[0]:
        raise ValueError(
            "adversarial_loss: expected one target per embedding (row of logits, "
            f"{logits.shape[0]}), got targets of shape {tuple(targets.shape)}."
        )
    targets = targets.reshape(-1).to(device=logits.device, dtype=torch.long)
    kept = targets != ignore_index
    out_of_range = kept & ((targets < 0) | (targets >= n_classes))
    if bool(out_of_range.any()):
        bad = sorted(set(targets[out_of_range].tolist()))
        raise ValueError(
            f"adversarial_loss: targets {bad} are outside [0, {n_classes}) and "
            f"differ from ignore_index={ignore_index}. Check the adversary's "
            "n_classes against the label encoder."
        )
    summed = F.cross_entropy(
        logits.float(), targets, ignore_index=ignore_index, reduction="sum"
    )
    return summed / kept.sum().clamp(min=1)


#: Hidden-layer activations of :class:`AdversarialClassifier`.
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU}


class AdversarialClassifier(nn.Module):
    """A classifier trained adversarially through a gradient reversal layer.

    ``x -> GradientReversal -> [Linear -> ReLU -> Dropout] * n_layers ->
    Linear -> logits`` (with the defaults: the paper's speaker head, GRL ->
    Linear -> ReLU -> Dropout -> Linear). Its cross-entropy loss trains the
    MLP to predict the nuisance attribute (speaker or language) and, through
    the reversed gradient, trains the encoder that produced ``x`` to make that attribute
    unpredictable. Add ``loss(x, targets)`` to the task loss; no separate
    optimizer or sign flip is needed.

    Samples whose target equals ``ignore_index`` do not train it, and get
    no gradient from it: use this for speakers whose identity is confounded
    with emotion (e.g. a speaker recorded in a single emotion), for whom
    removing speaker information would also remove emotion information.

    Arguments
    ---------
    input_size : int
        Size of the last dimension of the input.
    n_classes : int
        Number of classes of the adversarial task (e.g. training speakers).
    hidden_size : int
        Width of the hidden layers.
    n_layers : int
        Number of hidden layers (0 gives a linear classifier).
    dropout : float
        Dropout probability after each hidden layer.
    activation : str
        ``"relu"`` (the paper's) or ``"leaky_relu"`` (this recipe's releases
        before the paper protocol).
    lambda_ : float
        Initial scale of the reversed gradient (see :func:`dann_lambda`).
    ignore_index : int
        Target value of samples that must not train the adversary.

    Example
    -------
    >>> import torch
    >>> adversary = AdversarialClassifier(input_size=16, n_classes=5)
    >>> x = torch.randn(4, 16, requires_grad=True)
    >>> adversary(x).shape
    torch.Size([4, 5])
    >>> speakers = torch.tensor([0, 3, 4, 1])
    >>> confounded = torch.tensor([False, True, False, False])
    >>> targets = speakers.masked_fill(confounded, adversary.ignore_index)
    >>> loss = adversary.loss(x, targets)
    >>> loss.backward()
    >>> x.grad[1].abs().sum().item()
    0.0
    >>> adversary.set_lambda(0.3)
    >>> adversary.lambda_
    0.3
    """

    def __init__(
        self,
        input_size: int,
        n_classes: int,
        hidden_size: int = 256,
        n_layers: int = 1,
        dropout: float = 0.1,
        activation: str = "relu",
        lambda_: float = 1.0,
        ignore_index: int = -100,
    ):
        super().__init__()
        for name, value, minimum in (
            ("input_size", input_size, 1),
            ("n_classes", n_classes, 1),
            ("hidden_size", hidden_size, 1),
            ("n_layers", n_layers, 0),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Integral)
                or value < minimum
            ):
                raise ValueError(
                    f"AdversarialClassifier: {name} must be an integer >= "
                    f"{minimum}, got {value!r}."
                )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"AdversarialClassifier: dropout must be in [0, 1), got {dropout!r}."
            )
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"AdversarialClassifier: activation must be one of "
                f"{sorted(ACTIVATIONS)}, got {activation!r}."
            )
        if 0 <= ignore_index < n_classes:
            raise ValueError(
                f"AdversarialClassifier: ignore_index={ignore_index} is a valid "
                f"class index (n_classes={n_classes}); use a negative value such "
                "as -100."
            )
        self.n_classes = int(n_classes)
        self.ignore_index = int(ignore_index)
        self.grl = GradientReversal(lambda_)
        layers: list[nn.Module] = []
        size = int(input_size)
        hidden_size = int(hidden_size)
        for _ in range(int(n_layers)):
            layers += [
                nn.Linear(size, hidden_size),
                ACTIVATIONS[activation](),
                nn.Dropout(dropout),
            ]
            size = hidden_size
        layers.append(nn.Linear(size, n_classes))
        self.classifier = nn.Sequential(*layers)

    @property
    def lambda_(self) -> float:
        """The current scale of the reversed gradient."""
        return self.grl.lambda_

    @lambda_.setter
    def lambda_(self, value: float) -> None:
        self.grl.lambda_ = value

    def set_lambda(self, value: float) -> None:
        """Set the scale of the reversed gradient (e.g. from :func:`dann_lambda`).

        Arguments
        ---------
        value : float
            New scale, >= 0.
        """
        self.grl.set_lambda(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classify ``x`` through the gradient reversal layer.

        Arguments
        ---------
        x : torch.Tensor
            Embeddings [..., input_size], e.g. [batch, input_size] or
            [batch, 1, input_size].

        Returns
        -------
        torch.Tensor
            Logits [..., n_classes].
        """
        return self.classifier(self.grl(x))

    def loss(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the adversary, averaged over the non-ignored samples.

        Arguments
        ---------
        x : torch.Tensor
            Embeddings [..., input_size].
        targets : torch.Tensor
            Integer class indices with the leading shape of ``x``
            (e.g. [batch] or [batch, 1]); ``ignore_index`` marks samples that
            must not train the adversary.

        Returns
        -------
        torch.Tensor
            Scalar loss. If every target is ignored it is a 0 connected to
            the graph (zero gradient, not NaN).

        Under DDP, ``self.modules.<name>`` is a wrapper without this method,
        and calling the unwrapped module's ``loss`` would bypass the gradient
        synchronisation: use :func:`adversary_loss` there.
        """
        return adversarial_loss(self(x), targets, self.ignore_index)


def unwrap_module(module: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper.

    Read attributes (``ignore_index``, ``n_classes``) through it; do not call
    the unwrapped module's forward in training under DDP: a forward that
    bypasses the wrapper is not synchronised (each process would keep its
    own gradients, silently). :func:`adversary_loss` gets this right.

    Arguments
    ---------
    module : torch.nn.Module
        A module, wrapped or not.

    Returns
    -------
    torch.nn.Module
        The wrapped module (or ``module`` itself when it is not wrapped).

    Example
    -------
    >>> lin = nn.Linear(2, 2)
    >>> unwrap_module(nn.DataParallel(lin)) is lin, unwrap_module(lin) is lin
    (True, True)
    """
    while isinstance(module, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        module = module.module
    return module


def reversal_layers(modules) -> list[GradientReversal]:
    """Every gradient reversal layer inside ``modules`` (wrapped or not), once.

    Arguments
    ---------
    modules : torch.nn.Module or mapping of str to torch.nn.Module
        A module (e.g. an ``AdversarialClassifier``, DDP-wrapped or not), a
        ``ModuleDict`` such as ``brain.modules``, or a dict of modules.

    Returns
    -------
    list of GradientReversal
        In traversal order, each layer once.

    Example
    -------
    >>> modules = nn.ModuleDict({"adv": AdversarialClassifier(4, 3),
    ...                          "head": nn.Linear(4, 2)})
    >>> len(reversal_layers(modules))
    1
    """
    roots = modules.values() if hasattr(modules, "values") else [modules]
    found: dict[int, GradientReversal] = {}
    for root in roots:
        if not isinstance(root, nn.Module):
            raise TypeError(
                "reversal_layers: expected torch modules (a module, a ModuleDict "
                f"or a dict of modules), got {type(root).__name__}."
            )
        for module in root.modules():
            if isinstance(module, GradientReversal):
                found.setdefault(id(module), module)
    return list(found.values())


def set_reversal_coefficient(modules, value: float) -> int:
    """Set the reversal coefficient of every gradient reversal layer in ``modules``.

    Works on DDP-wrapped modules (``brain.modules.speaker_adversary`` under
    torchrun has no ``set_lambda``), on ``brain.modules`` as a whole and on
    plain modules.

    Arguments
    ---------
    modules : torch.nn.Module or mapping of str to torch.nn.Module
        Where to look for the layers (see :func:`reversal_layers`).
    value : float
        The coefficient (>= 0), e.g. from :func:`dann_lambda`.

    Returns
    -------
    int
        The number of layers set.

    Example
    -------
    >>> adversary = AdversarialClassifier(4, 3)
    >>> set_reversal_coefficient(nn.ModuleDict({"adv": adversary}), 0.25)
    1
    >>> adversary.lambda_
    0.25
    """
    layers = reversal_layers(modules)
    if not layers:
        raise ValueError(
            "set_reversal_coefficient: no GradientReversal layer in the given "
            "modules; pass the adversary (or brain.modules) that holds one."
        )
    value = _check_lambda(value)
    for layer in layers:
        layer.lambda_ = value
    return len(layers)


def adversary_loss(
    adversary: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    ignore: torch.Tensor | None = None,
) -> torch.Tensor:
    """:meth:`AdversarialClassifier.loss` for a module that may be DDP-wrapped.

    The forward pass goes through ``adversary`` as given, so that under DDP
    the wrapper synchronises the adversary's gradients across processes;
    ``ignore_index`` is read from the wrapped classifier.

    Arguments
    ---------
    adversary : torch.nn.Module
        An :class:`AdversarialClassifier`, or a ``DistributedDataParallel`` /
        ``DataParallel`` wrapping one (``self.modules.speaker_adversary``).
    x : torch.Tensor
        Embeddings [..., input_size].
    targets : torch.Tensor
        Integer class indices with the leading shape of ``x`` (e.g. [batch]
        or [batch, 1]).
    ignore : torch.Tensor, optional
        Bool tensor, one value per target: True marks a sample that must not
        train the adversary (e.g. ``batch.confounded`` from
        ``zsser_modules.dataio.flag_pipeline``).

    Returns
    -------
    torch.Tensor
        Scalar loss, averaged over the kept samples (0 connected to the graph
        if none is kept).

    Example
    -------
    >>> adversary = AdversarialClassifier(input_size=4, n_classes=3)
    >>> x = torch.randn(3, 4, requires_grad=True)
    >>> loss = adversary_loss(adversary, x, torch.tensor([0, 2, 1]),
    ...                       ignore=torch.tensor([False, True, False]))
    >>> loss.backward()
    >>> x.grad[1].abs().sum().item()
    0.0
    """
    inner = unwrap_module(adversary)
    if not isinstance(inner, AdversarialClassifier):
        raise TypeError(
            "adversary_loss: expected an AdversarialClassifier (DDP-wrapped or "
            f"not), got {type(inner).__name__}; for other adversaries compute "
            "the logits and call adversarial_loss(logits, targets, ignore_index)."
        )
    if not isinstance(targets, torch.Tensor):
        targets = torch.as_tensor(targets)
    if ignore is not None:
        if not isinstance(ignore, torch.Tensor) or ignore.dtype != torch.bool:
            found = getattr(ignore, "dtype", type(ignore).__name__)
            raise TypeError(
                "adversary_loss: ignore must be a bool tensor (one value per "
                f"target), got {found}; parse a manifest column such as "
                "spk_confounded with zsser_modules.flag_pipeline."
            )
        if ignore.numel() != targets.numel():
            raise ValueError(
                f"adversary_loss: ignore has {ignore.numel()} values for "
                f"{targets.numel()} targets; give one per sample."
            )
        targets = targets.reshape(-1).masked_fill(
            ignore.reshape(-1).to(targets.device), inner.ignore_index
        )
    return adversarial_loss(adversary(x), targets, inner.ignore_index)
