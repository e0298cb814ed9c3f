r"""Layer-wise linear probes of a frozen encoder on any manifest.

Before training anything, a researcher wants to know which layers of an
encoder carry emotion, and how much speaker and language information comes
with them. For every utterance of a manifest this tool computes the frozen
encoder's per-layer pooled features once (through the recipe's
``FeatureCache``: a later call, or a training run with the same encoder and
cache folder, reuses them), then, for each layer:

- ``emo_uar``: emotion UAR of a linear probe, speaker-grouped
  cross-validation (no speaker in both a training and a test fold);
- ``spk_acc``: speaker accuracy, utterances split within speakers (speakers
  marked ``spk_confounded`` are left out: their identity is their emotion);
- ``lang_acc``: language accuracy, speaker-grouped cross-validation.

with the chance levels (1 / emotions for UAR, the most frequent class for the
accuracies). Probes are those of :mod:`zsser_modules.diagnostics`. What
cannot be estimated (one language: no language probe; a single speaker of an
emotion: no grouped emotion probe) is left out and said so.

Usage::

    python -m zsser_modules.probe MANIFEST.csv --encoder whisper \
        --ssl_source openai/whisper-base [--json OUT.json] \
        [--cache_dir results/data/feature_cache] [--max_duration 15]

Every clip is cut to its first ``--max_duration`` seconds (default 15.0, the
recipe's; ``none``: whole clips), as in training (docs/recipe.md, "Duration
policy"): with the recipe's value the probe shares its cache entries.

The manifest needs the columns ``ID, wav, emo, spk_id, lang`` (the schema of
``zsser_modules.data_prep``; ``spk_confounded`` is used when present). Any
emotion labels and language codes work.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from zsser_modules.diagnostics import (
    PROBE_THREADS,
    emotion_uar_cv,
    language_probe,
    speaker_probe,
)
from zsser_modules.optional import extra

#: What needs scikit-learn here, for the missing-extra message.
_PROBE = "the layer-wise probe (zsser_modules.probe)"

#: Columns a manifest must have.
REQUIRED_COLUMNS: tuple[str, ...] = ("ID", "wav", "emo", "spk_id", "lang")
#: Encoders the tool can build (frozen ones only).
PROBE_ENCODERS: tuple[str, ...] = ("ssl", "whisper", "fbank_stats")


class ProbeInputError(ValueError):
    """Bad input of the probe tool (reported as one line, exit status 2)."""


def read_probe_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest and check what the probes need.

    Arguments
    ---------
    path : str or Path
        CSV with at least :data:`REQUIRED_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        The rows, labels as strings.

    Raises
    ------
    ProbeInputError
        Missing file, missing columns, no rows, duplicate IDs or empty labels.

    Example
    -------
    >>> read_probe_manifest("/no/such.csv")
    Traceback (most recent call last):
    ...
    zsser_modules.probe.ProbeInputError: manifest '/no/such.csv' not found; ...
    """
    path = Path(path)
    if not path.is_file():
        raise ProbeInputError(
            f"manifest '{path}' not found; give a CSV with the columns "
            f"{', '.join(REQUIRED_COLUMNS)} (e.g. a data_prep manifest)."
        )
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise ProbeInputError(
            f"manifest '{path}' is not a readable CSV ({e})."
        ) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ProbeInputError(
            f"manifest '{path}' lacks the column(s) {missing}; found "
            f"{list(frame.columns)}. Expected at least {list(REQUIRED_COLUMNS)}."
        )
    if frame.empty:
        raise ProbeInputError(f"manifest '{path}' has no rows.")
    empty = [c for c in REQUIRED_COLUMNS if (frame[c].str.strip() == "").any()]
    if empty:
        raise ProbeInputError(
            f"manifest '{path}' has empty values in column(s) {empty}; fill or "
            "drop those rows."
        )
    duplicated = frame["ID"][frame["ID"].duplicated()]
    if len(duplicated):
        raise ProbeInputError(
            f"manifest '{path}' repeats the ID(s) {duplicated.head(3).tolist()}; "
            "IDs must be unique."
        )
    return frame


