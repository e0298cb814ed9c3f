"""Supervised contrastive loss with language-aware weighting of positive pairs.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

#: Values of ``SupConLoss(weighting=...)``.
WEIGHTINGS = ("anchor", "batch")


def positive_pair_stats(labels: Sequence, languages: Sequence) -> dict[str, int]:
    """Count the anchors of a batch by the languages of their positives.

    Arguments
    ---------
    labels : sequence
        Emotion of each sample.
    languages : sequence
        Language of each sample.

    Returns
    -------
    dict
        ``anchors`` (samples with at least one positive), ``cross_only``
        (anchors whose positives are all of other languages: with
        ``weighting="anchor"`` the cross-lingual weight cancels for them),
        ``mixed`` (both kinds), ``same_only``, and ``cross_pairs`` /
        ``cross_pairs_of_cross_only`` (ordered cross-language positive
        pairs, all and those of ``cross_only`` anchors); plus, per language
        ``lang``, ``anchors:<lang>`` and ``cross_only:<lang>``.

    Example
    -------
    >>> stats = positive_pair_stats(["sad", "sad", "sad", "angry"],
    ...                             ["en", "en", "fr", "fr"])
    >>> stats["anchors"], stats["cross_only"], stats["mixed"], stats["same_only"]
    (3, 1, 2, 0)
    >>> stats["cross_pairs"], stats["cross_pairs_of_cross_only"]
    (4, 2)
    >>> stats["anchors:fr"], stats["cross_only:fr"], stats["cross_only:en"]
    (1, 1, 0)
    """  # noqa: E501
    labels, languages = list(labels), list(languages)
    out = dict.fromkeys(
        (
            "anchors",
            "cross_only",
            "mixed",
            "same_only",
            "cross_pairs",
            "cross_pairs_of_cross_only",
        ),
        0,
    )
    for i, (label, lang) in enumerate(zip(labels, languages)):
        same = sum(
            1
            for p, (lab, lng) in enumerate(zip(labels, languages))
            if p != i and lab == label and lng == lang
        )
        cross = sum(
            1 for lab, lng in zip(labels, languages) if lab == label and lng != lang
        )
        out.setdefault(f"anchors:{lang}", 0)
        out.setdefault(f"cross_only:{lang}", 0)
        if same + cross == 0:
            continue
        out["anchors"] += 1
        out[f"anchors:{lang}"] += 1
        out["cross_pairs"] += cross
        if same == 0:
            out["cross_only"] += 1
            out[f"cross_only:{lang}"] += 1
            out["cross_pairs_of_cross_only"] += cross
        elif cross == 0:
            out["same_only"] += 1
        else:
            out["mixed"] += 1
    return out


class SupConLoss(nn.Module):
    r"""Supervised contrastive loss (Khosla et al., 2020) with language-aware weights.

    The embeddings are L2-normalised internally, giving :math:`z_i`. For an
    anchor :math:`i` with positives :math:`P(i) = \{p \neq i : y_p = y_i\}`
    (same emotion label, any language), the loss is

    .. math::

        L_i = -\frac{T}{T_{base}} \,
              \frac{1}{\sum_{p \in P(i)} w_{ip}}
              \sum_{p \in P(i)} w_{ip}
              \log \frac{\exp(z_i \cdot z_p / T)}
                        {\sum_{a \neq i} \exp(z_i \cdot z_a / T)}

    with :math:`w_{ip}` = ``cross_lingual_weight`` if :math:`p` and :math:`i`
    are in different languages, else 1 (the language-aware weighting of Mi,
    Ma and Toda, 2026). The denominator runs over every other sample of the
    batch, positives and negatives of all languages, unweighted. Two ways of
    normalising the weights (``weighting``):

    - ``"anchor"`` (default; the formula above): the final loss is the mean of
      :math:`L_i` over the anchors whose total positive weight
      :math:`\sum_{p \in P(i)} w_{ip}` is non-zero. The weights only
      re-weight the positives *within* an anchor, so for an anchor whose
      positives are all cross-lingual (e.g. the only French sample of a
      batch) ``cross_lingual_weight`` cancels.
    - ``"batch"``: the weights are normalised over the whole batch,

      .. math::
          L = \frac{\sum_i \sum_{p \in P(i)} v_{ip} \, \ell_{ip}}
                   {\sum_i \sum_{p \in P(i)} v_{ip}}, \qquad
          v_{ip} = \frac{w_{ip}}{|P(i)|}, \qquad
          \ell_{ip} = -\frac{T}{T_{base}}
                      \log \frac{\exp(z_i \cdot z_p / T)}
                                 {\sum_{a \neq i} \exp(z_i \cdot z_a / T)},

      i.e. a weighted mean over anchors of the anchor-normalised
      :math:`L_i`, each anchor weighted by the mean weight of its
      positives. A cross-language pair counts ``cross_lingual_weight`` times
      a same-language pair in every anchor, including one whose positives
      are all cross-lingual; the loss keeps the scale of plain SupCon (a
      weighted mean of :math:`\ell_{ip}`).

    Both equal plain SupCon for ``cross_lingual_weight=1``.

    - ``cross_lingual_weight=1`` (or ``languages=None``) is the plain,
      single-view SupCon loss of Khosla et al. (``contrast_mode="all"``) and
      equals ``pytorch_metric_learning.losses.SupConLoss(temperature=T)``
      times :math:`T / T_{base}`.
    - ``cross_lingual_weight > 1`` pulls same-emotion pairs of different
      languages together more strongly than same-language pairs.
    - ``cross_lingual_weight=0`` keeps same-language positives only.

    Anchors without a positive (the only sample of their class in the batch,
    or with only cross-lingual positives when ``cross_lingual_weight=0``) are
    left out of the mean, so they neither dilute nor inflate the loss; they
    still act as negatives for the other anchors. A batch without any
    positive pair returns a zero that is connected to the graph (its gradient
    is all zeros, never NaN), so ``loss.backward()`` always works.

    The similarities and the log-softmax are computed in float32 with
    autocast disabled, whatever the input dtype, so the loss is safe under
    fp16/bf16 mixed precision; the returned loss is float32.

    Arguments
    ---------
    temperature : float
        Softmax temperature :math:`T` (> 0). Default 0.07 as in Khosla et al.
    base_temperature : float
        Reference temperature :math:`T_{base}` (> 0); the loss is scaled by
        :math:`T / T_{base}` (1 when both are equal).
    cross_lingual_weight : float
        Weight :math:`w \geq 0` of positive pairs of different languages (the
        paper's lambda of the SupCon loss; not the gradient reversal
        coefficient of the speaker adversary, which DANN also calls lambda).
    weighting : str
        ``"anchor"`` (default) or ``"batch"``: how the pair weights are
        normalised (see above).

    Example
    -------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> criterion = SupConLoss(temperature=0.1, cross_lingual_weight=2.0)
    >>> embeddings = torch.randn(6, 16, requires_grad=True)
    >>> emotions = torch.tensor([0, 1, 0, 1, 2, 2])
    >>> languages = torch.tensor([0, 0, 1, 1, 0, 1])
    >>> loss = criterion(embeddings, emotions, languages)
    >>> loss.shape, loss.dtype
    (torch.Size([]), torch.float32)
    >>> loss.backward()
    >>> bool(torch.isfinite(embeddings.grad).all())
    True
    """

    def __init__(
        self,
        temperature: float = 0.07,
        base_temperature: float = 0.07,
        cross_lingual_weight: float = 1.0,
        weighting: str = "anchor",
    ):
        super().__init__()
        if weighting not in WEIGHTINGS:
            raise ValueError(
                f"SupConLoss: weighting must be one of {WEIGHTINGS}, got {weighting!r}."
            )
        self.weighting = weighting
        for name, value in (
            ("temperature", temperature),
            ("base_temperature", base_temperature),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(
                    f"SupConLoss: {name} must be a finite number > 0, got {value!r}."
                )
        if not (math.isfinite(cross_lingual_weight) and cross_lingual_weight >= 0):
            raise ValueError(
                "SupConLoss: cross_lingual_weight must be a finite number >= 0 "
                f"(1.0 gives plain SupCon), got {cross_lingual_weight!r}."
            )
        self.temperature = float(temperature)
        self.base_temperature = float(base_temperature)
        self.cross_lingual_weight = float(cross_lingual_weight)

    def extra_repr(self) -> str:
        """Show the hyperparameters when the module is printed."""
        return (
            f"temperature={self.temperature}, "
            f"base_temperature={self.base_temperature}, "
            f"cross_lingual_weight={self.cross_lingual_weight}, "
            f"weighting={self.weighting!r}"
        )

    def forward(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        languages: torch.Tensor | Sequence | None = None,
    ) -> torch.Tensor:
        """Compute the loss for one batch.

        Arguments
        ---------
        embeddings : torch.Tensor
            Float tensor [batch, dim]; need not be normalised.
        labels : torch.Tensor
            Integer class indices [batch] (or [batch, 1], as produced by a
            SpeechBrain ``PaddedBatch`` of encoded labels).
        languages : torch.Tensor or sequence, optional
            Language of each sample: an integer tensor [batch] (or
            [batch, 1]) of language indices, or a sequence of ``batch``
            hashable language names (e.g. ``["en", "de", ...]``). None means
            all samples share one language (the weight then has no effect).

        Returns
        -------
        torch.Tensor
            The scalar loss (float32).
        """
        batch_size = self._check_embeddings(embeddings)
        labels = self._as_index_vector(labels, "labels", batch_size, embeddings)
        same_language = None
        if languages is not None:
            lang_idx = self._as_index_vector(
                languages, "languages", batch_size, embeddings
            )
            same_language = lang_idx.unsqueeze(0) == lang_idx.unsqueeze(1)

        self_mask = torch.eye(batch_size, dtype=torch.bool, device=embeddings.device)
        positive_mask = (labels.unsqueeze(0) == labels.unsqueeze(1)) & ~self_mask
        pos_weights = positive_mask.float()
        if same_language is not None and self.cross_lingual_weight != 1.0:
            pos_weights = pos_weights * torch.where(
                same_language,
                torch.ones_like(pos_weights),
                torch.full_like(pos_weights, self.cross_lingual_weight),
            )
        if self.weighting == "batch":
            # v_ip = w_ip / |P(i)|: the anchor's mean pair weight survives.
            n_positives = positive_mask.sum(dim=1, keepdim=True).clamp(min=1)
            pos_weights = pos_weights / n_positives
        weight_sums = pos_weights.sum(dim=1)
        has_positive = weight_sums > 0

        if not bool(has_positive.any()):
            # Sum over an empty slice: a 0 connected to the graph, so that
            # backward() works and gives a zero gradient (never NaN).
            return embeddings.float()[:0].sum()

        device_type = embeddings.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            z = F.normalize(embeddings.float(), p=2.0, dim=1)
            logits = (z @ z.T) / self.temperature
            # Remove self-similarity from the softmax, then subtract the row
            # maximum (over a != i) for numerical stability.
            logits = logits.masked_fill(self_mask, float("-inf"))
            row_max = logits.max(dim=1, keepdim=True).values.detach()
            logits = logits - row_max
            log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
            # The diagonal holds -inf: zero it (masked_fill also blocks its
            # gradient) before weighting, so 0 * -inf never produces NaN.
            log_prob = log_prob.masked_fill(~positive_mask, 0.0)

            weighted = (pos_weights * log_prob).sum(dim=1)
            scale = self.temperature / self.base_temperature
            if self.weighting == "batch":
                return -scale * weighted.sum() / weight_sums.sum()
            mean_log_prob_pos = weighted[has_positive] / weight_sums[has_positive]
            return -scale * mean_log_prob_pos.mean()

    @staticmethod
    def _check_embeddings(embeddings: torch.Tensor) -> int:
        """Validate the embeddings and return the batch size."""
        if not isinstance(embeddings, torch.Tensor):
            raise TypeError(
                "SupConLoss: embeddings must be a torch.Tensor [batch, dim], "
                f"got {type(embeddings).__name__}."
            )
        if embeddings.dim() != 2:
            hint = ""
            if embeddings.dim() == 3 and embeddings.shape[1] == 1:
                hint = " Use embeddings.squeeze(1) for [batch, 1, dim] outputs."
            raise ValueError(
                "SupConLoss: expected embeddings of shape [batch, dim], got "
                f"shape {tuple(embeddings.shape)}.{hint}"
            )
        if not embeddings.is_floating_point():
            raise TypeError(
                "SupConLoss: embeddings must be a floating point tensor, got "
                f"{embeddings.dtype}."
            )
        if embeddings.shape[0] == 0:
            raise ValueError("SupConLoss: got an empty batch (0 embeddings).")
        return embeddings.shape[0]

    @staticmethod
    def _as_index_vector(
        values, name: str, batch_size: int, embeddings: torch.Tensor
    ) -> torch.Tensor:
        """Convert labels/languages to an integer vector [batch] on the device."""
        if not isinstance(values, torch.Tensor):
            if isinstance(values, (str, bytes)):
                raise TypeError(
                    f"SupConLoss: {name} must be a tensor or a sequence with one "
                    f"entry per sample, got the single string {values!r}."
                )
            values = list(values)
            lookup: dict = {}
            values = torch.tensor(
                [lookup.setdefault(value, len(lookup)) for value in values],
                dtype=torch.long,
            )
        if values.dim() == 2 and values.shape[1] == 1:
            values = values.squeeze(1)
        if values.dim() != 1 or values.shape[0] != batch_size:
            raise ValueError(
                f"SupConLoss: expected {name} of shape [{batch_size}] (one per "
                f"embedding), got shape {tuple(values.shape)}."
            )
        if values.is_floating_point() or values.is_complex():
            raise TypeError(
                f"SupConLoss: {name} must hold integer indices, got {values.dtype}. "
                "Encode string labels first, e.g. with "
                "zsser_modules.build_label_encoder."
            )
        return values.to(embeddings.device)
