"""Tests of the results tables (zsser_modules/results_table/) on made-up runs."""

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from zsser_modules import results_table as rt
from zsser_modules.data_prep.zero_shot import VARIANTS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def runs(*rows):
    """Run table from (pair, variant, seed, uar[, macro_f1]) tuples."""
    records = []
    for row in rows:
        pair, variant, seed, uar = row[:4]
        f1 = row[4] if len(row) > 4 else uar
        records.append(
            {"pair": pair, "variant": variant, "seed": seed, "uar": uar, "macro_f1": f1}
        )
    return pd.DataFrame(records)


def cell(summary, variant, pair):
    return summary.set_index(["variant", "pair"]).loc[(variant, pair)]


def write_result(root, pair, variant, seed, uar, macro_f1=None, **extra):
    source, target = pair.split("_")
    folder = root / pair / variant / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "source": source,
        "target": target,
        "variant": variant,
        "seed": seed,
        "uar": uar,
        "macro_f1": uar if macro_f1 is None else macro_f1,
        "n_test": 50,
        **extra,
    }
    (folder / "results.json").write_text(json.dumps(data))
    return folder / "results.json"


def test_table_variant_order_covers_exactly_the_recipe_variants():
    assert set(rt.VARIANT_ORDER) == set(VARIANTS)
    assert rt.VARIANT_ORDER[-1] == "upper_bound"


def test_cell_is_mean_and_sample_std_over_seeds():
    df = runs(
        ("en_de", "proposed", 1, 0.5, 0.4),
        ("en_de", "proposed", 2, 0.6, 0.5),
        ("en_de", "proposed", 3, 0.7, 0.9),
    )
    summary = rt.summarize(df)
    got = cell(summary, "proposed", "en_de")
    assert got["uar_mean"] == pytest.approx(0.6)
    assert got["uar_std"] == pytest.approx(0.1)  # ddof=1
    assert got["macro_f1_std"] == pytest.approx(np.std([0.4, 0.5, 0.9], ddof=1))
    assert (got["n_seeds"], got["n_expected"]) == (3, 3)
    table = rt.to_markdown(summary, "uar")
    assert "| proposed | 60.0 ± 10.0 | 60.0 ± 10.0 |" in table
    assert "| proposed | 60.0 ± 26.5 | 60.0 ± 26.5 |" in rt.to_markdown(
        summary, "macro_f1"
    )


def test_one_seed_shows_the_mean_only():
    summary = rt.summarize(runs(("en_de", "proposed", 7, 0.61234)))
    assert math.isnan(cell(summary, "proposed", "en_de")["uar_std"])
    assert "| proposed | 61.2 | 61.2 |" in rt.to_markdown(summary, "uar")


def test_avg_is_over_per_seed_averages_of_complete_seeds():
    df = runs(
        ("en_de", "proposed", 1, 0.50),
        ("en_de", "proposed", 2, 0.60),
        ("en_de", "proposed", 3, 0.70),
        ("zh_fr", "proposed", 1, 0.30),
        ("zh_fr", "proposed", 2, 0.60),  # seed 3 missing for zh_fr
    )
    avg = cell(rt.summarize(df), "proposed", rt.AVG)
    # per-seed averages: seed 1 -> 0.40, seed 2 -> 0.60; seed 3 is incomplete
    assert avg["n_seeds"] == 2 and avg["n_expected"] == 3
    assert avg["uar_mean"] == pytest.approx(0.50)
    assert avg["uar_std"] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    row = rt.to_markdown(rt.summarize(df), "uar").splitlines()[-1]
    assert row == "| proposed | 60.0 ± 10.0 | 45.0 ± 21.2 (2/3) | 50.0 ± 14.1 (2/3) |"


def test_avg_mean_equals_mean_of_pair_means_when_complete():
    rng = np.random.default_rng(0)
    rows = [
        (pair, "baseline2", seed, float(rng.uniform(0.3, 0.8)))
        for pair in ("en_de", "zh_fr", "de_en")
        for seed in (1, 2, 3)
    ]
    summary = rt.summarize(runs(*rows))
    pair_means = summary[summary["pair"] != rt.AVG]["uar_mean"]
    avg = cell(summary, "baseline2", rt.AVG)
    assert avg["uar_mean"] == pytest.approx(pair_means.mean())
    per_seed = runs(*rows).groupby("seed")["uar"].mean()
    assert avg["uar_std"] == pytest.approx(per_seed.std(ddof=1))


def test_missing_runs_are_marked_and_listed(tmp_path):
    df = runs(
        ("en_de", "proposed", 1, 0.5),
        ("en_de", "proposed", 2, 0.7),
        ("en_de", "baseline1", 1, 0.4),
    )
    summary = rt.summarize(df, seeds=[1, 2, 3], variants=["no_supcon"])
    markdown = rt.to_markdown(summary, "uar")
    assert "| baseline1 | 40.0 (1/3) | 40.0 (1/3) |" in markdown
    assert "| no_supcon | – | – |" in markdown
    assert "| proposed | **60.0 ± 14.1** (2/3) | **60.0 ± 14.1** (2/3) |" in markdown
    missing = rt.missing_runs(df, seeds=[1, 2, 3], variants=["no_supcon"])
    assert len(missing) == 3 * 3 - 3
    assert set(missing[missing["variant"] == "proposed"]["seed"]) == {3}

    paths = rt.write_tables(df, tmp_path, seeds=[1, 2, 3], variants=["no_supcon"])
    text = paths["markdown"].read_text(encoding="utf-8")
    assert "Runs found: 3 of 9 expected (3 cells x 3 seeds)" in text
    assert "Missing runs: 6" in text
    assert "proposed en→de (seed 3)" in text
    assert "baseline1 en→de (seed 2, 3)" in text
    assert len(pd.read_csv(paths["missing"])) == 6


