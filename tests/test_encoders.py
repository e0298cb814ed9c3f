"""Tests of zsser_modules.encoders on tiny random models (offline)."""

import pytest
import torch
import torch.nn.functional as F
from encoder_utils import TINY_HIDDEN, TINY_LAYERS, make_tiny_ssl

from zsser_modules.encoders import (
    FbankEncoder,
    SSLLayerPooling,
    WeightedLayerSum,
    masked_mean,
)

SHORT, LONG = 8000, 24000


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssl")
    return {
        "root": root,
        "wavlm": make_tiny_ssl(root / "wavlm", "wavlm"),
        "wav2vec2": make_tiny_ssl(root / "wav2vec2", "wav2vec2"),
        "hubert": make_tiny_ssl(root / "hubert", "hubert"),
        "wavlm_group": make_tiny_ssl(root / "wavlm_group", "wavlm", "group"),
    }


def load(models, kind="wavlm", **kwargs):
    return SSLLayerPooling(str(models[kind]), str(models["root"] / "hf"), **kwargs)


@pytest.fixture(scope="module")
def padded_pair():
    """A short and a long utterance, alone and as one padded batch."""
    gen = torch.Generator().manual_seed(0)
    short = 0.3 * torch.randn(1, SHORT, generator=gen)
    long_ = 0.3 * torch.randn(1, LONG, generator=gen)
    batch = torch.zeros(2, LONG)
    batch[0, :SHORT], batch[1] = short[0], long_[0]
    return short, long_, batch, torch.tensor([SHORT / LONG, 1.0])


# ---------------------------------------------------------------- masked_mean
def test_masked_mean_relative_and_absolute_lengths_agree():
    x = torch.randn(3, 10, 4)
    absolute = masked_mean(x, torch.tensor([10, 4, 7]))
    relative = masked_mean(x, torch.tensor([1.0, 0.4, 0.7]))
    assert torch.allclose(absolute, relative)
    assert torch.allclose(absolute[1], x[1, :4].mean(0))


def test_masked_mean_ignores_non_finite_padding():
    x = torch.randn(2, 5, 3)
    x[0, 3:] = float("nan")
    x[1, 4:] = float("inf")
    out = masked_mean(x, torch.tensor([3, 4]))
    assert torch.isfinite(out).all()
    assert torch.allclose(out[0], x[0, :3].mean(0))


def test_masked_mean_other_time_axis():
    x = torch.randn(2, 3, 6, 4)  # [B, L, T, D]
    out = masked_mean(x, torch.tensor([6, 2]), dim=2)
    assert out.shape == (2, 3, 4)
    assert torch.allclose(out[1], x[1, :, :2].mean(1))


@pytest.mark.parametrize(
    "lengths", [torch.tensor([0, 3]), torch.tensor([3, 9]), torch.tensor([3])]
)
def test_masked_mean_rejects_bad_lengths(lengths):
    with pytest.raises(ValueError, match="masked_mean"):
        masked_mean(torch.randn(2, 5, 3), lengths)


# ----------------------------------------------------------- WeightedLayerSum
def test_weighted_layer_sum_weights_and_gradient():
    pool = WeightedLayerSum(3)
    with torch.no_grad():
        pool.weights.copy_(torch.tensor([2.0, 0.0, -1.0]))
    x = torch.randn(4, 3, 8)
    out = pool(x)
    w = torch.softmax(torch.tensor([2.0, 0.0, -1.0]), 0)
    assert torch.allclose(out, (w[None, :, None] * x).sum(1), atol=1e-6)
    assert torch.isclose(pool.layer_weights().sum(), torch.tensor(1.0))
    out.sum().backward()
    assert pool.weights.grad is not None and pool.weights.grad.abs().sum() > 0


def test_weighted_layer_sum_rejects_wrong_layer_count():
    with pytest.raises(ValueError, match="num_layers"):
        WeightedLayerSum(3)(torch.randn(2, 4, 8))


def test_weighted_sum_and_masked_mean_commute():
    """Pool-then-weight equals weight-then-pool: caching [L, D] is exact."""
    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(3, 5, 40, 16, generator=gen)  # [B, L, T, D]
    frames = torch.tensor([40, 17, 3])
    pool = WeightedLayerSum(5)
    with torch.no_grad():
        pool.weights.copy_(torch.randn(5, generator=gen))
    pooled_first = pool(masked_mean(hidden, frames, dim=2))
    weighted_first = masked_mean(pool(hidden), frames, dim=1)
    assert torch.allclose(pooled_first, weighted_first, atol=1e-6)


