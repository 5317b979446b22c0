"""Pretrained-backbone embeddings of a music collection as a Parquet table (``musicgenre embed``).

One row per file: ``path`` (as given, or a URI), the genre its path names (``label``, "" if none), its GTZAN
``track`` id, the decoded ``seconds``, the number of 3 s ``patches`` and ``embedding``, the mean over
those patches of one backbone layer (``musicnn.LAYERS``; default the bundled probe's, ``mean_pool``) as a
fixed-size float32 list. ``datasets.load_dataset("parquet", data_files=...)`` and pandas read it as it is,
and ``families.probe.train.embedded_table`` turns it back into the probe's training data.

The table is built like the feature table (``util.resumable``): resumable, saved atomically, unreadable files
listed and never fatal. What made the embeddings (backbone and the SHA-256 of its ONNX file, layer, level
normalisation, length cap) is stored in the Parquet schema's metadata, and a rerun that would mix in other
embeddings is refused. With ``--ray`` the files are embedded by Ray actors that each hold the backbone
(``_EmbedActor``, here rather than in ``models.cluster``: each needed the other).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from musicgenre.audio.io import DEFAULT_MAX_SECONDS, load_audio
from musicgenre.data.gtzan import find_audio_files, label_from_path, track_id
from musicgenre.errors import DataError, MusicGenreError, describe_failure
from musicgenre.models.musicnn import DEFAULT_BACKBONE, LAYERS, SAMPLE_RATE, clip_embedding, load_backbone
from musicgenre.util.atomic import remove_stale_temporaries
from musicgenre.util.parquet import META_KEY, read_own_table, write_table_atomic
from musicgenre.util.resumable import ExtractionReport, fill_table

if TYPE_CHECKING:
    from musicgenre.util.cluster import Engine


@dataclass(frozen=True)
class EmbeddingSettings:
    backbone: str = DEFAULT_BACKBONE
    layer: str = "mean_pool"
    normalise: bool = True
    max_seconds: float = DEFAULT_MAX_SECONDS

    def check(self) -> None:
        if self.layer not in LAYERS:
            raise MusicGenreError(f"unknown embedding layer {self.layer!r}; choose from {', '.join(LAYERS)}")

    def identity(self) -> dict:
        """What decides the numbers in a table: these settings and the backbone's exact ONNX file."""
        return {**asdict(self), "backbone_onnx_sha256": load_backbone(self.backbone).config["onnx_sha256"]}


class Embedder:
    """One loaded backbone; a file's table row per call (a Ray actor holds one of these)."""

    def __init__(self, settings: EmbeddingSettings):
        settings.check()
        self.settings, self.backbone = settings, load_backbone(settings.backbone)

    def row(self, path) -> dict:
        audio = load_audio(path, sr=SAMPLE_RATE, max_seconds=self.settings.max_seconds)
        per_patch = self.backbone.analyse(audio.samples, self.settings.normalise)
        return {
            "path": str(path),
            "label": label_from_path(path),
            "track": track_id(str(path)),
            "seconds": audio.seconds,
            "patches": len(per_patch["tags"]),
            "embedding": clip_embedding(per_patch, self.settings.layer),
        }

    def result(self, path) -> tuple[object, list[dict] | None, str | None]:
        """``(path, [row], None)``, or ``(path, None, error)`` for a file that cannot be embedded."""
        try:
            return path, [self.row(path)], None
        except Exception as exc:  # one bad file is listed and skipped, never fatal to the batch
            return path, None, describe_failure(exc)


def read_embeddings(out: Path, identity: dict) -> list[dict]:
    """Rows already in the table at ``out``, refused if they were made with other settings or another backbone."""
    if not out.exists():
        return []
    table = read_own_table(out, "an embedding table", "embedding", identity)
    width = table.schema.field("embedding").type.list_size
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, width)
    rows = table.drop_columns(["embedding"]).to_pylist()
    for row, vector in zip(rows, vectors, strict=True):
        row["embedding"] = vector
    return rows