def test_columns_pairs_then_avg_and_rows_in_canonical_order():
    df = runs(
        ("ur_en", "upper_bound", 1, 0.9),
        ("en_de", "proposed", 1, 0.6),
        ("zh_fr", "baseline1", 1, 0.4),
    )
    table = rt.to_markdown(rt.summarize(df), "uar").splitlines()
    assert table[2] == "| Variant | en→de | zh→fr | ur→en | Avg. |"
    assert [line.split(" | ")[0] for line in table[4:]] == [
        "| baseline1",
        "| proposed",
        "| upper_bound",
    ]
    given = rt.summarize(df, pairs=["ur_en", "zh_fr"])
    assert list(dict.fromkeys(given["pair"])) == ["ur_en", "zh_fr", "en_de", rt.AVG]


def test_best_zero_shot_variant_is_bold_and_the_oracle_never():
    df = runs(
        ("en_de", "baseline1", 1, 0.40),
        ("en_de", "proposed", 1, 0.55),
        ("en_de", "no_spkadv", 1, 0.55),  # a tie at display precision
        ("en_de", "upper_bound", 1, 0.90),
    )
    table = rt.to_markdown(rt.summarize(df), "uar")
    assert "| proposed | **55.0** |" in table
    assert "| no_spkadv | **55.0** |" in table
    assert "| upper_bound | 90.0 |" in table
    assert "| baseline1 | 40.0 |" in table


def test_csv_round_trip(tmp_path):
    df = runs(
        ("en_de", "proposed", 1, 0.5, 0.45),
        ("en_de", "proposed", 2, 0.6, 0.55),
        ("zh_fr", "proposed", 1, 0.4, 0.35),
        ("zh_fr", "baseline1", 1, 0.3, 0.25),
    )
    paths = rt.write_tables(df, tmp_path, figure=False)
    summary = rt.summarize(df)
    # an empty same_as is written as an empty field: read it back as ""
    long = pd.read_csv(paths["summary_long"])
    long["same_as"] = long["same_as"].fillna("")
    # the long summary also holds the cells' intervals (none: no predictions)
    assert list(long.columns) == [*rt.SUMMARY_COLUMNS, *rt.INTERVAL_COLUMNS]
    assert long["uar_low"].isna().all() and (long["n_speakers"] == 0).all()
    long = long[list(rt.SUMMARY_COLUMNS)]
    pd.testing.assert_frame_equal(long, summary, check_dtype=False)
    assert (long["same_as"] == "").all()
    wide = pd.read_csv(paths["summary_wide"], index_col="variant")
    pd.testing.assert_frame_equal(wide, rt.to_wide(summary))
    assert wide.loc["proposed", "en_de:uar_mean"] == pytest.approx(0.55)
    assert wide.loc["proposed", "Avg.:n_seeds"] == 1
    assert math.isnan(wide.loc["baseline1", "en_de:uar_mean"])
    pd.testing.assert_frame_equal(pd.read_csv(paths["runs"]), df)


def test_collect_results_reads_a_grid_folder(tmp_path, caplog):
    write_result(tmp_path, "en_de", "proposed", 1, 0.5, 0.4, encoder="fbank")
    write_result(tmp_path, "en_de", "proposed", 2, 0.7, 0.6)
    write_result(tmp_path, "zh_fr", "baseline1", 1, 0.3)
    bad = tmp_path / "zh_fr" / "baseline1" / "seed2"
    bad.mkdir(parents=True)
    (bad / "results.json").write_text('{"source": "zh"')  # truncated
    with caplog.at_level(logging.WARNING):
        df = rt.collect_results(tmp_path)
    assert list(df.columns) == list(rt.RUN_COLUMNS)
    assert df[["pair", "variant", "seed"]].values.tolist() == [
        ["en_de", "proposed", 1],
        ["en_de", "proposed", 2],
        ["zh_fr", "baseline1", 1],
    ]
    assert df["uar"].tolist() == [0.5, 0.7, 0.3]
    assert df["n_test"].tolist() == [50, 50, 50]
    assert df.loc[0, "encoder"] == "fbank"
    assert [path for path, _ in df.attrs["skipped"]] == [str(bad / "results.json")]
    assert "skipped 1 unusable results.json" in caplog.text
    text = rt.write_tables(df, tmp_path / "out", figure=False)["markdown"].read_text(
        encoding="utf-8"
    )
    assert "Unusable results.json skipped: 1" in text


def test_collect_results_of_an_empty_folder_writes_empty_tables(tmp_path):
    df = rt.collect_results(tmp_path)
    assert df.empty and list(df.columns) == list(rt.RUN_COLUMNS)
    paths = rt.write_tables(
        df, tmp_path / "out", seeds=[1], pairs=["en_de"], variants=["proposed"]
    )
    assert "| proposed | – | – |" in paths["markdown"].read_text(encoding="utf-8")
    assert paths["figure"].read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"uar": 61.2}, "'uar' must be a fraction in [0, 1]"),
        ({"macro_f1": None}, "'macro_f1' must be a fraction"),
        ({"seed": 1.5}, "'seed' must be an integer"),
        ({"variant": ""}, "'variant' must be a non-empty string"),
    ],
)
def test_load_result_refuses_bad_values(tmp_path, change, message):
    path = write_result(tmp_path, "en_de", "proposed", 1, 0.5)
    data = {**json.loads(path.read_text()), **change}
    path.write_text(json.dumps(data))
    with pytest.raises(rt.InvalidResultError, match=message.replace("[", r"\[")):
        rt.load_result(path)


