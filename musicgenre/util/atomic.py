"""Atomic writes of files and folders: readers see the old version or the complete new one, never a partial one."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_open(path: str | os.PathLike, newline: str | None = None, binary: bool = False) -> Iterator[IO]:
    """Open a temporary file (text, or ``binary``) beside ``path``; on success it is synced and renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would make the finished file private
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_npz_atomic(path: str | os.PathLike, **arrays) -> None:
    """``numpy.savez`` of ``arrays`` to ``path``, atomically: a cache entry is whole or absent, never half written."""
    import numpy as np

    with atomic_open(path, binary=True) as f:
        np.savez(f, **arrays)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete temporary files that ``atomic_open(path)`` left behind in a process that no longer runs.

    Names carry the writer's pid (``.NAME.PID.XXXXXXXX.tmp``), so a live writer's file is never
    touched, nor are the temporaries of other outputs in the same folder.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[A-Za-z0-9_]{{8}}\.tmp")
    stale = []
    for tmp in path.parent.glob(".*.tmp") if path.parent.is_dir() else []:
        match = pattern.fullmatch(tmp.name)
        if match and not _running(int(match.group(1))):
            tmp.unlink(missing_ok=True)
            stale.append(tmp)
    return stale


@contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``folder``; on success it replaces ``folder``.

    The old folder is moved aside before the new one is moved in, so a crash at any point leaves
    the old or the new version, never none (a model folder is several files, not one).
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    tmp.chmod(0o755)
    try:
        yield tmp
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    with atomic_open(path) as f:
        f.write(json.dumps(obj, indent=2) + "\n")
