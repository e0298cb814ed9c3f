"""AddedModulesMixin, optimize_and_checkpoint, the DDP-safe calls and flag_pipeline.

The end-to-end check (a second recipe on 1 and 2 processes) is
tests/test_reuse_recipe.py; these are the pieces' contracts and refusals.
"""

import math

import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from zsser_modules import (
    AddedModulesMixin,
    AdversarialClassifier,
    ModuleSetupError,
    adversary_loss,
    check_optimized_and_checkpointed,
    dann_lambda,
    flag_pipeline,
    optimize_and_checkpoint,
    parse_flag,
    reversal_layers,
    set_reversal_coefficient,
    unwrap_module,
)

RUN_OPTS = {"device": "cpu", "noprogressbar": True}


class Toy(AddedModulesMixin, sb.Brain):
    """An encoder, a classifier and a speaker adversary on random vectors."""

    def compute_forward(self, batch, stage):
        x, _, _ = batch
        emb = self.modules.encoder(x)
        return self.modules.head(emb), emb

    def compute_objectives(self, predictions, batch, stage):
        logits, emb = predictions
        _, y, spk = batch
        loss = nn.functional.cross_entropy(logits, y)
        adv = adversary_loss(self.modules.adversary, emb, spk)
        return loss + adv


class RecordingToy(Toy):
    def on_fit_batch_start(self, batch, should_step):
        self.seen.append((self.optimizer_step, self.modules.adversary.lambda_))


def toy_modules():
    torch.manual_seed(0)
    return {
        "encoder": nn.Linear(4, 6),
        "head": nn.Linear(6, 3),
        "adversary": AdversarialClassifier(6, 5, hidden_size=8, dropout=0.0),
    }


def toy_data(n=20):
    g = torch.Generator().manual_seed(1)
    return torch.utils.data.TensorDataset(
        torch.randn(n, 4, generator=g), torch.arange(n) % 3, torch.arange(n) % 5
    )


def sgd(params):
    return torch.optim.SGD(params, lr=0.1)


# -- the reversal coefficient's schedule ------------------------------------------


@pytest.mark.parametrize("accumulation", [1, 2, 3])
def test_the_coefficient_follows_dann_at_every_step(accumulation):
    brain = RecordingToy(
        modules=toy_modules(),
        opt_class=sgd,
        run_opts={**RUN_OPTS, "grad_accumulation_factor": accumulation},
    )
    brain.seen = []
    brain.fit(EpochCounter(3), toy_data(20), train_loader_kwargs={"batch_size": 4})
    per_epoch = 5 // accumulation  # 5 batches; an optimizer step every k
    assert brain.reversal_total_steps == per_epoch * 3
    assert brain.optimizer_step == per_epoch * 3
    for step, coefficient in brain.seen:
        assert coefficient == dann_lambda(step / (per_epoch * 3))
    assert brain.reversal_coefficient == dann_lambda(1.0)


def test_gamma_comes_from_the_brain_and_is_validated():
    brain = RecordingToy(
        modules=toy_modules(), opt_class=sgd, run_opts=RUN_OPTS, reversal_gamma=3.0
    )
    brain.seen = []
    brain.fit(EpochCounter(1), toy_data(8), train_loader_kwargs={"batch_size": 4})
    assert brain.seen[1][1] == dann_lambda(0.5, gamma=3.0)
    with pytest.raises(ValueError, match="gamma"):
        Toy(modules=toy_modules(), run_opts=RUN_OPTS, reversal_gamma=0.0)


def test_a_loader_given_to_fit_is_measured():
    brain = RecordingToy(modules=toy_modules(), opt_class=sgd, run_opts=RUN_OPTS)
    brain.seen = []
    loader = torch.utils.data.DataLoader(toy_data(12), batch_size=3)
    brain.fit(EpochCounter(2), loader)
    assert brain.reversal_total_steps == 8
    assert [c for _, c in brain.seen] == [dann_lambda(k / 8) for k in range(8)]


