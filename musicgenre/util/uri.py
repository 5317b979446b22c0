"""Inputs named by URIs: ``file://`` and every filesystem fsspec knows (``s3://``, ``gs://``, ``az://``,
``hdfs://``, ``http(s)://``...), so a collection in object storage is read where it lies.

A ``file://`` URI becomes a plain local path; any other URI a ``UPath`` (universal_pathlib: pathlib's API over
fsspec, so ``.name``, ``.parent``, ``.read_bytes()`` work as for a local path). A remote audio file is copied
to a temporary local file to decode, which keeps every decoder (libsndfile, ffmpeg) and every error message
the same as for a local file. The filesystem's own package (``s3fs``, ``gcsfs``, ``adlfs``...) is the user's
to install; a missing one is a clear error.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

from musicgenre.errors import DataError

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(item: str | os.PathLike) -> bool:
    return bool(_URI.match(str(item)))


def is_remote(item: str | os.PathLike) -> bool:
    """A URI that is not ``file://``: read through fsspec."""
    return is_uri(item) and not str(item).lower().startswith("file://")


def to_path(item: str | os.PathLike):
    """A local ``Path`` for a path or a ``file://`` URI; a ``UPath`` for any other URI."""
    text = str(item) if not isinstance(item, Path) else None
    if text is None:
        return item
    if not is_uri(text):
        return Path(text)
    if not is_remote(text):
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise DataError(f"{text}: a file:// URI names a file on this machine (file:///path), not on {parsed.netloc}")
        return Path(unquote(parsed.path))
    try:
        from upath import UPath
    except ImportError:
        raise DataError(f"{text}: reading URIs needs universal_pathlib: pip install 'musicgenre[scale]'") from None
    try:
        path = UPath(text)
        path.fs  # noqa: B018  (opens the filesystem now: a missing package is this error, not a later one)
    except (ImportError, ValueError) as exc:  # e.g. s3:// without s3fs: "Install s3fs to access S3"
        raise DataError(f"{text}: cannot open this filesystem ({exc})") from None
    return path


def remote_files(folder) -> list:
    """Every file below a remote folder (one listing call, not one per file)."""
    fs = folder.fs
    return sorted(type(folder)(fs.unstrip_protocol(p), **folder.storage_options) for p in fs.find(folder.path))


@contextmanager
def local_copy(remote) -> Iterator[Path]:
    """A temporary local copy of a remote file, under the same file name; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="musicgenre-") as folder:
        local = Path(folder) / remote.name
        local.write_bytes(remote.read_bytes())
        yield local
