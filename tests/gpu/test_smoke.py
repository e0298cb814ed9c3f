"""Wrappers of tests/gpu/smoke.py (the recipe on CUDA, bf16, XLS-R-300m-sized).

``test_smoke_on_cuda`` runs the full smoke test and is skipped without CUDA
(CI has no GPU). ``test_tiny_smoke_on_cpu`` runs the whole path with a tiny
model on the CPU; it takes about 1.5 minutes on a shared 2-core machine, so
it runs only when ``ZSSER_SMOKE=1`` is set.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("smoke.py")


def run_smoke(tmp_path, *args):
    figures_file = tmp_path / "smoke.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", str(figures_file), *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    line = done.stdout.strip().splitlines()[-1]
    figures = json.loads(figures_file.read_text())
    return done.returncode, line, figures


def check(code, line, figures):
    assert code == 0 and figures["ok"], line
    assert line.startswith("smoke OK") and "FAIL" not in line
    assert figures["fill_utt_per_s"] > 0 and figures["raw_utt_per_s"] > 0
    assert figures["resume_epochs_retrained"] == 0
    assert figures["resume_same_results"] is True
    assert figures["infer_labelled"] == figures["infer_files"] > 0
    assert figures["export_precision"] == "bf16" and figures["export_equal"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_smoke_on_cuda(tmp_path):
    check(*run_smoke(tmp_path, "--device", "cuda:0", "--workdir", str(tmp_path)))


@pytest.mark.skipif(
    os.environ.get("ZSSER_SMOKE") != "1", reason="about 1.5 min: set ZSSER_SMOKE=1"
)
def test_tiny_smoke_on_cpu(tmp_path):
    code, line, figures = run_smoke(
        tmp_path, "--tiny", "--device", "cpu", "--workdir", str(tmp_path)
    )
    check(code, line, figures)
    assert figures["utterances"] == 60 and figures["train_epochs"] == 1


def test_a_failed_stage_is_reported_in_the_line():
    sys.path.insert(0, str(SCRIPT.parent))
    from smoke import summary_line

    figures = {
        "ok": False,
        "device": "cpu",
        "torch": "2",
        "encoder": "tiny",
        "params_M": 0.1,
        "utterances": 60,
        "mean_utt_s": 2.5,
        "failed": {"fill": "RuntimeError: CUDA out of memory", "resume": "skipped"},
        "train_s": 1.0,
        "train_epochs": 1,
        "test_uar": 0.5,
        "infer_labelled": 1,
        "infer_files": 1,
        "infer_s": 1.0,
        "export_precision": "bf16",
        "total_s": 3.0,
    }
    line = summary_line(figures)
    assert "\n" not in line and line.startswith("smoke FAILED")
    assert "fill=FAIL(RuntimeError: CUDA out of memory)" in line
    assert "train=1.0 s" in line and "resume=FAIL(skipped)" in line
