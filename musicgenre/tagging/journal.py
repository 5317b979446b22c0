"""The tag journal: what each file held before ``musicgenre tag`` touched it, so ``--undo`` can put it back exactly.

One JSON object per line (JSON Lines), appended and fsynced before the file it describes is replaced, so a journal
never misses a change that reached the disk. The first line identifies the file::

    {"journal": "musicgenre-tag", "version": 1, "created": "2025-01-02T03:04:05Z"}

then one line per touched file::

    {"file": "/music/a.mp3", "before": {...formats.snapshot(...)...}, "time": "2025-01-02T03:04:06Z", ...extra}

``file`` is absolute, so undo works from any folder. Paths that are not valid UTF-8 survive: JSON's ASCII escapes
carry Python's surrogate escapes through unchanged. A crash can only tear the last line (each line is one
``write`` on an ``O_APPEND`` descriptor, which also keeps lines of processes sharing a journal whole): reading
ignores it, and reopening cuts it off before appending.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from musicgenre.errors import TagError
from musicgenre.util.atomic import atomic_open

KIND = "musicgenre-tag"
VERSION = 1


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_journal_path() -> Path:
    """``$XDG_STATE_HOME/musicgenre/journals/tag-<UTC time>.jsonl`` (``~/.local/state`` when unset), new per run.

    Microseconds in the name keep two runs started in the same second apart.
    """
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"  # the spec ignores relative ones
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return base / "musicgenre" / "journals" / f"tag-{stamp}.jsonl"


def _check_header(path: Path, line: bytes) -> None:
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("journal") != KIND:
        raise TagError(f"{path.absolute()}: not a musicgenre tag journal (its first line does not say so)")
    if not isinstance(header.get("version"), int) or header["version"] > VERSION:
        raise TagError(
            f"{path.absolute()}: a musicgenre tag journal of format version {header.get('version')!r}; "
            f"this musicgenre reads up to version {VERSION}"
        )


class Journal:
    """An open journal; ``record`` appends one entry and returns only once it is on disk.

    Safe to share between threads (one lock) and between processes appending to the same file (``O_APPEND``).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # the default location's folders, on a first run
            if not self.path.exists() or self.path.stat().st_size == 0:
                header = json.dumps({"journal": KIND, "version": VERSION, "created": _now()})
                with atomic_open(self.path) as f:  # a journal exists whole, header included, or not at all
                    f.write(header + "\n")
                self._fsync_folder()
            else:
                self._cut_torn_tail()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise TagError(f"{self.path.absolute()}: cannot open the journal: {exc.strerror or exc}") from None

    def _fsync_folder(self) -> None:
        fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _cut_torn_tail(self) -> None:
        """Check the header of an existing journal, and drop a last line that a crash left without its newline."""
        data = self.path.read_bytes()
        _check_header(self.path, data.split(b"\n", 1)[0])
        if not data.endswith(b"\n"):
            with open(self.path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
                os.fsync(f.fileno())

    def record(self, file: str | os.PathLike, before: dict, **extra) -> None:
        """Append ``{"file": <absolute path>, "before": before, "time": ..., **extra}`` and fsync it."""
        entry = {"file": os.path.abspath(os.fspath(file)), "before": before, "time": _now(), **extra}
        data = (json.dumps(entry, separators=(",", ":")) + "\n").encode("ascii")
        with self._lock:
            try:
                written = 0
                while written < len(data):  # a regular file takes it in one write; a partial one is continued
                    written += os.write(self._fd, data[written:])
                os.fsync(self._fd)
            except OSError as exc:
                raise TagError(f"{self.path.absolute()}: cannot write the journal: {exc.strerror or exc}") from None

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def entries(path: str | os.PathLike) -> list[dict]:
        """The journal's entries in the order written; a torn last line is ignored, any other bad line is an error."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise TagError(f"{path.absolute()}: no such journal") from None
        except OSError as exc:
            raise TagError(f"{path.absolute()}: cannot read the journal: {exc.strerror or exc}") from None
        lines = data.split(b"\n")
        _check_header(path, lines[0])
        complete = lines[1:-1]  # the last piece is empty after a final newline, or a torn line without one
        out = []
        for number, line in enumerate(complete, start=2):
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or "before" not in entry:
                raise TagError(f"{path.absolute()}: line {number} of the journal is not an entry; it was edited or damaged")
            out.append(entry)
        return out


def first_states(path: str | os.PathLike) -> dict[str, dict]:
    """``{file: before}`` with the EARLIEST ``before`` of each file: undo returns it to what it held before this journal."""
    states: dict[str, dict] = {}
    for entry in Journal.entries(path):
        states.setdefault(entry["file"], entry["before"])
    return states
