"""Hierarchical cross-lingual batches (Mi, Ma and Toda 2026, Sec. 2.2).

Each training batch is drawn in three levels: ``n_lang`` languages, then
``n_cls`` emotions, then ``n_sam`` utterances of every chosen (language,
emotion) cell. With the paper's 3 x 4 x 3 a batch holds 36 utterances and
every utterance (anchor) has ``n_sam * (n_lang - 1) = 6`` same-emotion
positives in other languages, which is what the cross-lingual positive weight
of the supervised contrastive loss needs. :class:`HierarchicalBatchSampler`
is a PyTorch batch sampler (it yields lists of dataset indices): give it to
any ``DataLoader`` or SpeechBrain ``Brain`` as ``batch_sampler``.

How a batch is drawn (all choices uniform, from a generator seeded by
``(seed, epoch)``):

1. **Languages**: a set of ``n_lang`` distinct languages among the *usable*
   sets, those whose languages share at least ``n_cls`` emotions. When every
   language has every emotion, that is any ``n_lang`` of the languages, so
   each language is in a fraction ``n_lang / L`` of the batches whatever its
   size (a small corpus is seen as often as ESD).
2. **Emotions**: ``n_cls`` distinct emotions among those that every chosen
   language has. A language missing an emotion is thus only drawn together
   with emotions it has: its batches stay complete (``n_lang x n_cls x
   n_sam``) and every anchor keeps its cross-lingual positives. A language
   that belongs to no usable set (e.g. it has 3 emotions and ``n_cls=4``)
   would never be drawn: that is refused with one line saying how to go on.
3. **Utterances**: ``n_sam`` utterances of each chosen cell. Each cell is
   walked through a shuffled cycle: every utterance of the cell is used once
   before any is used again, then the cell is reshuffled. A cell with fewer
   than ``n_sam`` utterances (URDU's per-emotion cells of a small split,
   MELD's sad cell of a tiny subset) fills its ``n_sam`` places by going round
   its cycle more than once, so it repeats utterances *within* a batch; a cell
   of at least ``n_sam`` utterances never does (when a cycle ends inside a
   draw, the utterances already taken in that draw are moved to the end of
   the new cycle).

Epoch length: ``num_batches`` global batches per epoch, by default
``ceil(N / batch_size)`` with ``N`` the number of utterances and
``batch_size = n_lang * n_cls * n_sam``: an epoch draws as many utterances as
the training set holds. With the paper's 36 this is the number of batches of
the baselines' random batches of 36 over the same training set, so the
hierarchical and the random systems take the same number of optimizer steps.
Small cells are then seen several times per epoch and large ones (ESD) only
partly; which utterances of a large cell are used changes every epoch.

Determinism and resume: every epoch starts from fresh cycles and a fresh
generator seeded by ``(seed, epoch)`` only: the batches of epoch ``e`` do not
depend on what earlier epochs drew, so :meth:`HierarchicalBatchSampler.
set_epoch` (called by ``Brain.fit`` through
:class:`zsser_modules.sampling.SeededSamplerMixin`) makes a resumed run draw
exactly the batches of the killed one, and SpeechBrain's
``SaveableDataLoader`` skips the batches the killed run had consumed.

DDP: every process builds the same global sequence of batches and takes its
strided share (process ``r`` of ``W`` takes global batches ``r, r + W, ...``).
The global number of batches is rounded up to a multiple of ``W`` (extra
batches are drawn, none repeated), so the processes are never given the same
batch and all run the same number of steps. Each process's batch is a full
``n_lang x n_cls x n_sam`` batch, as the losses are computed per process.
The sampler shards itself: do not wrap it in a ``DistributedSampler``
(``SeededSamplerMixin`` keeps SpeechBrain from doing so).

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler


class HierarchicalSamplerError(ValueError):
    """Hierarchical batches cannot be drawn from this data (says why and how to fix).

    Example
    -------
    >>> isinstance(HierarchicalSamplerError("too few languages"), ValueError)
    True
    """


def _distributed() -> tuple[int, int]:
    """(rank, world size) of the running process group, (0, 1) outside DDP."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise HierarchicalSamplerError(
            f"HierarchicalBatchSampler: {name} must be a positive integer, got "
            f"{value!r} (e.g. {name}=3)."
        )
    return int(value)


def _names(values: Sequence[Hashable]) -> str:
    return ", ".join(str(v) for v in values)


