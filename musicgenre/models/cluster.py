"""``musicgenre predict --ray``: each file's JSON line computed on a Ray cluster (``util.cluster``) by actors
that each load the model once. (``embed --ray``'s actors live beside the table they fill, in ``embeddings``.)"""

from __future__ import annotations

import json
from collections.abc import Iterator

from musicgenre.util.cluster import Engine, run_per_path


class _Predictor:
    """A Ray actor holding one loaded model: one file's ``predict`` line per call, as the local loop prints it."""

    def __init__(self, model: str, revision: str | None, max_seconds: float, tags: int, load):
        self.model, self.max_seconds, self.tags = load(model, revision), max_seconds, tags

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
    *,
    load,
    ray_engine: Engine = "core",
) -> Iterator[dict]:
    """``musicgenre predict``'s line for each file, computed on the cluster, in the order of ``files``; ``load``
    (``musicgenre.families.resolve_model``, passed down from the entry point) loads the model in each actor.
    ``ray_engine``: as ``util.cluster.run_per_path``'s ``engine``."""
    kwargs = {"model": model, "revision": revision, "max_seconds": max_seconds, "tags": tags, "load": load}
    for row in run_per_path(list(files), _Predictor, kwargs, address, workers, ray_engine):
        yield json.loads(row["line"])
