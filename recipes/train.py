#!/usr/bin/env python3
"""Recipe for zero-shot cross-lingual speech emotion recognition.

Implements Mi, Ma and Toda (2026), "Learning Emotion-discriminative
Representations for Zero-Shot Cross-lingual Speech Emotion Recognition": a
4-class emotion classifier (neutral, happy, angry, sad) is trained on labelled
speech of a source language, plus auxiliary languages for most variants, and
tested on a target language it never saw, not even for model selection (the
best epoch is chosen on the validation speakers of the training languages).

    wav -> encoder (SSL / Whisper: frozen, adapted or fine-tuned | filterbanks)
        -> embedding MLP -> emb
             emb -> emotion classifier ............ cross-entropy
             emb -> projection head -> SupCon ..... same-emotion positives,
                                                    cross-language ones weighted
             emb -> GRL -> speaker classifier ..... speaker adversary (DANN)

    loss = CE + supcon_weight * SupCon + adv_weight * speaker adversary

The variant (--variant) selects the training languages
(zsser_modules.data_prep.zero_shot) and the loss terms
(zsser_modules.run.variants.VARIANT_LOSSES).

To run: python recipes/train.py hparams/en_de.yaml --data_folder=/path/to/corpora
(each corpus's folder: docs/experiment.md). DDP, bf16, batching: docs/speed.md.
Resume, run identity, model selection, feature cache and outputs live in
zsser_modules.run (docs/recipe.md), each given its YAML group of options.

Authors
 * zsser contributors 2026
"""

import sys
from pathlib import Path

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.distributed import if_main_process
from speechbrain.utils.logger import get_logger

from zsser_modules import run
from zsser_modules.added_modules import AddedModulesMixin
from zsser_modules.adversarial import adversarial_loss
from zsser_modules.audio import audio_pipeline
from zsser_modules.data_prep.manifest import read_manifest
from zsser_modules.data_prep.speakers import is_pseudo_speaker
from zsser_modules.dataio import parse_flag
from zsser_modules.inference import ENCODER_MODULES, PRETRAINED_ENCODERS, build_module
from zsser_modules.labels import LANGUAGES, build_label_encoder
from zsser_modules.metrics import EmotionMetricStats

logger = get_logger(__name__)

# Printed and saved with every result on the built-in demo corpus.
SYNTHETIC_NOTE = "synthetic demo corpus: rule-based prosody, not acted emotion"


