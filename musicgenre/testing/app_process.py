"""The app as its own process on 127.0.0.1: start it, wait for it, watch its memory, stop it.

Tests and ``benchmarks/load.py`` meet the app the way users do: a real server over real HTTP.
"""

from __future__ import annotations

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

    def rss_mb(self) -> float:
        """Resident memory of the server and any child processes, in MB."""
        import psutil

        root = psutil.Process(self.proc.pid)
        procs = [root, *root.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running()) / 1e6

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def launch_app(
    app: str | os.PathLike, args: list[str], log: str | os.PathLike, timeout: float = 180.0, env: dict[str, str] | None = None
) -> AppProcess:
    """Start ``python app ARGS`` offline on a free port and wait until its page answers.

    Offline (``HF_HUB_OFFLINE=1``) the default Hub model is reported as unreachable and the
    bundled models are served; ``env`` adds to the environment. Raises ``MusicGenreError`` with
    the log's tail if it never comes up.
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
    running = AppProcess(proc, f"http://127.0.0.1:{port}/", log, launched)
    while True:
        try:
            urllib.request.urlopen(running.url, timeout=2).close()
            break
        except OSError:
            if not running.alive() or time.monotonic() - launched > timeout:
                running.stop()
                raise MusicGenreError(f"the app did not start within {timeout:g} s:\n{running.log_tail()}") from None
            time.sleep(0.2)
    running.page_seconds = time.monotonic() - launched
    return running
