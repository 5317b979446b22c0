"""``musicgenre predict --out x.parquet``: a large collection's predictions as a Parquet table.

One row per classified file, with the JSON line's fields as typed columns: ``file``, ``genre``, ``scores``
(a struct with one float64 field per genre), ``windows``, ``truncated``, ``uncertain``, ``quality`` (a struct of
the recording's measurements, issue codes and notes) and, with ``--tags``, ``tags`` (a list
of ``{tag, probability}``). ``datasets.load_dataset("parquet", ...)`` and pandas read it as it is. Built like
the feature table (``util.resumable``): resumable, saved atomically, files that cannot be classified listed
(and retried by a rerun). The model and settings are stored in the schema's metadata; a rerun with another
model is refused rather than mixed in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from musicgenre.errors import DataError
from musicgenre.util.atomic import remove_stale_temporaries
from musicgenre.util.parquet import META_KEY, read_own_table, write_table_atomic
from musicgenre.util.resumable import ExtractionReport, fill_table

if TYPE_CHECKING:
    from musicgenre.util.cluster import Engine

# ``audio.quality.Quality.to_dict``'s fields: measurements, then the issues' codes and plain-language notes
_QUALITY_FLOATS = ("duration_s", "level_dbfs", "peak_dbfs", "clipped_fraction", "crest_db", "silence_fraction")
_QUALITY_MORE = ("snr_db", "noise_floor_dbfs", "speech_fraction")


def _quality_type(pa):
    fields = [(name, pa.float64()) for name in _QUALITY_FLOATS]
    fields += [("low_hz", pa.int64()), ("high_hz", pa.int64())] + [(name, pa.float64()) for name in _QUALITY_MORE]
    fields += [("issues", pa.list_(pa.string())), ("notes", pa.list_(pa.string())), ("severe", pa.bool_())]
    return pa.struct(fields)


def _schema(labels: list[str], tags: bool, identity: dict):
    import pyarrow as pa

    fields = [
        ("file", pa.string()),
        ("genre", pa.string()),
        ("scores", pa.struct([(label, pa.float64()) for label in labels])),
        ("windows", pa.int32()),
        ("truncated", pa.bool_()),
        ("uncertain", pa.bool_()),
        ("quality", _quality_type(pa)),
    ]
    if tags:
        fields.append(("tags", pa.list_(pa.struct([("tag", pa.string()), ("probability", pa.float64())]))))
    return pa.schema(fields, metadata={META_KEY: json.dumps(identity)})


def read_predictions(out: Path, identity: dict) -> list[dict]:
    """Rows already in the table at ``out``; refused if another model or other settings made them."""
    if not out.exists():
        return []
    return read_own_table(out, "a prediction table", "scores", identity).to_pylist()


def write_predictions_atomic(out: Path, rows: list[dict], labels: list[str], tags: bool, identity: dict) -> None:
    import pyarrow as pa

    schema = _schema(labels, tags, identity)
    rows = [{**r, "truncated": bool(r.get("truncated", False))} for r in rows]
    write_table_atomic(out, pa.Table.from_pylist(rows, schema=schema))


def predict_to_table(
    files: list[str],
    out: str | os.PathLike,
    model_name: str,
    revision: str | None,
    max_seconds: float,
    tags: int,
    cluster: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    save_every: float = 10.0,
    *,
    load,
    ray_engine: Engine = "core",
) -> ExtractionReport:
    """Classify ``files`` into the table at ``out``, skipping files it holds; on a Ray cluster if ``cluster`` is
    given (an address, or ""), mapped by ``ray_engine`` (``util.cluster.run_per_path``'s ``engine``). ``load``
    (``musicgenre.families.resolve_model``) loads the model ``model_name`` names."""
    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise DataError(f"{out}: prediction tables are Parquet files; name it *.parquet (or leave --out out for JSON lines)")
    if cluster is not None:
        from musicgenre.util.cluster import connect

        connect(cluster or None)
    model = load(model_name, revision)  # the labels, and the local path's model
    identity = {"model": model_name, "revision": revision, "max_seconds": max_seconds, "tags": tags, "labels": model.labels}
    remove_stale_temporaries(out)
    rows = read_predictions(out, identity)
    done = {r["file"] for r in rows}
    todo = list(dict.fromkeys(f for f in map(str, files) if f not in done))
    report = ExtractionReport(skipped=len(set(map(str, files)) & done))
    if cluster is None:
        from musicgenre.models.predict import predict_line

        lines: Iterator[dict] = (predict_line(model, path, max_seconds, tags) for path in todo)
    else:
        from musicgenre.models.cluster import predict_lines

        lines = predict_lines(
            todo, model_name, revision, max_seconds, tags, cluster or None, workers, load=load, ray_engine=ray_engine
        )
    results = ((line["file"], None if "error" in line else [line], line.get("error")) for line in lines)

    def save(rows: list[dict]) -> None:
        write_predictions_atomic(out, rows, model.labels, bool(tags), identity)

    return fill_table(results, rows, save, out, report, len(todo), save_every, progress, desc="predict")
