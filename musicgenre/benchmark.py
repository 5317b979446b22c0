"""Measurements behind benchmarks/: recorded and printed, never asserted in tests."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

from musicgenre.audio import load_audio
from musicgenre.data import find_audio_files
from musicgenre.features import FEATURE_COLUMNS, SAMPLE_RATE, extract_features, extract_features_naive


def _per_clip(fn, clips) -> tuple[float, list[dict]]:
    fn(clips[0][: SAMPLE_RATE * 2], SAMPLE_RATE)  # warm-up: numba compilation, filter banks
    start = time.perf_counter()
    rows = [fn(y, SAMPLE_RATE) for y in clips]
    return (time.perf_counter() - start) / len(clips), rows


def feature_benchmark(audio_dir: str, n_clips: int = 8) -> dict:
    from threadpoolctl import threadpool_limits

    from musicgenre.table import extract_table

    files = find_audio_files([audio_dir])[:n_clips]
    clips = [load_audio(f, sr=SAMPLE_RATE).samples for f in files]
    with threadpool_limits(1):
        fast_s, fast = _per_clip(extract_features, clips)
        naive_s, naive = _per_clip(extract_features_naive, clips)
    worst = max(
        abs(a[c] - b[c]) / max(abs(b[c]), 1e-9)
        for a, b in zip(fast, naive, strict=True)
        for c in FEATURE_COLUMNS
        if c not in ("harmony_mean", "perceptr_mean")  # signed means near 0: relative error meaningless
    )
    parallel = {}
    for workers in sorted({1, os.cpu_count() or 1}):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            extract_table(files, Path(tmp) / "t.csv", workers=workers, progress=False)
            parallel[workers] = len(files) / (time.perf_counter() - start)
    return {
        "clips": len(files),
        "clip_seconds": round(sum(len(c) for c in clips) / len(clips) / SAMPLE_RATE, 2),
        "naive_seconds_per_clip_1core": round(naive_s, 3),
        "fast_seconds_per_clip_1core": round(fast_s, 3),
        "speedup_vs_naive": round(naive_s / fast_s, 2),
        "max_relative_difference": float(f"{worst:.2e}"),
        "clips_per_second_by_workers": {str(k): round(v, 2) for k, v in parallel.items()},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def print_table(result: dict) -> None:
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
