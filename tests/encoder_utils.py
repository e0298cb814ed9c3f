"""Test helpers: tiny random self-supervised models and audio files, offline.

There is no network access to the Hugging Face hub in tests. These helpers
write a randomly initialised, tiny model folder (``config.json``, weights,
``preprocessor_config.json``) that ``SSLLayerPooling`` and SpeechBrain's
wrappers load exactly like a downloaded checkpoint. End-to-end tests of other
areas reuse them::

    from encoder_utils import make_tiny_ssl  # tests/ is on sys.path (conftest)

    folder = make_tiny_ssl(tmp_path / "tiny_wavlm")
    encoder = SSLLayerPooling(str(folder), save_path=str(tmp_path / "hf"))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

TINY_HIDDEN = 64
TINY_LAYERS = 2
SSL_KINDS = ("wavlm", "wav2vec2", "hubert")


def make_tiny_ssl(
    path: str | Path,
    kind: str = "wavlm",
    feat_extract_norm: str = "layer",
    seed: int = 0,
) -> Path:
    """Create and save a tiny random SSL model (hidden 64, 2 layers).

    The folder is reused when it already holds a model (the weights depend
    only on ``kind``, ``feat_extract_norm`` and ``seed``), so several tests can
    share one folder. ``layerdrop`` keeps the Hugging Face default (0.1) on
    purpose: the encoder must force it to 0.

    Arguments
    ---------
    path : str or Path
        Folder to write (created if missing).
    kind : str
        One of ``"wavlm"``, ``"wav2vec2"``, ``"hubert"``.
    feat_extract_norm : str
        ``"layer"`` (large-model style, padding-safe with an attention mask)
        or ``"group"`` (base-model style: GroupNorm over time in the first
        convolution).
    seed : int
        Seed of the random initialisation.

    Returns
    -------
    Path
        The model folder, usable as ``source`` of ``SSLLayerPooling``.
    """
    import transformers

    if kind not in SSL_KINDS:
        raise ValueError(f"kind must be one of {SSL_KINDS}, got {kind!r}")
    path = Path(path)
    if (path / "config.json").exists() and (path / "model.safetensors").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    common = dict(
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=TINY_LAYERS,
        num_attention_heads=2,
        intermediate_size=128,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm=feat_extract_norm,
        do_stable_layer_norm=feat_extract_norm == "layer",
        layerdrop=0.1,
    )
    config_cls, model_cls = {
        "wavlm": (transformers.WavLMConfig, transformers.WavLMModel),
        "wav2vec2": (transformers.Wav2Vec2Config, transformers.Wav2Vec2Model),
        "hubert": (transformers.HubertConfig, transformers.HubertModel),
    }[kind]
    if kind == "wavlm":
        common.update(num_buckets=32, max_bucket_distance=64)
    torch.manual_seed(seed)
    model = model_cls(config_cls(**common))
    model.save_pretrained(str(path))
    transformers.Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=feat_extract_norm == "layer",
    ).save_pretrained(str(path))
    return path


def write_tone(
    path: str | Path,
    seconds: float = 1.0,
    sample_rate: int = 16000,
    channels: int = 1,
    freq: float = 220.0,
    seed: int = 0,
) -> Path:
    """Write a short noisy tone as a 16-bit WAV file and return its path.

    Arguments
    ---------
    path : str or Path
        Output file (parent folders are created).
    seconds : float
        Duration.
    sample_rate : int
        Sampling rate of the file.
    channels : int
        Number of channels (each gets a different phase).
    freq : float
        Tone frequency in Hz.
    seed : int
        Seed of the added noise.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sig = np.stack(
        [
            0.5 * np.sin(2 * np.pi * freq * t + c) + 0.05 * rng.standard_normal(t.size)
            for c in range(channels)
        ],
        axis=1,
    )
    sf.write(str(path), sig.astype(np.float32), sample_rate, subtype="PCM_16")
    return path


def make_tiny_whisper(path: str | Path, seed: int = 0) -> Path:
    """Create and save a tiny random Whisper model (d_model 64, 2 encoder layers).

    A full ``WhisperModel`` (with a one-layer decoder, as a downloaded
    checkpoint has) plus the default ``WhisperFeatureExtractor`` (80 mel bins,
    30 s window, 1500 positions), about 0.5 MB. Reused when the folder already
    holds a model.

    Arguments
    ---------
    path : str or Path
        Folder to write (created if missing).
    seed : int
        Seed of the random initialisation.

    Returns
    -------
    Path
        The model folder, usable as ``source`` of ``WhisperLayerPooling``.
    """
    import transformers

    path = Path(path)
    if (path / "config.json").exists() and (path / "model.safetensors").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    config = transformers.WhisperConfig(
        d_model=TINY_HIDDEN,
        encoder_layers=TINY_LAYERS,
        encoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=64,
        num_mel_bins=80,
        vocab_size=64,
        max_target_positions=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    torch.manual_seed(seed)
    transformers.WhisperModel(config).save_pretrained(str(path))
    transformers.WhisperFeatureExtractor().save_pretrained(str(path))
    return path
