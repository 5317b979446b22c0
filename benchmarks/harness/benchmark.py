"""Measurements behind benchmarks/: recorded and printed, never asserted in tests."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

from musicgenre.audio.io import load_audio
from musicgenre.data.gtzan import find_audio_files
from musicgenre.features.handcrafted import FEATURE_COLUMNS, SAMPLE_RATE, extract_features, extract_features_naive


def _per_clip(fn, clips) -> tuple[float, list[dict]]:
    fn(clips[0][: SAMPLE_RATE * 2], SAMPLE_RATE)  # warm-up: numba compilation, filter banks
    start = time.perf_counter()
    rows = [fn(y, SAMPLE_RATE) for y in clips]
    return (time.perf_counter() - start) / len(clips), rows


def feature_benchmark(audio_dir: str, n_clips: int = 8, n_parallel_clips: int = 24) -> dict:
    """Per-clip time of both extractors on ``n_clips``; table throughput by worker count on ``n_parallel_clips``.

    Everything runs with one BLAS thread per process, so "1 worker" is one core and the
    workers' ratio is what more cores give (process start-up included, as a user meets it).
    """
    from threadpoolctl import threadpool_limits

    from musicgenre.features.table import extract_table

    every = find_audio_files([audio_dir])
    files = every[:n_clips]
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
    table_files = every[:n_parallel_clips]
    for workers in sorted({1, os.cpu_count() or 1}):
        with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
            start = time.perf_counter()
            extract_table(table_files, Path(tmp) / "t.csv", workers=workers, progress=False)
            parallel[workers] = len(table_files) / (time.perf_counter() - start)
    return {
        "clips": len(files),
        "clip_seconds": round(sum(len(c) for c in clips) / len(clips) / SAMPLE_RATE, 2),
        "naive_seconds_per_clip_1core": round(naive_s, 3),
        "fast_seconds_per_clip_1core": round(fast_s, 3),
        "speedup_vs_naive": round(naive_s / fast_s, 2),
        "max_relative_difference": float(f"{worst:.2e}"),
        "table_clips": len(table_files),
        "clips_per_second_by_workers": {str(k): round(v, 2) for k, v in parallel.items()},
        "speedup_all_cores_vs_one": round(parallel[max(parallel)] / parallel[1], 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """This machine's speed now: NumPy float32 matrix product, GFLOP/s on every core (best of ``repeats``).

    Recorded beside timings because the same 2-core machine type has measured 67 and 155 GFLOP/s
    on different days: a time means little without it.
    """
    import numpy as np

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return round(2 * n**3 / best / 1e9, 1)


def print_table(result: dict) -> None:
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


def _best_of(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up (allocations, kernels, sessions)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def distilhubert_sized_model():
    """DistilHuBERT's architecture (2 transformer layers on HuBERT-base's conv encoder; 23.7 M parameters), random weights."""
    import torch
    from transformers import HubertConfig, HubertForSequenceClassification

    torch.manual_seed(0)
    config = HubertConfig(num_hidden_layers=2, classifier_proj_size=256, num_labels=10)
    return HubertForSequenceClassification(config).eval()


def transformer_inference_benchmark(seconds: float = 30.0, repeats: int = 3) -> dict:
    """CPU time of one forward pass over a ``seconds`` clip at 16 kHz, for each way of running it.

    Every variant is compared with the plain torch baseline: largest change of a logit and of a
    probability. Random weights give near-uniform probabilities, so the logit change is the
    stricter check of "same model".
    """
    import numpy as np
    import torch
    from scipy.special import softmax

    model = distilhubert_sized_model()
    x = torch.from_numpy(np.random.default_rng(0).normal(scale=0.1, size=(1, int(seconds * 16000))).astype(np.float32))

    def forward(m, inputs=x):
        with torch.inference_mode():
            return m(inputs).logits.numpy()

    def no_grad():
        with torch.no_grad():
            return model(x).logits.numpy()

    base_s, base = _best_of(no_grad, repeats)
    variants: dict[str, tuple[float, np.ndarray]] = {"torch, no_grad (baseline)": (base_s, base)}
    variants["torch, inference_mode"] = _best_of(lambda: forward(model), repeats)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    variants["torch, inference_mode, 1 thread"] = _best_of(lambda: forward(model), repeats)
    torch.set_num_threads(threads)
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    variants["torch, int8 dynamic quantisation of Linear layers"] = _best_of(lambda: forward(quantized), repeats)
    three = torch.cat([x, x, x])
    batched_s, batched = _best_of(lambda: forward(model, three), 1)
    variants["torch, 3 windows in one batch (per window)"] = (batched_s / 3, batched[:1])
    try:
        variants["ONNX Runtime, export for this clip length"] = _onnx_variant(model, x, repeats, dynamic=False)
        variants["ONNX Runtime, export for any length"] = _onnx_variant(model, x, repeats, dynamic=True)
    except ImportError as exc:
        variants[f"ONNX Runtime: not installed ({exc.name})"] = (float("nan"), base)

    rows = [
        {
            "variant": name,
            "seconds": round(s, 3),
            "speedup": round(base_s / s, 2) if s == s else None,
            "max_logit_change": float(f"{np.abs(out - base).max():.1e}"),
            "max_probability_change": float(f"{np.abs(softmax(out, axis=-1) - softmax(base, axis=-1)).max():.1e}"),
        }
        for name, (s, out) in variants.items()
    ]
    return {
        "clip_seconds": seconds,
        "parameters_millions": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "threads": threads,
        "results": rows,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
    }


def _onnx_variant(model, x, repeats: int, dynamic: bool):
    import torch

    from musicgenre.models.onnx_runtime import export_onnx, open_session

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(model, path, example=None if dynamic else x)
        session = open_session(path, torch.get_num_threads())
    return _best_of(lambda: session.run(None, {"input_values": x.numpy()})[0], repeats)


def _timed(command: str, files: list[Path], out: Path, *options: str, env: dict | None = None) -> float:
    """Wall seconds of one whole ``musicgenre COMMAND`` process (what a user waits for)."""
    import subprocess
    import sys

    start = time.perf_counter()
    cmd = [sys.executable, "-m", "musicgenre", command, "--no-progress", "--out", str(out), *options, *map(str, files)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd[:8])} ...: {done.stderr[-2000:]}")
    return seconds


def _under_more_names(files: list[Path], names: int, folder: Path) -> list[Path]:
    """Each file linked under ``names`` distinct names (``blues.00003`` also as ``blues.10003``...), so a small
    collection measures like a larger one; the tables name rows by file name, so names must differ."""
    import re

    linked = []
    for k in range(names):
        for f in files:
            match = re.fullmatch(r"([a-z]+)\.(\d{5})(\.\w+)", f.name)
            name = f"{match[1]}.{int(match[2]) + 10000 * k:05d}{match[3]}" if match else f"copy{k}_{f.name}"
            (folder / f.parent.name).mkdir(exist_ok=True)
            (link := folder / f.parent.name / name).symlink_to(f.resolve())
            linked.append(link)
    return linked


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DATA_ROW = "Ray cluster, 2 workers, through Ray Data's map_batches (before)"


def scale_benchmark(audio_dir: str, n_clips: int = 152, names: int = 2) -> dict:
    """Clips per second of the feature table: the local process pool, and Ray with 1 and 2 workers on a running
    cluster of this machine's cores (the engine's overhead), the 2 workers also through Ray Data's map_batches
    (what ran before Ray core tasks replaced it), plus a Ray instance started by the command itself;
    and of the embedding table, in one process and in 2 Ray actors. The clips of ``audio_dir`` are each taken
    under ``names`` names (``_under_more_names``), then the first ``n_clips``.

    Every number is one whole process on the same clips in the same run. From the two cluster runs,
    per-clip cost ``c`` and fixed overhead ``o`` (``T(w) = o + n·c/w``) give a projection for more workers.
    """
    import secrets
    import sys

    import numpy as np
    import pyarrow.parquet as pq

    from musicgenre.testing.ray_nodes import ray_nodes

    ray = str(Path(sys.executable).with_name("ray"))
    cores = os.cpu_count() or 1
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    env.pop("MUSICGENRE_RAY_ENGINE", None)  # the other rows are the default engine's; the "before" row asks for Ray Data
    seconds, embed_seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "clips").mkdir()
        files = _under_more_names(find_audio_files([audio_dir]), names, tmp / "clips")[:n_clips]
        distinct = len({f.resolve() for f in files})
        seconds["local pool, 2 workers"] = _timed("features", files, tmp / "local.csv", "--workers", "2", env=env)
        seconds["Ray, local instance started by the command, 2 workers"] = _timed(
            "features", files, tmp / "own.csv", "--ray", "--workers", "2", env=env
        )
        embed_seconds["one process (ONNX Runtime on every core)"] = _timed("embed", files, tmp / "local.parquet", env=env)
        port = _free_port()
        head = ["--head", "--port", str(port), "--num-cpus", str(cores), "--include-dashboard", "false", "--disable-usage-stats"]
        address = f"127.0.0.1:{port}"
        with ray_nodes(ray, [head], env, tmp):  # this cluster only, stopped on leaving
            for workers in (1, 2):
                seconds[f"Ray cluster, {workers} worker{'s' * (workers > 1)}"] = _timed(
                    "features", files, tmp / f"ray{workers}.csv", "--ray", address, "--workers", str(workers), env=env
                )
            seconds[DATA_ROW] = _timed(
                "features",
                files,
                tmp / "data.csv",
                "--ray",
                address,
                "--workers",
                "2",
                "--ray-engine",
                "data",
                env=env,
            )
            embed_seconds["Ray cluster, 2 actors (one core each)"] = _timed(
                "embed", files, tmp / "ray.parquet", "--ray", address, "--workers", "2", env=env
            )
        same = all(
            (tmp / f).read_bytes() == (tmp / "local.csv").read_bytes() for f in ("own.csv", "ray1.csv", "ray2.csv", "data.csv")
        )
        vectors = [np.asarray(pq.read_table(tmp / f).column("embedding").to_pylist()) for f in ("local.parquet", "ray.parquet")]
        embed_difference = float(np.abs(vectors[0] - vectors[1]).max() / np.abs(vectors[0]).max())
    t1, t2 = seconds["Ray cluster, 1 worker"], seconds["Ray cluster, 2 workers"]
    per_clip = 2 * (t1 - t2) / len(files)  # T(1) - T(2) = n c / 2
    overhead = t2 - len(files) * per_clip / 2
    local = seconds["local pool, 2 workers"]
    local_overhead = local - len(files) * per_clip / 2
    return {
        "clips": len(files),
        "distinct_clips": distinct,
        "clip_seconds": 30.0,
        "statistic": "whole `musicgenre features` process, wall seconds, one run each",
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "clips_per_second": {k: round(len(files) / v, 2) for k, v in seconds.items()},
        "ray_2_workers_vs_local_pool": (ratio := round(local / t2, 3)),
        "ray_data_2_workers_vs_local_pool (before)": round(local / seconds[DATA_ROW], 3),
        "target": "Ray with 2 CPUs within 15% of the local pool (ratio >= 0.85)",
        "target_met": ratio >= 0.85,
        "tables_identical": same,
        "embed": {
            "statistic": "whole `musicgenre embed` process (MSD_musicnn, mean_pool), wall seconds, one run each",
            "seconds": {k: round(v, 2) for k, v in embed_seconds.items()},
            "clips_per_second": {k: round(len(files) / v, 2) for k, v in embed_seconds.items()},
            "largest_difference_relative_to_largest_value": embed_difference,
        },
        "model": {
            "per_clip_core_seconds": round(per_clip, 3),
            "fixed_overhead_seconds": round(overhead, 2),
            "local_pool_overhead_seconds": round(local_overhead, 2),
            # T_local(n) = o_l + n c / 2 against T_ray(n) = o + n c / 2: the collection size where the ratio reaches 0.85
            "clips_where_ray_is_within_15_percent": int(np.ceil(2 * (0.85 * overhead - local_overhead) / (0.15 * per_clip)))
            if per_clip > 0
            else None,
        },
        "projection_hours": {
            f"{n:,} clips on {w} workers": round((overhead + n * per_clip / w) / 3600, 2)
            for n, w in ((106_574, 16), (106_574, 64), (1_000_000, 64), (1_000_000, 256))
        },
        "machine": f"{platform.machine()}, {cores} cores, Python {platform.python_version()}",
    }
