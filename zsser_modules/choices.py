"""One check, one message, for a setting that must be one of a few choices.

Example
-------
>>> check_choice("selection", "pooled_uar", ("mean_language_uar", "pooled_uar"))
'pooled_uar'

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

from collections.abc import Collection


def check_choice(name: str, value: str, choices: Collection[str], fix: str = "") -> str:
    """Return ``value`` if it is one of ``choices``, else raise a one-line error.

    The message names the setting, the choices (``a or b`` for two, the list
    for more), what was found and, when given, how to fix it.

    Arguments
    ---------
    name : str
        The setting, as the user knows it (e.g. ``"language_sampling"``).
    value : str
        The value found.
    choices : collection of str
        The accepted values, in the order the message lists them.
    fix : str
        How to set it, e.g. ``"e.g. --selection=pooled_uar"`` (in parentheses).

    Returns
    -------
    str
        ``value``, unchanged.

    Raises
    ------
    ValueError
        If ``value`` is not one of ``choices``.

    Example
    -------
    >>> check_choice("precision", "fp8", ["bf16", "fp16", "fp32"], "set it in the YAML")
    Traceback (most recent call last):
    ...
    ValueError: precision must be one of ['bf16', 'fp16', 'fp32'], got 'fp8' (set it in the YAML).
    """  # noqa: E501
    if value not in choices:
        options = list(choices)
        allowed = " or ".join(options) if len(options) == 2 else f"one of {options}"
        hint = f" ({fix})" if fix else ""
        raise ValueError(f"{name} must be {allowed}, got {value!r}{hint}.")
    return value
