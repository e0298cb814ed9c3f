"""Tests of the layered hyperparameter files (zsser_modules.hparams, hparams/)."""

import itertools
from pathlib import Path

import pytest
from hyperpyyaml import load_hyperpyyaml

from zsser_modules.hparams import load_layered_hparams, resolve_layered_hparams
from zsser_modules.labels import LANGUAGES

HPARAMS = Path(__file__).resolve().parents[1] / "hparams"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def layered(tmp_path):
    write(
        tmp_path / "base.yaml",
        "seed: 1\nsource_lang: null\ntarget_lang: null\n"
        "nested:\n    a: 1\n    b: 2\n"
        "pair: !ref <source_lang>_<target_lang>_<seed>\n",
    )
    return write(
        tmp_path / "en_de.yaml",
        "base_hparams: base.yaml\nsource_lang: en\ntarget_lang: de\n",
    )


def test_priority_command_line_over_pair_over_base(layered):
    assert load_layered_hparams(layered)["pair"] == "en_de_1"
    assert load_layered_hparams(layered, "seed: 7")["pair"] == "en_de_7"
    assert load_layered_hparams(layered, {"source_lang": "fr"})["pair"] == "fr_de_1"


def test_nested_overrides_merge(layered):
    hparams = load_layered_hparams(layered, "nested: {b: 5}")
    assert hparams["nested"] == {"a": 1, "b": 5}


def test_resolve_returns_base_and_merged_overrides(layered):
    base, merged = resolve_layered_hparams(layered, "seed: 3")
    assert base == layered.parent / "base.yaml"
    assert "source_lang: en" in merged and "seed: 3" in merged
    assert "base_hparams" not in merged


def test_plain_file_is_loaded_as_is(layered):
    base = layered.parent / "base.yaml"
    path, merged = resolve_layered_hparams(base, "seed: 2")
    assert path == base and merged.strip() == "seed: 2"


def test_unknown_key_is_refused_with_a_suggestion(layered):
    with pytest.raises(ValueError, match="did you mean 'seed'"):
        load_layered_hparams(layered, "sed: 3")
    write(layered, "base_hparams: base.yaml\nsource_lang: en\nvarient: x\n")
    with pytest.raises(ValueError, match="Unknown hyperparameter"):
        load_layered_hparams(layered)


def test_chains_are_followed_and_loops_refused(tmp_path, layered):
    top = write(tmp_path / "top.yaml", "base_hparams: en_de.yaml\nseed: 9\n")
    assert load_layered_hparams(top)["pair"] == "en_de_9"
    assert load_layered_hparams(top, "seed: 4")["pair"] == "en_de_4"
    write(tmp_path / "a.yaml", "base_hparams: b.yaml\n")
    write(tmp_path / "b.yaml", "base_hparams: a.yaml\n")
    with pytest.raises(ValueError, match="loop"):
        resolve_layered_hparams(tmp_path / "a.yaml")


def test_base_hparams_cannot_be_overridden(layered):
    with pytest.raises(ValueError, match="cannot be overridden"):
        resolve_layered_hparams(layered, "base_hparams: other.yaml")


def test_missing_base_file(tmp_path):
    pair = write(tmp_path / "x.yaml", "base_hparams: nowhere.yaml\n")
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        resolve_layered_hparams(pair)


def test_tags_in_layered_files_are_kept(tmp_path, layered):
    write(
        layered,
        "base_hparams: base.yaml\nsource_lang: en\ntarget_lang: !ref <source_lang>\n",
    )
    assert load_layered_hparams(layered)["pair"] == "en_en_1"


def test_the_twenty_pair_files():
    pairs = sorted(p.stem for p in HPARAMS.glob("*_*.yaml"))
    expected = sorted(f"{s}_{t}" for s, t in itertools.permutations(LANGUAGES, 2))
    assert pairs == expected
    for pair in pairs:
        source, target = pair.split("_")
        with open(HPARAMS / f"{pair}.yaml") as fin:
            hparams = load_hyperpyyaml(fin)
        assert (hparams["source_lang"], hparams["target_lang"]) == (source, target)


def test_a_pair_file_loads_alone(tmp_path):
    with open(HPARAMS / "fr_ur.yaml") as fin:
        hparams = load_hyperpyyaml(fin, {"results_root": str(tmp_path), "seed": 5})
    assert hparams["output_folder"] == f"{tmp_path}/fr_ur/ssl/proposed/5"
    assert hparams["emotions"] == ("neutral", "happy", "angry", "sad")
    assert hparams["variant"] == "proposed" and hparams["encoder"] == "ssl"
    assert hparams["ssl_source"] == "facebook/wav2vec2-xls-r-300m"
    # The loss defaults documented in docs/recipe.md.
    assert (hparams["supcon_weight"], hparams["adv_weight"]) == (0.3, 0.1)
    assert (hparams["temperature"], hparams["base_temperature"]) == (0.1, 0.1)
    assert hparams["cross_lingual_weight"] == 2.0 and hparams["dann_gamma"] == 10.0
    assert hparams["adv_skip_confounded"] is True
    assert hparams["lang_adv_weight"] == 0.0


def test_the_template_alone_needs_a_pair():
    with pytest.raises(ValueError, match="source_lang.*PLACEHOLDER"):
        with open(HPARAMS / "template" / "common.yaml") as fin:
            load_hyperpyyaml(fin)


def test_generated_files_are_up_to_date():
    from recipes.generate_hparams import stale_files

    assert stale_files() == [], "run: python recipes/generate_hparams.py"