class ZeroShotSER(AddedModulesMixin, run.RecipeBrainMixin, sb.Brain):
    """Emotion classifier with cross-lingual SupCon and a speaker adversary.

    AddedModulesMixin (zsser_modules.added_modules): the gradient reversal
    coefficient follows the DANN schedule over the planned optimizer steps,
    and every module is checked to be optimised and checkpointed.
    RecipeBrainMixin (zsser_modules.run.brain): exact resume, model selection
    by `selection`, seeded samplers, torchrun + DDP also on CPU.
    """

    def compute_forward(self, batch, stage):
        """Encoder -> embedding -> emotion log-probabilities (+ training heads)."""
        batch = batch.to(self.device)
        # A frozen encoder's outputs come from the feature cache
        # (zsser_modules.run.features); a trainable one runs on the audio.
        if self.hparams.encoder_is_cached:
            encoded = batch.encoder_feats.data
        else:
            encoded = self.modules[self.hparams.encoder](*batch.sig)
        features = encoded
        if "layer_sum" in ENCODER_MODULES[self.hparams.encoder]:
            # Every SSL/Whisper layer was mean-pooled over the valid frames:
            # learn a softmax-weighted sum of the layers.
            encoded = self.modules.layer_sum(encoded)
        emb = self.modules.embedding(encoded)
        logits = self.modules.emo_classifier(emb)
        outputs = {"emb": emb, "log_probs": self.hparams.log_softmax(logits)}
        outputs["features"] = features  # encoder output (diagnostics)

        # Heads of the auxiliary losses: training only, and only if weighted.
        if stage == sb.Stage.TRAIN:
            if self.hparams.loss_weights["supcon"] > 0:
                outputs["proj"] = self.modules.projection(emb)
            if self.hparams.loss_weights["spk_adv"] > 0:
                outputs["spk_logits"] = self.modules.spk_adversary(emb)
            if self.hparams.loss_weights["lang_adv"] > 0:
                outputs["lang_logits"] = self.modules.lang_adversary(emb)
        return outputs

    def compute_objectives(self, outputs, batch, stage):
        """CE (+ weighted SupCon and adversary losses in training)."""
        emo, _ = batch.emo_encoded
        emo = emo.squeeze(1)
        lang = batch.lang_encoded.data.squeeze(1)
        loss = self.hparams.compute_cost(outputs["log_probs"], emo)
        if stage != sb.Stage.TRAIN:
            groups = [LANGUAGES[i] for i in lang.tolist()]
            self.emo_metrics.append(batch.id, outputs["log_probs"], emo, groups=groups)
            return loss

        terms = {"ce": loss}
        if "proj" in outputs:
            terms["supcon"] = self.hparams.supcon_loss(outputs["proj"], emo, lang)
        ignore = self.hparams.adv_ignore_index
        if "spk_logits" in outputs:
            spk = batch.spk_encoded.data.squeeze(1)
            terms["spk_adv"] = adversarial_loss(outputs["spk_logits"], spk, ignore)
        if "lang_logits" in outputs:
            terms["lang_adv"] = adversarial_loss(outputs["lang_logits"], lang, ignore)
        self.record_terms(terms)  # logged per epoch, resumed exactly
        return loss + sum(
            self.hparams.loss_weights[name] * value
            for name, value in terms.items()
            if name != "ce"
        )

    def on_stage_start(self, stage, epoch=None):
        """Reset the loss-term sums (train) or the emotion metrics (valid/test)."""
        super().on_stage_start(stage, epoch)  # resumed within an epoch: continue
        if stage != sb.Stage.TRAIN:
            self.emo_metrics = EmotionMetricStats(self.hparams.emotions)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log the epoch, anneal the LR, keep the checkpoints selection needs."""
        if stage == sb.Stage.TRAIN:
            self.train_stats = self.mean_train_stats(stage_loss)
            return
        summary = self.emo_metrics.summarize()
        stats = {"loss": stage_loss, **{k: summary[k] for k in ("uar", "macro_f1")}}
        if stage == sb.Stage.VALID:
            # Model selection: pooled UAR and the mean of per-language UARs.
            meta = self.selection_meta(
                summary["uar"], self.emo_metrics.uar_by_group(), epoch
            )
            stats["mean_language_uar"] = meta["mean_language_uar"]
            for lang, value in meta["uar_per_language"].items():
                stats[f"uar_{lang}"] = value
            old_lr, new_lr = self.hparams.lr_annealing(stage_loss)
            self.anneal_learning_rates(old_lr, new_lr)  # also lr_ssl
            self.hparams.train_logger.log_stats(
                stats_meta=dict(
                    epoch=epoch, lr=old_lr, grl_lambda=self.reversal_coefficient
                ),
                train_stats=self.train_stats,
                valid_stats=stats,
            )
            self.save_checkpoint(meta)
        else:
            self.test_summary = summary
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats,
            )

    def init_optimizers(self):
        """Adam on the trainable modules; a fine-tuned SSL model gets lr_ssl."""
        params = {"ssl": [], "model": []}
        for name in self.modules.keys():
            module = self.modules[name]
            group = "ssl" if name in PRETRAINED_ENCODERS else "model"
            params[group] += [p for p in module.parameters() if p.requires_grad]
        self.optimizer = self.hparams.opt_class(params["model"])
        self.optimizers_dict = {"optimizer": self.optimizer}
        if params["ssl"]:  # --freeze_ssl=False (lr_ssl), or adapters (lr_adapters)
            adapted = self.hparams.encoder_adaptation != "none"
            lr = {"lr": self.hparams.lr_adapters} if adapted else {}
            ssl_optimizer = self.hparams.ssl_opt_class(params["ssl"], **lr)
            self.optimizers_dict["ssl_optimizer"] = ssl_optimizer
        if self.checkpointer is not None:
            for name, optimizer in self.optimizers_dict.items():
                self.checkpointer.add_recoverable(name, optimizer)


def dataio_prep(hparams, manifests):
    """Create the train/valid/test datasets and the speaker label encoder.

    Emotion and language indices are fixed by the canonical lists; the
    speaker indices by the sorted training speakers (saved in save_folder).
    Utterances of confounded speakers and of pseudo-speakers (MELD's "All",
    "Both", "X and Y": data_prep.speakers.is_pseudo_speaker) get the
    adversary's ignore index; pseudo-speakers are not in the encoder.
    """
    emotion_encoder = build_label_encoder(hparams["emotions"])
    language_encoder = build_label_encoder(LANGUAGES)
    speakers = sorted(
        spk
        for spk in set(read_manifest(manifests["train"])["spk_id"])
        if not is_pseudo_speaker(spk)
    )
    speaker_encoder = build_label_encoder(speakers)
    if if_main_process():
        Path(hparams["save_folder"]).mkdir(parents=True, exist_ok=True)
        speaker_encoder.save(Path(hparams["save_folder"]) / "speaker_encoder.txt")

    @sb.utils.data_pipeline.takes("emo")
    @sb.utils.data_pipeline.provides("emo_encoded")
    def emotion_pipeline(emo):
        return emotion_encoder.encode_label_torch(emo)

    @sb.utils.data_pipeline.takes("lang")
    @sb.utils.data_pipeline.provides("lang_encoded")
    def language_pipeline(lang):
        return language_encoder.encode_label_torch(lang)

    @sb.utils.data_pipeline.takes("spk_id", "spk_confounded")
    @sb.utils.data_pipeline.provides("spk_encoded")
    def speaker_pipeline(spk_id, spk_confounded):
        if is_pseudo_speaker(spk_id) or (
            hparams["adv_skip_confounded"] and parse_flag(spk_confounded)
        ):
            return torch.LongTensor([hparams["adv_ignore_index"]])
        return speaker_encoder.encode_label_torch(spk_id)

    datasets = {}
    for split in manifests:  # train, valid, test (and test_all: paper protocol)
        datasets[split] = DynamicItemDataset.from_csv(
            csv_path=manifests[split],
            dynamic_items=[
                audio_pipeline(
                    hparams["sample_rate"], max_duration=hparams["max_duration"]
                ),
                emotion_pipeline,
                language_pipeline,
            ],
            output_keys=["id", "sig", "emo_encoded", "lang_encoded"],
        )
    datasets["train"].add_dynamic_item(speaker_pipeline)
    datasets["train"].set_output_keys(
        ["id", "sig", "emo_encoded", "lang_encoded", "spk_encoded"]
    )
    if hparams["sorting"] in ("ascending", "descending"):
        datasets["train"] = datasets["train"].filtered_sorted(
            sort_key="duration", reverse=hparams["sorting"] == "descending"
        )
        hparams["train_dataloader_options"]["shuffle"] = False
    elif hparams["sorting"] != "random":
        raise ValueError(
            f"sorting must be random, ascending or descending, got "
            f"{hparams['sorting']!r}."
        )
    return datasets, speaker_encoder


def build_modules(hparams, n_speakers):
    """Build the encoder chosen by ``encoder`` and the heads, sized to it.

    The YAML ``modules:`` entries are ``!name:`` constructors, completed here
    with the sizes known only now (encoder output size and layers, numbers of
    emotions, training speakers and languages: docs/recipe.md); build_module
    records each call so the inference folder rebuilds the same model.
    """
    constructors = hparams["modules"]
    name = hparams["encoder"]
    if name in PRETRAINED_ENCODERS:  # ssl, whisper: frozen, fine-tuned or adapted
        pretrained, hparams["ssl_source_resolved"] = run.pretrained_encoder(
            constructors, hparams["encoder_options"]
        )
        layer_sum = build_module(
            constructors["layer_sum"], num_layers=pretrained.num_layers
        )
        modules = {name: pretrained, "layer_sum": layer_sum}
        encoder_size = pretrained.output_size
    elif name in ("fbank", "fbank_stats"):
        modules = {name: build_module(constructors[name])}
        encoder_size = modules[name].output_size
    else:
        raise ValueError(
            "encoder must be 'ssl', 'whisper', 'fbank' or 'fbank_stats', got "
            f"{hparams['encoder']!r}."
        )
    modules["embedding"] = build_module(
        constructors["embedding"], input_shape=[None, encoder_size]
    )
    modules["emo_classifier"] = build_module(
        constructors["emo_classifier"], n_neurons=len(hparams["emotions"])
    )
    modules["projection"] = constructors["projection"]  # fixed sizes: built
    modules["spk_adversary"] = build_module(
        constructors["spk_adversary"], n_classes=n_speakers
    )
    modules["lang_adversary"] = build_module(
        constructors["lang_adversary"], n_classes=len(LANGUAGES)
    )
    return modules


def main(argv=None):
    """Run the recipe on ``argv`` (default sys.argv[1:]); return the Brain.

    None when the output folder holds this very run, finished: its result is
    reported and nothing is trained or tested again.
    """
    hparams_file, run_opts, overrides = sb.parse_arguments(
        sys.argv[1:] if argv is None else argv
    )
    sb.utils.distributed.ddp_init_group(run_opts)
    # Unknown keys are refused; --tuned_weights=<file> adds overrides.
    overrides = run.checked_overrides(hparams_file, overrides)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    run.check_hparams(hparams)  # bad values: one line, before any work
    if hparams["torch_num_threads"]:  # small models: 1 is faster (demo.yaml)
        torch.set_num_threads(hparams["torch_num_threads"])
    tuned = run.tuned_record(hparams["tuned_weights"], hparams["target_lang"])
    hparams["tuned_weights_record"] = tuned  # --tuned_weights, for results.json

    # The output folder holds one run: the same settings resume it (or
    # report it, if finished); other settings need --overwrite=True.
    overwrite = hparams["overwrite"]
    if not run.open_run_folder(hparams_file, overrides, run_opts, hparams, overwrite):
        return None
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )

    # Corpora -> manifests -> the zero-shot setting (main process only).
    with run.exit_on(*run.PREPARATION_ERRORS):
        manifests, train_langs = run.prepare_data(hparams["data_options"])
    datasets, speaker_encoder = dataio_prep(hparams, manifests)
    synthetic = "demo" in hparams["language_corpus"].values()
    hparams["data_note"] = SYNTHETIC_NOTE if synthetic else None

    weights = hparams["aux_loss_weights"]  # the variant's terms only
    hparams["loss_weights"] = run.loss_weights(hparams["variant"], weights)
    modules = build_modules(hparams, n_speakers=len(speaker_encoder))
    # A frozen encoder's features are computed once (feature cache) and
    # standardised if speaker_norm says so; the encoder is not checkpointed.
    frozen, spk_norm = run.prepare_features(
        hparams, hparams["feature_options"], modules, datasets, run_opts
    )
    encoder = hparams["encoder"]
    hparams["checkpointer"].add_recoverables(
        {name: m for name, m in modules.items() if not (frozen and name == encoder)}
    )

    brain = ZeroShotSER(
        modules=modules,
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
        reversal_gamma=hparams["dann_gamma"],
        selection=hparams["selection_options"],
    )
    logger.info(
        f"Training languages {train_langs}, target {hparams['target_lang']}, "
        f"loss weights {hparams['loss_weights']}"
    )

    # Training resumes from the last checkpoint of the output folder, if any.
    brain.fit(
        epoch_counter=brain.hparams.epoch_counter,
        train_set=datasets["train"],
        valid_set=datasets["valid"],
        train_loader_kwargs=run.train_loader_options(
            hparams, hparams["train_sampler_options"], datasets["train"]
        ),
        valid_loader_kwargs=hparams["test_dataloader_options"],
    )

    # Test on the unseen target with the model `selection` picks (loader
    # options copied: evaluate() adds a key).
    brain.check_selectable()
    if "test_all" in datasets:  # paper protocol: the whole target, supplementary
        brain.evaluate(
            test_set=datasets["test_all"],
            max_key=hparams["selection"],
            test_loader_kwargs=dict(hparams["test_dataloader_options"]),
        )
        brain.target_all_summary = {
            "uar": brain.test_summary["uar"],
            "macro_f1": brain.test_summary["macro_f1"],
            "n_utterances": brain.test_summary["n"],
        }
    # The target's test split (paper) or test set (speaker): the headline.
    brain.evaluate(
        test_set=datasets["test"],
        max_key=hparams["selection"],
        test_loader_kwargs=dict(hparams["test_dataloader_options"]),
    )
    if if_main_process():  # predictions, probes, export, t-SNE, results.json
        outputs = (datasets, manifests, train_langs, modules, frozen, spk_norm)
        run.write_outputs(brain, hparams, hparams["output_options"], *outputs)
    return brain


if __name__ == "__main__":
    with run.exit_on(*run.RUN_ERRORS):  # another run in the folder; bad batches
        main()