class HierarchicalBatchSampler(Sampler[list[int]]):
    """Batches of ``n_lang`` languages x ``n_cls`` emotions x ``n_sam`` utterances.

    See the module docstring for how batches are drawn, the epoch length,
    small cells, resume and DDP.

    Arguments
    ---------
    languages : sequence
        The language of every utterance, in dataset index order.
    labels : sequence
        The emotion of every utterance, in the same order.
    n_lang : int
        Languages per batch (the paper's N_lang = 3).
    n_cls : int
        Emotions per batch (N_cls = 4).
    n_sam : int
        Utterances per (language, emotion) cell (N_sam = 3).
    seed : int
        The run's seed: epoch ``e`` is drawn from ``(seed, e)`` only.
    num_batches : int, optional
        Global batches per epoch (all processes together, before rounding up
        to a multiple of the number of processes). Default:
        ``ceil(len(languages) / (n_lang * n_cls * n_sam))``.
    rank : int, optional
        This process (default: its rank in the running ``torch.distributed``
        process group, else 0).
    world_size : int, optional
        The number of processes (default: the process group's, else 1).
    epoch : int
        The epoch drawn until :meth:`set_epoch` is called.

    Example
    -------
    >>> langs = ["en"] * 8 + ["de"] * 8 + ["fr"] * 8
    >>> emos = ["neu", "hap", "ang", "sad"] * 6
    >>> sampler = HierarchicalBatchSampler(langs, emos, n_lang=2, n_cls=2,
    ...                                    n_sam=2, seed=1)
    >>> len(sampler), sampler.batch_size     # ceil(24 / 8) batches of 8
    (3, 8)
    >>> batch = next(iter(sampler))
    >>> cells = [(langs[i], emos[i]) for i in batch]  # 2 x 2 cells of 2
    >>> len(batch), len(set(cells)), {cells.count(c) for c in cells}
    (8, 4, {2})
    >>> first = list(sampler)
    >>> first == list(sampler)               # deterministic
    True
    >>> sampler.set_epoch(1)
    >>> first != list(sampler)               # reshuffled every epoch
    True
    >>> HierarchicalBatchSampler(langs[:16], emos[:16], n_lang=3)
    Traceback (most recent call last):
    ...
    zsser_modules.hierarchical_sampler.HierarchicalSamplerError: hierarchical batches need n_lang=3 languages with at least n_cls=4 emotions each, the training set has 2 (de, en): lower n_lang (--hier_n_lang=2) or use random batches (--batch_sampler=random).
    """  # noqa: E501

    #: This sampler splits its batches across DDP processes itself.
    shards_itself = True

    def __init__(
        self,
        languages: Sequence[Hashable],
        labels: Sequence[Hashable],
        n_lang: int = 3,
        n_cls: int = 4,
        n_sam: int = 3,
        seed: int = 0,
        num_batches: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        epoch: int = 0,
    ) -> None:
        self.n_lang = _positive_int("n_lang", n_lang)
        self.n_cls = _positive_int("n_cls", n_cls)
        self.n_sam = _positive_int("n_sam", n_sam)
        languages, labels = list(languages), list(labels)
        if len(languages) != len(labels):
            raise HierarchicalSamplerError(
                "HierarchicalBatchSampler: expected one language and one emotion "
                f"per utterance, got {len(languages)} languages and {len(labels)} "
                "emotions."
            )
        self.seed = int(seed)
        self.epoch = int(epoch)
        if num_batches is None:
            num_batches = max(1, math.ceil(len(languages) / self.batch_size))
        self.num_batches = _positive_int("num_batches", num_batches)
        default_rank, default_world = _distributed()
        self.rank = default_rank if rank is None else int(rank)
        self.world_size = default_world if world_size is None else int(world_size)
        if not 0 <= self.rank < self.world_size:
            raise HierarchicalSamplerError(
                f"HierarchicalBatchSampler: rank must be in [0, world_size), got "
                f"rank={self.rank}, world_size={self.world_size}."
            )

        # Cells: (language, emotion) -> utterance indices, in index order.
        cells: dict[tuple[Hashable, Hashable], list[int]] = {}
        for index, key in enumerate(zip(languages, labels)):
            cells.setdefault(key, []).append(index)
        self._cells = {key: np.asarray(members) for key, members in cells.items()}
        self._cell_ids = {key: n for n, key in enumerate(sorted(cells, key=str))}
        emotions_of: dict[Hashable, set] = {}
        for lang, emo in cells:
            emotions_of.setdefault(lang, set()).add(emo)
        self.languages = sorted(emotions_of, key=str)
        self._check_and_plan(emotions_of)
        self._cache: tuple[int, list[list[int]]] | None = None

    def _check_and_plan(self, emotions_of: dict[Hashable, set]) -> None:
        """The usable language sets and their shared emotions, or a clear error."""
        full = [lang for lang in self.languages if len(emotions_of[lang]) >= self.n_cls]
        if len(full) < self.n_lang:
            raise HierarchicalSamplerError(
                f"hierarchical batches need n_lang={self.n_lang} languages with at "
                f"least n_cls={self.n_cls} emotions each, the training set has "
                f"{len(full)} ({_names(full)}): lower n_lang (--hier_n_lang="
                f"{max(1, len(full))}) or use random batches (--batch_sampler=random)."
            )
        self._sets: list[tuple[Hashable, ...]] = []
        self._shared: list[list[Hashable]] = []
        for subset in itertools.combinations(self.languages, self.n_lang):
            shared = set.intersection(*(emotions_of[lang] for lang in subset))
            if len(shared) >= self.n_cls:
                self._sets.append(subset)
                self._shared.append(sorted(shared, key=str))
        drawn = {lang for subset in self._sets for lang in subset}
        unused = [lang for lang in self.languages if lang not in drawn]
        if unused:
            lang = unused[0]
            raise HierarchicalSamplerError(
                f"hierarchical batches would never draw language {lang!s}: it "
                f"shares fewer than n_cls={self.n_cls} emotions with any "
                f"{self.n_lang - 1} other language(s) (it has "
                f"{_names(sorted(emotions_of[lang], key=str))}): lower n_cls "
                f"(--hier_n_cls=...), drop the language from the pool "
                "(--languages=[...]) or use random batches (--batch_sampler=random)."
            )

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        lang_key: str = "lang",
        label_key: str = "emo",
        **kwargs: Any,
    ) -> HierarchicalBatchSampler:
        """A sampler over a SpeechBrain ``DynamicItemDataset``.

        The languages and emotions are read from the dataset's static (CSV)
        columns ``lang_key`` and ``label_key``, in index order (a filtered or
        sorted dataset is read in its own order).

        Arguments
        ---------
        dataset : DynamicItemDataset
            The training set.
        lang_key : str
            Its language column.
        label_key : str
            Its emotion column.
        **kwargs : dict
            The other arguments of :class:`HierarchicalBatchSampler`.

        Returns
        -------
        HierarchicalBatchSampler

        Example
        -------
        >>> from speechbrain.dataio.dataset import DynamicItemDataset
        >>> data = {f"u{i}": {"lang": "en" if i < 4 else "de",
        ...                   "emo": "neu" if i % 2 else "sad"} for i in range(8)}
        >>> sampler = HierarchicalBatchSampler.from_dataset(
        ...     DynamicItemDataset(data), n_lang=2, n_cls=2, n_sam=1)
        >>> sampler.languages, len(sampler)
        (['de', 'en'], 2)
        """
        columns = []
        for key in (lang_key, label_key):
            try:
                columns.append([dataset.data[i][key] for i in dataset.data_ids])
            except KeyError:
                raise HierarchicalSamplerError(
                    f"HierarchicalBatchSampler.from_dataset: the dataset has no "
                    f"column {key!r} (expected a CSV column with the language and "
                    "one with the emotion of every utterance)."
                ) from None
        return cls(columns[0], columns[1], **kwargs)

    @property
    def batch_size(self) -> int:
        """Utterances per batch: ``n_lang * n_cls * n_sam``."""
        return self.n_lang * self.n_cls * self.n_sam

    @property
    def global_num_batches(self) -> int:
        """Global batches per epoch, rounded up to a multiple of ``world_size``."""
        return self.world_size * math.ceil(self.num_batches / self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Draw the batches of ``epoch`` next (a fresh draw from ``(seed, epoch)``)."""
        self.epoch = int(epoch)

    def global_batches(self, epoch: int | None = None) -> list[list[int]]:
        """Every process's batches of ``epoch`` (default: the current one), in order.

        Process ``r`` takes ``global_batches()[r::world_size]``.

        Arguments
        ---------
        epoch : int, optional
            The epoch (default: the one set by :meth:`set_epoch`).

        Returns
        -------
        list of list of int
        """
        epoch = self.epoch if epoch is None else int(epoch)
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        seed = self.seed % 2**63
        rng = np.random.default_rng([seed, epoch, 0])
        cycles: dict[tuple[Hashable, Hashable], list] = {}
        batches = []
        for _ in range(self.global_num_batches):
            choice = int(rng.integers(len(self._sets)))
            shared = self._shared[choice]
            picked = rng.choice(len(shared), size=self.n_cls, replace=False)
            emotions = [shared[i] for i in sorted(picked.tolist())]
            batch: list[int] = []
            for lang in self._sets[choice]:
                for emo in emotions:
                    batch += self._draw((lang, emo), cycles, seed, epoch)
            batches.append(batch)
        self._cache = (epoch, batches)
        return batches

    def _draw(self, cell: tuple, cycles: dict, seed: int, epoch: int) -> list[int]:
        """``n_sam`` utterances of ``cell``, walking its shuffled cycle."""
        if cell not in cycles:  # [generator, order, position]
            cell_rng = np.random.default_rng([seed, epoch, 1 + self._cell_ids[cell]])
            cycles[cell] = [cell_rng, [], 0]
        state = cycles[cell]
        taken: list[int] = []
        while len(taken) < self.n_sam:
            if state[2] == len(state[1]):  # a new cycle
                order = state[0].permutation(self._cells[cell]).tolist()
                if len(order) >= self.n_sam and taken:  # no repeat in this draw
                    order = [i for i in order if i not in taken] + [
                        i for i in order if i in taken
                    ]
                state[1], state[2] = order, 0
            taken.append(state[1][state[2]])
            state[2] += 1
        return taken

    def __iter__(self) -> Iterator[list[int]]:
        """Yield the current epoch's batches of this process."""
        yield from self.global_batches()[self.rank :: self.world_size]

    def __len__(self) -> int:
        """Return the number of batches of this process per epoch."""
        return self.global_num_batches // self.world_size
