"""CPU inference per 30-second clip for every kind of model the project serves: time, size, memory.

Each served model (the bundled pretrained probe and feature model, the CNN for 3 s and 30 s inputs, a DistilHuBERT-sized
transformers model) is measured in a fresh process, so its peak memory is its own. The shallow
families are measured together in one more process (their time is mostly feature extraction).
Time is end to end from decoded audio at 22,050 Hz to probabilities (``predict.predict_array``):
the median of ``runs`` after one warm-up. Networks have random weights: the same cost as trained
ones, no download. Numbers are recorded, never asserted.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from musicgenre.data.gtzan import GENRES
from musicgenre.errors import ModelError
from musicgenre.features.handcrafted import SAMPLE_RATE

from .benchmark import matmul_gflops

SERVED = ("musicnn", "musicnn-backbone", "bundled", "cnn-3s", "cnn-30s", "distilhubert")
MEASURED_KEYS = ("dataset", "protocol", "feature_set", "search")  # which study result a shallow measurement stands for


def _rss_mb() -> float:
    """The process's peak resident memory so far (what ``ru_maxrss`` measures), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != "README.md")


def _time(model, clip: np.ndarray, runs: int) -> float:
    from musicgenre.models.predict import predict_array

    predict_array(model, clip, SAMPLE_RATE)  # warm-up: numba, kernels, ONNX session
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        predict_array(model, clip, SAMPLE_RATE)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _served(name: str, clip: np.ndarray, runs: int) -> dict:
    """Load one served model in this (fresh) process and measure it."""
    imports_mb = _rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / name
        if name == "musicnn":
            from musicgenre.families import bundled_model_path, resolve_model
            from musicgenre.models.musicnn import backbone_path

            model, family, inp = resolve_model("bundled:musicnn"), "musicnn-probe", "30 s"
            size = _folder_bytes(bundled_model_path("musicnn")) + (backbone_path() / "model.onnx").stat().st_size
            what = f"the bundled probe ({model.backbone.name} through ONNX Runtime, {model.layer} embedding, NumPy head)"
        elif name == "bundled":
            from musicgenre.families import bundled_model_path, resolve_model

            model, family, inp, folder = resolve_model("bundled:shallow"), "bundled", "30 s", bundled_model_path("shallow")
            what = f"the bundled model ({model.meta.get('estimator', 'shallow')} on handcrafted features)"
        elif name.startswith("cnn-"):
            from musicgenre.families import FAMILIES, load_model_folder

            cnn = FAMILIES["cnn"]
            seconds, s = float(name.removeprefix("cnn-").removesuffix("s")), cnn.trainer().CnnSettings()
            network = cnn.module().build_cnn(seconds, s.width, s.blocks, s.dropout)
            cnn.save(cnn.module().CnnModel(network, seconds), folder)
            model = load_model_folder(folder)  # as served: its ONNX copy when the export passed its check
            family, inp = "cnn", f"{seconds:g} s"
            runtime = "ONNX Runtime" if model.meta.get("runtime") == "onnxruntime" else "Keras, torch backend"
            what = f"Keras CNN ({runtime}), {seconds:g} s windows, {network.count_params():,} parameters"
        elif name == "distilhubert":
            from transformers import Wav2Vec2FeatureExtractor

            from musicgenre.families import FAMILIES

            from .benchmark import distilhubert_sized_model

            load_transformer_model = FAMILIES["transformer"].module().load_transformer_model

            network = distilhubert_sized_model()
            network.config.id2label, network.config.label2id = dict(enumerate(GENRES)), {g: i for i, g in enumerate(GENRES)}
            network.save_pretrained(folder)
            Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(folder)
            model = load_transformer_model(folder, cache_root=Path(tmp))  # the export is not left in the user's cache
            family, inp = "distilhubert", "waveform"
            millions = sum(p.numel() for p in network.parameters()) / 1e6
            runtime = "ONNX Runtime" if model.session is not None else "torch"
            what = f"DistilHuBERT-sized transformers model, {millions:.1f} M parameters, random weights, {runtime}"
        else:
            raise ModelError(f"unknown served model {name!r}; choose from {SERVED}")
        loaded_mb = _rss_mb()
        seconds_per_clip = _time(model, clip, runs)
        size = size if name == "musicnn" else _folder_bytes(folder)
    return {
        "family": family,
        "input": inp,
        "model": what,
        "size_bytes": size,
        "seconds_per_30s_clip": round(seconds_per_clip, 3),
        "peak_rss_after_imports_mb": round(imports_mb),
        "peak_rss_after_load_mb": round(loaded_mb),
        "peak_rss_mb": round(_rss_mb()),
    }


