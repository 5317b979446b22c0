"""How a model runs: one value, chosen by the entry point and passed down to every family's loader.

``None`` (the default) is each family's fast path: ONNX Runtime for the networks (the musicnn backbone, a CNN's
checked ONNX copy, a transformers checkpoint whose export agrees with torch) and the NumPy head of a linear shallow
model. The others ask for the reference implementation: ``"torch"`` runs the backbone's PyTorch port and transformers
checkpoints in torch, and loads a CNN's Keras file (Keras runs on torch); ``"keras"`` loads a CNN's Keras file;
``"sklearn"`` a shallow model's skops pipeline; ``"onnxruntime"`` is the default said out loud. A family with no
such path loads as by default. Where each model ran is in its ``meta["runtime"]``.

The entry points choose it: ``musicgenre --runtime`` and ``app.py --runtime``, each defaulting to
``$MUSICGENRE_RUNTIME``, which they read; nothing in the library reads the environment for it."""

from __future__ import annotations

from typing import Literal, get_args

from musicgenre.errors import ModelError

Runtime = Literal["onnxruntime", "torch", "keras", "sklearn"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)
RUNTIME_VARIABLE = "MUSICGENRE_RUNTIME"  # the environment variable the entry points read for their default


def check_runtime(runtime: str | None, source: str = "runtime") -> Runtime | None:
    """``runtime`` as a Runtime (None or "" for the default); a ModelError naming ``source`` if it is none of them."""
    if not runtime:
        return None
    if runtime not in RUNTIMES:
        raise ModelError(f"{source}: unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    return runtime
