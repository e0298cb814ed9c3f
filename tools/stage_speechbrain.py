#!/usr/bin/env python3
"""Lay the recipe into a SpeechBrain-shaped tree, ready for the toolkit's checks.

``python tools/stage_speechbrain.py OUT_DIR`` writes, in an empty ``OUT_DIR``:

- SpeechBrain's check kit (``../shared/speechbrain``, or ``--kit``: any
  SpeechBrain checkout at the root of which ``tests/consistency`` and
  ``tests/utils`` lie), with the kit's own recipe CSVs left out, so
  that ``tests/recipes/`` describes this recipe only;
- ``recipes/ZeroShotCrossLingualSER/``: ``train.py``, the hparams files of the
  paper's nine tasks and of the demo (``hparams/*.yaml``; the generator's
  inputs in ``hparams/template/`` stay out), the prepare commands
  (``data_prep/*.py``), the recipe's README (``tools/speechbrain_recipe/``)
  and ``extra_requirements.txt`` (how to install the zsser package);
- ``tests/recipes/ZeroShotCrossLingualSER.csv``: one row per hparams file, in
  the toolkit's format and paths; its debug flags read only data that this
  command builds under ``tests/tmp/ZeroShotCrossLingualSER/``: a tiny
  synthetic corpus (the recipe's own demo generator, 2 speakers x 4 emotions x
  3 utterances per language) and a tiny random wav2vec 2.0 model for the
  tasks' SSL encoder (no hub, no sample data is reachable from CI).

Then, from ``OUT_DIR`` (``zsser_modules`` installed, as
``extra_requirements.txt`` says)::

    python -m pytest tests/consistency/test_recipe.py tests/consistency/test_yaml.py
    python -c 'from tests.utils.recipe_tests import run_recipe_tests; \
        assert run_recipe_tests(filters_fields=["Dataset"], \
        filters=[["ZeroShotCrossLingualSER"]], run_opts="--device=cpu")'

``tests/test_speechbrain_staging.py`` does both in CI; the whole path:
docs/contributing_to_speechbrain.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's zsser_modules, installed or not
from zsser_modules.data_prep.manifest import LANGUAGE_CORPUS  # noqa: E402
from zsser_modules.labels import LANGUAGES  # noqa: E402

#: The kit: SpeechBrain's consistency tests and recipe-test runner
#: ($ZSSER_SPEECHBRAIN_KIT, else ../shared/speechbrain beside the checkout).
DEFAULT_KIT = Path(
    os.environ.get("ZSSER_SPEECHBRAIN_KIT") or REPO.parent / "shared" / "speechbrain"
)
#: The recipe's name in the toolkit (its folder and its CSV).
NAME = "ZeroShotCrossLingualSER"
RECIPE = f"recipes/{NAME}"
#: Where the rows' debug data lie, relative to the staged root.
DEBUG_DATA = f"tests/tmp/{NAME}"
TINY_SSL = f"{DEBUG_DATA}/tiny_wav2vec2"
#: The tiny demo corpus of every row (the recipe's generator; 24 clips per language).
DEBUG_DEMO_OPTIONS = {"n_speakers": 2, "n_per_class_per_speaker": 3}
#: Extras of the zsser package that the staged hparams files use by default:
#: SSL and Whisper encoders, the t-SNE figure, the probes, the demo corpus.
RECIPE_EXTRAS = ("demo", "encoders", "plots", "probe")
#: The kit's files that a staged tree needs.
KIT_FILES = (
    "tests/consistency/test_recipe.py",
    "tests/consistency/test_yaml.py",
    "tests/utils/recipe_tests.py",
    "tests/utils/check_yaml.py",
)
#: Files of the recipe folder that come from tools/speechbrain_recipe/.
RECIPE_DOCS = REPO / "tools" / "speechbrain_recipe"
HEADER = [
    "Task",
    "Dataset",
    "Script_file",
    "Hparam_file",
    "Data_prep_file",
    "Readme_file",
    "Result_url",
    "HF_repo",
    "test_debug_flags",
    "test_debug_checks",
    "performance",
]
#: What every row's run must write (checked by the runner in its output folder).
EXPECTED_FILES = (
    "train.py",
    "hyperparams.yaml",
    "env.log",
    "log.txt",
    "train_log.txt",
    "run_identity.json",
    "results.json",
    "predictions.csv",
    "tsne.png",
    "save/speaker_encoder.txt",
    "inference/hyperparams.yaml",
)


class StagingError(Exception):
    """A staging that cannot go on (one line: what, found, how to fix)."""


def flag(key: str, value) -> str:
    """A ``--key=value`` run flag, quoted for the runner's shell.

    Example
    -------
    >>> flag("number_of_epochs", 2)
    '--number_of_epochs=2'
    >>> flag("demo_options", {"n_speakers": 2})
    "'--demo_options={n_speakers: 2}'"
    """
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
        return f"'--{key}={text}'"
    return f"--{key}={value}"


def hparams_files(repo: Path = REPO) -> list[Path]:
    """The hparams files to stage: the paper's tasks and the demo, no template."""
    files = sorted((repo / "hparams").glob("*.yaml"))
    if not files:
        raise StagingError(f"no hparams/*.yaml in {repo}: run from a checkout.")
    return files


