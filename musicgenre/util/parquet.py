"""Parquet tables the commands write (features, embeddings, predictions) and lists of paths: pyarrow with its
install hint, atomic writes, and the settings a table was made with kept in its schema's metadata, so that a
rerun never mixes rows made differently into it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from musicgenre.errors import DataError
from musicgenre.util.atomic import atomic_open

META_KEY = b"musicgenre"


def pyarrow_parquet():
    """``pyarrow.parquet`` (Ray's extra brings it), or a DataError saying what to install."""
    try:
        import pyarrow.parquet
    except ImportError:
        raise DataError("Parquet files need pyarrow: pip install 'musicgenre[scale]'") from None
    return pyarrow.parquet


def write_table_atomic(out: str | os.PathLike, table) -> None:
    """Replace the Parquet file at ``out`` with ``table`` in one atomic step."""
    pq = pyarrow_parquet()
    with atomic_open(out, binary=True) as f:
        pq.write_table(table, f)


def read_own_table(out: Path, kind: str, column: str, identity: dict | None = None):
    """The table at ``out`` if it is one of ours of this ``kind`` ("an embedding table": it has ``column``) made with
    ``identity`` (the settings stored in its metadata); else a DataError telling the user to choose another ``--out``."""
    import pyarrow as pa

    try:
        table = pyarrow_parquet().read_table(out)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{out}: exists but cannot be read as a Parquet table ({exc}); choose another --out") from None
    meta = table.schema.metadata or {}
    if column not in table.column_names or (identity is not None and META_KEY not in meta):
        raise DataError(f"{out}: exists but is not {kind}; choose another --out")
    if identity is not None:
        stored = json.loads(meta[META_KEY])
        changed = {k: (stored.get(k), v) for k, v in identity.items() if stored.get(k) != v}
        if changed:
            detail = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise DataError(f"{out}: {kind} made differently ({detail}); choose another --out")
    return table
