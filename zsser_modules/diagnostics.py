"""Linear probes: what an utterance representation says about speaker,
language and emotion.

The paper claims that SupCon aligns emotions across languages and that the
speaker adversary removes speaker information. These probes measure both,
on any ``[N, D]`` representation (the learned embedding of a run, or the raw
frozen encoder features it was trained on):

- **speaker probe**: predict the speaker; trained and tested on disjoint
  utterances of the *same* speakers (a stratified split within speakers).
  Chance: the share of the most frequent speaker in the test part.
- **language probe**: predict the language; cross-validated with speakers
  grouped (no speaker in both the training and the test fold), so it
  measures language, not voices. Chance: the share of the most frequent
  language.
- **cross-lingual emotion transfer**: an emotion probe trained on all the
  utterances of one language and tested on each other language; the UAR
  (balanced accuracy) averaged over the ordered pairs. With it, the
  within-language emotion UAR (speaker-grouped cross-validation inside each
  language, averaged) as the reference it falls from. Chance: 1 / classes.

Which utterances (:func:`diagnostic_sets`): a run's probes never see an
utterance it trained on. Its ``results.json["diagnostics"]`` probes the
*validation* utterances of the training languages (under the speaker
protocol, held-out speakers; under the paper protocol, the dev splits, whose
speakers may also be in training: ``n_speakers_seen_in_training`` says how
many); ``results.json["diagnostics_post_hoc"]`` (``"label": "post hoc"``)
adds the target language's *test* utterances, probed after testing, with
the speaker probe on the target's test speakers. The raw-feature probes run
on the same utterances as the embedding's, so raw -> trained compares like
with like.

Every probe is a standardised multinomial logistic regression
(scikit-learn ``StandardScaler`` + ``LogisticRegression``), with splits
seeded, so a probe on a few thousand 256-dimensional vectors takes about a
second. A probe that cannot be estimated (one language, one speaker per
language, a class missing) is left out and the reason is listed in
``notes``.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from zsser_modules.data_prep.speakers import is_pseudo_speaker
from zsser_modules.optional import extra

#: BLAS threads of the probes. Their matrices are small: on a shared CPU,
#: more threads made a fit up to 9x slower (oversubscription), not faster.
PROBE_THREADS = 1
#: Cross-validation folds at most (fewer when there are fewer groups).
MAX_FOLDS = 5
#: Share of each speaker's utterances held out by the speaker probe.
SPEAKER_TEST_SIZE = 0.3
#: What each block of diagnostics probes (``results.json``: ``utterances``).
HELD_OUT_UTTERANCES = (
    "validation utterances of the training languages (never trained on)"
)
POST_HOC_UTTERANCES = (
    "validation utterances of the training languages and the target's test "
    "utterances (speaker probe: the target's test speakers), probed after testing"
)
#: ``label`` of the post hoc block.
POST_HOC_LABEL = "post hoc"

#: What needs scikit-learn here, for the missing-extra message.
_PROBES = "the representation probes (diagnostics)"


def _per_speaker(frame: pd.DataFrame, per_speaker: int, seed: int) -> pd.DataFrame:
    """At most ``per_speaker`` rows of each speaker, seeded, sorted by ID."""
    frame = frame.sample(frac=1.0, random_state=seed)
    frame = frame.groupby("spk_id", sort=False).head(per_speaker)
    return frame.sort_values("ID", kind="stable").reset_index(drop=True)


def diagnostic_sets(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    test: pd.DataFrame,
    per_speaker: int,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """The utterances a run's probes use: none of them trained the model.

    Arguments
    ---------
    train : pandas.DataFrame
        The run's training manifest (``ID`` read: never probed).
    valid : pandas.DataFrame
        Its validation manifest (``ID``, ``spk_id``, ``lang``, ``emo``,
        ``spk_confounded``).
    test : pandas.DataFrame
        Its test manifest (same columns).
    per_speaker : int
        Utterances per speaker at most (seeded sample).
    seed : int
        Seed of the sample.

    Returns
    -------
    dict
        ``held_out``: the valid utterances; ``post_hoc``: the same plus the
        test utterances. Each has the manifest's columns plus ``split`` and
        ``probe_speaker`` (the speaker probe's rows: held_out, the valid
        speakers; post_hoc, the test speakers; never a speaker confounded with
        emotion, whose identity is its emotion, nor a pseudo-speaker such as
        MELD's "All"). An ID of ``train`` is never
        in either, even if a manifest repeated it.

    Example
    -------
    >>> def rows(split, n):
    ...     return pd.DataFrame({"ID": [f"{split}{i}" for i in range(n)],
    ...         "spk_id": [f"{split}_s{i % 2}" for i in range(n)], "lang": "en",
    ...         "emo": ["sad", "happy"] * (n // 2), "spk_confounded": 0})
    >>> train, valid, test = rows("tr", 8), rows("va", 6), rows("te", 4)
    >>> valid.loc[0, "ID"] = "tr0"  # a training utterance is never probed
    >>> sets = diagnostic_sets(train, valid, test, per_speaker=2)
    >>> sorted(sets["held_out"]["split"].unique()), len(sets["held_out"])
    (['valid'], 4)
    >>> "tr0" in set(sets["post_hoc"]["ID"]), len(sets["post_hoc"])
    (False, 8)
    >>> sets["post_hoc"].groupby("split")["probe_speaker"].all().to_dict()
    {'test': True, 'valid': False}
    """
    trained = set(train["ID"])
    held = _per_speaker(valid[~valid["ID"].isin(trained)], per_speaker, seed)
    tested = _per_speaker(test[~test["ID"].isin(trained)], per_speaker, seed)
    clean = {
        name: (frame["spk_confounded"].astype(int).to_numpy() == 0)
        & ~frame["spk_id"].map(is_pseudo_speaker).to_numpy(dtype=bool)
        for name, frame in (("valid", held), ("test", tested))
    }
    held = held.assign(split="valid", probe_speaker=clean["valid"])
    post_hoc = pd.concat(
        [
            held.assign(probe_speaker=False),
            tested.assign(split="test", probe_speaker=clean["test"]),
        ],
        ignore_index=True,
    )
    return {"held_out": held, "post_hoc": post_hoc}


def make_probe(seed: int = 0):
    """The linear probe: standardisation + multinomial logistic regression.

    Arguments
    ---------
    seed : int
        ``random_state`` of the regression (its solver is deterministic; the
        seed is recorded for completeness).

    Returns
    -------
    sklearn.pipeline.Pipeline
        An unfitted classifier.

    Example
    -------
    >>> make_probe().steps[-1][0]
    'logisticregression'
    """
    with extra("probe", _PROBES):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)
    )


def _majority(labels: np.ndarray) -> float:
    """Share of the most frequent label (accuracy of always guessing it)."""
    _, counts = np.unique(labels, return_counts=True)
    return float(counts.max() / counts.sum())


def speaker_probe(
    features: np.ndarray, speakers: Sequence[str], seed: int = 0
) -> dict[str, float] | str:
    """Speaker accuracy of a linear probe on utterances held out per speaker.

    Arguments
    ---------
    features : numpy.ndarray
        ``[N, D]`` representations.
    speakers : sequence of str
        ``N`` speaker labels.
    seed : int
        Seed of the split.

    Returns
    -------
    dict or str
        ``{"acc", "chance", "n_speakers"}``; a reason (str) when it cannot
        be estimated (fewer than 2 speakers with 2 utterances each).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> speakers = np.repeat(["a", "b", "c"], 20)
    >>> centres = {"a": 0.0, "b": 5.0, "c": 10.0}
    >>> x = np.array([[centres[s]] for s in speakers]) + rng.normal(size=(60, 1))
    >>> speaker_probe(x, speakers)["acc"]
    1.0
    """
    with extra("probe", _PROBES):
        from sklearn.model_selection import train_test_split

    speakers = np.asarray(speakers)
    names, counts = np.unique(speakers, return_counts=True)
    kept = np.isin(speakers, names[counts >= 2])
    if len(names[counts >= 2]) < 2:
        return "needs 2 speakers with 2 utterances each"
    x, y = features[kept], speakers[kept]
    n_test = max(int(round(SPEAKER_TEST_SIZE * len(y))), len(np.unique(y)))
    if len(y) - n_test < len(np.unique(y)):
        return "too few utterances per speaker to split within speakers"
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=n_test, stratify=y, random_state=seed
    )
    probe = make_probe(seed).fit(x_train, y_train)
    return {
        "acc": float(np.mean(probe.predict(x_test) == y_test)),
        "chance": _majority(y_test),
        "n_speakers": int(len(np.unique(y))),
    }


def _grouped_predictions(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray, seed: int
) -> np.ndarray | str:
    """Out-of-fold predictions of a probe, folds grouped (and stratified)."""
    with extra("probe", _PROBES):
        from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    per_class = [len(np.unique(groups[labels == c])) for c in np.unique(labels)]
    folds = min(MAX_FOLDS, min(per_class))
    if folds < 2:
        return "needs 2 speakers of every class"
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(
        make_probe(seed), features, labels, groups=groups, cv=splitter
    )


def language_probe(
    features: np.ndarray,
    languages: Sequence[str],
    speakers: Sequence[str],
    seed: int = 0,
) -> dict[str, float] | str:
    """Language accuracy of a linear probe, cross-validated by speaker groups.

    Arguments
    ---------
    features : numpy.ndarray
        ``[N, D]`` representations.
    languages : sequence of str
        ``N`` language codes.
    speakers : sequence of str
        ``N`` speaker labels (the groups: no speaker is in both the training
        and the test fold).
    seed : int
        Seed of the folds.

    Returns
    -------
    dict or str
        ``{"acc", "chance", "n_languages"}``, or the reason it cannot be
        estimated (one language, or a language with a single speaker).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> langs = np.repeat(["en", "de"], 40)
    >>> spks = np.repeat([f"s{i}" for i in range(8)], 10)
    >>> x = (langs == "de")[:, None] * 4.0 + rng.normal(size=(80, 2))
    >>> language_probe(x, langs, spks)["acc"]
    1.0
    >>> language_probe(x, ["en"] * 80, spks)
    'needs 2 languages'
    """
    languages, speakers = np.asarray(languages), np.asarray(speakers)
    if len(np.unique(languages)) < 2:
        return "needs 2 languages"
    predicted = _grouped_predictions(features, languages, speakers, seed)
    if isinstance(predicted, str):
        return predicted.replace("class", "language")
    return {
        "acc": float(np.mean(predicted == languages)),
        "chance": _majority(languages),
        "n_languages": int(len(np.unique(languages))),
    }


def emotion_uar_cv(
    features: np.ndarray,
    emotions: Sequence[str],
    speakers: Sequence[str],
    seed: int = 0,
) -> float | str:
    """Emotion UAR of a probe, cross-validated with speakers grouped.

    Arguments
    ---------
    features : numpy.ndarray
        ``[N, D]`` representations.
    emotions : sequence of str
        ``N`` emotion labels.
    speakers : sequence of str
        ``N`` speaker labels (the groups).
    seed : int
        Seed of the folds.

    Returns
    -------
    float or str
        UAR (balanced accuracy) of the out-of-fold predictions, or the
        reason it cannot be estimated.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> emos = np.tile(["sad", "angry"], 40)
    >>> spks = np.repeat([f"s{i}" for i in range(4)], 20)
    >>> x = (emos == "angry")[:, None] * 4.0 + rng.normal(size=(80, 2))
    >>> emotion_uar_cv(x, emos, spks)
    1.0
    """
    with extra("probe", _PROBES):
        from sklearn.metrics import balanced_accuracy_score

    emotions, speakers = np.asarray(emotions), np.asarray(speakers)
    if len(np.unique(emotions)) < 2:
        return "needs 2 emotions"
    predicted = _grouped_predictions(features, emotions, speakers, seed)
    if isinstance(predicted, str):
        return predicted.replace("class", "emotion")
    return float(balanced_accuracy_score(emotions, predicted))


def emotion_transfer(
    features: np.ndarray,
    emotions: Sequence[str],
    languages: Sequence[str],
    seed: int = 0,
) -> dict[str, Any] | str:
    """Cross-lingual emotion transfer: train on one language, test on another.

    Arguments
    ---------
    features : numpy.ndarray
        ``[N, D]`` representations.
    emotions : sequence of str
        ``N`` emotion labels.
    languages : sequence of str
        ``N`` language codes.
    seed : int
        Seed of the probe.

    Returns
    -------
    dict or str
        ``{"uar": mean over ordered pairs, "pairs": {"en->de": uar, ...},
        "chance": 1 / classes}``, or the reason it cannot be estimated (one
        language; a pair is skipped when its training language lacks a class
        of the test language).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> emos = np.tile(["sad", "angry"], 40)
    >>> langs = np.repeat(["en", "de"], 40)
    >>> x = (emos == "angry")[:, None] * 4.0 + rng.normal(size=(80, 2))
    >>> out = emotion_transfer(x, emos, langs)
    >>> out["uar"], sorted(out["pairs"]), out["chance"]
    (1.0, ['de->en', 'en->de'], 0.5)
    """
    with extra("probe", _PROBES):
        from sklearn.metrics import balanced_accuracy_score

    emotions, languages = np.asarray(emotions), np.asarray(languages)
    langs = sorted(np.unique(languages))
    if len(langs) < 2:
        return "needs 2 languages"
    pairs = {}
    for train in langs:
        mask = languages == train
        classes = set(np.unique(emotions[mask]))
        if len(classes) < 2:
            continue
        probe = make_probe(seed).fit(features[mask], emotions[mask])
        for test in langs:
            test_mask = languages == test
            if test == train or not set(np.unique(emotions[test_mask])) <= classes:
                continue
            predicted = probe.predict(features[test_mask])
            pairs[f"{train}->{test}"] = float(
                balanced_accuracy_score(emotions[test_mask], predicted)
            )
    if not pairs:
        return "no language pair shares its emotion classes"
    return {
        "uar": float(np.mean(list(pairs.values()))),
        "pairs": pairs,
        "chance": 1.0 / len(np.unique(emotions)),
    }


def probe_representation(
    features: np.ndarray,
    speakers: Sequence[str],
    languages: Sequence[str],
    emotions: Sequence[str],
    seed: int = 0,
    speaker_rows: np.ndarray | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Every probe on one representation, as flat ``results.json`` keys.

    Arguments
    ---------
    features : numpy.ndarray
        ``[N, D]`` representations of the utterances.
    speakers : sequence of str
        ``N`` speaker labels.
    languages : sequence of str
        ``N`` language codes.
    emotions : sequence of str
        ``N`` emotion labels.
    seed : int
        Seed of every split.
    speaker_rows : numpy.ndarray, optional
        ``[N]`` booleans: the utterances of the speaker probe (default all).

    Returns
    -------
    dict
        ``speaker_probe_acc``, ``speaker_chance``, ``language_probe_acc``,
        ``language_chance``, ``emotion_transfer_uar``,
        ``emotion_transfer_pairs``, ``emotion_within_uar``,
        ``emotion_chance`` (a value is None when its probe could not be
        estimated).
    list of str
        Why a probe was left out, one line each.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> n = 160
    >>> spk = np.repeat([f"{l}{i}" for l in "ab" for i in range(4)], 20)
    >>> lang = np.array([s[0] for s in spk])
    >>> emo = np.tile(["sad", "angry"], n // 2)
    >>> x = rng.normal(size=(n, 4))
    >>> out, notes = probe_representation(x, spk, lang, emo)
    >>> sorted(out)  # doctest: +NORMALIZE_WHITESPACE
    ['emotion_chance', 'emotion_transfer_pairs', 'emotion_transfer_uar',
     'emotion_within_uar', 'language_chance', 'language_probe_acc',
     'speaker_chance', 'speaker_probe_acc']
    >>> notes
    []
    """
    with extra("probe", _PROBES):
        from threadpoolctl import threadpool_limits

    with threadpool_limits(PROBE_THREADS):
        return _probe_representation(
            features, speakers, languages, emotions, seed, speaker_rows
        )


def _probe_representation(features, speakers, languages, emotions, seed, speaker_rows):
    """:func:`probe_representation` without the thread limit."""
    features = np.asarray(features, dtype=np.float64)
    speakers, languages = np.asarray(speakers), np.asarray(languages)
    emotions = np.asarray(emotions)
    if features.ndim != 2 or not (
        len(features) == len(speakers) == len(languages) == len(emotions)
    ):
        raise ValueError(
            f"probe_representation: expected features [N, D] and N labels of each "
            f"kind, got features {features.shape} and {len(speakers)} speakers, "
            f"{len(languages)} languages, {len(emotions)} emotions."
        )
    out: dict[str, Any] = {}
    notes: list[str] = []
    rows = slice(None) if speaker_rows is None else np.asarray(speaker_rows, bool)
    speaker = speaker_probe(features[rows], speakers[rows], seed)
    if isinstance(speaker, str):
        notes.append(f"speaker probe skipped: {speaker}")
        speaker = {}
    out["speaker_probe_acc"] = speaker.get("acc")
    out["speaker_chance"] = speaker.get("chance")
    language = language_probe(features, languages, speakers, seed)
    if isinstance(language, str):
        notes.append(f"language probe skipped: {language}")
        language = {}
    out["language_probe_acc"] = language.get("acc")
    out["language_chance"] = language.get("chance")
    transfer = emotion_transfer(features, emotions, languages, seed)
    if isinstance(transfer, str):
        notes.append(f"emotion transfer skipped: {transfer}")
        transfer = {}
    out["emotion_transfer_uar"] = transfer.get("uar")
    out["emotion_transfer_pairs"] = transfer.get("pairs")
    within = []
    for lang in sorted(np.unique(languages)):
        mask = languages == lang
        uar = emotion_uar_cv(features[mask], emotions[mask], speakers[mask], seed)
        if isinstance(uar, str):
            notes.append(f"within-language emotion UAR skipped for {lang}: {uar}")
        else:
            within.append(uar)
    out["emotion_within_uar"] = float(np.mean(within)) if within else None
    out["emotion_chance"] = 1.0 / len(np.unique(emotions)) if len(emotions) else None
    return out, notes


def run_diagnostics(
    embedding: np.ndarray,
    speakers: Sequence[str],
    languages: Sequence[str],
    emotions: Sequence[str],
    raw: np.ndarray | None = None,
    raw_description: str | None = None,
    speaker_rows: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``results.json["diagnostics"]`` of a run.

    Arguments
    ---------
    embedding : numpy.ndarray
        ``[N, D]`` learned utterance embeddings.
    speakers : sequence of str
        ``N`` speaker labels.
    languages : sequence of str
        ``N`` language codes.
    emotions : sequence of str
        ``N`` emotion labels.
    raw : numpy.ndarray, optional
        ``[N, D']`` raw frozen encoder features of the same utterances; their
        probes go under ``"raw"``.
    raw_description : str, optional
        What ``raw`` is (stored as ``raw_features``).
    speaker_rows : numpy.ndarray, optional
        ``[N]`` booleans: the utterances the speaker probe uses (e.g. the
        training speakers only, without speakers recorded in one emotion,
        whose identity is their emotion). Default: all.
    seed : int
        Seed of every split.

    Returns
    -------
    dict
        The probes of the embedding as flat keys (see
        :func:`probe_representation`), ``raw`` (the same keys for the raw
        features, or None), ``raw_features``, ``n_utterances``,
        ``n_speakers``, ``n_speaker_probe_speakers``, ``languages``,
        ``probe``, ``notes`` and ``seconds`` (time the probes took).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> spk = np.repeat([f"{l}{i}" for l in "ab" for i in range(3)], 20)
    >>> lang = np.array([s[0] for s in spk])
    >>> emo = np.tile(["sad", "angry"], 60)
    >>> one_hot = (spk[:, None] == np.unique(spk)[None]).astype(float)
    >>> out = run_diagnostics(one_hot, spk, lang, emo, raw=rng.normal(size=(120, 3)))
    >>> out["speaker_probe_acc"], round(out["speaker_chance"], 3)
    (1.0, 0.167)
    >>> out["raw"]["speaker_probe_acc"] < 0.5
    True
    """
    start = time.perf_counter()
    speakers = np.asarray(speakers)
    rows = np.ones(len(speakers), bool) if speaker_rows is None else speaker_rows
    rows = np.asarray(rows, dtype=bool)
    results, notes = probe_representation(
        embedding, speakers, languages, emotions, seed, speaker_rows=rows
    )
    raw_results = None
    if raw is not None:
        raw_results, raw_notes = probe_representation(
            raw, speakers, languages, emotions, seed, speaker_rows=rows
        )
        notes += [f"raw features: {note}" for note in raw_notes]
    return {
        **results,
        "raw": raw_results,
        "raw_features": raw_description if raw is not None else None,
        "n_utterances": int(len(speakers)),
        "n_speakers": int(len(set(speakers))),
        "n_speaker_probe_speakers": int(len(set(speakers[rows]))),
        "languages": sorted(set(languages)),
        "probe": f"StandardScaler + LogisticRegression (scikit-learn), seed {seed}",
        "notes": notes,
        "seconds": round(time.perf_counter() - start, 2),
    }
