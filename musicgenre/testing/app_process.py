"""The app as its own process on 127.0.0.1: start it, wait for it, watch its memory, stop it.

Tests and ``benchmarks/load.py`` meet the app the way users do: a real server over real HTTP.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from musicgenre.errors import MusicGenreError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppProcess:
    """A running ``app.py``: its process, URL, log file and when it was launched (``time.monotonic``)."""

    proc: subprocess.Popen
    url: str
    log: Path
    launched: float
    page_seconds: float = field(default=float("nan"))  # launch -> the page answered

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _processes(self) -> list:
        """The server and any child processes still running (psutil)."""
        import psutil

        root = psutil.Process(self.proc.pid)
        return [p for p in (root, *root.children(recursive=True)) if p.is_running()]

    def rss_mb(self) -> float:
        """Resident memory of the server and any child processes, in MB."""
        return sum(p.memory_info().rss for p in self._processes()) / 1e6

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server and any child processes have used so far."""
        return sum(sum(p.cpu_times()[:2]) for p in self._processes())  # user + system

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def wait_ready(self, timeout: float = 180.0) -> AppProcess:
        """Wait until the page answers (``timeout`` seconds from the launch) and record ``page_seconds``; raises
        ``MusicGenreError`` with the log's tail, and stops the process, if it never comes up."""
        while math.isnan(self.page_seconds):  # until the page has answered once
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
                self.page_seconds = time.monotonic() - self.launched
            except OSError:
                if not self.alive() or time.monotonic() - self.launched > timeout:
                    self.stop()
                    raise MusicGenreError(f"the app did not start within {timeout:g} s:\n{self.log_tail()}") from None
                time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_app(app: str | os.PathLike, args: list[str], log: str | os.PathLike, env: dict[str, str] | None = None) -> AppProcess:
    """Start ``python app ARGS`` offline on a free port and return at once (``AppProcess.wait_ready`` waits for it).

    Offline (``HF_HUB_OFFLINE=1``) the default Hub model is reported as unreachable and the
    bundled models are served; ``env`` adds to the environment.
    """
    app, log = Path(app), Path(log)
    port = free_port()
    env = {
        **os.environ,
        **(env or {}),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    env.pop("MODEL_ID", None)
    launched = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(app), *args], cwd=app.parent, env=env, stdout=out, stderr=subprocess.STDOUT)
    return AppProcess(proc, f"http://127.0.0.1:{port}/", log, launched)


def launch_app(
    app: str | os.PathLike, args: list[str], log: str | os.PathLike, timeout: float = 180.0, env: dict[str, str] | None = None
) -> AppProcess:
    """``start_app``, then wait until its page answers (``AppProcess.wait_ready``)."""
    return start_app(app, args, log, env).wait_ready(timeout)
