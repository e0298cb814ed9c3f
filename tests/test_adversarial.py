"""Tests of gradient reversal, the DANN schedule and the adversarial classifier."""

import math

import pytest
import torch
import torch.nn.functional as F

from zsser_modules import (
    AdversarialClassifier,
    GradientReversal,
    dann_lambda,
    grad_reverse,
)


def _input_grad(fn, x):
    """Gradient of ``fn(x).sum()``-like scalar output with respect to ``x``."""
    x = x.detach().clone().requires_grad_(True)
    fn(x).backward()
    return x.grad


# -- grad_reverse / GradientReversal -------------------------------------------


@pytest.mark.parametrize("lambda_", [0.0, 0.25, 1.0, 3.0])
def test_grad_reverse_is_identity_forward_and_negated_backward(lambda_):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    weights = torch.randn(5, 3, generator=g, dtype=torch.float64)

    def plain(v):
        return (weights * torch.tanh(v)).sum()

    def reversed_(v):
        return (weights * torch.tanh(grad_reverse(v, lambda_))).sum()

    assert torch.equal(grad_reverse(x, lambda_), x)
    assert torch.allclose(_input_grad(reversed_, x), -lambda_ * _input_grad(plain, x))


def test_grad_reverse_passes_gradcheck_of_the_scaled_identity():
    # The reversed Jacobian is -lambda * I; check it against finite differences
    # of the function v -> -lambda * v, which has that same Jacobian.
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    lambda_ = 0.7
    analytical = torch.autograd.functional.jacobian(
        lambda v: grad_reverse(v, lambda_), x
    )
    numerical = torch.autograd.functional.jacobian(lambda v: -lambda_ * v, x)
    assert torch.allclose(analytical, numerical)
    # The backward of the GRL is itself differentiable (create_graph=True
    # works, e.g. for gradient penalties).
    y = grad_reverse(x, lambda_)
    (grad,) = torch.autograd.grad(y.pow(2).sum(), x, create_graph=True)
    assert torch.allclose(grad, -lambda_ * 2 * x)


def test_module_lambda_change_takes_effect_mid_training():
    grl = GradientReversal(lambda_=1.0)
    x = torch.ones(3, requires_grad=True)
    grl(x).sum().backward()
    assert torch.equal(x.grad, -torch.ones(3))

    grl.set_lambda(0.25)
    x.grad = None
    grl(x).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.25))

    grl.lambda_ = 2.0  # plain attribute assignment works too
    x.grad = None
    grl(x).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -2.0))


def test_lambda_taken_at_forward_time():
    # The value used is the one set when the forward pass ran: changing it
    # between forward and backward does not affect that step.
    grl = GradientReversal(lambda_=1.0)
    x = torch.ones(2, requires_grad=True)
    y = grl(x).sum()
    grl.set_lambda(5.0)
    y.backward()
    assert torch.equal(x.grad, -torch.ones(2))


def test_gradient_reversal_has_no_parameters_and_no_state():
    grl = GradientReversal(0.5)
    assert list(grl.parameters()) == []
    assert grl.state_dict() == {}
    assert "lambda_=0.5" in repr(grl)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_bad_lambda_is_rejected(bad):
    with pytest.raises(ValueError, match="lambda_"):
        GradientReversal(bad)
    with pytest.raises(ValueError, match="lambda_"):
        GradientReversal().set_lambda(bad)
    with pytest.raises(ValueError, match="lambda_"):
        grad_reverse(torch.ones(1), bad)
    with pytest.raises(ValueError, match="lambda_"):
        AdversarialClassifier(4, 2).set_lambda(bad)
    with pytest.raises(TypeError, match="lambda_"):
        GradientReversal("strong")


# -- dann_lambda ---------------------------------------------------------------


def test_dann_schedule_endpoints_and_formula():
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(1.0) == pytest.approx(0.9999, abs=1e-4)
    assert dann_lambda(1.0) < 1.0
    assert dann_lambda(0.3, gamma=5.0) == pytest.approx(2 / (1 + math.exp(-1.5)) - 1)


def test_dann_schedule_is_monotonic():
    values = [dann_lambda(step / 100) for step in range(101)]
    assert all(b > a for a, b in zip(values, values[1:]))
    assert all(0.0 <= v < 1.0 for v in values)