def test_resuming_continues_the_schedule(tmp_path):
    def make(epochs):
        modules = toy_modules()
        counter = EpochCounter(epochs)
        checkpointer = Checkpointer(tmp_path, {"counter": counter, **modules})
        brain = RecordingToy(
            modules=modules, opt_class=sgd, run_opts=RUN_OPTS, checkpointer=checkpointer
        )
        brain.seen = []
        return brain, counter, checkpointer

    brain, counter, checkpointer = make(2)
    brain.fit(counter, toy_data(8), train_loader_kwargs={"batch_size": 4})
    checkpointer.save_checkpoint()
    # Continued with a larger epoch limit: 4 steps done of 2 * 3 planned.
    brain, counter, _ = make(3)
    brain.fit(counter, toy_data(8), train_loader_kwargs={"batch_size": 4})
    assert [s for s, _ in brain.seen] == [4, 5]
    assert [c for _, c in brain.seen] == [dann_lambda(4 / 6), dann_lambda(5 / 6)]


def test_a_loader_without_length_or_an_unbounded_counter_is_refused():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(toy_data(8))

    brain = Toy(modules=toy_modules(), opt_class=sgd, run_opts=RUN_OPTS)
    with pytest.raises(ModuleSetupError, match="no length"):
        brain.fit(EpochCounter(1), Stream(), train_loader_kwargs={"batch_size": 4})
    brain = Toy(modules=toy_modules(), opt_class=sgd, run_opts=RUN_OPTS)
    with pytest.raises(ModuleSetupError, match="epoch counter with an integer limit"):
        brain.fit(range(1, 3), toy_data(8), train_loader_kwargs={"batch_size": 4})
    brain = Toy(
        modules=toy_modules(),
        opt_class=sgd,
        run_opts={**RUN_OPTS, "grad_accumulation_factor": 4},
    )
    with pytest.raises(ModuleSetupError, match="no optimizer step"):
        brain.fit(EpochCounter(1), toy_data(8), train_loader_kwargs={"batch_size": 4})


def test_an_on_fit_start_without_super_is_caught():
    class Skips(Toy):
        def on_fit_start(self):
            sb.Brain.on_fit_start(self)

    brain = Skips(modules=toy_modules(), opt_class=sgd, run_opts=RUN_OPTS)
    with pytest.raises(ModuleSetupError, match="super\\(\\).on_fit_start"):
        brain.fit(EpochCounter(1), toy_data(8), train_loader_kwargs={"batch_size": 4})


def test_without_reversal_layers_the_mixin_only_checks():
    modules = toy_modules()
    modules["adversary"] = nn.Linear(6, 5)

    class Plain(AddedModulesMixin, sb.Brain):
        def compute_forward(self, batch, stage):
            return self.modules.head(self.modules.encoder(batch[0]))

        def compute_objectives(self, logits, batch, stage):
            loss = nn.functional.cross_entropy(logits, batch[1])
            return loss + 0 * self.modules.adversary(torch.zeros(1, 6)).sum()

    brain = Plain(modules=modules, opt_class=sgd, run_opts=RUN_OPTS)
    brain.fit(EpochCounter(1), toy_data(8), train_loader_kwargs={"batch_size": 4})
    assert brain.reversal_coefficient is None


# -- optimised and checkpointed, or refused ---------------------------------------


class HostOptimizer(Toy):
    """A host like IEMOCAP's: its optimizer covers the head only."""

    def init_optimizers(self):
        self.optimizer = sgd(self.modules.head.parameters())
        self.optimizers_dict = {"model_optimizer": self.optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer)
        if self.added:
            optimize_and_checkpoint(self, self.added)


