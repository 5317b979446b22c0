"""The benchmark scripts run and record what they claim to measure (their numbers are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_inference_benchmark_records_every_requested_model(tmp_path):
    out = tmp_path / "inference.json"
    cmd = [
        sys.executable, "benchmarks/inference.py", "--served", "bundled", "cnn-3s", "--table", "none",
        "--audio", str(tmp_path / "no-such-folder"), "--runs", "1", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert [(r["family"], r["input"]) for r in result["results"]] == [("bundled", "30 s"), ("cnn", "3 s")]
    for r in result["results"]:
        assert r["seconds_per_30s_clip"] > 0 and r["size_bytes"] > 0
        assert r["peak_rss_mb"] >= r["peak_rss_after_load_mb"] >= r["peak_rss_after_imports_mb"] > 0  # each in its own process
    assert result["clip_seconds"] == 30.0 and "bundled" in done.stdout  # the synthetic clip when no audio is given
