"""The recipe's Brain machinery that a reader of the recipe need not see.

:class:`RecipeBrainMixin` goes first in the bases of the recipe's Brain::

    class ZeroShotSER(RecipeBrainMixin, sb.Brain): ...

It brings

* exact resume (docs/recipe.md): the checkpoints hold the random generators
  (hparams ``checkpointer``: ``random_state``), SpeechBrain's step counts
  and, within an epoch, the running sums of the loss terms
  (:meth:`record_terms`); resumed within an epoch, the generators are
  restored again before the first batch (the new loader iterator drew a seed
  since the checkpoint);
* model selection (zsser_modules.selection): the validation scores of every
  epoch in the checkpoint meta, the checkpoints that ``selection`` needs
  kept (:meth:`save_checkpoint`), the selected (or averaged) model loaded
  for testing (:meth:`on_evaluate_start`);
* the LR schedule applied to a fine-tuned SSL model's optimizer
  too, and the representations of a dataset (diagnostics, t-SNE);
* seeded samplers reshuffled every epoch (zsser_modules.sampling) and
  torchrun + DDP also on CPU (zsser_modules.distributed).

The test hook of the resume tests (zsser_modules.checkpoints.kill_point,
``ZSSER_TEST_KILL_AT=<epoch>:<step>``) sits here, before each training batch.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import speechbrain as sb
import torch
import yaml

from zsser_modules.checkpoints import kill_point
from zsser_modules.distributed import DistributedBrainMixin, mean_across_processes
from zsser_modules.labels import LANGUAGES, build_label_encoder
from zsser_modules.sampling import SeededSamplerMixin
from zsser_modules.selection import (
    load_selected,
    retention,
    selected_checkpoints,
    validation_meta,
)

from .options import selection_options


@sb.utils.checkpoints.register_checkpoint_hooks
class RecipeBrainMixin(SeededSamplerMixin, DistributedBrainMixin):
    """Exact resume, model selection and run bookkeeping for the recipe's Brain.

    See the module's docstring. The Brain calls :meth:`record_terms` with its
    loss terms of each training batch, :meth:`mean_train_stats` at the end of a
    training epoch, :meth:`save_checkpoint` at the end of validation, and
    ``super().on_stage_start(stage, epoch)`` from its own on_stage_start.

    Arguments
    ---------
    *args, **kwargs
        Those of the next Brain class.
    selection : mapping
        The YAML's ``selection_options`` (``selection``,
        ``selection_average``, ``selection_average_of``, ``lr_schedule``):
        which checkpoints are kept and which model is tested.
    """

    def __init__(self, *args, selection: Mapping[str, Any], **kwargs):
        # (selection, selection_average, selection_average_of)
        self.selection_rule = selection_options(selection)[:3]
        super().__init__(*args, **kwargs)

    def fit_batch(self, batch):
        """Brain.fit_batch, with the random state restored after a resume."""
        kill_point(f"{self.hparams.epoch_counter.current}:{self.step}")  # tests
        if getattr(self, "resumed_within_epoch", False):
            # The loader's new iterator drew a seed since the checkpoint.
            self.checkpointer.recoverables["random_state"].restore_loaded()
            self.resumed_within_epoch = False
        return super().fit_batch(batch)

    def on_stage_start(self, stage, epoch=None):
        """Reset the loss-term sums; resumed within the epoch, continue them."""
        if stage != sb.Stage.TRAIN:
            return
        sums, batches = getattr(self, "_recovered_terms", (Counter(), 0))
        resumed = self.step > 0
        self.term_sums = Counter(sums) if resumed else Counter()
        self.term_batches = batches if resumed else 0
        self._recovered_terms = (Counter(), 0)
        self.resumed_within_epoch = resumed and "random_state" in getattr(
            self.checkpointer, "recoverables", {}
        )

    def record_terms(self, terms):
        """Add one training batch's loss terms (name -> tensor) to the sums."""
        for name, value in terms.items():
            self.term_sums[name] += float(value.detach())
        self.term_batches += 1

    def mean_train_stats(self, stage_loss):
        """The epoch's loss and mean loss terms (averaged over DDP processes)."""
        stats = {"loss": stage_loss}
        for name, total in self.term_sums.items():
            stats[name] = total / max(1, self.term_batches)
        # Under DDP each process saw its own batches: log their mean.
        return mean_across_processes(stats)

    def selection_meta(self, uar, uar_per_language, epoch):
        """Checkpoint meta of a validation: every score `selection` may use.

        The pooled ``uar``, ``uar_per_language`` and their mean
        (zsser_modules.selection.validation_meta).
        """
        return validation_meta(uar, uar_per_language, epoch)

    def save_checkpoint(self, meta):
        """Save a checkpoint; keep what selection needs (k best or last)."""
        self.checkpointer.save_and_keep_only(
            meta=meta, **retention(*self.selection_rule)
        )

    def check_selectable(self):
        """Raise RuntimeError unless a checkpoint has the `selection` score."""
        if not selected_checkpoints(self.checkpointer, *self.selection_rule):
            raise RuntimeError(
                "No checkpoint with a validation UAR in "
                f"{self.checkpointer.checkpoints_dir} with a {self.selection_rule[0]} "
                "score: train first (without --test_only)."
            )

    def on_evaluate_start(self, max_key=None, min_key=None):
        """Load the model `selection` picks (ignores max_key/min_key).

        The best (or last) epoch, or the average of k checkpoints with
        selection_average (zsser_modules.selection.load_selected); what was
        selected goes to results.json.
        """
        self.selected = load_selected(
            self.checkpointer,
            list(self.modules.keys()),
            *self.selection_rule,
        )

    def anneal_learning_rates(self, old_lr, new_lr):
        """Apply the LR schedule to every optimizer.

        The head's LR becomes new_lr; a fine-tuned SSL model's LR (lr_ssl) is
        scaled by the same factor.
        """
        sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
        ssl_optimizer = self.optimizers_dict.get("ssl_optimizer")
        if ssl_optimizer is not None and old_lr > 0 and new_lr != old_lr:
            for group in ssl_optimizer.param_groups:
                group["lr"] *= new_lr / old_lr

    @sb.utils.checkpoints.mark_as_saver
    def _save(self, path):
        """SpeechBrain's step counts, plus the running sums of the loss terms."""
        super()._save(path)
        with open(path, encoding="utf-8") as fin:
            state = yaml.safe_load(fin)
        sums = getattr(self, "term_sums", {})
        state["term_sums"] = {k: float(v) for k, v in sums.items()}
        state["term_batches"] = int(getattr(self, "term_batches", 0))
        with open(path, "w", encoding="utf-8") as fout:
            yaml.safe_dump(state, fout, sort_keys=False)

    @sb.utils.checkpoints.mark_as_loader
    def _recover(self, path, end_of_epoch):
        """Restore what _save wrote (older checkpoints: no loss-term sums)."""
        super()._recover(path, end_of_epoch)
        with open(path, encoding="utf-8") as fin:
            state = yaml.safe_load(fin)
        self._recovered_terms = (
            Counter(state.get("term_sums", {})),
            state.get("term_batches", 0),
        )

    def representations(self, dataset):
        """What the model makes of every utterance of ``dataset``.

        Returns a dict: ``ids``; ``emb``, the utterance embeddings; ``features``,
        the encoder outputs (pooled layers averaged), both float32 on the CPU;
        ``emotions`` and ``languages``, the labels.
        """
        options = {**self.hparams.test_dataloader_options, "ckpt_prefix": None}
        loader = self.make_dataloader(dataset, sb.Stage.TEST, **options)
        emotions = build_label_encoder(self.hparams.emotions)
        languages = build_label_encoder(LANGUAGES)
        out = {key: [] for key in ("ids", "emb", "features", "emotions", "languages")}
        self.modules.eval()
        with torch.no_grad():
            for batch in loader:
                outputs = self.compute_forward(batch, sb.Stage.TEST)
                out["ids"] += list(batch.id)
                out["emb"].append(outputs["emb"].float().cpu())
                raw = outputs["features"].float().cpu()
                out["features"].append(raw.mean(1) if raw.dim() == 3 else raw)
                out["emotions"] += emotions.decode_ndim(
                    batch.emo_encoded.data.squeeze(1)
                )
                out["languages"] += languages.decode_ndim(
                    batch.lang_encoded.data.squeeze(1)
                )
        out["emb"], out["features"] = torch.cat(out["emb"]), torch.cat(out["features"])
        return out

    def embed(self, dataset):
        """Embeddings, emotions and languages of every utterance of ``dataset``."""
        out = self.representations(dataset)
        return out["emb"], out["emotions"], out["languages"]
