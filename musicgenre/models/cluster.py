"""``musicgenre predict --ray``: each file's JSON line computed on a Ray cluster (``util.cluster``) by actors
that each load the model once."""

from __future__ import annotations

import json
from collections.abc import Iterator

from musicgenre.util.cluster import run_per_path


class _Predictor:
    """A Ray actor holding one loaded model: one file's ``predict`` line per call, as the local loop prints it."""

    def __init__(self, model: str, revision: str | None, max_seconds: float, tags: int):
        from musicgenre.models.io import resolve_model

        self.model, self.max_seconds, self.tags = resolve_model(model, revision), max_seconds, tags

    def __call__(self, batch: dict) -> dict:
        from musicgenre.models.predict import predict_line

        lines = [json.dumps(predict_line(self.model, path, self.max_seconds, self.tags)) for path in batch["path"]]
        return {"path": list(batch["path"]), "line": lines}


def predict_lines(
    files: list[str],
    model: str,
    revision: str | None = None,
    max_seconds: float = 600.0,
    tags: int = 0,
    address: str | None = None,
    workers: int | None = None,
) -> Iterator[dict]:
    """``musicgenre predict``'s line for each file, computed on the cluster, in the order of ``files``."""
    kwargs = {"model": model, "revision": revision, "max_seconds": max_seconds, "tags": tags}
    for row in run_per_path(list(files), _Predictor, kwargs, address, workers):
        yield json.loads(row["line"])


class _EmbedActor:
    """A Ray actor holding one backbone: each file's embedding-table row (the vector as float32 bytes, exact)."""

    def __init__(self, settings: dict):
        from musicgenre.models.embeddings import Embedder, EmbeddingSettings

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


def embedding_results(todo: list, settings, address: str | None = None, workers: int | None = None) -> Iterator[tuple]:
    """Each file's ``(path, rows, error)`` as ``embeddings.embed_inputs`` takes them, computed on the cluster, in the
    order of ``todo``."""
    from dataclasses import asdict

    import numpy as np

    by_name = {str(p): p for p in todo}
    for out in run_per_path(list(by_name), _EmbedActor, {"settings": asdict(settings)}, address, workers):
        if out["error"]:
            yield by_name[out["path"]], None, out["error"]
            continue
        row = json.loads(out["row"])
        row["embedding"] = np.frombuffer(out["vector"], dtype=np.float32).copy()
        yield by_name[out["path"]], [row], None