def test_duplicate_runs_are_refused_with_their_paths():
    df = runs(("en_de", "proposed", 1, 0.5), ("en_de", "proposed", 1, 0.6))
    df["path"] = ["a/results.json", "b/results.json"]
    with pytest.raises(ValueError, match="share a .variant, pair, seed.*a/results"):
        rt.summarize(df)


def test_missing_columns_are_explained():
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['macro_f1'\]"):
        rt.summarize(pd.DataFrame({"pair": [], "variant": [], "seed": [], "uar": []}))
    with pytest.raises(ValueError, match="Unknown metric"):
        rt.to_markdown(rt.summarize(runs(("en_de", "proposed", 1, 0.5))), "acc")


def test_figure_is_a_valid_png(tmp_path):
    df = runs(
        *[
            (pair, variant, seed, 0.3 + 0.1 * i + 0.02 * seed)
            for pair in ("en_de", "zh_fr", "de_en")
            for i, variant in enumerate(rt.VARIANT_ORDER)
            for seed in (1, 2, 3)
        ]
    )
    df = df.drop(index=[0, 5])  # incomplete cells still plot
    out = rt.plot_variants(df, tmp_path / "fig" / "variants.png")
    assert out == tmp_path / "fig" / "variants.png"
    assert out.read_bytes()[:8] == PNG_MAGIC
    with Image.open(out) as image:
        image.verify()
        assert image.size[0] > 600 and image.size[1] > 600


def test_command_line_rebuilds_the_tables(tmp_path, capsys):
    write_result(tmp_path, "en_de", "proposed", 1, 0.5)
    paths = rt.main([str(tmp_path), "--out", str(tmp_path / "t"), "--seeds", "1,2"])
    assert paths["markdown"].parent == tmp_path / "t"
    assert "50.0 (1/2)" in paths["markdown"].read_text(encoding="utf-8")
    assert "1 runs ->" in capsys.readouterr().out


def test_paired_comparisons_have_known_values():
    # The old verdict rule (beyond the larger seed std) is gone (issue 19):
    # without predictions a comparison has its seed-paired differences only.
    b2 = {"en_de": [0.40, 0.42, 0.44], "zh_fr": [0.50, 0.60, 0.70]}
    pr = {"en_de": [0.45, 0.47, 0.49], "zh_fr": [0.48, 0.62, 0.67]}
    rows = [
        (pair, name, seed, value)
        for name, table in (("baseline2", b2), ("proposed", pr))
        for pair, values in table.items()
        for seed, value in zip((1, 2, 3), values)
    ]
    result = rt.compare_variants(runs(*rows), "proposed", "baseline2")
    result = result.set_index("pair")
    assert list(result.index) == ["en_de", "zh_fr", "Avg."]
    en = result.loc["en_de"]
    assert en["delta_mean"] == pytest.approx(0.05)
    assert en["delta_std"] == pytest.approx(0.0, abs=1e-12)
    assert (en["n_better"], en["n_seeds"]) == (3, 3)
    assert "verdict" not in result.columns and "spread" not in result.columns
    assert result[["ci_low", "ci_high", "p_value", "p_holm"]].isna().all().all()
    zh = result.loc["zh_fr"]  # differences -0.02, +0.02, -0.03 against std 0.1
    assert zh["delta_mean"] == pytest.approx(-0.01)
    assert zh["n_better"] == 1
    avg = result.loc["Avg."]  # per-seed averages: b2 .45 .51 .57, pr .465 .545 .58
    assert avg["delta_mean"] == pytest.approx((0.015 + 0.035 + 0.01) / 3)
    # the other way round, and with one seed
    lower = rt.compare_variants(runs(*rows), "baseline2", "proposed")
    assert lower.set_index("pair").loc["en_de", "delta_mean"] == pytest.approx(-0.05)
    one = rt.compare_variants(
        runs(*[r for r in rows if r[2] == 1]), "proposed", "baseline2"
    )
    assert set(one["n_seeds"]) == {1} and one["delta_std"].isna().all()


def test_comparisons_pair_seeds_and_are_written(tmp_path):
    # seed 3 of proposed is missing: only seeds 1 and 2 are paired
    df = runs(
        ("en_de", "baseline2", 1, 0.40),
        ("en_de", "baseline2", 2, 0.50),
        ("en_de", "baseline2", 3, 0.90),
        ("en_de", "proposed", 1, 0.45),
        ("en_de", "proposed", 2, 0.55),
    )
    row = rt.compare_variants(df, "proposed", "baseline2").iloc[0]
    assert row["n_seeds"] == 2 and row["delta_mean"] == pytest.approx(0.05)
    paths = rt.write_tables(df, tmp_path, figure=False)
    written = pd.read_csv(paths["comparisons"])
    assert set(written["metric"]) == {"uar", "macro_f1"}
    assert set(zip(written["variant"], written["reference"])) == {
        ("proposed", "baseline2")
    }  # the other comparisons have no runs
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "## Paired comparisons" in markdown
    assert "| proposed − baseline2 | +5.0 (2/2) | +5.0 (2/2) |" in markdown


