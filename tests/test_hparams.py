"""Tests of hparams/: standalone files, generated from one template, consistent
with recipes/train.py (SpeechBrain's consistency rules, tests/yaml_consistency.py).
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hyperpyyaml import load_hyperpyyaml
from yaml_consistency import check_yaml_vs_script, script_use, yaml_keys

from recipes import generate_hparams
from zsser_modules.hparams import check_overrides, read_raw_hparams
from zsser_modules.labels import LANGUAGES, PAPER_TASKS

REPO = Path(__file__).resolve().parents[1]
HPARAMS = REPO / "hparams"
SCRIPT = REPO / "recipes" / "train.py"
FILES = sorted(p.name for p in HPARAMS.glob("*.yaml"))


def test_one_file_per_paper_task_and_the_demo():
    expected = {f"{task}.yaml" for task in PAPER_TASKS}
    assert len(expected) == 9 and all(not t.endswith("_ur") for t in PAPER_TASKS)
    assert set(FILES) == expected | {"demo.yaml"}


def test_other_pairs_are_written_on_demand_outside_hparams(tmp_path):
    out = tmp_path / "mine"
    assert (
        generate_hparams.main(["--pair", "ur_en", "de_en", "--out-dir", str(out)]) == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["de_en.yaml", "ur_en.yaml"]
    raw = read_raw_hparams(out / "ur_en.yaml")
    assert (raw["source_lang"], raw["target_lang"]) == ("ur", "en")
    assert "the paper reports no number for it" in (out / "ur_en.yaml").read_text()
    assert not (HPARAMS / "ur_en.yaml").exists()
    with pytest.raises(SystemExit):  # --pair without --out-dir
        generate_hparams.main(["--pair", "ur_en"])
    assert generate_hparams.main(["--pair", "ur_ur", "--out-dir", str(out)]) == 2


@pytest.mark.parametrize("name", FILES)
def test_each_file_loads_alone_into_the_full_configuration(name, tmp_path):
    """Plain load_hyperpyyaml, with the overrides SpeechBrain's load test adds."""
    with open(HPARAMS / name) as fin:
        hparams = load_hyperpyyaml(
            fin, {"data_folder": str(tmp_path), "output_folder": str(tmp_path)}
        )
    template, _ = yaml_keys(HPARAMS / "template" / "common.yaml")
    assert set(hparams) == set(template) - {"__set_seed"}  # __ keys: not kept
    if name != "demo.yaml":
        source, target = name[:-5].split("_")
        assert (hparams["source_lang"], hparams["target_lang"]) == (source, target)
    assert set(hparams["modules"]) == {
        "ssl",
        "whisper",
        "fbank",
        "fbank_stats",
        "layer_sum",
        "embedding",
        "emo_classifier",
        "projection",
        "spk_adversary",
        "lang_adversary",
    }


@pytest.mark.parametrize("task", PAPER_TASKS)
def test_a_paper_task_file_holds_the_paper_defaults(task, tmp_path):
    with open(HPARAMS / f"{task}.yaml") as fin:
        hparams = load_hyperpyyaml(fin, {"results_root": str(tmp_path), "seed": 5})
    assert hparams["output_folder"] == f"{tmp_path}/{task}/ssl/proposed/5"
    assert hparams["emotions"] == ("neutral", "happy", "angry", "sad")
    assert hparams["variant"] == "proposed" and hparams["encoder"] == "ssl"
    # The paper's encoder: each source language's own wav2vec 2.0 Base, adapted.
    from zsser_modules.backbones import PAPER_SSL_SOURCES

    assert hparams["ssl_source"] == dict(PAPER_SSL_SOURCES)
    assert hparams["encoder_adaptation"] == "lora+adapter" and hparams["adapter_gate"]
    # The paper's values (Sec. 2.2, 3.3): alpha, beta, lambda; English from
    # MELD, Urdu auxiliary.
    assert (hparams["supcon_weight"], hparams["adv_weight"]) == (1.0, 0.3)
    assert hparams["cross_lingual_weight"] == 2.5
    assert dict(hparams["language_corpus"]) == {"en": "meld"}
    assert list(hparams["languages"]) == ["en", "zh", "de", "fr", "ur"]
    head = hparams["spk_adversary"](n_classes=3)
    assert [type(m).__name__ for m in head.classifier] == [
        "Linear", "ReLU", "Dropout", "Linear"
    ]  # fmt: skip
    # Ours (docs/recipe.md).
    assert (hparams["temperature"], hparams["base_temperature"]) == (0.1, 0.1)
    assert hparams["dann_gamma"] == 10.0
    assert hparams["adv_skip_confounded"] is True
    assert hparams["lang_adv_weight"] == 0.0
    # The modules block holds the very constructors of the other keys.
    assert hparams["modules"]["embedding"] is hparams["embedding_mlp"]
    assert hparams["modules"]["projection"] is hparams["projection_head"]


