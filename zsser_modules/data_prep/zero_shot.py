r"""Zero-shot cross-lingual settings: train/valid/test manifests per variant.

For a source language S and a target language T, :func:`build_setting` turns
the corpus manifests into the manifests of one variant, under one of two
protocols (``protocol``).

**paper** (the recipe's default; ``paper_protocol`` holds its rules): every
corpus is cut into train / dev / test, MELD by its official split, the others
seeded with the paper's exact counts (``paper_split``: ``stratified`` or
``speaker_held_out``); the target's test split is every system's test set:

==============  =========================================  ====================
variant         train (valid: the same languages' dev)      test
==============  =========================================  ====================
baseline1       S's train split                             T's test split
baseline2       train splits of S + every other non-target  T's test split
                language
baseline2_hier  same as baseline2 (hierarchical batches)    T's test split
proposed        same as baseline2                           T's test split
no_supcon       same as baseline2                           T's test split
no_spkadv       same as baseline2                           T's test split
upper_bound     T's train split only (valid: T's dev)       T's test split
==============  =========================================  ====================

The zero-shot variants (all but upper_bound) also get ``test_all.csv``, the
whole target corpus: a supplementary score, steadier than a 38-utterance
test split. Outputs go to ``<S>_<T>/<variant>/paper_<paper_split>/seed<seed>/``.

**speaker** (today's speaker-independent settings):

==============  ==========================================  ===================
variant         train (minus held-out valid speakers)        test
==============  ==========================================  ===================
baseline1       S                                            all of T
baseline2       S + every other non-target language          all of T
baseline2_hier  same as baseline2 (hierarchical batches)     all of T
proposed        same as baseline2                            all of T
no_supcon       same as baseline2                            all of T
no_spkadv       same as baseline2                            all of T
upper_bound     baseline2's languages + T's training         T's held-out test
                speakers                                     speakers
==============  ==========================================  ===================

Rules of the speaker protocol:

- ``valid`` (model selection) holds the held-out speakers of the training
  languages only. T is never in ``train`` or ``valid``, except for the upper
  bound, which splits T's speakers into test (``test_ratio``), then the rest
  into valid (``valid_ratio``) and train.
- Every split is by speaker, per language, seeded: for each language, its
  sorted speakers are shuffled with a generator seeded by ``seed``, a salt
  (``valid`` or ``test``) and the language, and ``round(ratio * n)`` speakers
  (half up, clipped to ``[1, n - 1]``) are held out. If a side would miss
  one of the language's emotions (speakers confounded with emotion, e.g.
  URDU), further seeded shuffles are drawn until both sides cover every
  emotion (see ``speakers.speaker_split``); with ``valid_min_per_class`` = m,
  also until each training language's valid speakers hold at least m
  utterances of each of its emotions (then with one more valid speaker at
  a time if no draw does). A language's valid speakers
  thus depend only on the seed, not on the pair or variant. A
  language with fewer than 2 speakers cannot be split (the upper bound needs
  3 speakers in T): that is an error, as are an unknown language or variant,
  S == T, and a language without a prepared corpus.
- Only baseline1 depends on S beyond S being in the pool: the other
  variants train on every pool language but T, so two pairs with the same T
  give byte-identical manifests (``SOURCE_ONLY_VARIANTS``).
- Rows of classes outside ``classes`` (default: the 4 canonical emotions)
  are dropped and counted in ``setting.json``. ``spk_confounded`` is
  recomputed on each output manifest (a speaker is confounded when it has a
  single emotion *in that manifest*).

Outputs go to ``<save_folder>/<S>_<T>/<variant>/seed<seed>/`` (speaker
protocol) or ``.../<variant>/paper_<paper_split>/seed<seed>/``: ``train.csv``,
``valid.csv``, ``test.csv``, ``setting.json`` (languages per split, counts per
language and emotion, speakers) and ``setting_prep.json`` (the options and
the content hashes of the input manifests): a rerun with the same options and
manifests skips the work; any change rebuilds.

Command line (from the repository root)::

    python data_prep/zero_shot.py --source en --target de --variant proposed \
        --manifests manifests/meld.csv manifests/esd.csv manifests/emodb.csv \
        manifests/cafe.csv manifests/urdu.csv --save-folder settings \
        [--protocol paper|speaker] [--paper-split stratified|speaker_held_out]

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from zsser_modules.data_prep.locks import exclusive
from zsser_modules.data_prep.manifest import (
    MANIFEST_COLUMNS,
    PathLike,
    read_manifest,
    write_manifest,
)
from zsser_modules.data_prep.paper_protocol import (
    HELD_OUT_SPEAKERS,
    PAPER_SPLITS,
    PROTOCOLS,
    ProtocolError,
    assign_paper_splits,
    check_protocol,
    verify_fingerprints,
)
from zsser_modules.data_prep.speakers import (
    SplitError,
    held_out_shortfall,
    mark_confounded_speakers,
    speaker_split,
)
from zsser_modules.data_prep.stamps import is_up_to_date, make_stamp, save_sidecar
from zsser_modules.labels import ALL_EMOTIONS, EMOTIONS, LANGUAGES

logger = logging.getLogger(__name__)

#: The experimental variants of the paper.
VARIANTS: tuple[str, ...] = (
    "baseline1",
    "baseline2",
    "baseline2_hier",
    "upper_bound",
    "no_supcon",
    "no_spkadv",
    "proposed",
)

#: Variants that train on S alone. Every other variant trains on the whole
#: language pool minus T (plus T's training speakers for upper_bound), so its
#: setting does not depend on S: with the same pool, seed and options, the
#: pairs ``en_de`` and ``zh_de`` of such a variant are one experiment
#: (``recipes/run_grid.py`` runs it once).
SOURCE_ONLY_VARIANTS: tuple[str, ...] = ("baseline1",)

#: Output manifests of a setting.
SPLITS: tuple[str, ...] = ("train", "valid", "test")

#: Supplementary output of the zero-shot variants under the paper protocol:
#: the whole target corpus (``test_all.csv``).
TEST_ALL = "test_all"


class SettingError(ValueError):
    """A zero-shot setting cannot be built as requested (says why and how to fix).

    Example
    -------
    >>> isinstance(SettingError("source == target"), ValueError)
    True
    """


def _check_request(source: str, target: str, variant: str) -> None:
    """Raise SettingError for an unknown language or variant, or S == T."""
    for role, lang in (("source", source), ("target", target)):
        if lang not in LANGUAGES:
            raise SettingError(
                f"Unknown {role} language {lang!r}; choose one of {list(LANGUAGES)}."
            )
    if source == target:
        raise SettingError(
            f"Source and target are both {source!r}: a zero-shot setting needs a "
            "target language different from the source."
        )
    if variant not in VARIANTS:
        raise SettingError(
            f"Unknown variant {variant!r}; choose one of {list(VARIANTS)}."
        )


def training_languages(
    source: str,
    target: str,
    variant: str,
    available: Sequence[str],
    protocol: str = "speaker",
) -> list[str]:
    """Return the languages a variant trains on, in ``LANGUAGES`` order after S.

    Arguments
    ---------
    source : str
        Source language S.
    target : str
        Target language T.
    variant : str
        One of ``VARIANTS``.
    available : sequence of str
        Languages with a prepared corpus (the pool of auxiliary languages).
    protocol : str
        ``speaker`` (default) or ``paper``: under the paper protocol the
        upper bound trains on T alone.

    Returns
    -------
    list of str
        ``[S]`` for baseline1; S then every other available non-target
        language for baseline2, baseline2_hier, proposed, no_supcon and
        no_spkadv; for upper_bound the same plus T (speaker protocol) or
        ``[T]`` (paper protocol).

    Raises
    ------
    SettingError
        For an unknown language or variant, S == T, or S or T not available.

    Example
    -------
    >>> langs = ["en", "zh", "de", "fr", "ur"]
    >>> training_languages("en", "de", "baseline1", langs)
    ['en']
    >>> training_languages("en", "de", "proposed", langs)
    ['en', 'zh', 'fr', 'ur']
    >>> training_languages("fr", "ur", "upper_bound", ["fr", "de", "ur"])
    ['fr', 'de', 'ur']
    >>> training_languages("en", "de", "upper_bound", langs, protocol="paper")
    ['de']
    >>> training_languages("en", "en", "proposed", langs)
    Traceback (most recent call last):
    ...
    zsser_modules.data_prep.zero_shot.SettingError: Source and target are both 'en': a zero-shot setting needs a target language different from the source.
    """  # noqa: E501
    _check_request(source, target, variant)
    available = [lang for lang in LANGUAGES if lang in set(available)]
    for role, lang in (("source", source), ("target", target)):
        if lang not in available:
            raise SettingError(
                f"No prepared corpus for the {role} language {lang!r}: the "
                f"manifests cover {available}. Prepare one (e.g. python "
                "data_prep/<corpus>.py DATA_FOLDER SAVE_FOLDER) and pass its CSV."
            )
    check_protocol(protocol)
    if variant == "upper_bound" and protocol == "paper":
        return [target]
    if variant in SOURCE_ONLY_VARIANTS:
        langs = [source]
    else:
        langs = [source] + [lang for lang in available if lang not in (source, target)]
    if variant == "upper_bound":
        langs.append(target)
    return langs


def setting_folder(
    save_folder: PathLike,
    source: str,
    target: str,
    variant: str,
    seed: int,
    protocol: str = "speaker",
    paper_split: str = "stratified",
) -> Path:
    """Return the output folder of a setting.

    ``<save_folder>/<S>_<T>/<variant>/seed<seed>`` under the speaker
    protocol, ``<save_folder>/<S>_<T>/<variant>/paper_<paper_split>/seed<seed>``
    under the paper protocol (settings of different protocols never share a
    folder).

    Arguments
    ---------
    save_folder : path-like
        Root of all settings.
    source : str
        Source language.
    target : str
        Target language.
    variant : str
        Variant name.
    seed : int
        Split seed.
    protocol : str
        ``speaker`` or ``paper``.
    paper_split : str
        ``stratified`` or ``speaker_held_out`` (paper protocol only).

    Returns
    -------
    Path
        The folder of this setting.

    Example
    -------
    >>> setting_folder("out", "en", "de", "proposed", 1).as_posix()
    'out/en_de/proposed/seed1'
    >>> setting_folder("out", "en", "de", "proposed", 1, "paper").as_posix()
    'out/en_de/proposed/paper_stratified/seed1'
    """
    check_protocol(protocol, paper_split)
    folder = Path(save_folder) / f"{source}_{target}" / variant
    if protocol == "paper":
        folder = folder / f"paper_{paper_split}"
    return folder / f"seed{seed}"


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _split(
    df: pd.DataFrame, ratio: float, seed: int, salt: str, what: str, minimum: int = 0
):
    """speaker_split with errors turned into SettingError naming the purpose."""
    try:
        return speaker_split(df, ratio, seed, salt=salt, min_held_per_class=minimum)
    except SplitError as err:
        raise SettingError(f"Cannot hold out {what}: {err}") from None


def _summary(frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Counts per split: languages, rows per language and emotion, speakers."""
    out: dict[str, Any] = {
        key: {}
        for key in (
            "languages",
            "n_rows",
            "counts",
            "n_speakers",
            "n_confounded_speakers",
            "speakers",
        )
    }
    for split, df in frames.items():
        speakers = df.groupby("lang")["spk_id"].unique()
        counts = df.groupby(["lang", "emo"]).size()
        langs = [lang for lang in LANGUAGES if lang in speakers.index]
        out["languages"][split] = langs
        out["n_rows"][split] = len(df)
        out["counts"][split] = {
            lang: {emo: int(n) for emo, n in counts[lang].items()} for lang in langs
        }
        out["n_speakers"][split] = {lang: len(speakers[lang]) for lang in langs}
        out["speakers"][split] = {lang: sorted(speakers[lang]) for lang in langs}
        out["n_confounded_speakers"][split] = int(
            df.loc[df["spk_confounded"] == 1, "spk_id"].nunique()
        )
    return out


