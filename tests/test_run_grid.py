"""Tests of the grid runner (recipes/run_grid.py).

The runner is driven in-process through ``run_grid.main``; the runs are a
fake recipe (a small script written to tmp_path) that writes a results.json,
fails, hangs or waits for other runs on demand, so the tests check the
runner's logic (planning, skipping, failures, parallelism, overrides) in a
few seconds. The last test runs the real recipe on the demo corpus.
"""

import doctest
import json
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from recipes import run_grid
from zsser_modules import grid_dedupe, grid_plan
from zsser_modules.results_table import VARIANT_ORDER
from zsser_modules.run_identity import RunIdentity, check_run_folder

REPO_ROOT = Path(__file__).resolve().parents[1]

# A stand-in for recipes/train.py with the same command line. Options (all
# optional, as YAML-style overrides): --fail_variants=a,b (exit 3 with a
# traceback), --no_results_variants=a,b (exit 0 without results.json),
# --crash_after_results_variants=a,b (exit 5 after writing results.json),
# --sleep=S, --events=FILE (append "start <key>"/"end <key>"),
# --barrier_dir=D --barrier_n=N (wait until N runs are inside at once),
# --die_variants=a,b (the process dies at once: os._exit, no cleanup).
FAKE_RECIPE = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path

    hparams, opts = sys.argv[1], {}
    args = sys.argv[2:]
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            key, sep, value = arg[2:].partition("=")
            if not sep and i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
            opts[key] = value
    variant, seed = opts["variant"], int(opts["seed"])
    key = f"{opts['source_lang']}_{opts['target_lang']}/{variant}/seed{seed}"
    out = Path(opts["output_folder"])
    print("fake recipe", key, flush=True)

    def event(what):
        if "events" in opts:
            with open(opts["events"], "a") as f:
                f.write(f"{what} {key}\\n")

    event("start")
    if "barrier_dir" in opts:
        barrier = Path(opts["barrier_dir"])
        barrier.mkdir(parents=True, exist_ok=True)
        (barrier / key.replace("/", "_")).touch()
        deadline = time.monotonic() + 20
        while len(list(barrier.iterdir())) < int(opts["barrier_n"]):
            if time.monotonic() > deadline:
                print("barrier timeout: the runs did not run at the same time")
                sys.exit(4)
            time.sleep(0.02)
    time.sleep(float(opts.get("sleep", 0)))
    if variant in opts.get("die_variants", "").split(","):
        os._exit(9)
    if variant in opts.get("fail_variants", "").split(","):
        print("Traceback (most recent call last):")
        print(f"RuntimeError: boom in {key}", flush=True)
        event("end")
        sys.exit(3)
    if variant not in opts.get("no_results_variants", "").split(","):
        out.mkdir(parents=True, exist_ok=True)
        rank = ["baseline1", "baseline2", "no_supcon", "no_spkadv", "proposed",
                "upper_bound", "baseline2_hier"].index(variant)
        uar = 0.40 + 0.05 * rank + 0.01 * seed
        (out / "predictions.csv").write_text(f"made by {key}\\n")
        (out / "results.json").write_text(json.dumps({
            "source": opts["source_lang"], "target": opts["target_lang"],
            "variant": variant, "seed": seed, "uar": uar, "macro_f1": uar - 0.02,
            "n_test": 100, "per_class_recall": {}, "confusion_matrix": [],
            "hparams": hparams, "argv": sys.argv[1:],
            "threads": os.environ.get("OMP_NUM_THREADS"), "pid": os.getpid(),
        }))
    event("end")
    if variant in opts.get("crash_after_results_variants", "").split(","):
        sys.exit(5)
    """
)


@pytest.fixture
def fake(tmp_path):
    """Paths of a fake recipe, a single hparams file and a grid folder."""
    recipe = tmp_path / "fake_train.py"
    recipe.write_text(FAKE_RECIPE)
    hparams = tmp_path / "base.yaml"
    hparams.write_text(
        "source_lang: en\ntarget_lang: de\nlanguages: [en, zh, de, fr, ur]\n"
    )
    return {"recipe": recipe, "hparams": hparams, "grid": tmp_path / "grid"}


def grid(
    fake,
    *args,
    overrides=(),
    pairs="en_de,zh_fr",
    variants="baseline1,proposed",
    seeds="1,2",
    table=False,
):
    """Run the grid on the fake recipe; return its exit status."""
    argv = [
        "--grid-folder",
        str(fake["grid"]),
        "--recipe",
        str(fake["recipe"]),
        *([] if "--hparams-dir" in args else ["--hparams", str(fake["hparams"])]),
        "--pairs",
        pairs,
        "--variants",
        variants,
        "--seeds",
        seeds,
        "--no-progressbar",
        *([] if table else ["--no-table"]),
        *args,
    ]
    if overrides:
        argv += ["--", *overrides]
    return run_grid.main(argv)


def results_of(fake, key):
    return json.loads((fake["grid"] / key / "results.json").read_text())


def failures_of(fake):
    return json.loads((fake["grid"] / "failures.json").read_text())


def events_of(path):
    return [tuple(line.split()) for line in path.read_text().splitlines()]


def test_grid_runs_every_cell_and_writes_the_table(fake, capsys):
    assert grid(fake, table=True) == 0
    runs = run_grid.plan_runs(
        fake["grid"], ["en_de", "zh_fr"], ["baseline1", "proposed"], [1, 2]
    )
    assert len(runs) == 8
    for run in runs:
        result = results_of(fake, run.key)
        assert (result["variant"], result["seed"]) == (run.variant, run.seed)
        assert (result["source"], result["target"]) == (run.source, run.target)
        assert (run.output_folder / "grid_log.txt").read_text().count(
            "fake recipe"
        ) == 1
    assert failures_of(fake) == []
    table = pd.read_csv(fake["grid"] / "runs.csv")
    assert len(table) == 8
    markdown = (fake["grid"] / "results.md").read_text(encoding="utf-8")
    # proposed (rank 4): UAR 0.60 + 0.01 * seed -> 61.5 ± 0.7 in every column.
    assert "| proposed | **61.5 ± 0.7** | **61.5 ± 0.7** | **61.5 ± 0.7** |" in markdown
    assert "| baseline1 | 41.5 ± 0.7 | 41.5 ± 0.7 | 41.5 ± 0.7 |" in markdown
    assert (fake["grid"] / "variants.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "8 to run" in out and "8 ok, 0 failed" in out


def test_the_single_hparams_file_gets_the_pair_as_overrides(fake):
    assert grid(fake, pairs="zh_fr", variants="proposed", seeds="1") == 0
    argv = results_of(fake, "zh_fr/proposed/seed1")["argv"]
    assert argv[0] == str(fake["hparams"])
    assert "--source_lang=zh" in argv and "--target_lang=fr" in argv
    assert f"--output_folder={fake['grid'] / 'zh_fr/proposed/seed1'}" in argv


def test_a_pair_file_pattern_is_filled_per_pair(fake, tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    for pair in ("en_de", "zh_fr"):
        (folder / f"{pair}.yaml").write_text("x: 1\n")
    assert grid(fake, "--hparams-dir", str(folder), seeds="1") == 0
    assert results_of(fake, "zh_fr/baseline1/seed1")["hparams"] == str(
        folder / "zh_fr.yaml"
    )


def test_missing_hparams_files_are_an_error_before_any_run(fake, tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        run_grid.main(
            [
                "--grid-folder",
                str(fake["grid"]),
                "--recipe",
                str(fake["recipe"]),
                "--hparams",
                str(tmp_path / "{source}-{target}.yaml"),
                "--pairs",
                "en_de",
            ]
        )
    assert error.value.code == 2
    assert "en-de.yaml" in capsys.readouterr().err
    assert not fake["grid"].exists()


def test_finished_runs_are_skipped_and_unusable_ones_redone(fake, capsys):
    events = fake["grid"].parent / "events.txt"
    overrides = [f"--events={events}"]
    assert grid(fake, overrides=overrides) == 0
    assert len(events_of(events)) == 16  # 8 starts, 8 ends
    events.unlink()
    broken = fake["grid"] / "en_de/proposed/seed2/results.json"
    broken.write_text('{"uar": 0.5')  # truncated: not a valid result
    (fake["grid"] / "zh_fr/baseline1/seed1/results.json").unlink()
    capsys.readouterr()

    assert grid(fake, overrides=overrides) == 0
    started = sorted(key for what, key in events_of(events) if what == "start")
    assert started == ["en_de/proposed/seed2", "zh_fr/baseline1/seed1"]
    assert "6 done, 2 to run" in capsys.readouterr().out
    assert results_of(fake, "en_de/proposed/seed2")["seed"] == 2


def test_a_failed_run_is_recorded_and_the_grid_goes_on(fake, capsys):
    status = grid(fake, overrides=["--fail_variants=proposed"], table=True)
    assert status == 0  # not fatal without --strict
    failures = failures_of(fake)
    assert sorted(f["run"] for f in failures) == [
        "en_de/proposed/seed1",
        "en_de/proposed/seed2",
        "zh_fr/proposed/seed1",
        "zh_fr/proposed/seed2",
    ]
    first = failures[0]
    assert first["returncode"] == 3 and first["status"] == "failed"
    assert first["reason"] == "exited with code 3"
    assert "RuntimeError: boom in en_de/proposed/seed1" in first["log_tail"]
    assert first["log_tail"].splitlines()[0] == "fake recipe en_de/proposed/seed1"
    assert "--fail_variants=proposed" in first["command"]
    # the baselines all ran; the table marks the missing cells
    assert len(pd.read_csv(fake["grid"] / "runs.csv")) == 4
    markdown = (fake["grid"] / "results.md").read_text(encoding="utf-8")
    assert "| proposed | – | – | – |" in markdown
    assert "Missing runs: 4" in markdown
    assert "4 failed" in capsys.readouterr().out


def test_strict_exits_non_zero_after_running_everything(fake):
    assert grid(fake, "--strict", overrides=["--fail_variants=proposed"]) == 1
    assert len(list(fake["grid"].rglob("results.json"))) == 4


def test_a_fixed_run_leaves_failures_json(fake):
    grid(fake, overrides=["--fail_variants=proposed"])
    assert len(failures_of(fake)) == 4
    # rerun only zh_fr: its records go, those of en_de (not rerun) stay
    assert grid(fake, pairs="zh_fr") == 0
    assert sorted(f["run"] for f in failures_of(fake)) == [
        "en_de/proposed/seed1",
        "en_de/proposed/seed2",
    ]
    assert grid(fake) == 0
    assert failures_of(fake) == []


def test_exit_zero_without_results_is_a_failure(fake):
    assert (
        grid(
            fake,
            "--strict",
            variants="proposed",
            seeds="1",
            overrides=["--no_results_variants=proposed"],
        )
        == 1
    )
    reasons = {f["reason"] for f in failures_of(fake)}
    assert reasons == {"exited with code 0 but left no valid results.json"}


def test_a_crash_after_the_results_is_a_failure_whose_results_count(fake, capsys):
    args = ("--strict",)
    kwargs = {"pairs": "en_de", "variants": "proposed", "seeds": "1"}
    overrides = ["--crash_after_results_variants=proposed"]
    assert grid(fake, *args, **kwargs, overrides=overrides) == 1
    (record,) = failures_of(fake)
    assert record["returncode"] == 5
    assert "after writing a valid results.json" in record["reason"]
    capsys.readouterr()
    assert grid(fake, *args, **kwargs) == 0  # done now: not run again
    assert "1 done, 0 to run" in capsys.readouterr().out
    assert failures_of(fake) == []


def test_a_run_that_cannot_start_does_not_stop_the_grid(fake):
    blocker = fake["grid"] / "en_de" / "proposed"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the run folders should go")
    assert grid(fake, "--strict", pairs="en_de", seeds="1") == 1
    assert results_of(fake, "en_de/baseline1/seed1")["variant"] == "baseline1"
    (record,) = failures_of(fake)
    assert record["run"] == "en_de/proposed/seed1"
    assert record["reason"].startswith("could not run: ")


def put_foreign_results(fake, key="en_de/proposed/seed1"):
    """Put en_de/baseline2/seed1's results.json into the folder of run ``key``."""
    folder = fake["grid"] / key
    folder.mkdir(parents=True)
    foreign = {"source": "en", "target": "de", "variant": "baseline2", "seed": 1}
    text = json.dumps({**foreign, "uar": 0.5, "macro_f1": 0.5})
    (folder / "results.json").write_text(text)
    return folder, text