def build_encoder(
    encoder: str,
    source: str | None,
    save_path: str,
    context: str = "cut",
) -> torch.nn.Module:
    """The frozen encoder whose layers are probed.

    Arguments
    ---------
    encoder : str
        ``"ssl"`` (wav2vec2 / WavLM / HuBERT), ``"whisper"`` or
        ``"fbank_stats"`` (one "layer": the filterbank statistics).
    source : str, optional
        Hub id or local folder (``ssl`` and ``whisper``).
    save_path : str
        Download cache of the pretrained model.
    context : str
        Whisper only: ``"cut"`` or ``"full"`` (see ``WhisperLayerPooling``).

    Returns
    -------
    torch.nn.Module
        With the recipe's default settings, so the features it caches are
        those a training run with the same encoder reads.

    Example
    -------
    >>> build_encoder("fbank_stats", None, "/tmp").output_size
    240
    """
    from zsser_modules import encoders

    if encoder not in PROBE_ENCODERS:
        raise ProbeInputError(
            f"--encoder must be one of {list(PROBE_ENCODERS)}, got {encoder!r}."
        )
    if encoder == "fbank_stats":
        return encoders.FbankStatsEncoder()
    if not source:
        raise ProbeInputError(
            f"--encoder {encoder} needs --ssl_source (a hub id such as "
            "openai/whisper-base, or a local model folder)."
        )
    if encoder == "ssl":
        return encoders.SSLLayerPooling(source, save_path)
    return encoders.WhisperLayerPooling(source, save_path, context=context)


