"""Run a transformers audio classifier through ONNX Runtime: ~1.3x faster on CPU, same probabilities.

benchmarks/transformer_inference.py measured the options for a DistilHuBERT-sized model on a
30 s clip (2 cores): int8 dynamic quantisation and batching windows gain nothing (the conv
feature encoder is ~75% of the time), one thread is half as fast, and ONNX Runtime on a
torch.onnx (dynamo) export is ~1.3x faster with logits within 1e-6. So a model is exported once
(cached on disk by a hash of its weights), checked against torch on a probe clip, and used only
if its probabilities agree within ``TOLERANCE``; otherwise, or without onnxruntime, torch runs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
TOLERANCE = 1e-3  # the largest change of a probability we accept from a faster runtime
MAX_WINDOW_SAMPLES = 16000 * 120  # the export accepts windows up to 2 minutes at 16 kHz


def cache_dir(cache_root: Path | None = None) -> Path:
    """Where exports are kept: ``onnx/`` in the cache folder the entry point passed down (default ``~/.cache/musicgenre``)."""
    from musicgenre.util.cache import default_cache_root

    return Path(cache_root or default_cache_root()) / "onnx"


def _weights_key(model) -> str:
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def export_onnx(model, path: Path, example=None) -> None:
    """Write ``model``'s logits as ONNX to ``path``: for any batch and length, or only ``example``'s shape."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, values):
            return self.inner(values).logits

    shapes = None
    if example is None:
        example = torch.zeros(1, 32000)
        shapes = {
            "values": {0: torch.export.Dim("batch", max=64), 1: torch.export.Dim("samples", min=4000, max=MAX_WINDOW_SAMPLES)}
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    quiet = logging.getLogger("torch.onnx")  # e.g. "torchvision is not installed" notes
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        # The exporter reports progress on stdout, which `musicgenre predict` keeps for its JSON lines.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Logits(model).eval(),
                (example,),
                tmp,
                input_names=["input_values"],
                output_names=["logits"],
                dynamo=True,
                dynamic_shapes=shapes,
                external_data=False,  # one self-contained file (fine below protobuf's 2 GB)
                verbose=False,
            )
        os.replace(tmp, path)  # atomic: a half-written export is never picked up
    finally:
        quiet.setLevel(level)
        if os.path.exists(tmp):
            os.remove(tmp)


def open_session(path: str | os.PathLike, threads: int | None = None, optimization: str = "all"):
    """A quiet CPU session of the ONNX file at ``path``. ``threads`` None: ``$OMP_NUM_THREADS`` if set (Ray sets it to
    a task's or actor's CPUs, so two one-CPU actors on a node do not each start a thread per core), else ONNX
    Runtime's default (every core). ``optimization``: ONNX Runtime's graph optimisation level, ``"all"`` (its
    default) or ``"extended"`` (no NCHWc layout rewrite: for small convolutional nets such as musicnn the layout
    conversions cost more than they save, on the first run and after)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }[optimization]
    threads = threads or (int(os.environ["OMP_NUM_THREADS"]) if os.environ.get("OMP_NUM_THREADS", "").isdigit() else None)
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    # No spin-waiting between runs: ORT's idle threads otherwise keep both cores busy for a while
    # after each call, and the NumPy work that follows (the next model's features) runs at half speed.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_session(model, cache_root: Path | None = None):
    """An ONNX Runtime session computing ``model``'s logits from input_values, or None to keep torch; the export is
    kept in ``cache_dir(cache_root)``."""
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401 - torch's dynamo exporter needs it
        import torch
    except ImportError as exc:
        log.info("ONNX Runtime not used (%s is not installed)", exc.name)
        return None
    try:
        path = cache_dir(cache_root) / f"{_weights_key(model)}.onnx"
        if not path.is_file():
            export_onnx(model, path)
        session = open_session(path, torch.get_num_threads())  # as many cores as torch would use
        probe = np.random.default_rng(0).normal(scale=0.1, size=(1, 40000)).astype(np.float32)
        with torch.inference_mode():
            expected = model(torch.from_numpy(probe)).logits.float().numpy()
        got = session.run(None, {"input_values": probe})[0]
    except Exception as exc:  # an architecture the exporter cannot handle: torch still can
        log.warning("ONNX export failed, running with torch: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return None
    from scipy.special import softmax  # here, not at import: the musicnn backbone's sessions need no scipy

    change = float(np.abs(softmax(got, axis=-1) - softmax(expected, axis=-1)).max())
    if change > TOLERANCE:
        log.warning("ONNX Runtime changes probabilities by %.1e (> %.0e): running with torch", change, TOLERANCE)
        return None
    return session
