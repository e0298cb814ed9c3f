"""The run's data: corpora prepared, its zero-shot setting built, its batches.

:func:`prepare_data` prepares the corpora a run needs (the built-in demo
corpus is generated) and builds its zero-shot setting (speaker or paper
protocol; under the paper protocol a paper task on the real corpora is
compared with Table 1). :func:`train_loader_options` gives the training
loader its batches (zsser_modules.sampling).

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from speechbrain.utils.distributed import if_main_process, run_on_main
from speechbrain.utils.logger import get_logger

from zsser_modules.audio import PolicyDuration
from zsser_modules.data_prep import GENERATED_CORPORA, prepare_corpus
from zsser_modules.data_prep.corpus import CorpusLayoutError
from zsser_modules.data_prep.demo_espeak import EspeakUnavailableError
from zsser_modules.data_prep.manifest import LANGUAGE_CORPUS, read_manifest
from zsser_modules.data_prep.paper_protocol import (
    Table1Error,
    check_table1,
    table1_applies,
)
from zsser_modules.data_prep.zero_shot import (
    SPLITS,
    TEST_ALL,
    SettingError,
    build_setting,
    setting_folder,
    training_languages,
)
from zsser_modules.sampling import train_loader_kwargs

from .variants import batch_sampler_of

logger = get_logger(__name__)

#: What prepare_data raises on a user's mistake (one line each).
PREPARATION_ERRORS = (
    CorpusLayoutError,
    SettingError,
    Table1Error,
    EspeakUnavailableError,
)

# Folder name of each corpus under data_folder.
CORPUS_FOLDER_NAMES = {
    "esd": "ESD",
    "emodb": "EmoDB",
    "cafe": "CaFE",
    "urdu": "URDU",
    "meld": "MELD",
}


def corpus_folders(options: Mapping[str, Any]) -> dict[str, str | None]:
    """Folder of each corpus as unpacked (None: not given; demo: generated).

    A corpus's own key (esd_folder, ...) wins; else, with data_folder set,
    the corpus's usual folder name under it (CORPUS_FOLDER_NAMES).
    """
    given = {
        "esd": options["esd_folder"],
        "emodb": options["emodb_folder"],
        "cafe": options["cafe_folder"],
        "urdu": options["urdu_folder"],
        "meld": options["meld_folder"],
    }
    root = options["data_folder"]
    return {
        corpus: str(Path(root) / CORPUS_FOLDER_NAMES[corpus])
        if folder is None and root is not None
        else folder
        for corpus, folder in given.items()
    }


def prepare_data(options: Mapping[str, Any]) -> tuple[dict[str, Path], list[str]]:
    """Prepare the corpora this run needs and build its zero-shot setting.

    ``options`` is the YAML's ``data_options``: every option read here.
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
    source, target = options["source_lang"], options["target_lang"]
    pool = list(options["languages"])
    for role, lang in (("source_lang", source), ("target_lang", target)):
        if lang not in pool:
            raise SettingError(
                f"{role}={lang!r} is not in languages={pool}: add it "
                f"(e.g. --languages=[{','.join(pool + [lang])}])."
            )
    protocol, paper_split = options["protocol"], options["paper_split"]
    train_langs = training_languages(source, target, options["variant"], pool, protocol)
    used = list(dict.fromkeys(train_langs + [target]))
    corpus_of = {**LANGUAGE_CORPUS, **options["language_corpus"]}
    corpora = list(dict.fromkeys(corpus_of[lang] for lang in used))
    folder = setting_folder(
        options["settings_folder"],
        source,
        target,
        options["variant"],
        options["split_seed"],
        protocol,
        paper_split,
    )
    names = list(SPLITS)
    if protocol == "paper" and options["variant"] != "upper_bound":
        names.append(TEST_ALL)
    manifests = {split: folder / f"{split}.csv" for split in names}

    if options["skip_prep"]:
        missing = [str(path) for path in manifests.values() if not path.is_file()]
        if missing:
            raise SettingError(
                f"skip_prep is True but the setting is missing: {missing}. "
                "Run once without --skip_prep=True."
            )
        return manifests, train_langs

    folders = corpus_folders(options)
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
            f"This run ({source}->{target}, variant {options['variant']}) uses the "
            f"languages {used}; no folder is set for the corpora {needs}. Set "
            f"{keys} (or the {', '.join(c + '_folder' for c in missing)} key in "
            "the YAML, or --data_folder=/path/to/corpora holding "
            + ", ".join(CORPUS_FOLDER_NAMES.get(c, c) + "/" for c in missing)
            + "), or drop auxiliary languages from the pool with --languages=[...]."
        )
    for corpus in corpora:
        prep_options = {"keep_all_classes": options["keep_all_classes"]}
        if corpus in GENERATED_CORPORA:  # the built-in demo corpus
            prep_options.update(options["demo_options"])
        run_on_main(
            prepare_corpus,
            kwargs={
                "name": corpus,
                "data_folder": folders.get(corpus),
                "save_folder": options["prep_folder"],
                **prep_options,
            },
        )
    run_on_main(
        build_setting,
        kwargs={
            "manifests": [Path(options["prep_folder"]) / f"{c}.csv" for c in corpora],
            "source": source,
            "target": target,
            "variant": options["variant"],
            "save_folder": options["settings_folder"],
            "seed": options["split_seed"],
            "valid_ratio": options["valid_ratio"],
            "test_ratio": options["test_ratio"],
            "valid_min_per_class": options["valid_min_per_class"],
            "languages": used,
            "classes": options["emotions"],
            "protocol": protocol,
            "paper_split": paper_split,
        },
    )
    if options["table1_check"]:
        run_table1_check(options, manifests, corpus_of)
    return manifests, train_langs