def _backbone_variants(clip: np.ndarray, runs: int) -> list[dict]:
    """musicnn on a 30 s clip before and after the speed work, in one run: the full-rank PyTorch port,
    its plain ONNX export, and the shipped export with its low-rank convolutions factored.

    16 kHz audio to the four outputs (``Backbone.analyse``); each row records how far its outputs
    are from the port's, relative to the largest value (the issue's bound is 1e-4).
    """
    from dataclasses import replace

    from musicgenre.audio.io import prepare_audio
    from musicgenre.models.musicnn import ONNX_FILE, _onnx_runner, backbone_path, load_backbone, load_torch_network
    from musicgenre.models.musicnn import SAMPLE_RATE as RATE
    from musicgenre.models.musicnn_convert import export_onnx, largest_relative_difference

    def difference(a: dict, b: dict) -> float:
        return largest_relative_difference(list(a.values()), list(b.values()))

    y = prepare_audio(clip, SAMPLE_RATE, RATE).samples
    port = load_backbone(runtime="torch")
    shipped = backbone_path() / ONNX_FILE
    reference = port.analyse(y)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        full_rank = Path(tmp) / "full_rank.onnx"
        export_onnx(load_torch_network(backbone_path()), full_rank)

        variants = [
            ("PyTorch port, full rank (the prototype's path)", port, full_rank),
            ("ONNX Runtime, full-rank export", replace(port, run_patches=_onnx_runner(full_rank)), full_rank),
            ("ONNX Runtime, factored export (shipped, as served)", load_backbone(), shipped),
        ]
        for what, backbone, onnx in variants:
            backbone.analyse(y)  # warm-up
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                got = backbone.analyse(y)
                times.append(time.perf_counter() - start)
            out.append(
                {
                    "family": "musicnn-backbone",
                    "input": "30 s",
                    "model": what,
                    "size_bytes": onnx.stat().st_size,
                    "seconds_per_30s_clip": round(statistics.median(times), 3),
                    "largest_relative_difference_from_port": float(f"{difference(reference, got):.1e}"),
                }
            )
    return out


def _shallow(table: str, results_json: str | None, clip: np.ndarray, runs: int) -> list[dict]:
    """Every shallow family, 30 s and 3 s windows, with the hyper-parameters its study cell chose (or defaults)."""
    from musicgenre.families import FAMILIES
    from musicgenre.features.handcrafted import FEATURE_COLUMNS
    from musicgenre.features.table import load_feature_table

    shallow = FAMILIES["shallow"]
    ShallowModel, save_model = shallow.module("folder").ShallowModel, shallow.save  # noqa: N806 - the class
    MODELS, make_pipeline, pick_best = shallow.module().MODELS, shallow.module().make_pipeline, shallow.trainer().pick_best  # noqa: N806

    rows = load_feature_table(table)
    X, y = rows[FEATURE_COLUMNS].to_numpy(np.float64), rows["label"].map({g: i for i, g in enumerate(GENRES)}).to_numpy()
    results = json.loads(Path(results_json).read_text()) if results_json and Path(results_json).exists() else []
    out = []
    for family in MODELS:
        for inp, seconds, cell in (("30 s", 30.0, ("30s table", "filtered")), ("3 s", 3.0, ("3s audio", "grouped"))):
            candidates = [r for r in results if r["model"] == family and (r["dataset"], r["protocol"]) == cell]
            chosen = pick_best(candidates) if candidates else None
            params = chosen["best_params"] if chosen else {}
            params = params if isinstance(params, dict) else params[0]  # nested CV chose per outer fold: the first stands in
            feature_set = chosen["feature_set"] if chosen else "invariant"
            source = f"parameters chosen in {' '.join(cell)}" if chosen else "default parameters"
            model = ShallowModel(make_pipeline(family, params, 0, feature_set).fit(X, y), window_seconds=seconds)
            with tempfile.TemporaryDirectory() as tmp:
                size = _folder_bytes(save_model(model, Path(tmp) / family))
            out.append(
                {
                    "family": family,
                    "input": inp,
                    "model": f"{family} ({feature_set} features, {source}), fitted on {len(y)} table rows",
                    "measures": {k: chosen[k] for k in MEASURED_KEYS} if chosen else None,
                    "size_bytes": size,
                    "seconds_per_30s_clip": round(_time(model, clip, runs), 3),
                }
            )
    return out


def _child(job: tuple) -> object:
    kind, args = job
    return {"served": _served, "shallow": _shallow, "backbone": _backbone_variants}[kind](*args)


def inference_benchmark(clip: np.ndarray, table: str | None, results_json: str | None, runs: int = 5, served=None) -> dict:
    """Measure every served model (each in its own process) and, given the public table, every shallow family."""
    import torch

    served = SERVED if served is None else served
    jobs = [("backbone", (clip, runs)) if name == "musicnn-backbone" else ("served", (name, clip, runs)) for name in served]
    if table:
        jobs.append(("shallow", (table, results_json, clip, runs)))
    results = []
    gflops_before = matmul_gflops()
    ctx = multiprocessing.get_context("spawn")
    for job in jobs:
        with ctx.Pool(1, maxtasksperchild=1) as pool:
            found = pool.apply(_child, (job,))
        results += found if isinstance(found, list) else [found]
    return {
        "clip_seconds": round(len(clip) / SAMPLE_RATE, 2),
        "runs": runs,
        "statistic": "median seconds after one warm-up, decoded 22,050 Hz audio to probabilities",
        "results": results,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}",
        "matmul_gflops_before_after": [gflops_before, matmul_gflops()],
    }
