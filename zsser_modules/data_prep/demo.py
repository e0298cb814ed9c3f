"""Built-in demo corpus: rule-based synthetic emotional prosody with eSpeak NG.

No real emotional speech corpus can be downloaded on every machine, so the
recipe ships this generator. It synthesises short neutral-content sentences in
English, Mandarin, German, French and Urdu (each in its own script; English as
short conversational turns) with the eSpeak NG formant synthesizer, and
renders four "emotions" (neutral, happy, angry, sad) **only through
rule-based prosody**: speaking rate, mean pitch, pitch range, loudness and
pauses between words.

.. warning::
   This is **rule-based synthetic prosody, not acted or natural emotion**.
   Results on the demo corpus check that the pipeline runs and behaves
   sensibly; they say nothing about emotion recognition on human speech.

How the corpus is built (all of it seeded, see :func:`prepare_demo`):

- **Corpora**: the default profile mirrors the corpora of the paper: English
  like MELD (41 speakers, six main ones speaking 83 % of the turns, many
  minor ones speaking few; MELD's class shares, neutral 57 %, sad the
  rarest; its official train/dev/test split written into the IDs,
  ``demo_en_<train|dev|test>_...``), Mandarin like ESD, German like EmoDB,
  French like CaFE, Urdu like URDU (see ``demo_profiles.PROFILES``).
- **Speakers**: each language has its own eSpeak voice variants (e.g.
  ``en+f1``, ``de+m4``), never shared between languages, plus a per-speaker
  offset of pitch, rate, pitch range, pause length and recording level.
- **Emotions**: a per-language profile table (``PROSODY_PROFILES``) gives the
  prosodic change of each emotion relative to neutral. Arousal cues are
  shared (happy and angry louder and mostly higher, sad slower, softer,
  lower), but the cue that tells angry from happy, and sad from neutral,
  differs by language (in English anger is mostly loudness, in German mostly rate, in
  French mostly pitch; the sad pitch drop is large in German and small in
  Mandarin, a tone language whose pitch range barely changes), so a model
  trained on one language transfers only partly to another.
- **Variation**: every utterance draws an emotional intensity (0.5 to 1.2
  times the profile) and random deviations of every cue, so classes overlap
  as they do in real corpora.
- **Audio**: eSpeak NG renders 22050 Hz; the generator resamples once to
  16 kHz mono 16-bit PCM, adds 50-300 ms of leading and trailing silence and,
  optionally, white noise at a chosen SNR.

Outputs in ``save_folder``: ``demo.csv`` (the manifest schema of every
corpus), ``demo_wavs/<lang>/<spk_id>/<ID>.wav`` (with a ``README.txt``),
``demo_info.json`` (what the corpus is, options, voices, prosody table),
``demo_report.json`` (the preparation report) and ``demo_prep.json`` (the
stamp that lets a rerun with the same options skip the work).

Determinism: the same options and seed give byte-identical wavs and
manifest, in any process. eSpeak NG keeps internal state between utterances
(pitch flutter phase, gain control) and seeds its breath noise from the
clock, so each speaker is synthesised by a freshly loaded, private copy of
the library, with fixed noise seeds (eSpeak's own and the C library's, which
the Klatt voices use) and a fixed order of utterances: a speaker's audio does
not depend on what else is generated.

Where each part lives: this module plans and writes the corpus
(:func:`prepare_demo`) and is its command line; ``demo_profiles`` holds the
sentences, speakers and corpus profiles, ``demo_prosody`` the emotion rules,
their seeded sampling and the audio rendering, ``demo_espeak`` the eSpeak NG
binding and ``demo_separability`` the ``--check`` classifier.

Command line (from the repository root)::

    python data_prep/demo.py SAVE_FOLDER [--profile realistic|balanced]
        [--seed 1234] [--check]

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import soundfile as sf
from tqdm import tqdm

from zsser_modules.data_prep.audio_files import AudioInfo
from zsser_modules.data_prep.demo_espeak import (
    ESPEAK_LANGUAGE,
    EspeakSynth,
    EspeakUnavailableError,
)
from zsser_modules.data_prep.demo_profiles import (
    CONVERSATION_LINES,
    MAX_SPEAKERS,
    MELD_SPLITS,
    PROFILES,
    SENTENCES,
    SPEAKER_VARIANTS,
    official_split_counts,
    speaker_counts,
)
from zsser_modules.data_prep.demo_prosody import (
    INTENSITY_RANGE,
    PROSODY_PROFILES,
    SAMPLE_RATE,
    SPEAKER_SPREAD,
    UTTERANCE_SPREAD,
    _rng,
    espeak_settings,
    render_audio,
    speaker_offsets,
    utterance_prosody,
)
from zsser_modules.data_prep.demo_separability import (
    format_separability,
    separability_check,
)
from zsser_modules.data_prep.locks import exclusive
from zsser_modules.data_prep.manifest import PathLike, write_manifest
from zsser_modules.data_prep.report import PrepReport
from zsser_modules.data_prep.speakers import mark_confounded_speakers
from zsser_modules.data_prep.stamps import is_up_to_date, make_stamp, save_sidecar
from zsser_modules.labels import EMOTIONS, LANGUAGES

logger = logging.getLogger(__name__)

#: Bump when the audio or manifest produced for the same options changes
#: (tables, signal processing), so corpora made by older code are rebuilt.
DEMO_VERSION = 3

#: The label written everywhere the corpus or results on it appear.
SYNTHETIC_NOTICE = (
    "Rule-based synthetic prosody, NOT acted or natural emotion: eSpeak NG "
    "formant speech whose rate, pitch, pitch range, loudness and pauses are "
    "set by a per-language rule table. Use it to exercise the pipeline, not to "
    "measure emotion recognition."
)


# ---------------------------------------------------------------------------
# Corpus generation
# ---------------------------------------------------------------------------


def _check_options(
    profile: str | None,
    languages: Sequence[str],
    n_speakers: int | None,
    n_per_class_per_speaker: int | None,
) -> tuple[str, list[str]]:
    if isinstance(languages, str):
        languages = [languages]
    languages = list(dict.fromkeys(languages))
    unknown = [lang for lang in languages if lang not in SENTENCES]
    if unknown or not languages:
        raise ValueError(
            f"prepare_demo: languages must be a non-empty subset of {LANGUAGES}, "
            f"got {languages!r}."
        )
    sizes_given = n_speakers is not None or n_per_class_per_speaker is not None
    if profile is None:  # the balanced profile's sizes select it
        profile = "balanced" if sizes_given else "realistic"
    if profile not in PROFILES:
        raise ValueError(
            f"prepare_demo: profile must be one of {sorted(PROFILES)}, got {profile!r}."
        )
    if profile != "balanced" and sizes_given:
        raise ValueError(
            "prepare_demo: n_speakers and n_per_class_per_speaker set the sizes of "
            f"the balanced profile; profile {profile!r} has the speakers and sizes "
            "of the real corpora. Drop them, or set profile: balanced."
        )
    if n_speakers is not None and not 1 <= int(n_speakers) <= MAX_SPEAKERS:
        raise ValueError(
            f"prepare_demo: n_speakers must be between 1 and {MAX_SPEAKERS} (eSpeak "
            f"voice variants per language), got {n_speakers!r}."
        )
    if n_per_class_per_speaker is not None and int(n_per_class_per_speaker) < 1:
        raise ValueError(
            "prepare_demo: n_per_class_per_speaker must be >= 1, got "
            f"{n_per_class_per_speaker!r}."
        )
    # Keep the canonical language order, whatever order the user gave.
    return profile, [lang for lang in LANGUAGES if lang in languages]


def _plan(
    save_folder: Path,
    counts: Mapping[str, Sequence[Mapping[str, int]]],
    splits: Mapping[str, Sequence[Mapping[str, Mapping[str, int]]]] | None = None,
) -> list[dict[str, Any]]:
    """Every utterance to generate, grouped by speaker, in synthesis order.

    A language in ``splits`` (official train/dev/test split: the MELD-shaped
    English) gets IDs ``demo_<lang>_<split>_s<k>_<emotion>_<nnn>`` and the
    conversational lines, in turn within each emotion (every line equally
    often, to one, in every emotion); the others get IDs
    ``demo_<lang>_s<k>_<emotion>_<nnn>`` and the sentences of ``SENTENCES``,
    every sentence equally often in every emotion.
    """
    splits = splits or {}
    items = []
    for lang, speakers in counts.items():
        n_turn = dict.fromkeys(EMOTIONS, 0)
        for s, per_emotion in enumerate(speakers):
            spk_id = f"demo_{lang}_s{s + 1}"
            folder = save_folder / "demo_wavs" / lang / spk_id
            if lang in splits:
                cells = [
                    (split, emo, n)
                    for split, per_emo in splits[lang][s].items()
                    for emo in EMOTIONS
                    if (n := per_emo.get(emo, 0))
                ]
            else:
                cells = [(None, emo, per_emotion.get(emo, 0)) for emo in EMOTIONS]
            for split, emotion, n in cells:
                prefix = f"demo_{lang}_{split}_s{s + 1}" if split else spk_id
                for k in range(n):
                    if split:
                        line = n_turn[emotion] % len(CONVERSATION_LINES)
                        text = CONVERSATION_LINES[line]
                    else:
                        e = EMOTIONS.index(emotion)
                        text = SENTENCES[lang][(k + s + e) % len(SENTENCES[lang])]
                    uid = f"{prefix}_{emotion}_{k + 1:03d}"
                    items.append(
                        {
                            "ID": uid,
                            "lang": lang,
                            "speaker": s,
                            "spk_id": spk_id,
                            "split": split,
                            "emo": emotion,
                            "text": text,
                            "wav": folder / f"{uid}.wav",
                        }
                    )
                    n_turn[emotion] += 1
    return items


def _clear_old_audio(wav_root: Path) -> None:
    """Delete a previous ``demo_wavs`` folder, refusing if it holds other files."""
    if not wav_root.exists():
        return
    foreign = [
        p
        for p in wav_root.rglob("*")
        if p.is_file() and p.suffix != ".wav" and p.name != "README.txt"
    ]
    if foreign:
        raise FileExistsError(
            f"{wav_root} holds files the demo generator did not write (e.g. "
            f"{foreign[0]}); it would delete the folder to regenerate the demo "
            "corpus. Move those files or choose another save_folder."
        )
    shutil.rmtree(wav_root)


def _readme_text(options: Mapping[str, Any]) -> str:
    return (
        "zsser demo corpus - RULE-BASED SYNTHETIC PROSODY, NOT ACTED EMOTION\n"
        "====================================================================\n\n"
        f"{SYNTHETIC_NOTICE}\n\n"
        "Generated offline by data_prep/demo.py with eSpeak NG. Languages: "
        f"{', '.join(options['languages'])}; profile {options['profile']} "
        f"({_profile_text(options)}); seed {options['seed']}; noise SNR "
        f"{options['noise_snr_db']} dB.\n"
        "Audio: 16 kHz mono 16-bit PCM. Manifest: ../demo.csv. Details (voices, "
        "prosody rule table): ../demo_info.json.\n"
    )


def _profile_text(options: Mapping[str, Any]) -> str:
    """One line on the speakers and sizes of a corpus's profile."""
    parts = []
    for lang, spk in options["speaker_counts"].items():
        text = f"{lang} {len(spk)} speakers / {sum(sum(c.values()) for c in spk)} "
        text += "utterances"
        per_split = options.get("split_counts", {}).get(lang)
        if per_split:
            n = {
                split: sum(sum(c.get(split, {}).values()) for c in per_split)
                for split in MELD_SPLITS
            }
            text += " (" + " / ".join(f"{k} {v}" for k, v in n.items()) + ")"
        parts.append(text)
    return ", ".join(parts) + " (eSpeak voice variants as speakers)"


