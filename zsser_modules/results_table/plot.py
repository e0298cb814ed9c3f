"""The bar chart of the variants per pair.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from zsser_modules.optional import extra
from zsser_modules.results_table.markdown import pair_label
from zsser_modules.results_table.runs import METRICS, PathLike, run_notes
from zsser_modules.results_table.summary import is_oracle, summarize

#: What needs matplotlib here, for the missing-extra message.
_FIGURE = "the variant figure (variants.png)"
#: Fixed bar colour of each variant in :func:`plot_variants`.
VARIANT_COLORS = {
    "baseline1": "#bdbdbd",
    "baseline2": "#737373",
    "no_supcon": "#9ecae1",
    "no_spkadv": "#6baed6",
    "proposed": "#d62728",
    "upper_bound": "#2ca02c",
}


_SPARE_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")


def _color_of(variants: Sequence[str]) -> dict[str, str]:
    spare = iter(_SPARE_COLORS * (1 + len(variants) // len(_SPARE_COLORS)))
    return {
        v: VARIANT_COLORS[v] if v in VARIANT_COLORS else next(spare) for v in variants
    }


def plot_variants(
    df: pd.DataFrame,
    path: PathLike,
    seeds: Iterable[int] | None = None,
    pairs: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
) -> Path:
    r"""Grouped bar chart of the variants: UAR (top) and macro-F1 (bottom).

    One group of bars per table column (each pair, then ``Avg.``), one bar
    per variant at the mean over seeds, with the sample std over seeds as
    error bar (none with one seed; no bar for a cell without runs); the
    oracle ``upper_bound`` is hatched. Drawn on
    a ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state).

    Arguments
    ---------
    df : pandas.DataFrame
        Run table (:func:`collect_results`).
    path : str or path-like
        Output image (format from the suffix, e.g. ``.png``); parent folders
        are created.
    seeds : iterable of int, optional
        Expected seeds (see :func:`summarize`).
    pairs : sequence of str, optional
        Expected pairs, as columns in this order (see :func:`summarize`).
    variants : sequence of str, optional
        Expected variants (see :func:`summarize`).

    Returns
    -------
    pathlib.Path
        ``path``.

    Example
    -------
    >>> df = pd.DataFrame({"pair": ["en_de", "en_de", "zh_fr", "zh_fr"],
    ...     "variant": ["baseline1", "proposed"] * 2, "seed": 1,
    ...     "uar": [0.4, 0.6, 0.3, 0.5], "macro_f1": [0.4, 0.5, 0.3, 0.4]})
    >>> out = plot_variants(df, getfixture("tmp_path") / "variants.png")
    >>> out.read_bytes()[:4] == b"\x89PNG"
    True
    """
    with extra("plots", _FIGURE):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = summarize(df, seeds=seeds, pairs=pairs, variants=variants)
    columns = list(dict.fromkeys(summary["pair"]))
    names = list(dict.fromkeys(summary["variant"]))
    colors = _color_of(names)
    cells = summary.set_index(["variant", "pair"])

    fig = Figure(figsize=(max(6.0, 1.1 * len(columns) + 2.5), 6.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True)
    x = np.arange(len(columns))
    width = 0.8 / max(1, len(names))
    for ax, metric in zip(axes, METRICS):
        for i, variant in enumerate(names):
            means = np.array(
                [cells.loc[(variant, c), f"{metric}_mean"] for c in columns], float
            )
            stds = np.array(
                [cells.loc[(variant, c), f"{metric}_std"] for c in columns], float
            )
            ax.bar(
                x + (i - (len(names) - 1) / 2) * width,
                100 * np.nan_to_num(means),
                width,
                yerr=100 * np.nan_to_num(stds),
                capsize=2,
                color=colors[variant],
                hatch="//" if is_oracle(variant) else None,
                edgecolor="black",
                linewidth=0.4,
                label=variant,
            )
        if len(columns) > 1:
            ax.axvline(len(columns) - 1.5, color="#808080", linestyle="--", lw=0.8)
        ax.set_ylabel(f"{METRICS[metric]} (%)")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    if not len(df):
        axes[0].text(
            0.5, 0.5, "no results yet", ha="center", transform=axes[0].transAxes
        )
    axes[-1].set_xticks(x, [pair_label(c) for c in columns])
    title = "Variants per language pair: mean ± std over seeds"
    notes = run_notes(df)
    axes[0].set_title("\n".join([title, *notes]))
    if names:
        axes[0].legend(
            loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8
        )
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    return path