def layer_features(
    frame: pd.DataFrame,
    encoder: torch.nn.Module,
    cache_dir: str | Path,
    batch_size: int = 8,
    device: str = "cpu",
    progressbar: bool = True,
    max_duration: float | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Per-layer pooled features of every row, through the feature cache.

    Arguments
    ---------
    frame : pandas.DataFrame
        Manifest rows (``ID``, ``wav``).
    encoder : torch.nn.Module
        A frozen encoder returning ``[B, L, D]`` (or ``[B, D]``: one layer).
    cache_dir : str or Path
        Feature cache root (the recipe's ``feature_cache_folder``).
    batch_size : int
        Utterances per encoder call when filling the cache.
    device : str
        Device of the encoder.
    progressbar : bool
        Show the cache fill's progress bar.
    max_duration : float, optional
        Encode the first ``max_duration`` seconds of each clip (None: all).

    Returns
    -------
    numpy.ndarray
        ``[N, L, D]`` float32 features.
    dict
        The cache fill's counts (``computed``, ``reused``, ``corrupt``).
    """
    from zsser_modules.feature_cache import FeatureCache, encoder_cache_key

    encoder = encoder.to(device)
    cache = FeatureCache(
        cache_dir, encoder_cache_key(encoder, max_duration=max_duration)
    )
    items = list(zip(frame["ID"], frame["wav"]))
    counts = cache.fill(
        encoder, items, batch_size=batch_size, device=device, progressbar=progressbar
    )
    features = []
    for utt_id, wav in items:
        entry = cache.get(utt_id, wav)
        if entry is None:  # deleted between fill and get: compute it again
            cache.fill(encoder, [(utt_id, wav)], device=device, progressbar=False)
            entry = cache.get(utt_id, wav)
        features.append(entry.reshape(-1, entry.shape[-1]).numpy())
    return np.stack(features).astype(np.float32), counts


def probe_layers(
    features: np.ndarray, frame: pd.DataFrame, seed: int = 0
) -> dict[str, Any]:
    """Emotion UAR, speaker and language accuracy of each layer.

    Arguments
    ---------
    features : numpy.ndarray
        ``[N, L, D]`` per-layer features of the rows of ``frame``.
    frame : pandas.DataFrame
        ``emo``, ``spk_id``, ``lang`` (and optionally ``spk_confounded``).
    seed : int
        Seed of every split.

    Returns
    -------
    dict
        ``{"layers": [{"layer", "emo_uar", "spk_acc", "lang_acc"}, ...],
        "chance": {...}, "skipped": [...], "best_layer": {...}}``; a value
        that cannot be estimated is None, and ``skipped`` says why.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"emo": np.tile(["sad", "angry"], 40),
    ...     "spk_id": np.repeat([f"s{i}" for i in range(4)], 20), "lang": "en"})
    >>> emotion = (frame["emo"] == "angry").to_numpy()[:, None] * 4.0
    >>> x = np.stack([rng.normal(size=(80, 3)),
    ...               emotion + rng.normal(size=(80, 3))], axis=1)
    >>> out = probe_layers(x, frame)
    >>> [layer["emo_uar"] for layer in out["layers"]][1], out["best_layer"]
    (1.0, {'emo_uar': 1})
    >>> out["skipped"]
    ['lang_acc: needs 2 languages (the manifest has en only)']
    """
    with extra("probe", _PROBE):
        from threadpoolctl import threadpool_limits

    with threadpool_limits(PROBE_THREADS):
        return _probe_layers(features, frame, seed)


def _probe_layers(features: np.ndarray, frame: pd.DataFrame, seed: int) -> dict:
    """:func:`probe_layers` without the thread limit."""
    emotions = frame["emo"].astype(str).to_numpy()
    speakers = frame["spk_id"].astype(str).to_numpy()
    languages = frame["lang"].astype(str).to_numpy()
    confounded = (
        frame["spk_confounded"].astype(str).isin(["1", "True", "true"]).to_numpy()
        if "spk_confounded" in frame.columns
        else np.zeros(len(frame), bool)
    )
    skipped: list[str] = []
    layers = []
    chance: dict[str, float | None] = {
        "emo_uar": 1.0 / len(np.unique(emotions)),
        "spk_acc": None,
        "lang_acc": None,
    }
    for index in range(features.shape[1]):
        x = features[:, index, :]
        row: dict[str, Any] = {"layer": index}
        uar = emotion_uar_cv(x, emotions, speakers, seed)
        row["emo_uar"] = uar if isinstance(uar, float) else None
        speaker = speaker_probe(x[~confounded], speakers[~confounded], seed)
        row["spk_acc"] = speaker["acc"] if isinstance(speaker, dict) else None
        language = language_probe(x, languages, speakers, seed)
        row["lang_acc"] = language["acc"] if isinstance(language, dict) else None
        if index == 0:
            for key, result in (
                ("emo_uar", uar),
                ("spk_acc", speaker),
                ("lang_acc", language),
            ):
                if isinstance(result, str):
                    if key == "lang_acc" and result == "needs 2 languages":
                        found = ", ".join(sorted(set(languages)))
                        result += f" (the manifest has {found} only)"
                    skipped.append(f"{key}: {result}")
                elif isinstance(result, dict):
                    chance[key] = result["chance"]
        layers.append(row)
    if confounded.any():
        skipped.append(
            f"spk_acc: {len(set(speakers[confounded]))} confounded speaker(s) "
            "(one emotion each) left out"
        )
    best = {}
    for key in ("emo_uar",):
        scored = [
            (layer[key], layer["layer"]) for layer in layers if layer[key] is not None
        ]
        if scored:
            best[key] = max(scored)[1]
    return {"layers": layers, "chance": chance, "skipped": skipped, "best_layer": best}


def format_table(result: dict[str, Any]) -> str:
    """The per-layer table as Markdown (values in %).

    Arguments
    ---------
    result : dict
        Output of :func:`probe_layers`.

    Returns
    -------
    str
        Header, one row per layer, then the chance row.

    Example
    -------
    >>> print(format_table({"layers": [{"layer": 0, "emo_uar": 0.5,
    ...     "spk_acc": 0.9, "lang_acc": None}], "chance": {"emo_uar": 0.25,
    ...     "spk_acc": 0.1, "lang_acc": None}}))
    | layer | emo UAR | spk acc | lang acc |
    | --: | --: | --: | --: |
    | 0 | 50.0 | 90.0 | – |
    | chance | 25.0 | 10.0 | – |
    """

    def pct(value):
        return "–" if value is None else f"{100 * value:.1f}"

    lines = [
        "| layer | emo UAR | spk acc | lang acc |",
        "| --: | --: | --: | --: |",
    ]
    keys = ("emo_uar", "spk_acc", "lang_acc")
    for layer in result["layers"]:
        cells = " | ".join(pct(layer[k]) for k in keys)
        lines.append(f"| {layer['layer']} | {cells} |")
    lines.append(
        "| chance | " + " | ".join(pct(result["chance"][k]) for k in keys) + " |"
    )
    return "\n".join(lines)


def _max_duration_arg(value: str) -> float | None:
    """``--max_duration``: seconds, or ``none``/``null`` for whole clips."""
    from zsser_modules.audio import check_max_duration

    if value.strip().lower() in ("none", "null"):
        return None
    try:
        return check_max_duration(float(value))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line (see the module docstring and ``--help``).

    Arguments
    ---------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    dict
        What ``--json`` writes.
    """
    parser = argparse.ArgumentParser(
        prog="python -m zsser_modules.probe",
        description="Per-layer linear probes (emotion UAR, speaker and language "
        "accuracy) of a frozen encoder on the utterances of a manifest.",
    )
    parser.add_argument("manifest", help="CSV with ID, wav, emo, spk_id, lang")
    parser.add_argument("--encoder", required=True, choices=PROBE_ENCODERS)
    parser.add_argument("--ssl_source", default=None, help="hub id or local folder")
    parser.add_argument(
        "--cache_dir",
        default="results/data/feature_cache",
        help="feature cache root (the recipe's feature_cache_folder; default "
        "%(default)s)",
    )
    parser.add_argument(
        "--save_path", default="results/pretrained", help="model download cache"
    )
    parser.add_argument(
        "--context",
        default="cut",
        choices=("cut", "full"),
        help="Whisper: clip length (cut) or 30 s window (full)",
    )
    parser.add_argument(
        "--max_duration",
        type=_max_duration_arg,
        default=15.0,
        help="encode the first MAX_DURATION seconds of each clip, as the recipe "
        "(default %(default)s, the recipe's max_duration; none: whole clips)",
    )
    parser.add_argument("--json", default=None, help="write the result here")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noprogressbar", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        frame = read_probe_manifest(args.manifest)
        encoder = build_encoder(
            args.encoder, args.ssl_source, args.save_path, args.context
        )
        start = time.perf_counter()
        features, counts = layer_features(
            frame,
            encoder,
            args.cache_dir,
            args.batch_size,
            args.device,
            progressbar=not args.noprogressbar,
            max_duration=args.max_duration,
        )
        fill_s = time.perf_counter() - start
    except (ProbeInputError, OSError, ValueError, RuntimeError) as error:
        # RuntimeError: e.g. soundfile's LibsndfileError on an unreadable file
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"probe: error: {message}", file=sys.stderr)
        sys.exit(2)
    start = time.perf_counter()
    result = probe_layers(features, frame, seed=args.seed)
    result = {
        "manifest": str(args.manifest),
        "encoder": args.encoder,
        "ssl_source": args.ssl_source,
        "max_duration": args.max_duration,
        "n_utterances": len(frame),
        "n_speakers": int(frame["spk_id"].nunique()),
        "languages": sorted(frame["lang"].unique()),
        "emotions": sorted(frame["emo"].unique()),
        **result,
        "cache": {**counts, "fill_s": round(fill_s, 1)},
        "probe_s": round(time.perf_counter() - start, 1),
    }
    print(
        f"{args.encoder} ({args.ssl_source or 'no download'}) on {len(frame)} "
        f"utterances, {result['n_speakers']} speakers, languages "
        f"{', '.join(result['languages'])}:"
    )
    print(format_table(result))
    for line in result["skipped"]:
        print(f"skipped: {line}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":  # pragma: no cover
    main()