def test_data_notes_head_the_tables(tmp_path):
    note = "synthetic demo corpus: rule-based prosody, not acted emotion"
    write_result(tmp_path, "en_de", "proposed", 1, 0.5, note=note)
    write_result(tmp_path, "en_de", "baseline2", 1, 0.4)
    df = rt.collect_results(tmp_path)
    assert rt.run_notes(df) == [note]
    paths = rt.write_tables(df, tmp_path / "out")
    lines = paths["markdown"].read_text(encoding="utf-8").splitlines()
    assert lines[:3] == ["# Results", "", f"> **Note: {note}.**"]
    assert paths["figure"].read_bytes()[:8] == PNG_MAGIC
    # without notes, no note line
    plain = rt.write_tables(df.assign(note=None), tmp_path / "plain", figure=False)
    assert "Note:" not in plain["markdown"].read_text(encoding="utf-8")


def test_diagnostics_section_from_results_json(tmp_path):
    def diagnostics(speaker, raw_speaker):
        probes = {
            "speaker_probe_acc": speaker,
            "speaker_chance": 0.25,
            "language_probe_acc": 0.5,
            "language_chance": 0.5,
        }
        raw = {**probes, "speaker_probe_acc": raw_speaker}
        return {**probes, "raw": raw}

    write_result(
        tmp_path, "en_de", "baseline2", 1, 0.5, diagnostics=diagnostics(0.6, 0.9)
    )
    write_result(
        tmp_path, "en_de", "proposed", 1, 0.5, diagnostics=diagnostics(0.3, 0.9)
    )
    write_result(
        tmp_path, "en_de", "proposed", 2, 0.5, diagnostics=diagnostics(0.5, 0.9)
    )
    write_result(tmp_path, "en_de", "baseline1", 1, 0.5)  # an older run
    df = rt.collect_results(tmp_path)
    by_variant = df.drop_duplicates("variant").set_index("variant")
    assert by_variant.loc["baseline2", "diag_raw_speaker_probe_acc"] == 0.9
    assert math.isnan(by_variant.loc["baseline1", "diag_speaker_chance"])
    text = rt.write_tables(df, tmp_path / "out", figure=False)["markdown"].read_text()
    assert "## Representation diagnostics" in text
    assert "| baseline2 | 90.0 → 60.0 | 50.0 → 50.0 | 1 |" in text
    assert "| proposed | 90.0 → 40.0 ± 14.1 | 50.0 → 50.0 ± 0.0 | 2 |" in text
    assert "| chance | 25.0 | 50.0 | |" in text
    assert "| baseline1 |" not in text.split("## Representation diagnostics")[1]
    without = rt.collect_results(tmp_path / "en_de" / "baseline1")
    assert rt.diagnostics_markdown(without) == ""


def test_speaker_norm_and_tuned_runs_get_their_own_rows_and_comparisons(tmp_path):
    # Two grid folders under one root: default runs and speaker-normalised
    # ones (proposed also with tuned weights); same pair, variant and seed.
    for seed, (b2, prop) in enumerate([(0.40, 0.42), (0.44, 0.43)], start=1):
        write_result(tmp_path / "default", "en_de", "baseline2", seed, b2)
        write_result(tmp_path / "default", "en_de", "proposed", seed, prop)
        for variant, uar in (("baseline2", b2 + 0.10), ("proposed", prop + 0.12)):
            write_result(
                tmp_path / "norm",
                "en_de",
                variant,
                seed,
                uar,
                speaker_norm="per_speaker",
                tuned_weights=None,
            )
        write_result(
            tmp_path / "tuned",
            "en_de",
            "proposed",
            seed,
            prop + 0.01,
            speaker_norm="none",
            tuned_weights={"file": "tuned.yaml"},
        )
    df = rt.collect_results(tmp_path)
    assert sorted(set(df["variant"])) == [
        "baseline2",
        "baseline2 +spk-norm",
        "proposed",
        "proposed (tuned)",
        "proposed +spk-norm",
    ]
    # transductive rows (+spk-norm) last, in a block of their own (issue 19)
    assert rt.order_variants(df["variant"]) == [
        "baseline2",
        "proposed",
        "proposed (tuned)",
        "baseline2 +spk-norm",
        "proposed +spk-norm",
    ]
    paths = rt.write_tables(df, tmp_path / "out", figure=False)
    comparisons = pd.read_csv(paths["comparisons"])
    uar = comparisons[
        (comparisons["metric"] == "uar") & (comparisons["pair"] == "en_de")
    ]
    delta = uar.set_index(["variant", "reference"])["delta_mean"]
    assert delta[("baseline2 +spk-norm", "baseline2")] == pytest.approx(0.10)
    assert delta[("proposed +spk-norm", "proposed")] == pytest.approx(0.12)
    assert delta[("proposed +spk-norm", "baseline2 +spk-norm")] == pytest.approx(
        np.mean([0.52 + 0.02 - 0.50, 0.43 + 0.12 - 0.54])
    )
    assert delta[("proposed (tuned)", "baseline2")] == pytest.approx(
        np.mean([0.43 - 0.40, 0.44 - 0.44])
    )
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "| proposed +spk-norm |" in markdown
    # the transductive rows have the best means but are never bold
    assert f"| {rt.TRANSDUCTIVE_HEADER} |" in markdown
    spk_norm_rows = [line for line in markdown.splitlines() if "+spk-norm |" in line]
    assert spk_norm_rows and not any("**" in line for line in spk_norm_rows)
    assert "| proposed (tuned) | **" in markdown


# ---- Per-utterance predictions: intervals and tests in the tables (issue 19) ----


