"""Per-file work of ``musicgenre features`` and ``predict`` on a Ray cluster (Ray Data), for collections too
large for one machine.

The cluster only computes: each file's rows (or JSON line) come back to the driver, which does what the
local path does with them (``table.extract_table``: skip what the table already holds, save atomically
every few seconds, list unreadable files; ``predict``: print each file's line, an error line for a file
that cannot be classified). So the output is the local path's, the table is resumable in the same way,
and every file appears exactly once even when Ray reruns a task whose worker died (Ray Data restarts a
dead actor and retries a task or batch whose worker died; the driver keeps the first answer per file).
Models load once per actor, not per file.

Ray is an optional dependency (``pip install 'musicgenre[scale]'``), imported only here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from musicgenre.errors import MusicGenreError


class ClusterError(MusicGenreError):
    """Ray is missing, or the cluster cannot be reached."""


def connect(address: str | None = None) -> None:
    """Join the cluster at ``address`` (``host:port``, ``auto``, ``ray://…``; else ``RAY_ADDRESS``), or start a
    local Ray instance when neither is given. Once per process."""
    try:
        import ray
    except ImportError:
        raise ClusterError("--ray needs Ray: pip install 'musicgenre[scale]'") from None
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:  # e.g. no or a wrong auth token
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {exc}") from None


def _extract(batch: dict, segment_seconds: float | None, librosa: bool) -> dict:
    """A Ray Data task: each file's feature rows, as the local pool's worker computes them. A plain task, not an
    actor: there is no model to hold, and tasks start on the workers Ray keeps ready."""
    from threadpoolctl import threadpool_limits

    from musicgenre.table import _worker

    if librosa:
        from musicgenre import jitcache

        jitcache.ensure_ready()  # this node's numba cache, checked (and built) before any kernel runs
    rows, errors = [], []
    with threadpool_limits(1):  # one core per task, as the local pool's workers: the same values, bit for bit
        for path in batch["path"]:
            _, new_rows, error = _worker((Path(path), segment_seconds, librosa))
            rows.append("" if new_rows is None else json.dumps(new_rows))  # floats round-trip exactly through JSON
            errors.append(error or "")
    return {"path": list(batch["path"]), "rows": rows, "error": errors}


class _Predictor:
    """A Ray Data actor holding one loaded model: one file's ``predict`` line per call, as the local loop prints it."""

    def __init__(self, model: str, revision: str | None, max_seconds: float, tags: int):
        from musicgenre.modelio import resolve_model

        self.model, self.max_seconds, self.tags = resolve_model(model, revision), max_seconds, tags

    def __call__(self, batch: dict) -> dict:
        from musicgenre.predict import predict_line

        lines = [json.dumps(predict_line(self.model, path, self.max_seconds, self.tags)) for path in batch["path"]]
        return {"path": list(batch["path"]), "line": lines}


def _run(paths: list[str], fn, kwargs: dict, address: str | None, workers: int | None) -> Iterator[dict]:
    """Each path's output row from ``fn`` (a function: ``workers`` tasks at a time; a class: ``workers`` actors,
    each built once with ``kwargs``; default: one per CPU of the cluster), in the order of ``paths``, once each."""
    import ray

    connect(address)
    if not paths:
        return
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the output in the order of the files, as locally
    context.enable_progress_bars = False
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    items = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=min(len(paths), 4 * workers))
    args = {"fn_constructor_kwargs": kwargs} if isinstance(fn, type) else {"fn_kwargs": kwargs}
    out = items.map_batches(fn, **args, batch_size=1, concurrency=workers, num_cpus=1)
    seen = set()
    for row in out.iter_rows():
        if row["path"] in seen:  # a retried batch that had been delivered already
            continue
        seen.add(row["path"])
        yield row


def predict_lines(
    files: list[str],
    model: str,
    revision: str | None = None,
    max_seconds: float = 600.0,
    tags: int = 0,
    address: str | None = None,
    workers: int | None = None,
) -> Iterator[dict]:
    """``musicgenre predict``'s line for each file, computed on the cluster, in the order of ``files``."""
    kwargs = {"model": model, "revision": revision, "max_seconds": max_seconds, "tags": tags}
    for row in _run(list(files), _Predictor, kwargs, address, workers):
        yield json.loads(row["line"])


def feature_results(
    todo: list[Path], segment_seconds: float | None, librosa: bool, address: str | None = None, workers: int | None = None
) -> Iterator[tuple[Path, list[dict] | None, str | None]]:
    """Each file's (path, rows, error) as ``table._results`` yields them, computed on the cluster, in the order of
    ``todo``."""
    kwargs = {"segment_seconds": segment_seconds, "librosa": librosa}
    for row in _run([str(p) for p in todo], _extract, kwargs, address, workers):
        yield Path(row["path"]), json.loads(row["rows"]) if row["rows"] else None, row["error"] or None
