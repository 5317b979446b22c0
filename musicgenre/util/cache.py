"""Arrays computed from a file's content, kept on disk as ``.npz`` entries so that a rerun reads them back.

One mechanism for the caches of embeddings and views (the probe's per-clip backbone outputs, the robust
probe's views, the robustness study's views): an ``NpzCache`` is a folder whose name carries everything
the entries depend on besides the file (versions, weights, settings), an entry's key is the file's content
digest (``file_digest``) and, where a file has several entries, a name under it. Entries are written
atomically (``atomic.save_npz_atomic``), so an interrupted run leaves each one whole or absent; changing
what an entry depends on means a new folder name, so old entries are never read as new ones.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgenre.util.atomic import save_npz_atomic

CACHE_VARIABLE = "MUSICGENRE_CACHE"  # the entry points' (musicgenre.cli, app.py) default cache folder; read there only


def default_cache_root() -> Path:
    """``~/.cache/musicgenre``: the folder for musicgenre's own caches (librosa's compiled code, ONNX exports) when
    the caller names none. The entry points read ``$MUSICGENRE_CACHE`` and pass their folder down (issue 34)."""
    return Path.home() / ".cache" / "musicgenre"


def cache_root_of(environ: Mapping[str, str]) -> Path:
    """The cache folder an entry point's environment names: ``$MUSICGENRE_CACHE``, else ``default_cache_root()``. The
    entry points (the CLI, the app, the beets plugin, the experiments) pass ``os.environ``; the library never reads it."""
    return Path(environ.get(CACHE_VARIABLE) or default_cache_root())


def file_digest(path: str | os.PathLike, chars: int | None = None) -> str:
    """The SHA-256 of the file's bytes in hex, its first ``chars`` digits if given."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:chars]


@dataclass(frozen=True)
class NpzCache:
    """Entries ``folder/<key[0]>/.../<key[-1]>.npz``, each a dict of named arrays."""

    folder: Path

    def entry(self, *key: str) -> Path:
        *parents, name = key
        return Path(self.folder).joinpath(*parents, f"{name}.npz")

    def has(self, *key: str) -> bool:
        return self.entry(*key).is_file()

    def get(self, *key: str) -> dict[str, np.ndarray] | None:
        """The entry's arrays, or None if there is none."""
        entry = self.entry(*key)
        if not entry.is_file():
            return None
        with np.load(entry) as z:
            return {k: z[k] for k in z.files}

    def put(self, *key: str, arrays: dict[str, np.ndarray]) -> None:
        save_npz_atomic(self.entry(*key), **arrays)  # makes the entry's folder
