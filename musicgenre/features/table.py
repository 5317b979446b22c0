"""Write feature tables in the public GTZAN schema: parallel over clips, resumable, atomic.

A long extraction can be interrupted at any point: the table on disk is always complete
(rows are written by atomic replace) and a re-run skips the clips it already holds.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from musicgenre.data.gtzan import find_audio_files, track_id
from musicgenre.errors import DataError, MusicGenreError
from musicgenre.features import jitcache
from musicgenre.features.handcrafted import FEATURE_COLUMNS, TABLE_COLUMNS
from musicgenre.features.rows import clip_rows, file_rows, row_names
from musicgenre.util.atomic import atomic_open, remove_stale_temporaries
from musicgenre.util.parquet import pyarrow_parquet, read_own_table, write_table_atomic
from musicgenre.util.resumable import ExtractionReport, fill_table

if TYPE_CHECKING:
    import pandas as pd

    from musicgenre.util.cluster import Engine

__all__ = ["clip_rows", "extract_inputs", "extract_table", "load_feature_table", "read_rows", "row_names", "write_rows_atomic"]


def _init_worker() -> None:
    # One BLAS/OpenMP thread per process: the pool already fills the cores.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _parquet(out: Path) -> bool:
    return out.suffix.lower() == ".parquet"


def read_rows(out: Path) -> list[dict]:
    """Rows already in the table at ``out`` (CSV, or Parquet by its suffix); a file that is not such a table is
    left alone, with an error."""
    if not out.exists():
        return []
    if _parquet(out):
        return read_own_table(out, "a feature table (no 'filename' column)", "filename").to_pylist()
    try:
        with out.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{out}: exists but cannot be read as a feature table ({exc}); choose another --out") from None
    if reader.fieldnames is not None and "filename" not in reader.fieldnames:
        raise DataError(f"{out}: exists but is not a feature table (no 'filename' column); choose another --out")
    return rows


def write_rows_atomic(out: Path, rows: Iterable[dict]) -> None:
    """Replace the table at ``out`` with ``rows`` in one atomic step: CSV, or Parquet (by the suffix: typed columns
    that ``datasets.load_dataset("parquet", ...)`` and pandas read as they are) for large tables."""
    if _parquet(out):
        import pyarrow as pa

        columns = {c: [r.get(c) for r in rows] for c in TABLE_COLUMNS} if (rows := list(rows)) else {}
        schema = pa.schema(
            [("filename", pa.string()), ("length", pa.int64())]
            + [(c, pa.float64()) for c in TABLE_COLUMNS[2:-1]]
            + [("label", pa.string())]
        )
        write_table_atomic(out, pa.Table.from_pydict({c: columns.get(c, []) for c in TABLE_COLUMNS}, schema=schema))
        return
    with atomic_open(out, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TABLE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def extract_inputs(
    inputs: list[str],
    out: str | os.PathLike,
    segment_seconds: float | None = None,
    workers: int | None = None,
    progress: bool = True,
    save_every: float = 10.0,
    librosa: bool = False,
    cluster: str | None = None,
    ray_engine: Engine = "core",
) -> ExtractionReport:
    """Files and dataset folders to a feature table (what ``musicgenre features`` runs)."""
    files = find_audio_files(inputs)
    if not files:
        raise MusicGenreError(f"no audio files found in {', '.join(map(str, inputs))}")
    return extract_table(files, out, segment_seconds, workers, progress, save_every, librosa, cluster, ray_engine)


def _results(
    todo: list[Path], segment_seconds: float | None, workers: int, librosa: bool
) -> Iterator[tuple[Path, list[dict] | None, str | None]]:
    """Each clip's rows, in order. With ``librosa``, workers start only once the numba cache is whole (they
    compile nothing).

    A pool whose worker dies (a signal: with ``librosa`` a broken cache, or just the OOM killer) has
    the clips not yet done retried, with ``librosa`` after the cache is checked, and rebuilt if
    broken; a second death rebuilds it regardless, a third is an error.
    """
    jobs = [(p, segment_seconds, librosa) for p in todo]
    if librosa:
        jitcache.ensure_ready()
    if workers <= 1 or len(todo) <= 1:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # as in the pool's workers (and Ray's actors): the same values, bit for bit
            yield from map(file_rows, jobs)
        return
    done = 0
    for deaths in range(3):
        try:
            with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
                for result in pool.map(file_rows, jobs[done:], chunksize=1):
                    done += 1
                    yield result
            return
        except BrokenProcessPool:
            if deaths == 2:
                raise MusicGenreError("feature-extraction workers died three times; see the messages above") from None
            if librosa:
                jitcache.heal("a feature-extraction worker died", rebuild=deaths == 1)
            else:
                print("musicgenre: a feature-extraction worker died; retrying the clips not yet done", file=sys.stderr)


def extract_table(
    files: list[Path],
    out: str | os.PathLike,
    segment_seconds: float | None = None,
    workers: int | None = None,
    progress: bool = True,
    save_every: float = 10.0,
    librosa: bool = False,
    cluster: str | None = None,
    ray_engine: Engine = "core",
) -> ExtractionReport:
    """Add the feature rows of ``files`` to the table at ``out``, skipping clips already there.

    ``cluster`` (a Ray address, or "" for ``RAY_ADDRESS`` or else a local Ray instance) computes the rows
    on a Ray cluster (``musicgenre.features.cluster``; ``workers`` tasks at a time, default one per CPU there) instead
    of a local process pool (``workers`` processes, default one per core); everything else is the same.
    ``ray_engine`` is how the cluster maps (``util.cluster.run_per_path``'s ``engine``: "core", or "data").

    ``librosa`` computes each feature with librosa's own calls, as the public notebooks did (~2x
    slower; a check of the NumPy code's values on one's own data).

    Finished rows are saved (atomically) at most every ``save_every`` seconds and at the end, so
    a killed run loses at most that much work and a re-run picks up where it stopped.
    """
    if segment_seconds is not None and not segment_seconds > 0:
        raise DataError(f"segment length must be positive, got {segment_seconds:g} s")
    if cluster is not None:  # join the cluster first: a refused connection leaves no table behind
        from musicgenre.util.cluster import connect

        connect(cluster or None)
    out = Path(out)
    remove_stale_temporaries(out)  # a killed run's half-written save; the table itself is always whole
    rows = read_rows(out)
    done = {r["filename"] for r in rows}
    report = ExtractionReport()
    todo, first_of = [], {}
    for p in files:
        name = row_names(p, segment_seconds, 1)[0]
        if first_of.get(name) == p:  # the same file given twice
            continue
        if name in first_of:  # rows are named by file name, so a second file of that name would be lost
            report.failed[str(p)] = f"same file name as {first_of[name]}; the table names rows by file name"
        elif name in done:
            report.skipped += 1
        else:
            todo.append(p)
        first_of.setdefault(name, p)
    if cluster is None:
        results = _results(todo, segment_seconds, workers or os.cpu_count() or 1, librosa)
    else:
        from musicgenre.features.cluster import feature_results

        results = feature_results(todo, segment_seconds, librosa, cluster or None, workers, ray_engine)
    save = partial(write_rows_atomic, out)
    return fill_table(results, rows, save, out, report, len(todo), save_every, progress, desc="features")


def load_feature_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table in the public GTZAN schema (CSV, or the Parquet table ``musicgenre features`` writes), with a
    ``track`` column added for grouping."""
    path = Path(path)
    try:
        import pandas as pd

        if _parquet(path):
            pyarrow_parquet()  # a DataError with the install hint when pyarrow is missing
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path)
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"{path}: cannot read the feature table ({exc})") from None
    missing = [c for c in ["filename", *FEATURE_COLUMNS] if c not in table.columns]
    if missing:
        raise DataError(f"{path}: not a GTZAN feature table; missing columns {missing[:5]}")
    bad = table[FEATURE_COLUMNS].isna().any(axis=1)
    if bad.any():
        raise DataError(f"{path}: {int(bad.sum())} rows have empty feature values, e.g. {table.filename[bad].iloc[0]}")
    table["track"] = table["filename"].map(track_id)
    return table
