"""Smoke test of tests/benchmarks/run_benchmarks.py --quick (no timing asserts)."""

import json
import math
import subprocess
import sys

import pytest
from recipe_utils import REPO_ROOT

pytestmark = pytest.mark.slow

METRICS = (
    "cache_speedup",
    "method_overhead",
    "prep_files_per_s",
    "inference_rtf",
    "peak_rss_gb",
)


def test_quick_benchmark_writes_every_figure(tmp_path):
    output = tmp_path / "speed.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tests" / "benchmarks" / "run_benchmarks.py"),
            "--quick",
            f"--json={output}",
            f"--workdir={tmp_path / 'work'}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(output.read_text())
    for metric in METRICS:
        value = figures[metric]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, metric
        assert metric in done.stdout  # the printed table
    assert figures["quick"] is True
