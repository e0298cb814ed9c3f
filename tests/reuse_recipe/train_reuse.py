#!/usr/bin/env python3
"""A second SpeechBrain recipe that lifts zsser_modules: IEMOCAP-shaped, one corpus.

It has the shape of the toolkit's ``recipes/IEMOCAP/emotion_recognition``
wav2vec2 recipe (encoder -> statistics pooling -> linear classifier; the
encoder and the classifier each with their own optimizer; the checkpointer
saving ``model``, the encoder, the annealing and the epoch counter), with a
tiny filterbank encoder in place of wav2vec2, and adds the paper's two ideas
exactly as docs/modules.md shows: a projection head trained with the
supervised contrastive loss and a speaker adversary behind gradient
reversal, whose reversal coefficient follows the DANN schedule.

To run it (tests/test_reuse_recipe.py does, on 1 and on 2 processes):
> python train_reuse.py hparams/train_reuse.yaml --data_folder=/path/to/manifests

Authors
 * zsser contributors 2026
"""

import os
import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from zsser_modules import (
    AddedModulesMixin,
    adversary_loss,
    build_label_encoder,
    flag_pipeline,
    optimize_and_checkpoint,
)


class EmoIdBrain(AddedModulesMixin, sb.Brain):
    """Emotion classifier with a SupCon projection head and a speaker adversary."""

    def compute_forward(self, batch, stage):
        """Encoder -> statistics pooling -> emotion log-probabilities (+ embedding)."""
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        feats = self.hparams.compute_features(wavs)
        outputs = self.modules.encoder(feats)
        emb = self.hparams.avg_pool(outputs, lens)
        emb = emb.view(emb.shape[0], -1)
        log_probs = self.hparams.log_softmax(self.modules.output_mlp(emb))
        return log_probs, emb

    def compute_objectives(self, predictions, batch, stage):
        """NLL, plus the SupCon and speaker-adversary losses in training."""
        log_probs, emb = predictions
        emoid, _ = batch.emo_encoded
        emoid = emoid.squeeze(1)
        loss = self.hparams.compute_cost(log_probs, emoid)
        if stage == sb.Stage.TRAIN:
            proj = self.modules.projection(emb)
            supcon = self.hparams.supcon_loss(proj, emoid)
            spk, _ = batch.spk_encoded
            adversary = self.modules.speaker_adversary  # DDP-wrapped under torchrun
            adv = adversary_loss(adversary, emb, spk, ignore=batch.confounded)
            loss = loss + self.hparams.supcon_weight * supcon
            loss = loss + self.hparams.adv_weight * adv
        else:
            self.error_metrics.append(batch.id, log_probs, emoid)
        return loss

    def on_stage_start(self, stage, epoch=None):
        """Set up the error-rate tracker for validation and test."""
        if stage != sb.Stage.TRAIN:
            self.error_metrics = self.hparams.error_stats()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log the epoch, anneal the learning rate, keep the best checkpoint."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        stats = {
            "loss": stage_loss,
            "error_rate": self.error_metrics.summarize("average"),
        }
        if stage == sb.Stage.VALID:
            old_lr, new_lr = self.hparams.lr_annealing(stats["error_rate"])
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            self.hparams.train_logger.log_stats(
                {"Epoch": epoch, "lr": old_lr, "reversal": self.reversal_coefficient},
                train_stats={"loss": self.train_loss},
                valid_stats=stats,
            )
            self.checkpointer.save_and_keep_only(meta=stats, min_keys=["error_rate"])
        else:
            self.hparams.train_logger.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats,
            )

    def init_optimizers(self):
        """The host's two optimizers, then the added modules (docs/modules.md)."""
        self.encoder_optimizer = self.hparams.encoder_opt_class(
            self.modules.encoder.parameters()
        )
        self.optimizer = self.hparams.opt_class(self.hparams.model.parameters())
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("encoder_opt", self.encoder_optimizer)
            self.checkpointer.add_recoverable("optimizer", self.optimizer)
        self.optimizers_dict = {
            "model_optimizer": self.optimizer,
            "encoder_optimizer": self.encoder_optimizer,
        }
        optimize_and_checkpoint(self, ["projection", "speaker_adversary"])


def dataio_prep(hparams):
    """Datasets of the three manifests, with emotion and speaker labels."""

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return sb.dataio.dataio.read_audio(wav)

    emotion_encoder = build_label_encoder(hparams["emotions"])

    @sb.utils.data_pipeline.takes("emo")
    @sb.utils.data_pipeline.provides("emo_encoded")
    def label_pipeline(emo):
        return emotion_encoder.encode_label_torch(emo)

    speaker_encoder = sb.dataio.encoder.CategoricalEncoder()

    @sb.utils.data_pipeline.takes("spk_id")
    @sb.utils.data_pipeline.provides("spk_encoded")
    def speaker_pipeline(spk_id):
        return speaker_encoder.encode_label_torch(spk_id)

    datasets = {}
    data_info = {
        "train": hparams["train_annotation"],
        "valid": hparams["valid_annotation"],
        "test": hparams["test_annotation"],
    }
    for split, csv_path in data_info.items():
        datasets[split] = sb.dataio.dataset.DynamicItemDataset.from_csv(
            csv_path=csv_path,
            replacements={"data_root": hparams["data_folder"]},
            dynamic_items=[audio_pipeline, label_pipeline],
            output_keys=["id", "sig", "emo_encoded"],
        )
    datasets["train"].add_dynamic_item(speaker_pipeline)
    datasets["train"].add_dynamic_item(flag_pipeline("spk_confounded", "confounded"))
    datasets["train"].set_output_keys(
        ["id", "sig", "emo_encoded", "spk_encoded", "confounded"]
    )
    speaker_encoder.load_or_create(
        path=os.path.join(hparams["save_folder"], "speaker_encoder.txt"),
        from_didatasets=[datasets["train"]],
        output_key="spk_id",
    )
    if len(speaker_encoder) != hparams["n_speakers"]:
        found = len(speaker_encoder)
        raise SystemExit(
            f"n_speakers is {hparams['n_speakers']} but the training manifest has "
            f"{found} speakers: pass --n_speakers={found}."
        )
    return datasets


def main(argv):
    """Train on the train manifest, select on valid, test the best checkpoint."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    datasets = dataio_prep(hparams)

    emo_id_brain = EmoIdBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
        reversal_gamma=hparams["reversal_gamma"],
    )
    emo_id_brain.fit(
        epoch_counter=emo_id_brain.hparams.epoch_counter,
        train_set=datasets["train"],
        valid_set=datasets["valid"],
        train_loader_kwargs=hparams["dataloader_options"],
        valid_loader_kwargs=hparams["dataloader_options"],
    )
    emo_id_brain.evaluate(
        test_set=datasets["test"],
        min_key="error_rate",
        test_loader_kwargs=hparams["dataloader_options"],
    )
    return emo_id_brain


if __name__ == "__main__":
    main(sys.argv[1:])
