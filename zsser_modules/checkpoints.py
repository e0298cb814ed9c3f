"""Checkpoints that make a killed run resume exactly where it stopped.

SpeechBrain's ``Brain`` resumes from the newest checkpoint of its
``Checkpointer``, but two things stand between that and an *exact* resume,
where ``kill -9`` at any moment followed by the same command gives the same
model as an uninterrupted run:

* **Random number generators.** Dropout, the data loader's worker seeds and
  anything else drawing from the global generators (Python's ``random``,
  NumPy, torch on CPU and on every CUDA device) are not in SpeechBrain's
  checkpoints by default: a resumed run continues from the state that
  seeding left at start-up, not from the state the killed run had reached.
  :class:`RandomState` is a recoverable holding them (one file per process).
* **Interrupted saves.** SpeechBrain writes a checkpoint's ``CKPT.yaml``
  *first*, then each recoverable: a run killed while saving leaves a
  checkpoint that looks complete, is the newest, and fails to load (or loads
  half-written state). Deleting an old checkpoint (``shutil.rmtree``) can be
  cut short the same way. :class:`AtomicCheckpointer` writes a checkpoint
  into a hidden folder, adds ``CKPT.yaml`` last and renames the folder into
  place; deletions rename before removing.

Not SpeechBrain's ``speechbrain.utils.repro.SaveableGenerator`` (torch's
generators only, saved by the main process only, no re-restore after a new
loader iterator draws its seed) nor its plain ``Checkpointer`` (killed while
saving, the newest checkpoint fails to load): measured in
docs/toolkit_reuse.md, pinned by tests/test_toolkit_reuse.py.

Both are plain SpeechBrain objects: in a YAML file::

    checkpointer: !new:zsser_modules.checkpoints.AtomicCheckpointer
        checkpoints_dir: !ref <save_folder>
        recoverables:
            counter: !ref <epoch_counter>
            random_state: !new:zsser_modules.checkpoints.RandomState

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
from pathlib import Path

import numpy as np
import torch
from speechbrain.utils.checkpoints import (
    DEFAULT_SAVE_HOOKS,
    METAFNAME,
    PARAMFILE_EXT,
    Checkpoint,
    Checkpointer,
    ckpt_recency,
    get_default_hook,
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)
from speechbrain.utils.distributed import ddp_barrier, ddp_broadcast, if_main_process

logger = logging.getLogger(__name__)

#: Environment variable of the kill test hook (see :func:`kill_point`).
KILL_ENV = "ZSSER_TEST_KILL_AT"
#: Prefix of a checkpoint folder being written (not a checkpoint: no CKPT prefix).
PARTIAL_PREFIX = ".partial-"
#: Prefix of a checkpoint folder being deleted.
DELETING_PREFIX = ".deleting-"


def kill_point(point: str) -> None:
    """Test hook: ``SIGKILL`` this process when ``point`` is the one requested.

    The environment variable ``ZSSER_TEST_KILL_AT`` names a point such as
    ``"2:3"`` (epoch 2, before training batch 3) or ``"save:4"`` (while
    writing the 4th checkpoint, after its first file). Without the variable
    this does nothing; the resume tests use it to kill a real run at an exact
    place (``kill -9`` from outside cannot be aimed that precisely).

    Arguments
    ---------
    point : str
        The place the caller is at.

    Example
    -------
    >>> kill_point("1:1")  # ZSSER_TEST_KILL_AT is not set: nothing happens
    """
    if os.environ.get(KILL_ENV) == point:
        logger.warning("%s=%s: killing this process (SIGKILL).", KILL_ENV, point)
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


def _rank() -> int:
    return int(os.environ.get("RANK", 0))


class RandomState:
    """The global random generators as a SpeechBrain recoverable.

    Saves and restores Python's ``random``, NumPy's legacy global generator,
    torch's CPU generator and, when CUDA is initialised, the generator of
    every visible CUDA device. Under DDP each process saves its own state
    (``<name>.ckpt`` for rank 0, ``<name>.rank<r>.ckpt`` for rank ``r``) and
    restores its own; a process whose file is missing (a checkpoint written
    with fewer processes) keeps its state and logs a warning.

    Register it in the ``Checkpointer`` before training starts
    (``recoverables: {random_state: !new:zsser_modules.checkpoints.RandomState}``);
    a checkpoint then restores the generators to the moment it was saved.

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "random_state.ckpt"
    >>> state = RandomState()
    >>> state.save(path)
    >>> first = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    >>> state.load(path, end_of_epoch=True)
    >>> (random.random(), float(np.random.rand()), float(torch.rand(1))) == first
    True
    """

    @staticmethod
    def capture() -> dict:
        """The current state of every global generator."""
        state = {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    @staticmethod
    def restore(state: dict) -> None:
        """Set every global generator from a :meth:`capture` result."""
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            states = state["cuda"]
            if len(states) != torch.cuda.device_count():
                logger.warning(
                    "The checkpoint holds the random state of %d CUDA devices, "
                    "this process sees %d: CUDA random states not restored.",
                    len(states),
                    torch.cuda.device_count(),
                )
            else:
                torch.cuda.set_rng_state_all(states)

    @staticmethod
    def _path_of_rank(path: Path, rank: int) -> Path:
        path = Path(path)
        if rank == 0:
            return path
        return path.with_name(f"{path.stem}.rank{rank}{path.suffix}")

    @mark_as_saver
    def save(self, path: Path) -> None:
        """Write this process's generator states to ``path`` (rank 0) or beside it."""
        torch.save(self.capture(), self._path_of_rank(path, _rank()))

    @mark_as_loader
    def load(self, path: Path, end_of_epoch: bool) -> None:
        """Restore this process's generator states from a checkpoint."""
        del end_of_epoch  # the same at the end of an epoch and within one
        own = self._path_of_rank(path, _rank())
        if not own.is_file():
            logger.warning(
                "No random state for process %d in %s (saved with fewer "
                "processes?): continuing with the current one.",
                _rank(),
                Path(path).parent,
            )
            return
        self.loaded = torch.load(own, weights_only=False)
        self.restore(self.loaded)

    def restore_loaded(self) -> bool:
        """Restore the generators to the last loaded checkpoint again.

        A run resumed within an epoch creates its data loader iterator after
        the checkpoint was loaded, and that draws a seed from torch's
        generator, which the uninterrupted run had drawn at the start of the
        epoch. Calling this before the first resumed batch undoes that draw.

        Returns
        -------
        bool
            False if no state was loaded.
        """
        loaded = getattr(self, "loaded", None)
        if loaded is None:
            return False
        self.restore(loaded)
        return True