def test_a_folder_holding_another_run_is_not_touched(fake):
    folder, foreign = put_foreign_results(fake)
    assert grid(fake, "--strict", pairs="en_de", variants="proposed", seeds="1") == 1
    assert (folder / "results.json").read_text() == foreign
    (record,) = failures_of(fake)
    assert record["status"] == "conflict" and "another run" in record["reason"]


def test_parallel_jobs_run_at_the_same_time(fake, tmp_path):
    # Each run waits until both are inside the recipe: with one job at a time
    # the first would give up (exit 4) instead of finishing.
    overrides = [f"--barrier_dir={tmp_path / 'barrier'}", "--barrier_n=2"]
    assert (
        grid(
            fake,
            "--jobs",
            "2",
            "--no-warmup",
            "--strict",
            pairs="en_de",
            seeds="1",
            overrides=overrides,
        )
        == 0
    )
    threads = {
        results_of(fake, f"en_de/{v}/seed1")["threads"]
        for v in ("baseline1", "proposed")
    }
    assert threads == {str(max(1, run_grid.available_cores() // 2))}


def test_threads_option_sets_the_thread_variables(fake):
    assert (
        grid(fake, "--threads", "3", pairs="en_de", variants="proposed", seeds="1") == 0
    )
    assert results_of(fake, "en_de/proposed/seed1")["threads"] == "3"


def test_warmup_runs_the_first_run_and_first_seeds_before_the_others(fake, tmp_path):
    events = tmp_path / "events.txt"
    assert (
        grid(
            fake,
            "--jobs",
            "2",
            pairs="en_de",
            seeds="1,2",
            overrides=[f"--events={events}"],
        )
        == 0
    )
    order = events_of(events)
    position = {event: i for i, event in enumerate(order)}
    warmup = ("end", "en_de/proposed/seed1")  # first run that is not baseline1
    assert order[0] == ("start", "en_de/proposed/seed1")
    assert all(
        position[warmup] < i
        for i, (what, _) in enumerate(order)
        if what == "start" and i > 0
    )
    assert (
        position[("end", "en_de/baseline1/seed1")]
        < position[("start", "en_de/baseline1/seed2")]
    )


def test_overrides_after_the_separator_reach_every_run(fake):
    overrides = ["--encoder=fbank", "--number_of_epochs", "5", "--noprogressbar"]
    assert grid(fake, pairs="en_de", seeds="1", overrides=overrides) == 0
    for variant in ("baseline1", "proposed"):
        argv = results_of(fake, f"en_de/{variant}/seed1")["argv"]
        assert argv[-4:] == overrides
        assert argv.count("--noprogressbar") == 1
        assert f"--variant={variant}" in argv and "--seed=1" in argv


@pytest.mark.parametrize(
    "reserved", ["--seed=4", "--variant=proposed", "--output_folder=x"]
)
def test_overrides_cannot_set_what_the_grid_sets(fake, reserved, capsys):
    with pytest.raises(SystemExit) as error:
        grid(fake, overrides=[reserved])
    assert error.value.code == 2
    assert f"The grid sets {reserved.split('=')[0]} itself" in capsys.readouterr().err


def test_a_run_over_the_timeout_is_stopped_and_recorded(fake):
    assert (
        grid(
            fake,
            "--timeout",
            "1",
            pairs="en_de",
            variants="proposed",
            seeds="1",
            overrides=["--sleep=60"],
        )
        == 0
    )
    (record,) = failures_of(fake)
    assert record["reason"] == "stopped after the --timeout of 1 s"
    assert "fake recipe en_de/proposed/seed1" in record["log_tail"]


def test_dry_run_runs_nothing(fake, capsys):
    assert grid(fake, "--dry-run") == 0
    assert not fake["grid"].exists()
    out = capsys.readouterr().out
    assert out.count("to run ") == 8 and "--variant=proposed --seed=2" in out


def test_changed_overrides_are_reported_for_finished_runs(fake, capsys):
    assert grid(fake, pairs="en_de", variants="proposed", seeds="1") == 0
    capsys.readouterr()
    assert (
        grid(
            fake,
            pairs="en_de",
            variants="proposed",
            seeds="1",
            overrides=["--encoder=fbank"],
        )
        == 0
    )
    assert "1 finished run(s) were made with another command line" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--pairs", "en_en", "Bad pair 'en_en'"),
        ("--pairs", "en_xx", "Bad pair"),
        ("--variants", "best", "Unknown variant"),
        ("--seeds", "one", "Bad seeds"),
    ],
)
def test_bad_grid_options_are_explained(fake, option, value, message, capsys):
    with pytest.raises(SystemExit):
        run_grid.main(["--grid-folder", str(fake["grid"]), option, value])
    assert message in capsys.readouterr().err


def pair_file_text(source, target, languages="[en, zh, de, fr, ur]"):
    """A standalone pair file, as hparams/<pair>.yaml (header comment included)."""
    return (
        f"# hparams/{source}_{target}.yaml\nseed: 1\nsource_lang: {source}\n"
        f"target_lang: {target}\nlanguages: {languages}\n"
        "pair: !ref <source_lang>_<target_lang>\n"
    )


@pytest.fixture
def layered(tmp_path):
    """A folder of standalone pair files, as hparams/<pair>.yaml."""
    folder = tmp_path / "pairs"
    folder.mkdir()
    for pair in ("en_de", "zh_de", "en_fr", "fr_de"):
        (folder / f"{pair}.yaml").write_text(pair_file_text(*pair.split("_")))
    return folder


def test_identical_experiments_run_once(fake, layered, tmp_path, capsys):
    events = tmp_path / "events.txt"
    status = grid(
        fake,
        "--hparams-dir",
        str(layered),
        pairs="en_de,zh_de,en_fr",
        overrides=[f"--events={events}"],
        table=True,
    )
    assert status == 0
    started = sorted(key for what, key in events_of(events) if what == "start")
    # baseline1 depends on the source; proposed of zh_de is en_de's experiment
    assert started == sorted(
        f"{pair}/{variant}/seed{seed}"
        for pair in ("en_de", "zh_de", "en_fr")
        for variant in ("baseline1", "proposed")
        for seed in (1, 2)
        if (pair, variant) != ("zh_de", "proposed")
    )
    for seed in (1, 2):
        original = results_of(fake, f"en_de/proposed/seed{seed}")
        shared = results_of(fake, f"zh_de/proposed/seed{seed}")
        assert shared["same_experiment_as"] == f"en_de/proposed/seed{seed}"
        assert shared["source"] == "zh"
        assert {k: v for k, v in shared.items() if k.startswith("same_")} == {
            "same_experiment_as": f"en_de/proposed/seed{seed}",
            "same_experiment_folder": str(fake["grid"] / f"en_de/proposed/seed{seed}"),
        }
        rest = {k: v for k, v in shared.items() if not k.startswith("same_")}
        assert rest == {**original, "source": "zh"}
        # the per-utterance predictions come with the results (issue 19)
        copied = fake["grid"] / f"zh_de/proposed/seed{seed}/predictions.csv"
        assert copied.read_text() == f"made by en_de/proposed/seed{seed}\n"
    out = capsys.readouterr().out
    assert "10 to run, 2 to take from an identical run" in out
    assert "same    zh_de/proposed/seed1" in out
    assert "10 ok, 2 taken from an identical run, 0 failed" in out
    markdown = (fake["grid"] / "results.md").read_text(encoding="utf-8")
    assert (
        "| proposed | **61.5 ± 0.7** | **61.5 ± 0.7**† | **61.5 ± 0.7** |" in markdown
    )
    assert "zh→de = en→de (proposed)" in markdown
    runs = pd.read_csv(fake["grid"] / "runs.csv")
    assert runs["same_as"].notna().sum() == 2
    # a second call: everything is done, nothing runs or is copied again
    events.unlink()
    assert (
        grid(
            fake,
            "--hparams-dir",
            str(layered),
            pairs="en_de,zh_de,en_fr",
            overrides=[f"--events={events}"],
        )
        == 0
    )
    assert not events.exists()
    assert "12 done, 0 to run, 0 in conflict" in capsys.readouterr().out


def test_no_dedupe_trains_every_run(fake, layered, tmp_path):
    events = tmp_path / "events.txt"
    args = ("--hparams-dir", str(layered), "--no-dedupe")
    assert (
        grid(
            fake,
            *args,
            pairs="en_de,zh_de",
            variants="proposed",
            seeds="1",
            overrides=[f"--events={events}"],
        )
        == 0
    )
    started = sorted(key for what, key in events_of(events) if what == "start")
    assert started == ["en_de/proposed/seed1", "zh_de/proposed/seed1"]
    assert "same_experiment_as" not in results_of(fake, "zh_de/proposed/seed1")


def test_a_single_file_for_every_pair_is_deduplicated_too(fake, tmp_path, capsys):
    assert grid(fake, pairs="en_de,zh_de", variants="proposed", seeds="1") == 0
    shared = results_of(fake, "zh_de/proposed/seed1")
    assert shared["same_experiment_as"] == "en_de/proposed/seed1"
    capsys.readouterr()
    # the first pair given is the one trained
    dry = ("--dry-run",)
    assert grid(fake, *dry, pairs="zh_de,en_de", variants="upper_bound") == 0
    out = capsys.readouterr().out
    assert "2 to run, 2 to take from an identical run" in out
    assert (
        "same as   en_de/upper_bound/seed1: zh_de/upper_bound/seed1 "
        "(identical experiment)" in out
    )


def test_pair_files_that_differ_elsewhere_are_not_shared(fake, layered, tmp_path):
    # fr_de restricts its pool: not the experiment of en_de
    (layered / "fr_de.yaml").write_text(pair_file_text("fr", "de", "[fr, de, ur]"))
    runs = run_grid.plan_runs(
        fake["grid"], ["en_de", "zh_de", "fr_de"], ["no_supcon"], [1]
    )
    repeats = run_grid.find_repeats(runs, str(layered / "{pair}.yaml"))
    assert {k: r.key for k, r in repeats.items()} == {
        "zh_de/no_supcon/seed1": "en_de/no_supcon/seed1"
    }
    # different overrides or seeds are different experiments
    assert run_grid.find_repeats(runs, str(layered / "{pair}.yaml"), ["--x=1"])
    other = run_grid.plan_runs(fake["grid"], ["zh_de"], ["no_supcon"], [2])
    assert not run_grid.find_repeats(runs[:1] + other, str(layered / "{pair}.yaml"))


def test_a_failed_original_fails_its_repeats(fake, layered):
    args = ("--hparams-dir", str(layered))
    cells = {"pairs": "en_de,zh_de", "variants": "proposed", "seeds": "1"}
    assert grid(fake, *args, **cells, overrides=["--fail_variants=proposed"]) == 0
    records = {r["run"]: r for r in failures_of(fake)}
    assert sorted(records) == ["en_de/proposed/seed1", "zh_de/proposed/seed1"]
    assert records["zh_de/proposed/seed1"]["reason"].startswith(
        "same experiment as en_de/proposed/seed1, which has no valid results.json"
    )
    assert not (fake["grid"] / "zh_de/proposed/seed1/results.json").exists()
    # fixed: the original runs, the repeat is taken from it, failures clear
    assert grid(fake, *args, **cells) == 0
    assert failures_of(fake) == []
    assert results_of(fake, "zh_de/proposed/seed1")["same_experiment_as"]


def test_defaults_are_the_paper_tasks_five_seeds_and_every_variant():
    # issue 19 (item 7) changed the defaults: the paper's nine tasks (no Urdu
    # target or source: Urdu is auxiliary) instead of our earlier nine, and
    # seeds 1-5 instead of 1,2,3.
    assert run_grid.DEFAULT_PAIRS == (
        "en_de", "zh_de", "fr_de", "en_fr", "zh_fr", "de_fr", "en_zh", "de_zh",
        "fr_zh",
    )  # fmt: skip
    assert run_grid.DEFAULT_SEEDS == (1, 2, 3, 4, 5)
    for pair in run_grid.DEFAULT_PAIRS:  # each has its file in hparams/
        assert (REPO_ROOT / "hparams" / f"{pair}.yaml").is_file()
    assert run_grid.parse_variants("all") == list(VARIANT_ORDER)
    order = list(VARIANT_ORDER)
    assert order.index("baseline2_hier") == order.index("baseline2") + 1
    args = run_grid._parser().parse_args([])
    assert run_grid.parse_seeds(args.seeds) == [1, 2, 3, 4, 5]
    assert run_grid.parse_pairs(args.pairs) == list(run_grid.DEFAULT_PAIRS)


def test_split_seed_follow_gives_each_run_its_seed(fake, capsys):
    assert grid(fake, "--split-seed", "follow", "--dry-run") == 0
    out = capsys.readouterr().out
    for line in out.splitlines():
        if line.startswith("to run"):
            seed = line.split("/seed")[1].split(":")[0]
            assert f"--seed={seed} " in line and f"--split_seed={seed}" in line
    assert grid(fake, "--split-seed", "7", "--dry-run") == 0
    assert capsys.readouterr().out.count("--split_seed=7") == 8
    assert grid(fake, "--dry-run") == 0  # default: the file's split_seed
    assert "--split_seed" not in capsys.readouterr().out


def test_split_seed_twice_is_refused(fake, capsys):
    with pytest.raises(SystemExit):
        grid(fake, "--split-seed", "follow", overrides=["--split_seed=3"])
    assert "drop --split_seed after '--'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        grid(fake, "--split-seed", "often")
    assert "Bad --split-seed 'often'" in capsys.readouterr().err


@pytest.mark.parametrize("split_seed", ["follow", "5"])
def test_split_seed_keeps_sharing_within_a_seed_only(fake, layered, split_seed, capsys):
    assert (
        grid(
            fake,
            "--hparams-dir",
            str(layered),
            "--split-seed",
            split_seed,
            "--dry-run",
            pairs="en_de,zh_de",
            variants="baseline1,baseline2_hier,upper_bound,proposed",
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    same = sorted(line.split(":")[0].split()[-1] for line in lines if "same as" in line)
    # every variant but baseline1 (upper_bound and baseline2_hier included)
    # is source-independent; a repeat shares with the same seed only
    assert same == sorted(
        f"zh_de/{v}/seed{k}"
        for k in (1, 2)
        for v in ("baseline2_hier", "proposed", "upper_bound")
    )
    for line in lines:
        if "same as" in line:
            seed = line.split(":")[0].rsplit("seed", 1)[1]
            assert f"/seed{seed} (identical experiment)" in line


def test_upper_bound_is_source_independent_under_both_protocols(layered):
    # upper_bound trains on the target (paper protocol: the target alone;
    # speaker protocol: with the other languages), never on the source alone
    hp = str(layered / "{pair}.yaml")
    for protocol in ("paper", "speaker"):
        runs = grid_plan.plan_runs("g", ["en_de", "zh_de"], ["upper_bound"], [1])
        repeats = grid_dedupe.find_repeats(runs, hp, [f"--protocol={protocol}"])
        assert {k: r.key for k, r in repeats.items()} == {
            "zh_de/upper_bound/seed1": "en_de/upper_bound/seed1"
        }


def test_docstring_examples(tmp_path):
    # recipes/ is not collected by the doctest run of the suite: run them here,
    # with those of the modules the grid's planning and dedupe live in.
    attempted = 0
    for module in (run_grid, grid_plan, grid_dedupe):
        result = doctest.testmod(
            module,
            extraglobs={"getfixture": lambda name: tmp_path},
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        )
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted > 50


# ---- The real recipe ---------------------------------------------------------
# Fast settings of the recipe (as in tests/test_recipe.py): fbank encoder, tiny
# model, SpeechBrain debug mode (2 batches per stage), one epoch, and a small
# demo corpus (5 languages x 3 speakers x 4 emotions x 2 utterances).
REAL_OPTIONS = (
    "--encoder=fbank",
    "--number_of_epochs=1",
    "--device=cpu",
    "--debug",
    "--debug_persistently",
)
DEMO_HPARAMS = REPO_ROOT / "hparams" / "demo.yaml"


@pytest.mark.slow
def test_real_grid_on_the_demo_corpus(tmp_path, capsys):
    """One pair, two variants, one seed of the real recipe on the demo corpus."""
    from recipe_utils import FAST_OPTIONS

    grid_folder = tmp_path / "grid"
    argv = [
        "--grid-folder",
        str(grid_folder),
        "--hparams",
        str(DEMO_HPARAMS),
        "--pairs",
        "en_de",
        "--variants",
        "baseline1,proposed",
        "--seeds",
        "1",
        "--strict",
        "--no-progressbar",
        "--jobs",  # the warm-up rule runs them one after the other
        "2",
        "--",
        f"--results_root={tmp_path / 'results'}",
        "--demo_options={n_speakers: 3, n_per_class_per_speaker: 2}",
        *FAST_OPTIONS,
        *REAL_OPTIONS,
    ]
    status = run_grid.main(argv)
    assert status == 0, (grid_folder / "failures.json").read_text()
    runs = pd.read_csv(grid_folder / "runs.csv")
    assert sorted(runs["variant"]) == ["baseline1", "proposed"]
    assert set(runs["pair"]) == {"en_de"} and set(runs["seed"]) == {1}
    assert runs["uar"].between(0, 1).all() and (runs["n_test"] > 0).all()
    for variant in ("baseline1", "proposed"):
        result = results_of({"grid": grid_folder}, f"en_de/{variant}/seed1")
        assert (result["source"], result["target"]) == ("en", "de")
        assert result["encoder"] == "fbank"
        assert (grid_folder / f"en_de/{variant}/seed1/train_log.txt").is_file()
    assert result["training_languages"] == ["en", "zh", "fr", "ur"]  # proposed
    assert "| proposed |" in (grid_folder / "results.md").read_text(encoding="utf-8")
    # A second call finds both runs done: nothing runs, nothing fails.
    capsys.readouterr()
    assert run_grid.main(argv) == 0
    assert "2 done, 0 to run" in capsys.readouterr().out
    assert json.loads((grid_folder / "failures.json").read_text()) == []


def test_a_source_outside_the_pool_is_never_shared(fake, layered):
    runs = run_grid.plan_runs(fake["grid"], ["en_de", "zh_de"], ["proposed"], [1])
    pattern = str(layered / "{pair}.yaml")
    # zh is not in the pool: the recipe refuses zh_de, it is not en_de's experiment
    assert run_grid.find_repeats(runs, pattern, ["--languages=[en,de,fr]"]) == {}
    assert run_grid.find_repeats(runs, pattern, ["--languages", "[en,de,fr]"]) == {}
    shared = run_grid.find_repeats(runs, pattern, ["--languages=[en,zh,de]"])
    assert list(shared) == ["zh_de/proposed/seed1"]
    # the same pool set in a pair file counts as well
    (layered / "zh_de.yaml").write_text(pair_file_text("zh", "de", "[en, de, fr]"))
    assert run_grid.find_repeats(runs, pattern) == {}


def test_copies_follow_their_original(fake, layered, tmp_path, capsys):
    events = tmp_path / "events.txt"
    args = ("--hparams-dir", str(layered))
    cells = {"pairs": "en_de,zh_de", "variants": "proposed", "seeds": "1"}
    assert grid(fake, *args, **cells) == 0
    original = fake["grid"] / "en_de/proposed/seed1/results.json"
    # the original was redone with another result: the copy is taken again
    changed = {**json.loads(original.read_text()), "uar": 0.9}
    original.write_text(json.dumps(changed))
    assert grid(fake, *args, **cells, overrides=[f"--events={events}"]) == 0
    assert not events.exists()  # nothing trained
    assert results_of(fake, "zh_de/proposed/seed1")["uar"] == 0.9
    # the original's folder deleted: it is trained again, then copied again
    capsys.readouterr()
    shutil.rmtree(original.parent)
    assert grid(fake, *args, **cells, overrides=[f"--events={events}"]) == 0
    started = [key for what, key in events_of(events) if what == "start"]
    assert started == ["en_de/proposed/seed1"]
    assert results_of(fake, "zh_de/proposed/seed1")["uar"] == pytest.approx(0.61)
    # new overrides: the copy is reported as made with another command, too
    capsys.readouterr()
    assert grid(fake, *args, **cells, overrides=["--encoder=fbank"]) == 0
    assert "2 finished run(s) were made with another command line" in (
        capsys.readouterr().out
    )


def test_no_dedupe_trains_runs_copied_before(fake, layered, tmp_path):
    events = tmp_path / "events.txt"
    args = ("--hparams-dir", str(layered))
    cells = {"pairs": "en_de,zh_de", "variants": "proposed", "seeds": "1"}
    assert grid(fake, *args, **cells) == 0
    assert (
        grid(fake, *args, "--no-dedupe", **cells, overrides=[f"--events={events}"]) == 0
    )
    started = [key for what, key in events_of(events) if what == "start"]
    assert started == ["zh_de/proposed/seed1"]
    assert "same_experiment_as" not in results_of(fake, "zh_de/proposed/seed1")


def test_a_folder_in_conflict_is_not_an_original(fake, layered, tmp_path):
    events = tmp_path / "events.txt"
    put_foreign_results(fake)
    assert (
        grid(
            fake,
            "--hparams-dir",
            str(layered),
            pairs="en_de,zh_de",
            variants="proposed",
            seeds="1",
            overrides=[f"--events={events}"],
        )
        == 0
    )
    started = [key for what, key in events_of(events) if what == "start"]
    assert started == ["zh_de/proposed/seed1"]  # trained, not failed
    assert "same_experiment_as" not in results_of(fake, "zh_de/proposed/seed1")
    (record,) = failures_of(fake)
    assert record["run"] == "en_de/proposed/seed1" and record["status"] == "conflict"


def test_a_copy_of_a_copy_names_the_trained_run(fake, layered):
    args = ("--hparams-dir", str(layered))
    assert grid(fake, *args, pairs="en_de,zh_de", variants="proposed", seeds="1") == 0
    # now zh_de (a copy) comes first and fr_de repeats it
    assert grid(fake, *args, pairs="zh_de,fr_de", variants="proposed", seeds="1") == 0
    copy = results_of(fake, "fr_de/proposed/seed1")
    assert copy["same_experiment_as"] == "en_de/proposed/seed1"
    assert copy["same_experiment_folder"] == str(fake["grid"] / "en_de/proposed/seed1")
    assert copy["source"] == "fr"


def test_a_run_finished_with_other_settings_is_a_conflict_naming_the_keys(
    fake, tmp_path, capsys
):
    """The grid decides "done" with the recipe's run identity."""
    demo = str(REPO_ROOT / "hparams" / "demo.yaml")
    folder = fake["grid"] / "en_de" / "proposed" / "seed1"
    run = run_grid.Run("en", "de", "proposed", 1, folder)
    argv = run_grid.recipe_command(run, demo, fake["recipe"], ["--lr=0.002"])[2:]
    identity = RunIdentity.from_argv(argv)
    check_run_folder(folder, identity)
    results = {"source": "en", "target": "de", "variant": "proposed", "seed": 1}
    results.update(uar=0.5, macro_f1=0.5, run_identity=identity.hash)
    (folder / "results.json").write_text(json.dumps(results))

    def dry_run(*overrides):
        argv = ["--grid-folder", str(fake["grid"]), "--recipe", str(fake["recipe"])]
        argv += ["--hparams", demo, "--pairs", "en_de", "--variants", "proposed"]
        argv += ["--seeds", "1", "--dry-run", "--", *overrides]
        assert run_grid.main(argv) == 0
        return capsys.readouterr().out

    # Same settings (a speed option differs): done.
    assert "1 done, 0 to run" in dry_run("--lr=0.002", "--num_workers=1")
    out = dry_run("--lr=0.002", "--supcon_weight=0.6")
    assert "0 done, 0 to run, 1 in conflict" in out
    assert "supcon_weight: 1.0 -> 0.6" in out and "--overwrite=True" in out
    out = dry_run("--lr=0.002", "--supcon_weight=0.6", "--overwrite=True")
    assert "0 done, 1 to run" in out


# ---- Engines -------------------------------------------------------------------
# The local engine (standard library) runs in every CI; the submitit engines
# run where submitit is installed (the dev and grid extras).


def test_local_workers_run_many_runs_each_in_their_own_process(fake):
    import os

    assert grid(fake, "--strict", seeds="1") == 0
    pids = {
        results_of(fake, f"{pair}/{variant}/seed1")["pid"]
        for pair in ("en_de", "zh_fr")
        for variant in ("baseline1", "proposed")
    }
    assert len(pids) == 1 and os.getpid() not in pids  # one worker, not us


def test_a_dead_worker_loses_only_its_run(fake, capsys):
    # proposed kills its worker process: it is tried twice, then recorded;
    # the runs around it (same worker before, new workers after) all finish.
    args = ("--jobs", "1")
    assert grid(fake, *args, seeds="1", overrides=["--die_variants=proposed"]) == 0
    records = failures_of(fake)
    assert [r["run"] for r in records] == [
        "en_de/proposed/seed1",
        "zh_fr/proposed/seed1",
    ]
    assert all("worker process or job ended" in r["reason"] for r in records)
    assert all("fake recipe" in r["log_tail"] for r in records)
    log = (fake["grid"] / "en_de/proposed/seed1" / run_grid.LOG_NAME).read_text()
    assert log.count("===== ") == 2  # two attempts
    for pair in ("en_de", "zh_fr"):
        assert results_of(fake, f"{pair}/baseline1/seed1")["variant"] == "baseline1"
    # fixed: a rerun trains only the failed runs and clears failures.json
    capsys.readouterr()
    assert grid(fake, *args, seeds="1") == 0
    assert "2 done, 2 to run" in capsys.readouterr().out
    assert failures_of(fake) == []


@pytest.fixture
def submitit():
    return pytest.importorskip("submitit")


def test_debug_engine_runs_skips_and_survives_failures(fake, submitit, capsys):
    args = ("--engine", "debug")
    assert grid(fake, *args, overrides=["--fail_variants=proposed"]) == 0
    assert sorted(r["run"] for r in failures_of(fake)) == [
        f"{pair}/proposed/seed{seed}" for pair in ("en_de", "zh_fr") for seed in (1, 2)
    ]
    assert results_of(fake, "zh_fr/baseline1/seed2")["variant"] == "baseline1"
    capsys.readouterr()
    assert grid(fake, *args) == 0  # fixed: only the failed runs run again
    assert "4 done, 4 to run" in capsys.readouterr().out
    assert failures_of(fake) == []
    assert grid(fake, *args) == 0
    assert "8 done, 0 to run" in capsys.readouterr().out


def test_submitit_local_jobs_run_the_seeds_of_a_cell_in_one_process(
    fake, submitit, tmp_path
):
    status = grid(
        fake, "--engine", "submitit-local", "--jobs", "2", "--no-warmup", "--strict",
        pairs="en_de",
    )  # fmt: skip
    assert status == 0
    pid = {
        (variant, seed): results_of(fake, f"en_de/{variant}/seed{seed}")["pid"]
        for variant in ("baseline1", "proposed")
        for seed in (1, 2)
    }
    assert pid["baseline1", 1] == pid["baseline1", 2]
    assert pid["proposed", 1] == pid["proposed", 2] != pid["baseline1", 1]
    assert list((fake["grid"] / ".submitit").iterdir())  # submitit's job files


def test_slurm_options_reach_the_sbatch_script_and_the_jobs_run_the_runs(
    fake, submitit, monkeypatch
):
    """Submits to a mocked SLURM (submitit's own test helper), then plays the node."""
    test_slurm = pytest.importorskip("submitit.slurm.test_slurm")
    submitted = {}

    def submit_and_play_the_nodes(units, waits_for, engine, on_outcome):
        jobs = engine.submit(units)
        submitted.update(engine=engine, units=units, jobs=jobs)
        for job in jobs:  # what `python -m submitit.core._submit` does on a node
            for outcome in job.submission().result():
                on_outcome(outcome)
        return []

    monkeypatch.setattr(run_grid, "execute", submit_and_play_the_nodes)
    with test_slurm.mocked_slurm():
        status = grid(
            fake, "--engine", "slurm", "--jobs", "3", "--threads", "8",
            "--no-warmup", "--strict", "--slurm-partition", "gpu",
            "--slurm-time", "90", "--slurm-gpus", "2", "--slurm-mem-gb", "16",
            "--slurm-option", "account=proj", "--slurm-setup", "module load cuda",
            pairs="en_de",
        )  # fmt: skip
    assert status == 0
    units = submitted["units"]
    assert [[c.run.key for c in unit.cells] for unit in units] == [
        ["en_de/baseline1/seed1", "en_de/baseline1/seed2"],
        ["en_de/proposed/seed1", "en_de/proposed/seed2"],
    ]
    (script,) = (fake["grid"] / ".submitit").rglob("*submission.sh")
    text = script.read_text()
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --time=90",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=16GB",
        "#SBATCH --account=proj",
        "#SBATCH --array=0-1%2",  # two jobs, at most min(--jobs, 2) at once
        "#SBATCH --signal=USR2@",  # preemption/timeout: requeue (CellBatch.checkpoint)
        "module load cuda",
    ):
        assert line in text, line
    assert submitted["engine"].executor._executor.parameters["array_parallelism"] == 3
    for variant in ("baseline1", "proposed"):
        assert results_of(fake, f"en_de/{variant}/seed2")["threads"] == "8"


def test_a_requeued_batch_keeps_only_the_unfinished_runs(fake, submitit):
    from zsser_modules.grid_engine import Cell, CellBatch

    runs = run_grid.plan_runs(fake["grid"], ["en_de"], ["proposed"], [1, 2])
    cells = [Cell(run, str(fake["recipe"]), ()) for run in runs]
    batch = CellBatch(cells)
    batch.finished.add(runs[0].key)  # the job was stopped during seed 2
    requeued = batch.checkpoint()
    assert [c.run.key for c in requeued.function.cells] == [runs[1].key]


def test_submitit_engines_without_submitit_are_explained(fake, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "submitit", None)  # import fails
    with pytest.raises(SystemExit) as error:
        grid(fake, "--engine", "submitit-local")
    assert error.value.code == 2
    assert "pip install submitit" in capsys.readouterr().err
