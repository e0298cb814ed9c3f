"""How easy the demo task is: a prosodic-feature classifier on the corpus.

:func:`separability_check` fits a standardised logistic regression on
:func:`prosody_features` (within each language, and across languages), so
results on the demo corpus can be read against what simple prosody alone
achieves; :func:`format_separability` prints them.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import soundfile as sf

from zsser_modules.data_prep.demo_prosody import SAMPLE_RATE
from zsser_modules.data_prep.manifest import PathLike, read_manifest
from zsser_modules.labels import EMOTIONS, LANGUAGES
from zsser_modules.optional import extra

#: What needs scikit-learn here, for the missing-extra message.
_CHECK = "the demo corpus's separability check"

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
    with extra("demo", _CHECK):
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
    >>> from zsser_modules.data_prep.demo import prepare_demo
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