def test_the_demo_file_sets_its_keys(tmp_path):
    with open(HPARAMS / "demo.yaml") as fin:
        hparams = load_hyperpyyaml(fin)
    assert hparams["encoder"] == "fbank_stats" and hparams["torch_num_threads"] == 1
    assert set(hparams["language_corpus"].values()) == {"demo"}
    assert hparams["number_of_epochs"] == 20
    assert hparams["results_root"] == "results/demo"


def test_the_template_alone_needs_a_pair():
    with pytest.raises(ValueError, match="source_lang.*PLACEHOLDER"):
        with open(HPARAMS / "template" / "common.yaml") as fin:
            load_hyperpyyaml(fin)


# ---------------------------------------------------------------------------
# SpeechBrain's consistency rules (check_yaml_vs_script, check_module_vars).


@pytest.mark.parametrize("name", FILES)
def test_yaml_and_script_are_consistent(name):
    assert check_yaml_vs_script(HPARAMS / name, SCRIPT) == []


def test_the_script_reads_no_key_through_an_f_string():
    """Every key is named in full, so the check never has to guess."""
    assert script_use(SCRIPT).patterns == set()


def test_the_modules_block_only_refers_to_other_keys():
    """run_identity leaves `modules` out: it must add nothing of its own."""
    values, _ = yaml_keys(HPARAMS / "template" / "common.yaml")
    for name, entry in values["modules"].items():
        assert entry.tag.value == "!ref", name
        assert str(entry.value).strip("<>") in values, name


def test_the_check_finds_unused_and_undefined_keys(tmp_path):
    hparams = tmp_path / "h.yaml"
    hparams.write_text(
        "seed: 1\n__set: !apply:print [!ref <seed>]\nlr: 0.1\nunused: 3\n"
        "device: cpu\nmodules:\n    net: !ref <lr>\n"
    )
    script = tmp_path / "train.py"
    script.write_text(
        "def f(hparams, self):\n"
        "    hparams['written'] = 1\n"
        "    self.hparams.lr, hparams.get('written'), hparams['missing']\n"
        "    self.modules.net(1), self.modules.other(2), self.modules.parameters()\n"
        "    hparams['modules']\n"
    )
    problems = check_yaml_vs_script(hparams, script)
    assert len(problems) == 3, problems
    assert "'unused' is defined but not used" in problems[0]
    assert "reads 'missing'" in problems[1]
    assert "self.modules.other" in problems[2]


def test_f_string_keys_count_as_a_use(tmp_path):
    hparams = tmp_path / "h.yaml"
    hparams.write_text("a_encoder: 1\nb_encoder: 2\nc_thing: 3\n")
    script = tmp_path / "train.py"
    script.write_text("def f(hparams, name):\n    return hparams[f'{name}_encoder']\n")
    problems = check_yaml_vs_script(hparams, script)
    assert problems == [
        f"{hparams}: 'c_thing' is defined but not used by {script} nor "
        "referenced by another entry"
    ]


