"""End-to-end and unit tests of recipes/train.py on fixture corpora.

The expensive runs (the SSL run, the fbank runs) are made once per session
(tests/recipe_utils.py) and shared with tests/test_inference.py.
"""

import json
import re
from pathlib import Path

import pytest
import speechbrain as sb
import torch
from recipe_utils import (
    check_selection_outputs,
    fbank_run,
    load_hparams,
    recipe_args,
    run_recipe,
    session_fixture,
    ssl_run,
)

from recipes import train
from zsser_modules.data_prep.manifest import read_manifest
from zsser_modules.labels import EMOTIONS
from zsser_modules.metrics import uar
from zsser_modules.predictions import class_names, read_predictions
from zsser_modules.run import data as run_data
from zsser_modules.run import variants

pytestmark = pytest.mark.slow

RESULT_KEYS = {
    "uar",
    "macro_f1",
    "per_class_recall",
    "confusion_matrix",
    "source",
    "target",
    "variant",
    "seed",
    "n_test",
    "best_epoch",
    "best_valid_uar",
}


def epochs_in_log(text):
    """Epoch numbers of the train_log lines (FileTrainLogger format)."""
    return [int(n) for n in re.findall(r"^epoch: (\d+),", text, flags=re.M)]


def check_run_outputs(folder, source, target, variant):
    """Checks shared by every finished run; returns results.json."""
    results = json.loads((folder / "results.json").read_text())
    assert RESULT_KEYS <= set(results)
    assert (results["source"], results["target"], results["variant"]) == (
        source,
        target,
        variant,
    )
    assert 0.0 <= results["uar"] <= 1.0 and 0.0 <= results["macro_f1"] <= 1.0
    assert list(results["per_class_recall"]) == list(EMOTIONS)
    matrix = results["confusion_matrix"]
    assert len(matrix) == 4 and all(len(row) == 4 for row in matrix)
    assert sum(map(sum, matrix)) == results["n_test"] > 0
    assert results["best_epoch"] in epochs_in_log(
        (folder / "train_log.txt").read_text()
    )

    log = (folder / "train_log.txt").read_text()
    assert "train loss" in log and "valid loss" in log and "valid uar" in log
    check_selection_outputs(results, log)
    assert "test uar" in log
    assert (folder / "tsne.png").read_bytes()[:4] == b"\x89PNG"
    assert (folder / "hyperparams.yaml").is_file() and (folder / "log.txt").is_file()
    checkpoints = list((folder / "save").glob("CKPT+*"))
    assert checkpoints
    for checkpoint in checkpoints:
        meta = (checkpoint / "CKPT.yaml").read_text()
        assert "uar:" in meta and "epoch:" in meta
        assert (checkpoint / "counter.ckpt").is_file()
        assert (checkpoint / "embedding.ckpt").is_file()
    inference = folder / "inference"
    for name in (
        "hyperparams.yaml",
        "custom_interface.py",
        "label_encoder.txt",
        "embedding.ckpt",
    ):
        assert (inference / name).is_file()
    # per-utterance predictions (issue 19): the test's utterances and scores
    predictions = read_predictions(folder / "predictions.csv")
    assert len(predictions) == results["n_test"]
    assert class_names(predictions) == list(EMOTIONS)
    labels = [EMOTIONS.index(x) for x in predictions["label"]]
    predicted = [EMOTIONS.index(x) for x in predictions["prediction"]]
    assert uar(labels, predicted, 4) == pytest.approx(results["uar"], abs=1e-9)
    speakers = (folder / "save" / "speaker_encoder.txt").read_text()
    train_speakers = sorted(set(read_manifest(results["setting"]["train"])["spk_id"]))
    assert all(f"'{s}' => {i}" in speakers for i, s in enumerate(train_speakers))
    return results


def test_ssl_run_writes_every_output(tmp_path_factory):
    _, folder = ssl_run(tmp_path_factory)
    results = check_run_outputs(folder, "en", "de", "proposed")
    assert results["debug"] is False
    assert results["training_languages"] == ["en", "zh"]
    assert results["loss_weights"] == {
        "ce": 1.0,
        "supcon": 1.0,
        "spk_adv": 0.3,
        "lang_adv": 0.0,
    }
    train_df = read_manifest(results["setting"]["train"])
    test_df = read_manifest(results["setting"]["test"])
    assert set(train_df["lang"]) == {"en", "zh"} and set(test_df["lang"]) == {"de"}
    assert results["n_test"] == len(test_df)
    log = (folder / "train_log.txt").read_text()
    assert epochs_in_log(log) == [1, 2]
    assert "train supcon" in log and "train spk_adv" in log
    # A frozen SSL model is not copied into checkpoints or the inference folder.
    assert not list((folder / "save").glob("CKPT+*/ssl.ckpt"))
    assert not (folder / "inference" / "ssl.ckpt").exists()
    assert (folder / "inference" / "layer_sum.ckpt").is_file()