def test_dann_schedule_clips_and_validates_progress():
    assert dann_lambda(1.7) == dann_lambda(1.0)
    for bad in (-0.01, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="progress"):
            dann_lambda(bad)
    with pytest.raises(ValueError, match="gamma"):
        dann_lambda(0.5, gamma=0.0)


# -- AdversarialClassifier -----------------------------------------------------


def _adversary(**kwargs):
    torch.manual_seed(0)
    model = AdversarialClassifier(input_size=6, n_classes=4, hidden_size=8, **kwargs)
    return model.eval()  # no dropout, so two forward passes agree


def test_forward_shapes():
    model = _adversary(n_layers=2)
    assert model(torch.randn(3, 6)).shape == (3, 4)
    assert model(torch.randn(3, 1, 6)).shape == (3, 1, 4)
    linear = _adversary(n_layers=0)
    assert sum(isinstance(m, torch.nn.Linear) for m in linear.modules()) == 1


@pytest.mark.parametrize("lambda_", [1.0, 0.3])
def test_input_gradient_is_the_negated_classifier_gradient(lambda_):
    model = _adversary(lambda_=lambda_, n_layers=2)
    x = torch.randn(5, 6)
    targets = torch.tensor([0, 1, 2, 3, 1])

    def plain_loss(v):
        return F.cross_entropy(model.classifier(v), targets)

    adv_grad = _input_grad(lambda v: model.loss(v, targets), x)
    assert torch.allclose(adv_grad, -lambda_ * _input_grad(plain_loss, x), atol=1e-7)
    # The classifier itself receives the ordinary (non-reversed) gradient.
    model.zero_grad()
    model.loss(x, targets).backward()
    adv_param_grads = [p.grad.clone() for p in model.classifier.parameters()]
    model.zero_grad()
    plain_loss(x).backward()
    for adv, plain in zip(adv_param_grads, model.classifier.parameters()):
        assert torch.allclose(adv, plain.grad)


def test_loss_equals_cross_entropy_over_kept_samples():
    model = _adversary()
    x = torch.randn(6, 6)
    targets = torch.tensor([0, -100, 2, 3, -100, 1])
    kept = targets != -100
    expected = F.cross_entropy(model(x[kept]), targets[kept])
    assert torch.allclose(model.loss(x, targets), expected)
    # SpeechBrain-style [batch, 1, dim] / [batch, 1] inputs give the same loss.
    assert torch.allclose(model.loss(x.unsqueeze(1), targets.unsqueeze(1)), expected)


def test_ignored_samples_get_zero_gradient():
    model = _adversary()
    x = torch.randn(6, 6, requires_grad=True)
    targets = torch.tensor([0, -100, 2, 3, -100, 1])
    model.loss(x, targets).backward()
    assert not x.grad[1].any() and not x.grad[4].any()
    assert x.grad[[0, 2, 3, 5]].abs().sum(dim=1).gt(0).all()


def test_custom_ignore_index():
    model = _adversary(ignore_index=-1)
    x = torch.randn(3, 6, requires_grad=True)
    model.loss(x, torch.tensor([-1, 1, 2])).backward()
    assert not x.grad[0].any()


def test_all_ignored_batch_gives_a_finite_zero_that_backpropagates():
    model = _adversary()
    x = torch.randn(4, 6, requires_grad=True)
    loss = model.loss(x, torch.full((4,), -100))
    assert loss.item() == 0.0 and torch.isfinite(loss) and loss.requires_grad
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_lambda_passthrough():
    model = _adversary(lambda_=0.5)
    assert model.lambda_ == 0.5 and model.grl.lambda_ == 0.5
    model.set_lambda(dann_lambda(0.5))
    assert model.grl.lambda_ == pytest.approx(dann_lambda(0.5))
    model.lambda_ = 0.0
    x = torch.randn(2, 6, requires_grad=True)
    model.loss(x, torch.tensor([0, 1])).backward()
    assert not x.grad.any()


def test_bad_targets_and_arguments_are_rejected():
    model = _adversary()
    x = torch.randn(3, 6)
    with pytest.raises(ValueError, match=r"outside \[0, 4\)"):
        model.loss(x, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="one target per embedding"):
        model.loss(x, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        model.loss(x, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="ignore_index"):
        AdversarialClassifier(6, 4, ignore_index=2)
    with pytest.raises(ValueError, match="n_classes"):
        AdversarialClassifier(6, 0)
    with pytest.raises(ValueError, match="dropout"):
        AdversarialClassifier(6, 4, dropout=1.0)