def read_yaml_keys(path: Path) -> dict:
    """The top-level values of an hparams file, tags ignored (plain YAML)."""

    class Loader(yaml.SafeLoader):
        pass

    def any_tag(loader, suffix, node):
        return None

    Loader.add_multi_constructor("!", any_tag)
    with open(path, encoding="utf-8") as stream:
        return yaml.load(stream, Loader=Loader)


def data_prep_files(hparams: dict) -> list[str]:
    """The prepare commands a task of this file reads by default, then the setting's."""
    corpus_of = {**LANGUAGE_CORPUS, **(hparams.get("language_corpus") or {})}
    corpora = dict.fromkeys(corpus_of[lang] for lang in hparams["languages"])
    return [f"{RECIPE}/data_prep/{c}.py" for c in corpora] + [
        f"{RECIPE}/data_prep/zero_shot.py"
    ]


def debug_flags(name: str) -> str:
    """The ``test_debug_flags`` of a staged hparams file (debug data only)."""
    flags = [
        flag("results_root", DEBUG_DATA),
        flag("demo_options", DEBUG_DEMO_OPTIONS),
    ]
    if name != "demo.yaml":
        # A paper task: every language from the tiny synthetic corpus, and
        # the task's SSL encoder (ssl_source) as a tiny random local model.
        flags += [
            flag("language_corpus", {lang: "demo" for lang in LANGUAGES}),
            flag("ssl_source", TINY_SSL),
            flag("emb_dim", 32),
            flag("proj_dim", 16),
        ]
    flags += [
        flag("number_of_epochs", 2),
        flag("batch_size", 8),
        flag("hier_n_lang", 2),
        flag("hier_n_cls", 2),
        flag("hier_n_sam", 2),
        flag("tsne_per_language", 8),
        flag("diagnostics_per_speaker", 4),
        flag("torch_num_threads", 1),
        "--noprogressbar",
    ]
    return " ".join(flags)


