"""Ray nodes on this machine, for the Ray tests and the scale benchmark: ``ray start --block`` processes.

Stopping them stops their own cluster only, in ~2 s. ``ray stop`` would stop every Ray process on the machine (a
user's own cluster, another test's) and takes ~7 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from musicgenre.errors import MusicGenreError

STARTED = "Ray runtime started"  # what `ray start` prints once its node is up
GRACE_S = 2.0


@contextmanager
def ray_nodes(ray: str, nodes: list[list[str]], env: dict[str, str], log_dir: Path, timeout: float = 300.0) -> Iterator[None]:
    """Start one node per argument list (``ray start ARGS --block``; the head first), each once the previous is up;
    on leaving, stop them one at a time, the head last."""
    procs: list[subprocess.Popen] = []
    try:
        for i, args in enumerate(nodes):
            log = Path(log_dir) / f"ray-node-{i}.log"
            with open(log, "w") as out:
                procs.append(
                    subprocess.Popen(
                        [ray, "start", *args, "--block"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
            _wait_started(procs[-1], log, timeout)
        yield
    finally:
        for proc in reversed(procs):  # the head last: a node whose head has gone waits for it to come back
            _stop(proc)
        if procs:
            _forget(nodes[0])


def _forget(head: list[str]) -> None:
    """Remove the head's address from Ray's ``ray_current_cluster`` file, as ``ray stop`` does: a later ``ray.init()``
    with no address (``musicgenre --ray`` alone) would otherwise try to join the stopped cluster and wait for it."""
    option = dict(zip(head, head[1:], strict=False))
    temp = Path(option.get("--temp-dir") or Path(tempfile.gettempdir()) / "ray")
    record = temp / "ray_current_cluster"
    if "--port" in option and record.is_file() and record.read_text().strip().endswith(f":{option['--port']}"):
        record.unlink(missing_ok=True)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM, and if the node has not stopped within ``GRACE_S`` (a head that ran jobs can wait ~30 s for its
    workers), SIGKILL to its process group: every process the node started."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_started(proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while STARTED not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:]
            raise MusicGenreError(f"`ray start` did not start a node (exit status {proc.poll()}): {tail}")
        time.sleep(0.1)
