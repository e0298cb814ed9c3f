"""Adding the paper's modules to a SpeechBrain recipe, without a silent trap.

A host recipe (the toolkit's IEMOCAP one, say) that adds a projection head for
the supervised contrastive loss and a speaker adversary must get right what
SpeechBrain does not check:

* **every added module is optimised and checkpointed.** ``Brain.init_optimizers``
  is the host's: IEMOCAP's optimises ``hparams.model`` only, so modules added
  to ``modules`` would never train, and the reversed gradient of a random,
  frozen adversary would still reach the encoder. :func:`optimize_and_checkpoint`
  adds them to the host's optimizer and checkpointer (call it at the end of
  ``init_optimizers``); :func:`check_optimized_and_checkpointed`, run by
  :class:`AddedModulesMixin` at the start of ``fit``, refuses to train when a
  module with trainable parameters is not optimised or not checkpointed.
* **the reversal coefficient follows its schedule** (DANN's
  ``2 / (1 + exp(-gamma * progress)) - 1``, :func:`dann_lambda`) without the
  user computing steps per epoch: :class:`AddedModulesMixin` records the
  training loader's length where the Brain makes it (``make_dataloader``;
  under DDP the per-process length) and the epoch limit of the epoch counter
  given to ``fit``, and sets the coefficient of every ``GradientReversal`` in
  ``modules`` from ``optimizer_step`` (checkpointed by the Brain, so a resumed
  run continues the schedule exactly). It is called the *reversal
  coefficient* to keep it apart from the SupCon cross-lingual weight, which
  the paper also calls lambda.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import speechbrain as sb
import torch
from torch import nn

from .adversarial import (
    dann_lambda,
    reversal_layers,
    set_reversal_coefficient,
    unwrap_module,
)

logger = logging.getLogger(__name__)


class ModuleSetupError(RuntimeError):
    """An added module would not train, would not be saved, or has no schedule."""


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``module`` that require a gradient."""
    return [p for p in module.parameters() if p.requires_grad]


def _optimizers(brain) -> list[torch.optim.Optimizer]:
    """The Brain's optimizers (``optimizers_dict`` and ``optimizer``), each once."""
    found: list = []
    candidates = list((getattr(brain, "optimizers_dict", None) or {}).values())
    candidates.append(getattr(brain, "optimizer", None))
    for optimizer in candidates:
        if hasattr(optimizer, "param_groups") and not any(
            optimizer is other for other in found
        ):
            found.append(optimizer)
    return found


def _optimized_ids(optimizers: Iterable) -> set[int]:
    """Identities of the parameters in the param groups of ``optimizers``."""
    return {
        id(p)
        for optimizer in optimizers
        for group in optimizer.param_groups
        for p in group["params"]
    }


def _checkpointed_ids(checkpointer) -> set[int]:
    """Identities of the parameters of the checkpointer's module recoverables."""
    return {
        id(p)
        for obj in checkpointer.recoverables.values()
        if isinstance(obj, nn.Module)
        for p in obj.parameters()
    }


