"""What each family computes from audio, per clip and condition: the study's views, cached on disk.

A view is what a served model computes from a clip before its head: the feature rows, the CNN's
log-mel inputs, the backbone's per-window embeddings (and each window's measured channel, which a
routed probe reads). They come from the served models' own window code, so a head fitted on them
answers as ``predict.window_outputs`` does on that audio (a test checks it), and they are the slow
part: computed once per clip content, condition, seed and preprocessing, so a rerun or another
fitting costs seconds.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgenre.audio.io import DEFAULT_MAX_SECONDS, load_audio, prepare_audio, windows
from musicgenre.data.gtzan import GENRES, label_from_path, labelled_files, track_id
from musicgenre.errors import AudioError, DataError, describe_failure
from musicgenre.study.robustness.catalogue import DEGRADE_RATE, STUDY_VERSION, Recipes, StudySettings, clip_seed
from musicgenre.util.cache import NpzCache, file_digest


def feature_view(y: np.ndarray, window: float, max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """A shallow model's feature rows (one per ``window`` seconds) of mono audio at DEGRADE_RATE, as
    ``predict_array`` computes them for it."""
    from musicgenre.families import FAMILIES
    from musicgenre.features.handcrafted import SAMPLE_RATE

    feature_rows = FAMILIES["shallow"].module("folder").feature_rows

    audio = prepare_audio(y, DEGRADE_RATE, SAMPLE_RATE, max_seconds=max_seconds).samples
    return feature_rows(windows(audio, SAMPLE_RATE, window), SAMPLE_RATE)


def degraded_feature_rows(
    path: str | os.PathLike, names: list[str], window: float, seed: int = 0, max_seconds: float = DEFAULT_MAX_SECONDS
) -> np.ndarray:
    """The feature rows of each named degraded copy of one file, with the study's per-clip randomness: what a
    feature model trained on degraded copies (the study's augmented variant, the bundled model) learns from."""
    from musicgenre.audio.degradations import DEGRADATIONS

    y = load_audio(path, sr=DEGRADE_RATE, max_seconds=max_seconds).samples
    seed = clip_seed(seed, track_id(Path(path).name))
    return np.vstack([feature_view(DEGRADATIONS[n](y, DEGRADE_RATE, seed), window, max_seconds) for n in names])


def views_of(y: np.ndarray, recipes: Recipes, backbone, max_seconds: float = DEFAULT_MAX_SECONDS) -> dict[str, np.ndarray]:
    """Per family, its per-window representation of mono audio at DEGRADE_RATE, by the served models' code.

    ``features``: one feature row per window; ``cnn``: the network's input batch; ``emb_<output>``:
    the backbone's per-window mean of each output (what ``musicnn.clip_embedding`` joins).
    """
    from musicgenre.families import FAMILIES
    from musicgenre.models.musicnn import OUTPUTS
    from musicgenre.models.musicnn import SAMPLE_RATE as PROBE_RATE

    cnn, robust_views = FAMILIES["cnn"].module(), FAMILIES["probe"].module("robust_views")
    CNN_RATE, window_inputs = cnn.SAMPLE_RATE, cnn.window_inputs  # noqa: N806 - the module's constant
    channels_of, embed_audio = robust_views.channels_of, robust_views.embed_audio

    def at(rate: int) -> np.ndarray:  # as predict_array prepares any upload for a model of that rate
        return prepare_audio(y, DEGRADE_RATE, rate, max_seconds=max_seconds).samples

    y_cnn, y_probe = at(CNN_RATE), at(PROBE_RATE)
    out = {
        "features": feature_view(y, recipes.shallow_window, max_seconds),
        "cnn": window_inputs(windows(y_cnn, CNN_RATE, recipes.cnn_window), recipes.cnn_window, CNN_RATE),
    }
    probe = embed_audio(y_probe, backbone, recipes.probe_normalise, recipes.probe_window)
    out.update({f"emb_{name}": probe[name] for name in OUTPUTS})
    out["probe_channel"] = channels_of(probe)  # what a routed probe reads per window
    return out


def cache_folder(cache_dir: str | os.PathLike, recipes: Recipes, seed: int, max_seconds: float = DEFAULT_MAX_SECONDS) -> Path:
    """Entries depend on the study version, the backbone's exact weights and runtime, the probe's preprocessing, the
    windows, the seed and how much of each file is read (runtime and length are named only when not the defaults).

    Within it an entry is keyed by file content; the degradations' seed comes from the track name, so a file with
    the same content as another (GTZAN has a few exact repeats) shares the first one's views.
    """
    from musicgenre.families import FAMILIES
    from musicgenre.models.musicnn import load_backbone

    PREPROCESS_VERSION = FAMILIES["probe"].trainer().PREPROCESS_VERSION  # noqa: N806 - the module's constant

    backbone = load_backbone()
    level = "norm" if recipes.probe_normalise else "raw"
    spans = f"{recipes.shallow_window:g}-{recipes.probe_window:g}-{recipes.cnn_window:g}"
    tag = f"v{STUDY_VERSION}-musicnn{backbone.config['onnx_sha256'][:12]}-p{PREPROCESS_VERSION}-{level}-w{spans}-s{seed}"
    if backbone.runtime != "onnxruntime":
        tag += f"-{backbone.runtime}"
    if max_seconds != DEFAULT_MAX_SECONDS:
        tag += f"-max{max_seconds:g}"
    return Path(cache_dir) / tag


def _digest(path: str | os.PathLike) -> str:
    return file_digest(path, 24)


def _compute_clip(job: tuple) -> tuple[str, dict[str, str] | str]:
    """Worker: every missing view of one clip; returns its path and the conditions that failed (and why), or
    why the clip itself cannot be decoded."""
    path, track, conditions, folder, recipes, seed, max_seconds = job
    from musicgenre.audio.degradations import DEGRADATIONS
    from musicgenre.models.musicnn import load_backbone

    cache, digest = NpzCache(Path(folder)), _digest(path)
    todo = [c for c in conditions if not cache.has(digest, c)]
    if not todo:
        return path, {}
    try:
        y = load_audio(path, sr=DEGRADE_RATE, max_seconds=max_seconds).samples
    except AudioError as exc:
        return path, describe_failure(exc)
    backbone = load_backbone()
    failed = {}
    for name in todo:
        try:
            degraded = DEGRADATIONS[name](y, DEGRADE_RATE, clip_seed(seed, track))
            views = views_of(degraded, recipes, backbone, max_seconds)
        except Exception as exc:  # e.g. no usable audio left, ffmpeg failing on this clip: recorded, the rest go on
            failed[name] = describe_failure(exc)
            continue
        cache.put(digest, name, arrays=views)
    return path, failed


@dataclass
class StudyData:
    """The clips of the study (in folder order), their labels and tracks, and where their views are cached."""

    paths: list[str]
    labels: np.ndarray
    tracks: np.ndarray
    conditions: list[str]
    folder: Path
    failed: dict[str, dict[str, str]] = field(default_factory=dict)  # path -> condition -> why
    unreadable: dict[str, str] = field(default_factory=dict)

    def view(self, i: int, condition: str) -> dict[str, np.ndarray] | None:
        """Clip ``i``'s views under ``condition``, or None if that condition failed for it."""
        return NpzCache(self.folder).get(_digest(self.paths[i]), condition)


def prepare(
    data_dir: str | os.PathLike,
    settings: StudySettings,
    recipes: Recipes,
    cache_dir: str | os.PathLike,
    progress=print,
) -> StudyData:
    """Decode-check every labelled clip and compute its missing views, ``settings.workers`` clips at a time."""
    from musicgenre.audio.degradations import select

    chosen, notices = select(settings.degradations)
    for notice in notices:
        progress(notice)
    conditions = ["clean", *[d.name for d in chosen if d.name != "clean"]]
    augment = settings.augmentations()
    missing = [a for a in augment if a not in conditions]
    if missing:
        raise DataError(f"augmentation condition(s) {missing} are not among the degradations run")
    files = labelled_files(data_dir)
    folder = cache_folder(cache_dir, recipes, settings.seed, settings.max_seconds)
    jobs = [(str(f), track_id(f.name), conditions, folder, recipes, settings.seed, settings.max_seconds) for f in files]
    failed, unreadable = {}, {}
    with ProcessPoolExecutor(settings.workers) if settings.workers > 1 else contextlib.nullcontext() as pool:
        try:
            for n, (path, bad) in enumerate((pool.map if pool else map)(_compute_clip, jobs), 1):
                (unreadable if isinstance(bad, str) else failed)[path] = bad
                progress(f"views {n}/{len(jobs)}: {Path(path).name}")
        except BaseException:
            if pool:  # stop now (finished views stay cached), not after every queued clip
                pool.shutdown(wait=False, cancel_futures=True)
            raise
    readable = [f for f in files if str(f) not in unreadable]
    return StudyData(
        [str(f) for f in readable],
        np.array([GENRES.index(label_from_path(f)) for f in readable]),
        np.array([track_id(f.name) for f in readable]),
        conditions,
        folder,
        {p: b for p, b in failed.items() if b},
        unreadable,
    )


class ViewStore:
    """The study's views, read from the cache once and kept in memory (all of GTZAN-mini's: ~1 GB)."""

    def __init__(self, data: StudyData):
        self.data, self._memo = data, {}

    def __call__(self, i: int, condition: str) -> dict[str, np.ndarray] | None:
        key = (i, condition)
        if key not in self._memo:
            self._memo[key] = self.data.view(i, condition)
        return self._memo[key]

    def items(self, train: np.ndarray, conditions: list[str]) -> list[tuple[int, dict]]:
        """(clip, views) of the training clips under each condition that has views (clean first)."""
        return [(i, v) for c in conditions for i in train if (v := self(i, c)) is not None]
