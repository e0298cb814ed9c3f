"""What a finished run writes: results.json, predictions, probes, t-SNE, export.

:func:`write_outputs` runs on the main process after testing, in this
order: per-utterance predictions, the diagnostics (linear probes of the
learned embedding and the raw features), the inference folder, the t-SNE
figure, and results.json last, so a run killed before it is not finished
and its rerun completes it.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from speechbrain.dataio.dataset import FilteredSortedDynamicItemDataset
from speechbrain.utils.logger import get_logger

from zsser_modules.atomic_write import write_json_atomic
from zsser_modules.data_prep.manifest import read_manifest
from zsser_modules.data_prep.zero_shot import SPLITS
from zsser_modules.diagnostics import (
    HELD_OUT_UTTERANCES,
    POST_HOC_LABEL,
    POST_HOC_UTTERANCES,
    diagnostic_sets,
    run_diagnostics,
)
from zsser_modules.inference import (
    ENCODER_MODULES,
    PRETRAINED_ENCODERS,
    export_inference,
)
from zsser_modules.predictions import write_run_predictions
from zsser_modules.run_identity import RESULTS_KEY
from zsser_modules.selection import selected_checkpoints
from zsser_modules.speaker_norm import STATISTICS_POOL
from zsser_modules.tsne import plot_tsne

from .folder import print_result_line
from .options import selection_options
from .variants import batch_sampler_of

logger = get_logger(__name__)


def write_outputs(
    brain: Any,
    hparams: dict,
    options: Mapping[str, Any],
    datasets: dict,
    manifests: dict,
    train_langs: list[str],
    modules: dict,
    frozen: bool,
    speaker_norm: Any,
) -> dict:
    """Write everything a tested run leaves (main process only; see the module).

    ``options`` is the YAML's ``output_options`` (the files written, the
    t-SNE figure's size, the diagnostics: every such option is read there).
    ``modules`` are the Brain's modules as built (a cached encoder as its
    constructor call); ``frozen`` and ``speaker_norm`` as returned by
    :func:`zsser_modules.run.features.prepare_features`. Returns the results.
    """
    results = write_results(brain, hparams, datasets, manifests, train_langs)
    # Per-utterance predictions (test, and test_all where present).
    write_run_predictions(brain, hparams, datasets, manifests)
    if options["diagnostics"]:  # probes of the representation (held out)
        diagnostics = diagnose(
            brain,
            hparams,
            datasets,
            manifests,
            frozen,
            options["diagnostics_per_speaker"],
        )
        results["diagnostics_post_hoc"] = diagnostics.pop("post_hoc")
        results["diagnostics"] = diagnostics
    encoder = hparams["encoder"]
    export_inference(
        options["inference_folder"],
        encoder,
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
    plot_embeddings(
        brain,
        hparams,
        datasets,
        manifests,
        options["tsne_per_language"],
        options["tsne_file"],
    )
    write_json_atomic(options["results_file"], results)
    print_result_line(results, options["results_file"])
    if hparams["data_note"]:
        print(f"NOTE: {hparams['data_note']}.")
    return results


def sample_per_language(
    dataset: Any, manifest: Path, n_per_language: int, seed: int
) -> FilteredSortedDynamicItemDataset:
    """A seeded subset of ``dataset`` with at most n utterances per language."""
    frame = read_manifest(manifest)
    ids = []
    for _, group in frame.groupby("lang", sort=True):
        ids += group.sample(min(len(group), n_per_language), random_state=seed)[
            "ID"
        ].tolist()
    return FilteredSortedDynamicItemDataset(dataset, sorted(ids))


def write_results(
    brain: Any,
    hparams: dict,
    datasets: dict,
    manifests: dict,
    train_langs: list[str],
) -> dict:
    """The content of results.json (test metrics, best epoch, setting).

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
        "split_seed": hparams["split_seed"],
        "encoder": hparams["encoder"],
        "ssl_source": hparams.get("ssl_source_resolved", hparams["ssl_source"])
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
    return results


def diagnose(
    brain: Any,
    hparams: dict,
    datasets: dict,
    manifests: dict,
    frozen: bool,
    per_speaker: int,
) -> dict:
    """Linear probes of the learned embedding and the raw encoder features.

    On utterances the model never trained on (zsser_modules.diagnostics,
    diagnostic_sets; at most diagnostics_per_speaker per speaker, seeded):
    the validation utterances of the training languages (the returned dict),
    and post hoc, the same plus the target's test utterances (its
    ``post_hoc`` entry, labelled "post hoc"). The raw features (the frozen
    encoder's output, its pooled layers averaged for SSL/Whisper) are
    probed on the same utterances.
    """
    seed = hparams["seed"]
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
            f"frozen {encoder} encoder ({hparams['ssl_source_resolved']}): mean "
            "over its pooled layers (uniform weights, the layer_sum's starting point)"
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


def plot_embeddings(
    brain: Any,
    hparams: dict,
    datasets: dict,
    manifests: dict,
    n: int,
    tsne_file: str,
) -> None:
    """t-SNE of the learned space (best checkpoint), as in the paper's Fig. 2.

    Shows the target language's test utterances and the training languages'
    validation utterances (at most ``n`` of each language), in ``tsne_file``.
    """
    seed = hparams["seed"]
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
        tsne_file,
        title=f"{hparams['source_lang']} -> {hparams['target_lang']}, "
        f"{hparams['variant']} ({hparams['encoder']})"
        + (f"\n{hparams['data_note']}" if hparams["data_note"] else ""),
        seed=seed,
        target_language=hparams["target_lang"],
    )
