"""One run per output folder: its identity, resuming it, reporting it finished.

The run folder holds one run (zsser_modules.run_identity): the same
settings resume it, or report it if it finished; other settings are refused
unless ``--overwrite=True`` (the old run is archived).

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from speechbrain.utils.distributed import if_main_process, run_on_main
from speechbrain.utils.logger import get_logger

from zsser_modules.adaptation import AdaptationError
from zsser_modules.backbones import BackboneError
from zsser_modules.hierarchical_sampler import HierarchicalSamplerError
from zsser_modules.run_identity import (
    RESULTS_KEY,
    RunIdentity,
    RunIdentityError,
    check_run_folder,
)

logger = get_logger(__name__)


#: Raised during a run on a user's mistake (one line each): the output folder
#: holds another run; a language lacks what hierarchical batches need.
# Refusals a run may meet after its start, each one line (recipes/train.py).
RUN_ERRORS = (
    RunIdentityError,
    HierarchicalSamplerError,
    AdaptationError,
    BackboneError,
)


def open_run_folder(
    hparams_file: str,
    overrides: str | None,
    run_opts: dict,
    hparams: dict,
    overwrite: bool,
) -> bool:
    """Claim the output folder for this run; False if this very run finished.

    Sets ``hparams["run_identity"]`` (the short hash of the run's settings).
    A finished run (its results.json carries the same identity) is reported
    with its result line, unless ``--test_only``; a folder holding another
    run raises RunIdentityError (one line) unless ``overwrite`` (the YAML's
    ``overwrite``: the old run is archived).
    """
    identity = RunIdentity.from_hparams(hparams_file, overrides, run_opts)
    hparams["run_identity"] = identity.hash
    folder = hparams["output_folder"]
    check_run_folder(folder, identity, overwrite, write=False)  # every process
    state = run_on_main(check_run_folder, args=[folder, identity, overwrite])
    if state and state.startswith("archived:"):
        logger.warning(f"--overwrite=True: the old run was moved to {state[9:]}.")
    finished = finished_results(hparams)
    if finished is None or run_opts.get("test_only"):
        return True
    if if_main_process():
        print(f"This run already finished (run identity {identity.hash}):")
        print_result_line(finished, hparams["results_file"])
        print(
            "Nothing was trained or tested. Add --test_only to test its best "
            "checkpoint again, or --overwrite=True to train it afresh."
        )
    return False


def finished_results(hparams: Mapping[str, Any]) -> dict | None:
    """The results.json of this very run if it finished (same run identity)."""
    path = Path(hparams["results_file"])
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict):
        return None
    return results if results.get(RESULTS_KEY) == hparams["run_identity"] else None


def print_result_line(results: Mapping[str, Any], results_file: str) -> None:
    """One line with the test figures of a run.

    Example
    -------
    >>> print_result_line({"source": "en", "target": "de", "variant": "proposed",
    ...     "encoder": "fbank_stats", "seed": 1, "protocol": "speaker",
    ...     "uar": 0.5, "macro_f1": 0.25, "n_test": 8}, "results.json")
    ... # doctest: +ELLIPSIS
    en -> de (proposed, ...): test UAR 50.00%, macro-F1 25.00% on 8 ... results.json
    """
    protocol = results.get("protocol") or "speaker"
    if results.get("paper_split"):
        protocol += f", {results['paper_split']}"
    every = results.get("target_all")
    print(
        f"{results['source']} -> {results['target']} ({results['variant']}, "
        f"{results['encoder']}, seed {results['seed']}, {protocol} protocol): "
        f"test UAR {results['uar']:.2%}, macro-F1 {results['macro_f1']:.2%} on "
        f"{results['n_test']} utterances"
        + (
            f"; whole target UAR {every['uar']:.2%} on {every['n_utterances']}"
            if every
            else ""
        )
        + f" -> {results_file}"
    )