def test_frozen_ssl_features_are_cached_and_the_model_released(tmp_path_factory):
    """The SSL run trains on cached features (tests/test_speed.py: same outputs
    as encoding live, and the live encoder stays frozen)."""
    brain, _ = ssl_run(tmp_path_factory)
    assert brain.hparams.encoder_is_cached
    # Only the SSL model's constructor call is kept (for the export).
    assert not list(brain.modules["ssl"].parameters())
    cache_root = Path(brain.hparams.feature_cache_folder)
    # The session's other runs (e.g. fbank_stats) share the cache folder under
    # their own keys: count the SSL key's entries only.
    ssl_keys = [
        key.parent
        for key in cache_root.glob("*/key.json")
        if json.loads(key.read_text())["encoder"] == "SSLLayerPooling"
    ]
    assert len(ssl_keys) == 1, ssl_keys
    entries = list(ssl_keys[0].glob("??/*.feat"))
    n_utterances = sum(
        len(read_manifest(path))
        for path in json.loads(
            (Path(brain.hparams.output_folder) / "results.json").read_text()
        )["setting"].values()
    )
    assert len(entries) == n_utterances
    # The learned layer weights did train.
    assert brain.modules["layer_sum"].weights.requires_grad


def test_fbank_run_resumes_after_its_first_epoch(tmp_path_factory):
    brain, folder, first_log = fbank_run(tmp_path_factory)
    assert epochs_in_log(first_log) == [1]
    log = (folder / "train_log.txt").read_text()
    assert epochs_in_log(log) == [1, 2]  # epoch 1 was not trained again
    assert log.startswith(first_log)
    run_log = (folder / "log.txt").read_text()
    assert run_log.count("Going into epoch 1") == 1
    assert run_log.count("Going into epoch 2") == 2  # killed run, then resumed
    assert brain.hparams.epoch_counter.current in (1, 2)  # best epoch reloaded

    results = check_run_outputs(folder, "ur", "de", "no_supcon")
    assert results["debug"] is True
    assert results["training_languages"] == ["ur", "en"]
    assert results["n_test"] == 16  # --debug: 2 test batches of 8
    assert results["loss_weights"]["supcon"] == 0.0
    assert "train spk_adv" in log and "train supcon" not in log
    assert (folder / "inference" / "fbank.ckpt").is_file()


def test_missing_corpus_folder_names_the_key(tmp_path_factory, tmp_path, capsys):
    fixture = dict(session_fixture(tmp_path_factory))
    del fixture["emodb_folder"]
    args = recipe_args(
        "en_de", fixture, tmp_path, "--languages=[en,de]", "--batch_sampler=random"
    )
    with pytest.raises(SystemExit) as error:
        run_recipe(args)
    assert error.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("recipes/train.py: ") and "\n" not in err
    assert "--emodb_folder=" in err and "emodb (for de)" in err


# ---------------------------------------------------------------------------
# Variants: training languages and loss terms, on one training batch.


def variant_hparams(tmp_path_factory, variant, *extra, encoder="fbank"):
    fixture = session_fixture(tmp_path_factory)
    results = tmp_path_factory.getbasetemp() / "variant_results"
    return load_hparams(
        recipe_args(
            "en_de",
            fixture,
            results,
            f"--encoder={encoder}",
            "--languages=[en,zh,de,ur]",
            f"--variant={variant}",
            *extra,
        )
    )


def one_training_batch(hparams):
    """Prepare the run's data and model as main() does; backprop one batch."""
    manifests, train_langs = run_data.prepare_data(hparams["data_options"])
    datasets, speakers = train.dataio_prep(hparams, manifests)
    hparams["loss_weights"] = variants.loss_weights(
        hparams["variant"], hparams["aux_loss_weights"]
    )
    modules = train.build_modules(hparams, n_speakers=len(speakers))
    hparams["encoder_is_cached"] = False  # live encoder: its gradients are checked
    brain = train.ZeroShotSER(
        modules=modules,
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=hparams["checkpointer"],
        selection=hparams["selection_options"],
    )
    loader = brain.make_dataloader(
        datasets["train"], sb.Stage.TRAIN, **hparams["train_dataloader_options"]
    )
    batch = next(iter(loader))
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN)
    brain.on_fit_batch_start(batch, should_step=True)
    outputs = brain.compute_forward(batch, sb.Stage.TRAIN)
    loss = brain.compute_objectives(outputs, batch, sb.Stage.TRAIN)
    loss.backward()
    return brain, batch, manifests, datasets, train_langs


def has_grad(module):
    return any(p.grad is not None for p in module.parameters())


