"""Caching the frozen convolutional front-end of an adapted SSL encoder
(issue 21, item 4; docs/encoders.md, "Speed without the feature cache").

Tiny random wav2vec 2.0 models in both front-end styles: ``group`` (base:
GroupNorm over time in the first convolution) and ``layer`` (large), and a
WavLM. The front-end of each utterance computed alone, cached, re-padded and
fed to the adapted transformer in one padded pass gives the per-utterance
forward pass's features (float rounding); the traps are pinned: a padded
batch through a group-norm front-end, and a crop after the front-end.
"""

from __future__ import annotations

import pytest
import torch
from encoder_utils import make_tiny_ssl, write_tone
from speechbrain.utils.data_utils import batch_pad_right

from zsser_modules.adaptation import (
    AdaptationError,
    AdaptedSSLLayerPooling,
    SSLFrontend,
)
from zsser_modules.audio import read_audio
from zsser_modules.feature_cache import FeatureCache, encoder_cache_key

LENGTHS = (16000, 11111, 7001)
TOL = 1e-5


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("frontend")
    return {
        "group": make_tiny_ssl(root / "g", kind="wav2vec2", feat_extract_norm="group"),
        "layer": make_tiny_ssl(root / "l", kind="wav2vec2", feat_extract_norm="layer"),
        "wavlm": make_tiny_ssl(root / "wavlm", kind="wavlm"),
        "hf": root / "hf",
    }


def adapted(folders, kind, **kwargs):
    """An adapted encoder whose adapters are random (so they matter), eval mode."""
    targets = (
        {"lora_targets": ["ffn_in"], "adapter_targets": ["ffn_out"]}
        if kind == "wavlm"
        else {}
    )
    encoder = AdaptedSSLLayerPooling(
        str(folders[kind]),
        adaptation="lora+adapter",
        lora_rank=2,
        adapter_size=4,
        save_path=str(folders["hf"]),
        **targets,
        **kwargs,
    )
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name in encoder.adapter_names:
            param = dict(encoder.named_parameters())[name]
            param.copy_(0.3 * torch.randn(param.shape, generator=generator))
    return encoder.eval()


def padded_batch(seed=0):
    """Three clips of different lengths, right-padded, with relative lengths."""
    generator = torch.Generator().manual_seed(seed)
    wavs = torch.zeros(len(LENGTHS), max(LENGTHS))
    for row, count in enumerate(LENGTHS):
        wavs[row, :count] = torch.randn(count, generator=generator)
    return wavs, torch.tensor(LENGTHS) / max(LENGTHS)


@pytest.mark.parametrize("kind", ["group", "layer", "wavlm"])
def test_cached_front_end_in_one_padded_pass_equals_per_utterance(folders, kind):
    encoder = adapted(folders, kind, batch_mode="per_utterance")
    wavs, lens = padded_batch()
    with torch.no_grad():
        expected = encoder(wavs, lens)
        feats, feat_lens = batch_pad_right(encoder.frontend(wavs, lens))
        got = encoder.forward_frontend(feats, feat_lens)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() < TOL


def test_a_padded_batch_through_a_group_norm_front_end_is_not_exact(folders):
    """The trap: base models normalise over time, padding included."""
    encoder = adapted(folders, "group", batch_mode="per_utterance")
    wavs, lens = padded_batch()
    with torch.no_grad():
        alone = encoder(wavs, lens)
        encoder.batch_mode = "padded"
        padded = encoder(wavs, lens)
        assert (padded - alone).abs().max() > 1e-2
        # the front-end of the padded batch, cropped to a row's frames
        whole = encoder.model.feature_extractor(wavs).transpose(1, 2)
        own = encoder.frontend(wavs, lens)[2]
        assert (whole[2, : len(own)] - own).abs().max() > 1e-2


