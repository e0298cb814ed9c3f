"""What a corpus module describes, and the shared driver that prepares it.

A corpus module (``esd.py``, ``emodb.py``, ...) only describes what differs
between corpora: its folder layout, its label codes and how a file name or
metadata row gives an utterance ID, a speaker and a label. It does so with a
:class:`CorpusSpec` (whose parser returns an :class:`Utterance` per file)
handed to :func:`prepare_manifest`, which does the rest once for every
corpus: label mapping, header checks, the report, the manifest, the stamp.
:func:`run_cli` is the command line of the corpus modules.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsser_modules.data_prep.audio_files import check_audio
from zsser_modules.data_prep.locks import exclusive
from zsser_modules.data_prep.manifest import PathLike, write_manifest
from zsser_modules.data_prep.report import (
    CLASS_NOT_KEPT,
    DUPLICATE_ID,
    LABEL_DISAGREEMENT,
    UNEXPECTED_SAMPLE_RATE,
    UNKNOWN_LABEL,
    PrepReport,
    SkipItem,
)
from zsser_modules.data_prep.stamps import (
    input_fingerprint,
    is_up_to_date,
    make_stamp,
    save_sidecar,
)
from zsser_modules.labels import ALL_EMOTIONS, emotion_classes

logger = logging.getLogger(__name__)


class CorpusLayoutError(ValueError):
    """The data folder is missing or does not have the corpus's layout.

    The message names the folder that was given, what was found and the
    expected layout, so the user can fix the path.

    Example
    -------
    >>> err = CorpusLayoutError("emodb: no wav/ folder in /data")
    >>> isinstance(err, ValueError)
    True
    """


# ---------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------


def normalize_label(raw: str) -> str:
    """Normalize a raw label for lookup: stripped and case-folded.

    Arguments
    ---------
    raw : str
        A label as found in a file name, folder name or metadata file.

    Returns
    -------
    str
        The lookup key.

    Example
    -------
    >>> normalize_label("  Neutral ")
    'neutral'
    """
    return raw.strip().casefold()


def canonical_emotion(raw: str | None, label_map: Mapping[str, str]) -> str | None:
    """Map a corpus label code to the canonical emotion vocabulary.

    Lookup is case-insensitive and ignores surrounding white space. Every
    value of ``label_map`` must be in ``ALL_EMOTIONS``.

    Arguments
    ---------
    raw : str or None
        The corpus's label (e.g. ``"W"`` for EmoDB anger, ``"快乐"`` for ESD).
    label_map : mapping of str to str
        Corpus code -> canonical emotion.

    Returns
    -------
    str or None
        The canonical emotion, or None if ``raw`` is None or unknown.

    Example
    -------
    >>> canonical_emotion("w", {"W": "angry"})
    'angry'
    >>> canonical_emotion("X", {"W": "angry"}) is None
    True
    """
    if raw is None:
        return None
    key = normalize_label(raw)
    for code, emotion in label_map.items():
        if normalize_label(code) == key:
            return emotion
    return None


def _normalized_label_map(label_map: Mapping[str, str]) -> dict[str, str]:
    """Return ``label_map`` keyed by normalized codes, checking its values."""
    out: dict[str, str] = {}
    for code, emotion in label_map.items():
        if emotion not in ALL_EMOTIONS:
            raise ValueError(
                f"Label map sends {code!r} to {emotion!r}, which is not a canonical "
                f"emotion {ALL_EMOTIONS}."
            )
        out[normalize_label(code)] = emotion
    return out


# ---------------------------------------------------------------------------
# The corpus-independent preparation driver
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    """One utterance as a corpus parser sees it, before checks.

    Arguments
    ---------
    utt_id : str
        Corpus-unique ID without the corpus prefix (e.g. ``"03a01Wa"``).
    wav : path-like
        Absolute path of the audio file.
    emotion : str
        The corpus's label code (mapped through the corpus's label map).
    speaker : str
        Speaker within the corpus, without prefix (e.g. ``"03"``).
    lang : str
        Language code (one of ``LANGUAGES``).
    emotion_check : str, optional
        The label as given by a second source (e.g. a folder name), only
        cross-checked: a disagreement is counted, the primary label is kept.
    notes : tuple of str
        Warnings to count for this item (it is still written).

    Example
    -------
    >>> Utterance("03a01Wa", "/d/wav/03a01Wa.wav", "W", "03", "de").speaker
    '03'
    """

    utt_id: str
    wav: PathLike
    emotion: str
    speaker: str
    lang: str
    emotion_check: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CorpusSpec:
    """What a corpus module tells :func:`prepare_manifest` about its corpus.

    Arguments
    ---------
    name : str
        Corpus name (file names, ID and speaker prefix).
    layout : str
        Human-readable expected layout, shown in every layout error.
    label_map : mapping of str to str
        Label code -> canonical emotion, for ``Utterance.emotion`` and
        ``Utterance.emotion_check`` (case-insensitive).
    list_audio : callable
        ``list_audio(data_folder, options) -> list[Path]``: the audio files
        (raise :class:`CorpusLayoutError` if the layout is not found).
    parse : callable
        ``parse(path, context) -> Utterance``; raise :class:`SkipItem` for an
        item to skip.
    load_context : callable, optional
        ``load_context(data_folder, options, report) -> context`` (e.g. a
        metadata table), called once before parsing.
    metadata_files : callable, optional
        ``metadata_files(data_folder, options) -> list[Path]``: non-audio
        inputs included in the input fingerprint.
    sample_rates : tuple of int
        Native sample rates; other rates are counted as warnings.

    Example
    -------
    >>> spec = CorpusSpec("demo", "<data_folder>/*.wav", {"s": "sad"},
    ...                   list_audio=lambda folder, opts: [],
    ...                   parse=lambda path, ctx: None)
    >>> spec.name
    'demo'
    """

    name: str
    layout: str
    label_map: Mapping[str, str]
    list_audio: Callable[[Path, Mapping[str, Any]], list[Path]]
    parse: Callable[[Path, Any], Utterance]
    load_context: Callable[[Path, Mapping[str, Any], PrepReport], Any] | None = None
    metadata_files: Callable[[Path, Mapping[str, Any]], list[Path]] | None = None
    sample_rates: tuple[int, ...] = field(default=())


def layout_error(
    spec: CorpusSpec, data_folder: PathLike, problem: str, hint: str = ""
) -> CorpusLayoutError:
    """Build a :class:`CorpusLayoutError` naming the folder and expected layout.

    Arguments
    ---------
    spec : CorpusSpec
        The corpus.
    data_folder : path-like
        The folder given by the user.
    problem : str
        What was found instead.
    hint : str
        How to fix it, if known.

    Returns
    -------
    CorpusLayoutError
        The exception, to raise.

    Example
    -------
    >>> spec = CorpusSpec("demo", "<data_folder>/*.wav", {}, list, list)
    >>> print(layout_error(spec, "/nowhere", "it does not exist"))
    demo: data_folder /nowhere: it does not exist.
    Expected layout:
    <data_folder>/*.wav
    """
    message = f"{spec.name}: data_folder {data_folder}: {problem}."
    if hint:
        message += f" {hint}"
    message += f"\nExpected layout:\n{spec.layout}"
    return CorpusLayoutError(message)


def subfolder_hint(data_folder: Path, looks_right: Callable[[Path], bool]) -> str:
    """Suggest a sub-folder of ``data_folder`` that looks like the corpus root.

    Arguments
    ---------
    data_folder : Path
        The folder given by the user.
    looks_right : callable
        Test applied to each sub-folder (up to two levels down).

    Returns
    -------
    str
        ``"Did you mean <folder>?"`` or ``""``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> (tmp / "corpus" / "wav").mkdir(parents=True)
    >>> subfolder_hint(tmp, lambda p: (p / "wav").is_dir()).startswith("Did you mean")
    True
    """
    try:
        candidates = [p for p in data_folder.iterdir() if p.is_dir()]
        candidates += [q for p in candidates for q in p.iterdir() if q.is_dir()]
    except OSError:
        return ""
    for candidate in sorted(candidates):
        if looks_right(candidate):
            return f"Did you mean {candidate}?"
    return ""


@exclusive("prepare")
def prepare_manifest(
    spec: CorpusSpec,
    data_folder: PathLike,
    save_folder: PathLike,
    keep_all_classes: bool = False,
    options: Mapping[str, Any] | None = None,
) -> Path:
    """Prepare ``<save_folder>/<corpus>.csv`` for one corpus (the shared driver).

    Steps: check the folder; list the audio files; compare options and input
    fingerprint with the sidecar ``<corpus>_prep.json`` and skip if nothing
    changed; parse each file (label, speaker, ID); map the label to the
    canonical vocabulary (unknown labels skipped, label cross-check counted,
    classes outside ``emotion_classes(keep_all_classes)`` not kept); read the
    header (empty, zero-length and unreadable files skipped); skip duplicate
    IDs (the first path in sorted order wins); mark confounded speakers; write
    the CSV, then ``<corpus>_report.json``, then the sidecar.

    Arguments
    ---------
    spec : CorpusSpec
        The corpus description.
    data_folder : path-like
        The corpus folder, as unpacked.
    save_folder : path-like
        Where the manifest, report and sidecar are written.
    keep_all_classes : bool
        Keep every class of ``ALL_EMOTIONS`` instead of the 4 canonical ones.
    options : mapping, optional
        Further corpus-specific options (passed to ``spec`` callables and
        stored in the sidecar).

    Returns
    -------
    Path
        The manifest path ``<save_folder>/<corpus>.csv``.

    Raises
    ------
    CorpusLayoutError
        If the folder is missing, does not have the layout, or yields no
        usable utterance.

    Example
    -------
    >>> import json, tempfile, pathlib, numpy, soundfile
    >>> from zsser_modules.data_prep.audio_files import find_files
    >>> from zsser_modules.data_prep.manifest import read_manifest
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("s1_sad_1", "s1_happy_2", "s2_sad_3", "s2_fear_4"):
    ...     soundfile.write(root / f"{name}.wav", numpy.zeros(160), 16000)
    >>> def parse(path, context):
    ...     spk, emo, idx = path.stem.split("_")
    ...     return Utterance(path.stem, path, emo, spk, "en")
    >>> spec = CorpusSpec("demo", "<data_folder>/<spk>_<emo>_<n>.wav",
    ...                   {e: e for e in ("sad", "happy", "fear")},
    ...                   list_audio=lambda folder, opts: find_files(folder),
    ...                   parse=parse)
    >>> csv_path = prepare_manifest(spec, root, root / "out")
    >>> read_manifest(csv_path)["spk_confounded"].tolist()
    [0, 0, 1]
    >>> report = json.loads((root / "out" / "demo_report.json").read_text())
    >>> report["skipped"]["class not kept"], report["confounding"]["n_confounded"]
    (1, 1)
    """
    name = spec.name
    given = data_folder
    data_folder = Path(os.path.abspath(os.path.expanduser(str(data_folder))))
    if not data_folder.exists():
        raise layout_error(spec, given, "it does not exist")
    if not data_folder.is_dir():
        raise layout_error(spec, given, "it is not a folder")
    save_folder = Path(save_folder)
    csv_path = save_folder / f"{name}.csv"
    report_path = save_folder / f"{name}_report.json"
    sidecar = save_folder / f"{name}_prep.json"

    opts = {"keep_all_classes": bool(keep_all_classes), **dict(options or {})}
    audio = spec.list_audio(data_folder, opts)
    if not audio:
        raise layout_error(spec, given, "no audio file found where expected")
    meta = spec.metadata_files(data_folder, opts) if spec.metadata_files else []
    stamp = make_stamp(
        {**opts, "data_folder": str(data_folder)}, input_fingerprint([*audio, *meta])
    )
    if is_up_to_date(sidecar, stamp, [csv_path, report_path]):
        logger.info(
            "%s: skipping preparation, %s is up to date (same options and input "
            "listing; report: %s).",
            name,
            csv_path,
            report_path,
        )
        return csv_path
    if sidecar.exists():
        sidecar.unlink()  # never leave a sidecar vouching for an outdated CSV

    report = PrepReport(name, data_folder, opts)
    report.n_found = len(audio)
    context = (
        spec.load_context(data_folder, opts, report) if spec.load_context else None
    )
    label_map = _normalized_label_map(spec.label_map)
    classes = set(emotion_classes(keep_all_classes))
    rates = set(spec.sample_rates)
    rows: list[dict[str, Any]] = []
    first_path: dict[str, str] = {}
    for path in audio:
        try:
            utt = spec.parse(path, context)
        except SkipItem as err:
            report.skip(err.reason, path, err.detail)
            continue
        for note in utt.notes:
            report.warn(note, path)
        emotion = label_map.get(normalize_label(utt.emotion))
        if emotion is None:
            report.skip(UNKNOWN_LABEL, path, f"label {utt.emotion!r}")
            continue
        if utt.emotion_check is not None:
            check = label_map.get(normalize_label(utt.emotion_check))
            if check != emotion:
                report.warn(
                    LABEL_DISAGREEMENT,
                    path,
                    f"kept {emotion!r}; second source says {utt.emotion_check!r}",
                )
        if emotion not in classes:
            report.skip(CLASS_NOT_KEPT, path, emotion, emotion=emotion)
            continue
        info, reason, detail = check_audio(utt.wav)
        if info is None:
            report.skip(reason, path, detail)
            continue
        uid = f"{name}_{utt.utt_id}"
        if uid in first_path:
            report.skip(DUPLICATE_ID, path, f"{uid} already from {first_path[uid]}")
            continue
        first_path[uid] = str(utt.wav)
        report.record_audio(info)
        if rates and info.sample_rate not in rates:
            report.warn(UNEXPECTED_SAMPLE_RATE, path, f"{info.sample_rate} Hz")
        rows.append(
            {
                "ID": uid,
                "duration": info.duration,
                "wav": str(utt.wav),
                "emo": emotion,
                "spk_id": f"{name}_{utt.speaker}",
                "lang": utt.lang,
                "corpus": name,
                "spk_confounded": 0,
            }
        )

    report.finalize(rows)
    report.manifest = str(csv_path)
    if not rows:
        report.save(report_path)
        raise layout_error(
            spec,
            given,
            f"none of the {len(audio)} audio files gave a usable utterance "
            f"(see {report_path})",
        )
    confounded = set(report.confounding["confounded_speakers"])
    for row in rows:
        row["spk_confounded"] = int(row["spk_id"] in confounded)
    rows.sort(key=lambda r: r["ID"])
    write_manifest(rows, csv_path)
    report.save(report_path)
    save_sidecar(sidecar, stamp)
    level = logging.WARNING if report.n_problems else logging.INFO
    logger.log(
        level,
        "%s\n  manifest: %s\n  report: %s",
        report.summary(),
        csv_path,
        report_path,
    )
    return csv_path


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def run_cli(
    prepare: Callable[..., Path],
    corpus: str,
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> Path:
    """Command line front end shared by the corpus scripts.

    Parses ``DATA_FOLDER SAVE_FOLDER [--keep-all-classes] [corpus options]``,
    calls ``prepare(data_folder=..., save_folder=..., keep_all_classes=...,
    **corpus_options)``, prints the report summary and the manifest path.
    A layout error exits with status 2 and the message (no traceback).

    Arguments
    ---------
    prepare : callable
        The corpus's ``prepare_<corpus>`` function.
    corpus : str
        Corpus name (program name and help).
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).
    add_arguments : callable, optional
        Adds corpus-specific options to the parser; their ``dest`` names must
        be keyword arguments of ``prepare``.

    Returns
    -------
    Path
        The manifest path.

    Example
    -------
    >>> import tempfile
    >>> def prepare(data_folder, save_folder, keep_all_classes=False):
    ...     return Path(save_folder) / "x.csv"
    >>> run_cli(prepare, "x", ["/data", "/out"]).name  # doctest: +ELLIPSIS
    /out/x.csv
    'x.csv'
    """
    doc = (prepare.__doc__ or "").strip().splitlines()
    parser = argparse.ArgumentParser(
        prog=f"python data_prep/{corpus}.py",
        description=doc[0] if doc else f"Prepare the {corpus} manifest.",
    )
    parser.add_argument("data_folder", help=f"the {corpus} folder, as unpacked")
    parser.add_argument("save_folder", help=f"where {corpus}.csv and the report go")
    parser.add_argument(
        "--keep-all-classes",
        action="store_true",
        help="keep every emotion class (default: neutral, happy, angry, sad)",
    )
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = prepare(**vars(args))
    except CorpusLayoutError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(path)
    return path