# Every process saves its own generators (not only the main one).
register_checkpoint_hooks(RandomState, save_on_main_only=False)


class AtomicCheckpointer(Checkpointer):
    """A ``Checkpointer`` whose checkpoints are complete or absent, never half-written.

    Same interface and same folders as SpeechBrain's ``Checkpointer``; only
    how folders appear and disappear changes:

    * a checkpoint is written in ``.partial-<name>`` (which SpeechBrain does
      not take for a checkpoint: no ``CKPT`` prefix), ``CKPT.yaml`` last,
      then renamed to ``CKPT+<name>`` in one step;
    * a checkpoint is deleted by renaming it to ``.deleting-<name>`` first;
    * leftovers of either (a run killed at that moment) are removed before
      the next recovery.

    Example
    -------
    >>> import tempfile
    >>> lin = torch.nn.Linear(2, 2)
    >>> ckpt = AtomicCheckpointer(tempfile.mkdtemp(), {"lin": lin})
    >>> saved = ckpt.save_checkpoint(meta={"uar": 0.5}, verbosity=logging.DEBUG)
    >>> saved.path.name.startswith("CKPT+"), sorted(saved.paramfiles)
    (True, ['lin'])
    >>> ckpt.find_checkpoint(max_key="uar").meta["uar"]
    0.5
    """

    def save_checkpoint(
        self, meta=None, end_of_epoch=True, name=None, verbosity=logging.INFO
    ):
        """Save a checkpoint atomically (see the class); arguments as SpeechBrain's."""
        meta = {} if meta is None else meta
        final_dir = partial_dir = None
        if if_main_process():
            if name is None:
                final_dir = self._new_checkpoint_dirpath()
            else:
                final_dir = self._custom_checkpoint_dirpath(name)
            partial_dir = final_dir.with_name(PARTIAL_PREFIX + final_dir.name)
            if partial_dir.exists():
                shutil.rmtree(partial_dir)
            os.makedirs(partial_dir)
        final_dir, partial_dir = ddp_broadcast((final_dir, partial_dir), src=0)
        paramfiles = {}
        for index, (key, obj) in enumerate(self.recoverables.items()):
            savepath = partial_dir / f"{key}{PARAMFILE_EXT}"
            paramfiles[key] = final_dir / savepath.name
            if key in self.custom_save_hooks:
                self.custom_save_hooks[key](obj, savepath)
            else:
                hook = get_default_hook(obj, DEFAULT_SAVE_HOOKS)
                if hook is None:
                    raise RuntimeError(
                        f"Don't know how to save {type(obj)}: register a default "
                        "hook or add a custom hook for this object."
                    )
                hook(obj, savepath)
            if index == 0:
                kill_point(f"save:{self._saves + 1}")
        self._saves += 1
        ddp_barrier()  # every process has written its files
        if not if_main_process():
            return None
        saved_meta = self._save_checkpoint_metafile(
            partial_dir / METAFNAME, meta, end_of_epoch
        )
        _fsync_dir(partial_dir)
        os.replace(partial_dir, final_dir)
        _fsync_dir(final_dir.parent)
        ckpt_type = "end-of-epoch" if end_of_epoch else "intra-epoch"
        logger.log(verbosity, f"Saved an {ckpt_type} checkpoint in {final_dir}")
        return Checkpoint(final_dir, saved_meta, paramfiles)

    @property
    def _saves(self) -> int:
        return getattr(self, "_save_count", 0)

    @_saves.setter
    def _saves(self, value: int) -> None:
        self._save_count = value

    def delete_checkpoints(
        self,
        *,
        num_to_keep=1,
        min_keys=None,
        max_keys=None,
        importance_keys=(ckpt_recency,),
        ckpt_predicate=None,
        verbosity=logging.INFO,
    ):
        """SpeechBrain's ``delete_checkpoints`` with this class's deletion.

        (SpeechBrain's own calls ``Checkpointer._delete_checkpoint`` by class
        name, which a subclass cannot override.) Arguments as SpeechBrain's.
        """
        if num_to_keep < 0:
            raise ValueError("Number of checkpoints to keep must be positive.")
        potential_deletions, protected = set(), set()
        keys = [{"min_key": key} for key in min_keys or []]
        keys += [{"max_key": key} for key in max_keys or []]
        keys += [{"importance_key": key} for key in importance_keys]
        for key_kwargs in keys:
            key_kwargs["ckpt_predicate"] = ckpt_predicate
            potential_deletions.update(self.find_checkpoints(**key_kwargs))
            protected.update(
                self.find_checkpoints(max_num_checkpoints=num_to_keep, **key_kwargs)
            )
        ddp_barrier()
        if if_main_process():
            for ckpt in potential_deletions:
                if ckpt not in protected:
                    self._delete_checkpoint(ckpt, verbosity=verbosity)
        ddp_barrier()

    @staticmethod
    def _delete_checkpoint(checkpoint, verbosity=logging.INFO):
        """Delete a checkpoint: first out of sight (rename), then from disk."""
        path = Path(checkpoint.path)
        if not Checkpointer._is_checkpoint_dir(path):
            raise RuntimeError("Checkpoint does not appear valid for deletion.")
        doomed = path.with_name(DELETING_PREFIX + path.name)
        os.replace(path, doomed)
        shutil.rmtree(doomed)
        logger.log(verbosity, f"Deleted checkpoint in {path}")

    def remove_leftovers(self) -> list[Path]:
        """Remove folders of saves or deletions cut short; return them.

        Runs on the main process only (others get an empty list).
        """
        removed = []
        if not if_main_process() or not self.checkpoints_dir.is_dir():
            return removed
        for path in self.checkpoints_dir.iterdir():
            if path.is_dir() and path.name.startswith(
                (PARTIAL_PREFIX, DELETING_PREFIX)
            ):
                shutil.rmtree(path)
                removed.append(path)
        if removed:
            logger.info(
                "Removed %d checkpoint folder(s) left by an interrupted save or "
                "deletion: %s",
                len(removed),
                [path.name for path in removed],
            )
        return removed

    def recover_if_possible(self, *args, **kwargs):
        """Remove leftovers of an interrupted save, then SpeechBrain's recovery."""
        self.remove_leftovers()
        ddp_barrier()
        return super().recover_if_possible(*args, **kwargs)


def _fsync_dir(path: Path) -> None:
    """Flush a folder's entries to disk (best effort: not every OS allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["AtomicCheckpointer", "KILL_ENV", "RandomState", "kill_point"]
