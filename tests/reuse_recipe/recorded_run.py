#!/usr/bin/env python3
"""Test helper: run train_reuse.py and record what tests/test_reuse_recipe.py checks.

The recipe's Brain is subclassed, not changed: the subclass records every
module's weights at the start of fit, after each checkpoint and at the end of
fit, and at every training batch the reversal coefficient that the speaker
adversary's gradient reversal layer holds. Each process writes
``<output_folder>/record_rank<RANK>.pt``.

> python recorded_run.py hparams/train_reuse.yaml --data_folder=... (or under torchrun)
"""

import os
import sys
from pathlib import Path

import speechbrain as sb
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_reuse  # noqa: E402

from zsser_modules import reversal_layers, unwrap_module  # noqa: E402


def weights(modules):
    """A copy of every module's state, unwrapped from DDP."""
    return {
        name: {k: v.detach().clone() for k, v in unwrap_module(m).state_dict().items()}
        for name, m in modules.items()
    }


class RecordedBrain(train_reuse.EmoIdBrain):
    """The recipe's Brain, recording weights and reversal coefficients."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # SpeechBrain 1.1.2 parses --optimizer_step_limit as a string.
        if self.optimizer_step_limit is not None:
            self.optimizer_step_limit = int(self.optimizer_step_limit)

    def on_fit_start(self):
        self.record = {"initial": weights(self.modules), "batches": [], "saved": {}}
        super().on_fit_start()

    def on_fit_batch_start(self, batch, should_step):
        super().on_fit_batch_start(batch, should_step)
        (layer,) = reversal_layers(self.modules)
        self.record["batches"].append(
            {
                "epoch": self.hparams.epoch_counter.current,
                "step": self.step,
                "optimizer_step": self.optimizer_step,
                "coefficient": layer.lambda_,
            }
        )

    def on_stage_end(self, stage, stage_loss, epoch=None):
        super().on_stage_end(stage, stage_loss, epoch)
        if stage == sb.Stage.VALID:  # a checkpoint was just saved
            self.record["saved"][epoch] = weights(self.modules)

    def fit(self, *args, **kwargs):
        super().fit(*args, **kwargs)
        self.record["final"] = weights(self.modules)
        self.record["recoverables"] = sorted(self.checkpointer.recoverables)
        rank = int(os.environ.get("RANK", 0))
        path = Path(self.hparams.output_folder) / f"record_rank{rank}.pt"
        torch.save(self.record, path)


def main(argv):
    """Run the recipe's main with the recording Brain."""
    train_reuse.EmoIdBrain = RecordedBrain
    return train_reuse.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