def test_cropping_after_the_front_end_is_not_exact_for_group_norm(folders):
    """Why the cache key holds the duration policy: crop, then encode."""
    encoder = adapted(folders, "group")
    wav = torch.randn(1, 16000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = encoder.frontend(wav)[0]
        head = encoder.frontend(wav[:, :8000])[0]
    assert (full[: len(head)] - head).abs().max() > 1e-2


def test_gradients_reach_the_adapters_through_the_cached_front_end(folders):
    encoder = adapted(folders, "group")
    encoder.train()
    wavs, lens = padded_batch()
    feats, feat_lens = batch_pad_right(encoder.frontend(wavs, lens))
    encoder.forward_frontend(feats, feat_lens).square().sum().backward()
    params = dict(encoder.named_parameters())
    assert all(params[name].grad is not None for name in encoder.adapter_names)
    assert all(
        param.grad is None
        for name, param in params.items()
        if name not in encoder.adapter_names
    )


def test_feature_cache_round_trip_with_the_duration_policy(folders, tmp_path):
    encoder = adapted(folders, "group")
    frontend = SSLFrontend(encoder)
    assert not any(p.requires_grad for p in frontend.parameters())
    files = [
        write_tone(tmp_path / "a.wav", seconds=1.3, sample_rate=16000),
        write_tone(tmp_path / "b.wav", seconds=0.7, sample_rate=22050),
    ]
    items = [(f"utt{i}", str(path)) for i, path in enumerate(files)]
    key = encoder_cache_key(frontend, max_duration=1.0)
    assert key["shape"] is None and key["max_duration"] == 1.0
    cache = FeatureCache(tmp_path / "cache", key)
    counts = cache.fill(frontend, items, batch_size=2, progressbar=False)
    assert counts["computed"] == 2
    entries = [cache.get(utt, path) for utt, path in items]
    wavs, lens = batch_pad_right(
        [read_audio(path, 16000, max_duration=1.0) for _, path in items]
    )
    with torch.no_grad():
        expected = encoder(wavs, lens)
        got = encoder.forward_frontend(*batch_pad_right(entries))
    assert (got - expected).abs().max() < TOL
    # training the adapters leaves the front-end, hence the key, unchanged
    params = dict(encoder.named_parameters())
    with torch.no_grad():
        for name in encoder.adapter_names:
            params[name].add_(1.0)
    assert encoder_cache_key(SSLFrontend(encoder), max_duration=1.0) == key


def test_bad_input_is_refused_in_one_line(folders):
    encoder = adapted(folders, "layer")
    with pytest.raises(AdaptationError, match="expected cached front-end outputs"):
        encoder.forward_frontend(torch.zeros(2, 5, 7))
    with pytest.raises(AdaptationError, match="expected an AdaptedSSLLayerPooling"):
        SSLFrontend(torch.nn.Linear(2, 2))


def test_the_recipe_path_use_cached_features_and_padded_batch(folders, tmp_path):
    """What recipes/train.py would do with cache_frontend (docs/encoders.md)."""
    from speechbrain.dataio.batch import PaddedBatch
    from speechbrain.dataio.dataset import DynamicItemDataset

    from zsser_modules.audio import audio_pipeline
    from zsser_modules.feature_cache import use_cached_features

    encoder = adapted(folders, "group")
    rows = {}
    for i, seconds in enumerate((1.2, 0.5, 0.9)):
        path = write_tone(tmp_path / f"u{i}.wav", seconds=seconds, sample_rate=16000)
        rows[f"u{i}"] = {"wav": str(path)}
    data = DynamicItemDataset(
        rows,
        dynamic_items=[audio_pipeline(max_duration=1.0)],
        output_keys=["id", "sig"],
    )
    audio = PaddedBatch([data[i] for i in range(len(rows))])
    with torch.no_grad():
        expected = encoder(*audio.sig)
    frontend = SSLFrontend(encoder)
    cache = FeatureCache(
        tmp_path / "cache", encoder_cache_key(frontend, max_duration=1.0)
    )
    use_cached_features(
        [data], cache, frontend, provides="frontend_feats", progressbar=False
    )
    batch = PaddedBatch([data[i] for i in range(len(rows))])
    assert "sig" not in batch.__dict__ and batch.frontend_feats.data.dim() == 3
    with torch.no_grad():
        got = encoder.forward_frontend(*batch.frontend_feats)
        through_forward = encoder(*batch.frontend_feats, from_frontend=True)
    assert (got - expected).abs().max() < TOL
    assert torch.equal(through_forward, got)  # what DDP calls
    with pytest.raises(AdaptationError, match="pass from_frontend=True"):
        encoder(*batch.frontend_feats)


def test_training_does_not_backpropagate_through_the_frozen_front_end(folders):
    """Hugging Face's feature encoder makes its input require grad in training
    mode unless frozen with _freeze_parameters: a wasted backward pass."""
    encoder = adapted(folders, "group")
    encoder.train()
    seen = []
    hook = encoder.model.feature_extractor.register_forward_hook(
        lambda module, args, out: seen.append(out.requires_grad)
    )
    try:
        wavs, lens = padded_batch()
        encoder(wavs, lens).sum().backward()
    finally:
        hook.remove()
    assert seen and not any(seen)