def run_table1_check(
    options: Mapping[str, Any],
    manifests: Mapping[str, Path],
    corpus_of: Mapping[str, str],
) -> None:
    """Compare a paper task's training set with Table 1 (paper_protocol).

    Every process reads the setting (so all stop together); the main process
    prints the line with the size and the speaker count beside the paper's.
    A difference raises Table1Error (one line: which corpus, expected, found,
    and --table1_check=False).
    """
    if options["keep_all_classes"]:
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
        options["source_lang"],
        options["target_lang"],
        # Table 1 sizes the training set of every non-target language
        set(summary["training_languages"])
        == set(options["languages"]) - {options["target_lang"]},
        options["languages"],
        corpus_of,
        sizes,
        options["protocol"],
    )
    if not applies:
        logger.info(f"Table 1 check not applied: {why}.")
        return
    line = check_table1(read_manifest(manifests["train"]), options["target_lang"])
    if if_main_process():
        print(line)


def train_loader_options(
    hparams: dict, options: Mapping[str, Any], train_set: Any
) -> dict:
    """DataLoader options of the train set (zsser_modules.sampling).

    Hierarchical cross-lingual batches, or fixed-size or dynamic batches with
    natural or language-balanced sampling, seeded from --seed and reshuffled
    every epoch. ``options`` is the YAML's ``train_sampler_options`` (every
    option read here); the hierarchical batches are recorded in ``hparams``
    (``hierarchical_batches``, for results.json).
    """
    kwargs = train_loader_kwargs(
        train_set,
        language_sampling=options["language_sampling"],
        seed=options["seed"],
        loader_options=options["train_dataloader_options"],
        dynamic_batching=options["dynamic_batching"],
        # buckets by the length after the max_duration crop (docs/recipe.md)
        dynamic_options={
            "length_func": PolicyDuration(options["max_duration"]),
            **options["dynamic_batch_sampler"],
        },
        batch_sampler=batch_sampler_of(options),
        n_lang=options["hier_n_lang"],
        n_cls=options["hier_n_cls"],
        n_sam=options["hier_n_sam"],
        num_batches=options["hier_batches_per_epoch"],
    )
    sampler = kwargs.get("batch_sampler")
    if batch_sampler_of(options) == "hierarchical":
        hparams["hierarchical_batches"] = {
            "n_lang": sampler.n_lang,
            "n_cls": sampler.n_cls,
            "n_sam": sampler.n_sam,
            "batch_size": sampler.batch_size,
            "batches_per_epoch": sampler.num_batches,
            "languages": [str(lang) for lang in sampler.languages],
        }
    return kwargs