def write_predicted_run(root, pair, variant, seed, accuracy, rng, speakers, labels):
    """A run folder with a results.json and the predictions.csv it comes from."""
    from zsser_modules.metrics import macro_f1, uar
    from zsser_modules.predictions import predictions_frame, write_predictions

    classes = ["neutral", "happy", "angry", "sad"]
    right = rng.random(labels.size) < accuracy
    predicted = np.where(right, labels, (labels + rng.integers(1, 4, labels.size)) % 4)
    scores = np.full((labels.size, 4), np.log(0.1))
    scores[np.arange(labels.size), predicted] = np.log(0.7)
    ids = [f"de_{i:03d}" for i in range(labels.size)]
    manifest = pd.DataFrame(
        {
            "ID": ids,
            "spk_id": [f"spk{s}" for s in speakers],
            "lang": "de",
            "emo": [classes[y] for y in labels],
        }
    )
    path = write_result(
        root,
        pair,
        variant,
        seed,
        uar(labels, predicted, 4),
        macro_f1(labels, predicted, 4),
    )
    frame = predictions_frame(ids, scores, manifest, classes)
    write_predictions(frame, path.parent / "predictions.csv")
    return path


def test_predictions_files_round_trip_into_intervals_and_tests(tmp_path):
    from zsser_modules.grid_dedupe import write_repeated_result
    from zsser_modules.grid_engine import Run

    rng = np.random.default_rng(0)
    speakers = np.repeat(np.arange(6), 20)
    labels = rng.integers(0, 4, speakers.size)
    for seed in (1, 2, 3):
        for variant, accuracy in (("baseline2", 0.4), ("proposed", 0.8)):
            write_predicted_run(
                tmp_path, "en_de", variant, seed, accuracy, rng, speakers, labels
            )
            # zh_de is the same experiment: the grid copies results and predictions
            write_repeated_result(
                Run(
                    "zh",
                    "de",
                    variant,
                    seed,
                    tmp_path / "zh_de" / variant / f"seed{seed}",
                ),
                Run(
                    "en",
                    "de",
                    variant,
                    seed,
                    tmp_path / "en_de" / variant / f"seed{seed}",
                ),
            )
        for pair in ("en_de", "zh_de"):  # source-only: two experiments
            write_predicted_run(
                tmp_path, pair, "baseline1", seed, 0.45, rng, speakers, labels
            )
    df = rt.collect_results(tmp_path)
    assert df["predictions"].notna().all() and len(df) == 18
    paths = rt.write_tables(df, tmp_path / "out", figure=False, n_boot=300, n_perm=500)

    summary = pd.read_csv(paths["summary_long"])
    for metric in rt.METRICS:
        low, mean, high = (summary[f"{metric}_{k}"] for k in ("low", "mean", "high"))
        assert ((low <= mean + 1e-9) & (mean <= high + 1e-9)).all()
    assert (summary["n_speakers"] == 6).all()

    comparisons = pd.read_csv(
        paths["comparisons"], keep_default_na=False, na_values=[""]
    )
    uar_rows = comparisons[comparisons["metric"] == "uar"].set_index(
        ["variant", "reference", "pair"]
    )
    en = uar_rows.loc[("proposed", "baseline2", "en_de")]
    zh = uar_rows.loc[("proposed", "baseline2", "zh_de")]
    assert zh["repeat_of"] == "en_de" and zh["p_holm"] == en["p_holm"]
    assert en["ci_low"] > 0 and en["p_holm"] <= rt.ALPHA  # the planted difference
    b1 = uar_rows.loc[("proposed", "baseline1", "zh_de")]
    assert pd.isna(b1["repeat_of"]) or b1["repeat_of"] == ""
    # the family: one test per distinct experiment (zh_de vs baseline2 repeats)
    tested = comparisons[(comparisons["metric"] == "uar")]
    family = tested[tested["repeat_of"].fillna("") == ""]
    p = family["p_value"].to_numpy(float)
    assert family["p_holm"].to_numpy(float) == pytest.approx(rt.holm(p))
    t = family["p_seed_t"].to_numpy(float)
    assert family["p_seed_t_holm"].to_numpy(float) == pytest.approx(rt.holm(t))

    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "hierarchical bootstrap interval" in markdown
    assert "Coverage caveat" in markdown and "en→de (6)" in markdown
    assert "| proposed − baseline2 | **+" in markdown

    # a run without predictions (an old run): its cells get means only, noted
    (tmp_path / "en_de" / "baseline1" / "seed2" / "predictions.csv").unlink()
    # predictions of another run than results.json says: no interval, noted
    changed = tmp_path / "zh_de" / "baseline1" / "seed1" / "results.json"
    changed.write_text(json.dumps({**json.loads(changed.read_text()), "uar": 0.99}))
    df = rt.collect_results(tmp_path)
    paths = rt.write_tables(df, tmp_path / "out2", figure=False, n_boot=100, n_perm=100)
    summary = rt.summarize(df)
    long = pd.read_csv(paths["summary_long"]).set_index(["variant", "pair"])
    assert np.isnan(long.loc[("baseline1", "en_de"), "uar_low"])
    assert np.isnan(long.loc[("baseline1", "zh_de"), "uar_low"])
    assert np.isfinite(long.loc[("proposed", "en_de"), "uar_low"])
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "Means only" in markdown and "baseline1 en→de" in markdown
    assert "Unusable prediction files" in markdown and "of another run" in markdown
    # ... and no comparison mixes results.json's difference with another interval
    assert "| proposed − baseline1 | +31.7 (3/3) | +13.2 (2/3) | +22.5 (3/3) |" in (
        markdown
    )
    assert len(summary) == len(long)


