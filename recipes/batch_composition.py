#!/usr/bin/env python3
r"""What training batches hold: natural, language-balanced and hierarchical batches.

For a setting's ``train.csv``, draws the training batches of a few epochs
exactly as the recipe does (``zsser_modules.sampling``: random batches of
``--batch-size`` with natural or balanced sampling, and the paper's
hierarchical batches, 3 languages x 4 emotions x 3 utterances, when the
training set allows them) and reports, per sampling mode:

- the share of each language among the drawn utterances and the fraction of
  batches that hold at least one utterance of it;
- for SupCon (``zsser_modules.supcon.positive_pair_stats``): among the
  anchors with a positive, the fraction whose positives are all of other
  languages (with ``supcon_weighting=anchor`` the cross-lingual weight
  cancels for them), and the fraction of the cross-language positive pairs
  that belong to such anchors.

No audio is read. ``--real-counts en,zh,fr,ur`` uses instead a counts-only
manifest with the real corpora's per-speaker counts (ESD, CaFE, URDU, EmoDB
as in ``zsser_modules.data_prep.demo_profiles``), 80 % of each language's
speakers, as a training set of the real setting. Examples (from the
repository root, the first after one demo run)::

    python recipes/batch_composition.py \
        results/demo/data/settings/en_de/proposed/seed1234/train.csv --epochs 5
    python recipes/batch_composition.py --real-counts en,zh,fr,ur --epochs 2

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from speechbrain.dataio.dataloader import make_dataloader
from speechbrain.dataio.dataset import DynamicItemDataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zsser_modules.hierarchical_sampler import HierarchicalSamplerError  # noqa: E402
from zsser_modules.sampling import LANGUAGE_SAMPLING, train_loader_kwargs  # noqa: E402
from zsser_modules.supcon import positive_pair_stats  # noqa: E402


def real_counts_manifest(languages: Sequence[str], path: str | Path) -> Path:
    """Write a counts-only training manifest shaped like the real corpora.

    Arguments
    ---------
    languages : sequence of str
        Training languages.
    path : path-like
        The CSV to write (columns ``ID``, ``lang``, ``emo``, ``duration``).

    Returns
    -------
    Path
        ``path``.

    Example
    -------
    >>> import tempfile, pandas
    >>> csv = real_counts_manifest(["fr", "ur"], tempfile.mktemp(suffix=".csv"))
    >>> pandas.read_csv(csv)["lang"].value_counts().to_dict()
    {'fr': 420, 'ur': 308}
    """
    import csv

    from zsser_modules.data_prep.demo_profiles import (
        CAFE_COUNTS,
        EMODB_COUNTS,
        ESD_PER_CLASS,
        URDU_COUNTS,
    )
    from zsser_modules.labels import EMOTIONS

    esd = [{emo: ESD_PER_CLASS for emo in EMOTIONS}] * 10
    speakers = {
        "en": esd,
        "zh": esd,
        "de": list(EMODB_COUNTS.values()),
        "fr": list(CAFE_COUNTS.values()),
        "ur": list(URDU_COUNTS.values()),
    }
    rows = []
    for lang in languages:
        kept = speakers[lang][: round(0.8 * len(speakers[lang]))]
        for s, counts in enumerate(kept):
            for emo, n in counts.items():
                rows += [
                    {
                        "ID": f"{lang}{s}_{emo}_{k}",
                        "lang": lang,
                        "emo": emo,
                        "duration": 1,
                    }
                    for k in range(n)
                ]
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=["ID", "lang", "emo", "duration"])
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def batch_composition(
    train_csv: str | Path, batch_size: int = 32, epochs: int = 5, seed: int = 1
) -> dict[str, dict]:
    """Language shares and SupCon anchor statistics of each sampling mode.

    Arguments
    ---------
    train_csv : path-like
        A setting's training manifest (columns ``ID``, ``lang``, ``emo``).
    batch_size : int
        Utterances per batch.
    epochs : int
        Epochs drawn (1 .. epochs, as ``set_epoch`` gives them).
    seed : int
        The run's seed.

    Returns
    -------
    dict
        ``{mode: {"share": {lang: float}, "in_batches": {lang: float},
        "cross_only_anchors": float, "cross_only_by_language": {lang:
        float}, "cross_pairs_of_cross_only": float, "batches": int}}``.
    """
    dataset = DynamicItemDataset.from_csv(str(train_csv))
    dataset.set_output_keys(["id", "lang", "emo"])
    results = {}
    for mode in (*LANGUAGE_SAMPLING, "hierarchical"):
        try:
            options = train_loader_kwargs(
                dataset,
                "natural" if mode == "hierarchical" else mode,
                seed,
                {"batch_size": batch_size, "shuffle": True},
                batch_sampler="hierarchical" if mode == "hierarchical" else "random",
            )
        except HierarchicalSamplerError:  # e.g. fewer than 3 training languages
            continue
        sampler = options.get("sampler") or options["batch_sampler"]
        loader = make_dataloader(dataset, **options)
        share, present, stats = Counter(), Counter(), Counter()
        n_batches = 0
        for epoch in range(1, epochs + 1):
            sampler.set_epoch(epoch)
            for batch in loader:
                n_batches += 1
                share.update(batch.lang)
                present.update(set(batch.lang))
                stats.update(positive_pair_stats(batch.emo, batch.lang))
        total = sum(share.values())
        langs = sorted(share)
        results[mode] = {
            "share": {lang: share[lang] / total for lang in langs},
            "in_batches": {lang: present[lang] / n_batches for lang in langs},
            "cross_only_anchors": stats["cross_only"] / max(1, stats["anchors"]),
            "cross_only_by_language": {
                lang: stats[f"cross_only:{lang}"] / max(1, stats[f"anchors:{lang}"])
                for lang in langs
            },
            "cross_pairs_of_cross_only": stats["cross_pairs_of_cross_only"]
            / max(1, stats["cross_pairs"]),
            "batches": n_batches,
        }
    return results


def format_composition(results: dict[str, dict]) -> str:
    """A small text table of :func:`batch_composition`.

    Example
    -------
    >>> row = {"share": {"en": 0.9, "fr": 0.1}, "in_batches": {"en": 1.0, "fr": 0.8},
    ...        "cross_only_anchors": 0.05, "cross_pairs_of_cross_only": 0.2,
    ...        "cross_only_by_language": {"en": 0.01, "fr": 0.5}, "batches": 10}
    >>> print(format_composition({"natural": row}))
    mode          batches  share en/fr  in batches en/fr  cross-only anchors: all  en/fr  their share of cross pairs
    natural            10    90.0/10.0       100.0/80.0                      5.0  1.0/50.0                      20.0 %
    """  # noqa: E501
    langs = "/".join(next(iter(results.values()))["share"])

    def percents(values):
        return "/".join(f"{100 * v:.1f}" for v in values)

    lines = [
        f"{'mode':<13}{'batches':>8}  share {langs}  in batches {langs}  "
        f"cross-only anchors: all  {langs}  their share of cross pairs"
    ]
    for mode, row in results.items():
        cells = [
            f"{mode:<13}{row['batches']:>8}",
            f"{percents(row['share'].values()):>{len(langs) + 6}}",
            f"{percents(row['in_batches'].values()):>{len(langs) + 11}}",
            f"{100 * row['cross_only_anchors']:>23.1f}",
            f"{percents(row['cross_only_by_language'].values()):>{len(langs)}}",
            f"{100 * row['cross_pairs_of_cross_only']:>24.1f} %",
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python recipes/batch_composition.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("train_csv", nargs="?", help="a setting's train.csv")
    parser.add_argument(
        "--real-counts",
        metavar="LANGS",
        help="instead of train_csv: the real corpora's counts for these "
        "comma-separated training languages (e.g. en,zh,fr,ur)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.real_counts:
        import tempfile

        args.train_csv = real_counts_manifest(
            args.real_counts.split(","), Path(tempfile.mkdtemp()) / "train.csv"
        )
    if args.train_csv is None:
        parser.exit(2, "error: give a setting's train.csv or --real-counts LANGS\n")
    if not Path(args.train_csv).is_file():
        parser.exit(
            2, f"error: {args.train_csv} is not a file (a setting's train.csv)\n"
        )
    print(
        format_composition(
            batch_composition(args.train_csv, args.batch_size, args.epochs, args.seed)
        )
    )


if __name__ == "__main__":
    main()
