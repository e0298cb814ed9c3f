"""What a grid of experiments runs: its command-line values, runs and order.

The planning half of ``recipes/run_grid.py`` (the engine that runs the cells
is :mod:`zsser_modules.grid_engine`, identical experiments are found in
:mod:`zsser_modules.grid_dedupe`):

* the grid's command-line values: :func:`parse_pairs`, :func:`parse_variants`,
  :func:`parse_seeds`, and :func:`check_grid_overrides`, which refuses the
  recipe keys the grid sets itself (:data:`RESERVED_KEYS`);
* :func:`plan_runs`: pairs x variants x seeds as :class:`Run` folders,
  seed-major; :func:`hparams_file`: a run's hyperparameter file;
* :func:`run_order` and :func:`plan_units`: which runs go first (the warm-up
  rules) and how they are grouped into an engine's units of work.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from zsser_modules.data_prep.zero_shot import VARIANTS
from zsser_modules.grid_engine import Cell, Run, Unit
from zsser_modules.labels import LANGUAGES
from zsser_modules.results_table import VARIANT_ORDER

#: Recipe keys that the grid sets itself (refused among the pass-through overrides).
RESERVED_KEYS = ("variant", "seed", "output_folder", "source_lang", "target_lang")


# ---- Command line values ------------------------------------------------------


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_pairs(text: str) -> list[str]:
    """Parse ``"en_de,zh_fr"`` into checked pairs (``"all"``: every ordered pair).

    Arguments
    ---------
    text : str
        Comma-separated ``<source>_<target>`` pairs of ``LANGUAGES``.

    Returns
    -------
    list of str
        The pairs, in the given order, without repeats.

    Raises
    ------
    ValueError
        For a malformed pair, an unknown language or source == target.

    Example
    -------
    >>> parse_pairs("en_de, zh_fr,en_de")
    ['en_de', 'zh_fr']
    >>> len(parse_pairs("all"))
    20
    >>> parse_pairs("en-de")
    Traceback (most recent call last):
    ...
    ValueError: Bad pair 'en-de': expected <source>_<target> with languages from ['en', 'zh', 'de', 'fr', 'ur'] (source != target), e.g. en_de.
    """  # noqa: E501
    if text.strip() == "all":
        return [f"{s}_{t}" for s in LANGUAGES for t in LANGUAGES if s != t]
    pairs = []
    for item in _items(text):
        source, sep, target = item.partition("_")
        if (
            not sep
            or source not in LANGUAGES
            or target not in LANGUAGES
            or (source == target)
        ):
            raise ValueError(
                f"Bad pair {item!r}: expected <source>_<target> with languages from "
                f"{list(LANGUAGES)} (source != target), e.g. en_de."
            )
        pairs.append(item)
    if not pairs:
        raise ValueError("No pair given: e.g. --pairs en_de,zh_fr.")
    return list(dict.fromkeys(pairs))


def parse_variants(text: str) -> list[str]:
    """Parse ``"baseline1,proposed"`` into checked variants (``"all"``: every one).

    Arguments
    ---------
    text : str
        Comma-separated variant names.

    Returns
    -------
    list of str
        The variants, in the given order (``"all"``: table order), no repeats.

    Raises
    ------
    ValueError
        For an unknown variant.

    Example
    -------
    >>> parse_variants("proposed,baseline1")
    ['proposed', 'baseline1']
    >>> parse_variants("all")[0], parse_variants("all")[-1]
    ('baseline1', 'upper_bound')
    """
    if text.strip() == "all":
        return list(VARIANT_ORDER)
    variants = _items(text)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ValueError(
            f"Unknown variant(s) {unknown or text!r}; choose from {list(VARIANTS)} "
            "(comma-separated) or 'all'."
        )
    return list(dict.fromkeys(variants))


def parse_seeds(text: str) -> list[int]:
    """Parse ``"1,2,3"`` (or a range ``"1-3"``) into seeds.

    Arguments
    ---------
    text : str
        Comma-separated integers or ``a-b`` ranges (inclusive).

    Returns
    -------
    list of int
        The seeds, in the given order, without repeats.

    Raises
    ------
    ValueError
        If an item is not an integer or a range.

    Example
    -------
    >>> parse_seeds("1,2,3"), parse_seeds("1-3,7")
    ([1, 2, 3], [1, 2, 3, 7])
    """
    seeds = []
    try:
        for item in _items(text):
            first, sep, last = item.partition("-")
            if sep and first:
                seeds += list(range(int(first), int(last) + 1))
            else:
                seeds.append(int(item))
    except ValueError:
        raise ValueError(
            f"Bad seeds {text!r}: expected comma-separated integers such as 1,2,3 "
            "or a range such as 1-3."
        ) from None
    if not seeds:
        raise ValueError("No seed given: e.g. --seeds 1,2,3.")
    return list(dict.fromkeys(seeds))


#: ``--split-seed`` value under which every run's ``split_seed`` is its ``seed``.
SPLIT_SEED_FOLLOW = "follow"


def parse_split_seed(text: str | None) -> str | int | None:
    """Parse ``--split-seed``: ``follow``, ``fixed`` (or None) or an integer.

    Arguments
    ---------
    text : str or None
        ``"follow"``: each run gets ``--split_seed=<its seed>``, so the
        spread over seeds includes the split; ``"fixed"`` or None: the
        hyperparameter file's ``split_seed`` (one split for every seed); an
        integer: ``--split_seed=<integer>`` for every run.

    Returns
    -------
    str, int or None
        ``"follow"``, the integer, or None (the file's value).

    Raises
    ------
    ValueError
        For anything else.

    Example
    -------
    >>> parse_split_seed("follow"), parse_split_seed("fixed"), parse_split_seed("7")
    ('follow', None, 7)
    >>> parse_split_seed("sometimes")
    Traceback (most recent call last):
    ...
    ValueError: Bad --split-seed 'sometimes': expected follow, fixed or an integer.
    """
    if text is None or text.strip() == "fixed":
        return None
    if text.strip() == SPLIT_SEED_FOLLOW:
        return SPLIT_SEED_FOLLOW
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"Bad --split-seed {text!r}: expected follow, fixed or an integer."
        ) from None


def split_seed_overrides(run: Run, split_seed: str | int | None) -> list[str]:
    """The recipe argument a run gets from the grid's ``--split-seed``.

    Arguments
    ---------
    run : Run
        The run.
    split_seed : str, int or None
        :func:`parse_split_seed`'s value.

    Returns
    -------
    list of str
        ``[]`` (the file's ``split_seed``) or ``["--split_seed=<n>"]``.

    Example
    -------
    >>> run = Run("en", "de", "proposed", 3, Path("g"))
    >>> split_seed_overrides(run, "follow"), split_seed_overrides(run, 11)
    (['--split_seed=3'], ['--split_seed=11'])
    >>> split_seed_overrides(run, None)
    []
    """
    if split_seed is None:
        return []
    value = run.seed if split_seed == SPLIT_SEED_FOLLOW else int(split_seed)
    return [f"--split_seed={value}"]


def check_grid_overrides(overrides: Sequence[str]) -> list[str]:
    """Check the pass-through recipe arguments; refuse the keys the grid sets.

    Arguments
    ---------
    overrides : sequence of str
        Arguments given after ``--`` (``--key=value``, ``--key value`` or run
        options such as ``--device=cpu``).

    Returns
    -------
    list of str
        ``overrides`` unchanged.

    Raises
    ------
    ValueError
        If an override sets one of :data:`RESERVED_KEYS`.

    Example
    -------
    >>> check_grid_overrides(["--encoder=fbank", "--device", "cpu"])
    ['--encoder=fbank', '--device', 'cpu']
    >>> check_grid_overrides(["--seed=4"])
    Traceback (most recent call last):
    ...
    ValueError: The grid sets --seed itself; use the grid options --pairs/--variants/--seeds/--grid-folder instead of passing it after '--'.
    """  # noqa: E501
    for token in overrides:
        key = token[2:].split("=", 1)[0] if token.startswith("--") else None
        if key in RESERVED_KEYS:
            raise ValueError(
                f"The grid sets --{key} itself; use the grid options "
                "--pairs/--variants/--seeds/--grid-folder instead of passing it "
                "after '--'."
            )
    return list(overrides)


# ---- Planning -----------------------------------------------------------------


def plan_runs(
    grid_folder: str | os.PathLike,
    pairs: Sequence[str],
    variants: Sequence[str],
    seeds: Sequence[int],
) -> list[Run]:
    """List the runs of a grid, seed-major (every cell gets its first seed first).

    Arguments
    ---------
    grid_folder : str or path-like
        Root of the grid; a run goes to ``<grid_folder>/<pair>/<variant>/seed<k>``.
    pairs : sequence of str
        ``"<source>_<target>"`` pairs.
    variants : sequence of str
        Variants.
    seeds : sequence of int
        Seeds.

    Returns
    -------
    list of Run
        For each seed, for each pair, for each variant.

    Example
    -------
    >>> runs = plan_runs("grid", ["en_de", "zh_fr"], ["proposed"], [1, 2])
    >>> [run.key for run in runs]
    ['en_de/proposed/seed1', 'zh_fr/proposed/seed1', 'en_de/proposed/seed2', 'zh_fr/proposed/seed2']
    >>> runs[0].output_folder.as_posix()
    'grid/en_de/proposed/seed1'
    """  # noqa: E501
    grid_folder = Path(grid_folder)
    runs = []
    for seed in seeds:
        for pair in pairs:
            source, _, target = pair.partition("_")
            for variant in variants:
                folder = grid_folder / pair / variant / f"seed{seed}"
                runs.append(Run(source, target, variant, int(seed), folder))
    return runs


def hparams_file(hparams: str, run: Run) -> Path:
    """The hyperparameter file of a run: ``hparams`` with placeholders filled.

    Arguments
    ---------
    hparams : str
        A path, possibly with ``{pair}``, ``{source}``, ``{target}``.
    run : Run
        The run.

    Returns
    -------
    pathlib.Path
        The absolute path of the file.

    Example
    -------
    >>> run = Run("en", "de", "proposed", 1, Path("g"))
    >>> hparams_file("/h/{source}_{target}.yaml", run).as_posix()
    '/h/en_de.yaml'
    >>> hparams_file("/h/demo.yaml", run).as_posix()
    '/h/demo.yaml'
    """
    name = hparams.format(pair=run.pair, source=run.source, target=run.target)
    return Path(os.path.abspath(os.path.expanduser(name)))


def run_order(
    pending: Sequence[Run], done_groups: set, warmup: bool = True
) -> tuple[list[Run], dict[str, set]]:
    """Start order of the pending runs and what each must wait for.

    With ``warmup``: the first pending run that is not ``baseline1`` (it
    prepares every corpus of the language pool) goes first and every other
    run waits for it; and within each (pair, variant) not already run, the
    other seeds wait for the first one (it builds the shared setting).

    Arguments
    ---------
    pending : sequence of Run
        Runs to do, in plan order.
    done_groups : set
        (pair, variant) groups with a finished run (their setting exists).
    warmup : bool
        Apply the two rules above; False: no waiting at all.

    Returns
    -------
    order : list of Run
        The runs in start order.
    waits_for : dict
        ``run.key -> set of run keys`` that must finish first (success or not).

    Example
    -------
    >>> runs = plan_runs("g", ["en_de"], ["baseline1", "proposed"], [1, 2])
    >>> order, waits = run_order(runs, done_groups=set())
    >>> [run.key for run in order]
    ['en_de/proposed/seed1', 'en_de/baseline1/seed1', 'en_de/baseline1/seed2', 'en_de/proposed/seed2']
    >>> sorted(waits["en_de/baseline1/seed2"])
    ['en_de/baseline1/seed1', 'en_de/proposed/seed1']
    """  # noqa: E501
    order = list(pending)
    waits_for: dict[str, set] = {run.key: set() for run in order}
    if not warmup or len(order) < 2:
        return order, waits_for
    first = next((run for run in order if run.variant != "baseline1"), order[0])
    order.remove(first)
    order.insert(0, first)
    first_of_group: dict[tuple, str] = {}
    for run in order:
        group = (run.pair, run.variant)
        if run is not first:
            waits_for[run.key].add(first.key)
        if group in done_groups:
            continue
        if group in first_of_group:
            waits_for[run.key].add(first_of_group[group])
        else:
            first_of_group[group] = run.key
    return order, waits_for


def plan_units(
    pending: Sequence[Run],
    commands: dict[str, list[str]],
    engine: str = "local",
    warmup: bool = True,
    done_groups: set | None = None,
    timeout: float | None = None,
    threads: int | None = None,
) -> tuple[list[Unit], dict[str, set]]:
    """Group the pending runs into the engine's units of work, with their order.

    ``local`` (a pool of long-lived workers): one unit per run, in
    :func:`run_order`. The submitit engines (a process per job): one unit per
    (pair, variant) with its seeds in order, so that a job pays the start-up
    once for several runs and no two jobs build the same setting; with
    ``warmup`` the first run of :func:`run_order` is a unit of its own that
    the others wait for (it prepares the corpora and the feature cache).

    Arguments
    ---------
    pending : sequence of Run
        Runs to do, in plan order.
    commands : dict
        ``run.key -> command`` (``recipes/run_grid.py``'s ``recipe_command``).
    engine : str
        An engine of :data:`zsser_modules.grid_engine.ENGINES`.
    warmup : bool
        See :func:`run_order`.
    done_groups : set, optional
        (pair, variant) groups with a finished run.
    timeout : float, optional
        Per-run time limit in seconds.
    threads : int, optional
        Threads per run.

    Returns
    -------
    units : list of Unit
        In start order.
    waits_for : dict
        ``unit.name -> set of unit names`` to finish first.

    Example
    -------
    >>> runs = plan_runs("g", ["en_de"], ["baseline1", "proposed"], [1, 2])
    >>> cmds = {run.key: ["python", "train.py", "h.yaml"] for run in runs}
    >>> units, waits = plan_units(runs, cmds, "slurm")
    >>> [[cell.run.key for cell in unit.cells] for unit in units]
    [['en_de/proposed/seed1'], ['en_de/baseline1/seed1', 'en_de/baseline1/seed2'], ['en_de/proposed/seed2']]
    >>> waits[units[2].name]
    {'en_de/proposed/seed1'}
    """  # noqa: E501
    order, waits_for = run_order(pending, done_groups or set(), warmup)

    def cell(run: Run) -> Cell:
        command = commands[run.key]
        return Cell(run, command[1], tuple(command[2:]), timeout, threads)

    if engine == "local":
        return [Unit(run.key, [cell(run)]) for run in order], waits_for
    units: list[Unit] = []
    first = order[0].key if warmup and len(order) > 1 else None
    groups: dict[tuple, Unit] = {}
    for run in order:
        if run.key == first:
            units.append(Unit(run.key, [cell(run)]))
            continue
        group = (run.pair, run.variant)
        if group not in groups:
            groups[group] = Unit(f"{run.pair}/{run.variant}", [])
            units.append(groups[group])
        groups[group].cells.append(cell(run))
    for unit in units:  # seeds in order within a job
        unit.cells.sort(key=lambda c: c.run.seed)
    waits = {unit.name: {first} for unit in units if first and unit.name != first}
    return units, waits
