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
        check_no_group_override(hparams_file, overrides)
    with exit_on(TunedWeightsError):
        return tuned_overrides(hparams_file, overrides)


#: The keys of the YAML's ``selection_options``, in the order of the tuple
#: that zsser_modules.selection's functions take.
SELECTION_KEYS = (
    "selection",
    "selection_average",
    "selection_average_of",
    "lr_schedule",
)


def tuned_record(path: str | None, target: str) -> dict | None:
    """What results.json records of ``--tuned_weights`` (None: not given).

    The file (absolute path, sha256) and its entry for ``target``
    (zsser_modules.tuning.tuned_record).
    """
    from zsser_modules.tuning import tuned_record as record

    return record(path, target)


def check_no_group_override(hparams_file: str, overrides: str | None) -> None:
    """Refuse an override of an option group (ValueError, one line).

    A group only repeats other keys: overriding it would make its consumer
    read other values than the keys (and the run identity) say.
    """
    import ruamel.yaml

    from zsser_modules.run_identity import option_groups

    given = ruamel.yaml.YAML().load(overrides) if overrides else None
    if not isinstance(given, Mapping):
        return
    groups = option_groups(hparams_file)
    for key in given:
        if key in groups:
            raise ValueError(
                f"{key} only repeats other keys ({', '.join(groups[key])}): "
                f"override those instead, e.g. --{groups[key][0]}=..."
            )


def selection_options(options: Mapping[str, Any]) -> tuple:
    """selection, selection_average, selection_average_of, lr_schedule.

    ``options``: the YAML's ``selection_options`` (or any mapping with
    these keys, e.g. the whole hparams).

    Example
    -------
    >>> selection_options({"selection": "pooled_uar", "selection_average": 0,
    ...                    "selection_average_of": "best", "lr_schedule": "newbob"})
    ('pooled_uar', 0, 'best', 'newbob')
    >>> selection_options({"selection": "pooled_uar"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: selection_options lacks selection_average, ... see hparams/...
    """
    missing = [key for key in SELECTION_KEYS if key not in options]
    if missing:
        raise ValueError(
            f"selection_options lacks {', '.join(missing)}: see "
            "hparams/template/common.yaml."
        )
    return tuple(options[key] for key in SELECTION_KEYS)


def check_hparams(hparams: dict) -> None:
    """Refuse bad option values before any work (one line, exit 2).

    The options are read as loaded (a group such as ``data_options`` only
    repeats them: :func:`checked_overrides` refuses overriding a group).
    """
    from zsser_modules.audio import check_max_duration
    from zsser_modules.data_prep.paper_protocol import check_protocol
    from zsser_modules.inference import PRETRAINED_ENCODERS
    from zsser_modules.optional import MissingExtraError, check_recipe_extras
    from zsser_modules.sampling import check_language_sampling
    from zsser_modules.selection import check_selection_options
    from zsser_modules.speaker_norm import check_speaker_norm

    from .variants import check_hierarchical_batches

    with exit_on(ValueError, MissingExtraError):
        check_protocol(hparams["protocol"], hparams["paper_split"])
        check_selection_options(*selection_options(hparams))
        check_language_sampling(hparams["language_sampling"])
        check_max_duration(hparams["max_duration"])
        check_hierarchical_batches(hparams)
        check_speaker_norm(
            hparams["speaker_norm"],
            frozen=hparams["encoder"] == "fbank_stats"
            or (
                hparams["encoder"] in PRETRAINED_ENCODERS
                and hparams["freeze_ssl"]
                and hparams["encoder_adaptation"] == "none"
            ),
            cached=hparams["use_feature_cache"],
            enrolment=hparams["speaker_norm_enrolment"],
        )
        check_recipe_extras(hparams)  # docs/install.md: stop now, or warn