def test_commutation_through_the_ssl_encoder(models):
    enc = load(models)
    x = 0.3 * torch.randn(1, 12000, generator=torch.Generator().manual_seed(2))
    pool = WeightedLayerSum(enc.num_layers)
    with torch.no_grad():
        pool.weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
        hidden = enc.hf_model(
            F.layer_norm(x, x.shape[1:]), output_hidden_states=True
        ).hidden_states
        frame_level = pool(torch.stack(hidden, dim=1))  # [1, T', D]
        assert torch.allclose(pool(enc(x)), frame_level.mean(1), atol=1e-5)


# ------------------------------------------------------------ SSLLayerPooling
def test_ssl_shapes_and_attributes(models):
    enc = load(models)
    assert enc.num_layers == TINY_LAYERS + 1
    assert enc.output_size == TINY_HIDDEN
    out = enc(torch.randn(3, 16000), torch.tensor([1.0, 0.8, 0.5]))
    assert out.shape == (3, TINY_LAYERS + 1, TINY_HIDDEN)
    assert torch.isfinite(out).all()


def test_ssl_frozen_by_default(models):
    enc = load(models)
    assert all(not p.requires_grad for p in enc.parameters())
    assert enc.hf_model.config.layerdrop == 0.0
    enc.train()  # what Brain.fit does to every module
    assert enc.training and not enc.hf_model.training
    out = enc(torch.randn(1, 8000))
    assert out.grad_fn is None and not out.requires_grad


def test_ssl_unfrozen_trains_with_fixed_layer_count(models):
    enc = load(models, freeze=False)
    enc.train()
    assert enc.hf_model.training and enc.hf_model.config.layerdrop == 0.0
    out = enc(torch.randn(2, 8000), torch.tensor([1.0, 0.7]))
    assert out.shape[1] == TINY_LAYERS + 1
    out.sum().backward()
    grads = [p.grad for p in enc.parameters() if p.requires_grad]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize(
    "kind,wrapper", [("wavlm", "WavLM"), ("wav2vec2", "Wav2Vec2"), ("hubert", "HuBERT")]
)
def test_ssl_auto_picks_the_speechbrain_wrapper(models, kind, wrapper):
    enc = load(models, kind)
    assert type(enc.ssl).__name__ == wrapper
    assert enc.hub_class == kind


def test_ssl_layer_selection(models, padded_pair):
    short = padded_pair[0]
    full = load(models)(short)
    some = load(models, layers=[0, -1])
    assert some.num_layers == 2 and some.layers == (0, TINY_LAYERS)
    assert torch.allclose(some(short), full[:, [0, TINY_LAYERS]], atol=1e-6)


def test_ssl_user_errors(models):
    with pytest.raises(ValueError, match="out of range"):
        load(models, layers=[5])
    with pytest.raises(ValueError, match="batch_mode"):
        load(models, batch_mode="fast")
    with pytest.raises(ValueError, match="No SpeechBrain wrapper"):
        load(models, hub_class="data2vec-audio")
    with pytest.raises(ValueError, match="use --encoder=whisper"):
        load(models, hub_class="whisper")
    enc = load(models)
    with pytest.raises(ValueError, match="too short"):
        enc(torch.randn(2, 16000), torch.tensor([1.0, 0.01]))
    with pytest.raises(ValueError, match=r"\[batch, time\]"):
        enc(torch.randn(16000))


@pytest.mark.parametrize("kind", ["wavlm", "wav2vec2", "hubert"])
def test_ssl_padding_invariance(models, padded_pair, kind):
    """An utterance alone or padded in a batch gives the same features."""
    short, long_, batch, lens = padded_pair
    enc = load(models, kind)
    assert enc.batch_mode == "padded"
    together = enc(batch, lens)
    assert torch.allclose(enc(short)[0], together[0], atol=1e-5, rtol=0)
    assert torch.allclose(enc(long_)[0], together[1], atol=1e-5, rtol=0)