def check_optimized_and_checkpointed(brain) -> None:
    """Refuse a Brain whose trainable modules are not all optimised and checkpointed.

    Checks, after ``init_optimizers`` (``AddedModulesMixin`` runs it at the
    start of ``fit``):

    * every trainable parameter of every module in ``brain.modules`` is in a
      param group of one of the Brain's optimizers (``optimizers_dict``,
      ``optimizer``);
    * each of them belongs to a module the checkpointer saves (one of its
      recoverables), and every optimizer that updates them is a recoverable
      too (its state, e.g. Adam's moments, is needed for an exact resume),
      when the Brain has a checkpointer;
    * no module of ``brain.modules`` holds a gradient reversal layer without
      trainable parameters (a frozen adversary, e.g. a random one, would
      send a fixed reversed gradient into the encoder);
    * no hyperparameter outside ``brain.modules`` holds a gradient reversal
      layer with trainable parameters (it would not be moved to the device
      nor wrapped for DDP).

    Arguments
    ---------
    brain : speechbrain.Brain
        After its optimizers are made.

    Raises
    ------
    ModuleSetupError
        One line naming every module at fault and the fix.

    Example
    -------
    >>> from zsser_modules.adversarial import AdversarialClassifier
    >>> brain = sb.Brain(modules={"head": nn.Linear(4, 2),
    ...                           "adversary": AdversarialClassifier(4, 3)},
    ...                  run_opts={"device": "cpu", "noprogressbar": True})
    >>> brain.optimizer = torch.optim.SGD(brain.modules.head.parameters(), lr=0.1)
    >>> check_optimized_and_checkpointed(brain)
    Traceback (most recent call last):
    ...
    zsser_modules.added_modules.ModuleSetupError: 'adversary': 4 of its 4 ...
    >>> adversary = brain.modules.adversary
    >>> brain.optimizer.add_param_group({"params": adversary.parameters()})
    >>> check_optimized_and_checkpointed(brain)  # no checkpointer: not checked
    """
    optimizers = _optimizers(brain)
    optimized = _optimized_ids(optimizers)
    checkpointer = getattr(brain, "checkpointer", None)
    saved = _checkpointed_ids(checkpointer) if checkpointer is not None else None
    problems = []
    in_modules: set[int] = set()
    for name, module in brain.modules.items():
        inner = unwrap_module(module)
        in_modules |= {id(p) for p in inner.parameters()}
        params = _trainable(inner)
        if not params:
            if reversal_layers(inner):
                problems.append(
                    f"{name!r} holds a gradient reversal layer but no trainable "
                    "parameter (a frozen adversary would push a fixed reversed "
                    "gradient into the encoder)"
                )
            continue
        missing = [p for p in params if id(p) not in optimized]
        if missing:
            problems.append(
                f"{name!r}: {len(missing)} of its {len(params)} trainable "
                "parameters are in no optimizer"
            )
        if saved is not None:
            unsaved = [p for p in params if id(p) not in saved]
            if unsaved:
                problems.append(
                    f"{name!r} is not saved by the checkpointer ({len(unsaved)} of "
                    f"its {len(params)} trainable parameters are in none of its "
                    "recoverables)"
                )
    if checkpointer is not None:
        recoverables = list(checkpointer.recoverables.values())
        for optimizer in optimizers:
            holds = _optimized_ids([optimizer]) & in_modules
            if holds and not any(optimizer is obj for obj in recoverables):
                problems.append(
                    f"an optimizer ({type(optimizer).__name__}) updating modules' "
                    "parameters is not saved by the checkpointer (add it as a "
                    "recoverable in init_optimizers)"
                )
    hparams = getattr(getattr(brain, "hparams", None), "__dict__", {})
    for key, value in hparams.items():
        if (
            isinstance(value, nn.Module)
            and reversal_layers(value)
            and any(id(p) not in in_modules for p in _trainable(value))
        ):
            problems.append(
                f"hparams {key!r} holds a gradient reversal layer but is not in "
                "modules (not moved to the device, not wrapped for DDP)"
            )
    if problems:
        raise ModuleSetupError(
            "; ".join(problems)
            + ". Fix: list the module under modules: in the yaml, call "
            "zsser_modules.optimize_and_checkpoint(self, [names]) at the end of "
            "init_optimizers, and requires_grad_(False) on a module meant to stay "
            "frozen (docs/modules.md)."
        )


def optimize_and_checkpoint(
    brain, names: Sequence[str], optimizer: torch.optim.Optimizer | None = None
) -> dict[str, list[str]]:
    """Make sure the named modules are optimised and checkpointed, in any host recipe.

    Call it at the end of the host's ``init_optimizers`` (after its optimizers
    exist, before ``on_fit_start`` recovers the last checkpoint, so that a
    resumed run restores the added modules and their optimizer state too).
    Trainable parameters that no optimizer updates become a new param group of
    ``optimizer`` (default ``brain.optimizer``: they follow its learning-rate
    annealing, and its state is checkpointed with it); a module whose
    parameters no recoverable saves is added to the checkpointer under its name
    in ``modules``. Modules already covered are left as they are, so calling it
    on a host that already optimises everything changes nothing.

    Arguments
    ---------
    brain : speechbrain.Brain
        Inside its ``init_optimizers``.
    names : sequence of str
        Keys of ``brain.modules`` (e.g. ``["projection", "speaker_adversary"]``).
    optimizer : torch.optim.Optimizer, optional
        The optimizer to extend; default ``brain.optimizer``.

    Returns
    -------
    dict
        ``{"optimized": [...], "checkpointed": [...]}``: the names that were
        added to the optimizer, to the checkpointer.

    Example
    -------
    >>> brain = sb.Brain(modules={"model": nn.Linear(4, 2), "extra": nn.Linear(4, 4)},
    ...                  run_opts={"device": "cpu", "noprogressbar": True})
    >>> brain.optimizer = torch.optim.Adam(brain.modules.model.parameters())
    >>> optimize_and_checkpoint(brain, ["model", "extra"])
    {'optimized': ['extra'], 'checkpointed': []}
    >>> len(brain.optimizer.param_groups)
    2
    """
    if isinstance(names, str):
        names = [names]
    if optimizer is None:
        optimizer = getattr(brain, "optimizer", None)
    if not hasattr(optimizer, "add_param_group"):
        raise ModuleSetupError(
            "optimize_and_checkpoint: the Brain has no optimizer yet; call it at "
            "the end of init_optimizers, after self.optimizer is made, or pass "
            "optimizer=."
        )
    optimized = _optimized_ids([*_optimizers(brain), optimizer])
    checkpointer = getattr(brain, "checkpointer", None)
    saved = _checkpointed_ids(checkpointer) if checkpointer is not None else set()
    done: dict[str, list[str]] = {"optimized": [], "checkpointed": []}
    for name in names:
        if name not in brain.modules:
            raise ModuleSetupError(
                f"optimize_and_checkpoint: no module {name!r} in brain.modules "
                f"(it has {sorted(brain.modules.keys())}); list it under modules: "
                "in the yaml."
            )
        module = unwrap_module(brain.modules[name])
        params = _trainable(module)
        missing = [p for p in params if id(p) not in optimized]
        if missing:
            optimizer.add_param_group({"params": missing})
            optimized |= {id(p) for p in missing}
            done["optimized"].append(name)
        if checkpointer is not None and any(id(p) not in saved for p in params):
            taken = checkpointer.recoverables.get(name)
            if taken is not None and unwrap_module(taken) is not module:
                raise ModuleSetupError(
                    f"optimize_and_checkpoint: the checkpointer already has a "
                    f"recoverable named {name!r} that is another object; rename "
                    "the module or add it to the checkpointer's recoverables "
                    "yourself."
                )
            checkpointer.add_recoverable(name, module)
            saved |= {id(p) for p in module.parameters()}
            done["checkpointed"].append(name)
    if done["optimized"] or done["checkpointed"]:
        logger.info(
            "optimize_and_checkpoint: optimised %s, checkpointed %s",
            done["optimized"],
            done["checkpointed"],
        )
    return done


