"""Whisper encoder speed: raw forwards (30 s padded vs cut) and the cache fill.

Not a test (no timing asserts): run by hand from the repository root, on the
same clips for every path::

    python tests/benchmarks/bench_whisper.py /path/to/whisper-base MANIFEST.csv \
        [--clips 40] [--threads 1] [--json OUT]

Paths timed, one clip at a time unless said otherwise:

- ``hf_padded``: Hugging Face as documented: ``WhisperFeatureExtractor`` (pads
  to 30 s) then ``WhisperEncoder`` with ``output_hidden_states``;
- ``ours_full``: ``WhisperLayerPooling(context="full")`` (the same model);
- ``ours_cut``: ``WhisperLayerPooling()`` (clip length, the default);
- ``cache_fill_b1`` / ``cache_fill_b8``: ``FeatureCache.fill`` with the cut
  encoder, batch 1 and 8 (audio reading and entry writing included).

Also prints how far the cut path's pooled features are from the 30 s
model's (cosine and relative L2 difference per layer, mean over the clips).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from zsser_modules.audio import read_audio  # noqa: E402
from zsser_modules.encoders import WhisperLayerPooling  # noqa: E402
from zsser_modules.feature_cache import FeatureCache, encoder_cache_key  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", help="Whisper hub id or local folder")
    parser.add_argument("manifest", help="CSV with ID and wav columns")
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from transformers import WhisperFeatureExtractor

    rows = pd.read_csv(args.manifest).sample(args.clips, random_state=0)
    items = list(zip(rows["ID"], rows["wav"]))
    wavs = [read_audio(path, 16000) for _, path in items]
    seconds = sum(len(w) for w in wavs) / 16000
    tmp = tempfile.mkdtemp()
    cut = WhisperLayerPooling(args.source, tmp)
    full = WhisperLayerPooling(args.source, tmp, context="full")
    extractor = WhisperFeatureExtractor.from_pretrained(args.source)
    out = {"clips": len(wavs), "mean_clip_s": round(seconds / len(wavs), 3)}
    out["threads"] = args.threads

    def timed(name, fn):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        out[name] = {
            "utt_per_s": round(len(wavs) / elapsed, 2),
            "s_per_utt": round(elapsed / len(wavs), 4),
        }
        print(
            f"{name:14s} {out[name]['utt_per_s']:8.2f} utt/s "
            f"({out[name]['s_per_utt']:.4f} s per clip)",
            flush=True,
        )
        return result

    def hf_padded():
        for wav in wavs:
            feats = extractor(wav.numpy(), sampling_rate=16000, return_tensors="pt")
            cut.encoder(feats.input_features, output_hidden_states=True)

    with torch.no_grad():
        timed("hf_padded", hf_padded)
        pooled_full = timed("ours_full", lambda: [full(w[None])[0] for w in wavs])
        pooled_cut = timed("ours_cut", lambda: [cut(w[None])[0] for w in wavs])
    for batch in (1, 8):
        cache = FeatureCache(Path(tmp) / f"cache{batch}", encoder_cache_key(cut))
        timed(
            f"cache_fill_b{batch}",
            lambda c=cache, b=batch: c.fill(
                cut, items, batch_size=b, progressbar=False
            ),
        )
    a, b = torch.stack(pooled_cut), torch.stack(pooled_full)
    out["cut_vs_full_cosine"] = [
        round(v, 4) for v in F.cosine_similarity(a, b, dim=-1).mean(0).tolist()
    ]
    rel = (a - b).norm(dim=-1) / b.norm(dim=-1)
    out["cut_vs_full_rel_diff"] = [round(v, 4) for v in rel.mean(0).tolist()]
    print("cut vs 30 s model, per layer: cosine", out["cut_vs_full_cosine"])
    print("cut vs 30 s model, per layer: relative diff", out["cut_vs_full_rel_diff"])
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
