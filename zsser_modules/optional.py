"""Optional packages: imported at first use, named with their extra when missing.

``pip install zsser`` installs the core: what the losses, the adversary, the
samplers, the fbank encoders, the metrics, the data preparation and the
recipe's training loop import (torch, torchaudio, speechbrain, pandas and
packages those already bring). Everything else is an *extra* of ``setup.py``
(see ``docs/install.md``):

- ``encoders``: the pretrained encoders (wav2vec 2.0 family, Whisper):
  transformers;
- ``plots``: the t-SNE figure and the results-table figure: matplotlib,
  scikit-learn (t-SNE);
- ``probe``: the representation probes (``diagnostics``) and the layer-wise
  probe: scikit-learn;
- ``demo``: synthesising the demo corpus (espeakng-loader), plus ``plots``
  and ``probe`` for a demo run with its default settings;
- ``grid``: ``recipes/run_grid.py --engine submitit-local/slurm/debug``:
  submitit;
- ``tune``: ``recipes/tune.py``: optuna.

A module that uses an optional package imports it inside the function that
needs it, within :func:`extra`: when the package is missing the code stops
with :class:`MissingExtraError`, whose message is one line naming the package
and the extra to install.

Example
-------
>>> with extra("plots", "the t-SNE figure"):
...     import json  # any import of the block; a missing one names the extra
>>> print(missing_extra_message("plots", "the t-SNE figure", "matplotlib"))
the t-SNE figure needs matplotlib, which is not installed:
pip install "zsser[plots]" (in a clone of the repository: pip install -e ".[plots]")

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator, Mapping
from typing import Any

logger = logging.getLogger(__name__)

#: Extra -> the top-level import names it provides. ``setup.py`` lists each of
#: them (as a distribution, see :data:`DISTRIBUTIONS`) in that extra; a test
#: checks that the two agree.
EXTRAS: dict[str, tuple[str, ...]] = {
    "encoders": ("transformers",),
    "plots": ("matplotlib", "sklearn", "threadpoolctl"),
    "probe": ("sklearn", "threadpoolctl"),
    "demo": ("espeakng_loader", "matplotlib", "sklearn", "threadpoolctl"),
    "grid": ("submitit",),
    "tune": ("optuna",),
}

#: Import name -> distribution name on PyPI, where they differ.
DISTRIBUTIONS: dict[str, str] = {
    "sklearn": "scikit-learn",
    "espeakng_loader": "espeakng-loader",
}


class MissingExtraError(ImportError):
    """An optional package is missing; the message names the extra to install."""


def distribution(module: str) -> str:
    """The PyPI name of the package that provides ``module`` (top level).

    Example
    -------
    >>> distribution("sklearn.manifold"), distribution("matplotlib")
    ('scikit-learn', 'matplotlib')
    """
    top = module.split(".")[0]
    return DISTRIBUTIONS.get(top, top)


def _check_extra_name(name: str) -> None:
    """Refuse an extra that setup.py does not define."""
    if name not in EXTRAS:
        raise ValueError(
            f"unknown extra {name!r}; the extras are {sorted(EXTRAS)} "
            "(zsser_modules.optional.EXTRAS)."
        )


def missing_extra_message(name: str, feature: str, module: str) -> str:
    """The one line that says which package is missing and which extra has it.

    Arguments
    ---------
    name : str
        The extra (a key of :data:`EXTRAS`).
    feature : str
        What needs the package, as the start of a sentence ("the t-SNE figure").
    module : str
        The missing import name (its top level is named by its distribution).

    Returns
    -------
    str
        One line, without a trailing newline.
    """
    _check_extra_name(name)
    return (
        f"{feature} needs {distribution(module)}, which is not installed: "
        f'pip install "zsser[{name}]" (in a clone of the repository: '
        f'pip install -e ".[{name}]")'
    )


@contextlib.contextmanager
def extra(name: str, feature: str) -> Iterator[None]:
    """Run the imports of an optional feature; a missing package names its extra.

    A ``ModuleNotFoundError`` for one of the extra's packages (:data:`EXTRAS`)
    becomes :class:`MissingExtraError` with :func:`missing_extra_message`;
    any other error (a missing module of another extra, a broken install)
    is raised unchanged.

    Arguments
    ---------
    name : str
        The extra (a key of :data:`EXTRAS`).
    feature : str
        What needs it, for the message ("the t-SNE figure").

    Example
    -------
    >>> try:
    ...     with extra("plots", "the t-SNE figure"):
    ...         raise ModuleNotFoundError(name="matplotlib")  # a missing import
    ... except MissingExtraError as error:
    ...     print(str(error).split(":")[0])
    the t-SNE figure needs matplotlib, which is not installed
    """
    _check_extra_name(name)
    try:
        yield
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        if missing not in EXTRAS[name]:
            raise
        raise MissingExtraError(missing_extra_message(name, feature, missing)) from None


def missing_modules(name: str) -> list[str]:
    """The import names of extra ``name`` that cannot be found (none: installed).

    Looks the packages up without importing them (cheap enough for a check
    at start-up).

    Example
    -------
    >>> missing_modules("encoders") in ([], ["transformers"])
    True
    """
    _check_extra_name(name)
    missing = []
    for module in EXTRAS[name]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a blocked or broken entry
            found = False
        if not found:
            missing.append(module)
    return missing


def require_extra(name: str, feature: str) -> None:
    """Stop with :class:`MissingExtraError` if a package of extra ``name`` is missing.

    For a check at start-up, before hours of training: the modules import
    the packages themselves, later, within :func:`extra`.

    Example
    -------
    >>> require_extra("encoders", "--encoder=ssl")  # doctest: +SKIP
    """
    missing = missing_modules(name)
    if missing:
        raise MissingExtraError(missing_extra_message(name, feature, missing[0]))


def check_recipe_extras(hparams: Mapping[str, Any]) -> list[str]:
    """Check at start-up that a run's settings have their optional packages.

    Per setting (``recipes/train.py``'s hparams; a missing key is skipped):

    - ``encoder: ssl`` or ``whisper`` needs ``encoders`` (transformers):
      stop, the run cannot train without it;
    - ``diagnostics: True`` needs ``probe`` (scikit-learn): stop, since
      ``results.json`` would lack what the setting asks for (set
      ``--diagnostics=False`` to run without the probes);
    - ``tsne_per_language`` > 0 wants ``plots``: the figure is skipped with a
      warning (it is an illustration; nothing reads it), returned here.

    The demo corpus needs ``espeakng-loader`` only to synthesise it (its
    preparation stops with a clear line otherwise), so it is not checked here.

    Arguments
    ---------
    hparams : mapping
        The run's hyperparameters.

    Returns
    -------
    list of str
        Warnings, one line each (also logged).

    Raises
    ------
    MissingExtraError
        When a setting needs a missing package.

    Example
    -------
    >>> check_recipe_extras({"encoder": "fbank_stats", "diagnostics": False,
    ...                      "tsne_per_language": 0})
    []
    """
    from zsser_modules.inference import PRETRAINED_ENCODERS  # ssl, whisper

    if hparams.get("encoder") in PRETRAINED_ENCODERS:
        require_extra("encoders", f"--encoder={hparams['encoder']}")
    if hparams.get("diagnostics"):
        missing = missing_modules("probe")
        if missing:
            raise MissingExtraError(
                missing_extra_message(
                    "probe", "diagnostics: True (the representation probes)", missing[0]
                )
                + ", or set --diagnostics=False"
            )
    warnings = []
    if hparams.get("tsne_per_language"):
        missing = missing_modules("plots")
        if missing:
            warnings.append(
                "the t-SNE figure will be skipped: "
                + missing_extra_message("plots", "it", missing[0])
            )
    for line in warnings:
        logger.warning(line)
    return warnings
