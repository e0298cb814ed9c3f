#!/usr/bin/env python3
"""Recipe for zero-shot cross-lingual speech emotion recognition.

Implements Mi, Ma and Toda (2026), "Learning Emotion-discriminative
Representations for Zero-Shot Cross-lingual Speech Emotion Recognition": a
4-class emotion classifier (neutral, happy, angry, sad) is trained on labelled
speech of a source language, plus auxiliary languages for most variants, and
tested on a target language it never saw, not even for model selection (the
best epoch is chosen on the validation speakers of the training languages).

    wav -> encoder (frozen SSL + layer weights | filterbank ECAPA-TDNN
                    | frozen filterbank statistics)
        -> embedding MLP -> emb
             emb -> emotion classifier ............ cross-entropy
             emb -> projection head -> SupCon ..... same-emotion positives,
                                                    cross-language ones weighted
             emb -> GRL -> speaker classifier ..... speaker adversary (DANN)

    loss = CE + supcon_weight * SupCon + adv_weight * speaker adversary

The variant (--variant) selects the training languages
(zsser_modules.data_prep.zero_shot) and the loss terms (VARIANT_LOSSES below).

To run, from the repository root:
> python recipes/train.py hparams/en_de.yaml --esd_folder=/path/to/ESD \
      --emodb_folder=/path/to/EmoDB --cafe_folder=/path/to/CaFE \
      --urdu_folder=/path/to/URDU

The frozen SSL features are computed once and cached (use_feature_cache).
Two processes with DDP (also on CPU), bf16 autocast, dynamic batches
(docs/speed.md):
> torchrun --standalone --nproc_per_node=2 recipes/train.py hparams/en_de.yaml \
      --distributed_backend=gloo --device=cpu --precision=bf16 \
      --dynamic_batching=True ...

Authors
 * zsser contributors 2026
"""

import functools
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch
import yaml
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.dataset import (
    DynamicItemDataset,
    FilteredSortedDynamicItemDataset,
)
from speechbrain.utils.distributed import if_main_process, run_on_main
from speechbrain.utils.logger import get_logger

from zsser_modules.adversarial import adversarial_loss, dann_lambda
from zsser_modules.atomic_write import write_json_atomic
from zsser_modules.audio import PolicyDuration, audio_pipeline, check_max_duration
from zsser_modules.checkpoints import kill_point
from zsser_modules.data_prep import GENERATED_CORPORA, prepare_corpus
from zsser_modules.data_prep.corpus import CorpusLayoutError
from zsser_modules.data_prep.manifest import LANGUAGE_CORPUS, read_manifest
from zsser_modules.data_prep.paper_protocol import (
    Table1Error,
    check_protocol,
    check_table1,
    table1_applies,
)
from zsser_modules.data_prep.speakers import is_pseudo_speaker
from zsser_modules.data_prep.zero_shot import (
    SPLITS,
    TEST_ALL,
    VARIANTS,
    SettingError,
    build_setting,
    setting_folder,
    training_languages,
)
from zsser_modules.diagnostics import (
    HELD_OUT_UTTERANCES,
    POST_HOC_LABEL,
    POST_HOC_UTTERANCES,
    diagnostic_sets,
    run_diagnostics,
)
from zsser_modules.distributed import DistributedBrainMixin, mean_across_processes
from zsser_modules.feature_cache import (
    FeatureCache,
    encoder_cache_key,
    use_cached_features,
)
from zsser_modules.hierarchical_sampler import HierarchicalSamplerError
from zsser_modules.hparams import check_overrides
from zsser_modules.inference import (
    ENCODER_MODULES,
    PRETRAINED_ENCODERS,
    build_module,
    export_inference,
    spec_only,
)
from zsser_modules.labels import LANGUAGES, build_label_encoder
from zsser_modules.metrics import EmotionMetricStats
from zsser_modules.predictions import write_run_predictions
from zsser_modules.run_identity import (
    RESULTS_KEY,
    RunIdentity,
    RunIdentityError,
    check_run_folder,
    record_feature_cache_key,
)
from zsser_modules.sampling import (
    SeededSamplerMixin,
    check_language_sampling,
    resolve_batch_sampler,
    train_loader_kwargs,
)
from zsser_modules.selection import (
    check_selection_options,
    load_selected,
    retention,
    selected_checkpoints,
    validation_meta,
)
from zsser_modules.speaker_norm import (
    STATISTICS_POOL,
    SpeakerNorm,
    check_speaker_norm,
    normalize_datasets,
)
from zsser_modules.tsne import plot_tsne
from zsser_modules.tuning import TunedWeightsError, tuned_overrides, tuned_record

logger = get_logger(__name__)

# Auxiliary loss terms trained by each variant, on top of the emotion
# cross-entropy. The weights come from the YAML; a term with weight 0 is not
# computed at all (its head runs no forward pass and gets no gradient).
VARIANT_LOSSES = {
    "baseline1": (),
    "baseline2": (),
    "baseline2_hier": (),  # baseline2 with hierarchical batches (a control)
    "upper_bound": (),
    "no_supcon": ("spk_adv", "lang_adv"),
    "no_spkadv": ("supcon", "lang_adv"),
    "proposed": ("supcon", "spk_adv", "lang_adv"),
}
assert set(VARIANT_LOSSES) == set(VARIANTS), "a variant lacks its loss terms"
# Batches of each variant under batch_sampler=auto (zsser_modules.sampling):
# the paper's hierarchical cross-lingual batches for the systems with its
# losses (and the sampler control baseline2_hier), random batches of the same
# size for the baselines and the upper bound (the paper does not say).
VARIANT_BATCH_SAMPLER = {
    "baseline1": "random",
    "baseline2": "random",
    "baseline2_hier": "hierarchical",
    "upper_bound": "random",
    "no_supcon": "hierarchical",
    "no_spkadv": "hierarchical",
    "proposed": "hierarchical",
}
assert set(VARIANT_BATCH_SAMPLER) == set(VARIANTS), "a variant lacks its batches"


