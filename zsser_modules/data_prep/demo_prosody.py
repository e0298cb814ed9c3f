"""Rule-based emotional prosody of the demo corpus, and the audio it renders.

:data:`PROSODY_PROFILES` gives each emotion's change relative to neutral per
language; :func:`speaker_offsets` and :func:`utterance_prosody` draw the
seeded per-speaker and per-utterance variation; :func:`espeak_settings`
turns a prosody into eSpeak parameters, and :func:`render_audio` turns
eSpeak's output into the written 16 kHz audio (level, silence, noise).

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

#: Sample rate of the written wavs.
SAMPLE_RATE = 16000


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
