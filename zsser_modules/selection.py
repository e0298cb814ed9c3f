"""Model selection on the validation speakers of the training languages.

The tested model is chosen from the end-of-epoch checkpoints by the criterion
``selection``:

- ``mean_language_uar`` (default): the epoch with the highest mean over the
  training languages of each language's own UAR, so a small language
  (EmoDB, 339 utterances) counts as much as a large one (ESD, 14,000);
- ``pooled_uar``: the epoch with the highest UAR of all validation
  utterances pooled, which on the real corpora is in practice ESD's UAR
  (about 97 % of the validation data for most settings);
- ``last`` (ours): the last epoch, a fixed budget with no validation-based
  choice (the checkpoint meta's ``epoch`` is the criterion).

Every epoch's checkpoint stores every score (and each language's UAR) in its
meta, so ``Checkpointer.find_checkpoint(max_key=selection_key(selection))``
picks the epoch the criterion says.

Options against the noise of small validation sets (all ours):

- ``selection_average: k`` (0: off): the tested model is the parameter
  average of k checkpoints (SpeechBrain's
  ``speechbrain.utils.checkpoints.average_checkpoints`` over every trainable
  module), either the k best epochs under ``selection``
  (``selection_average_of: best``) or the last k epochs
  (``selection_average_of: last``, a fixed budget's tail). The checkpointer
  keeps those k (:func:`retention`); fewer epochs than k average what there
  is. Only the module weights are averaged; everything else (optimizer,
  counters) is that of the first checkpoint of :func:`selected_checkpoints`.
- ``lr_schedule`` (:class:`EpochLRSchedule`): ``newbob`` (SpeechBrain's
  NewBob, steered by the validation loss: the default), ``cosine`` (cosine
  annealing from ``lr`` towards 0 over ``number_of_epochs``, one value per
  epoch) or ``constant``.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from speechbrain.nnet.schedulers import NewBobScheduler
from speechbrain.utils.checkpoints import (
    Checkpoint,
    Checkpointer,
    average_checkpoints,
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

from zsser_modules.choices import check_choice

logger = logging.getLogger(__name__)

#: Values of ``selection``: keys of the checkpoint meta written by
#: :func:`validation_meta`, and ``last`` (the meta's ``epoch``).
SELECTION_CRITERIA = ("mean_language_uar", "pooled_uar", "last")
#: Values of ``selection_average_of``.
AVERAGE_OF = ("best", "last")
#: Values of ``lr_schedule``.
LR_SCHEDULES = ("newbob", "cosine", "constant")


def check_selection(value: str) -> str:
    """Return ``value`` if it is a known selection criterion.

    Example
    -------
    >>> check_selection("pooled_uar")
    'pooled_uar'
    >>> check_selection("uar")
    Traceback (most recent call last):
    ...
    ValueError: selection must be one of ['mean_language_uar', 'pooled_uar', 'last'], got 'uar' (e.g. --selection=pooled_uar).
    """  # noqa: E501
    return check_choice(
        "selection", value, SELECTION_CRITERIA, "e.g. --selection=pooled_uar"
    )


def check_selection_options(
    selection: str, average: Any, average_of: str, lr_schedule: str
) -> None:
    """Refuse, in one line, a bad ``selection``, ``selection_average``,
    ``selection_average_of`` or ``lr_schedule``.

    Example
    -------
    >>> check_selection_options("last", 3, "best", "cosine")
    >>> check_selection_options("pooled_uar", -1, "best", "newbob")
    Traceback (most recent call last):
    ...
    ValueError: selection_average must be a whole number >= 0 (0: the single selected epoch), got -1 (e.g. --selection_average=3).
    >>> check_selection_options("pooled_uar", 0, "best", "step")
    Traceback (most recent call last):
    ...
    ValueError: lr_schedule must be one of ['newbob', 'cosine', 'constant'], got 'step' (e.g. --lr_schedule=cosine).
    """  # noqa: E501
    check_selection(selection)
    if isinstance(average, bool) or not isinstance(average, int) or average < 0:
        raise ValueError(
            "selection_average must be a whole number >= 0 (0: the single "
            f"selected epoch), got {average!r} (e.g. --selection_average=3)."
        )
    check_choice(
        "selection_average_of",
        average_of,
        AVERAGE_OF,
        "e.g. --selection_average_of=last",
    )
    check_choice("lr_schedule", lr_schedule, LR_SCHEDULES, "e.g. --lr_schedule=cosine")


def selection_key(selection: str) -> str:
    """The checkpoint-meta key whose highest value ``selection`` picks.

    Example
    -------
    >>> selection_key("pooled_uar"), selection_key("last")
    ('pooled_uar', 'epoch')
    """
    return "epoch" if check_selection(selection) == "last" else selection


def retention(selection: str, average: int = 0, average_of: str = "best") -> dict:
    """The ``save_and_keep_only`` arguments that keep what selection needs.

    Always the most recent checkpoint (to resume) and the best one under
    ``selection``; with ``average`` k > 0, the k best (``average_of``
    ``best``) or the k last epochs (``last``).

    Example
    -------
    >>> retention("mean_language_uar")
    {'num_to_keep': 1, 'max_keys': ['mean_language_uar']}
    >>> retention("pooled_uar", 3, "last")
    {'num_to_keep': 3, 'max_keys': ['pooled_uar', 'epoch']}
    """
    key = selection_key(selection)
    keys = [key]
    if average and average_of == "last" and key != "epoch":
        keys.append("epoch")
    return {"num_to_keep": max(1, int(average)), "max_keys": keys}


def selected_checkpoints(
    checkpointer: Checkpointer,
    selection: str,
    average: int = 0,
    average_of: str = "best",
) -> list[Checkpoint]:
    """The checkpoints of the tested model, the one whose state is loaded first.

    ``average`` 0: the single best checkpoint under ``selection`` (ties: the
    most recent, as SpeechBrain's ``find_checkpoint``). k > 0: the k best
    under ``selection`` (``average_of="best"``, best first) or the k last
    epochs (``"last"``, last first). Empty if no validated checkpoint exists.

    Example
    -------
    >>> import tempfile
    >>> ckpt = Checkpointer(tempfile.mkdtemp())
    >>> for epoch, uar in enumerate([0.5, 0.9, 0.7, 0.6], start=1):
    ...     _ = ckpt.save_checkpoint(meta={"pooled_uar": uar, "epoch": epoch})
    >>> [c.meta["epoch"] for c in selected_checkpoints(ckpt, "pooled_uar")]
    [2]
    >>> [c.meta["epoch"] for c in selected_checkpoints(ckpt, "pooled_uar", 2)]
    [2, 3]
    >>> [c.meta["epoch"] for c in selected_checkpoints(ckpt, "pooled_uar", 2, "last")]
    [4, 3]
    >>> [c.meta["epoch"] for c in selected_checkpoints(ckpt, "last")]
    [4]
    """
    key = selection_key(selection)
    if average and average_of == "last":
        key = "epoch"
    found = checkpointer.find_checkpoints(
        max_key=key, max_num_checkpoints=max(1, int(average))
    )
    return [ckpt for ckpt in found if "epoch" in ckpt.meta]


def average_into(
    checkpoints: Iterable[Checkpoint], modules: Mapping[str, torch.nn.Module]
) -> None:
    """Load into each module the average of its weights over ``checkpoints``.

    ``modules`` maps each checkpoint recoverable name to its module; SpeechBrain's
    ``average_checkpoints`` averages every entry of the saved state dicts
    (parameters and buffers alike).

    Example
    -------
    >>> import tempfile
    >>> lin = torch.nn.Linear(1, 1, bias=False)
    >>> ckpt = Checkpointer(tempfile.mkdtemp(), {"lin": lin})
    >>> for weight in (1.0, 2.0, 6.0):
    ...     _ = lin.weight.data.fill_(weight)
    ...     _ = ckpt.save_checkpoint(meta={"epoch": int(weight)})
    >>> average_into(ckpt.find_checkpoints(max_key="epoch"), {"lin": lin})
    >>> lin.weight.item()
    3.0
    """
    checkpoints = list(checkpoints)
    for name, module in modules.items():
        state = average_checkpoints(checkpoints, name)
        module.load_state_dict(state)


def load_selected(
    checkpointer: Checkpointer,
    module_names: Iterable[str],
    selection: str,
    average: int = 0,
    average_of: str = "best",
) -> dict[str, Any]:
    """Load the tested model; return what was selected (for results.json).

    The first of :func:`selected_checkpoints` is recovered whole; with
    ``average`` k > 0 the modules ``module_names`` (checkpoint recoverables)
    then get the average weights of the selected checkpoints.

    Returns
    -------
    dict
        :func:`selection_record` of the selected checkpoints.

    Raises
    ------
    RuntimeError
        If no validated checkpoint exists (one line).
    """
    checkpoints = selected_checkpoints(checkpointer, selection, average, average_of)
    if not checkpoints:
        raise RuntimeError(
            f"No checkpoint with a {selection_key(selection)} score in "
            f"{checkpointer.checkpoints_dir}: train first (without --test_only)."
        )
    checkpointer.load_checkpoint(checkpoints[0])
    if average:
        if len(checkpoints) < average:
            logger.warning(
                "selection_average=%d: only %d checkpoint(s) to average.",
                average,
                len(checkpoints),
            )
        names = [name for name in module_names if name in checkpointer.recoverables]
        average_into(
            checkpoints, {name: checkpointer.recoverables[name] for name in names}
        )
    record = selection_record(checkpoints, selection, average, average_of)
    logger.info(
        "Tested model: %s epoch(s) %s (selection %s, selection_average %d)",
        "the average of" if average else "the",
        record["selected_epochs"],
        selection,
        average,
    )
    return record


def selection_record(
    checkpoints: list[Checkpoint], selection: str, average: int, average_of: str
) -> dict[str, Any]:
    """What was tested, for results.json.

    Example
    -------
    >>> from pathlib import Path
    >>> ckpts = [Checkpoint(Path("a"), {"epoch": e, "uar": 0.5}, {}) for e in (4, 2)]
    >>> selection_record(ckpts, "pooled_uar", 2, "best")["selected_epochs"]
    [2, 4]
    """
    return {
        "selection": selection,
        "selection_average": int(average),
        "selection_average_of": average_of if average else None,
        # the epochs whose weights were averaged (one: the selected epoch)
        "selected_epochs": sorted(int(c.meta["epoch"]) for c in checkpoints),
    }


def validation_meta(
    pooled_uar: float, uar_per_language: Mapping[str, float], epoch: int
) -> dict[str, Any]:
    """The checkpoint meta of one validated epoch (every selection score).

    Arguments
    ---------
    pooled_uar : float
        UAR over all validation utterances.
    uar_per_language : mapping
        ``{language: UAR}`` over each training language's validation utterances.
    epoch : int
        The epoch.

    Returns
    -------
    dict
        ``uar`` (pooled, kept for older readers), ``pooled_uar``,
        ``mean_language_uar``, ``uar_per_language`` and ``epoch``.

    Example
    -------
    >>> meta = validation_meta(0.8, {"en": 0.9, "de": 0.5}, epoch=3)
    >>> meta["mean_language_uar"], meta["pooled_uar"], meta["epoch"]
    (0.7, 0.8, 3)
    """
    per_language = {lang: float(uar) for lang, uar in uar_per_language.items()}
    if not per_language:
        raise ValueError("validation_meta: no validation language was given.")
    return {
        "uar": float(pooled_uar),
        "pooled_uar": float(pooled_uar),
        "mean_language_uar": sum(per_language.values()) / len(per_language),
        "uar_per_language": per_language,
        "epoch": int(epoch),
    }


@register_checkpoint_hooks
class EpochLRSchedule:
    """The learning rate per epoch under ``lr_schedule`` (a checkpoint recoverable).

    Called once per epoch, after validation, as SpeechBrain's schedulers:
    ``old_lr, new_lr = schedule(valid_loss)`` (the LR of the epoch just
    done, that of the next).

    - ``newbob``: SpeechBrain's ``NewBobScheduler`` with the given arguments
      (its checkpoint file is that of a plain ``NewBobScheduler``);
    - ``cosine``: epoch e (1, 2, ...) trains at
      ``lr * (1 + cos(pi * (e - 1) / number_of_epochs)) / 2``: ``lr`` in the
      first epoch, towards 0 at the end; the validation score is ignored;
    - ``constant``: ``lr`` throughout.

    The number of epochs done is checkpointed, so a resumed run continues the
    same schedule.

    Arguments
    ---------
    schedule : str
        ``newbob``, ``cosine`` or ``constant`` (checked when called: the
        recipe refuses a bad value first, with :func:`check_selection_options`).
    initial_value : float
        The LR of the first epoch.
    number_of_epochs : int
        The training budget (cosine reaches 0 after it).
    improvement_threshold, annealing_factor, patient
        NewBob's.

    Example
    -------
    >>> cosine = EpochLRSchedule("cosine", 1.0, number_of_epochs=4)
    >>> [round(cosine(0.0)[0], 4) for _ in range(4)]
    [1.0, 0.8536, 0.5, 0.1464]
    >>> EpochLRSchedule("constant", 0.1, 4)(0.3)
    (0.1, 0.1)
    """

    def __init__(
        self,
        schedule: str,
        initial_value: float,
        number_of_epochs: int,
        improvement_threshold: float = 0.0025,
        annealing_factor: float = 0.8,
        patient: int = 0,
    ) -> None:
        self.schedule = schedule
        self.initial_value = float(initial_value)
        self.number_of_epochs = int(number_of_epochs)
        self.epochs_done = 0
        self.newbob = NewBobScheduler(
            initial_value=initial_value,
            annealing_factor=annealing_factor,
            improvement_threshold=improvement_threshold,
            patient=patient,
        )

    def lr_of_epoch(self, epoch: int) -> float:
        """The LR of epoch ``epoch`` (1-based) under cosine or constant.

        Example
        -------
        >>> EpochLRSchedule("cosine", 2.0, 2).lr_of_epoch(3)
        0.0
        """
        if self.schedule == "constant":
            return self.initial_value
        done = min(max(epoch - 1, 0), self.number_of_epochs)
        cosine = math.cos(math.pi * done / max(1, self.number_of_epochs))
        return self.initial_value * (1.0 + cosine) / 2.0

    def __call__(self, metric_value: float) -> tuple[float, float]:
        """Advance one epoch: return (this epoch's LR, the next epoch's LR)."""
        check_choice("lr_schedule", self.schedule, LR_SCHEDULES)
        if self.schedule == "newbob":
            return self.newbob(metric_value)
        self.epochs_done += 1
        return self.lr_of_epoch(self.epochs_done), self.lr_of_epoch(
            self.epochs_done + 1
        )

    @mark_as_saver
    def save(self, path) -> None:
        """NewBob's file under newbob; else the schedule and the epochs done."""
        if self.schedule == "newbob":
            self.newbob.save(path)
        else:
            torch.save(
                {"schedule": self.schedule, "epochs_done": self.epochs_done}, path
            )

    @mark_as_loader
    def load(self, path, end_of_epoch: bool = False) -> None:
        """Restore what :meth:`save` wrote."""
        if self.schedule == "newbob":
            self.newbob.load(path)
        else:
            self.epochs_done = int(torch.load(path)["epochs_done"])
