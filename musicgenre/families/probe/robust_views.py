"""Per clip, the musicnn embeddings of its clean audio, its random training copies and its evaluation conditions.

What the robust probe (``families.probe.robust``) trains and is scored on, computed once and cached on
disk per clip and view, keyed by the file's content. A view holds, per 30-second window (the served
probe's window), the mean over the window's 3-second patches of each backbone output: what
``musicnn.clip_embedding`` takes. Three kinds of view:

- ``clean``: the clip as it is;
- ``wide<j>`` / ``narrow<j>``: the j-th random training copy of a family of ``audio.augment``
  (audiomentations chains), made at the backbone's 16 kHz;
- any name of ``audio.degradations.DEGRADATIONS``: an evaluation condition (pedalboard, scipy, ffmpeg),
  made at 22,050 Hz like the robustness study, with its own seed.

Training copies and evaluation conditions draw from different generators and seeds, so a score on
a condition never rewards having trained on that very recipe.
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from musicgenre.audio.io import load_audio, prepare_audio, windows
from musicgenre.errors import describe_failure
from musicgenre.util.cache import NpzCache, file_digest

VIEWS_VERSION = 5  # bump when what a view holds, or how a copy is made, changes: old entries are then ignored
DEGRADE_RATE = 22050
TRAIN_SEED_BASE = 0  # training copies: seeds from (TRAIN_SEED_BASE, track, j)
EVAL_SEED = 7919  # evaluation conditions: another seed stream altogether


QUALITY_FIELDS = ("low_hz", "high_hz", "snr_db", "level_dbfs", "speech_fraction")


def view_seed(base: int, track: str, j: int = 0) -> int:
    return zlib.crc32(f"{base}:{track}:{j}".encode())


def cache_folder(cache_dir: str | os.PathLike) -> Path:
    from musicgenre.families.probe.train import PREPROCESS_VERSION
    from musicgenre.models.musicnn import load_backbone

    backbone = load_backbone()
    return (
        Path(cache_dir) / f"robust-v{VIEWS_VERSION}-{backbone.name}-{backbone.config['onnx_sha256'][:12]}-p{PREPROCESS_VERSION}"
    )


def _digest(path: str) -> str:
    """A clip's key in the cache: its content, so a renamed or moved file keeps its views."""
    return file_digest(path, 24)


def embed_audio(y16: np.ndarray, backbone, normalise: bool = True, window_seconds: float = 30.0) -> dict[str, np.ndarray]:
    """Per window (the served probe's 30 s), the patch mean of every backbone output, as the probe computes it, and
    the window's measured quality (``quality_<field>``: what the routed probe reads). The robustness study's probe
    views are these too."""
    from musicgenre.audio.quality import assess
    from musicgenre.models.musicnn import OUTPUTS, SAMPLE_RATE

    parts = windows(y16, SAMPLE_RATE, window_seconds)
    analysed = [backbone.analyse(w, normalise) for w in parts]
    out = {name: np.stack([a[name].mean(axis=0) for a in analysed]) for name in OUTPUTS}
    measured = [assess(w, SAMPLE_RATE) for w in parts]
    for name in QUALITY_FIELDS:
        out[f"quality_{name}"] = np.array([getattr(q, name) for q in measured])
    return out


def channels_of(view: dict[str, np.ndarray]) -> np.ndarray:
    """(windows, 3): each window's low_hz, high_hz and snr_db, what ``families.probe.model.route`` takes."""
    return np.stack([view[f"quality_{k}"] for k in ("low_hz", "high_hz", "snr_db")], axis=1)


def make_view(y22: np.ndarray, view: str, track: str) -> np.ndarray:
    """The 16 kHz audio of one view of a clip decoded at 22,050 Hz."""
    from musicgenre.audio.augment import KINDS, augmented
    from musicgenre.audio.degradations import DEGRADATIONS
    from musicgenre.models.musicnn import SAMPLE_RATE

    kind = view.rstrip("0123456789")
    if kind in KINDS and view != kind:
        y16 = prepare_audio(y22, DEGRADE_RATE, SAMPLE_RATE).samples
        return augmented(y16, SAMPLE_RATE, kind, view_seed(TRAIN_SEED_BASE, track, int(view[len(kind) :])))
    degraded = DEGRADATIONS[view](y22, DEGRADE_RATE, view_seed(EVAL_SEED, track))
    return prepare_audio(degraded, DEGRADE_RATE, SAMPLE_RATE).samples


def _compute(job: tuple) -> tuple[str, dict[str, str]]:
    path, track, views, folder = job
    from musicgenre.models.musicnn import load_backbone

    cache, digest = NpzCache(Path(folder)), _digest(path)
    todo = [v for v in views if not cache.has(digest, v)]
    if not todo:
        return path, {}
    y22 = load_audio(path, sr=DEGRADE_RATE).samples
    backbone, failed = load_backbone(), {}
    for view in todo:
        try:
            out = embed_audio(make_view(y22, view, track), backbone)
        except Exception as exc:  # one condition failing on one clip is recorded; the rest go on
            failed[view] = describe_failure(exc)
            continue
        cache.put(digest, view, arrays=out)
    return path, failed


def compute_views(paths: list[str], tracks: list[str], views: list[str], cache_dir, workers: int = 2, progress=print) -> dict:
    """Compute every missing view of every clip (``workers`` clips at a time); returns {path: {view: why}} for failures."""
    folder = cache_folder(cache_dir)
    jobs = [(p, t, views, folder) for p, t in zip(paths, tracks, strict=True)]
    failed = {}
    with ProcessPoolExecutor(workers) as pool:
        for n, (path, bad) in enumerate(pool.map(_compute, jobs), 1):
            if bad:
                failed[path] = bad
            progress(f"views {n}/{len(jobs)}: {Path(path).name}")
    return failed


def load_view(cache_dir, path: str, view: str) -> dict[str, np.ndarray] | None:
    return NpzCache(cache_folder(cache_dir)).get(_digest(path), view)
