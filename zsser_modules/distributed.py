"""Multi-process training with torchrun + DDP that also works on CPU.

SpeechBrain goes distributed when ``torchrun`` sets ``RANK`` and
``LOCAL_RANK`` (the script calls ``sb.utils.distributed.ddp_init_group``).
Three things stand in the way on a CPU machine, and ``DistributedBrainMixin``
handles them for any ``speechbrain.Brain``:

* ``Brain._wrap_distributed`` converts every BatchNorm to ``SyncBatchNorm``,
  which DDP refuses on CPU ("SyncBatchNorm layers only work with GPU
  modules"). On CPU the mixin wraps the modules in DDP without the
  conversion: each process normalises with the statistics of its own local
  batch (as with gradient accumulation), see ``wrap_ddp``.
* A DDP module broadcasts its buffers (BatchNorm running statistics) from
  rank 0 at every forward call, a collective operation: a forward pass made
  on the main process only (a t-SNE plot, an export) would wait forever for
  the other processes. The mixin unwraps the modules when ``fit`` returns;
  evaluation and everything after it run the plain modules.
* Each process only sees its share of the training batches, so its running
  averages (train loss, loss terms) are local: ``mean_across_processes``
  averages them over the processes before they are logged, on the device
  the backend takes (``collective_device``: NCCL, SpeechBrain's GPU default,
  only takes CUDA tensors; gloo takes CPU ones).

What the processes compute, with ``N`` processes and a per-process batch
``b`` (the global batch is ``N * b``): SpeechBrain's ``DistributedSampler``
splits one shuffled order of the training set, process ``r`` taking items
``r, r + N, r + 2N, ...``; each process runs its local batch and DDP
averages the gradients. That is exactly one optimizer step of
gradient accumulation over ``N`` micro-batches of size ``b``: batch-level
statistics (BatchNorm in training mode, the supervised contrastive loss's
positives and negatives, the adversary's averaging) are those of the local
batch ``b``, not of the global batch. ``tests/test_distributed.py`` checks
this equivalence against a single process.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

logger = logging.getLogger(__name__)


def is_distributed() -> bool:
    """Whether a torch.distributed process group is initialised.

    Returns
    -------
    bool
        True inside a ``torchrun`` job after ``ddp_init_group``.

    Example
    -------
    >>> is_distributed()
    False
    """
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def wrap_ddp(modules: nn.ModuleDict, find_unused_parameters: bool = False) -> list[str]:
    """Wrap every module with trainable parameters in DDP, keeping BatchNorm local.

    Unlike SpeechBrain's ``Brain._wrap_distributed``, BatchNorm layers are
    not converted to ``SyncBatchNorm`` (GPU only): in training mode each
    process normalises with its local batch statistics. Running statistics
    (buffers) are broadcast from rank 0 at each forward call (DDP's
    default), so all processes evaluate with the same ones. Modules without
    trainable parameters (a frozen SSL encoder) are left unwrapped.

    Arguments
    ---------
    modules : torch.nn.ModuleDict
        The Brain's modules, wrapped in place.
    find_unused_parameters : bool
        Passed to DDP; needed when some trainable parameters of a wrapped
        module get no gradient in a step (e.g. a fine-tuned SSL model with
        layer dropout).

    Returns
    -------
    list of str
        The names of the wrapped modules.

    Example
    -------
    >>> import tempfile
    >>> store = tempfile.mkdtemp()
    >>> torch.distributed.init_process_group(
    ...     "gloo", init_method=f"file://{store}/store", rank=0, world_size=1)
    >>> modules = nn.ModuleDict({"enc": nn.Sequential(nn.Linear(3, 4),
    ...     nn.BatchNorm1d(4)), "frozen": nn.Linear(3, 3).requires_grad_(False)})
    >>> wrap_ddp(modules)
    ['enc']
    >>> type(modules["enc"]).__name__, type(modules["enc"].module[1]).__name__
    ('DistributedDataParallel', 'BatchNorm1d')
    >>> unwrap_ddp(modules)
    ['enc']
    >>> torch.distributed.destroy_process_group()
    """
    wrapped = []
    for name, module in modules.items():
        if isinstance(module, DistributedDataParallel):
            continue
        if any(p.requires_grad for p in module.parameters()):
            modules[name] = DistributedDataParallel(
                module, device_ids=None, find_unused_parameters=find_unused_parameters
            )
            wrapped.append(name)
    return wrapped


def unwrap_ddp(modules: nn.ModuleDict) -> list[str]:
    """Replace every DDP-wrapped module by the module it wraps.

    Arguments
    ---------
    modules : torch.nn.ModuleDict
        Modules, some possibly wrapped by ``wrap_ddp``; changed in place.

    Returns
    -------
    list of str
        The names of the unwrapped modules.

    Example
    -------
    >>> unwrap_ddp(nn.ModuleDict({"a": nn.Linear(2, 2)}))
    []
    """
    unwrapped = []
    for name, module in modules.items():
        if isinstance(module, DistributedDataParallel):
            modules[name] = module.module
            unwrapped.append(name)
    return unwrapped


def collective_device(group=None) -> torch.device:
    """The device on which a collective of ``group``'s backend takes its tensors.

    Read from the backend's declared devices
    (``torch.distributed.Backend.backend_capability``): a backend that takes
    CPU tensors (gloo, mpi, ucc) gets the CPU; one that does not (NCCL:
    CUDA only; xccl: XPU only) gets the process's current device of its
    device type. Outside a distributed job this is the CPU.

    Arguments
    ---------
    group : ProcessGroup, optional
        Default: the default process group.

    Returns
    -------
    torch.device

    Example
    -------
    >>> collective_device()
    device(type='cpu')
    """
    if not is_distributed():
        return torch.device("cpu")
    backend = str(torch.distributed.get_backend(group)).lower()
    devices = torch.distributed.Backend.backend_capability.get(backend, ["cpu"])
    if "cpu" in devices:
        return torch.device("cpu")
    kind = devices[0]
    accelerator = getattr(torch, kind, None)
    if accelerator is not None and hasattr(accelerator, "current_device"):
        return torch.device(kind, accelerator.current_device())
    return torch.device(kind)


def mean_across_processes(stats: Mapping[str, float]) -> dict[str, float]:
    """Average scalar statistics over the processes of a distributed job.

    Every process must call this with the same keys (it is a collective
    operation). Outside a distributed job the statistics are returned as
    they are.

    Arguments
    ---------
    stats : mapping of str to float
        Per-process values, e.g. the epoch's average training loss.

    Returns
    -------
    dict
        The same keys, each value averaged over the processes.

    Example
    -------
    >>> mean_across_processes({"loss": 1.5, "ce": 1.0})
    {'loss': 1.5, 'ce': 1.0}
    """
    stats = {key: float(value) for key, value in stats.items()}
    if not is_distributed() or torch.distributed.get_world_size() == 1:
        return stats
    keys = sorted(stats)  # the same order on every process
    values = torch.tensor(
        [stats[key] for key in keys], dtype=torch.float64, device=collective_device()
    )
    torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.SUM)
    values /= torch.distributed.get_world_size()
    means = dict(zip(keys, values.cpu().tolist()))
    return {key: means[key] for key in stats}


class DistributedBrainMixin:
    """``speechbrain.Brain`` mixin: DDP on CPU, main-process-safe evaluation.

    Put it before ``sb.Brain`` in the bases::

        class MyBrain(DistributedBrainMixin, sb.Brain): ...

    and run ``torchrun --standalone --nproc_per_node=2 train.py hparams.yaml
    --distributed_backend=gloo --device=cpu``. On GPU (nccl) SpeechBrain's
    own wrapping, with ``SyncBatchNorm``, is kept. Without torchrun the
    mixin changes nothing.

    Example
    -------
    >>> import speechbrain as sb
    >>> class Toy(DistributedBrainMixin, sb.Brain):
    ...     pass
    >>> brain = Toy(modules={"lin": nn.Linear(2, 2)},
    ...             run_opts={"device": "cpu", "noprogressbar": True})
    >>> brain._wrap_distributed()  # not under torchrun: nothing to do
    >>> type(brain.modules["lin"]).__name__
    'Linear'
    """

    def _wrap_distributed(self) -> None:
        """Wrap the trainable modules in DDP (no SyncBatchNorm on CPU)."""
        if not (self.distributed_launch and self.device_type == "cpu"):
            super()._wrap_distributed()
            return
        wrapped = wrap_ddp(self.modules, self.find_unused_parameters)
        logger.info(
            "DDP on CPU: wrapped %s; BatchNorm statistics are computed on each "
            "process's local batch (no SyncBatchNorm on CPU).",
            wrapped,
        )

    def fit(self, *args, **kwargs) -> None:
        """``Brain.fit``, then unwrap DDP so that later forward calls are local.

        Arguments
        ---------
        *args : tuple
            Positional arguments of ``speechbrain.Brain.fit``.
        **kwargs : dict
            Keyword arguments of ``speechbrain.Brain.fit``.
        """
        super().fit(*args, **kwargs)
        unwrap_ddp(self.modules)