def recipe_rows(repo: Path = REPO) -> list[dict]:
    """One runnable row per staged hparams file, with the toolkit's paths."""
    rows = []
    for path in hparams_files(repo):
        hparams = read_yaml_keys(path)
        checks = (
            f"file_exists=[{','.join(EXPECTED_FILES)}] "
            "performance_check=[train_log.txt, train loss, <=10, epoch: 2]"
        )
        rows.append(
            {
                "Task": "Emotion_recognition",
                "Dataset": NAME,
                "Script_file": f"{RECIPE}/train.py",
                "Hparam_file": f"{RECIPE}/hparams/{path.name}",
                "Data_prep_file": " ".join(data_prep_files(hparams)),
                "Readme_file": f"{RECIPE}/README.md",
                "Result_url": "",
                "HF_repo": "",
                "test_debug_flags": debug_flags(path.name),
                "test_debug_checks": checks,
                "performance": "",
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write the recipe CSV (header as the toolkit's, quoted where needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def copy_kit(kit: Path, out: Path) -> None:
    """Copy the kit, leaving its recipe CSVs out (this recipe's is the only one)."""
    missing = [name for name in KIT_FILES if not (kit / name).is_file()]
    if missing:
        raise StagingError(
            f"{kit} is not a SpeechBrain check kit (missing {', '.join(missing)}): "
            "give --kit=/path/to/a/speechbrain/checkout (or ../shared/speechbrain)."
        )
    shutil.copytree(
        kit,
        out,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", ".git", "tmp"),
    )
    for stale in (out / "tests" / "recipes").glob("*.csv"):
        stale.unlink()


def zsser_requirement(repo: Path = REPO) -> str:
    """The pip requirement of this checkout's package, with the recipe's extras.

    The extras are those of :data:`RECIPE_EXTRAS` that the installed package
    declares (none where it has no such extras: then its core holds them).

    Example
    -------
    >>> zsser_requirement(Path("/src/zsser")).endswith("@ file:///src/zsser")
    True
    """
    try:
        declared = metadata.metadata("zsser").get_all("Provides-Extra") or []
    except metadata.PackageNotFoundError:
        declared = []
    extras = [extra for extra in RECIPE_EXTRAS if extra in declared]
    name = f"zsser[{','.join(extras)}]" if extras else "zsser"
    return f"{name} @ {Path(repo).resolve().as_uri()}"


def extra_requirements(requirement: str) -> str:
    """The recipe's ``extra_requirements.txt``: the zsser package, one line.

    Example
    -------
    >>> print(extra_requirements("zsser @ file:///src/zsser").splitlines()[-1])
    zsser @ file:///src/zsser
    """
    return (
        "# Beyond SpeechBrain, this recipe needs the zsser package (zsser_modules:\n"
        "# the SupCon loss, the speaker adversary, the hierarchical batch sampler,\n"
        "# the data preparation of the five corpora and the demo generator). It is\n"
        "# not on PyPI: the line below installs it from the project's repository\n"
        "# (pip pulls its own dependencies: transformers, pandas, scikit-learn,\n"
        "# soundfile, matplotlib, espeakng-loader for the demo corpus, ...).\n"
        "# Written by tools/stage_speechbrain.py --zsser-requirement=...\n"
        f"{requirement}\n"
    )


def copy_recipe(repo: Path, out: Path, requirement: str) -> Path:
    """Copy the recipe's files into ``recipes/<NAME>/`` of the staged tree."""
    folder = out / RECIPE
    (folder / "hparams").mkdir(parents=True)
    (folder / "data_prep").mkdir()
    shutil.copy2(repo / "recipes" / "train.py", folder / "train.py")
    for path in hparams_files(repo):
        shutil.copy2(path, folder / "hparams" / path.name)
    for path in sorted((repo / "data_prep").glob("*.py")):
        shutil.copy2(path, folder / "data_prep" / path.name)
    shutil.copy2(RECIPE_DOCS / "README.md", folder / "README.md")
    (folder / "extra_requirements.txt").write_text(
        extra_requirements(requirement), encoding="utf-8"
    )
    return folder


def build_debug_data(out: Path) -> None:
    """The rows' data: the tiny demo corpus and the tiny random wav2vec 2.0."""
    from zsser_modules.data_prep import prepare_corpus

    # The recipe's own generator, with the rows' options: each row finds it
    # up to date (same options) and only builds its zero-shot setting.
    prepare_corpus(
        "demo", None, out / DEBUG_DATA / "data", progress=False, **DEBUG_DEMO_OPTIONS
    )
    sys.path.insert(0, str(REPO / "tests"))
    from encoder_utils import make_tiny_ssl  # the test suite's tiny SSL models

    make_tiny_ssl(out / TINY_SSL, kind="wav2vec2")


def stage(
    out: Path, kit: Path = DEFAULT_KIT, repo: Path = REPO, requirement: str = ""
) -> Path:
    """Stage the recipe and its checks into ``out`` (empty or new); return the CSV.

    ``requirement``: the zsser line of ``extra_requirements.txt`` (default:
    this checkout, ``zsser @ file:///...``; for a pull request, the project's
    public repository at a tag, ``zsser @ git+https://...@v0.1.0``).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise StagingError(f"{out} is not empty: give a new or empty folder.")
    copy_kit(Path(kit), out)
    copy_recipe(repo, out, requirement or zsser_requirement(repo))
    csv_path = out / "tests" / "recipes" / f"{NAME}.csv"
    write_csv(csv_path, recipe_rows(repo))
    build_debug_data(out)
    return csv_path


def main(argv: list[str] | None = None) -> int:
    """Command line (``--help``)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="docs/contributing_to_speechbrain.md tells the whole path.",
    )
    parser.add_argument("out_dir", type=Path, help="a new or empty folder")
    parser.add_argument(
        "--kit",
        type=Path,
        default=DEFAULT_KIT,
        help=f"SpeechBrain check kit or checkout (default: {DEFAULT_KIT})",
    )
    parser.add_argument(
        "--zsser-requirement",
        default="",
        help="the zsser line of extra_requirements.txt (default: this checkout, "
        "'zsser @ file:///...'; for a pull request: 'zsser @ git+https://...@TAG')",
    )
    args = parser.parse_args(argv)
    try:
        csv_path = stage(args.out_dir, args.kit, requirement=args.zsser_requirement)
    except StagingError as error:
        print(f"tools/stage_speechbrain.py: {error}", file=sys.stderr)
        return 2
    print(f"Staged {RECIPE} and {csv_path.relative_to(args.out_dir)} in {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