def test_naive_pooling_leaks_padding(models, padded_pair):
    """What the masking fixes: both naive variants move the short utterance."""
    short, _, batch, lens = padded_pair
    enc = load(models)
    alone = enc(short)[0]
    frames = enc.frame_lengths(torch.tensor([SHORT, LONG]))
    with torch.no_grad():
        # SpeechBrain's WavLM wrapper: attention mask, but the waveform
        # layer_norm spans the padded row
        sb_out = enc.ssl(batch, lens)  # [L+1, B, T', D]
        sb_pooled = masked_mean(sb_out.transpose(0, 1), frames, dim=2)[0]
        # WeightedSSLModel-style: no mask, mean over all frames
        hidden = enc.hf_model(
            F.layer_norm(batch, batch.shape[1:]), output_hidden_states=True
        ).hidden_states
        unmasked = torch.stack(hidden, dim=1).mean(2)[0]
    assert (sb_pooled - alone).abs().max() > 1e-3
    assert (unmasked - alone).abs().max() > 1e-2
    # for an unpadded signal our normalisation is SpeechBrain's
    sb_alone = enc.ssl(short)  # [L+1, 1, T', D]
    assert torch.allclose(sb_alone.mean(2)[:, 0], alone, atol=1e-5)


def test_group_norm_models_run_per_utterance(models, padded_pair):
    """GroupNorm over time sees padding: auto mode avoids batching them."""
    short, long_, batch, lens = padded_pair
    auto = load(models, "wavlm_group")
    assert auto.batch_mode == "per_utterance"
    together = auto(batch, lens)
    assert torch.allclose(auto(short)[0], together[0], atol=1e-6, rtol=0)
    assert torch.allclose(auto(long_)[0], together[1], atol=1e-6, rtol=0)
    padded = load(models, "wavlm_group", batch_mode="padded")
    assert (padded(batch, lens)[0] - together[0]).abs().max() > 1e-2


def test_feature_settings_describe_the_encoder(models):
    settings = load(models, layers=[1, 2]).feature_settings()
    assert settings["layers"] == [1, 2]
    assert settings["pooling"] == "masked_mean"
    assert settings["config"]["hidden_size"] == TINY_HIDDEN
    assert "layerdrop" not in settings["config"]


# --------------------------------------------------------------- FbankEncoder
def test_fbank_encoder_shapes_and_size():
    enc = FbankEncoder(emb_dim=32)
    assert enc.output_size == 32
    out = enc(torch.randn(3, 16000), torch.tensor([1.0, 0.7, 0.4]))
    assert out.shape == (3, 32)
    assert sum(p.numel() for p in enc.parameters()) < 1_000_000


def test_fbank_encoder_padding_is_masked():
    """Padded vs alone: near-identical; ignoring the lengths: far off."""
    torch.manual_seed(0)
    enc = FbankEncoder(n_mels=40, channels=(64, 64, 64, 64, 192)).eval()
    gen = torch.Generator().manual_seed(3)
    short, long_ = (
        torch.randn(1, 16000, generator=gen),
        torch.randn(1, 48000, generator=gen),
    )
    batch = torch.zeros(2, 48000)
    batch[0, :16000], batch[1] = short[0], long_[0]
    with torch.no_grad():
        alone = enc(short)
        masked = enc(batch, torch.tensor([1 / 3, 1.0]))[:1]
        unmasked = enc(batch[:1])
    assert F.cosine_similarity(alone, masked).item() > 0.999
    assert F.cosine_similarity(alone, unmasked).item() < 0.99


def test_fbank_encoder_rejects_bad_res2net_scale():
    with pytest.raises(ValueError, match="res2net_scale"):
        FbankEncoder(channels=(100, 100, 100, 100, 300), res2net_scale=8)


def test_fbank_stats_encoder_is_frozen_batch_invariant_and_informative():
    from zsser_modules.encoders import FbankStatsEncoder

    torch.manual_seed(0)
    enc = FbankStatsEncoder(n_mels=40)
    assert enc.output_size == 240
    assert not any(p.requires_grad for p in enc.parameters())
    short, long = torch.randn(1, 8000), torch.randn(1, 16000)
    batch = torch.cat([torch.cat([short, torch.zeros(1, 8000)], 1), long])
    together = enc(batch, torch.tensor([0.5, 1.0]))
    assert torch.equal(together[0], enc(short)[0])
    assert torch.equal(together[1], enc(long)[0])
    # louder input -> higher mean log-mel energy; the statistics see it
    assert enc(short * 10)[0, :40].mean() > enc(short)[0, :40].mean()
