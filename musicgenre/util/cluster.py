"""Per-file work on a Ray cluster, for collections too large for one machine: joining the cluster
and mapping a function or an actor class over paths. ``features.cluster`` (feature rows),
``models.cluster`` (``predict`` lines) and ``models.embeddings`` (embedding rows) are its uses.

The cluster only computes: each file's rows (or JSON line) come back to the driver, which does what the
local path does with them (``table.extract_table``: skip what the table already holds, save atomically
every few seconds, list unreadable files; ``predict``: print each file's line, an error line for a file
that cannot be classified). So the output is the local path's, the table is resumable in the same way,
and every file appears exactly once even when Ray reruns a task whose worker died (Ray retries a task
whose worker died, restarts a dead actor and retries its call, and keeps one result per call).
Models load once per actor, not per file.

Ray is an optional dependency (``pip install 'musicgenre[scale]'``), imported only here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, get_args

from musicgenre.errors import MusicGenreError

RETRIES = 3  # a call whose worker died is run again this many times
Engine = Literal["core", "data"]  # how ``run_per_path`` maps: Ray core tasks and actors, or Ray Data's ``map_batches``
ENGINES: tuple[str, ...] = get_args(Engine)


class ClusterError(MusicGenreError):
    """Ray is missing, or the cluster cannot be reached."""


def connect(address: str | None = None) -> None:
    """Join the cluster at ``address`` (``host:port``, ``auto``, ``ray://…``; else the one ``RAY_ADDRESS`` names, which
    Ray itself reads), or start a local Ray instance when neither is given. Once per process."""
    try:
        import ray
    except ImportError:
        raise ClusterError("--ray needs Ray: pip install 'musicgenre[scale]'") from None
    if ray.is_initialized():
        return
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:  # e.g. no or a wrong auth token
        raise ClusterError(f"cannot reach the Ray cluster at {address or '$RAY_ADDRESS, or a local one'}: {exc}") from None


def check_engine(engine: str, source: str = "engine") -> Engine:
    """``engine`` as an Engine; a ClusterError naming ``source`` if it is neither "core" nor "data"."""
    if engine not in ENGINES:
        raise ClusterError(f"{source}: unknown Ray engine {engine!r}; choose from {', '.join(ENGINES)}")
    return engine


def run_per_path(
    paths: list[str], fn, kwargs: dict, address: str | None, workers: int | None, engine: Engine = "core"
) -> Iterator[dict]:
    """Each path's output row from ``fn`` (a function: ``workers`` tasks at a time; a class: ``workers`` actors,
    each built once with ``kwargs``; default: one per CPU of the cluster), in the order of ``paths``, once each.

    ``fn`` takes and returns a batch, a dict of lists (Ray Data's format), here of one path. With ``engine`` "core"
    (the default) Ray core tasks and an ``ActorPool`` run it; "data" runs it through Ray Data's ``map_batches``
    instead, kept only as the "before" row of ``benchmarks/scale.py``, which measures it beside the default: on 2
    cores, Ray Data's start (its planner and its own stats and autoscaling actors) costs ~8 s more and its executor
    loop ~8 % of the throughput, for nothing this map needs. The entry point chooses it (``musicgenre --ray-engine``);
    nothing here reads the environment for it.
    """
    run = {"core": _ray_core, "data": _ray_data}[check_engine(engine)]
    import ray

    connect(address)
    if not paths:
        return
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    for batch in run(paths, fn, kwargs, workers):
        yield {k: v[0] for k, v in batch.items()}


def _ray_core(paths: list[str], fn, kwargs: dict, workers: int) -> Iterator[dict]:
    """Tasks (retried if their worker dies) or actors (restarted, and their call retried, if they die), at most
    ``workers`` running at once, answers in the order of ``paths``: one per path, since Ray keeps one result per call
    however often it retried it."""
    import ray

    if isinstance(fn, type):
        from ray.util import ActorPool

        actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=RETRIES)(fn)
        pool = ActorPool([actor.remote(**kwargs) for _ in range(workers)])
        calls = pool.map(lambda a, path: a.__call__.remote({"path": [path]}), paths)
        for path in paths:
            with _died_on(path):
                batch = next(calls)
            yield batch
        return
    task = ray.remote(num_cpus=1, max_retries=RETRIES)(fn)
    # A second call queued per worker starts the moment one ends (Ray reuses the worker), instead of after a round
    # trip to this driver (152 clips on 2 cores: 63-64 s queued, in two runs, against 73 s without). Ray runs at
    # most one per CPU, so the queue is kept only where ``workers`` is all the CPUs; fewer are run one at a time.
    depth = 2 * workers if workers >= int(ray.cluster_resources().get("CPU", 1)) else workers
    running: dict = {}  # call -> index of its path
    finished: dict[int, dict] = {}
    submitted = delivered = 0
    while delivered < len(paths):
        while len(running) < depth and submitted < len(paths):
            running[task.remote({"path": [paths[submitted]]}, **kwargs)] = submitted
            submitted += 1
        done, _ = ray.wait(list(running), num_returns=1)
        index = running.pop(done[0])
        with _died_on(paths[index]):
            finished[index] = ray.get(done[0])
        while delivered in finished:  # in the order of the paths
            yield finished.pop(delivered)
            delivered += 1


@contextmanager
def _died_on(path: str) -> Iterator[None]:
    """A file whose worker died on every try (a decoder that crashes, memory it cannot have) ends the run with a
    clear error, as three deaths of the local pool do, rather than being retried for ever; the table so far is
    saved, so a rerun without that file resumes."""
    import ray

    try:
        yield
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayActorError, ray.exceptions.OutOfMemoryError) as exc:
        raise ClusterError(f"{path}: the Ray worker died on it {RETRIES + 1} times ({type(exc).__name__})") from None


def _ray_data(paths: list[str], fn, kwargs: dict, workers: int) -> Iterator[dict]:
    """The same map through Ray Data's ``map_batches`` (actors for a class), one path per batch."""
    import ray

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the output in the order of the files, as locally
    context.enable_progress_bars = False
    items = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=min(len(paths), 4 * workers))
    args = {"fn_constructor_kwargs": kwargs} if isinstance(fn, type) else {"fn_kwargs": kwargs}
    out = items.map_batches(fn, **args, batch_size=1, concurrency=workers, num_cpus=1)
    seen = set()
    for row in out.iter_rows():
        if row["path"] not in seen:  # a retried batch that had been delivered already
            seen.add(row["path"])
            yield {k: [v] for k, v in row.items()}
