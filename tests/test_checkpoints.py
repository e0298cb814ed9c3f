"""AtomicCheckpointer and RandomState (zsser_modules/checkpoints.py), unit level.

The end-to-end kill tests are in tests/test_resume.py.
"""

import random
import shutil

import numpy as np
import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer

from zsser_modules.checkpoints import AtomicCheckpointer, RandomState


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_random_state_restores_every_generator(tmp_path):
    state = RandomState()
    state.save(tmp_path / "random_state.ckpt")
    first = draws()
    state.load(tmp_path / "random_state.ckpt", end_of_epoch=False)
    assert draws() == first
    draws()
    assert state.restore_loaded() and draws() == first


def test_each_process_restores_its_own_random_state(tmp_path, monkeypatch):
    path = tmp_path / "random_state.ckpt"
    monkeypatch.setenv("RANK", "1")
    torch.manual_seed(1)
    RandomState().save(path)
    assert (tmp_path / "random_state.rank1.ckpt").is_file() and not path.exists()
    expected = float(torch.rand(1))
    torch.manual_seed(2)
    RandomState().load(path, end_of_epoch=True)
    assert float(torch.rand(1)) == expected
    monkeypatch.setenv("RANK", "2")  # no file: keeps its state, with a warning
    state = torch.get_rng_state()
    RandomState().load(path, end_of_epoch=True)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.fixture
def checkpointer(tmp_path):
    lin = torch.nn.Linear(2, 2)
    return AtomicCheckpointer(tmp_path / "save", {"lin": lin}), lin


def test_a_save_cut_short_is_never_loaded_and_is_cleaned_up(checkpointer):
    ckpt, lin = checkpointer
    good = ckpt.save_checkpoint(meta={"uar": 0.5})
    # What a save killed after its first file leaves.
    partial = good.path.with_name(".partial-CKPT+later")
    shutil.copytree(good.path, partial)
    (partial / "CKPT.yaml").unlink()
    # SpeechBrain's own layout of a save killed after CKPT.yaml: taken as the
    # newest checkpoint, then fails to load. Ours never has it.
    assert ckpt.find_checkpoint().path == good.path
    assert ckpt.recover_if_possible().path == good.path
    assert not partial.exists()


def test_a_deletion_cut_short_leaves_no_checkpoint(checkpointer, monkeypatch):
    ckpt, _ = checkpointer
    old = ckpt.save_checkpoint(meta={"uar": 0.1})

    def killed(path, *args, **kwargs):
        raise KeyboardInterrupt  # the process dies inside rmtree

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_and_keep_only(meta={"uar": 0.2}, max_keys=["uar"], keep_recent=False)
    monkeypatch.undo()
    # The renamed folder is not a checkpoint, and is removed on recovery.
    assert [c.meta["uar"] for c in ckpt.find_checkpoints()] == [0.2]
    ckpt.recover_if_possible()
    assert not any(ckpt.checkpoints_dir.glob(".deleting-*"))
    assert not old.path.exists()


def test_ties_resolve_alike_in_a_resumed_run(checkpointer):
    """Two epochs with the same valid UAR: the newer wins (SpeechBrain's rule),
    in a fresh checkpointer too (a resumed run lists the folder anew)."""
    ckpt, _ = checkpointer
    for epoch in (1, 2, 3):
        ckpt.save_checkpoint(meta={"uar": 0.5 if epoch < 3 else 0.4, "epoch": epoch})
    assert ckpt.find_checkpoint(max_key="uar").meta["epoch"] == 2
    again = AtomicCheckpointer(ckpt.checkpoints_dir, {"lin": torch.nn.Linear(2, 2)})
    assert again.find_checkpoint(max_key="uar").meta["epoch"] == 2


def test_checkpoints_load_in_speechbrain_s_own_checkpointer(checkpointer):
    ckpt, lin = checkpointer
    ckpt.save_checkpoint(meta={"uar": 0.5})
    other = torch.nn.Linear(2, 2)
    plain = Checkpointer(ckpt.checkpoints_dir, {"lin": other})
    plain.recover_if_possible()
    assert torch.equal(other.weight, lin.weight)
