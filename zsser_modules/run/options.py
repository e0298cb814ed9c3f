"""The recipe's options, checked before the run folder is touched.

Unknown keys and ``--tuned_weights`` are handled on the overrides
(:func:`checked_overrides`); the loaded hyperparameters are checked as a
whole (:func:`check_hparams`). A bad value stops the recipe with one line
(:func:`exit_on`), never a traceback.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from typing import Any

#: Prefix of the recipe's one-line refusals.
PROGRAM = "recipes/train.py"


@contextlib.contextmanager
def exit_on(*errors: type[BaseException]) -> Iterator[None]:
    """Turn ``errors`` raised in the block into one line on stderr and exit 2.

    Example
    -------
    >>> import pytest
    >>> with pytest.raises(SystemExit):
    ...     with exit_on(ValueError):
    ...         raise ValueError("seed must be an integer, got 'x'.")
    """
    try:
        yield
    except errors as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        sys.exit(2)


def checked_overrides(hparams_file: str, overrides: str | None) -> str | None:
    """The command-line overrides, checked; ``--tuned_weights`` values added.

    Every file of hparams/ is standalone (generated from hparams/template/):
    an unknown key stops the recipe with one line. ``--tuned_weights=<file>``:
    its values for this target become overrides (zsser_modules.tuning).
    """
    from zsser_modules.hparams import check_overrides
    from zsser_modules.tuning import TunedWeightsError, tuned_overrides

    with exit_on(OSError, ValueError):
        check_overrides(hparams_file, overrides)
    with exit_on(TunedWeightsError):
        return tuned_overrides(hparams_file, overrides)


def selection_options(hparams: Mapping[str, Any]) -> tuple:
    """selection, selection_average, selection_average_of, lr_schedule.

    Example
    -------
    >>> selection_options({"selection": "pooled_uar", "selection_average": 0,
    ...                    "selection_average_of": "best", "lr_schedule": "newbob"})
    ('pooled_uar', 0, 'best', 'newbob')
    """
    return (
        hparams["selection"],
        hparams["selection_average"],
        hparams["selection_average_of"],
        hparams["lr_schedule"],
    )


def check_hparams(hparams: dict) -> None:
    """Record the tuned weights, set the threads, refuse bad values (one line).

    Adds ``tuned_weights_record`` to ``hparams`` (None: the YAML's weights)
    and applies ``torch_num_threads``; a bad option value exits with one line.
    """
    import torch

    from zsser_modules.audio import check_max_duration
    from zsser_modules.data_prep.paper_protocol import check_protocol
    from zsser_modules.inference import PRETRAINED_ENCODERS
    from zsser_modules.sampling import check_language_sampling
    from zsser_modules.selection import check_selection_options
    from zsser_modules.speaker_norm import check_speaker_norm
    from zsser_modules.tuning import tuned_record

    from .variants import check_hierarchical_batches

    hparams["tuned_weights_record"] = tuned_record(
        hparams["tuned_weights"], hparams["target_lang"]
    )
    if hparams["torch_num_threads"]:
        torch.set_num_threads(hparams["torch_num_threads"])
    from zsser_modules.optional import MissingExtraError, check_recipe_extras

    with exit_on(ValueError, MissingExtraError):
        check_protocol(hparams["protocol"], hparams["paper_split"])
        check_selection_options(*selection_options(hparams))
        check_language_sampling(hparams["language_sampling"])
        check_max_duration(hparams["max_duration"])
        check_hierarchical_batches(hparams)
        check_speaker_norm(
            hparams["speaker_norm"],
            frozen=hparams["encoder"] == "fbank_stats"
            or (hparams["encoder"] in PRETRAINED_ENCODERS and hparams["freeze_ssl"]),
            cached=hparams["use_feature_cache"],
            enrolment=hparams["speaker_norm_enrolment"],
        )
        check_recipe_extras(hparams)  # docs/install.md: stop now, or warn
