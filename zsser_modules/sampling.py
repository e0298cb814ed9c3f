"""Training samplers: natural or language-balanced, seeded, reshuffled every epoch.

The real corpora differ in size by a factor of 40 (ESD 14,000 four-class
utterances per language, EmoDB 339), so with natural sampling a batch almost
never holds the small languages. ``language_sampling`` chooses how training
batches are drawn:

- ``natural``: every training utterance once per epoch, in a random order
  (SpeechBrain's ``ReproducibleRandomSampler``; languages appear in
  proportion to their size);
- ``balanced``: each draw picks a language uniformly, then an utterance of
  it uniformly, with replacement (per-utterance weight ``1 / n_lang``, i.e.
  SpeechBrain's ``BalancingDataSampler`` keyed on ``lang``). An epoch keeps
  its natural length (as many draws as training utterances), so the number
  of optimizer steps does not change; small languages are repeated and
  large ones subsampled within an epoch.

Why a weighted sampler rather than exact per-batch quotas: it is
SpeechBrain's own reproducible sampler (``seed + epoch``), it composes with
``DistributedSamplerWrapper`` under DDP (each process takes its strided share
of one global draw, so the union of processes is balanced) and with
duration-bucketed dynamic batches (:class:`WeightedDynamicBatchSampler`
buckets the weighted draw); exact quotas would fight the bucketing.

Every sampler is seeded from the run's ``seed`` and reshuffled by
``set_epoch``: a run is deterministic given (seed, epoch), which exact resume
relies on. :class:`SeededSamplerMixin` makes a ``Brain`` call ``set_epoch`` on
any sampler it is given (SpeechBrain only does so for samplers it creates
itself) and gives DDP's ``DistributedSampler`` the run's seed.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from speechbrain.dataio.sampler import (
    BalancingDataSampler,
    DynamicBatchSampler,
    ReproducibleRandomSampler,
)
from torch.utils.data import DistributedSampler

from zsser_modules.choices import check_choice

#: Values of ``language_sampling``.
LANGUAGE_SAMPLING = ("natural", "balanced")


def check_language_sampling(value: str) -> str:
    """Return ``value`` if it is a known ``language_sampling`` mode.

    Example
    -------
    >>> check_language_sampling("balanced")
    'balanced'
    >>> check_language_sampling("uniform")
    Traceback (most recent call last):
    ...
    ValueError: language_sampling must be natural or balanced, got 'uniform' (e.g. --language_sampling=balanced).
    """  # noqa: E501
    return check_choice(
        "language_sampling",
        value,
        LANGUAGE_SAMPLING,
        "e.g. --language_sampling=balanced",
    )


def balancing_weights(keys: Sequence[Any]) -> torch.Tensor:
    """Per-item weights ``1 / count(key)``: every key value equally likely.

    The same formula as SpeechBrain's ``BalancingDataSampler``.

    Example
    -------
    >>> balancing_weights(["en", "en", "en", "de"]).tolist()
    [0.3333333333333333, 0.3333333333333333, 0.3333333333333333, 1.0]
    """
    counts = Counter(keys)
    return 1.0 / torch.tensor([counts[key] for key in keys], dtype=torch.float64)


def _column(dataset: Any, key: str) -> list:
    """The static (CSV) column ``key`` of a DynamicItemDataset, in index order."""
    return [dataset.data[data_id][key] for data_id in dataset.data_ids]


class WeightedDynamicBatchSampler(DynamicBatchSampler):
    """Dynamic (duration-bucketed) batches of a weighted draw with replacement.

    Each epoch draws ``len(dataset)`` utterance indices with probabilities
    proportional to ``weights`` (seeded by ``seed + epoch``), then groups
    them into batches by SpeechBrain's bucketing (``max_batch_length``
    seconds of padded audio per batch). Everything else (buckets, batch
    ordering, ``set_epoch``) is ``DynamicBatchSampler``'s. The draw fills the
    duration buckets differently every epoch, so the number of batches would
    vary; it is fixed to the first epoch's (the batches of a longer epoch are
    cut, those of a shorter one are repeated from its start), because DDP's
    ``DistributedSamplerWrapper`` fixes each process's share of the batches
    when it is built.

    Arguments
    ---------
    dataset : DynamicItemDataset
        The training set.
    weights : torch.Tensor
        One non-negative weight per item.
    **kwargs : dict
        ``DynamicBatchSampler`` arguments (``max_batch_length``,
        ``num_buckets``, ``length_func``, ``seed``, ``batch_ordering``, ...).

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = {str(i): {"duration": 1.0, "lang": "en" if i < 9 else "de"}
    ...         for i in range(10)}
    >>> dataset = DynamicItemDataset(data)
    >>> sampler = WeightedDynamicBatchSampler(
    ...     dataset, balancing_weights(_column(dataset, "lang")),
    ...     max_batch_length=4, num_buckets=2, seed=3)
    >>> drawn = [i for batch in sampler for i in batch]
    >>> len(drawn), 0 < drawn.count(9) < 10
    (10, True)
    >>> sampler.set_epoch(1)
    >>> drawn != [i for batch in sampler for i in batch]
    True
    """

    def __init__(self, dataset: Any, weights: torch.Tensor, **kwargs: Any) -> None:
        weights = torch.as_tensor(weights, dtype=torch.float64)
        if weights.shape != (len(dataset),) or bool((weights < 0).any()):
            raise ValueError(
                f"WeightedDynamicBatchSampler: expected {len(dataset)} non-negative "
                f"weights (one per item), got shape {tuple(weights.shape)}."
            )
        self._weights = weights
        self._num_batches: int | None = None  # set by the first draw
        super().__init__(dataset, **kwargs)

    def _generate_batches(self) -> None:
        generator = torch.Generator()
        generator.manual_seed(self._seed + self._epoch)
        drawn = torch.multinomial(
            self._weights, len(self._weights), replacement=True, generator=generator
        ).tolist()
        self._batches = []
        buckets: list[list[int]] = [[] for _ in self._bucket_lens]
        for idx in drawn:
            bucket = int(
                np.searchsorted(self._bucket_boundaries, self._ex_lengths[str(idx)])
            )
            buckets[bucket].append(idx)
            if len(buckets[bucket]) >= min(
                self._bucket_lens[bucket], self._max_batch_ex
            ):
                self._batches.append(buckets[bucket])
                buckets[bucket] = []
        if not self._drop_last:
            self._batches += [batch for batch in buckets if batch]
        self._permute_batches()
        if self._num_batches is None:
            self._num_batches = len(self._batches)
        elif self._batches:  # the same number of batches in every epoch
            repeats = -(-self._num_batches // len(self._batches))
            self._batches = (self._batches * repeats)[: self._num_batches]


def train_loader_kwargs(
    dataset: Any,
    language_sampling: str,
    seed: int,
    loader_options: Mapping[str, Any],
    dynamic_batching: bool = False,
    dynamic_options: Mapping[str, Any] | None = None,
    key: str = "lang",
) -> dict[str, Any]:
    """DataLoader options of the training set, with a seeded, epoch-aware sampler.

    Arguments
    ---------
    dataset : DynamicItemDataset
        The training set (``key`` must be one of its CSV columns).
    language_sampling : str
        ``natural`` or ``balanced`` (module docstring).
    seed : int
        The run's seed: every sampler draws from ``seed + epoch``.
    loader_options : mapping
        ``train_dataloader_options`` (``batch_size``, ``shuffle``,
        ``num_workers``, ...). ``shuffle: False`` keeps the dataset's order
        (sorted by duration); it cannot be combined with ``balanced``.
    dynamic_batching : bool
        Use duration-bucketed dynamic batches (``dynamic_options``).
    dynamic_options : mapping, optional
        ``DynamicBatchSampler`` options (``max_batch_length``, ...).
    key : str
        The column to balance.

    Returns
    -------
    dict
        Options for ``Brain.fit(train_loader_kwargs=...)``: a ``sampler`` (or
        a ``batch_sampler`` with dynamic batching) that has ``set_epoch``.

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = {str(i): {"lang": "en" if i < 3 else "de"} for i in range(4)}
    >>> options = train_loader_kwargs(DynamicItemDataset(data), "balanced", 1,
    ...                               {"batch_size": 2, "shuffle": True})
    >>> type(options["sampler"]).__name__, options["batch_size"]
    ('BalancingDataSampler', 2)
    """
    check_language_sampling(language_sampling)
    options = dict(loader_options)
    shuffle = options.pop("shuffle", False)
    if language_sampling == "balanced" and not (shuffle or dynamic_batching):
        raise ValueError(
            "language_sampling=balanced draws utterances at random, which cannot "
            "keep the duration order of sorting=ascending/descending. Use "
            "--sorting=random (or --language_sampling=natural)."
        )
    if dynamic_batching:
        dynamic = {**(dynamic_options or {}), "seed": int(seed)}
        dynamic.setdefault("length_func", lambda item: item["duration"])
        if language_sampling == "balanced":
            weights = balancing_weights(_column(dataset, key))
            sampler = WeightedDynamicBatchSampler(dataset, weights, **dynamic)
        else:
            sampler = DynamicBatchSampler(dataset, **dynamic)
        keep = ("num_workers", "collate_fn", "pin_memory", "prefetch_factor")
        return {
            "batch_sampler": sampler,
            **{k: options[k] for k in keep if k in options},
        }
    if language_sampling == "balanced":
        options["sampler"] = BalancingDataSampler(dataset, key=key, seed=int(seed))
    elif shuffle:
        options["sampler"] = ReproducibleRandomSampler(dataset, seed=int(seed))
    return options


class SeededSamplerMixin:
    """A ``Brain`` mixin: the training sampler gets ``set_epoch`` and the run's seed.

    SpeechBrain calls ``set_epoch`` on ``self.train_sampler`` only, which it
    sets for the samplers it creates itself: a ``sampler`` or
    ``batch_sampler`` passed in the loader options (e.g. a
    ``DynamicBatchSampler``) would repeat the same batches every epoch.
    Under DDP SpeechBrain builds a ``DistributedSampler`` (or wrapper) with
    its default seed 0; this mixin gives it ``hparams.seed``.
    """

    def _train_loader_specifics(self, dataset: Any, loader_kwargs: dict) -> dict:
        loader_kwargs = super()._train_loader_specifics(dataset, loader_kwargs)
        if self.train_sampler is None:
            given = loader_kwargs.get("batch_sampler") or loader_kwargs.get("sampler")
            if hasattr(given, "set_epoch"):
                self.train_sampler = given
        if isinstance(self.train_sampler, DistributedSampler):
            self.train_sampler.seed = int(self.hparams.seed)
        return loader_kwargs