def test_a_test_set_that_changes_with_the_seed_gets_intervals(tmp_path):
    # split_seed following seed: each seed tests on its own utterances
    from zsser_modules.metrics import uar

    rng = np.random.default_rng(1)
    for seed in (1, 2, 3):
        speakers = np.repeat(np.arange(5), 8)
        labels = rng.integers(0, 4, speakers.size)
        for variant, accuracy in (("baseline2", 0.4), ("proposed", 0.7)):
            path = write_predicted_run(
                tmp_path, "en_de", variant, seed, accuracy, rng, speakers, labels
            )
            frame = pd.read_csv(path.parent / "predictions.csv")
            frame["ID"] = [f"s{seed}_{i}" for i in frame["ID"]]  # other utterances
            frame.to_csv(path.parent / "predictions.csv", index=False)
            codes = [
                ["neutral", "happy", "angry", "sad"].index(x) for x in frame["label"]
            ]
            preds = [
                ["neutral", "happy", "angry", "sad"].index(x)
                for x in frame["prediction"]
            ]
            assert json.loads(path.read_text())["uar"] == pytest.approx(
                uar(codes, preds, 4)
            )
    df = rt.collect_results(tmp_path)
    store = rt.PredictionStore(df)
    summary = rt.cell_intervals(df, rt.summarize(df), store, n_boot=200)
    assert not store.problems
    cells = summary.set_index(["variant", "pair"])
    for variant in ("baseline2", "proposed"):
        low, mean, high = cells.loc[
            (variant, "en_de"), ["uar_low", "uar_mean", "uar_high"]
        ]
        assert low <= mean <= high
    row = (
        rt.compare_variants(
            df, "proposed", "baseline2", store=store, n_boot=200, n_perm=200
        )
        .set_index("pair")
        .loc["en_de"]
    )
    assert row["ci_low"] <= row["delta_mean"] <= row["ci_high"]
    assert np.isfinite(row["p_value"]) and np.isfinite(row["p_seed_t"])
    assert not store.problems


def test_a_repeat_whose_original_is_not_shown_is_tested_in_its_own_right(tmp_path):
    from zsser_modules.grid_dedupe import write_repeated_result
    from zsser_modules.grid_engine import Run

    rng = np.random.default_rng(2)
    speakers = np.repeat(np.arange(4), 10)
    labels = rng.integers(0, 4, speakers.size)
    for seed in (1, 2, 3):
        for variant, accuracy in (("baseline2", 0.4), ("proposed", 0.7)):
            write_predicted_run(
                tmp_path, "en_de", variant, seed, accuracy, rng, speakers, labels
            )
            folder = tmp_path / "{}" / variant / f"seed{seed}"
            write_repeated_result(
                Run("zh", "de", variant, seed, Path(str(folder).format("zh_de"))),
                Run("en", "de", variant, seed, Path(str(folder).format("en_de"))),
            )
    df = rt.collect_results(tmp_path)
    only = df[df["pair"] == "zh_de"]  # e.g. a table of one subfolder
    shown = rt.adjust_pvalues(
        rt.compare_variants(only, "proposed", "baseline2", n_perm=200)
    )
    zh = shown[shown["pair"] == "zh_de"].iloc[0]
    assert zh["repeat_of"] == "" and np.isfinite(zh["p_holm"])
    both = rt.adjust_pvalues(
        rt.compare_variants(df, "proposed", "baseline2", n_perm=200)
    )
    assert both.set_index("pair").loc["zh_de", "repeat_of"] == "en_de"


# ---- The control, the whole-target score, protocols, few speakers (issue 19) ----

CLASSES = ["neutral", "happy", "angry", "sad"]


def predicted_frame(accuracy, rng, speakers, labels, prefix="de"):
    """Predictions of a made-up model and the UAR and macro-F1 they give."""
    from zsser_modules.metrics import macro_f1, uar
    from zsser_modules.predictions import predictions_frame

    right = rng.random(labels.size) < accuracy
    predicted = np.where(right, labels, (labels + rng.integers(1, 4, labels.size)) % 4)
    scores = np.full((labels.size, 4), np.log(0.1))
    scores[np.arange(labels.size), predicted] = np.log(0.7)
    ids = [f"{prefix}_{i:03d}" for i in range(labels.size)]
    manifest = pd.DataFrame(
        {
            "ID": ids,
            "spk_id": [f"spk{s}" for s in speakers],
            "lang": "de",
            "emo": [CLASSES[y] for y in labels],
        }
    )
    frame = predictions_frame(ids, scores, manifest, CLASSES)
    return frame, uar(labels, predicted, 4), macro_f1(labels, predicted, 4)


def add_target_all(path, accuracy, rng, speakers, labels):
    """Give a run a whole-target score and its predictions_target_all.csv."""
    from zsser_modules.predictions import write_predictions

    frame, u, f = predicted_frame(accuracy, rng, speakers, labels, prefix="all")
    write_predictions(frame, path.parent / "predictions_target_all.csv")
    data = json.loads(path.read_text())
    data["target_all"] = {"uar": u, "macro_f1": f, "n_utterances": len(labels)}
    path.write_text(json.dumps(data))
    return u


