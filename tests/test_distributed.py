"""Multi-process training: torchrun + DDP on CPU (gloo) matches one process.

What DDP computes with 2 processes and a per-process batch of 4: the recipe's
seeded sampler (zsser_modules.sampling, seed 1234 + epoch) gives one shuffled
order and SpeechBrain's DistributedSamplerWrapper splits it (process r takes
items r, r+2, ...), each process runs its local batch of 4, and DDP averages
the gradients: one optimizer step over a global batch of 8 made of two local
batches. So the single-process reference is the same global batch of 8 fed as those two
micro-batches of 4 with ``--grad_accumulation_factor=2``. Everything computed
per batch is then identical: BatchNorm statistics in training mode (the
filterbank ECAPA-TDNN has BatchNorm; on CPU there is no SyncBatchNorm) and
SupCon's positives and negatives (variant no_spkadv: CE + SupCon; no dropout,
whose draws would differ between processes). The trained weights agree to
float rounding (measured about 1e-6; tolerance 1e-5, a hundredth of one Adam
step at lr 1e-3).

A plain single-process batch of 8 is *not* the same computation (BatchNorm and
SupCon would see 8 utterances, not 4): its weights differ by several Adam
steps, which the last test checks so that the tolerance above is meaningful.
BatchNorm running statistics (buffers, used in evaluation) are not compared:
under DDP they follow rank 0's batches (DDP broadcasts them from rank 0).
"""

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from encoder_utils import make_tiny_ssl
from recipe_utils import REPO_ROOT, recipe_args, run_recipe, session_fixture
from speechbrain.dataio.sampler import (
    DistributedSamplerWrapper,
    ReproducibleRandomSampler,
)
from torch.utils.data import Sampler

from recipes import train
from zsser_modules import run

pytestmark = pytest.mark.slow

PER_PROCESS_BATCH = 4
WORLD_SIZE = 2
RUN = ("en_de", "fbank", "no_spkadv", "1234")
TRAINED = ("fbank", "embedding", "emo_classifier", "projection")
TOLERANCE = 1e-5
SEED = 1234  # the recipe's default --seed


class DDPOrderSampler(Sampler):
    """Single-process order of the micro-batches that DDP's processes run.

    Step k of DDP = the k-th local batch of each process; here they follow one
    another: process 0's, then process 1's. The recipe's sampler in DDP:
    ``DistributedSamplerWrapper(ReproducibleRandomSampler(dataset, seed),
    rank, shuffle=False)``, epoch 1.
    """

    def __init__(self, size, world_size, batch_size, epoch=1):
        parts = []
        for rank in range(world_size):
            sampler = DistributedSamplerWrapper(
                ReproducibleRandomSampler(range(size), seed=SEED),
                num_replicas=world_size,
                rank=rank,
                shuffle=False,
            )
            sampler.set_epoch(epoch)
            parts.append(list(sampler))
        self.order = []
        for start in range(0, len(parts[0]), batch_size):
            for part in parts:
                self.order += part[start : start + batch_size]

    def __iter__(self):
        return iter(self.order)

    def __len__(self):
        return len(self.order)


def common_args(tmp_path_factory, results):
    fixture = session_fixture(tmp_path_factory)
    args = recipe_args(
        "en_de",
        fixture,
        results,
        "--encoder=fbank",
        "--variant=no_spkadv",
        "--batch_sampler=random",  # the sampler split checked below
        "--languages=[en,de]",
        "--number_of_epochs=1",
    )
    return [arg for arg in args if not arg.startswith("--batch_size=")]


def trained_weights(results):
    """Trainable weights of the run's (single) checkpoint."""
    (checkpoint,) = (results.joinpath(*RUN) / "save").glob("CKPT+*")
    weights = {}
    for name in TRAINED:
        state = torch.load(checkpoint / f"{name}.ckpt")
        for key, value in state.items():
            if "running_" not in key and "num_batches" not in key:
                weights[f"{name}.{key}"] = value
    return weights


def train_loss(results):
    log = (results.joinpath(*RUN) / "train_log.txt").read_text()
    return float(re.search(r"train loss: ([^,\s]+)", log).group(1))


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """2 processes (torchrun, gloo, CPU), 4 utterances per process and step."""
    results = tmp_path_factory.mktemp("ddp")
    args = common_args(tmp_path_factory, results)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={WORLD_SIZE}",
        str(REPO_ROOT / "recipes" / "train.py"),
        *args,
        f"--batch_size={PER_PROCESS_BATCH}",
        "--distributed_backend=gloo",
        "--device=cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return results


