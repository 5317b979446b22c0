"""``musicgenre features --ray``: each file's feature rows computed on a Ray cluster (``util.cluster``), as the
local process pool's worker computes them (``rows.file_rows``); ``table.extract_table`` does the rest (resume,
atomic saves)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from musicgenre.util.cluster import Engine, run_per_path
from musicgenre.util.uri import to_path


def _extract(batch: dict, segment_seconds: float | None, librosa: bool) -> dict:
    """A Ray task: each file's feature rows, as the local pool's worker computes them. A plain task, not an
    actor: there is no model to hold, and tasks start on the workers Ray keeps ready."""
    from threadpoolctl import threadpool_limits

    from musicgenre.features.rows import file_rows

    if librosa:
        from musicgenre.features import jitcache

        jitcache.ensure_ready()  # this node's numba cache, checked (and built) before any kernel runs
    rows, errors = [], []
    with threadpool_limits(1):  # one core per task, as the local pool's workers: the same values, bit for bit
        for path in batch["path"]:
            _, new_rows, error = file_rows((to_path(path), segment_seconds, librosa))
            rows.append("" if new_rows is None else json.dumps(new_rows))  # floats round-trip exactly through JSON
            errors.append(error or "")
    return {"path": list(batch["path"]), "rows": rows, "error": errors}


def feature_results(
    todo: list[Path],
    segment_seconds: float | None,
    librosa: bool,
    address: str | None = None,
    workers: int | None = None,
    ray_engine: Engine = "core",
) -> Iterator[tuple[Path, list[dict] | None, str | None]]:
    """Each file's (path, rows, error) as ``table._results`` yields them, computed on the cluster (``ray_engine``: as
    ``util.cluster.run_per_path``'s ``engine``), in the order of ``todo``."""
    kwargs = {"segment_seconds": segment_seconds, "librosa": librosa}
    for row in run_per_path([str(p) for p in todo], _extract, kwargs, address, workers, ray_engine):
        yield to_path(row["path"]), json.loads(row["rows"]) if row["rows"] else None, row["error"] or None