def test_the_control_comparisons_join_the_holm_family(tmp_path):
    assert ("baseline2_hier", "baseline2") in rt.COMPARISONS
    assert ("proposed", "baseline2_hier") in rt.COMPARISONS
    assert rt.comparisons_for(["baseline2", "baseline2_hier", "proposed"]) == [
        ("proposed", "baseline2"),
        ("baseline2_hier", "baseline2"),
        ("proposed", "baseline2_hier"),
    ]
    rng = np.random.default_rng(3)
    speakers = np.repeat(np.arange(6), 10)
    labels = rng.integers(0, 4, speakers.size)
    for seed in (1, 2, 3):
        for variant, accuracy in (
            ("baseline2", 0.4),
            ("baseline2_hier", 0.5),
            ("proposed", 0.8),
        ):
            write_predicted_run(
                tmp_path, "en_de", variant, seed, accuracy, rng, speakers, labels
            )
    df = rt.collect_results(tmp_path)
    paths = rt.write_tables(df, tmp_path / "out", figure=False, n_boot=100, n_perm=200)
    comparisons = pd.read_csv(
        paths["comparisons"], keep_default_na=False, na_values=[""]
    )
    uar_rows = comparisons[comparisons["metric"] == "uar"]
    assert set(zip(uar_rows["variant"], uar_rows["reference"])) == {
        ("proposed", "baseline2"),
        ("baseline2_hier", "baseline2"),
        ("proposed", "baseline2_hier"),
    }
    family = uar_rows[uar_rows["repeat_of"].fillna("") == ""]
    assert len(family) == 6  # 3 comparisons x (en_de, Avg.): one Holm family
    p = family["p_value"].to_numpy(float)
    assert family["p_holm"].to_numpy(float) == pytest.approx(rt.holm(p))
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "| baseline2_hier − baseline2 |" in markdown
    assert "| proposed − baseline2_hier |" in markdown


