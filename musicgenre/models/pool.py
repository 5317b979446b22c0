"""``predict``'s lines for many files from local worker processes, each loading the model once.

One process decodes and classifies one file at a time; with ``workers`` > 1 the files are spread over that many
processes, each limited to one thread (ONNX Runtime and NumPy's BLAS), so N workers use N cores instead of
fighting over them. The lines come back in the order of the files. ``--ray`` does the same on a cluster
(``models.cluster``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

_MODEL = None
_SETTINGS: tuple = ()


def _init_worker(spec: str, revision: str | None, max_seconds: float, tags: int, load) -> None:
    """Runs first in each worker process (never in the caller's): one thread per worker, then the model."""
    global _MODEL, _SETTINGS
    os.environ["OMP_NUM_THREADS"] = "1"  # read by ONNX Runtime's session options (onnx_runtime.open_session)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _MODEL, _SETTINGS = load(spec, revision), (max_seconds, tags)


def _line(path: str) -> dict:
    from musicgenre.models.predict import predict_line

    return predict_line(_MODEL, path, *_SETTINGS)


def predict_lines_local(
    files: list[str], spec: str, revision: str | None, max_seconds: float, tags: int, workers: int, *, load
) -> Iterator[dict]:
    """``predict_line`` for each of ``files``, in order, from ``workers`` processes (one: in this process); ``load``
    (``musicgenre.families.resolve_model``, passed down from the entry point) loads the model ``spec`` names."""
    if workers <= 1 or len(files) <= 1:
        from musicgenre.models.predict import predict_line

        model = load(spec, revision)
        for path in files:
            yield predict_line(model, path, max_seconds, tags)
        return
    # forkserver: workers do not inherit the caller's threads (ONNX Runtime's, a progress bar's) half-copied
    context = get_context("forkserver")
    with ProcessPoolExecutor(workers, context, _init_worker, (spec, revision, max_seconds, tags, load)) as pool:
        yield from pool.map(_line, files, chunksize=1)