@exclusive("settings")
def build_setting(
    manifests: Sequence[PathLike],
    source: str,
    target: str,
    variant: str,
    save_folder: PathLike,
    seed: int = 1234,
    valid_ratio: float = 0.2,
    test_ratio: float = 0.3,
    languages: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    valid_min_per_class: int = 0,
    protocol: str = "speaker",
    paper_split: str = "stratified",
) -> dict[str, Path]:
    """Write the train/valid/test manifests of one zero-shot setting.

    See the module docstring for the variants and split rules of both
    protocols.

    Arguments
    ---------
    manifests : sequence of path-like
        Corpus manifests (from ``data_prep/<corpus>.py``), any number; their
        ``lang`` columns define the available languages.
    source : str
        Source language S.
    target : str
        Target language T (never in train/valid except for upper_bound).
    variant : str
        One of ``VARIANTS``.
    save_folder : path-like
        Root folder; the setting goes to ``<S>_<T>/<variant>/seed<seed>/``.
    seed : int
        Seed of the speaker splits (speaker protocol) or of the drawn paper
        splits (``split_seed``).
    valid_ratio : float
        Speaker protocol: fraction of each training language's speakers held
        out for ``valid``.
    test_ratio : float
        Speaker protocol, upper_bound only: fraction of T's speakers held out
        for ``test``.
    languages : sequence of str, optional
        Restrict the pool of auxiliary languages (default: all languages of
        the manifests). S and T must still be in the manifests.
    classes : sequence of str, optional
        Emotion classes kept (default ``EMOTIONS``, the 4 classes).
    valid_min_per_class : int
        Utterances of every emotion a training language has that its
        ``valid`` speakers must hold at least (``speaker_split``'s
        ``min_held_per_class``: more draws, then more speakers, if needed).
        A language where it cannot hold is logged and listed in
        ``setting.json`` (``valid_shortfall``). 0: no minimum.
    protocol : str
        ``speaker`` (default here; today's speaker-independent settings) or
        ``paper`` (the paper's splits, ``paper_protocol``; the recipe's
        default).
    paper_split : str
        Paper protocol: ``stratified`` or ``speaker_held_out``.

    Returns
    -------
    dict
        ``{"train": Path, "valid": Path, "test": Path}``, plus
        ``"test_all"`` (the whole target) for the zero-shot variants under
        the paper protocol.

    Raises
    ------
    SettingError
        For an impossible request (unknown language or variant, S == T, a
        language without corpus, a language with too few speakers, duplicate
        IDs across manifests, unknown classes).

    Example
    -------
    >>> import tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> rows = [dict(ID=f"demo_{lang}{s}{e}", duration=1.0, wav="/x.wav", emo=emo,
    ...              spk_id=f"demo_{lang}{s}", lang=lang, corpus="demo",
    ...              spk_confounded=0)
    ...         for lang in ("en", "de", "fr") for s in range(4)
    ...         for e, emo in enumerate(EMOTIONS)]
    >>> from zsser_modules.data_prep.manifest import write_manifest
    >>> csv_path = write_manifest(rows, tmp / "demo.csv")
    >>> paths = build_setting([csv_path], "en", "de", "proposed", tmp / "out", seed=1)
    >>> sorted(paths)
    ['test', 'train', 'valid']
    >>> train, test = read_manifest(paths["train"]), read_manifest(paths["test"])
    >>> sorted(set(train["lang"])), sorted(set(test["lang"])), len(test)
    (['en', 'fr'], ['de'], 16)
    >>> paths = build_setting([csv_path], "en", "de", "proposed", tmp / "out", seed=1,
    ...                       protocol="paper")
    >>> sorted(paths), len(read_manifest(paths["test_all"]))
    (['test', 'test_all', 'train', 'valid'], 16)
    """
    _check_request(source, target, variant)
    try:
        check_protocol(protocol, paper_split)
    except ProtocolError as err:
        raise SettingError(str(err)) from None
    if not manifests:
        raise SettingError("No manifest given: pass the corpus CSVs to build from.")
    classes = tuple(classes) if classes is not None else EMOTIONS
    unknown = [c for c in classes if c not in ALL_EMOTIONS]
    if unknown or not classes:
        raise SettingError(f"Unknown classes {unknown}; choose from {ALL_EMOTIONS}.")
    paths = []
    for manifest in manifests:
        path = Path(os.path.abspath(manifest))
        if not path.is_file():
            raise SettingError(
                f"Manifest {manifest} does not exist; prepare it first with "
                "python data_prep/<corpus>.py DATA_FOLDER SAVE_FOLDER."
            )
        paths.append(path)
    if len(set(paths)) != len(paths):
        raise SettingError(f"A manifest is given twice: {[str(p) for p in paths]}.")

    out_dir = setting_folder(
        save_folder, source, target, variant, seed, protocol, paper_split
    )
    names = list(SPLITS)
    if protocol == "paper" and variant != "upper_bound":
        names.append(TEST_ALL)
    outputs = {split: out_dir / f"{split}.csv" for split in names}
    summary_path = out_dir / "setting.json"
    sidecar = out_dir / "setting_prep.json"
    options = {
        "source": source,
        "target": target,
        "variant": variant,
        "seed": seed,
        "valid_ratio": valid_ratio,
        "test_ratio": test_ratio,
        "languages": None if languages is None else list(languages),
        "classes": list(classes),
        "valid_min_per_class": int(valid_min_per_class),
        "protocol": protocol,
        "paper_split": paper_split if protocol == "paper" else None,
    }
    fingerprint = {"manifests": [{"path": str(p), "sha1": _sha1(p)} for p in paths]}
    stamp = make_stamp(options, fingerprint)
    if is_up_to_date(sidecar, stamp, [*outputs.values(), summary_path]):
        logger.info(
            "%s_%s %s seed %s: up to date in %s, skipping.",
            source,
            target,
            variant,
            seed,
            out_dir,
        )
        return outputs
    if sidecar.exists():
        sidecar.unlink()

    frames = [read_manifest(p) for p in paths]
    df = pd.concat(frames, ignore_index=True)
    duplicated = df["ID"][df["ID"].duplicated()]
    if len(duplicated):
        raise SettingError(
            f"{len(duplicated)} ID(s) appear in more than one row across the "
            f"manifests (e.g. {duplicated.iloc[0]!r}): pass each corpus once."
        )
    available = sorted(set(df["lang"]))
    pool = available
    if languages is not None:
        bad = [lang for lang in languages if lang not in available]
        if bad:
            raise SettingError(
                f"languages={list(languages)} includes {bad}, which no manifest "
                f"covers (manifests cover {available})."
            )
        pool = sorted(set(languages) | {source, target})
    train_langs = training_languages(source, target, variant, pool, protocol)

    keep = df["emo"].isin(classes)
    dropped = df[~keep & df["lang"].isin(train_langs + [target])]
    df = df[keep]

    if protocol == "paper":
        result = _paper_frames(df, train_langs, target, variant, seed, paper_split)
    else:
        result = _speaker_frames(
            df,
            train_langs,
            target,
            variant,
            seed,
            valid_ratio,
            test_ratio,
            valid_min_per_class,
        )
    for split, frame in result.items():
        frame = mark_confounded_speakers(frame).sort_values("ID", kind="stable")
        result[split] = frame[list(MANIFEST_COLUMNS)].reset_index(drop=True)
    _check_guarantees(
        result, source, target, variant, train_langs, protocol, paper_split
    )
    # The minimum applies to the speaker protocol's valid speakers; the paper
    # protocol's dev splits are stratified by emotion with fixed counts.
    shortfall = (
        held_out_shortfall(result["valid"], valid_min_per_class)
        if protocol == "speaker"
        else {}
    )
    if shortfall:
        logger.warning(
            "valid_min_per_class=%d cannot hold for every training language "
            "(utterances per class under it: %s): the language has too few "
            "utterances or speakers of a class.",
            valid_min_per_class,
            shortfall,
        )

    for split, frame in result.items():
        write_manifest(frame, outputs[split])
    used = df[df["lang"].isin(train_langs + [target])]
    summary = {
        **options,
        "training_languages": train_langs,
        "manifests": [str(p) for p in paths],
        "files": {split: str(p) for split, p in outputs.items()},
        "dropped_rows_class_not_kept": {
            lang: int(n)
            for lang, n in dropped["lang"].value_counts().sort_index().items()
        },
        "corpus_sizes": {
            f"{corpus}/{lang}": int(n)
            for (corpus, lang), n in used.groupby(["corpus", "lang"]).size().items()
        },
        **_summary(result),
        "valid_shortfall": shortfall,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    save_sidecar(sidecar, stamp)
    logger.info(
        "%s_%s %s seed %s (%s protocol): train %d rows (%s), valid %d (%s), "
        "test %d (%s) in %s",
        source,
        target,
        variant,
        seed,
        protocol if protocol == "speaker" else f"paper, {paper_split}",
        len(result["train"]),
        "+".join(summary["languages"]["train"]),
        len(result["valid"]),
        "+".join(summary["languages"]["valid"]),
        len(result["test"]),
        "+".join(summary["languages"]["test"]),
        out_dir,
    )
    return outputs


def _paper_frames(
    df: pd.DataFrame,
    train_langs: list[str],
    target: str,
    variant: str,
    seed: int,
    paper_split: str,
) -> dict[str, pd.DataFrame]:
    """The setting's frames under the paper protocol (``paper_protocol``)."""
    used = df[df["lang"].isin(train_langs + [target])]
    try:
        parts = assign_paper_splits(used, seed, paper_split)
    except ProtocolError as err:
        raise SettingError(str(err)) from None
    verify_fingerprints(used, parts, seed, paper_split)
    in_train = used["lang"].isin(train_langs)
    is_target = used["lang"] == target
    result = {
        "train": used[in_train & (parts == "train")],
        "valid": used[in_train & (parts == "dev")],
        "test": used[is_target & (parts == "test")],
    }
    if variant != "upper_bound":
        result[TEST_ALL] = used[is_target]
    return result


def _speaker_frames(
    df: pd.DataFrame,
    train_langs: list[str],
    target: str,
    variant: str,
    seed: int,
    valid_ratio: float,
    test_ratio: float,
    valid_min_per_class: int,
) -> dict[str, pd.DataFrame]:
    """The setting's frames under the speaker protocol (speaker splits)."""
    aux = df[df["lang"].isin([lang for lang in train_langs if lang != target])]
    train_parts, valid_parts = [], []
    aux_train, aux_valid = _split(
        aux, valid_ratio, seed, "valid", "valid speakers", valid_min_per_class
    )
    train_parts.append(aux_train)
    valid_parts.append(aux_valid)
    df_target = df[df["lang"] == target]
    if variant == "upper_bound":
        rest, test = _split(df_target, test_ratio, seed, "test", "target test speakers")
        t_train, t_valid = _split(
            rest,
            valid_ratio,
            seed,
            "valid",
            "target valid speakers (upper bound)",
            valid_min_per_class,
        )
        train_parts.append(t_train)
        valid_parts.append(t_valid)
    else:
        test = df_target
    return {
        "train": pd.concat(train_parts, ignore_index=True),
        "valid": pd.concat(valid_parts, ignore_index=True),
        "test": test,
    }


def _check_guarantees(
    frames: dict[str, pd.DataFrame],
    source: str,
    target: str,
    variant: str,
    train_langs: list[str],
    protocol: str = "speaker",
    paper_split: str = "stratified",
) -> None:
    """Assert the setting's invariants (a violation is a bug, never user error).

    Speaker protocol: no speaker on two sides. Paper protocol: no utterance
    on two sides (its stratified splits share speakers, as the paper's); with
    ``speaker_held_out``, also no speaker of CaFE or ESD on two sides.
    """
    column = "spk_id" if protocol == "speaker" else "ID"
    items = {split: set(frames[split][column]) for split in SPLITS}
    if protocol == "paper" and paper_split == "speaker_held_out":
        held = {
            split: set(
                frames[split].loc[
                    frames[split]["corpus"].isin(HELD_OUT_SPEAKERS), "spk_id"
                ]
            )
            for split in SPLITS
        }
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        overlap = items[a] & items[b]
        if overlap:
            raise RuntimeError(f"{column} in both {a} and {b}: {sorted(overlap)[:5]}")
        if protocol == "paper" and paper_split == "speaker_held_out":
            shared = held[a] & held[b]
            if shared:
                raise RuntimeError(
                    f"speaker_held_out: speakers in both {a} and {b}: "
                    f"{sorted(shared)[:5]}"
                )
    for split in ("train", "valid"):
        langs = set(frames[split]["lang"])
        if not langs <= set(train_langs):
            raise RuntimeError(f"{split} has languages {langs} outside {train_langs}")
        if variant != "upper_bound" and target in langs:
            raise RuntimeError(f"Target {target} in {split} for variant {variant}")
    for split in ("test", TEST_ALL):
        if split in frames and set(frames[split]["lang"]) != {target}:
            raise RuntimeError(f"{split} is not only the target language {target}")
    if source not in set(train_langs):
        return  # the paper's upper bound: the target alone
    if source not in set(frames["train"]["lang"]):
        raise RuntimeError(f"Source {source} missing from train")


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, Path]]:
    """Command line: build one variant (or all) of a setting.

    Arguments
    ---------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``); see ``--help``.

    Returns
    -------
    dict
        Variant -> ``{"train", "valid", "test"}`` paths (and ``test_all``).

    Example
    -------
    >>> main(["--source", "en", "--target", "en", "--manifests", "x.csv",
    ...       "--save-folder", "out"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """
    parser = argparse.ArgumentParser(
        prog="python data_prep/zero_shot.py",
        description="Build the train/valid/test manifests of a zero-shot "
        "cross-lingual SER setting.",
    )
    parser.add_argument("--source", required=True, choices=LANGUAGES)
    parser.add_argument("--target", required=True, choices=LANGUAGES)
    parser.add_argument(
        "--variant",
        nargs="+",
        default=["proposed"],
        choices=[*VARIANTS, "all"],
        help="variant(s) to build, or 'all' (default: proposed)",
    )
    parser.add_argument("--manifests", nargs="+", required=True, help="corpus CSVs")
    parser.add_argument("--save-folder", required=True)
    parser.add_argument("--seed", type=int, default=1234, help="split seed")
    parser.add_argument(
        "--protocol",
        default="paper",
        choices=PROTOCOLS,
        help="paper: the paper's splits (default); speaker: speaker-independent",
    )
    parser.add_argument(
        "--paper-split",
        default="stratified",
        choices=PAPER_SPLITS,
        help="paper protocol: stratified (default) or speaker_held_out",
    )
    parser.add_argument("--valid-ratio", type=float, default=0.2)
    parser.add_argument("--test-ratio", type=float, default=0.3)
    parser.add_argument(
        "--valid-min-per-class",
        type=int,
        default=0,
        help="utterances of every emotion each training language's valid "
        "speakers hold at least (default 0: no minimum)",
    )
    parser.add_argument(
        "--languages", nargs="+", default=None, help="restrict auxiliary languages"
    )
    parser.add_argument(
        "--keep-all-classes",
        action="store_true",
        help="keep every emotion class of the manifests (default: the 4 classes)",
    )
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    variants = VARIANTS if "all" in args.variant else tuple(args.variant)
    built = {}
    try:
        for variant in variants:
            built[variant] = build_setting(
                args.manifests,
                args.source,
                args.target,
                variant,
                args.save_folder,
                seed=args.seed,
                valid_ratio=args.valid_ratio,
                test_ratio=args.test_ratio,
                languages=args.languages,
                classes=ALL_EMOTIONS if args.keep_all_classes else EMOTIONS,
                valid_min_per_class=args.valid_min_per_class,
                protocol=args.protocol,
                paper_split=args.paper_split,
            )
            print(built[variant]["train"].parent)
    except (SettingError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    return built


if __name__ == "__main__":
    main()