def write_embeddings_atomic(out: Path, rows: list[dict], identity: dict, width: int) -> None:
    """Replace the table at ``out`` with ``rows`` in one atomic step."""
    import pyarrow as pa

    vectors = np.stack([r["embedding"] for r in rows]).astype(np.float32) if rows else np.zeros((0, width), np.float32)
    schema = pa.schema(
        [
            ("path", pa.string()),
            ("label", pa.string()),
            ("track", pa.string()),
            ("seconds", pa.float64()),
            ("patches", pa.int32()),
            ("embedding", pa.list_(pa.float32(), width)),
        ],
        metadata={META_KEY: json.dumps(identity)},
    )
    columns = {name: [r[name] for r in rows] for name in schema.names[:-1]}
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), width)
    write_table_atomic(out, pa.Table.from_pydict({**columns, "embedding": embedding}, schema=schema))


def _local_results(todo: list, settings: EmbeddingSettings) -> Iterator[tuple[object, list[dict] | None, str | None]]:
    embedder = Embedder(settings)
    for path in todo:
        yield embedder.result(path)


def embed_inputs(
    inputs: list[str],
    out: str | os.PathLike,
    settings: EmbeddingSettings = EmbeddingSettings(),
    progress: bool = True,
    save_every: float = 10.0,
    cluster: str | None = None,
    workers: int | None = None,
    ray_engine: Engine = "core",
) -> ExtractionReport:
    """Files, folders and lists of paths (local or URIs) to the embedding table at ``out`` (``.parquet``), skipping
    files it already holds. ``cluster``: a Ray address, or "" for ``RAY_ADDRESS`` or a local Ray instance;
    ``ray_engine``: how the cluster maps (``util.cluster.run_per_path``'s ``engine``)."""
    settings.check()
    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise DataError(f"{out}: embedding tables are Parquet files; name it *.parquet")
    files = find_audio_files(inputs)
    if not files:
        raise MusicGenreError(f"no audio files found in {', '.join(map(str, inputs))}")
    if cluster is not None:  # join the cluster first: a refused connection leaves no table behind
        from musicgenre.util.cluster import connect

        connect(cluster or None)
    identity = settings.identity()
    remove_stale_temporaries(out)
    rows = read_embeddings(out, identity)
    done = {r["path"] for r in rows}
    report = ExtractionReport()
    todo = [p for p in files if str(p) not in done]
    report.skipped = len(files) - len(todo)
    if cluster is None:
        results = _local_results(todo, settings)
    else:
        results = embedding_results(todo, settings, cluster or None, workers, ray_engine)
    backbone = load_backbone(settings.backbone)
    width = sum(backbone.config["embeddings"][name] for name in LAYERS[settings.layer])

    def save(rows: list[dict]) -> None:
        write_embeddings_atomic(out, rows, identity, width)

    return fill_table(results, rows, save, out, report, len(todo), save_every, progress, desc="embeddings")


class _EmbedActor:
    """A Ray actor holding one backbone: each file's embedding-table row (the vector as float32 bytes, exact)."""

    def __init__(self, settings: dict):
        self.embedder = Embedder(EmbeddingSettings(**settings))

    def __call__(self, batch: dict) -> dict:
        from musicgenre.util.uri import to_path

        out = {"path": list(batch["path"]), "row": [], "vector": [], "error": []}
        for path in batch["path"]:
            _, rows, error = self.embedder.result(to_path(path))
            row = rows[0] if rows else {}
            out["vector"].append(row.pop("embedding").tobytes() if rows else b"")
            out["row"].append(json.dumps(row))
            out["error"].append(error or "")
        return out


def embedding_results(
    todo: list,
    settings: EmbeddingSettings,
    address: str | None = None,
    workers: int | None = None,
    ray_engine: Engine = "core",
) -> Iterator[tuple]:
    """Each file's ``(path, rows, error)`` as ``embed_inputs`` takes them, computed on the cluster by ``_EmbedActor``s
    (``ray_engine``: as ``util.cluster.run_per_path``'s ``engine``), in the order of ``todo``."""
    from musicgenre.util.cluster import run_per_path

    by_name = {str(p): p for p in todo}
    settings_kwargs = {"settings": asdict(settings)}
    for out in run_per_path(list(by_name), _EmbedActor, settings_kwargs, address, workers, ray_engine):
        if out["error"]:
            yield by_name[out["path"]], None, out["error"]
            continue
        row = json.loads(out["row"])
        row["embedding"] = np.frombuffer(out["vector"], dtype=np.float32).copy()
        yield by_name[out["path"]], [row], None