def single_process_run(tmp_path_factory, monkeypatch, name, batch_size, accumulate):
    results = tmp_path_factory.mktemp(name)
    args = common_args(tmp_path_factory, results)

    def ddp_order(hparams, options, train_set):
        size = PER_PROCESS_BATCH if accumulate else WORLD_SIZE * PER_PROCESS_BATCH
        world = WORLD_SIZE if accumulate else 1
        sampler = DDPOrderSampler(len(train_set), world, size)
        return {"batch_size": batch_size, "sampler": sampler}

    monkeypatch.setattr(run, "train_loader_options", ddp_order)  # train.py's call
    extra = [f"--batch_size={batch_size}"]
    if accumulate:
        extra.append(f"--grad_accumulation_factor={WORLD_SIZE}")
    run_recipe([*args, *extra])
    return results


def test_ddp_on_cpu_matches_gradient_accumulation(
    ddp_run, tmp_path_factory, monkeypatch
):
    reference = single_process_run(
        tmp_path_factory, monkeypatch, "accumulated", PER_PROCESS_BATCH, True
    )
    ddp, single = trained_weights(ddp_run), trained_weights(reference)
    assert ddp.keys() == single.keys()
    worst = max((ddp[k] - single[k]).abs().max().item() for k in ddp)
    assert worst < TOLERANCE, worst
    # The logged train loss is the mean over both processes (3 digits logged).
    assert train_loss(ddp_run) == pytest.approx(train_loss(reference), abs=0.011)
    # Rank 0 wrote the outputs (results, exported model).
    results = ddp_run.joinpath(*RUN)
    assert (results / "results.json").is_file()
    assert (results / "inference" / "fbank.ckpt").is_file()


def test_plain_global_batch_is_a_different_computation(
    ddp_run, tmp_path_factory, monkeypatch
):
    """One batch of 8 (BatchNorm and SupCon over 8) differs well beyond the
    tolerance: the comparison above is a real check."""
    plain = single_process_run(
        tmp_path_factory,
        monkeypatch,
        "global_batch",
        WORLD_SIZE * PER_PROCESS_BATCH,
        False,
    )
    ddp, single = trained_weights(ddp_run), trained_weights(plain)
    worst = max((ddp[k] - single[k]).abs().max().item() for k in ddp)
    assert worst > 100 * TOLERANCE, worst


def test_ddp_hierarchical_batches_match_gradient_accumulation(tmp_path_factory):
    """Hierarchical batches under DDP: each process its strided share, unwrapped.

    Process r runs the global hierarchical batches r, r + 2, ... (the sampler
    shards itself; SpeechBrain must not split each share again), so DDP's
    steps are one process accumulating the global batches two by two.
    """
    fixture = session_fixture(tmp_path_factory)
    runs = {}
    for name in ("ddp", "accumulated"):
        results = tmp_path_factory.mktemp(f"hier_{name}")
        args = recipe_args(
            "en_de",
            fixture,
            results,
            "--encoder=fbank",
            "--variant=no_spkadv",
            "--batch_sampler=hierarchical",
            "--languages=[en,zh,de]",
            "--number_of_epochs=1",
            "--hier_batches_per_epoch=4",  # 2 x 2 x 2 batches (FAST_OPTIONS)
        )
        if name == "ddp":
            command = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={WORLD_SIZE}",
                str(REPO_ROOT / "recipes" / "train.py"),
                *args,
                "--distributed_backend=gloo",
                "--device=cpu",
            ]
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            done = subprocess.run(
                command,
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        else:
            run_recipe([*args, f"--grad_accumulation_factor={WORLD_SIZE}"])
        runs[name] = results
    ddp, single = trained_weights(runs["ddp"]), trained_weights(runs["accumulated"])
    assert ddp.keys() == single.keys()
    worst = max((ddp[k] - single[k]).abs().max().item() for k in ddp)
    assert worst < TOLERANCE, worst
    results = json.loads((runs["ddp"].joinpath(*RUN) / "results.json").read_text())
    assert results["batch_sampler"] == "hierarchical"
    assert results["hierarchical_batches"]["batches_per_epoch"] == 4


class Stop(Exception):
    """Raised by the fake collective once it has seen the tensor."""


@pytest.fixture
def fake_two_processes(monkeypatch):
    """Pretend to be rank 0 of 2 processes of the backend the test names."""
    from zsser_modules import distributed

    def use(backend):
        monkeypatch.setattr(distributed, "is_distributed", lambda: True)
        monkeypatch.setattr(
            torch.distributed, "get_backend", lambda group=None: backend
        )
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda group=None: 2)
        return distributed

    return use


