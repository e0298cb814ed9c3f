"""The README's main command, `recipes/train.py hparams/demo.yaml`, on a tiny corpus.

Checks the demo's own settings (frozen filterbank statistics, cached once,
one thread) end to end, and that every output says the corpus is synthetic.
"""

import json

from conftest import REPO_ROOT
from recipe_utils import check_selection_outputs

from recipes import train
from zsser_modules.data_prep.manifest import read_manifest

DEMO = str(REPO_ROOT / "hparams" / "demo.yaml")


def test_demo_recipe_caches_frozen_filterbank_statistics(tmp_path, capsys):
    common = [
        f"--results_root={tmp_path / 'results'}",
        "--demo_options={n_speakers: 2, n_per_class_per_speaker: 3}",
        "--number_of_epochs=2",
        "--tsne_per_language=10",
        "--noprogressbar",
    ]
    brain = train.main([DEMO, f"--output_folder={tmp_path / 'run1'}", *common])
    assert brain.hparams.encoder == "fbank_stats" and brain.hparams.encoder_is_cached
    results = json.loads((tmp_path / "run1" / "results.json").read_text())
    assert (results["source"], results["target"]) == ("en", "de")
    # The paper protocol (default): the target's test split (EmoDB's 38 of 339
    # in proportion: 3 of 24), and the whole target as a supplementary score.
    assert results["variant"] == "proposed" and results["protocol"] == "paper"
    assert results["split_seed"] == 1234  # the split, recorded with the result
    assert results["n_test"] == 3
    assert results["target_all"]["n_utterances"] == 2 * 4 * 3
    assert 0.0 <= results["uar"] <= 1.0 and 0.0 <= results["macro_f1"] <= 1.0
    assert "not acted emotion" in results["note"]
    assert (tmp_path / "run1" / "tsne.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "test UAR" in out and "NOTE: synthetic demo corpus" in out
    assert "paper, stratified protocol" in out and "whole target UAR" in out

    # A second run (another seed) reuses the corpus and every cached feature.
    cache = tmp_path / "results" / "data" / "feature_cache"
    entries = {p: p.stat().st_mtime_ns for p in cache.rglob("*.feat")}
    # One entry per utterance of the setting: under the paper protocol the
    # training languages' test splits are in no manifest of the run.
    setting = results["setting"].values()
    ids = set().union(*(set(read_manifest(path)["ID"]) for path in setting))
    assert len(entries) == len(ids) < 5 * 2 * 4 * 3
    train.main([DEMO, f"--output_folder={tmp_path / 'run2'}", "--seed=2", *common])
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.feat")} == entries
    assert json.loads((tmp_path / "run2" / "results.json").read_text())["seed"] == 2

    # Language-balanced batches and pooled selection, by flag.
    train.main(
        [
            DEMO,
            f"--output_folder={tmp_path / 'run3'}",
            "--language_sampling=balanced",
            "--batch_sampler=random",  # proposed's default is hierarchical
            "--selection=pooled_uar",
            *common,
        ]
    )
    results = json.loads((tmp_path / "run3" / "results.json").read_text())
    assert results["language_sampling"] == "balanced"
    assert results["selection"] == "pooled_uar"
    assert set(results["valid_uar_per_language"]) == {"en", "zh", "fr", "ur"}
    log = (tmp_path / "run3" / "train_log.txt").read_text()
    check_selection_outputs(results, log)