def batch_sampler_of(hparams):
    """The run's batches, ``random`` or ``hierarchical`` (batch_sampler resolved)."""
    return resolve_batch_sampler(
        hparams["batch_sampler"], hparams["variant"], VARIANT_BATCH_SAMPLER
    )


def check_hierarchical_batches(hparams):
    """Refuse, before any work, hierarchical batches a run cannot draw.

    Dynamic batches, or fewer training languages than hier_n_lang, give one
    ValueError line (a language without enough emotions is found later, on
    the training set: HierarchicalSamplerError, also one line).
    """
    if batch_sampler_of(hparams) != "hierarchical":
        return
    why = (
        f"the default of variant {hparams['variant']}"
        if hparams["batch_sampler"] == "auto"
        else "set"
    )
    if hparams["dynamic_batching"]:
        raise ValueError(
            f"batch_sampler=hierarchical ({why}) draws batches of hier_n_lang x "
            "hier_n_cls x hier_n_sam utterances, which cannot be dynamic batches: "
            "use --dynamic_batching=False or --batch_sampler=random."
        )
    try:
        langs = training_languages(
            hparams["source_lang"],
            hparams["target_lang"],
            hparams["variant"],
            list(hparams["languages"]),
            hparams["protocol"],
        )
    except ValueError:  # reported with its own message by prepare_data
        return
    if len(langs) < hparams["hier_n_lang"]:
        raise ValueError(
            f"batch_sampler=hierarchical ({why}) needs hier_n_lang="
            f"{hparams['hier_n_lang']} training languages, this run has "
            f"{len(langs)} ({', '.join(langs)}): set --hier_n_lang={len(langs)}, "
            "add languages (--languages=[...]) or use --batch_sampler=random."
        )


# Printed and saved with every result on the built-in demo corpus.
SYNTHETIC_NOTE = "synthetic demo corpus: rule-based prosody, not acted emotion"


def loss_weights(hparams):
    """Weight of each auxiliary loss term for the run's variant (0: not computed)."""
    weights = {
        "supcon": hparams["supcon_weight"],
        "spk_adv": hparams["adv_weight"],
        "lang_adv": hparams["lang_adv_weight"],
    }
    terms = VARIANT_LOSSES[hparams["variant"]]
    return {term: float(w) if term in terms else 0.0 for term, w in weights.items()}


# Folder name of each corpus under data_folder.
CORPUS_FOLDER_NAMES = {
    "esd": "ESD",
    "emodb": "EmoDB",
    "cafe": "CaFE",
    "urdu": "URDU",
    "meld": "MELD",
}


def corpus_folders(hparams):
    """Folder of each corpus as unpacked (None: not given; demo: generated).

    A corpus's own key (esd_folder, ...) wins; else, with data_folder set,
    the corpus's usual folder name under it (CORPUS_FOLDER_NAMES).
    """
    given = {
        "esd": hparams["esd_folder"],
        "emodb": hparams["emodb_folder"],
        "cafe": hparams["cafe_folder"],
        "urdu": hparams["urdu_folder"],
        "meld": hparams["meld_folder"],
    }
    root = hparams["data_folder"]
    return {
        corpus: str(Path(root) / CORPUS_FOLDER_NAMES[corpus])
        if folder is None and root is not None
        else folder
        for corpus, folder in given.items()
    }


