"""Helpers of the recipe and inference tests: fixture corpora and recipe runs.

The corpora are small subsets of ESD, EmoDB and URDU in their real layouts
(file names from ``zsser_modules/data_prep/file_lists`` and
``tests/data_prep_utils.py``),
at the corpora's sample rates (URDU: 44.1 kHz stereo). Unlike the data-prep
fixtures, every file holds distinct audio: a short tone whose pitch depends on
the emotion, plus noise seeded by the file name, so embeddings differ between
utterances (identical inputs would give a degenerate t-SNE).

Recipe runs are memoised per process: the recipe and inference tests share
them through :func:`trained_run`.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from data_prep_utils import (
    EMOBOX_TO_CANONICAL,
    ESD_EMOTIONS,
    FORMATS,
    build_esd,
    read_file_list,
)
from encoder_utils import make_tiny_ssl

from zsser_modules.checkpoints import KILL_ENV

REPO_ROOT = Path(__file__).resolve().parents[1]
TONE_HZ = {"neutral": 150.0, "happy": 300.0, "angry": 450.0, "sad": 110.0}
ESD_SPEAKERS = ("0001", "0002", "0011", "0012", "0013")  # 2 zh, 3 en


def write_utterance(
    path: Path, emotion: str, sample_rate: int, channels: int, seconds: float = 0.3
) -> None:
    """Write a distinct short utterance (tone by emotion + seeded noise)."""
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    freq = TONE_HZ.get(emotion, 200.0) * rng.uniform(0.9, 1.1)
    mono = 0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.size)
    data = np.stack([mono] * channels, axis=1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sample_rate, subtype="PCM_16")


def write_subset(corpus: str, root: Path, per_speaker_emotion: int = 2) -> Path:
    """Write up to n files per (speaker, emotion) of a corpus's real file list."""
    rate, channels = FORMATS[corpus]
    kept: collections.Counter = collections.Counter()
    for row in read_file_list(corpus):
        emotion = EMOBOX_TO_CANONICAL[corpus][row["emotion_label_in_emobox"]]
        if emotion not in TONE_HZ:
            continue
        name = row["path"].rsplit("/", 1)[-1]
        speaker = name[:2] if corpus == "emodb" else name.split("_")[0]
        if kept[speaker, emotion] >= per_speaker_emotion:
            continue
        kept[speaker, emotion] += 1
        write_utterance(root / row["path"], emotion, rate, channels)
    return root


def write_esd(root: Path, per_emotion: int = 3) -> Path:
    """ESD tree (real layout and transcripts) with distinct audio per file."""
    build_esd(root, per_emotion=per_emotion, speakers=list(ESD_SPEAKERS))
    folder_emotion = {name: name.lower() for name in ESD_EMOTIONS}
    rate, channels = FORMATS["esd"]
    for wav in root.rglob("*.wav"):
        emotion = next(
            folder_emotion[p]
            for p in wav.relative_to(root).parts
            if p in folder_emotion
        )
        write_utterance(wav, emotion, rate, channels)
    return root


def build_fixture(root: Path) -> dict[str, str]:
    """Write the fixture corpora and a tiny WavLM; return the recipe's folder keys."""
    root = Path(root)
    folders = {
        "esd_folder": write_esd(root / "ESD"),
        "emodb_folder": write_subset("emodb", root / "EmoDB"),
        "urdu_folder": write_subset("urdu", root / "URDU"),
        "ssl_source": make_tiny_ssl(root / "tiny_wavlm"),
    }
    return {key: str(value) for key, value in folders.items()}


#: Small model and data sizes for tests (command-line overrides).
FAST_OPTIONS = (
    # The fixture tests pin the speaker protocol's settings (held-out valid
    # speakers, the whole target as the test set); the paper protocol runs in
    # tests/test_demo_recipe.py and tests/test_paper_protocol.py.
    "--protocol=speaker",
    # The frozen encoder (its feature cache, speaker normalisation) on the
    # tiny WavLM; the adapted path runs in tests/test_adapted_recipe.py.
    "--encoder_adaptation=none",
    "--batch_size=8",
    # Hierarchical batches (proposed, no_supcon, no_spkadv) of 8 too, from
    # the 2 training languages most fixture runs have.
    "--hier_n_lang=2",
    "--hier_n_cls=2",
    "--hier_n_sam=2",
    "--emb_dim=32",
    "--proj_dim=16",
    "--tsne_per_language=12",
    "--noprogressbar",
    "--fbank_encoder={n_mels: 20, emb_dim: 16, channels: [16, 16, 16, 16, 48], "
    "attention_channels: 8, se_channels: 8, res2net_scale: 2}",
)


