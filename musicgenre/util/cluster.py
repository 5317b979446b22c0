"""Per-file work on a Ray cluster (Ray Data), for collections too large for one machine: joining the cluster
and mapping a function or an actor class over paths. ``features.cluster`` (feature rows) and
``models.cluster`` (``predict`` lines) are its two uses.

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

import os
from collections.abc import Iterator

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


def run_per_path(paths: list[str], fn, kwargs: dict, address: str | None, workers: int | None) -> Iterator[dict]:
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
