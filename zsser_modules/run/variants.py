"""What each zero-shot variant trains: its loss terms and its batches.

The variant (``--variant``) selects the training languages
(:mod:`zsser_modules.data_prep.zero_shot`) and, here, the auxiliary loss
terms trained on top of the emotion cross-entropy and the batches drawn
under ``batch_sampler: auto``.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zsser_modules.data_prep.zero_shot import VARIANTS, training_languages
from zsser_modules.sampling import resolve_batch_sampler

# Auxiliary loss terms trained by each variant, on top of the emotion
# cross-entropy. The weights come from the YAML; a term with weight 0 is not
# computed at all (its head runs no forward pass and gets no gradient).
VARIANT_LOSSES = {
    "baseline1": (),
    "baseline2": (),
    "baseline2_hier": (),  # baseline2 with hierarchical batches (a control)
    "upper_bound": (),
    "no_supcon": ("spk_adv", "lang_adv"),
    "no_spkadv": ("supcon", "lang_adv"),
    "proposed": ("supcon", "spk_adv", "lang_adv"),
}
assert set(VARIANT_LOSSES) == set(VARIANTS), "a variant lacks its loss terms"
# Batches of each variant under batch_sampler=auto (zsser_modules.sampling):
# the paper's hierarchical cross-lingual batches for the systems with its
# losses (and the sampler control baseline2_hier), random batches of the same
# size for the baselines and the upper bound (the paper does not say).
VARIANT_BATCH_SAMPLER = {
    "baseline1": "random",
    "baseline2": "random",
    "baseline2_hier": "hierarchical",
    "upper_bound": "random",
    "no_supcon": "hierarchical",
    "no_spkadv": "hierarchical",
    "proposed": "hierarchical",
}
assert set(VARIANT_BATCH_SAMPLER) == set(VARIANTS), "a variant lacks its batches"


def loss_weights(variant: str, weights: Mapping[str, Any]) -> dict[str, float]:
    """Weight of each auxiliary loss term for ``variant`` (0: not computed).

    ``weights`` is the YAML's ``aux_loss_weights``: a weight for each term
    (supcon, spk_adv, lang_adv); the variant's other terms get 0.

    Example
    -------
    >>> loss_weights("no_supcon", {"supcon": 0.5, "spk_adv": 0.1, "lang_adv": 0})
    {'supcon': 0.0, 'spk_adv': 0.1, 'lang_adv': 0.0}
    >>> loss_weights("proposed", {"supcon": 1.0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: aux_loss_weights must give a weight for each of supcon, ...
    """
    names = ("supcon", "spk_adv", "lang_adv")
    if set(weights) != set(names):
        raise ValueError(
            f"aux_loss_weights must give a weight for each of {', '.join(names)}, "
            f"got {sorted(weights)}: see hparams/template/common.yaml."
        )
    terms = VARIANT_LOSSES[variant]
    return {term: float(weights[term]) if term in terms else 0.0 for term in names}


def batch_sampler_of(hparams: Mapping[str, Any]) -> str:
    """The run's batches, ``random`` or ``hierarchical`` (batch_sampler resolved).

    Example
    -------
    >>> batch_sampler_of({"batch_sampler": "auto", "variant": "proposed"})
    'hierarchical'
    """
    return resolve_batch_sampler(
        hparams["batch_sampler"], hparams["variant"], VARIANT_BATCH_SAMPLER
    )


def check_hierarchical_batches(hparams: Mapping[str, Any]) -> None:
    """Refuse, before any work, hierarchical batches a run cannot draw.

    Dynamic batches, or fewer training languages than hier_n_lang, give one
    ValueError line (a language without enough emotions is found later, on
    the training set: HierarchicalSamplerError, also one line).
    """
    if batch_sampler_of(hparams) != "hierarchical":
        return
    why = (
        f"the default of variant {hparams['variant']}"
        if hparams["batch_sampler"] == "auto"
        else "set"
    )
    if hparams["dynamic_batching"]:
        raise ValueError(
            f"batch_sampler=hierarchical ({why}) draws batches of hier_n_lang x "
            "hier_n_cls x hier_n_sam utterances, which cannot be dynamic batches: "
            "use --dynamic_batching=False or --batch_sampler=random."
        )
    try:
        langs = training_languages(
            hparams["source_lang"],
            hparams["target_lang"],
            hparams["variant"],
            list(hparams["languages"]),
            hparams["protocol"],
        )
    except ValueError:  # reported with its own message by prepare_data
        return
    if len(langs) < hparams["hier_n_lang"]:
        raise ValueError(
            f"batch_sampler=hierarchical ({why}) needs hier_n_lang="
            f"{hparams['hier_n_lang']} training languages, this run has "
            f"{len(langs)} ({', '.join(langs)}): set --hier_n_lang={len(langs)}, "
            "add languages (--languages=[...]) or use --batch_sampler=random."
        )