@exclusive("demo")
def prepare_demo(
    save_folder: PathLike,
    n_per_class_per_speaker: int | None = None,
    languages: Sequence[str] = LANGUAGES,
    n_speakers: int | None = None,
    noise_snr_db: float | None = None,
    seed: int = 1234,
    progress: bool = True,
    profile: str | None = None,
) -> Path:
    """Generate (or reuse) the synthetic demo corpus and its manifest.

    The corpus is **rule-based synthetic prosody, not acted emotion** (see
    the module docstring). The default profile, ``realistic``, mirrors the
    speakers, relative sizes, class imbalance and speaker-emotion confounding
    of the paper's corpora, and MELD's official split for English (3,166
    utterances, see ``PROFILES``, :func:`speaker_counts` and
    :func:`official_split_counts`); ``balanced`` is 5 languages x 5 speakers x 4
    emotions x 20 = 2,000 utterances. Speakers recorded in one emotion only
    are marked ``spk_confounded=1``, as the real preparation does. A rerun
    with the same options (and the same generator and eSpeak NG versions)
    finds the stamp ``demo_prep.json`` and returns at once; any change
    regenerates everything (the old ``demo_wavs`` folder is deleted first).

    Arguments
    ---------
    save_folder : path-like
        Output folder (``demo.csv``, ``demo_wavs/``, ``demo_info.json``,
        ``demo_report.json``, ``demo_prep.json``).
    n_per_class_per_speaker : int, optional
        Balanced profile: utterances per emotion and speaker (20).
    languages : sequence of str
        Languages to generate, a subset of ``LANGUAGES``.
    n_speakers : int, optional
        Balanced profile: speakers (eSpeak voice variants) per language, at
        most ``MAX_SPEAKERS`` (the fewest voices of a language, 10).
    noise_snr_db : float, optional
        If given, white noise is added at this SNR (dB).
    seed : int
        Seed of every random choice; same seed, same bytes.
    progress : bool
        Show a tqdm progress bar.
    profile : str, optional
        ``realistic`` or ``balanced`` (``PROFILES``). Default: ``balanced``
        if ``n_speakers`` or ``n_per_class_per_speaker`` is given, else
        ``realistic``.

    Returns
    -------
    Path
        ``<save_folder>/demo.csv``.

    Raises
    ------
    ValueError
        For an unknown language or out-of-range counts.
    EspeakUnavailableError
        If eSpeak NG cannot be loaded (the message says how to fix it).

    Example
    -------
    >>> import tempfile
    >>> from zsser_modules.data_prep.manifest import read_manifest
    >>> csv = prepare_demo(tempfile.mkdtemp(), n_per_class_per_speaker=1,
    ...                    languages=["de"], n_speakers=1, progress=False)
    >>> df = read_manifest(csv)
    >>> df["emo"].tolist(), df["spk_id"].unique().tolist(), df["corpus"][0]
    (['angry', 'happy', 'neutral', 'sad'], ['demo_de_s1'], 'demo')
    """
    profile, languages = _check_options(
        profile, languages, n_speakers, n_per_class_per_speaker
    )
    counts = speaker_counts(profile, languages, n_speakers, n_per_class_per_speaker)
    splits = official_split_counts(profile, languages)
    noise_snr_db = None if noise_snr_db is None else float(noise_snr_db)
    save_folder = Path(os.path.abspath(os.path.expanduser(str(save_folder))))
    csv_path = save_folder / "demo.csv"
    report_path = save_folder / "demo_report.json"
    info_path = save_folder / "demo_info.json"
    sidecar = save_folder / "demo_prep.json"
    wav_root = save_folder / "demo_wavs"

    options = {
        "profile": profile,
        "languages": languages,
        "speaker_counts": counts,
        "split_counts": splits,
        "noise_snr_db": noise_snr_db,
        "seed": int(seed),
        "save_folder": str(save_folder),
    }
    plan = _plan(save_folder, counts, splits)
    synth = EspeakSynth()
    with synth:
        espeak_version = synth.version
    # The "input" of a synthetic corpus is the generator and the synthesizer.
    stamp = make_stamp(
        options, {"demo_version": DEMO_VERSION, "espeak_ng": espeak_version}
    )
    outputs = [csv_path, report_path, info_path] + [item["wav"] for item in plan]
    if is_up_to_date(sidecar, stamp, outputs):
        logger.info("demo: %s is up to date (same options), reusing it.", csv_path)
        return csv_path
    if sidecar.exists():
        sidecar.unlink()  # never leave a stamp vouching for an outdated corpus
    _clear_old_audio(wav_root)
    report = PrepReport("demo", None, options)
    report.n_found = len(plan)
    started = time.perf_counter()
    rows, n_limited = _generate(plan, synth, seed, noise_snr_db, progress)
    elapsed = time.perf_counter() - started

    rows.sort(key=lambda r: r["ID"])  # same row order as every corpus manifest
    df = mark_confounded_speakers(pd.DataFrame(rows))
    write_manifest(df, csv_path)
    for row in rows:
        frames = int(round(row["duration"] * SAMPLE_RATE))
        report.record_audio(AudioInfo(row["duration"], SAMPLE_RATE, 1, frames))
    report.finalize(rows)
    report.manifest = str(csv_path)
    report.notes = {
        "synthetic": SYNTHETIC_NOTICE,
        "peak_limited_utterances": n_limited,
        "generation_seconds": round(elapsed, 1),
    }
    report.save(report_path)
    info = {
        "corpus": "demo",
        "description": SYNTHETIC_NOTICE,
        "generator": "data_prep/demo.py",
        "demo_version": DEMO_VERSION,
        "espeak_ng_version": espeak_version,
        "options": options,
        "n_utterances": len(rows),
        "sample_rate": SAMPLE_RATE,
        "voices": {
            f"demo_{lang}_s{s + 1}": f"{ESPEAK_LANGUAGE[lang]}+{variant}"
            for lang in languages
            for s, variant in enumerate(SPEAKER_VARIANTS[lang][: len(counts[lang])])
        },
        "sentences": {
            lang: list(CONVERSATION_LINES if lang in splits else SENTENCES[lang])
            for lang in languages
        },
        "official_splits": {
            lang: {
                split: sum(i["lang"] == lang and i["split"] == split for i in plan)
                for split in MELD_SPLITS
            }
            for lang in splits
        },
        "prosody_profiles": {
            lang: {emo: asdict(p) for emo, p in PROSODY_PROFILES[lang].items()}
            for lang in languages
        },
        "speaker_spread_sd": asdict(SPEAKER_SPREAD),
        "utterance_spread_sd": asdict(UTTERANCE_SPREAD),
        "intensity_range": list(INTENSITY_RANGE),
    }
    info_path.write_text(
        json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (wav_root / "README.txt").write_text(_readme_text(options), encoding="utf-8")
    save_sidecar(sidecar, stamp)
    logger.info(
        "%s\n  %s\n  manifest: %s (%d utterances in %.1f s)",
        report.summary(),
        SYNTHETIC_NOTICE,
        csv_path,
        len(rows),
        elapsed,
    )
    return csv_path


def _generate(
    plan: Sequence[Mapping[str, Any]],
    synth: EspeakSynth,
    seed: int,
    noise_snr_db: float | None,
    progress: bool,
) -> tuple[list[dict[str, Any]], int]:
    """Synthesise the plan, one fresh eSpeak instance per speaker."""
    rows: list[dict[str, Any]] = []
    n_limited = 0
    bar = tqdm(
        total=len(plan),
        desc="demo corpus (synthetic prosody)",
        unit="utt",
        disable=not progress,
    )
    current = None
    try:
        for item in plan:
            lang, s = item["lang"], item["speaker"]
            if current != (lang, s):
                synth.close()
                synth.open(seed=zlib.crc32(f"{seed}/{lang}/{s}".encode()))
                synth.set_voice(f"{ESPEAK_LANGUAGE[lang]}+{SPEAKER_VARIANTS[lang][s]}")
                speaker = speaker_offsets(seed, lang, s)
                current = (lang, s)
            rng = _rng(seed, "utterance", item["ID"])
            prosody, _ = utterance_prosody(lang, item["emo"], speaker, rng)
            samples = synth.synth(item["text"], **espeak_settings(prosody))
            audio, limited = render_audio(
                samples, synth.sample_rate, prosody.gain_db, rng, noise_snr_db
            )
            n_limited += int(limited)
            item["wav"].parent.mkdir(parents=True, exist_ok=True)
            sf.write(item["wav"], audio, SAMPLE_RATE, subtype="PCM_16")
            rows.append(
                {
                    "ID": item["ID"],
                    "duration": round(len(audio) / SAMPLE_RATE, 3),
                    "wav": str(item["wav"]),
                    "emo": item["emo"],
                    "spk_id": item["spk_id"],
                    "lang": lang,
                    "corpus": "demo",
                    "spk_confounded": 0,
                }
            )
            bar.update()
    finally:
        synth.close()
        bar.close()
    return rows, n_limited


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> Path:
    """Command line: ``python data_prep/demo.py SAVE_FOLDER [options]``.

    Arguments
    ---------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    Path
        The manifest path.

    Example
    -------
    >>> import tempfile
    >>> out = main([tempfile.mkdtemp(), "--languages", "fr", "--n-speakers", "1",
    ...             "--n-per-class", "1", "--quiet"])  # doctest: +ELLIPSIS
    NOTE: Rule-based synthetic prosody, NOT acted or natural emotion...
    >>> out.name
    'demo.csv'
    """
    parser = argparse.ArgumentParser(
        prog="python data_prep/demo.py",
        description=(
            "Generate the built-in demo corpus with eSpeak NG. " + SYNTHETIC_NOTICE
        ),
    )
    parser.add_argument("save_folder", help="where demo.csv and demo_wavs/ go")
    parser.add_argument(
        "--seed", type=int, default=1234, help="same seed, same bytes (1234)"
    )
    parser.add_argument(
        "--languages",
        nargs="+",
        default=list(LANGUAGES),
        choices=LANGUAGES,
        help="languages to generate (all)",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help="realistic (speakers, sizes, imbalance, confounding of the real "
        "corpora; the default) or balanced (--n-speakers x 4 x --n-per-class)",
    )
    parser.add_argument(
        "--n-speakers",
        type=int,
        default=None,
        help=f"balanced profile: speakers per language, 1 to {MAX_SPEAKERS}",
    )
    parser.add_argument(
        "--n-per-class",
        type=int,
        default=None,
        help="balanced profile: utterances per emotion and speaker (20)",
    )
    parser.add_argument(
        "--noise-snr-db", type=float, default=None, help="add white noise (dB SNR)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="print a within/cross-language separability check afterwards",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    if not args.quiet and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"NOTE: {SYNTHETIC_NOTICE}")
    try:
        path = prepare_demo(
            args.save_folder,
            n_per_class_per_speaker=args.n_per_class,
            languages=args.languages,
            n_speakers=args.n_speakers,
            noise_snr_db=args.noise_snr_db,
            seed=args.seed,
            progress=not args.quiet,
            profile=args.profile,
        )
    except (EspeakUnavailableError, ValueError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if not args.quiet:
        print(path)
    if args.check:
        print(format_separability(separability_check(path)))
    return path


if __name__ == "__main__":
    main()