# ---------------------------------------------------------------------------
# The generator (recipes/generate_hparams.py).


def test_generated_files_are_up_to_date():
    stale = generate_hparams.stale_files()
    assert stale == [], "run: python recipes/generate_hparams.py"


def copy_hparams(tmp_path):
    folder = tmp_path / "hparams"
    (folder / "template").mkdir(parents=True)
    for path in (HPARAMS / "template").iterdir():
        (folder / "template" / path.name).write_text(path.read_text())
    return folder


def test_a_template_edit_reaches_every_file_and_check_fails_until_then(tmp_path):
    folder = copy_hparams(tmp_path)
    assert len(generate_hparams.write_files(folder)) == 10
    assert generate_hparams.stale_files(folder) == []
    template = folder / "template" / "common.yaml"
    template.write_text(
        template.read_text().replace("lr: 0.001  # (ours)\n", "lr: 0.002\nnew_key: 7\n")
    )
    assert len(generate_hparams.stale_files(folder)) == 10
    done = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "generate_hparams.py"), "--check"]
        + ["--hparams-dir", str(folder)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "python recipes/generate_hparams.py" in done.stderr
    generate_hparams.main(["--hparams-dir", str(folder)])
    for name in ("en_de.yaml", "demo.yaml"):
        raw = read_raw_hparams(folder / name)
        assert (raw["lr"], raw["new_key"]) == (0.002, 7)
    (folder / "stray.yaml").write_text("seed: 1\n")
    assert generate_hparams.stale_files(folder) == ["stray.yaml (not generated)"]


def test_template_notes_are_not_copied_and_comments_are(tmp_path):
    text = (HPARAMS / "demo.yaml").read_text()
    assert "\n##" not in text and not text.startswith("##")
    assert text.startswith("# ####")  # the demo's own header
    # the template's comment on a key, then the demo's own reason
    assert "# fbank_stats: frozen filterbank statistics" in text
    assert "# Frozen filterbank encoder (no download)" in text
    assert "source_lang: en  # en | zh | de | fr | ur" in text


def test_a_keys_file_with_an_unknown_key_is_refused(tmp_path, capsys):
    folder = copy_hparams(tmp_path)
    (folder / "template" / "mine.keys.yaml").write_text(
        "# Mine\n\nnumber_of_epoch: 3\n"
    )
    assert generate_hparams.main(["--hparams-dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "['number_of_epoch'] are not keys of the template" in err
    assert err.count("\n") == 1
    (folder / "template" / "mine.keys.yaml").write_text(
        "# Mine\n\nnumber_of_epochs: 3\n"
    )
    assert generate_hparams.main(["--hparams-dir", str(folder)]) == 0
    with open(folder / "mine.yaml") as fin:
        assert (
            load_hyperpyyaml(fin, {"source_lang": "en", "target_lang": "de"})[
                "number_of_epochs"
            ]
            == 3
        )


def test_a_pair_can_have_its_own_keys(tmp_path):
    folder = copy_hparams(tmp_path)
    keys = folder / "template" / "zh_de.keys.yaml"
    keys.write_text("# Own pool.\n\n# no French\nlanguages: [en, zh, de, ur]\n")
    generate_hparams.write_files(folder)
    text = (folder / "zh_de.yaml").read_text()
    assert text.startswith("# hparams/zh_de.yaml : Mandarin (ESD) -> German (EmoDB)")
    assert "\n# Not one of the paper's" not in text
    assert "# Own pool." in text and "# no French\nlanguages: [en, zh, de, ur]" in text
    raw = read_raw_hparams(folder / "zh_de.yaml")
    assert raw["source_lang"] == "zh"
    assert list(raw["languages"]) == ["en", "zh", "de", "ur"]
    assert list(read_raw_hparams(folder / "en_de.yaml")["languages"]) == list(LANGUAGES)
    keys.write_text("source_lang: en\n")
    with pytest.raises(ValueError, match="its name sets them already"):
        generate_hparams.generated_files(folder)


# ---------------------------------------------------------------------------
# Reading a file without building it (zsser_modules.hparams).


def test_unknown_overrides_get_one_line_with_close_matches():
    check_overrides(HPARAMS / "en_de.yaml", "seed: 3\nlr: 0.1\n")
    with pytest.raises(ValueError, match="'varient' did you mean 'variant'"):
        check_overrides(HPARAMS / "en_de.yaml", {"varient": "baseline2"})


def test_the_recipe_refuses_an_unknown_key_in_one_line(capsys):
    from recipes import train

    with pytest.raises(SystemExit) as stop:
        train.main([str(HPARAMS / "demo.yaml"), "--number_of_epoch=2"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("recipes/train.py: Unknown hyperparameter(s)")
    assert "did you mean 'number_of_epochs'" in err and "\n" not in err


# ---------------------------------------------------------------------------
# Option groups: each hands one consumer of recipes/train.py its options.


def test_option_groups_only_restate_top_level_keys():
    """run_identity leaves the groups out: they must add nothing of their own."""
    from zsser_modules.run_identity import OPTION_GROUPS, option_groups

    values, _ = yaml_keys(HPARAMS / "template" / "common.yaml")
    for name in FILES:
        groups = option_groups(HPARAMS / name)
        assert set(OPTION_GROUPS) | {"modules"} == set(groups), name
        for group, keys in groups.items():
            assert keys and set(keys) <= set(values), (name, group)


def test_the_script_reads_the_grouped_options_only_through_their_group():
    """train.py hands a group to its consumer; it reads none of its keys."""
    from zsser_modules.run_identity import OPTION_GROUPS, option_groups

    grouped = {
        key
        for group, keys in option_groups(HPARAMS / "demo.yaml").items()
        if group in OPTION_GROUPS
        for key in keys
    }
    reads = script_use(SCRIPT).reads
    assert set(OPTION_GROUPS) <= reads
    only_grouped = grouped - reads
    assert {"protocol", "data_folder", "speaker_norm", "results_file"} <= only_grouped


def test_overriding_a_group_is_refused_in_one_line(capsys):
    from zsser_modules import run

    with pytest.raises(SystemExit) as stop:
        run.checked_overrides(
            str(HPARAMS / "demo.yaml"), "data_options: {protocol: speaker}\n"
        )
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "data_options only repeats other keys" in err and "--" in err
    assert "\n" not in err


def test_a_group_override_of_its_key_reaches_the_group():
    """--protocol=speaker reaches data_options (a reference, not a copy)."""
    with open(HPARAMS / "demo.yaml", encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, {"protocol": "speaker", "split_seed": 7})
    assert hparams["data_options"]["protocol"] == "speaker"
    assert hparams["data_options"]["split_seed"] == 7
    assert hparams["feature_options"]["split_seed"] == 7
    sampler = hparams["train_sampler_options"]
    assert sampler["train_dataloader_options"] is hparams["train_dataloader_options"]


KIT = Path(
    os.environ.get("ZSSER_SPEECHBRAIN_KIT") or REPO.parent / "shared" / "speechbrain"
)
KIT_CHECK = KIT / "tests" / "utils" / "check_yaml.py"


@pytest.mark.skipif(
    not KIT_CHECK.is_file(),
    reason=f"SpeechBrain's check kit is not at {KIT}: set ZSSER_SPEECHBRAIN_KIT",
)
@pytest.mark.parametrize("name", FILES)
def test_speechbrains_own_check_passes(name):
    """The toolkit's check_yaml_vs_script (a text check of train.py alone)."""
    spec = importlib.util.spec_from_file_location("sb_check_yaml", KIT_CHECK)
    check_yaml = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_yaml)
    assert check_yaml.check_yaml_vs_script(str(HPARAMS / name), str(SCRIPT))