def host(tmp_path, added, recoverables=("head",)):
    modules = toy_modules()
    checkpointer = Checkpointer(
        tmp_path, {name: modules[name] for name in recoverables}
    )
    brain = HostOptimizer(modules=modules, run_opts=RUN_OPTS, checkpointer=checkpointer)
    brain.added = added
    return brain


def test_a_host_optimizer_that_misses_modules_is_refused_in_one_line(tmp_path):
    brain = host(tmp_path, added=[])
    with pytest.raises(ModuleSetupError) as error:
        brain.fit(EpochCounter(1), toy_data(8), train_loader_kwargs={"batch_size": 4})
    message = str(error.value)
    assert "\n" not in message
    assert "'encoder': 2 of its 2 trainable parameters are in no optimizer" in message
    assert "'adversary' is not saved by the checkpointer" in message
    assert "'head'" not in message
    assert "optimize_and_checkpoint" in message


def test_optimize_and_checkpoint_makes_the_added_modules_train_and_save(tmp_path):
    brain = host(tmp_path, added=["encoder", "adversary"])
    before = {
        name: [p.detach().clone() for p in brain.modules[name].parameters()]
        for name in ("encoder", "adversary")
    }
    brain.fit(EpochCounter(1), toy_data(8), train_loader_kwargs={"batch_size": 4})
    assert len(brain.optimizer.param_groups) == 3
    for name, params in before.items():
        after = list(brain.modules[name].parameters())
        assert all(not torch.equal(a, b) for a, b in zip(params, after)), name
        assert brain.checkpointer.recoverables[name] is brain.modules[name]
    # A second call (e.g. a second fit) changes nothing.
    assert optimize_and_checkpoint(brain, ["encoder", "adversary"]) == {
        "optimized": [],
        "checkpointed": [],
    }


def test_optimize_and_checkpoint_refusals(tmp_path):
    brain = host(tmp_path, added=[])
    with pytest.raises(ModuleSetupError, match="no optimizer yet"):
        optimize_and_checkpoint(brain, ["encoder"])
    brain.optimizer = sgd(brain.modules.head.parameters())
    with pytest.raises(ModuleSetupError, match="no module 'projection'"):
        optimize_and_checkpoint(brain, ["projection"])
    brain.checkpointer.add_recoverable("encoder", nn.Linear(2, 2))
    with pytest.raises(ModuleSetupError, match="already has a recoverable named"):
        optimize_and_checkpoint(brain, ["encoder"])


def test_an_optimizer_left_out_of_the_checkpointer_is_refused(tmp_path):
    class Forgets(HostOptimizer):
        def init_optimizers(self):
            super().init_optimizers()
            del self.checkpointer.recoverables["optimizer"]

    modules = toy_modules()
    checkpointer = Checkpointer(tmp_path, dict(modules))
    brain = Forgets(modules=modules, run_opts=RUN_OPTS, checkpointer=checkpointer)
    brain.added = ["encoder", "adversary"]
    with pytest.raises(ModuleSetupError, match="an optimizer \\(SGD\\) updating"):
        brain.fit(EpochCounter(1), toy_data(8), train_loader_kwargs={"batch_size": 4})


