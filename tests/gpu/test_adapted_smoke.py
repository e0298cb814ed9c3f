"""Wrappers of tests/gpu/adapted_smoke.py (issue 21: an adapted wav2vec 2.0
Base at the paper's batch; steps/s and peak memory of frozen + cache,
adapters, adapters from a cached front-end, full fine-tuning; export).

``test_adapted_smoke_on_cuda`` is skipped without CUDA (CI has no GPU).
``test_tiny_adapted_smoke_on_cpu`` runs the same path with a tiny model; it
takes about a minute on a shared 2-core machine, so it runs only when
``ZSSER_SMOKE=1`` is set.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("adapted_smoke.py")
CONFIGS = (
    "frozen+cache",
    "adapted",
    "adapted+frontend",
    "adapted padded",
    "full fine-tuning",
)


def run(tmp_path, *args):
    figures_file = tmp_path / "adapted_smoke.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", str(figures_file), *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    line = done.stdout.strip().splitlines()[-1]
    return done.returncode, line, json.loads(figures_file.read_text())


def check(code, line, figures, cuda):
    assert code == 0 and figures["ok"], line
    assert line.startswith("adapted_smoke OK")
    assert set(figures["configs"]) == set(CONFIGS)
    for entry in figures["configs"].values():
        assert entry["steps_per_s"] > 0
        assert ("peak_gb" in entry) == cuda
    assert figures["exactness"]["adapted+frontend"] < 1e-4  # exact
    assert figures["exactness"]["adapted padded"] > 1e-2  # group norm: not exact
    assert figures["export_max_diff"] < 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_adapted_smoke_on_cuda(tmp_path):
    code, line, figures = run(tmp_path, "--device", "cuda", "--workdir", str(tmp_path))
    check(code, line, figures, cuda=True)
    assert figures["batch"] == 36


@pytest.mark.skipif(
    os.environ.get("ZSSER_SMOKE") != "1", reason="about 1 min: set ZSSER_SMOKE=1"
)
def test_tiny_adapted_smoke_on_cpu(tmp_path):
    code, line, figures = run(
        tmp_path, "--tiny", "--device", "cpu", "--workdir", str(tmp_path)
    )
    check(code, line, figures, cuda=False)
