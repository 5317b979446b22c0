"""The benchmark scripts run and record what they claim to measure (their numbers are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, write_audio

from musicgenre.models.musicnn import backbone_path


@pytest.fixture(scope="module")
def inference_run(tmp_path_factory):
    """benchmarks/inference.py, started by the scale benchmark's test (mostly waiting for Ray, one core idle) and judged
    by its own: (the process, its JSON). No test asserts a benchmark's timings, so running the two at once changes no
    result; it saves ~10 s of the suite."""
    folder = tmp_path_factory.mktemp("inference")
    out = folder / "inference.json"
    cmd = [
        sys.executable, "benchmarks/inference.py", "--served", "musicnn", "bundled", "cnn-3s", "musicnn-backbone",
        "--table", "none", "--audio", str(folder / "no-such-folder"), "--runs", "1", "--out", str(out),
    ]  # fmt: skip
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    yield process, out
    if process.poll() is None:  # only if its test did not run (e.g. deselected)
        process.kill()
    process.communicate()


@pytest.mark.slow
def test_scale_benchmark_times_the_pool_and_ray_on_the_same_tables(tmp_path, inference_run):
    """A small run of benchmarks/scale.py: every variant wrote the local pool's table, byte for byte. (The inference
    benchmark runs meanwhile: ``inference_run``.)"""
    pytest.importorskip("ray", reason="needs the scale extra")
    for i in range(4):
        write_audio(tmp_path / f"rock.{i:05d}.wav", seconds=6.0, seed=i)
    out = tmp_path / "scale.json"
    cmd = [sys.executable, "benchmarks/scale.py", "--audio_dir", str(tmp_path), "--n_clips", "6", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["clips"] == 6 and result["distinct_clips"] == 4 and result["tables_identical"]  # 2 under a 2nd name
    assert len(result["seconds"]) == 5 and all(v > 0 for v in result["seconds"].values())
    ratio = result["seconds"]["local pool, 2 workers"] / result["seconds"]["Ray cluster, 2 workers"]
    assert result["ray_2_workers_vs_local_pool"] == pytest.approx(ratio, abs=2e-3)  # rounded to 3 decimals
    assert result["target_met"] == (result["ray_2_workers_vs_local_pool"] >= 0.85)
    assert len(result["embed"]["seconds"]) == 2 and all(v > 0 for v in result["embed"]["seconds"].values())
    assert result["embed"]["largest_difference_relative_to_largest_value"] <= 1e-6


@pytest.mark.slow
def test_inference_benchmark_records_every_requested_model(inference_run):
    process, out = inference_run
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-2000:]
    result = json.loads(out.read_text())
    families = [(r["family"], r["input"]) for r in result["results"]]
    assert families == [("musicnn-probe", "30 s"), ("bundled", "30 s"), ("cnn", "3 s"), *[("musicnn-backbone", "30 s")] * 3]
    *served, port, plain, factored = result["results"]  # before and after the speed work, the same function
    assert port["largest_relative_difference_from_port"] == 0 and plain["size_bytes"] > factored["size_bytes"]
    assert max(r["largest_relative_difference_from_port"] for r in (plain, factored)) < 1e-4
    backbone = (backbone_path() / "model.onnx").stat().st_size
    assert result["results"][0]["size_bytes"] > backbone  # the probe's size includes its backbone
    for r in served:
        assert r["seconds_per_30s_clip"] > 0 and r["size_bytes"] > 0
        assert r["peak_rss_mb"] >= r["peak_rss_after_load_mb"] >= r["peak_rss_after_imports_mb"] > 0  # each in its own process
    assert result["clip_seconds"] == 30.0 and "bundled" in stdout  # the synthetic clip when no audio is given


@pytest.mark.slow
@pytest.mark.librosa  # the naive extractor
def test_feature_benchmark_records_speedups(tmp_path):
    for i in range(3):
        write_audio(tmp_path / f"blues.{i:05d}.wav", seconds=6.0, seed=i)
    out = tmp_path / "features.json"
    cmd = [sys.executable, "benchmarks/features.py", "--audio_dir", str(tmp_path), "--n_clips", "2", "--n_parallel_clips", "3"]
    done = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["clips"] == 2 and result["table_clips"] == 3
    assert result["speedup_vs_naive"] == pytest.approx(
        result["naive_seconds_per_clip_1core"] / result["fast_seconds_per_clip_1core"], rel=0.02
    )
    assert result["max_relative_difference"] < 1e-4  # the fast extractor computes the same values
    assert "1" in result["clips_per_second_by_workers"] and result["speedup_all_cores_vs_one"] > 0


@pytest.mark.slow
def test_load_benchmark_checks_every_answer(tmp_path):
    """A small run of benchmarks/load.py: its own app, cold start, one burst judged request by request."""
    out = tmp_path / "load.json"
    cmd = [sys.executable, "benchmarks/load.py", "--audio", str(tmp_path / "none"), "--bursts", "1"]
    done = subprocess.run(
        [*cmd, "--clients", "2", "--per_client", "3", "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["cold_start_seconds"] >= result["page_seconds"] > 0
    (burst,) = result["bursts"]
    assert burst["requests"] == 6 and burst["problems"] == [] and burst["server_alive"]
    assert burst["refused_as_expected"] == 3  # clients start at files 0 and 3 of clip, bad, clip, bad, ...
    assert burst["latency_p95_seconds"] >= burst["latency_p50_seconds"] > 0 and burst["server_rss_mb"] > 0