EXPECTED = {  # variant: (training languages, auxiliary loss terms)
    "baseline1": (["en"], set()),
    "baseline2": (["en", "zh", "ur"], set()),
    "upper_bound": (["en", "zh", "ur", "de"], set()),
    "no_supcon": (["en", "zh", "ur"], {"spk_adv"}),
    "no_spkadv": (["en", "zh", "ur"], {"supcon"}),
    "proposed": (["en", "zh", "ur"], {"supcon", "spk_adv"}),
}


@pytest.mark.parametrize("variant", list(EXPECTED))
def test_variant_languages_and_loss_terms(tmp_path_factory, variant):
    languages, terms = EXPECTED[variant]
    hparams = variant_hparams(tmp_path_factory, variant)
    brain, _, manifests, _, train_langs = one_training_batch(hparams)

    assert train_langs == languages
    train_df = read_manifest(manifests["train"])
    valid_df = read_manifest(manifests["valid"])
    test_df = read_manifest(manifests["test"])
    assert set(train_df["lang"]) == set(languages)
    assert set(valid_df["lang"]) == set(languages)
    assert set(test_df["lang"]) == {"de"}
    if variant != "upper_bound":
        assert len(test_df) == len(
            read_manifest(brain.hparams.prep_folder + "/emodb.csv")
        )

    assert set(brain.term_sums) == {"ce"} | terms
    assert has_grad(brain.modules["projection"]) == ("supcon" in terms)
    assert has_grad(brain.modules["spk_adversary"]) == ("spk_adv" in terms)
    assert not has_grad(brain.modules["lang_adversary"])  # lang_adv_weight 0
    assert has_grad(brain.modules["fbank"]) and has_grad(brain.modules["embedding"])


def test_ce_only_variant_trains_on_ce_alone(tmp_path_factory):
    """baseline2: the encoder gradient is exactly the cross-entropy gradient."""
    hparams = variant_hparams(tmp_path_factory, "baseline2")
    brain, batch, *_ = one_training_batch(hparams)
    grads = [p.grad.clone() for p in brain.modules["embedding"].parameters()]
    brain.modules.zero_grad()
    outputs = brain.compute_forward(batch, sb.Stage.TRAIN)
    emo = batch.emo_encoded.data.squeeze(1)
    brain.hparams.compute_cost(outputs["log_probs"], emo).backward()
    for before, param in zip(grads, brain.modules["embedding"].parameters()):
        assert torch.allclose(before, param.grad, atol=1e-6)


def test_confounded_speakers_do_not_train_the_adversary(tmp_path_factory):
    hparams = variant_hparams(tmp_path_factory, "proposed")
    _, _, manifests, datasets, _ = one_training_batch(hparams)
    train_df = read_manifest(manifests["train"])
    confounded = train_df[train_df["spk_confounded"] == 1]
    assert len(confounded) > 0  # URDU speakers recorded in one emotion
    dataset = datasets["train"]
    dataset.set_output_keys(["id", "spk_encoded"])
    speakers = sorted(set(train_df["spk_id"]))
    for row in train_df.head(40).itertuples():
        item = dataset[dataset.data_ids.index(row.ID)]
        expected = -100 if row.spk_confounded else speakers.index(row.spk_id)
        assert int(item["spk_encoded"]) == expected


@pytest.mark.parametrize("variant", ["baseline2", "no_spkadv"])
def test_optional_language_adversary(tmp_path_factory, variant):
    hparams = variant_hparams(tmp_path_factory, variant, "--lang_adv_weight=0.2")
    brain, *_ = one_training_batch(hparams)
    used = variant != "baseline2"  # the baselines train on CE only
    assert ("lang_adv" in brain.term_sums) == used
    assert has_grad(brain.modules["lang_adversary"]) == used
    assert not has_grad(brain.modules["spk_adversary"])


def test_unknown_encoder_is_refused(tmp_path_factory):
    hparams = variant_hparams(tmp_path_factory, "baseline1", encoder="mfcc")
    with pytest.raises(
        ValueError, match="encoder must be 'ssl', 'whisper', 'fbank' or 'fbank_stats'"
    ):
        train.build_modules(hparams, n_speakers=3)


def test_the_recipe_reads_like_the_toolkits_own():
    """Brain hooks, data-io pipeline and main; the run machinery elsewhere.

    Exact resume, run identity, the feature cache and the outputs live in
    zsser_modules.run; the resume tests' kill hook is not in the recipe.
    """
    script = train.__file__
    with open(script, encoding="utf-8") as fin:
        text = fin.read()
    assert len(text.splitlines()) <= 400
    assert "kill_point" not in text and "ZSSER_TEST_KILL_AT" not in text
    for hook in ("compute_forward", "compute_objectives", "on_stage_start"):
        assert f"def {hook}(" in text
    assert "def on_stage_end(" in text and "def dataio_prep(" in text
