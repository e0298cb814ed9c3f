"""Built-in demo corpus: rule-based synthetic emotional prosody with eSpeak NG.

No real emotional speech corpus can be downloaded on every machine, so the
recipe ships this generator. It synthesises short neutral-content sentences in
English, Mandarin, German, French and Urdu (each in its own script) with the
eSpeak NG formant synthesizer, and renders four "emotions" (neutral, happy,
angry, sad) **only through rule-based prosody**: speaking rate, mean pitch,
pitch range, loudness and pauses between words.

.. warning::
   This is **rule-based synthetic prosody, not acted or natural emotion**.
   Results on the demo corpus check that the pipeline runs and behaves
   sensibly; they say nothing about emotion recognition on human speech.

How the corpus is built (all of it seeded, see :func:`prepare_demo`):

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
the library, with a fixed noise seed and a fixed order of utterances: a
speaker's audio does not depend on what else is generated.

Command line (from the repository root)::

    python data_prep/demo.py SAVE_FOLDER [--profile realistic|balanced]
        [--seed 1234] [--check]

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import resample_poly
from tqdm import tqdm

from zsser_modules.data_prep.audio_files import AudioInfo
from zsser_modules.data_prep.locks import exclusive
from zsser_modules.data_prep.manifest import PathLike, read_manifest, write_manifest
from zsser_modules.data_prep.report import PrepReport
from zsser_modules.data_prep.speakers import mark_confounded_speakers
from zsser_modules.data_prep.stamps import is_up_to_date, make_stamp, save_sidecar
from zsser_modules.labels import EMOTIONS, LANGUAGES

logger = logging.getLogger(__name__)

#: Bump when the audio or manifest produced for the same options changes
#: (tables, signal processing), so corpora made by older code are rebuilt.
DEMO_VERSION = 2

#: The label written everywhere the corpus or results on it appear.
SYNTHETIC_NOTICE = (
    "Rule-based synthetic prosody, NOT acted or natural emotion: eSpeak NG "
    "formant speech whose rate, pitch, pitch range, loudness and pauses are "
    "set by a per-language rule table. Use it to exercise the pipeline, not to "
    "measure emotion recognition."
)

#: Sample rate of the written wavs.
SAMPLE_RATE = 16000

#: eSpeak NG voice (language) name of each language code.
ESPEAK_LANGUAGE: dict[str, str] = {
    "en": "en",
    "zh": "cmn",
    "de": "de",
    "fr": "fr",
    "ur": "ur",
}

#: Short neutral-content sentences, in each language's own script.
SENTENCES: dict[str, tuple[str, ...]] = {
    "en": (
        "The train leaves at seven in the morning.",
        "Please put the books on the table.",
        "The meeting is on the second floor.",
        "We need to buy bread and milk today.",
        "The window in the kitchen is open.",
        "My brother lives near the old bridge.",
        "The letter arrived on Tuesday afternoon.",
        "There are four chairs in the room.",
        "She walked to the station after lunch.",
        "The shop closes at six this evening.",
    ),
    "zh": (
        "火车早上七点出发。",
        "请把书放在桌子上。",
        "会议在二楼举行。",
        "我们今天需要买面包和牛奶。",
        "厨房的窗户开着。",
        "我哥哥住在老桥附近。",
        "信是星期二下午到的。",
        "房间里有四把椅子。",
        "她吃完午饭后走去车站。",
        "商店今天晚上六点关门。",
    ),
    "de": (
        "Der Zug fährt um sieben Uhr morgens ab.",
        "Bitte leg die Bücher auf den Tisch.",
        "Die Besprechung ist im zweiten Stock.",
        "Wir müssen heute Brot und Milch kaufen.",
        "Das Fenster in der Küche ist offen.",
        "Mein Bruder wohnt in der Nähe der alten Brücke.",
        "Der Brief kam am Dienstagnachmittag an.",
        "Im Zimmer stehen vier Stühle.",
        "Sie ging nach dem Mittagessen zum Bahnhof.",
        "Der Laden schließt heute um sechs Uhr.",
    ),
    "fr": (
        "Le train part à sept heures du matin.",
        "Pose les livres sur la table, s'il te plaît.",
        "La réunion est au deuxième étage.",
        "Nous devons acheter du pain et du lait aujourd'hui.",
        "La fenêtre de la cuisine est ouverte.",
        "Mon frère habite près du vieux pont.",
        "La lettre est arrivée mardi après-midi.",
        "Il y a quatre chaises dans la pièce.",
        "Elle est allée à la gare après le déjeuner.",
        "Le magasin ferme à six heures ce soir.",
    ),
    "ur": (
        "ریل گاڑی صبح سات بجے روانہ ہوتی ہے۔",
        "براہ کرم کتابیں میز پر رکھ دیں۔",
        "اجلاس دوسری منزل پر ہے۔",
        "ہمیں آج روٹی اور دودھ خریدنا ہے۔",
        "باورچی خانے کی کھڑکی کھلی ہے۔",
        "میرا بھائی پرانے پل کے قریب رہتا ہے۔",
        "خط منگل کی دوپہر کو پہنچا۔",
        "کمرے میں چار کرسیاں ہیں۔",
        "وہ دوپہر کے کھانے کے بعد اسٹیشن گئی۔",
        "دکان آج شام چھ بجے بند ہوتی ہے۔",
    ),
}

#: eSpeak NG voice variants used as speakers, in order (speaker ``s<k>`` of a
#: language uses its k-th variant). No variant is used by two languages
#: (disjoint speakers, as in real corpora). The first six of each language
#: are the voices of DEMO_VERSION 1; the lists are as long as the realistic
#: profile needs (ESD 10, EmoDB 10, CaFE 12, URDU 29 speakers).
SPEAKER_VARIANTS: dict[str, tuple[str, ...]] = {
    "en": ("f1", "m3", "linda", "m1", "f5", "paul", "Alex", "edward", "Andy", "rob"),
    "zh": ("f2", "m6", "anika", "m2", "steph", "Mario", "Lee", "Nguyen", "adam", "max"),
    "de": (
        "f3", "m4", "belinda", "m7", "Andrea", "robert", "norbert", "boris",
        "gustave", "Hugo",
    ),
    "fr": (
        "f4", "m5", "aunty", "m8", "Annie", "Michael", "michel", "antonio",
        "benjamin", "caleb", "david", "ed",
    ),
    "ur": (
        "Alicia", "Gene", "grandma", "Denis", "steph2", "travis", "Diogo", "Gene2",
        "Henrique", "Jacky", "Marco", "Mike", "Reed", "Storm", "Tweaky", "announcer",
        "edward2", "grandpa", "ian", "iven", "iven2", "john", "marcelo", "miguel",
        "mike2", "pablo", "pedro", "quincy", "sandro",
    ),
}  # fmt: skip

#: Largest ``n_speakers`` of the balanced profile (voices of every language).
MAX_SPEAKERS = min(len(v) for v in SPEAKER_VARIANTS.values())

#: Real 4-class counts of EmoDB per speaker (file_lists/emodb-files.csv):
#: 339 utterances, angry 127, happy 71, neutral 79, sad 62.
EMODB_COUNTS: dict[str, dict[str, int]] = {
    "03": {"angry": 14, "happy": 7, "neutral": 11, "sad": 7},
    "08": {"angry": 12, "happy": 11, "neutral": 10, "sad": 9},
    "09": {"angry": 13, "happy": 4, "neutral": 9, "sad": 4},
    "10": {"angry": 10, "happy": 4, "neutral": 4, "sad": 3},
    "11": {"angry": 11, "happy": 8, "neutral": 9, "sad": 7},
    "12": {"angry": 12, "happy": 2, "neutral": 4, "sad": 4},
    "13": {"angry": 12, "happy": 10, "neutral": 9, "sad": 5},
    "14": {"angry": 16, "happy": 8, "neutral": 7, "sad": 10},
    "15": {"angry": 13, "happy": 6, "neutral": 11, "sad": 4},
    "16": {"angry": 14, "happy": 11, "neutral": 5, "sad": 9},
}

#: Real 4-class counts of CaFE per actor (cafe-files.csv): 6 sentences, neutral
#: in one intensity, the others in two: 42 per actor, 504 in all.
CAFE_COUNTS: dict[str, dict[str, int]] = {
    f"{actor:02d}": {"angry": 12, "happy": 12, "neutral": 6, "sad": 12}
    for actor in range(1, 13)
}

#: Real counts of URDU per speaker (urdu-files.csv): 400 utterances, 100 per
#: class, 29 speakers of whom 26 speak in one emotion only.
URDU_COUNTS: dict[str, dict[str, int]] = {
    "SF1": {"happy": 12}, "SF2": {"happy": 2}, "SF3": {"happy": 2},
    "SF4": {"happy": 4}, "SF5": {"happy": 4}, "SF6": {"happy": 14},
    "SF7": {"happy": 6}, "SF8": {"happy": 2}, "SF9": {"neutral": 4},
    "SF10": {"sad": 2}, "SF11": {"sad": 4}, "SM1": {"angry": 22},
    "SM2": {"angry": 28}, "SM3": {"angry": 2, "happy": 2, "neutral": 8},
    "SM4": {"angry": 48}, "SM5": {"happy": 8, "neutral": 72},
    "SM6": {"happy": 10, "sad": 4}, "SM7": {"happy": 28}, "SM17": {"happy": 2},
    "SM18": {"happy": 2}, "SM19": {"happy": 2}, "SM20": {"neutral": 10},
    "SM21": {"neutral": 4}, "SM22": {"neutral": 2}, "SM23": {"sad": 6},
    "SM24": {"sad": 38}, "SM25": {"sad": 40}, "SM26": {"sad": 2},
    "SM27": {"sad": 4},
}  # fmt: skip

#: Real 4-class utterances per speaker and emotion in ESD (10 speakers per language).
ESD_PER_CLASS = 350

#: Corpus profiles of the demo (``profile=`` of :func:`prepare_demo`):
#:
#: - ``realistic`` (default): each language mirrors the corpus it stands in
#:   for: ESD's 10 English and 10 Mandarin speakers with balanced classes,
#:   EmoDB's 10 speakers and class imbalance, CaFE's 12 actors (half as much
#:   neutral), URDU's 29 speakers with their speaker-emotion confounding.
#:   Sizes are scaled so that a run stays within a CPU minute: ESD by
#:   ``esd_scale`` (1/10: 35 per speaker and emotion, 1,400 per language),
#:   the small corpora by ``small_scale`` (1/2: 179, 252 and 200 utterances;
#:   each speaker keeps every emotion it has, at least one utterance).
#:   ESD is 5.6 to 7.8 times larger than each small language (real: 28 to 41).
#: - ``balanced``: the corpus of DEMO_VERSION 1, ``n_speakers`` speakers per
#:   language (5) x 4 emotions x ``n_per_class_per_speaker`` (20), no
#:   confounding.
PROFILES: dict[str, dict[str, Any]] = {
    "realistic": {"esd_scale": 0.1, "small_scale": 0.5},
    "balanced": {"n_speakers": 5, "n_per_class_per_speaker": 20},
}


def _scaled(counts: Mapping[str, int], scale: float) -> dict[str, int]:
    """Scale per-emotion counts (round half up, at least 1 where there were any)."""
    return {
        emo: max(1, int(math.floor(n * scale + 0.5)))
        for emo, n in counts.items()
        if n > 0
    }


def speaker_counts(
    profile: str = "realistic",
    languages: Sequence[str] = LANGUAGES,
    n_speakers: int | None = None,
    n_per_class_per_speaker: int | None = None,
) -> dict[str, list[dict[str, int]]]:
    """Utterances per speaker and emotion of a demo profile.

    Arguments
    ---------
    profile : str
        A key of ``PROFILES``.
    languages : sequence of str
        Languages to include.
    n_speakers : int, optional
        Balanced profile: speakers per language (default: ``PROFILES``).
    n_per_class_per_speaker : int, optional
        Balanced profile: utterances per speaker and emotion (default:
        ``PROFILES``).

    Returns
    -------
    dict
        ``{lang: [ {emotion: count} for each speaker in order ]}``.

    Example
    -------
    >>> counts = speaker_counts("realistic")
    >>> [len(counts[lang]) for lang in LANGUAGES]
    [10, 10, 10, 12, 29]
    >>> {lang: sum(sum(s.values()) for s in counts[lang]) for lang in counts}
    {'en': 1400, 'zh': 1400, 'de': 179, 'fr': 252, 'ur': 200}
    >>> speaker_counts("balanced", ["de"], n_speakers=1, n_per_class_per_speaker=2)
    {'de': [{'neutral': 2, 'happy': 2, 'angry': 2, 'sad': 2}]}
    """
    if profile == "balanced":
        defaults = PROFILES["balanced"]
        n_spk = defaults["n_speakers"] if n_speakers is None else n_speakers
        n_per = n_per_class_per_speaker or defaults["n_per_class_per_speaker"]
        return {
            lang: [{emo: int(n_per) for emo in EMOTIONS} for _ in range(int(n_spk))]
            for lang in languages
        }
    scales = PROFILES[profile]
    esd = _scaled({emo: ESD_PER_CLASS for emo in EMOTIONS}, scales["esd_scale"])
    small = scales["small_scale"]
    tables = {
        "en": [esd] * 10,
        "zh": [esd] * 10,
        "de": [_scaled(c, small) for c in EMODB_COUNTS.values()],
        "fr": [_scaled(c, small) for c in CAFE_COUNTS.values()],
        "ur": [_scaled(c, small) for c in URDU_COUNTS.values()],
    }
    order = {emo: i for i, emo in enumerate(EMOTIONS)}
    return {
        lang: [
            dict(sorted(c.items(), key=lambda kv: order[kv[0]])) for c in tables[lang]
        ]
        for lang in languages
    }


@dataclass(frozen=True)
class Prosody:
    """A point or a change in prosody space (the cues the generator controls).

    Arguments
    ---------
    rate : float
        Speaking-rate factor (1 = unchanged words per minute).
    pitch_st : float
        Mean pitch shift in semitones.
    range : float
        Pitch-range factor (1 = the voice's own range).
    gain_db : float
        Loudness change in dB.
    pause_ms : float
        Extra pause between words, in milliseconds.

    Example
    -------
    >>> Prosody(rate=1.2, gain_db=6.0).pitch_st
    0.0
    """

    rate: float = 1.0
    pitch_st: float = 0.0
    range: float = 1.0
    gain_db: float = 0.0
    pause_ms: float = 0.0


#: Prosodic change of each emotion relative to neutral, per language.
#:
#: Design (a synthetic benchmark, not an empirical claim about these
#: languages): magnitudes are those reported for acted speech (e.g. Banse &
#: Scherer 1996; Juslin & Laukka 2003): anger and joy a few semitones higher,
#: up to ~8 dB louder and 10-35 % faster; sadness 10-25 % slower, lower,
#: flatter and softer. *Arousal* cues are shared by every language: happy and
#: angry are louder and (mostly) higher, sad is slower, softer and lower. The
#: cue that separates the two high-arousal classes, and the one that separates
#: sad from neutral, is language-specific, so a classifier trained on one
#: language transfers arousal but confuses angry/happy and neutral/sad:
#:
#:   en: angry = much louder;  happy = higher, wider;   sad = slow, pauses, flat.
#:   zh: angry = faster;       happy = higher, louder;  sad = slow, long pauses
#:       (a tone language: pitch range barely changes).
#:   de: angry = much faster;  happy = wide range;      sad = large pitch drop.
#:   fr: angry = high pitch;   happy = faster, wide;    sad = very flat range.
#:   ur: angry = high, faster; happy = very wide range; sad = much softer.
PROSODY_PROFILES: dict[str, dict[str, Prosody]] = {
    "en": {
        "neutral": Prosody(),
        "happy": Prosody(rate=1.08, pitch_st=4.0, range=1.6, gain_db=2.0),
        "angry": Prosody(rate=1.10, pitch_st=2.0, range=1.3, gain_db=8.0),
        "sad": Prosody(rate=0.78, pitch_st=-2.5, range=0.55, gain_db=-4.0, pause_ms=40),
    },
    "zh": {
        "neutral": Prosody(),
        "happy": Prosody(rate=1.00, pitch_st=3.0, range=1.15, gain_db=5.0),
        "angry": Prosody(rate=1.25, pitch_st=0.0, range=1.1, gain_db=4.0),
        "sad": Prosody(rate=0.75, pitch_st=-0.5, range=0.9, gain_db=-2.0, pause_ms=25),
    },
    "de": {
        "neutral": Prosody(),
        "happy": Prosody(rate=0.98, pitch_st=3.0, range=1.6, gain_db=2.0),
        "angry": Prosody(rate=1.35, pitch_st=1.5, range=1.15, gain_db=3.0),
        "sad": Prosody(rate=0.90, pitch_st=-5.0, range=0.7, gain_db=-1.0, pause_ms=10),
    },
    "fr": {
        "neutral": Prosody(),
        "happy": Prosody(rate=1.20, pitch_st=1.5, range=1.7, gain_db=2.0),
        "angry": Prosody(rate=0.95, pitch_st=5.0, range=1.3, gain_db=4.0),
        "sad": Prosody(rate=0.92, pitch_st=-1.5, range=0.4, gain_db=-2.0, pause_ms=20),
    },
    "ur": {
        "neutral": Prosody(),
        "happy": Prosody(rate=1.00, pitch_st=3.0, range=1.8, gain_db=1.0),
        "angry": Prosody(rate=1.20, pitch_st=4.5, range=1.2, gain_db=3.0),
        "sad": Prosody(rate=0.88, pitch_st=-2.0, range=0.8, gain_db=-6.0, pause_ms=20),
    },
}

#: Standard deviations of the per-speaker offsets (rate and range: of the
#: log factor; gain: the recording level of the speaker's session).
SPEAKER_SPREAD = Prosody(rate=0.06, pitch_st=1.5, range=0.10, gain_db=1.5, pause_ms=5)

#: Standard deviations of the per-utterance deviations (same units).
UTTERANCE_SPREAD = Prosody(rate=0.06, pitch_st=1.0, range=0.12, gain_db=1.5, pause_ms=8)

#: Range of the per-utterance emotional intensity (multiplies the profile).
INTENSITY_RANGE = (0.5, 1.2)

#: eSpeak NG speaking rate (words per minute) at rate factor 1.
BASE_WPM = 165

#: Level of the synthesised speech at gain 0 dB, relative to eSpeak's output
#: at volume 100 (leaves headroom for loud utterances).
REFERENCE_GAIN_DB = -9.0

#: Peak limit of the written audio (full scale = 1); louder utterances are
#: scaled down as a recording limiter would (counted in the report).
PEAK_LIMIT = 0.98

#: Leading and trailing silence, seconds (uniform, independent of emotion).
PAD_RANGE_S = (0.05, 0.3)


class EspeakUnavailableError(RuntimeError):
    """eSpeak NG (library or voice data) cannot be loaded or used."""


# ---------------------------------------------------------------------------
# eSpeak NG through ctypes
# ---------------------------------------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

_WHY = "The demo corpus is synthesised with eSpeak NG, which could not be loaded."
_FIX = (
    "Fix: install the Python package 'espeakng-loader' (a dependency of this "
    "project: pip install -e . from the repository root, or pip install "
    "espeakng-loader), or point the environment variables ZSSER_ESPEAK_LIBRARY "
    "and ZSSER_ESPEAK_DATA to an eSpeak NG shared library and its "
    "espeak-ng-data folder (e.g. /usr/lib/x86_64-linux-gnu/libespeak-ng.so.1 "
    "and /usr/lib/x86_64-linux-gnu/espeak-ng-data)."
)


def espeak_paths() -> tuple[Path, Path]:
    """Locate the eSpeak NG shared library and its voice data folder.

    The environment variables ``ZSSER_ESPEAK_LIBRARY`` and
    ``ZSSER_ESPEAK_DATA`` take precedence; otherwise the copies shipped by the
    ``espeakng-loader`` package are used.

    Returns
    -------
    library : Path
        The shared library (``libespeak-ng.so`` or similar).
    data : Path
        The ``espeak-ng-data`` folder.

    Raises
    ------
    EspeakUnavailableError
        If neither is available, with what failed, why, and how to fix it.

    Example
    -------
    >>> library, data = espeak_paths()
    >>> data.name
    'espeak-ng-data'
    """
    library = os.environ.get("ZSSER_ESPEAK_LIBRARY")
    data = os.environ.get("ZSSER_ESPEAK_DATA")
    library_from = "ZSSER_ESPEAK_LIBRARY" if library else "espeakng-loader"
    data_from = "ZSSER_ESPEAK_DATA" if data else "espeakng-loader"
    if not library or not data:
        try:
            import espeakng_loader
        except ImportError as err:
            raise EspeakUnavailableError(
                f"{_WHY} The package 'espeakng-loader', which ships it, could not "
                f"be imported ({err}). {_FIX}"
            ) from None
        library = library or espeakng_loader.get_library_path()
        try:
            data = data or espeakng_loader.get_data_path()
        except RuntimeError as err:
            raise EspeakUnavailableError(
                f"{_WHY} Its voice data was not found ({err}). {_FIX}"
            ) from None
    library, data = Path(library), Path(data)
    if not library.is_file():
        raise EspeakUnavailableError(
            f"{_WHY} The shared library {library} (from {library_from}) does not "
            f"exist. {_FIX}"
        )
    if not (data / "phontab").is_file():
        raise EspeakUnavailableError(
            f"{_WHY} The voice data folder {data} (from {data_from}) does not "
            f"exist or has no 'phontab' file. {_FIX}"
        )
    return library, data


class EspeakSynth:
    """A private, freshly initialised eSpeak NG instance (22050 Hz int16).

    eSpeak NG keeps global state between utterances (pitch flutter phase,
    automatic gain control) and seeds its breath noise from the clock, so the
    output for a text depends on what was synthesised before, and when. This
    class loads its own copy of the shared library on :meth:`open` (seeding
    the noise) and unloads it on :meth:`close`: each open/close cycle starts
    from the same state, which makes a fixed sequence of utterances
    byte-reproducible. Two instances never share state.

    Arguments
    ---------
    workdir : path-like, optional
        Folder for the library copy (default: a temporary folder removed
        with the instance).

    Example
    -------
    >>> with EspeakSynth() as tts:
    ...     tts.set_voice("en+m3")
    ...     wav = tts.synth("Hello.", wpm=170, pitch=50, pitch_range=50)
    >>> wav.dtype, tts.sample_rate, 0.2 < len(wav) / tts.sample_rate < 1.0
    (dtype('int16'), 22050, True)
    """

    def __init__(self, workdir: PathLike | None = None) -> None:
        library, self.data_path = espeak_paths()
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="zsser-espeak-")
            workdir = self._tmp.name
        fd, name = tempfile.mkstemp(
            dir=workdir, prefix="private-", suffix=f"-{library.name}"
        )
        os.close(fd)
        self._copy = Path(name)
        shutil.copyfile(library, self._copy)
        self._lib: Any = None
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)
        self.sample_rate = 0
        self.version = ""

    def _collect(self, wav: Any, n_samples: int, events: Any) -> int:
        if n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0

    def open(self, seed: int = 0) -> EspeakSynth:
        """Load and initialise a fresh library instance.

        Arguments
        ---------
        seed : int
            Seed of eSpeak's internal noise generator (breathy voices).

        Returns
        -------
        EspeakSynth
            ``self``.

        Example
        -------
        >>> tts = EspeakSynth().open()
        >>> tts.version[:1].isdigit()
        True
        >>> tts.close()
        """
        if self._lib is not None:
            raise RuntimeError("EspeakSynth is already open.")
        try:
            lib = ctypes.CDLL(str(self._copy))
        except OSError as err:
            raise EspeakUnavailableError(
                f"{_WHY} Could not load the shared library {self._copy} (a "
                f"private copy of {espeak_paths()[0]}): {err}. {_FIX}"
            ) from None
        lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), 0
        )
        if rate <= 0:
            self._unload(lib)
            raise EspeakUnavailableError(
                f"{_WHY} espeak_Initialize failed (returned {rate}) with the "
                f"voice data folder {self.data_path}: the folder is incomplete or "
                f"from another eSpeak NG version. {_FIX}"
            )
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        self.sample_rate = rate
        self.version = (lib.espeak_Info(None) or b"").decode()
        # Breath noise (voices such as f2, f3, Alicia) comes from a random
        # generator that eSpeak seeds from the clock: seed it ourselves.
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
        else:  # pragma: no cover - eSpeak NG < 1.52 uses the C library's rand()
            ctypes.CDLL(None).srand(int(seed) & 0x7FFFFFFF)
        return self

    @staticmethod
    def _unload(lib: Any) -> None:
        import _ctypes

        handle = lib._handle
        close = getattr(_ctypes, "dlclose", None) or _ctypes.FreeLibrary
        close(handle)

    def close(self) -> None:
        """Terminate and unload the library instance (its state is dropped).

        Example
        -------
        >>> EspeakSynth().open().close()
        """
        if self._lib is None:
            return
        lib, self._lib = self._lib, None
        lib.espeak_Terminate()
        self._unload(lib)

    def __enter__(self) -> EspeakSynth:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def set_voice(self, name: str) -> None:
        """Select a voice, e.g. ``"de+f2"`` (language + variant).

        Arguments
        ---------
        name : str
            eSpeak NG voice name.

        Raises
        ------
        EspeakUnavailableError
            If the voice is not found in the voice data.

        Example
        -------
        >>> with EspeakSynth() as tts:
        ...     tts.set_voice("cmn+f2")
        """
        if self._lib is None:
            raise RuntimeError("Call open() (or use a with-block) first.")
        status = self._lib.espeak_SetVoiceByName(name.encode())
        if status != 0:
            raise EspeakUnavailableError(
                f"eSpeak NG has no voice {name!r} in {self.data_path} (error "
                f"{status}). The demo needs the languages "
                f"{sorted(set(ESPEAK_LANGUAGE.values()))} and the variants of "
                "SPEAKER_VARIANTS; the data shipped by espeakng-loader has them."
            )

    def synth(
        self,
        text: str,
        wpm: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        word_gap: int = 0,
        volume: int = 100,
    ) -> np.ndarray:
        """Synthesise one text with the current voice.

        Every parameter is set for each call (eSpeak keeps them between calls).

        Arguments
        ---------
        text : str
            UTF-8 text.
        wpm : int
            Speaking rate in words per minute (80 to 450).
        pitch : int
            Base pitch, 0 to 100 (50 = the voice's own; +50 = one octave up).
        pitch_range : int
            Pitch range, 0 to 100 (50 = the voice's own, 0 = monotone).
        word_gap : int
            Extra pause between words, in units of 10 ms.
        volume : int
            Amplitude, 0 to 200 (above ~120 eSpeak's limiter changes the sound).

        Returns
        -------
        numpy.ndarray
            int16 samples at ``self.sample_rate``.

        Example
        -------
        >>> with EspeakSynth() as tts:
        ...     tts.set_voice("fr+m5")
        ...     slow = tts.synth("Bonjour à tous.", wpm=100)
        ...     fast = tts.synth("Bonjour à tous.", wpm=300)
        >>> len(slow) > len(fast)
        True
        """
        if self._lib is None:
            raise RuntimeError("Call open() (or use a with-block) first.")
        lib = self._lib
        for parameter, value in (
            (_RATE, wpm),
            (_PITCH, pitch),
            (_RANGE, pitch_range),
            (_WORDGAP, word_gap),
            (_VOLUME, volume),
        ):
            lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        status = lib.espeak_Synth(data, len(data), 0, 0, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with error {status} on {text!r}.")
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._chunks)


# ---------------------------------------------------------------------------
# Prosody sampling
# ---------------------------------------------------------------------------


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    """A generator seeded by ``seed`` and stable keys (independent of order)."""
    words = [int(seed) & 0xFFFFFFFF]
    for key in keys:
        words.append(zlib.crc32(key.encode()) if isinstance(key, str) else int(key))
    return np.random.default_rng(np.random.SeedSequence(words))


def speaker_offsets(seed: int, lang: str, speaker: int) -> Prosody:
    """Draw the prosodic offset of one speaker (pitch, rate, level, ...).

    Arguments
    ---------
    seed : int
        Corpus seed.
    lang : str
        Language code.
    speaker : int
        Speaker index within the language (0-based).

    Returns
    -------
    Prosody
        Multiplicative ``rate`` and ``range``, additive others.

    Example
    -------
    >>> speaker_offsets(1234, "en", 0) == speaker_offsets(1234, "en", 0)
    True
    >>> speaker_offsets(1234, "en", 0) == speaker_offsets(1234, "en", 1)
    False
    """
    rng = _rng(seed, "speaker", lang, speaker)
    z = rng.standard_normal(5)
    s = SPEAKER_SPREAD
    return Prosody(
        rate=math.exp(s.rate * z[0]),
        pitch_st=s.pitch_st * z[1],
        range=math.exp(s.range * z[2]),
        gain_db=s.gain_db * z[3],
        pause_ms=s.pause_ms * z[4],
    )


def utterance_prosody(
    lang: str, emotion: str, speaker: Prosody, rng: np.random.Generator
) -> tuple[Prosody, float]:
    """Draw the prosody of one utterance: speaker + intensity x emotion + noise.

    Rate and range combine as log factors, the other cues add up.

    Arguments
    ---------
    lang : str
        Language code (selects the row of ``PROSODY_PROFILES``).
    emotion : str
        One of ``EMOTIONS``.
    speaker : Prosody
        The speaker's offsets (:func:`speaker_offsets`).
    rng : numpy.random.Generator
        Source of the utterance's randomness.

    Returns
    -------
    prosody : Prosody
        Absolute factors and shifts for this utterance.
    intensity : float
        The emotional intensity drawn (0 for neutral).

    Example
    -------
    >>> import numpy as np
    >>> sad, _ = utterance_prosody("en", "sad", Prosody(), np.random.default_rng(0))
    >>> angry, _ = utterance_prosody("en", "angry", Prosody(), np.random.default_rng(0))
    >>> bool(sad.rate < angry.rate and sad.gain_db < angry.gain_db)
    True
    """
    profile = PROSODY_PROFILES[lang][emotion]
    intensity = 0.0 if emotion == "neutral" else float(rng.uniform(*INTENSITY_RANGE))
    z = rng.standard_normal(5)
    u = UTTERANCE_SPREAD
    prosody = Prosody(
        rate=math.exp(
            math.log(speaker.rate) + intensity * math.log(profile.rate) + u.rate * z[0]
        ),
        pitch_st=speaker.pitch_st + intensity * profile.pitch_st + u.pitch_st * z[1],
        range=math.exp(
            math.log(speaker.range)
            + intensity * math.log(profile.range)
            + u.range * z[2]
        ),
        gain_db=speaker.gain_db + intensity * profile.gain_db + u.gain_db * z[3],
        pause_ms=max(
            0.0, speaker.pause_ms + intensity * profile.pause_ms + u.pause_ms * z[4]
        ),
    )
    return prosody, intensity


def espeak_settings(prosody: Prosody) -> dict[str, int]:
    """Convert a prosody point into eSpeak NG parameters (clipped to range).

    Arguments
    ---------
    prosody : Prosody
        Absolute factors and shifts (:func:`utterance_prosody`).

    Returns
    -------
    dict
        ``wpm``, ``pitch``, ``pitch_range`` and ``word_gap`` for
        :meth:`EspeakSynth.synth`.

    Example
    -------
    >>> espeak_settings(Prosody(rate=2.0, pitch_st=12.0, range=0.5, pause_ms=20))
    {'wpm': 330, 'pitch': 100, 'pitch_range': 25, 'word_gap': 2}
    """
    return {
        "wpm": int(np.clip(round(BASE_WPM * prosody.rate), 80, 450)),
        # eSpeak's pitch parameter is exponential: 50 units per octave.
        "pitch": int(np.clip(round(50 + prosody.pitch_st * 50 / 12), 0, 100)),
        "pitch_range": int(np.clip(round(50 * prosody.range), 0, 100)),
        "word_gap": int(np.clip(round(prosody.pause_ms / 10), 0, 50)),
    }


# ---------------------------------------------------------------------------
# Signal processing
# ---------------------------------------------------------------------------


def render_audio(
    samples: np.ndarray,
    source_rate: int,
    gain_db: float,
    rng: np.random.Generator,
    noise_snr_db: float | None = None,
) -> tuple[np.ndarray, bool]:
    """Turn eSpeak output into the stored signal (16 kHz int16).

    Resample to ``SAMPLE_RATE``, apply the loudness gain, add random leading
    and trailing silence, add white noise at ``noise_snr_db`` (SNR measured
    over the speech, not the added silence) and limit peaks to
    ``PEAK_LIMIT``.

    Arguments
    ---------
    samples : numpy.ndarray
        int16 samples from eSpeak.
    source_rate : int
        Their sample rate (22050).
    gain_db : float
        Loudness change relative to the reference level.
    rng : numpy.random.Generator
        Source of the silence lengths and the noise.
    noise_snr_db : float, optional
        Signal-to-noise ratio of additive white noise; None for no noise.

    Returns
    -------
    audio : numpy.ndarray
        int16 samples at ``SAMPLE_RATE``.
    limited : bool
        Whether the peak limiter reduced the level.

    Example
    -------
    >>> import numpy as np
    >>> tone = (8000 * np.sin(np.arange(22050) / 10)).astype(np.int16)
    >>> out, limited = render_audio(tone, 22050, 0.0, np.random.default_rng(0))
    >>> out.dtype, 1.1 < len(out) / 16000 < 1.6, limited
    (dtype('int16'), True, False)
    """
    gcd = math.gcd(SAMPLE_RATE, source_rate)
    speech = resample_poly(
        samples.astype(np.float64) / 32768.0, SAMPLE_RATE // gcd, source_rate // gcd
    )
    speech *= 10.0 ** ((REFERENCE_GAIN_DB + gain_db) / 20.0)
    lead, trail = (
        int(round(rng.uniform(*PAD_RANGE_S) * SAMPLE_RATE)) for _ in range(2)
    )
    audio = np.concatenate([np.zeros(lead), speech, np.zeros(trail)])
    if noise_snr_db is not None:
        power = float(np.mean(speech**2)) if len(speech) else 0.0
        noise_power = power / 10.0 ** (noise_snr_db / 10.0)
        audio = audio + rng.standard_normal(len(audio)) * math.sqrt(noise_power)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    limited = peak > PEAK_LIMIT
    if limited:
        audio *= PEAK_LIMIT / peak
    return np.round(audio * 32767.0).astype(np.int16), limited


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
    save_folder: Path, counts: Mapping[str, Sequence[Mapping[str, int]]]
) -> list[dict[str, Any]]:
    """Every utterance to generate, grouped by speaker, in synthesis order."""
    items = []
    for lang, speakers in counts.items():
        n_sentences = len(SENTENCES[lang])
        for s, per_emotion in enumerate(speakers):
            spk_id = f"demo_{lang}_s{s + 1}"
            folder = save_folder / "demo_wavs" / lang / spk_id
            for e, emotion in enumerate(EMOTIONS):
                for k in range(per_emotion.get(emotion, 0)):
                    uid = f"{spk_id}_{emotion}_{k + 1:03d}"
                    item = {"ID": uid, "lang": lang, "speaker": s, "spk_id": spk_id}
                    item.update(
                        emo=emotion,
                        # Every sentence equally often in every emotion.
                        sentence=(k + s + e) % n_sentences,
                        wav=folder / f"{uid}.wav",
                    )
                    items.append(item)
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
    sizes = ", ".join(
        f"{lang} {len(spk)} speakers / {sum(sum(c.values()) for c in spk)} utterances"
        for lang, spk in options["speaker_counts"].items()
    )
    return sizes + " (eSpeak voice variants as speakers)"


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
    of the real corpora (3,431 utterances, see ``PROFILES`` and
    :func:`speaker_counts`); ``balanced`` is 5 languages x 5 speakers x 4
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
        "noise_snr_db": noise_snr_db,
        "seed": int(seed),
        "save_folder": str(save_folder),
    }
    plan = _plan(save_folder, counts)
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
        "sentences": {lang: list(SENTENCES[lang]) for lang in languages},
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
            samples = synth.synth(
                SENTENCES[lang][item["sentence"]], **espeak_settings(prosody)
            )
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
# Separability check (honesty about how easy the demo task is)
# ---------------------------------------------------------------------------

FEATURE_NAMES = (
    "log_energy_mean",
    "log_energy_std",
    "speech_duration",
    "pause_ratio",
    "log2_f0_median",
    "log2_f0_iqr",
)


def prosody_features(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Simple per-utterance prosodic features (see ``FEATURE_NAMES``).

    Frame energy (40 ms frames, 10 ms hop) in dB over the active frames
    (within 35 dB of the loudest), the duration of the active span, the
    fraction of pauses inside it, and an autocorrelation pitch estimate
    (60-500 Hz) summarised by the median and the interquartile range of its
    log2 over voiced frames (robust to octave errors).

    Arguments
    ---------
    audio : numpy.ndarray
        Mono samples (float in [-1, 1], or int16).
    sample_rate : int
        Their sample rate.

    Returns
    -------
    numpy.ndarray
        float64 vector of ``len(FEATURE_NAMES)`` features.

    Example
    -------
    >>> import numpy as np
    >>> t = np.arange(16000) / 16000
    >>> f = prosody_features(0.1 * np.sin(2 * np.pi * 200 * t))
    >>> round(2 ** f[4]), round(float(f[2]), 1)
    (200, 1.0)
    """
    x = np.asarray(audio, dtype=np.float64)
    if np.asarray(audio).dtype.kind == "i":
        x = x / 32768.0
    frame, hop = int(0.040 * sample_rate), int(0.010 * sample_rate)
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop]
    energy = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    active = energy > energy.max() - 35
    idx = np.flatnonzero(active)
    span = active[idx[0] : idx[-1] + 1]
    lo, hi = int(sample_rate / 500), int(sample_rate / 60)
    n_fft = 1 << int(math.ceil(math.log2(frame + hi + 2)))  # no circular wrap
    window = np.hanning(frame)
    voiced_frames = frames[active]
    windowed = (voiced_frames - voiced_frames.mean(axis=1, keepdims=True)) * window
    acf = np.fft.irfft(np.abs(np.fft.rfft(windowed, n=n_fft)) ** 2)[:, : hi + 2]
    # Divide by the window's own autocorrelation, which would bias the peak
    # towards short lags (Boersma, 1993).
    window_acf = np.fft.irfft(np.abs(np.fft.rfft(window, n=n_fft)) ** 2)[: hi + 2]
    acf = acf / (acf[:, :1] + 1e-12) / (window_acf / window_acf[0])
    lags = lo + np.argmax(acf[:, lo:hi], axis=1)
    rows = np.arange(len(lags))
    voiced = acf[rows, lags] > 0.6
    # Parabolic interpolation of the autocorrelation peak (sub-sample lag).
    left, mid, right = acf[rows, lags - 1], acf[rows, lags], acf[rows, lags + 1]
    curvature = left - 2 * mid + right
    shift = np.where(curvature < 0, 0.5 * (left - right) / (curvature - 1e-12), 0.0)
    period = lags + np.clip(shift, -0.5, 0.5)
    log_f0 = np.log2(sample_rate / period[voiced]) if voiced.any() else np.zeros(1)
    q25, q50, q75 = np.percentile(log_f0, [25, 50, 75])
    return np.array(
        [
            energy[active].mean(),
            energy[active].std(),
            len(span) * hop / sample_rate,
            1.0 - span.mean(),
            q50,
            q75 - q25,
        ]
    )


def _accuracies(
    feats: np.ndarray,
    labels: np.ndarray,
    langs: np.ndarray,
    speakers: np.ndarray,
    seed: int,
) -> dict[str, Any]:
    """Within-language (leave-one-speaker-out) and cross-language accuracies."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit(mask: np.ndarray) -> Any:
        model = make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)
        )
        return model.fit(feats[mask], labels[mask])

    order = [lang for lang in LANGUAGES if lang in set(langs)]
    within: dict[str, float] = {}
    for lang in order:
        in_lang = langs == lang
        correct = 0
        for speaker in np.unique(speakers[in_lang]):
            test = in_lang & (speakers == speaker)
            train = in_lang & (speakers != speaker)
            if len(np.unique(labels[train])) < 2:
                raise ValueError(
                    f"separability_check needs at least 2 speakers per language "
                    f"with 2 emotions; {lang} has too few."
                )
            correct += int((fit(train).predict(feats[test]) == labels[test]).sum())
        within[lang] = correct / int(in_lang.sum())
    cross: dict[str, dict[str, float]] = {}
    for source in order:
        model = fit(langs == source)
        cross[source] = {
            target: float(
                np.mean(
                    model.predict(feats[langs == target]) == labels[langs == target]
                )
            )
            for target in order
            if target != source
        }
    pairs = [acc for row in cross.values() for acc in row.values()]
    return {
        "within": within,
        "cross": cross,
        "within_mean": float(np.mean(list(within.values()))),
        "cross_mean": float(np.mean(pairs)) if pairs else float("nan"),
    }


def separability_check(
    manifest: PathLike, languages: Sequence[str] | None = None, seed: int = 0
) -> dict[str, Any]:
    """How separable the demo emotions are with simple prosodic features.

    A standardised logistic regression on :func:`prosody_features`, with the
    raw features and with features z-normalised per speaker (a common SER
    step that removes e.g. the octave between female and male voices; it
    uses unlabelled statistics of each test speaker). For each: within-language
    accuracy by leave-one-speaker-out cross-validation, and cross-language
    accuracy (train on every utterance of language A, test on every utterance
    of language B). Classes are balanced, so accuracy equals unweighted
    average recall; chance is 1 / number of emotions.

    Arguments
    ---------
    manifest : path-like
        The demo manifest (``demo.csv``); needs >= 2 speakers per language.
    languages : sequence of str, optional
        Languages to evaluate (default: all in the manifest).
    seed : int
        Seed of the classifier.

    Returns
    -------
    dict
        ``raw`` and ``speaker_normalized``, each with ``within`` {lang:
        accuracy}, ``cross`` {source: {target: accuracy}}, ``within_mean``
        and ``cross_mean``; plus ``chance``, ``n_utterances``, ``features``.

    Example
    -------
    >>> import tempfile
    >>> csv = prepare_demo(tempfile.mkdtemp(), n_per_class_per_speaker=2,
    ...                    languages=["en", "de"], n_speakers=2, progress=False)
    >>> result = separability_check(csv)
    >>> raw, norm = result["raw"], result["speaker_normalized"]
    >>> sorted(raw["within"]), list(norm["cross"]["en"])
    (['de', 'en'], ['de'])
    """
    df = read_manifest(manifest)
    if languages is not None:
        df = df[df["lang"].isin(list(languages))]
    feats = np.stack(
        [prosody_features(sf.read(p, dtype="int16")[0]) for p in df["wav"]]
    )
    labels, langs = df["emo"].to_numpy(), df["lang"].to_numpy()
    speakers = df["spk_id"].to_numpy()
    normalized = feats.copy()
    for speaker in np.unique(speakers):
        rows = speakers == speaker
        mean, std = feats[rows].mean(axis=0), feats[rows].std(axis=0)
        normalized[rows] = (feats[rows] - mean) / (std + 1e-9)
    return {
        "raw": _accuracies(feats, labels, langs, speakers, seed),
        "speaker_normalized": _accuracies(normalized, labels, langs, speakers, seed),
        "chance": 1.0 / len(EMOTIONS),
        "n_utterances": int(len(df)),
        "features": list(FEATURE_NAMES),
    }


def format_separability(result: Mapping[str, Any]) -> str:
    r"""Format :func:`separability_check` results as small text tables.

    Arguments
    ---------
    result : mapping
        The output of :func:`separability_check`.

    Returns
    -------
    str
        For raw and speaker-normalised features: the matrix of accuracies
        (rows: training language, columns: test language; diagonal in
        brackets: within-language, leave-one-speaker-out) and the means.

    Example
    -------
    >>> acc = {"within": {"en": 0.9, "de": 0.8},
    ...        "cross": {"en": {"de": 0.5}, "de": {"en": 0.6}},
    ...        "within_mean": 0.85, "cross_mean": 0.55}
    >>> res = {"raw": acc, "speaker_normalized": acc, "chance": 0.25}
    >>> print(format_separability(res).split("\n\n")[1])
    raw features: within-language mean 0.85, cross-language mean 0.55
    train \ test      en     de
    en           [0.90]  0.50
    de            0.60  [0.80]
    """
    lines = [
        f"Emotion accuracy, logistic regression on {len(FEATURE_NAMES)} prosodic "
        "features",
        "(rule-based synthetic prosody, not acted emotion; chance "
        f"{result['chance']:.2f})",
    ]
    for key, title in (
        ("raw", "raw features"),
        ("speaker_normalized", "features z-normalised per speaker"),
    ):
        acc = result[key]
        langs = list(acc["within"])
        lines += [
            "",
            f"{title}: within-language mean {acc['within_mean']:.2f}, "
            f"cross-language mean {acc['cross_mean']:.2f}",
            "train \\ test " + "".join(f"{lang:>7}" for lang in langs),
        ]
        for source in langs:
            cells = [
                f"[{acc['within'][source]:.2f}]"
                if target == source
                else f"{acc['cross'][source][target]:.2f} "
                for target in langs
            ]
            lines.append(f"{source:<12}" + "".join(f"{c:>7}" for c in cells))
    return "\n".join(lines)


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