def test_nccl_collectives_use_the_current_cuda_device(fake_two_processes, monkeypatch):
    distributed = fake_two_processes("nccl")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert distributed.collective_device() == torch.device("cuda", 1)
    fake_two_processes("gloo")
    assert distributed.collective_device() == torch.device("cpu")


def test_the_reduction_gives_an_accelerator_only_backend_its_device(
    fake_two_processes, monkeypatch
):
    """A backend that, like NCCL, refuses CPU tensors (here: meta tensors only,
    so that the test runs without a GPU) gets its tensor on its own device."""
    monkeypatch.setitem(
        torch.distributed.Backend.backend_capability, "metaonly", ["meta"]
    )
    distributed = fake_two_processes("metaonly")
    seen = []

    def all_reduce(tensor, op=None, group=None):
        if tensor.device.type != "meta":  # NCCL's own refusal, in words
            raise RuntimeError(
                f"No backend type associated with device type {tensor.device.type}"
            )
        seen.append(tensor.device)
        raise Stop

    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    with pytest.raises(Stop):
        distributed.mean_across_processes({"loss": 1.0})
    assert seen == [torch.device("meta")]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (NCCL)")
def test_mean_across_processes_on_a_real_nccl_group(tmp_path, monkeypatch):
    """One real NCCL process (the reduction is what matters, not the count)."""
    from zsser_modules import distributed

    torch.distributed.init_process_group(
        "nccl", init_method=f"file://{tmp_path}/store", rank=0, world_size=1
    )
    try:
        torch.cuda.set_device(0)
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda group=None: 2)
        assert distributed.mean_across_processes({"loss": 3.0}) == {"loss": 1.5}
    finally:
        torch.distributed.destroy_process_group()


def test_the_lr_schedule_also_scales_the_ssl_optimizer():
    brain = train.ZeroShotSER.__new__(train.ZeroShotSER)
    head, ssl = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    brain.optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    brain.optimizers_dict = {
        "optimizer": brain.optimizer,
        "ssl_optimizer": torch.optim.Adam(ssl.parameters(), lr=1e-5),
    }
    brain.anneal_learning_rates(1e-3, 8e-4)
    assert brain.optimizer.param_groups[0]["lr"] == pytest.approx(8e-4)
    ssl_lr = brain.optimizers_dict["ssl_optimizer"].param_groups[0]["lr"]
    assert ssl_lr == pytest.approx(0.8e-5)


def test_ddp_fine_tuning_of_an_ssl_model(tmp_path_factory):
    """2 processes fine-tune the tiny WavLM (--freeze_ssl=False) under DDP.

    The Hugging Face model's masked_spec_embed never gets a gradient (spec
    augment is off), nor does the final layer norm of the tiny WavLM: the
    encoder freezes them, so DDP works without find_unused_parameters (it
    stops at the second step otherwise).
    """
    fixture = session_fixture(tmp_path_factory)
    results = tmp_path_factory.mktemp("ddp_ssl")
    args = recipe_args(
        "en_de",
        fixture,
        results,
        "--variant=baseline1",
        "--languages=[en,de]",
        "--number_of_epochs=1",
        "--freeze_ssl=False",
        "--debug",
        "--debug_persistently",
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={WORLD_SIZE}",
        str(REPO_ROOT / "recipes" / "train.py"),
        *args,
        "--distributed_backend=gloo",
        "--device=cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder = results / "en_de" / "ssl" / "baseline1" / "1234"
    assert (folder / "results.json").is_file()


def test_a_fine_tuned_encoder_freezes_the_parameters_without_gradient(tmp_path):
    from zsser_modules.encoders import SSLLayerPooling

    source = str(make_tiny_ssl(tmp_path / "tiny"))
    every = SSLLayerPooling(source, save_path=str(tmp_path / "hf"), freeze=False)
    assert "ssl.model.masked_spec_embed" in every.unused_parameters
    state = torch.get_rng_state()
    assert every._freeze_unused_parameters() == []  # nothing left to freeze
    assert torch.equal(torch.get_rng_state(), state)  # the probe draws nothing
    lower = SSLLayerPooling(
        source, save_path=str(tmp_path / "hf"), freeze=False, layers=[0, 1]
    )
    assert any(".layers.1." in name for name in lower.unused_parameters)
    for encoder in (every, lower):  # every trainable parameter gets a gradient
        encoder.train()
        encoder(torch.randn(2, 8000), torch.tensor([1.0, 0.6])).sum().backward()
        params = [p for p in encoder.parameters() if p.requires_grad]
        assert params and all(p.grad is not None for p in params)
