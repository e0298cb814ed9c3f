"""t-SNE plot of utterance embeddings coloured by emotion, marked by language.

Reproduces the kind of figure used to show whether emotions cluster across
languages (Figure 2 of Mi, Ma and Toda, 2026): one colour per emotion, one
marker per language, the unseen target language set apart.

The figure is drawn on a ``matplotlib.figure.Figure`` with the Agg canvas, so
no pyplot state or GUI backend is touched in the calling process.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from .labels import ALL_EMOTIONS, LANGUAGES
from .optional import extra, missing_extra_message, missing_modules

logger = logging.getLogger(__name__)

#: What needs matplotlib and scikit-learn here, for the missing-extra message.
_FIGURE = "the t-SNE figure"
#: Fixed colour of each canonical emotion (the same in every figure).
EMOTION_COLORS = {
    "neutral": "#7f7f7f",
    "happy": "#ff7f0e",
    "angry": "#d62728",
    "sad": "#1f77b4",
    "surprise": "#9467bd",
    "fear": "#2ca02c",
    "disgust": "#8c564b",
    "boredom": "#bcbd22",
}
#: Fixed marker of each canonical language.
LANGUAGE_MARKERS = {"en": "o", "zh": "s", "de": "^", "fr": "D", "ur": "P"}

# Used, in sorted order of the names, for emotions/languages outside the vocabularies.
_SPARE_COLORS = ("#17becf", "#e377c2", "#393b79", "#637939", "#843c39", "#7b4173")
_SPARE_MARKERS = ("v", "X", "*", "<", ">", "h", "p", "8")


def _style_for(names: list[str], fixed: dict, spare: Sequence[str]) -> dict:
    """Map each name to its fixed style, or to a spare one (stable order)."""
    styles = {name: fixed[name] for name in names if name in fixed}
    others = sorted(name for name in set(names) if name not in fixed)
    for index, name in enumerate(others):
        styles[name] = spare[index % len(spare)]
    return styles


def _ordered(names: Sequence[str], vocabulary: Sequence[str]) -> list[str]:
    """Unique names: vocabulary order first, then the others sorted."""
    unique = set(names)
    known = [name for name in vocabulary if name in unique]
    return known + sorted(unique - set(vocabulary))


def plot_tsne(
    embeddings: Any,
    emotions: Sequence[str],
    languages: Sequence[str],
    path: str | PathLike,
    title: str | None = None,
    seed: int = 0,
    perplexity: float = 30.0,
    target_language: str | None = None,
) -> Path | None:
    r"""Project embeddings to 2-D with t-SNE and save a scatter plot.

    Points are coloured by emotion (fixed colour per canonical emotion) and
    marked by language (fixed marker per language); one legend lists the
    emotions, another the languages. Points of ``target_language`` are drawn
    larger, on top, with a black edge, and the language is labelled
    ``"<lang> (target)"`` in the legend.

    Arguments
    ---------
    embeddings : numpy.ndarray or torch.Tensor
        Embeddings [N, D], N >= 3.
    emotions : sequence of str
        Emotion of each point (N entries).
    languages : sequence of str
        Language of each point (N entries).
    path : str or path-like
        Output image file (format from the suffix, e.g. ``.png``); parent
        folders are created.
    title : str, optional
        Figure title.
    seed : int
        Random state of t-SNE (same seed and data give the same figure).
    perplexity : float
        t-SNE perplexity (> 0). t-SNE needs it below N: larger values are
        clipped to N - 1, with a logged warning.
    target_language : str, optional
        Language to set apart as the (unseen) target; must occur in
        ``languages``.

    Returns
    -------
    pathlib.Path or None
        The path of the written image; None, with a logged warning naming
        the ``plots`` extra, when matplotlib or scikit-learn is not installed
        (the figure is an illustration: a run goes on without it).

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> emb = rng.normal(size=(12, 8))
    >>> emotions = ["neutral", "happy", "angry", "sad"] * 3
    >>> languages = ["en"] * 6 + ["de"] * 6
    >>> out = plot_tsne(emb, emotions, languages,
    ...                 getfixture("tmp_path") / "tsne.png", target_language="de")
    >>> out.read_bytes()[:4] == b"\x89PNG"
    True
    """
    if hasattr(embeddings, "detach"):  # torch.Tensor
        embeddings = embeddings.detach().cpu().double().numpy()
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2:
        raise ValueError(
            f"plot_tsne: embeddings must have shape [N, D], got {embeddings.shape}."
        )
    n_points = embeddings.shape[0]
    for name, values in (("emotions", emotions), ("languages", languages)):
        if isinstance(values, str):
            raise TypeError(
                f"plot_tsne: {name} must be a sequence with one entry per point, "
                f"got the single string {values!r}."
            )
        if len(values) != n_points:
            raise ValueError(
                f"plot_tsne: got {n_points} embeddings but {len(values)} {name}; "
                "expected one per embedding."
            )
    if n_points < 3:
        raise ValueError(f"plot_tsne: need at least 3 points, got {n_points}.")
    if not np.all(np.isfinite(embeddings)):
        raise ValueError("plot_tsne: embeddings contain NaN or infinite values.")
    if float(np.ptp(embeddings, axis=0).max()) == 0.0:
        # scikit-learn's t-SNE can crash the process on such input.
        raise ValueError(
            "plot_tsne: all embeddings are identical, so there is nothing to "
            "project (an untrained or collapsed model?)."
        )
    if not (math.isfinite(perplexity) and perplexity > 0):
        raise ValueError(f"plot_tsne: perplexity must be > 0, got {perplexity!r}.")
    emotions = [str(e) for e in emotions]
    languages = [str(lang) for lang in languages]
    if target_language is not None and target_language not in languages:
        raise ValueError(
            f"plot_tsne: target_language={target_language!r} does not occur in "
            f"languages (found {sorted(set(languages))})."
        )

    missing = missing_modules("plots")
    if missing:  # an illustration: skipped, not a reason to stop a run
        logger.warning(
            "plot_tsne: no figure written: %s",
            missing_extra_message("plots", _FIGURE, missing[0]),
        )
        return None
    coords = _tsne_2d(embeddings, perplexity, seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _draw(coords, emotions, languages, path, title, target_language)
    return path


def _tsne_2d(embeddings: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """Run scikit-learn's t-SNE with a perplexity valid for the data size.

    t-SNE runs single-threaded: its OpenMP loop gains little on the sizes
    plotted here, and on a CPU already busy with training (or shared with
    other jobs) extra threads made it 10 to 50 times slower (measured on a
    loaded 2-core machine, N = 12 to 200).
    """
    with extra("plots", _FIGURE):
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

    n_points = embeddings.shape[0]
    if perplexity >= n_points:
        clipped = float(n_points - 1)
        logger.warning(
            "plot_tsne: perplexity %s is not below the number of points (%d); "
            "using %s.",
            perplexity,
            n_points,
            clipped,
        )
        perplexity = clipped
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        init="pca" if embeddings.shape[1] >= 2 else "random",
        learning_rate="auto",
        random_state=seed,
    )
    with threadpool_limits(limits=1):
        return tsne.fit_transform(embeddings)


def _draw(
    coords: np.ndarray,
    emotions: list[str],
    languages: list[str],
    path: Path,
    title: str | None,
    target_language: str | None,
) -> None:
    """Draw the scatter plot and its two legends, and save it."""
    with extra("plots", _FIGURE):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

    emotion_order = _ordered(emotions, ALL_EMOTIONS)
    language_order = _ordered(languages, LANGUAGES)
    colors = _style_for(emotion_order, EMOTION_COLORS, _SPARE_COLORS)
    markers = _style_for(language_order, LANGUAGE_MARKERS, _SPARE_MARKERS)
    # Draw the target language last, so it is on top.
    draw_order = [lang for lang in language_order if lang != target_language]
    if target_language is not None:
        draw_order.append(target_language)

    fig = Figure(figsize=(7.5, 5.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    emotion_array = np.asarray(emotions)
    language_array = np.asarray(languages)
    for lang in draw_order:
        is_target = lang == target_language
        for emo in emotion_order:
            keep = (language_array == lang) & (emotion_array == emo)
            if not keep.any():
                continue
            ax.scatter(
                coords[keep, 0],
                coords[keep, 1],
                c=colors[emo],
                marker=markers[lang],
                s=42 if is_target else 22,
                alpha=0.95 if is_target else 0.6,
                edgecolors="black" if is_target else "none",
                linewidths=0.7,
            )

    emotion_handles = [
        Line2D([], [], linestyle="", marker="o", color=colors[emo], label=emo)
        for emo in emotion_order
    ]
    language_handles = [
        Line2D(
            [],
            [],
            linestyle="",
            marker=markers[lang],
            markerfacecolor="#d9d9d9" if lang == target_language else "none",
            markeredgecolor="black" if lang == target_language else "#404040",
            markersize=8 if lang == target_language else 6,
            label=f"{lang} (target)" if lang == target_language else lang,
        )
        for lang in language_order
    ]
    emotion_legend = ax.legend(
        handles=emotion_handles,
        title="Emotion",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )
    ax.add_artist(emotion_legend)
    ax.legend(
        handles=language_handles,
        title="Language",
        loc="lower left",
        bbox_to_anchor=(1.01, 0.0),
        frameon=False,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