def test_a_frozen_adversary_is_refused():
    modules = toy_modules()
    modules["adversary"].requires_grad_(False)  # e.g. random and never trained
    brain = Toy(modules=modules, opt_class=sgd, run_opts=RUN_OPTS)
    brain.optimizer = sgd(
        [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    )
    with pytest.raises(ModuleSetupError, match="'adversary' holds a gradient reversal"):
        check_optimized_and_checkpointed(brain)


def test_an_adversary_outside_modules_is_refused():
    modules = toy_modules()
    stray = modules.pop("adversary")
    brain = sb.Brain(
        modules=modules, hparams={"speaker_adversary": stray}, run_opts=RUN_OPTS
    )
    brain.optimizer = sgd([p for m in modules.values() for p in m.parameters()])
    with pytest.raises(ModuleSetupError, match="hparams 'speaker_adversary'"):
        check_optimized_and_checkpointed(brain)


def test_a_module_meant_to_be_frozen_passes():
    modules = toy_modules()
    modules["encoder"].requires_grad_(False)
    brain = sb.Brain(modules=modules, run_opts=RUN_OPTS)
    brain.optimizer = sgd(
        [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    )
    check_optimized_and_checkpointed(brain)


# -- calls on DDP-wrapped modules -------------------------------------------------


@pytest.fixture
def process_group(tmp_path):
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1
    )
    yield
    torch.distributed.destroy_process_group()


def test_ddp_wrapped_adversary(process_group):
    plain = AdversarialClassifier(4, 3, dropout=0.0)
    wrapped = DistributedDataParallel(plain)
    assert not hasattr(wrapped, "set_lambda") and not hasattr(wrapped, "loss")
    assert unwrap_module(wrapped) is plain
    assert set_reversal_coefficient(nn.ModuleDict({"adv": wrapped}), 0.4) == 1
    assert plain.lambda_ == 0.4
    assert reversal_layers(wrapped) == [plain.grl]
    x = torch.randn(5, 4)
    targets = torch.tensor([0, 1, 2, 1, 0])
    ignore = torch.tensor([False, True, False, False, True])
    expected = plain.loss(x, targets.masked_fill(ignore, plain.ignore_index))
    assert torch.equal(adversary_loss(wrapped, x, targets, ignore=ignore), expected)
    assert torch.equal(adversary_loss(plain, x, targets, ignore=ignore), expected)


def test_adversary_loss_refusals():
    adversary = AdversarialClassifier(4, 3)
    x, targets = torch.randn(2, 4), torch.tensor([0, 1])
    with pytest.raises(TypeError, match="bool tensor.*flag_pipeline"):
        adversary_loss(adversary, x, targets, ignore=["0", "1"])
    with pytest.raises(TypeError, match="bool tensor"):
        adversary_loss(adversary, x, targets, ignore=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="one per sample"):
        adversary_loss(adversary, x, targets, ignore=torch.tensor([True]))
    with pytest.raises(TypeError, match="expected an AdversarialClassifier"):
        adversary_loss(nn.Linear(4, 3), x, targets)
    with pytest.raises(ValueError, match="no GradientReversal"):
        set_reversal_coefficient(nn.Linear(2, 2), 0.5)
    with pytest.raises(ValueError, match=">= 0"):
        set_reversal_coefficient(adversary, -1.0)
    with pytest.raises(ValueError, match=">= 0"):
        set_reversal_coefficient(adversary, math.nan)


# -- spk_confounded ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("True", True),
        ("1", True),
        ("False", False),
        ("0", False),
        (True, True),
        (0, False),
    ],
)
def test_parse_flag_accepts(value, expected):
    assert parse_flag(value) is expected


@pytest.mark.parametrize("value", ["true", "yes", "", " 1", "2", None, 2, 1.0])
def test_parse_flag_refuses_in_one_line(value):
    with pytest.raises(ValueError) as error:
        parse_flag(value, column="spk_confounded")
    message = str(error.value)
    assert message.startswith("spk_confounded: expected True, False, 1 or 0, got ")
    assert "\n" not in message


def test_flag_pipeline_gives_a_bool_tensor_from_a_csv(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("ID,spk_confounded\na,0\nb,1\nc,True\nd,False\n")
    dataset = DynamicItemDataset.from_csv(
        csv,
        dynamic_items=[flag_pipeline()],
        output_keys=["id", "spk_confounded", "confounded"],
    )
    batch = PaddedBatch([dataset[i] for i in range(4)])
    assert batch.spk_confounded == ["0", "1", "True", "False"]  # the raw strings
    assert torch.equal(batch.confounded, torch.tensor([False, True, True, False]))
    with pytest.raises(ValueError, match="must differ"):
        flag_pipeline("spk_confounded", "spk_confounded")