def test_whole_target_score_gets_its_own_supplementary_tables(tmp_path):
    rng = np.random.default_rng(4)
    speakers = np.repeat(np.arange(8), 6)  # the test split: 8 speakers
    labels = rng.integers(0, 4, speakers.size)
    every_speakers = np.repeat(np.arange(25), 8)  # the whole target: 25
    every_labels = rng.integers(0, 4, every_speakers.size)
    protocol = {"protocol": "paper", "paper_split": "stratified"}
    expected = {}
    for seed in (1, 2, 3):
        for variant, accuracy in (
            ("baseline2", 0.4),
            ("proposed", 0.85),
            ("upper_bound", 0.9),
        ):
            path = write_predicted_run(
                tmp_path, "en_de", variant, seed, accuracy, rng, speakers, labels
            )
            path.write_text(json.dumps({**json.loads(path.read_text()), **protocol}))
            if variant != "upper_bound":  # the oracle has no whole-target score
                expected[variant, seed] = add_target_all(
                    path, accuracy, rng, every_speakers, every_labels
                )
    df = rt.collect_results(tmp_path)
    assert df["target_all_uar"].notna().sum() == 6
    assert df["predictions_target_all"].notna().sum() == 6
    every = rt.score_runs(df, "target_all")
    assert set(every["variant"]) == {"baseline2", "proposed"}
    got = {(v, s): u for v, s, u in zip(every["variant"], every["seed"], every["uar"])}
    assert got == pytest.approx(expected)

    paths = rt.write_tables(df, tmp_path / "out", figure=False, n_boot=200, n_perm=300)
    summary = pd.read_csv(paths["summary_long_target_all"])
    assert set(summary["variant"]) == {"baseline2", "proposed"}
    assert (summary["n_speakers"] == 25).all()  # read from the whole-target files
    low, mean, high = (summary[f"uar_{k}"] for k in ("low", "mean", "high"))
    assert ((low <= mean + 1e-9) & (mean <= high + 1e-9)).all()
    proposed = summary.set_index(["variant", "pair"]).loc[("proposed", "en_de")]
    assert proposed["uar_mean"] == pytest.approx(
        np.mean([expected["proposed", s] for s in (1, 2, 3)])
    )
    comparisons = pd.read_csv(
        paths["comparisons_target_all"], keep_default_na=False, na_values=[""]
    )
    tested = comparisons[comparisons["metric"] == "uar"]
    assert set(zip(tested["variant"], tested["reference"])) == {
        ("proposed", "baseline2")
    }
    # its own Holm family: adjusted over its own tests only
    p = tested["p_value"].to_numpy(float)
    assert tested["p_holm"].to_numpy(float) == pytest.approx(rt.holm(p))
    assert np.isfinite(tested["ci_low"]).all()

    markdown = paths["markdown"].read_text(encoding="utf-8")
    title = markdown.index("## " + rt.TARGET_ALL_TITLE)
    assert "the whole target corpus, which contains the test split" in markdown
    assert "zero-shot systems only" in markdown
    assert markdown.index("## Paired comparisons") < title < markdown.index("## Runs")
    supplementary = markdown[title : markdown.index("## Runs")]
    assert "| upper_bound |" not in supplementary
    assert "| upper_bound |" in markdown[:title]
    assert "| proposed − baseline2 |" in supplementary
    # the main table's coverage caveat names 8 speakers, the whole target's none
    assert "en→de (8)" in markdown[:title] and "Coverage caveat" not in supplementary
    assert "whole-target score (results.json target_all): 6 of 6" in markdown

    # a grid without whole-target scores writes no supplementary files
    for path in tmp_path.rglob("predictions_target_all.csv"):
        path.unlink()
    for path in tmp_path.rglob("results.json"):
        data = json.loads(path.read_text())
        data.pop("target_all", None)
        path.write_text(json.dumps(data))
    paths = rt.write_tables(
        rt.collect_results(tmp_path),
        tmp_path / "out",
        figure=False,
        n_boot=50,
        n_perm=50,
    )
    assert "summary_long_target_all" not in paths
    assert not (tmp_path / "out" / "summary_long_target_all.csv").exists()
    assert rt.TARGET_ALL_TITLE not in paths["markdown"].read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("n_speakers", "says", "not_says"),
    [
        (1, "conditional on that speaker", "Coverage caveat"),
        (3, "No meaningful speaker-level interval", "conditional on that speaker"),
        (8, "Coverage caveat", "No meaningful speaker-level interval"),
    ],
)
def test_few_test_speakers_are_named(tmp_path, n_speakers, says, not_says):
    rng = np.random.default_rng(5)
    speakers = np.repeat(np.arange(n_speakers), 30 // n_speakers + 4)
    labels = rng.integers(0, 4, speakers.size)
    for seed in (1, 2):
        write_predicted_run(
            tmp_path, "en_de", "proposed", seed, 0.6, rng, speakers, labels
        )
    df = rt.collect_results(tmp_path)
    paths = rt.write_tables(df, tmp_path / "out", figure=False, n_boot=50, n_perm=50)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert says in markdown and not_says not in markdown
    assert "en→de" in markdown[markdown.index(says) - 60 :]


def test_protocol_is_carried_named_and_never_mixed_silently(tmp_path, capsys):
    paper = {"protocol": "paper", "paper_split": "stratified", "split_seed": 7}
    write_result(tmp_path, "en_de", "proposed", 1, 0.5, **paper)
    held = write_result(tmp_path, "en_de", "baseline2", 1, 0.4, protocol="paper")
    # split_seed from run_identity.json when results.json lacks it
    (held.parent / "run_identity.json").write_text(
        json.dumps({"hash": "x", "settings": {"split_seed": 3}})
    )
    df = rt.collect_results(tmp_path)
    runs_table = df.set_index("variant")
    assert runs_table.loc["proposed", "split_seed"] == 7
    assert runs_table.loc["baseline2", "split_seed"] == 3
    assert pd.isna(runs_table.loc["baseline2", "paper_split"])
    assert rt.protocols_of(df) == ["paper", "paper (stratified)"]

    with pytest.raises(rt.InvalidResultError, match="mix protocols"):
        rt.write_tables(df, tmp_path / "out", figure=False)
    with pytest.raises(SystemExit) as stop:
        rt.main([str(tmp_path), "--out", str(tmp_path / "out"), "--no-figure"])
    message = str(stop.value)
    assert message.startswith("error: ") and "\n" not in message
    assert "paper (stratified)" in message and "--allow-mixed-protocols" in message
    paths = rt.main(
        [
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
            "--no-figure",
            "--allow-mixed-protocols",
        ]
    )
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "WARNING: these tables MIX runs of different protocols" in markdown
    assert "Protocols: MIXED" in markdown

    # one protocol: named in the caption, upper bound on the train split only
    held.write_text(json.dumps({**json.loads(held.read_text()), **paper}))
    df = rt.collect_results(tmp_path)
    written = pd.read_csv(rt.write_tables(df, tmp_path / "one", figure=False)["runs"])
    assert {"protocol", "paper_split", "split_seed"} <= set(written.columns)
    markdown = (tmp_path / "one" / "results.md").read_text(encoding="utf-8")
    assert "Protocol: paper (stratified)" in markdown
    assert "`upper_bound` trains on the target's train split only" in markdown
    assert "upper_bound` also trains on it" not in markdown
    assert "a test speaker's come from all its test utterances" in markdown
    assert "WARNING" not in markdown
    # runs from before the protocol key: the speaker settings, said so
    other = tmp_path / "old"
    write_result(other, "en_de", "proposed", 1, 0.5)
    paths = rt.write_tables(rt.collect_results(other), other / "t", figure=False)
    assert "Protocol: unrecorded" in paths["markdown"].read_text(encoding="utf-8")


def test_the_printed_p_values_are_labelled(tmp_path):
    rng = np.random.default_rng(6)
    speakers = np.repeat(np.arange(6), 8)
    labels = rng.integers(0, 4, speakers.size)
    for seed in (1, 2, 3):
        for variant, accuracy in (("baseline2", 0.4), ("proposed", 0.7)):
            write_predicted_run(
                tmp_path, "en_de", variant, seed, accuracy, rng, speakers, labels
            )
    paths = rt.write_tables(
        rt.collect_results(tmp_path),
        tmp_path / "out",
        figure=False,
        n_boot=50,
        n_perm=100,
    )
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "p_perm: Holm-adjusted" in markdown and "p_seed: Holm-adjusted" in markdown
    assert "conditional on the trained models" in markdown
    assert "bold only when both p_perm and p_seed" in markdown
    row = next(
        line for line in markdown.splitlines() if "| proposed − baseline2 |" in line
    )
    assert " p_perm " in row and " p_seed " in row
    assert "p_H" not in markdown and "t_H" not in markdown


def test_transductive_rows_come_from_speaker_norm(tmp_path):
    from zsser_modules.speaker_norm import SPEAKER_NORMS, TRANSDUCTIVE_NORMS

    for norm in SPEAKER_NORMS:
        label = rt.row_label({"variant": "proposed", "speaker_norm": norm})
        assert rt.is_transductive(label) == (norm in TRANSDUCTIVE_NORMS), norm
    assert rt.TRANSDUCTIVE_MARKS == rt.TRANSDUCTIVE_SUFFIXES