def recipe_args(pair: str, fixture: dict[str, str], results_root: Path, *extra: str):
    """Command line of recipes/train.py for a pair on the fixture corpora.

    A pair outside the paper's nine tasks (no file in hparams/) runs from
    en_de.yaml with its languages overridden.
    """
    hparams = REPO_ROOT / "hparams" / f"{pair}.yaml"
    languages = []
    if not hparams.is_file():
        source, _, target = pair.partition("_")
        hparams = REPO_ROOT / "hparams" / "en_de.yaml"
        languages = [f"--source_lang={source}", f"--target_lang={target}"]
    return [
        str(hparams),
        *languages,
        # The fixture trees hold ESD's English speakers, not MELD (the
        # paper's English, tested in tests/test_paper_protocol.py).
        "--language_corpus={en: esd}",
        f"--results_root={results_root}",
        *(f"--{key}={value}" for key, value in fixture.items()),
        *FAST_OPTIONS,
        *extra,
    ]


def load_hparams(args):
    """The hyperparameters of ``recipes/train.py ARGS``, loaded as main() loads them."""
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml

    hparams_file, _, overrides = sb.parse_arguments(list(args))
    with open(hparams_file, encoding="utf-8") as fin:
        return load_hyperpyyaml(fin, overrides)


def run_recipe(args):
    """Run recipes/train.py in this process; return its Brain."""
    from recipes.train import main

    return main(list(args))


def killed_recipe(args, kill_at: str) -> None:
    """Run recipes/train.py in a subprocess that SIGKILLs itself at ``kill_at``.

    ``kill_at`` as ``zsser_modules.checkpoints.kill_point``: ``"<epoch>:<step>"``
    (before that training batch) or ``"save:<n>"`` (while writing the n-th
    checkpoint).
    """
    env = {**os.environ, KILL_ENV: kill_at, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "recipes" / "train.py"), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == -signal.SIGKILL, done.stdout[-2000:] + done.stderr[-2000:]


_RUNS: dict = {}


def trained_run(key, args):
    """Run the recipe once per process for ``key`` (memoised); return its Brain."""
    if key not in _RUNS:
        _RUNS[key] = run_recipe(args)
    return _RUNS[key]


_FIXTURES: dict = {}


def session_fixture(tmp_path_factory) -> dict[str, str]:
    """Fixture corpora of the test session (built once, shared by test modules)."""
    root = tmp_path_factory.getbasetemp() / "recipe_fixture"
    if root not in _FIXTURES:
        _FIXTURES[root] = build_fixture(root)
    return _FIXTURES[root]


def ssl_run(tmp_path_factory):
    """en -> de, proposed, tiny WavLM, 2 epochs: the shared SSL run of the session.

    Returns ``(brain, output_folder)``.
    """
    fixture = session_fixture(tmp_path_factory)
    results = tmp_path_factory.getbasetemp() / "recipe_results"
    args = recipe_args(
        "en_de",
        fixture,
        results,
        "--languages=[en,zh,de]",
        "--number_of_epochs=2",
    )
    brain = trained_run(("ssl", results), args)
    return brain, results / "en_de" / "ssl" / "proposed" / "1234"


def fbank_run(tmp_path_factory):
    """ur -> de, no_supcon, fbank encoder, --debug (2 batches per stage).

    Trains on 44.1 kHz stereo URDU + ESD for 2 epochs in a subprocess killed
    (SIGKILL) as epoch 2 starts, then the same command in this process, which
    must resume at epoch 2. Returns ``(brain, output_folder,
    train_log_after_first_run)``.
    """
    fixture = session_fixture(tmp_path_factory)
    results = tmp_path_factory.getbasetemp() / "recipe_results"
    folder = results / "ur_de" / "fbank" / "no_supcon" / "1234"
    key = ("fbank", results)
    if key not in _RUNS:
        args = recipe_args(
            "ur_de",
            fixture,
            results,
            "--encoder=fbank",
            "--variant=no_supcon",
            "--languages=[ur,en,de]",
            "--debug",
            "--debug_persistently",
        )
        args.append("--number_of_epochs=2")
        killed_recipe(args, "2:1")
        first_log = (folder / "train_log.txt").read_text()
        _RUNS[key] = (run_recipe(args), first_log)
    brain, first_log = _RUNS[key]
    return brain, folder, first_log


def check_selection_outputs(results, log):
    """Per-language validation UAR and the selected epoch (zsser_modules.selection)."""
    assert results["selection"] in ("mean_language_uar", "pooled_uar")
    assert results["language_sampling"] in ("natural", "balanced")
    per_language = results["valid_uar_per_language"]
    assert set(per_language) == set(results["training_languages"])
    assert results["valid_mean_language_uar"] == pytest.approx(
        sum(per_language.values()) / len(per_language)
    )
    for lang in per_language:  # every epoch logs each training language's UAR
        assert len(re.findall(rf"valid uar_{lang}: ", log)) == len(
            re.findall(r"^epoch: \d+,", log, flags=re.M)
        )
    # The selected epoch has the best score of the criterion (log: 3 digits).
    key = "uar" if results["selection"] == "pooled_uar" else "mean_language_uar"
    logged = [float(v) for v in re.findall(rf"valid {key}: ([-+.e\d]+)", log)]
    selected = results["best_valid_uar" if key == "uar" else "valid_mean_language_uar"]
    assert selected == pytest.approx(max(logged), rel=5e-3)
