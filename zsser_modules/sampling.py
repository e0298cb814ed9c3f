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

``batch_sampler`` chooses the batches themselves: ``random`` (the above)
or ``hierarchical``, the paper's hierarchical cross-lingual batches
(:class:`zsser_modules.hierarchical_sampler.HierarchicalBatchSampler`:
``n_lang`` languages x ``n_cls`` emotions x ``n_sam`` utterances). The
hierarchical sampler replaces ``language_sampling``, the batch size and the
sorting of the random batches (it draws its own batches), and cannot be
combined with dynamic batching. ``auto`` picks it for the variants whose
losses use cross-lingual positives (:func:`resolve_batch_sampler`).

Every sampler is seeded from the run's ``seed`` and reshuffled by
``set_epoch``: a run is deterministic given (seed, epoch), which exact resume
relies on. :class:`SeededSamplerMixin` makes a ``Brain`` call ``set_epoch`` on
any sampler it is given (SpeechBrain only does so for samplers it creates
itself) and gives DDP's ``DistributedSampler`` the run's seed; a batch
sampler that shards itself across processes (``shards_itself``, the
hierarchical one) is not wrapped in SpeechBrain's
``DistributedSamplerWrapper``.

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
from zsser_modules.hierarchical_sampler import HierarchicalBatchSampler

#: Values of ``language_sampling``.
LANGUAGE_SAMPLING = ("natural", "balanced")
#: Values of ``batch_sampler`` (``auto`` is resolved per variant).
BATCH_SAMPLERS = ("auto", "random", "hierarchical")


def resolve_batch_sampler(value: str, variant: str, auto: Mapping[str, str]) -> str:
    """The batches a run draws: ``value``, or for ``auto`` the variant's default.

    Arguments
    ---------
    value : str
        ``batch_sampler``: ``auto``, ``random`` or ``hierarchical``.
    variant : str
        The run's variant.
    auto : mapping
        The default of each variant (``random`` or ``hierarchical``).

    Returns
    -------
    str
        ``random`` or ``hierarchical``.

    Example
    -------
    >>> defaults = {"baseline2": "random", "proposed": "hierarchical"}
    >>> resolve_batch_sampler("auto", "proposed", defaults)
    'hierarchical'
    >>> resolve_batch_sampler("random", "proposed", defaults)
    'random'
    >>> resolve_batch_sampler("hier", "proposed", defaults)
    Traceback (most recent call last):
    ...
    ValueError: batch_sampler must be one of ['auto', 'random', 'hierarchical'], got 'hier' (e.g. --batch_sampler=hierarchical).
    """  # noqa: E501
    check_choice(
        "batch_sampler", value, BATCH_SAMPLERS, "e.g. --batch_sampler=hierarchical"
    )
    if value != "auto":
        return value
    if variant not in auto:
        raise ValueError(
            f"batch_sampler=auto has no default for variant {variant!r}: set "
            "--batch_sampler=random or --batch_sampler=hierarchical."
        )
    return auto[variant]


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
    batch_sampler: str = "random",
    n_lang: int = 3,
    n_cls: int = 4,
    n_sam: int = 3,
    num_batches: int | None = None,
    label_key: str = "emo",
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
        The column to balance (and the language column of hierarchical
        batches).
    batch_sampler : str
        ``random`` (the options above) or ``hierarchical`` (the paper's
        batches; ``language_sampling``, ``batch_size`` and ``shuffle`` are
        then not used; ``dynamic_batching`` is refused).
    n_lang : int
        Hierarchical batches: languages per batch.
    n_cls : int
        Hierarchical batches: emotions per batch.
    n_sam : int
        Hierarchical batches: utterances per (language, emotion).
    num_batches : int, optional
        Hierarchical batches per epoch (default: ``ceil(N / (n_lang * n_cls
        * n_sam))``, see :mod:`zsser_modules.hierarchical_sampler`).
    label_key : str
        Hierarchical batches: the emotion column.

    Returns
    -------
    dict
        Options for ``Brain.fit(train_loader_kwargs=...)``: a ``sampler`` (or
        a ``batch_sampler`` with dynamic or hierarchical batches) that has
        ``set_epoch``.

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = {str(i): {"lang": "en" if i < 3 else "de"} for i in range(4)}
    >>> options = train_loader_kwargs(DynamicItemDataset(data), "balanced", 1,
    ...                               {"batch_size": 2, "shuffle": True})
    >>> type(options["sampler"]).__name__, options["batch_size"]
    ('BalancingDataSampler', 2)
    >>> data = {str(i): {"lang": "en" if i < 4 else "de", "emo": "neu" if i % 2
    ...         else "sad"} for i in range(8)}
    >>> options = train_loader_kwargs(DynamicItemDataset(data), "natural", 1,
    ...     {"batch_size": 2, "shuffle": True}, batch_sampler="hierarchical",
    ...     n_lang=2, n_cls=2, n_sam=1)
    >>> sorted(options), len(options["batch_sampler"])
    (['batch_sampler'], 2)
    """
    check_language_sampling(language_sampling)
    check_choice(
        "batch_sampler",
        batch_sampler,
        BATCH_SAMPLERS[1:],
        "e.g. --batch_sampler=hierarchical",
    )
    options = dict(loader_options)
    shuffle = options.pop("shuffle", False)
    keep = ("num_workers", "collate_fn", "pin_memory", "prefetch_factor")
    if batch_sampler == "hierarchical":
        if dynamic_batching:
            raise ValueError(
                "batch_sampler=hierarchical draws its own batches of n_lang x n_cls "
                "x n_sam utterances, which cannot be dynamic (duration-bucketed) "
                "batches: use --dynamic_batching=False (or --batch_sampler=random)."
            )
        sampler = HierarchicalBatchSampler.from_dataset(
            dataset,
            lang_key=key,
            label_key=label_key,
            n_lang=n_lang,
            n_cls=n_cls,
            n_sam=n_sam,
            seed=int(seed),
            num_batches=num_batches,
        )
        return {
            "batch_sampler": sampler,
            **{k: options[k] for k in keep if k in options},
        }
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
    its default seed 0; this mixin gives it ``hparams.seed``. A batch sampler
    with a true ``shards_itself`` attribute (the hierarchical one: every
    process draws the same global batches and keeps its share) is used as
    it is: SpeechBrain would wrap it in a ``DistributedSamplerWrapper``,
    which would split each process's share again.
    """

    def _train_loader_specifics(self, dataset: Any, loader_kwargs: dict) -> dict:
        given = loader_kwargs.get("batch_sampler")
        if getattr(given, "shards_itself", False):
            self.train_sampler = given
            return loader_kwargs
        loader_kwargs = super()._train_loader_specifics(dataset, loader_kwargs)
        if self.train_sampler is None:
            given = loader_kwargs.get("batch_sampler") or loader_kwargs.get("sampler")
            if hasattr(given, "set_epoch"):
                self.train_sampler = given
        if isinstance(self.train_sampler, DistributedSampler):
            self.train_sampler.seed = int(self.hparams.seed)
        return loader_kwargs
