"""Tests of the language-aware supervised contrastive loss (zsser_modules/supcon.py).

Three independent references:
- ``khosla_supcon``: the single-view, ``contrast_mode="all"`` SupCon loss of
  Khosla et al. (2020), eq. 2, in the mask/matrix form of their reference code;
- ``pytorch_metric_learning.losses.SupConLoss``;
- ``weighted_supcon_loop``: a per-anchor Python loop over the weighted formula.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.losses import SupConLoss as PMLSupConLoss

from zsser_modules import SupConLoss
from zsser_modules.supcon import positive_pair_stats


def khosla_supcon(features, labels, temperature, base_temperature):
    """SupCon of Khosla et al. with one view, in float64, as a mask computation.

    Every anchor must have at least one positive (the reference averages over
    all anchors and divides by the number of positives).
    """
    z = F.normalize(features.double(), dim=1)
    batch_size = z.shape[0]
    mask = (labels.view(-1, 1) == labels.view(1, -1)).double()
    anchor_dot_contrast = z @ z.T / temperature
    logits_max, _ = anchor_dot_contrast.max(dim=1, keepdim=True)
    logits = anchor_dot_contrast - logits_max.detach()
    logits_mask = 1.0 - torch.eye(batch_size, dtype=torch.float64)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(dim=1, keepdim=True))
    mean_log_prob_pos = (mask * log_prob).sum(dim=1) / mask.sum(dim=1)
    loss = -(temperature / base_temperature) * mean_log_prob_pos
    return loss.mean()


def weighted_supcon_loop(
    features, labels, languages, temperature, base, weight, weighting="anchor"
):
    """Direct transcription of the weighted formulas, anchor by anchor.

    anchor: mean over anchors of -sum_p w_ip log p_ip / sum_p w_ip.
    batch: sum_i sum_p v_ip l_ip / sum_i sum_p v_ip with v_ip = w_ip / |P(i)|.
    """
    z = F.normalize(features.double(), dim=1)
    n = z.shape[0]
    labels = labels.tolist()
    languages = [0] * n if languages is None else list(languages)
    anchor_losses = []
    batch_numerator, batch_denominator = 0.0, 0.0
    for i in range(n):
        denominator = sum(
            math.exp(float(z[i] @ z[a]) / temperature) for a in range(n) if a != i
        )
        weighted_sum, weight_sum = 0.0, 0.0
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        for p in positives:
            w = 1.0 if languages[p] == languages[i] else weight
            log_prob = float(z[i] @ z[p]) / temperature - math.log(denominator)
            weighted_sum += w * log_prob
            weight_sum += w
            pair_loss = -(temperature / base) * log_prob
            batch_numerator += w / len(positives) * pair_loss
            batch_denominator += w / len(positives)
        if weight_sum > 0:
            anchor_losses.append(-(temperature / base) * weighted_sum / weight_sum)
    if weighting == "batch":
        return batch_numerator / batch_denominator
    return sum(anchor_losses) / len(anchor_losses)


def labels_with_positives(n, n_classes, generator):
    """Random labels in which every class occurs at least twice."""
    base = torch.arange(n_classes).repeat_interleave(2)
    rest = torch.randint(0, n_classes, (n - base.numel(),), generator=generator)
    labels = torch.cat([base, rest])
    return labels[torch.randperm(n, generator=generator)]


CASES = [
    (seed, n, d, c)
    for seed, (n, d, c) in enumerate(
        [(8, 4, 2), (16, 32, 4), (33, 16, 5), (64, 128, 4)]
    )
]


@pytest.mark.parametrize("seed, n, dim, n_classes", CASES)
@pytest.mark.parametrize("temperature, base", [(0.07, 0.07), (0.1, 0.07), (0.5, 1.0)])
def test_matches_khosla_reference(seed, n, dim, n_classes, temperature, base):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g) * 3.0
    y = labels_with_positives(n, n_classes, g)
    ours = SupConLoss(temperature=temperature, base_temperature=base)(x, y)
    reference = khosla_supcon(x, y, temperature, base)
    assert ours.item() == pytest.approx(reference.item(), abs=1e-5, rel=1e-5)


@pytest.mark.parametrize("seed, n, dim, n_classes", CASES)
@pytest.mark.parametrize("temperature, base", [(0.07, 0.07), (0.2, 0.07)])
def test_matches_pytorch_metric_learning(seed, n, dim, n_classes, temperature, base):
    g = torch.Generator().manual_seed(100 + seed)
    x = torch.randn(n, dim, generator=g)
    # Plain random labels: some anchors may have no positive; both
    # implementations leave them out of the mean.
    y = torch.randint(0, n_classes, (n,), generator=g)
    ours = SupConLoss(temperature=temperature, base_temperature=base)(x, y)
    pml = PMLSupConLoss(temperature=temperature)(x, y) * (temperature / base)
    assert ours.item() == pytest.approx(pml.item(), abs=1e-5, rel=1e-5)


@pytest.mark.parametrize("weighting", ["batch", "anchor"])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0, 2.5])
def test_weighted_formula_matches_loop(seed, weight, weighting):
    g = torch.Generator().manual_seed(200 + seed)
    n = 12 + 5 * seed
    x = torch.randn(n, 8, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    lang = torch.randint(0, 3, (n,), generator=g)
    criterion = SupConLoss(
        temperature=0.1, cross_lingual_weight=weight, weighting=weighting
    )
    expected = weighted_supcon_loop(x, y, lang.tolist(), 0.1, 0.07, weight, weighting)
    assert criterion(x, y, lang).item() == pytest.approx(expected, abs=1e-5, rel=1e-5)


def test_weight_cancels_for_cross_only_anchors_only_with_anchor_weighting():
    """The lone French sample and its only (English) positive: cross-only anchors.

    Every other anchor has same-language positives only, so with anchor
    weighting cross_lingual_weight has no effect at all; batch weighting
    gives the cross-only anchors the weight.
    """
    g = torch.Generator().manual_seed(21)
    x = torch.randn(6, 8, generator=g)
    y = torch.tensor([0, 1, 1, 2, 2, 0])
    lang = torch.tensor([0, 0, 0, 0, 0, 1])
    assert positive_pair_stats(y.tolist(), lang.tolist())["cross_only"] == 2
    losses = {
        (weighting, w): SupConLoss(cross_lingual_weight=w, weighting=weighting)(
            x, y, lang
        ).item()
        for weighting in ("anchor", "batch")
        for w in (1.0, 3.0)
    }
    assert losses["anchor", 1.0] == pytest.approx(losses["anchor", 3.0], abs=1e-6)
    assert abs(losses["batch", 1.0] - losses["batch", 3.0]) > 1e-3
    assert losses["batch", 1.0] == pytest.approx(losses["anchor", 1.0], abs=1e-6)


def test_batch_weighting_gives_the_lone_anchor_the_weight():
    """Batch weighting: the lone anchor weighs cross_lingual_weight times more."""
    g = torch.Generator().manual_seed(22)
    x = torch.randn(5, 8, generator=g)
    y = torch.tensor([0, 0, 1, 1, 0])
    lang = torch.tensor([0, 0, 0, 0, 1])  # sample 4: lone French, 2 en positives
    z = F.normalize(x.double(), dim=1)
    sim = z @ z.T / 0.07

    def ell(i, p):
        others = [a for a in range(5) if a != i]
        return float(-(sim[i, p] - torch.logsumexp(sim[i, others], dim=0)))

    w = 3.0
    # anchors 0, 1: positives {1 or 0 (same, w=1), 4 (cross, w)}; |P| = 2
    # anchors 2, 3: one same-language positive; anchor 4: two cross positives
    terms = [
        (1 / 2, ell(0, 1)), (w / 2, ell(0, 4)),
        (1 / 2, ell(1, 0)), (w / 2, ell(1, 4)),
        (1.0, ell(2, 3)), (1.0, ell(3, 2)),
        (w / 2, ell(4, 0)), (w / 2, ell(4, 1)),
    ]  # fmt: skip
    expected = sum(v * t for v, t in terms) / sum(v for v, _ in terms)
    ours = SupConLoss(cross_lingual_weight=w, weighting="batch")(x, y, lang)
    assert ours.item() == pytest.approx(expected, abs=1e-5)


def test_cross_lingual_weight_changes_the_loss():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(20, 8, generator=g)
    y = torch.randint(0, 2, (20,), generator=g)
    lang = torch.arange(20) % 2
    plain = SupConLoss(cross_lingual_weight=1.0)(x, y, lang)
    weighted = SupConLoss(cross_lingual_weight=3.0)(x, y, lang)
    assert not torch.isclose(plain, weighted)
    # Weight 1 with languages equals no languages at all.
    assert torch.allclose(plain, SupConLoss()(x, y), atol=1e-6)


def test_weight_has_no_effect_when_all_languages_are_equal():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(16, 8, generator=g)
    y = torch.randint(0, 3, (16,), generator=g)
    same = torch.zeros(16, dtype=torch.long)
    plain = SupConLoss()(x, y)
    for weight in (0.0, 0.5, 4.0):
        criterion = SupConLoss(cross_lingual_weight=weight)
        assert torch.allclose(criterion(x, y, same), plain, atol=1e-6)
        assert torch.allclose(criterion(x, y, None), plain, atol=1e-6)


def test_weight_zero_keeps_same_language_positives_only():
    # Anchors 0/1 (lang 0) and 2/3 (lang 1) share class 0; anchor 4 (lang 1)
    # is the only class-1 sample of its language, its positive 5 is lang 0.
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 8, generator=g)
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    lang = torch.tensor([0, 0, 1, 1, 1, 0])
    loss = SupConLoss(temperature=0.1, cross_lingual_weight=0.0)(x, y, lang)

    z = F.normalize(x.double(), dim=1)
    sim = z @ z.T / 0.1
    expected = []
    for i, p in [(0, 1), (1, 0), (2, 3), (3, 2)]:  # anchors 4 and 5 drop out
        others = [a for a in range(6) if a != i]
        expected.append(-(sim[i, p] - torch.logsumexp(sim[i, others], dim=0)))
    expected = (0.1 / 0.07) * torch.stack(expected).mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)


def test_string_languages_equal_index_languages():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(8, 4, generator=g)
    y = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    names = ["en", "de", "en", "de", "fr", "en", "fr", "de"]
    index = torch.tensor([0, 2, 0, 2, 3, 0, 3, 2])
    criterion = SupConLoss(cross_lingual_weight=0.5)
    assert torch.allclose(criterion(x, y, names), criterion(x, y, index))


def test_labels_of_shape_batch_by_one_are_accepted():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(6, 4, generator=g)
    y = torch.tensor([0, 1, 0, 1, 2, 2])
    criterion = SupConLoss()
    assert torch.equal(criterion(x, y.unsqueeze(1)), criterion(x, y))


def test_batch_of_one_gives_a_zero_that_backpropagates():
    x = torch.randn(1, 8, requires_grad=True)
    loss = SupConLoss()(x, torch.tensor([2]))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_no_positive_pair_gives_a_zero_that_backpropagates():
    x = torch.randn(5, 8, requires_grad=True)
    loss = SupConLoss(cross_lingual_weight=2.0)(x, torch.arange(5), torch.arange(5))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_only_cross_lingual_positives_with_weight_zero_gives_zero():
    x = torch.randn(4, 8, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1])
    lang = torch.tensor([0, 1, 0, 1])
    loss = SupConLoss(cross_lingual_weight=0.0)(x, y, lang)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(x.grad).all() and not x.grad.any()


def test_all_labels_equal():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(10, 6, generator=g)
    y = torch.zeros(10, dtype=torch.long)
    ours = SupConLoss()(x, y)
    assert ours.item() == pytest.approx(
        khosla_supcon(x, y, 0.07, 0.07).item(), abs=1e-5
    )
    # With one positive and no negative, every log-probability is log(1) = 0.
    two = SupConLoss()(x[:2], y[:2])
    assert two.item() == pytest.approx(0.0, abs=1e-6)


def test_gradients_are_finite_even_for_extreme_inputs():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(16, 8, generator=g) * 1e4
    x[3] = x[2]  # identical embeddings
    x[5] = 1e-12  # nearly zero vector
    x.requires_grad_(True)
    y = torch.randint(0, 3, (16,), generator=g)
    lang = torch.randint(0, 2, (16,), generator=g)
    loss = SupConLoss(temperature=0.01, cross_lingual_weight=1.5)(x, y, lang)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(x.grad).all()


def test_gradient_matches_numerical_gradient():
    g = torch.Generator().manual_seed(10)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 0])
    lang = torch.tensor([0, 1, 0, 1, 1, 0, 0])
    # The loss computes in float32, so compare with a loose tolerance.
    criterion = SupConLoss(temperature=0.5, cross_lingual_weight=2.0)
    assert torch.autograd.gradcheck(
        lambda e: criterion(e, y, lang).double(), (x,), eps=1e-3, atol=2e-3, rtol=1e-2
    )


def test_bf16_autocast_is_finite_and_close_to_fp32():
    g = torch.Generator().manual_seed(11)
    layer = torch.nn.Linear(16, 32)
    x = torch.randn(24, 16, generator=g)
    y = torch.randint(0, 4, (24,), generator=g)
    lang = torch.randint(0, 2, (24,), generator=g)
    criterion = SupConLoss(cross_lingual_weight=2.0)
    reference = criterion(layer(x), y, lang)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        embeddings = layer(x)
        assert embeddings.dtype == torch.bfloat16
        loss = criterion(embeddings, y, lang)
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(reference.item(), rel=0.05)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_half_precision_inputs_outside_autocast():
    g = torch.Generator().manual_seed(12)
    x = torch.randn(12, 8, generator=g)
    y = torch.randint(0, 3, (12,), generator=g)
    criterion = SupConLoss()
    loss = criterion(x.half(), y)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(criterion(x, y).item(), rel=0.01)


def test_scale_invariance_of_embeddings():
    g = torch.Generator().manual_seed(13)
    x = torch.randn(10, 5, generator=g)
    y = torch.randint(0, 2, (10,), generator=g)
    criterion = SupConLoss()
    assert torch.allclose(criterion(x, y), criterion(7.0 * x, y), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"base_temperature": 0.0}, "base_temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"cross_lingual_weight": -0.1}, "cross_lingual_weight"),
        ({"cross_lingual_weight": float("inf")}, "cross_lingual_weight"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SupConLoss(**kwargs)


def test_rejects_bad_inputs():
    criterion = SupConLoss()
    x = torch.randn(4, 8)
    y = torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"\[batch, dim\].*squeeze"):
        criterion(x.unsqueeze(1), y)
    with pytest.raises(ValueError, match=r"labels of shape \[4\]"):
        criterion(x, y[:3])
    with pytest.raises(ValueError, match=r"languages of shape \[4\]"):
        criterion(x, y, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        criterion(x, y.float())
    with pytest.raises(TypeError, match="floating point"):
        criterion(torch.ones(4, 8, dtype=torch.long), y)
    with pytest.raises(ValueError, match="empty"):
        criterion(torch.randn(0, 8), torch.tensor([], dtype=torch.long))
    with pytest.raises(TypeError, match="single string"):
        criterion(x, y, "en")


def test_repr_shows_hyperparameters():
    text = repr(SupConLoss(temperature=0.1, cross_lingual_weight=2.0))
    assert "temperature=0.1" in text and "cross_lingual_weight=2.0" in text
    assert "weighting='anchor'" in text
    with pytest.raises(ValueError, match="weighting must be one of"):
        SupConLoss(weighting="pair")


def test_anchors_without_positive_are_left_out_of_the_mean():
    g = torch.Generator().manual_seed(14)
    x = torch.randn(7, 8, generator=g)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 3])  # classes 2 and 3 are singletons
    ours = SupConLoss()(x, y)
    # Same value as the mean over the five anchors that have a positive ...
    loop = weighted_supcon_loop(x, y, None, 0.07, 0.07, 1.0)
    assert ours.item() == pytest.approx(loop, abs=1e-5)
    # ... and as pytorch-metric-learning, whose reducer skips zero losses.
    assert ours.item() == pytest.approx(
        PMLSupConLoss(temperature=0.07)(x, y).item(), abs=1e-5
    )
    # The singletons still act as negatives: moving one changes the loss.
    moved = x.clone()
    moved[5] = x[0]
    assert not torch.isclose(SupConLoss()(moved, y), ours)