def _loader_length(loader) -> int | None:
    """``len(loader)``, or None for a loader without a length."""
    try:
        return len(loader)
    except TypeError:
        return None


class AddedModulesMixin:
    """``speechbrain.Brain`` mixin for a recipe that adds the paper's modules.

    Put it before ``sb.Brain`` in the bases::

        class EmoIdBrain(AddedModulesMixin, sb.Brain): ...

    At the start of ``fit`` (after ``init_optimizers``) it runs
    :func:`check_optimized_and_checkpointed`. If ``modules`` holds gradient
    reversal layers (an ``AdversarialClassifier``), it sets their reversal
    coefficient to ``dann_lambda(optimizer_step / total_steps,
    reversal_gamma)`` before the first optimizer step and after each one, with
    ``total_steps = (len(train_loader) // grad_accumulation_factor) *
    epoch_counter.limit``: the training loader's length is recorded where the
    Brain makes it (per process under DDP; a loader passed to ``fit`` is
    measured there) and the limit is read from the epoch counter given to
    ``fit``. ``optimizer_step`` is in the Brain's checkpoints, so a resumed
    run continues the schedule exactly. The current value is
    ``self.reversal_coefficient`` (log it with the epoch's statistics).

    It overrides ``make_dataloader``, ``fit``, ``on_fit_start`` and
    ``optimizers_step``, all of which call ``super()``; a host that
    overrides one of them must call ``super()`` too (if ``on_fit_start`` did
    not run, the first optimizer step raises).

    Arguments
    ---------
    *args : tuple
        Positional arguments of ``speechbrain.Brain``.
    reversal_gamma : float
        Steepness of the DANN schedule (10 in the DANN paper).
    **kwargs : dict
        Keyword arguments of ``speechbrain.Brain``.

    Example
    -------
    >>> from speechbrain.utils.epoch_loop import EpochCounter
    >>> from zsser_modules.adversarial import AdversarialClassifier
    >>> class Toy(AddedModulesMixin, sb.Brain):
    ...     def compute_forward(self, batch, stage):
    ...         return self.modules.adversary(batch[0])
    ...     def compute_objectives(self, logits, batch, stage):
    ...         return nn.functional.cross_entropy(logits, batch[1])
    >>> data = torch.utils.data.TensorDataset(torch.randn(8, 4), torch.arange(8) % 3)
    >>> toy = Toy(modules={"adversary": AdversarialClassifier(4, 3)},
    ...           opt_class=lambda p: torch.optim.SGD(p, lr=0.1),
    ...           run_opts={"device": "cpu", "noprogressbar": True})
    >>> toy.fit(EpochCounter(2), data, train_loader_kwargs={"batch_size": 4})
    >>> toy.reversal_total_steps, toy.optimizer_step
    (4, 4)
    >>> toy.reversal_coefficient == dann_lambda(4 / 4)
    True
    """

    def __init__(self, *args, reversal_gamma: float = 10.0, **kwargs):
        dann_lambda(0.0, reversal_gamma)  # validates gamma
        self.reversal_gamma = float(reversal_gamma)
        self.reversal_coefficient: float | None = None
        self.reversal_total_steps: int | None = None
        self._train_loader_length: int | None = None
        self._reversal_epochs = None
        self._reversal_ready = False
        super().__init__(*args, **kwargs)

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **kwargs):
        """``Brain.make_dataloader``; records the training loader's length.

        Arguments
        ---------
        dataset : Dataset
            As for ``speechbrain.Brain.make_dataloader``.
        stage : speechbrain.Stage
            The stage; the length is recorded for ``Stage.TRAIN``.
        ckpt_prefix : str, None
            As for ``speechbrain.Brain.make_dataloader``.
        **kwargs : dict
            Loader options.

        Returns
        -------
        DataLoader
        """
        loader = super().make_dataloader(dataset, stage, ckpt_prefix, **kwargs)
        if stage == sb.Stage.TRAIN:
            self._train_loader_length = _loader_length(loader)
        return loader

    def fit(self, epoch_counter, train_set, *args, **kwargs) -> None:
        """``Brain.fit``; records the epoch limit (and a given loader's length).

        Arguments
        ---------
        epoch_counter : speechbrain.utils.epoch_loop.EpochCounter
            Its ``limit`` is the planned number of epochs.
        train_set : Dataset or DataLoader
            As for ``speechbrain.Brain.fit``.
        *args : tuple
            Further positional arguments of ``speechbrain.Brain.fit``.
        **kwargs : dict
            Keyword arguments of ``speechbrain.Brain.fit``.
        """
        self._reversal_epochs = getattr(epoch_counter, "limit", None)
        if isinstance(
            train_set, (torch.utils.data.DataLoader, sb.dataio.dataloader.LoopedLoader)
        ):
            self._train_loader_length = _loader_length(train_set)
        self._reversal_ready = False
        super().fit(epoch_counter, train_set, *args, **kwargs)

    def on_fit_start(self) -> None:
        """``Brain.on_fit_start`` (optimizers, recovery), then checks and schedule."""
        super().on_fit_start()
        check_optimized_and_checkpointed(self)
        if reversal_layers(self.modules):
            self.reversal_total_steps = self._reversal_plan()
            self._update_reversal_coefficient()
            logger.info(
                "Reversal coefficient: DANN schedule (gamma %s) over %d optimizer "
                "steps; %s at step %d.",
                self.reversal_gamma,
                self.reversal_total_steps,
                self.reversal_coefficient,
                self.optimizer_step,
            )
        self._reversal_ready = True

    def optimizers_step(self) -> None:
        """``Brain.optimizers_step``, then the reversal coefficient of the next step."""
        if not self._reversal_ready:
            raise ModuleSetupError(
                "AddedModulesMixin.on_fit_start did not run before this optimizer "
                "step: train with brain.fit(...), and make an on_fit_start "
                "override call super().on_fit_start()."
            )
        super().optimizers_step()
        if self.reversal_total_steps is not None:
            self._update_reversal_coefficient()

    def reversal_progress(self) -> float:
        """Training progress of the schedule: ``optimizer_step / total_steps``.

        Returns
        -------
        float
            In [0, 1] within the planned training (more after it, e.g. when a
            run is continued with a larger epoch limit: the schedule clips).
        """
        return self.optimizer_step / self.reversal_total_steps

    def _reversal_plan(self) -> int:
        """The planned number of optimizer steps, from the loader and the counter."""
        length, epochs = self._train_loader_length, self._reversal_epochs
        if length is None:
            raise ModuleSetupError(
                "The reversal coefficient's schedule needs the number of training "
                "batches per epoch, but the training loader has no length (an "
                "IterableDataset?); give it a length or drive the coefficient "
                "yourself with set_reversal_coefficient."
            )
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ModuleSetupError(
                "The reversal coefficient's schedule needs the planned number of "
                "epochs: fit() must get an epoch counter with an integer limit "
                f"(speechbrain.utils.epoch_loop.EpochCounter), got limit {epochs!r}."
            )
        per_epoch = length // self.grad_accumulation_factor
        if per_epoch < 1:
            raise ModuleSetupError(
                f"The training loader has {length} batches per epoch, fewer than "
                f"grad_accumulation_factor={self.grad_accumulation_factor}: no "
                "optimizer step would be made."
            )
        return per_epoch * epochs

    def _update_reversal_coefficient(self) -> None:
        """Set every reversal layer's coefficient from the current progress."""
        self.reversal_coefficient = dann_lambda(
            self.reversal_progress(), self.reversal_gamma
        )
        set_reversal_coefficient(self.modules, self.reversal_coefficient)
