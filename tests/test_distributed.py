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

import os
import re
import subprocess
import sys

import pytest
import torch
from recipe_utils import REPO_ROOT, recipe_args, run_recipe, session_fixture
from speechbrain.dataio.sampler import (
    DistributedSamplerWrapper,
    ReproducibleRandomSampler,
)
from torch.utils.data import Sampler

from recipes import train

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

    def ddp_order(hparams, train_set):
        size = PER_PROCESS_BATCH if accumulate else WORLD_SIZE * PER_PROCESS_BATCH
        world = WORLD_SIZE if accumulate else 1
        sampler = DDPOrderSampler(len(train_set), world, size)
        return {"batch_size": batch_size, "sampler": sampler}

    monkeypatch.setattr(train, "train_loader_options", ddp_order)
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