@sb.utils.checkpoints.register_checkpoint_hooks
class ZeroShotSER(SeededSamplerMixin, DistributedBrainMixin, sb.Brain):
    """Emotion classifier with cross-lingual SupCon and a speaker adversary.

    DistributedBrainMixin: torchrun + DDP also on CPU (zsser_modules.distributed).
    SeededSamplerMixin: the training sampler is seeded from --seed and
    reshuffled every epoch (zsser_modules.sampling).
    Resuming is exact (docs/recipe.md): the checkpoints hold the random
    generators (hparams checkpointer), the step counts and, within an epoch,
    the running loss terms (_save below).
    """

    def compute_forward(self, batch, stage):
        """Encoder -> embedding -> emotion log-probabilities (+ training heads)."""
        batch = batch.to(self.device)
        # A frozen encoder's outputs come from the feature cache
        # (cache_encoder_features); a trainable one runs on the audio.
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
        loss = self.hparams.compute_cost(outputs["log_probs"], emo)
        if stage != sb.Stage.TRAIN:
            lang, _ = batch.lang_encoded
            self.emo_metrics.append(
                batch.id,
                outputs["log_probs"],
                emo,
                groups=[LANGUAGES[i] for i in lang.squeeze(1).tolist()],
            )
            return loss

        terms = {"ce": loss}
        if "proj" in outputs:
            lang, _ = batch.lang_encoded
            terms["supcon"] = self.hparams.supcon_loss(
                outputs["proj"], emo, lang.squeeze(1)
            )
        ignore = self.hparams.adv_ignore_index
        if "spk_logits" in outputs:
            spk, _ = batch.spk_encoded
            terms["spk_adv"] = adversarial_loss(
                outputs["spk_logits"], spk.squeeze(1), ignore
            )
        if "lang_logits" in outputs:
            lang, _ = batch.lang_encoded
            terms["lang_adv"] = adversarial_loss(
                outputs["lang_logits"], lang.squeeze(1), ignore
            )
        for name, value in terms.items():
            self.term_sums[name] += float(value.detach())
        self.term_batches += 1
        return loss + sum(
            self.hparams.loss_weights[name] * value
            for name, value in terms.items()
            if name != "ce"
        )

    def on_fit_batch_start(self, batch, should_step):
        """Set the gradient reversal scale from the training progress (DANN)."""
        kill_point(f"{self.hparams.epoch_counter.current}:{self.step}")  # tests
        if getattr(self, "resumed_within_epoch", False):
            # The loader's new iterator drew a seed since the checkpoint.
            self.checkpointer.recoverables["random_state"].restore_loaded()
            self.resumed_within_epoch = False
        progress = self.optimizer_step / max(1, self.total_steps)
        self.grl_lambda = dann_lambda(progress, gamma=self.hparams.dann_gamma)
        for name in ("spk_adversary", "lang_adversary"):
            adversary = self.modules[name]
            getattr(adversary, "module", adversary).set_lambda(self.grl_lambda)

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **kwargs):
        """Also record the planned number of optimizer steps (DANN progress)."""
        loader = super().make_dataloader(dataset, stage, ckpt_prefix, **kwargs)
        if stage == sb.Stage.TRAIN:
            epochs = self.hparams.epoch_counter.limit
            self.total_steps = len(loader) * epochs // self.grad_accumulation_factor
        return loader

    def on_stage_start(self, stage, epoch=None):
        """Reset the loss-term sums (train) or the emotion metrics (valid/test)."""
        if stage == sb.Stage.TRAIN:
            # Resumed within this epoch (self.step > 0): continue the sums.
            sums, batches = getattr(self, "_recovered_terms", (Counter(), 0))
            resumed = self.step > 0
            self.term_sums = Counter(sums) if resumed else Counter()
            self.term_batches = batches if resumed else 0
            self._recovered_terms = (Counter(), 0)
            self.resumed_within_epoch = resumed and "random_state" in getattr(
                self.checkpointer, "recoverables", {}
            )
            self.grl_lambda = 0.0
        else:
            self.emo_metrics = EmotionMetricStats(self.hparams.emotions)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log the epoch, anneal the LR, keep the best checkpoint by valid UAR."""
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss}
            for name, total in self.term_sums.items():
                self.train_stats[name] = total / max(1, self.term_batches)
            # Under DDP each process saw its own batches: log their mean.
            self.train_stats = mean_across_processes(self.train_stats)
            return

        summary = self.emo_metrics.summarize()
        stats = {
            "loss": stage_loss,
            "uar": summary["uar"],
            "macro_f1": summary["macro_f1"],
        }
        if stage == sb.Stage.VALID:
            # Model selection: every score in the meta, the best by `selection`.
            meta = validation_meta(
                summary["uar"], self.emo_metrics.uar_by_group(), epoch
            )
            stats["mean_language_uar"] = meta["mean_language_uar"]
            for lang, value in meta["uar_per_language"].items():
                stats[f"uar_{lang}"] = value
            old_lr, new_lr = self.hparams.lr_annealing(stage_loss)
            self.anneal_learning_rates(old_lr, new_lr)
            self.hparams.train_logger.log_stats(
                stats_meta={
                    "epoch": epoch,
                    "lr": old_lr,
                    "grl_lambda": self.grl_lambda,
                },
                train_stats=self.train_stats,
                valid_stats=stats,
            )
            # Keep what selection needs (the k best or last with averaging).
            self.checkpointer.save_and_keep_only(
                meta=meta, **retention(*selection_options(vars(self.hparams))[:3])
            )
        else:
            self.test_summary = summary
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats,
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
            *selection_options(vars(self.hparams))[:3],
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

    def init_optimizers(self):
        """Adam on the trainable modules; a fine-tuned SSL model gets lr_ssl."""
        params = {"ssl": [], "model": []}
        for name in self.modules.keys():
            module = self.modules[name]
            group = "ssl" if name in PRETRAINED_ENCODERS else "model"
            params[group] += [p for p in module.parameters() if p.requires_grad]
        self.optimizer = self.hparams.opt_class(params["model"])
        self.optimizers_dict = {"optimizer": self.optimizer}
        if params["ssl"]:  # only with --freeze_ssl=False
            ssl_optimizer = self.hparams.ssl_opt_class(params["ssl"])
            self.optimizers_dict["ssl_optimizer"] = ssl_optimizer
        if self.checkpointer is not None:
            for name, optimizer in self.optimizers_dict.items():
                self.checkpointer.add_recoverable(name, optimizer)

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


def prepare_data(hparams):
    """Prepare the corpora this run needs and build its zero-shot setting.

    The corpus manifests and the setting are written on the main process only
    (and skipped when up to date); every process returns the same paths.

    Under ``protocol: paper`` the zero-shot variants also get
    ``manifests["test_all"]`` (the whole target), and a paper task on the
    real corpora is compared with Table 1 (``table1_check``).

    Returns
    -------
    manifests : dict
        ``{"train": Path, "valid": Path, "test": Path}`` (and ``test_all``).
    train_langs : list of str
        The training languages of the variant.
    """
    source, target = hparams["source_lang"], hparams["target_lang"]
    pool = list(hparams["languages"])
    for role, lang in (("source_lang", source), ("target_lang", target)):
        if lang not in pool:
            raise SettingError(
                f"{role}={lang!r} is not in languages={pool}: add it "
                f"(e.g. --languages=[{','.join(pool + [lang])}])."
            )
    protocol, paper_split = hparams["protocol"], hparams["paper_split"]
    train_langs = training_languages(source, target, hparams["variant"], pool, protocol)
    used = list(dict.fromkeys(train_langs + [target]))
    corpus_of = {**LANGUAGE_CORPUS, **hparams["language_corpus"]}
    corpora = list(dict.fromkeys(corpus_of[lang] for lang in used))
    folder = setting_folder(
        hparams["settings_folder"],
        source,
        target,
        hparams["variant"],
        hparams["split_seed"],
        protocol,
        paper_split,
    )
    names = list(SPLITS)
    if protocol == "paper" and hparams["variant"] != "upper_bound":
        names.append(TEST_ALL)
    manifests = {split: folder / f"{split}.csv" for split in names}

    if hparams["skip_prep"]:
        missing = [str(path) for path in manifests.values() if not path.is_file()]
        if missing:
            raise SettingError(
                f"skip_prep is True but the setting is missing: {missing}. "
                "Run once without --skip_prep=True."
            )
        return manifests, train_langs

    folders = corpus_folders(hparams)
    missing = [
        c for c in corpora if c not in GENERATED_CORPORA and folders.get(c) is None
    ]
    if missing:
        needs = ", ".join(
            f"{c} (for {'/'.join(lang for lang in used if corpus_of[lang] == c)})"
            for c in missing
        )
        keys = " ".join(f"--{c}_folder=/path/to/{c}" for c in missing)
        raise SettingError(
            f"This run ({source}->{target}, variant {hparams['variant']}) uses the "
            f"languages {used}; no folder is set for the corpora {needs}. Set "
            f"{keys} (or the {', '.join(c + '_folder' for c in missing)} key in "
            "the YAML, or --data_folder=/path/to/corpora holding "
            + ", ".join(CORPUS_FOLDER_NAMES.get(c, c) + "/" for c in missing)
            + "), or drop auxiliary languages from the pool with --languages=[...]."
        )
    for corpus in corpora:
        options = {"keep_all_classes": hparams["keep_all_classes"]}
        if corpus in GENERATED_CORPORA:  # the built-in demo corpus
            options.update(hparams["demo_options"])
        run_on_main(
            prepare_corpus,
            kwargs={
                "name": corpus,
                "data_folder": folders.get(corpus),
                "save_folder": hparams["prep_folder"],
                **options,
            },
        )
    run_on_main(
        build_setting,
        kwargs={
            "manifests": [Path(hparams["prep_folder"]) / f"{c}.csv" for c in corpora],
            "source": source,
            "target": target,
            "variant": hparams["variant"],
            "save_folder": hparams["settings_folder"],
            "seed": hparams["split_seed"],
            "valid_ratio": hparams["valid_ratio"],
            "test_ratio": hparams["test_ratio"],
            "valid_min_per_class": hparams["valid_min_per_class"],
            "languages": used,
            "classes": hparams["emotions"],
            "protocol": protocol,
            "paper_split": paper_split,
        },
    )
    if hparams["table1_check"]:
        run_table1_check(hparams, manifests, corpus_of)
    return manifests, train_langs


def run_table1_check(hparams, manifests, corpus_of):
    """Compare a paper task's training set with Table 1 (paper_protocol).

    Every process reads the setting (so all stop together); the main process
    prints the line with the size and the speaker count beside the paper's.
    A difference raises Table1Error (one line: which corpus, expected, found,
    and --table1_check=False).
    """
    if hparams["keep_all_classes"]:
        logger.info("Table 1 check not applied: Table 1 counts the 4 classes only.")
        return
    summary = json.loads(
        (manifests["train"].parent / "setting.json").read_text(encoding="utf-8")
    )
    sizes = {}
    for key, n in summary["corpus_sizes"].items():
        corpus, lang = key.split("/")
        if corpus_of.get(lang) == corpus:
            sizes[corpus] = n
    applies, why = table1_applies(
        hparams["source_lang"],
        hparams["target_lang"],
        # Table 1 sizes the training set of every non-target language
        set(summary["training_languages"])
        == set(hparams["languages"]) - {hparams["target_lang"]},
        hparams["languages"],
        corpus_of,
        sizes,
        hparams["protocol"],
    )
    if not applies:
        logger.info(f"Table 1 check not applied: {why}.")
        return
    line = check_table1(read_manifest(manifests["train"]), hparams["target_lang"])
    if if_main_process():
        print(line)


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
            hparams["adv_skip_confounded"] and int(spk_confounded)
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


def train_loader_options(hparams, train_set):
    """DataLoader options of the train set (zsser_modules.sampling).

    Hierarchical cross-lingual batches, or fixed-size or dynamic batches with
    natural or language-balanced sampling, seeded from --seed and reshuffled
    every epoch. Records the hierarchical batches in hparams (results.json).
    """
    options = train_loader_kwargs(
        train_set,
        language_sampling=hparams["language_sampling"],
        seed=hparams["seed"],
        loader_options=hparams["train_dataloader_options"],
        dynamic_batching=hparams["dynamic_batching"],
        # buckets by the length after the max_duration crop (docs/recipe.md)
        dynamic_options={
            "length_func": PolicyDuration(hparams["max_duration"]),
            **hparams["dynamic_batch_sampler"],
        },
        batch_sampler=batch_sampler_of(hparams),
        n_lang=hparams["hier_n_lang"],
        n_cls=hparams["hier_n_cls"],
        n_sam=hparams["hier_n_sam"],
        num_batches=hparams["hier_batches_per_epoch"],
    )
    sampler = options.get("batch_sampler")
    if batch_sampler_of(hparams) == "hierarchical":
        hparams["hierarchical_batches"] = {
            "n_lang": sampler.n_lang,
            "n_cls": sampler.n_cls,
            "n_sam": sampler.n_sam,
            "batch_size": sampler.batch_size,
            "batches_per_epoch": sampler.num_batches,
            "languages": [str(lang) for lang in sampler.languages],
        }
    return options


def cache_encoder_features(hparams, encoder, datasets, run_opts):
    """Compute a frozen encoder's output for every utterance once.

    The outputs (pooled layers [L+1, D] float32 for a frozen SSL model, the
    statistics vector for FbankStatsEncoder) are stored in
    feature_cache_folder under a key of the encoder's weights and settings,
    so every later epoch, run, variant and seed with the same encoder reads
    them back; the datasets then give ``encoder_feats`` instead of the audio
    ``sig``. Under DDP the main process computes them while the others wait.
    Returns the counts of computed and reused entries.
    """
    key = encoder_cache_key(
        encoder,
        sample_rate=hparams["sample_rate"],
        max_duration=hparams["max_duration"],
    )
    # The key hashes the encoder's weights: a run refuses to resume with
    # another encoder under the same settings (zsser_modules.run_identity).
    record_feature_cache_key(hparams["output_folder"], key, write=False)
    run_on_main(record_feature_cache_key, args=[hparams["output_folder"], key])
    cache = FeatureCache(hparams["feature_cache_folder"], key)
    return use_cached_features(
        datasets.values(),
        cache,
        encoder,
        replaces="sig",
        provides="encoder_feats",
        batch_size=hparams["feature_cache_batch_size"],
        device=run_opts.get("device") or sb.utils.distributed.infer_device(),
        progressbar=not run_opts.get("noprogressbar", False),
        # rebuilds the (released) encoder if an entry is found corrupt when read
        encoder_factory=functools.partial(
            build_module, hparams["modules"][hparams["encoder"]]
        ),
    )


def speaker_normalize(hparams, datasets):
    """Standardise the cached features (speaker_norm: zsser_modules.speaker_norm).

    per_speaker: every utterance uses its speaker's statistics over its own
    split's utterances (test_all: over test_all's; so the test split is
    normalised alike for every system), computed in one pass over the
    feature cache from the features and the ``spk_id`` column only
    (transductive for the test speakers). per_speaker_enrolment: each
    speaker's statistics from speaker_norm_enrolment of its utterances in
    the split (drawn with split_seed; a speaker with that many or fewer uses
    all, counted per split, with a warning for the test split). training:
    the training utterances' global
    statistics for every utterance. Returns the inference fallback, a
    SpeakerNorm holding the global statistics of the training utterances,
    or None with speaker_norm: none (nothing changes).
    """
    mode = hparams["speaker_norm"]
    if mode == "none":
        return None
    summary = normalize_datasets(
        datasets,
        mode=mode,
        enrolment=hparams["speaker_norm_enrolment"],
        enrolment_seed=hparams["split_seed"],
    )
    hparams["speaker_norm_speakers"] = summary["speakers"]
    if summary["enrolment"] is not None:
        hparams["speaker_norm_enrolment_utterances"] = summary["enrolment"]
        hparams["speaker_norm_enrolment_fallback_speakers"] = summary["fallback"]
        if summary["fallback"].get("test"):
            logger.warning(
                f"speaker_norm=per_speaker_enrolment: {summary['fallback']['test']} "
                f"test speaker(s) have speaker_norm_enrolment="
                f"{hparams['speaker_norm_enrolment']} or fewer test utterances and "
                "are normalised with all of them (transductive in practice): "
                "choose a smaller --speaker_norm_enrolment."
            )
    mean, std = summary["global"]
    fallback = build_module(SpeakerNorm, feature_shape=list(mean.shape))
    fallback.set_statistics(mean, std)
    logger.info(
        f"Features standardised ({mode}): speakers per split {summary['speakers']}"
        + (
            f", enrolment utterances per split {summary['enrolment']}"
            if summary["enrolment"] is not None
            else ""
        )
        + "."
    )
    return fallback


def build_modules(hparams, n_speakers):
    """Build the encoder chosen by ``encoder`` and the heads, sized to it.

    The YAML ``modules:`` block names every module of the Brain; its entries
    are ``!name:`` constructors, completed here with the sizes known only now
    (the encoder's output size and layers, the numbers of emotions, training
    speakers and languages: docs/recipe.md). build_module records each call
    so the inference folder can rebuild the same model.
    """
    constructors = hparams["modules"]
    name = hparams["encoder"]
    if name in PRETRAINED_ENCODERS:  # ssl, whisper
        pretrained = build_module(constructors[name])
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


def sample_per_language(dataset, manifest, n_per_language, seed):
    """A seeded subset of ``dataset`` with at most n utterances per language."""
    frame = read_manifest(manifest)
    ids = []
    for _, group in frame.groupby("lang", sort=True):
        ids += group.sample(min(len(group), n_per_language), random_state=seed)[
            "ID"
        ].tolist()
    return FilteredSortedDynamicItemDataset(dataset, sorted(ids))


def selection_options(hparams):
    """selection, selection_average, selection_average_of, lr_schedule."""
    return (
        hparams["selection"],
        hparams["selection_average"],
        hparams["selection_average_of"],
        hparams["lr_schedule"],
    )


def write_results(brain, hparams, datasets, manifests, train_langs, write=True):
    """Write results.json (test metrics, best epoch, setting); return it.

    ``run_identity`` is the short hash of the run's settings
    (zsser_modules.run_identity; the settings are in run_identity.json).
    """
    options = selection_options(hparams)
    best = selected_checkpoints(brain.checkpointer, *options[:3])[0]
    summary = brain.test_summary
    results = {
        "source": hparams["source_lang"],
        "target": hparams["target_lang"],
        "variant": hparams["variant"],
        "seed": hparams["seed"],
        "protocol": hparams["protocol"],
        "paper_split": hparams["paper_split"]
        if hparams["protocol"] == "paper"
        else None,
        "encoder": hparams["encoder"],
        "ssl_source": hparams["ssl_source"]
        if hparams["encoder"] in PRETRAINED_ENCODERS
        else None,
        "uar": summary["uar"],
        "macro_f1": summary["macro_f1"],
        "accuracy": summary["accuracy"],
        "per_class_recall": summary["per_class_recall"],
        "per_class_f1": summary["per_class_f1"],
        "confusion_matrix": summary["confusion_matrix"],
        "classes": summary["classes"],
        "n_test": summary["n"],
        # paper protocol, zero-shot variants: the whole target (supplementary)
        "target_all": getattr(brain, "target_all_summary", None),
        "best_epoch": best.meta["epoch"],
        "best_valid_uar": best.meta["uar"],
        # selection, selection_average(_of), selected_epochs (averaged)
        **getattr(brain, "selected", {"selection": hparams["selection"]}),
        "lr_schedule": options[3],
        "valid_mean_language_uar": best.meta.get("mean_language_uar"),
        "valid_uar_per_language": best.meta.get("uar_per_language"),
        "batch_sampler": batch_sampler_of(hparams),
        "hierarchical_batches": hparams.get("hierarchical_batches"),
        # Not used with hierarchical batches (they replace it).
        "language_sampling": hparams["language_sampling"],
        "speaker_norm": hparams["speaker_norm"],
        "speaker_norm_speakers": hparams.get("speaker_norm_speakers"),
        # whose utterances give a speaker's statistics (speaker_norm.py)
        "speaker_norm_pool": {
            "per_speaker": STATISTICS_POOL,
            "per_speaker_enrolment": STATISTICS_POOL,
            "training": "train",
        }.get(hparams["speaker_norm"]),
        # per_speaker_enrolment: k, and the enrolment utterances per split
        # (those of the test split are scored too)
        "speaker_norm_enrolment": hparams["speaker_norm_enrolment"]
        if hparams["speaker_norm"] == "per_speaker_enrolment"
        else None,
        "speaker_norm_enrolment_utterances": hparams.get(
            "speaker_norm_enrolment_utterances"
        ),
        # speakers normalised with all their utterances (k or fewer), per split
        "speaker_norm_enrolment_fallback_speakers": hparams.get(
            "speaker_norm_enrolment_fallback_speakers"
        ),
        "training_languages": train_langs,
        "loss_weights": {"ce": 1.0, **hparams["loss_weights"]},
        "temperature": hparams["temperature"],
        "cross_lingual_weight": hparams["cross_lingual_weight"],
        "tuned_weights": hparams["tuned_weights_record"],  # None: the YAML's
        "n_train": len(datasets["train"]),
        "n_valid": len(datasets["valid"]),
        "setting": {split: str(path) for split, path in manifests.items()},
        "debug": brain.debug,
        "note": hparams["data_note"],
        RESULTS_KEY: hparams["run_identity"],
    }
    if write:
        write_json_atomic(hparams["results_file"], results)
    return results


def diagnose(brain, hparams, datasets, manifests, frozen):
    """Linear probes of the learned embedding and the raw encoder features.

    On utterances the model never trained on (zsser_modules.diagnostics,
    diagnostic_sets; at most diagnostics_per_speaker per speaker, seeded):
    the validation utterances of the training languages (the returned dict),
    and post hoc, the same plus the target's test utterances (its
    ``post_hoc`` entry, labelled "post hoc"). The raw features (the frozen
    encoder's output, its pooled layers averaged for SSL/Whisper) are
    probed on the same utterances.
    """
    seed, per_speaker = hparams["seed"], hparams["diagnostics_per_speaker"]
    frames = {split: read_manifest(manifests[split]) for split in SPLITS}
    sets = diagnostic_sets(
        frames["train"], frames["valid"], frames["test"], per_speaker, seed
    )
    trained = set(frames["train"]["ID"])
    encoded = {}
    for split in ("valid", "test"):
        post_hoc = sets["post_hoc"]
        ids = sorted(set(post_hoc.loc[post_hoc["split"] == split, "ID"]))
        subset = FilteredSortedDynamicItemDataset(datasets[split], ids)
        out = brain.representations(subset)
        if set(out["ids"]) & trained:  # diagnostic_sets excludes them
            raise RuntimeError("diagnostics: a training utterance reached a probe")
        for i, utt in enumerate(out["ids"]):
            encoded[utt] = (out["emb"][i].numpy(), out["features"][i].numpy())
    encoder = hparams["encoder"]
    if not frozen:
        description = None
    elif "layer_sum" in ENCODER_MODULES[encoder]:
        description = (
            f"frozen {encoder} encoder ({hparams['ssl_source']}): mean over its "
            "pooled layers (uniform weights, the layer_sum's starting point)"
        )
    else:
        description = f"frozen {encoder} features"
    if description and hparams["speaker_norm"] != "none":
        description += f", standardised (speaker_norm: {hparams['speaker_norm']})"
    seen = set(frames["train"]["spk_id"])
    blocks = {}
    for name, frame in sets.items():
        ids = frame["ID"].tolist()
        block = run_diagnostics(
            np.stack([encoded[utt][0] for utt in ids]),
            frame["spk_id"].to_numpy(),
            frame["lang"].to_numpy(),
            frame["emo"].to_numpy(),
            raw=np.stack([encoded[utt][1] for utt in ids]) if frozen else None,
            raw_description=description,
            speaker_rows=frame["probe_speaker"].to_numpy(),
            seed=seed,
        )
        probed = frame.loc[frame["probe_speaker"], "spk_id"]
        block["utterances"] = (
            HELD_OUT_UTTERANCES if name == "held_out" else POST_HOC_UTTERANCES
        )
        block["n_speakers_seen_in_training"] = len(set(frame["spk_id"]) & seen)
        block["n_speaker_probe_speakers_seen_in_training"] = len(set(probed) & seen)
        block["n_training_utterances"] = 0  # checked above
        blocks[name] = block
    post_hoc = blocks["post_hoc"]
    post_hoc["label"] = POST_HOC_LABEL
    target = hparams["target_lang"]
    to_target = {
        pair: uar
        for pair, uar in (post_hoc.get("emotion_transfer_pairs") or {}).items()
        if pair.endswith(f"->{target}")
    }
    post_hoc["emotion_transfer_to_target_uar"] = (
        float(np.mean(list(to_target.values()))) if to_target else None
    )
    return {**blocks["held_out"], "post_hoc": post_hoc}


def plot_embeddings(brain, hparams, datasets, manifests):
    """t-SNE of the learned space (best checkpoint), as in the paper's Fig. 2.

    Shows the target language's test utterances and the training languages'
    validation utterances (at most tsne_per_language of each language).
    """
    n, seed = hparams["tsne_per_language"], hparams["seed"]
    if not n:  # tsne_per_language: 0, e.g. the tuner's trial runs
        return
    embeddings, emotions, languages = [], [], []
    for split in ("valid", "test"):
        subset = sample_per_language(datasets[split], manifests[split], n, seed)
        emb, emo, lang = brain.embed(subset)
        embeddings.append(emb)
        emotions += emo
        languages += lang
    embeddings = torch.cat(embeddings)
    if float(embeddings.std(dim=0).max()) < 1e-8:
        logger.warning("All embeddings are identical: no t-SNE figure written.")
        return
    plot_tsne(
        embeddings,
        emotions,
        languages,
        hparams["tsne_file"],
        title=f"{hparams['source_lang']} -> {hparams['target_lang']}, "
        f"{hparams['variant']} ({hparams['encoder']})"
        + (f"\n{hparams['data_note']}" if hparams["data_note"] else ""),
        seed=seed,
        target_language=hparams["target_lang"],
    )


def finished_results(hparams):
    """The results.json of this very run if it finished (same run identity)."""
    path = Path(hparams["results_file"])
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict):
        return None
    return results if results.get(RESULTS_KEY) == hparams["run_identity"] else None


def print_result_line(results, results_file):
    """One line with the test figures of a run."""
    protocol = results.get("protocol") or "speaker"
    if results.get("paper_split"):
        protocol += f", {results['paper_split']}"
    every = results.get("target_all")
    print(
        f"{results['source']} -> {results['target']} ({results['variant']}, "
        f"{results['encoder']}, seed {results['seed']}, {protocol} protocol): "
        f"test UAR {results['uar']:.2%}, macro-F1 {results['macro_f1']:.2%} on "
        f"{results['n_test']} utterances"
        + (
            f"; whole target UAR {every['uar']:.2%} on {every['n_utterances']}"
            if every
            else ""
        )
        + f" -> {results_file}"
    )


def main(argv=None):
    """Run the recipe (``argv``: command-line arguments, default sys.argv[1:]).

    Returns the trained Brain (used by the tests), or None when the output
    folder already holds this run, finished: its results are reported and
    nothing is trained or tested again.
    """
    hparams_file, run_opts, overrides = sb.parse_arguments(
        sys.argv[1:] if argv is None else argv
    )
    sb.utils.distributed.ddp_init_group(run_opts)

    # Every file of hparams/ is standalone (generated from hparams/template/).
    try:
        check_overrides(hparams_file, overrides)
    except (OSError, ValueError) as error:
        print(f"recipes/train.py: {error}", file=sys.stderr)
        sys.exit(2)
    try:  # --tuned_weights=<file>: its values for this target become overrides
        overrides = tuned_overrides(hparams_file, overrides)
    except TunedWeightsError as error:
        print(f"recipes/train.py: {error}", file=sys.stderr)
        sys.exit(2)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    hparams["tuned_weights_record"] = tuned_record(
        hparams["tuned_weights"], hparams["target_lang"]
    )
    if hparams["torch_num_threads"]:
        torch.set_num_threads(hparams["torch_num_threads"])
    # Bad values are refused before the run folder is touched.
    try:
        check_protocol(hparams["protocol"], hparams["paper_split"])
        check_selection_options(*selection_options(hparams))
        check_language_sampling(hparams["language_sampling"])
        check_max_duration(hparams["max_duration"])
        check_hierarchical_batches(hparams)
        check_speaker_norm(
            hparams["speaker_norm"],
            frozen=hparams["encoder"] == "fbank_stats"
            or (hparams["encoder"] in PRETRAINED_ENCODERS and hparams["freeze_ssl"]),
            cached=hparams["use_feature_cache"],
            enrolment=hparams["speaker_norm_enrolment"],
        )
    except ValueError as error:
        print(f"recipes/train.py: {error}", file=sys.stderr)
        sys.exit(2)

    # The run folder holds one run: the same settings resume it (or report
    # it, if finished); other settings are refused unless --overwrite=True.
    identity = RunIdentity.from_hparams(hparams_file, overrides, run_opts)
    hparams["run_identity"] = identity.hash
    folder = hparams["output_folder"]
    overwrite = hparams["overwrite"]
    check_run_folder(folder, identity, overwrite, write=False)  # every process
    state = run_on_main(check_run_folder, args=[folder, identity, overwrite])
    if state and state.startswith("archived:"):
        logger.warning(f"--overwrite=True: the old run was moved to {state[9:]}.")
    finished = finished_results(hparams)
    if finished is not None and not run_opts.get("test_only"):
        if if_main_process():
            print(f"This run already finished (run identity {identity.hash}):")
            print_result_line(finished, hparams["results_file"])
            print(
                "Nothing was trained or tested. Add --test_only to test its best "
                "checkpoint again, or --overwrite=True to train it afresh."
            )
        return None
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )

    try:
        manifests, train_langs = prepare_data(hparams)
    except (CorpusLayoutError, SettingError, Table1Error) as error:
        print(f"recipes/train.py: {error}", file=sys.stderr)
        sys.exit(2)
    datasets, speaker_encoder = dataio_prep(hparams, manifests)
    synthetic = "demo" in hparams["language_corpus"].values()
    hparams["data_note"] = SYNTHETIC_NOTE if synthetic else None

    hparams["loss_weights"] = loss_weights(hparams)
    modules = build_modules(hparams, n_speakers=len(speaker_encoder))
    # A frozen encoder (SSL with freeze_ssl, FbankStatsEncoder) has no
    # trainable weight: it is not checkpointed, its constructor rebuilds it.
    encoder = hparams["encoder"]
    frozen = not any(p.requires_grad for p in modules[encoder].parameters())
    hparams["encoder_is_cached"] = frozen and hparams["use_feature_cache"]
    if hparams["encoder_is_cached"]:
        # Same features in every epoch: compute them once, then free the
        # encoder (only its constructor call is exported).
        cache_encoder_features(hparams, modules[encoder], datasets, run_opts)
        modules[encoder] = spec_only(modules[encoder])
    speaker_norm = speaker_normalize(hparams, datasets)  # None: speaker_norm=none
    hparams["checkpointer"].add_recoverables(
        {name: m for name, m in modules.items() if not (frozen and name == encoder)}
    )

    brain = ZeroShotSER(
        modules=modules,
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
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
        train_loader_kwargs=train_loader_options(hparams, datasets["train"]),
        valid_loader_kwargs=hparams["test_dataloader_options"],
    )

    # Test on the unseen target language with the best epoch by `selection`
    # (the loader options are copied: evaluate() adds a key to them).
    if not selected_checkpoints(brain.checkpointer, *selection_options(hparams)[:3]):
        raise RuntimeError(
            "No checkpoint with a validation UAR in "
            f"{brain.checkpointer.checkpoints_dir} with a {hparams['selection']} "
            "score: train first (without --test_only)."
        )
    if TEST_ALL in datasets:  # paper protocol: the whole target, supplementary
        brain.evaluate(
            test_set=datasets[TEST_ALL],
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
    if if_main_process():
        # results.json is written last: a run killed before it is not
        # finished, and its rerun exports, probes and plots again.
        results = write_results(
            brain, hparams, datasets, manifests, train_langs, write=False
        )
        # Per-utterance predictions (test, and test_all where present).
        write_run_predictions(brain, hparams, datasets, manifests)
        if hparams["diagnostics"]:  # probes of the representation (held out)
            diagnostics = diagnose(brain, hparams, datasets, manifests, frozen)
            results["diagnostics_post_hoc"] = diagnostics.pop("post_hoc")
            results["diagnostics"] = diagnostics
        export_inference(
            hparams["inference_folder"],
            hparams["encoder"],
            {**modules, "speaker_norm": speaker_norm}
            if speaker_norm is not None
            else modules,
            hparams["emotions"],
            features=("speaker_norm",) if speaker_norm is not None else (),
            sample_rate=hparams["sample_rate"],
            max_duration=hparams["max_duration"],
            weights_from_source=(encoder,) if frozen else (),
            metadata={
                "source": results["source"],
                "target": results["target"],
                "variant": results["variant"],
                "training_languages": train_langs,
                "best_epoch": results["best_epoch"],
                "test_uar": results["uar"],
                "speaker_norm": hparams["speaker_norm"],
            },
        )
        plot_embeddings(brain, hparams, datasets, manifests)
        write_json_atomic(hparams["results_file"], results)
        print_result_line(results, hparams["results_file"])
        if hparams["data_note"]:
            print(f"NOTE: {hparams['data_note']}.")
    return brain


if __name__ == "__main__":
    try:
        main()
    except (RunIdentityError, HierarchicalSamplerError) as error:
        print(f"recipes/train.py: {error}", file=sys.stderr)
        sys.exit(2)
