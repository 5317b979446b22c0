"""The pretrained-probe family of the study: cached musicnn embeddings, nested cross-validation, the bundled head.

Per clip, the backbone's per-patch outputs are computed once and cached on disk, keyed by the
file's content, the backbone's ONNX file and the level normalisation, so reruns cost seconds.
Nested CV: inside each outer training fold, an inner CV picks the embedding layer (see
``musicnn.LAYERS``) and the regression's C; the outer test fold only scores. Outer folds are the
CNN's (``splits.kfold`` with the same seed), so the two families are scored on the same splits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgenre.data.gtzan import GENRES, label_from_path, labelled_files, track_id
from musicgenre.data.splits import artist_proxy_groups, filtered_part, kfold, max_folds
from musicgenre.errors import AudioError, DataError, describe_failure
from musicgenre.models.musicnn import (
    DEFAULT_BACKBONE,
    GENRE_TAGS,
    LAYERS,
    OUTPUTS,
    SAMPLE_RATE,
    TARGET_RMS,
    clip_embedding,
    load_backbone,
)
from musicgenre.util.cache import NpzCache, file_digest


@dataclass
class ProbeSettings:
    backbone: str = field(default=DEFAULT_BACKBONE, metadata={"help": "MSD_musicnn or MTT_musicnn"})
    normalise: bool = field(default=True, metadata={"help": "scale each clip to -20 dBFS RMS before the backbone"})
    layers: list[str] = field(default_factory=lambda: list(LAYERS), metadata={"help": "embedding layers to choose from"})
    c_grid: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0], metadata={"help": "logistic C values"})
    folds: int = field(default=5, metadata={"help": "outer folds"})
    inner_folds: int = field(default=3, metadata={"help": "inner folds that choose layer and C"})
    seed: int = 0


@dataclass
class Embedded:
    """Every readable clip's per-patch backbone outputs, labels and track ids."""

    outputs: list[dict[str, np.ndarray]]
    labels: np.ndarray
    tracks: np.ndarray
    failed: dict[str, str]

    def matrix(self, layer: str, idx: np.ndarray | None = None) -> np.ndarray:
        idx = np.arange(len(self.outputs)) if idx is None else idx
        return np.stack([clip_embedding(self.outputs[i], layer) for i in idx])


# Bump when the audio -> patches preprocessing changes (level, mel, patching): old cache entries are then ignored.
PREPROCESS_VERSION = 1


def _cache(cache_dir: str | os.PathLike, backbone, normalise: bool) -> NpzCache:
    """Per backbone weights and runtime, preprocessing and level setting; an entry is keyed by the file's content."""
    level = f"rms{TARGET_RMS:g}" if normalise else "raw"
    tag = f"{backbone.name}-{backbone.config['onnx_sha256'][:12]}-{backbone.runtime}-p{PREPROCESS_VERSION}-{level}"
    return NpzCache(Path(cache_dir) / tag)


def embed_file(path: str | os.PathLike, backbone, normalise: bool, cache_dir: str | os.PathLike | None) -> dict:
    """Per-patch outputs of one file, from the cache if this content was embedded before."""
    from musicgenre.audio.io import load_audio

    cache = _cache(cache_dir, backbone, normalise) if cache_dir else None
    digest = file_digest(path) if cache is not None else ""
    if cache is not None and (cached := cache.get(digest)) is not None:
        return {k: cached[k] for k in OUTPUTS}
    out = backbone.analyse(load_audio(path, sr=SAMPLE_RATE).samples, normalise)
    if cache is not None:
        cache.put(digest, arrays=out)
    return out


def embed_folder(data_dir: str | os.PathLike, settings: ProbeSettings, cache_dir: str | os.PathLike | None) -> Embedded:
    """Every labelled clip of a GTZAN-like folder through the backbone; unreadable ones are listed, not fatal."""
    from tqdm.auto import tqdm

    backbone = load_backbone(settings.backbone)
    files = labelled_files(data_dir)
    outputs, labels, tracks, failed = [], [], [], {}
    for path in tqdm(files, desc=f"embedding ({settings.backbone})", unit="clip"):
        try:
            outputs.append(embed_file(path, backbone, settings.normalise, cache_dir))
        except AudioError as exc:
            failed[str(path)] = describe_failure(exc)
            continue
        labels.append(GENRES.index(label_from_path(path)))
        tracks.append(track_id(path.name))
    return Embedded(outputs, np.array(labels), np.array(tracks), failed)


def embedded_table(path: str | os.PathLike) -> tuple[Embedded, ProbeSettings]:
    """The probe's training data from an embedding table (``musicgenre embed``; every row whose path names a genre),
    and the settings that made it: the CV then chooses only C, on the table's one layer."""
    import json

    from musicgenre.util.parquet import META_KEY, pyarrow_parquet

    try:
        table = pyarrow_parquet().read_table(path)
        made = json.loads((table.schema.metadata or {})[META_KEY])
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not an embedding table written by 'musicgenre embed' ({exc})") from None
    settings = ProbeSettings(backbone=made["backbone"], normalise=made["normalise"], layers=[made["layer"]])
    widths = [load_backbone(settings.backbone).config["embeddings"][name] for name in LAYERS[made["layer"]]]
    labelled = [i for i, label in enumerate(table.column("label").to_pylist()) if label in GENRES]
    if not labelled:
        raise DataError(f"{path}: no row's path names one of the genres {', '.join(GENRES)}")
    table = table.take(labelled)
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(len(labelled), -1)
    # One "patch" per clip, holding the clip's mean: the mean over patches then gives the table's vector back.
    outputs = [dict(zip(LAYERS[made["layer"]], np.split(v[None], np.cumsum(widths)[:-1], axis=1), strict=True)) for v in vectors]
    labels = np.array([GENRES.index(label) for label in table.column("label").to_pylist()])
    return Embedded(outputs, labels, np.array(table.column("track").to_pylist()), {}), settings


def result_identity(settings: ProbeSettings) -> dict:
    """What besides the settings decides a result: the backbone's exact weights and the preprocessing."""
    return {
        "backbone_onnx_sha256": load_backbone(settings.backbone).config["onnx_sha256"],
        "preprocess_version": PREPROCESS_VERSION,
    }


# Embedding dimensions whose variance over the training clips is below this are dropped before scaling.
# MSD_musicnn's mean_pool has three dead units (std 1e-13 to 2e-10 over the 76 clips, the next is 5e-4):
# standardised, their float rounding (1e-12) became z-scores of ~6, so the same clip's probabilities moved
# by 0.02 between two runtimes whose embeddings agree within 2e-6.
CONSTANT_VARIANCE = 1e-12


def make_head(c: float, seed: int):
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [
            ("constant", VarianceThreshold(CONSTANT_VARIANCE)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=c, max_iter=5000, random_state=seed)),
        ]
    )


def inner_folds(data: Embedded, train: np.ndarray, settings: ProbeSettings, protocol: str, seed: int) -> list:
    """The inner CV's folds over ``train`` (positions in it): random, or by track; for the filtered protocol by
    runs of neighbouring track numbers (an artist proxy) where there are enough of them."""
    groups = data.tracks[train]
    cv_protocol = "random" if protocol == "random" else "grouped"
    if protocol == "filtered":
        runs = artist_proxy_groups(data.tracks[train])
        groups = runs if max_folds("grouped", data.labels[train], runs) >= 2 else groups
    return list(kfold(cv_protocol, data.labels[train], groups, settings.inner_folds, seed))


def choose(data: Embedded, train: np.ndarray, settings: ProbeSettings, protocol: str, seed: int) -> dict:
    """The layer and C with the best mean inner-CV accuracy on ``train`` (ties: the earlier in the grids)."""
    inner = inner_folds(data, train, settings, protocol, seed)
    best = None
    for layer in settings.layers:
        X = data.matrix(layer, train)  # noqa: N806
        for c in settings.c_grid:
            accs = []
            for a, b in inner:
                head = make_head(c, settings.seed).fit(X[a], data.labels[train][a])
                accs.append(float(np.mean(head.predict(X[b]) == data.labels[train][b])))
            score = float(np.mean(accs))
            if best is None or score > best["inner_cv_accuracy"]:
                best = {"layer": layer, "C": c, "inner_cv_accuracy": score}
    return best


def outer_folds(data: Embedded, protocol: str, settings: ProbeSettings) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds that score: k folds (random or by track), or the filtered train list against its valid list."""
    if protocol == "filtered":
        part = filtered_part(data.tracks)
        train, valid = np.flatnonzero(part == "train"), np.flatnonzero(part == "valid")
        if len(set(data.labels[train])) < len(GENRES) or len(valid) == 0:
            raise DataError("the filtered protocol needs train tracks of every genre and some valid tracks")
        return [(train, valid)]
    return list(kfold(protocol, data.labels, data.tracks, settings.folds, settings.seed))


def nested_cv(data: Embedded, protocol: str, settings: ProbeSettings, fit_fold) -> dict:
    """Score ``fit_fold(train, test, k) -> (what its inner CV chose, test probabilities)`` on the outer folds of
    ``protocol``: per-fold choices and accuracies, out-of-fold metrics (the format of every probe result)."""
    from musicgenre.training.metrics import classification_metrics

    names = list(GENRES)
    probs = np.full((len(data.labels), len(GENRES)), np.nan)
    folds = []
    for k, (train, test) in enumerate(outer_folds(data, protocol, settings)):
        chosen, probs[test] = fit_fold(train, test, k)
        accuracy = float(np.mean(probs[test].argmax(1) == data.labels[test]))
        folds.append({"fold": k, **chosen, "accuracy": accuracy, "tracks": len(test)})
    scored = np.flatnonzero(~np.isnan(probs[:, 0]))
    metrics = classification_metrics([names[i] for i in data.labels[scored]], [names[i] for i in probs[scored].argmax(1)], names)
    accs = np.array([f["accuracy"] for f in folds])
    return {
        "protocol": protocol,
        "folds": folds,
        "fold_accuracy": {"mean": float(accs.mean()), "std": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0},
        "out_of_fold": metrics,
    }


def cross_validate(data: Embedded, protocol: str, settings: ProbeSettings) -> dict:
    """Nested CV of the frozen probe under ``protocol`` (random / grouped / filtered)."""

    def fit_fold(train: np.ndarray, test: np.ndarray, k: int):
        chosen = choose(data, train, settings, protocol, settings.seed + 1 + k)
        head = make_head(chosen["C"], settings.seed).fit(data.matrix(chosen["layer"], train), data.labels[train])
        return chosen, head.predict_proba(data.matrix(chosen["layer"], test))

    return nested_cv(data, protocol, settings, fit_fold)


def zero_shot(data: Embedded, backbone: str) -> dict:
    """Genre from the tagger alone (no GTZAN label used), on the clips of the genres that have a tag."""
    from musicgenre.models.musicnn import zero_shot as pick
    from musicgenre.training.metrics import classification_metrics

    genres = GENRE_TAGS[backbone]
    names = load_backbone(backbone).tag_names
    rows = [i for i, y in enumerate(data.labels) if GENRES[y] in genres]
    truth = [GENRES[data.labels[i]] for i in rows]
    pred = [pick(data.outputs[i]["tags"].mean(axis=0), names, backbone) for i in rows]
    return {"genres": sorted(genres), "tags": genres, **classification_metrics(truth, pred, sorted(genres))}


def fit_final(data: Embedded, settings: ProbeSettings):
    """The head for shipping: layer and C chosen by CV over every clip (grouped), then fitted on every clip."""
    chosen = choose(data, np.arange(len(data.labels)), settings, "grouped", settings.seed)
    head = make_head(chosen["C"], settings.seed).fit(data.matrix(chosen["layer"]), data.labels)
    return head, chosen


def describe_clips(data: Embedded) -> str:
    """How many clips per genre, and which track numbers: what a reader needs to judge artist overlap."""
    counts = np.bincount(data.labels, minlength=len(GENRES))
    numbers = sorted(int(t.rsplit(".", 1)[1]) for t in data.tracks if "." in t and t.rsplit(".", 1)[1].isdigit())
    span = f", numbers {numbers[0]:05d}-{numbers[-1]:05d}" if numbers else ""
    return f"{counts.min()}-{counts.max()} clips per genre{span}"


def model_card(model, chosen: dict, cv: list[dict], data: Embedded, data_name: str, settings: ProbeSettings, command: str) -> str:
    n_clips = len(data.labels)
    rows = "\n".join(
        f"| {r['protocol']} | {r['out_of_fold']['accuracy']:.3f} | {r['out_of_fold']['macro_f1']:.3f} | "
        f"{r['fold_accuracy']['mean']:.3f} ± {r['fold_accuracy']['std']:.3f} |"
        for r in cv
    )
    level = "scaled to -20 dBFS RMS" if model.normalise else "left at its recorded level"
    return f"""---
license: isc
library_name: musicgenre
tags: [audio-classification, music-genre, gtzan, musicnn, transfer-learning]
metrics: [accuracy, f1]
---
# musicgenre bundled model: a genre probe on musicnn ({model.backbone.name})

The pretrained musicnn tagger ({model.backbone.name}, Pons & Serra 2019; {model.backbone.config["trained_on"]};
ISC licence, Music Technology Group, Universitat Pompeu Fabra), frozen, with a linear head: each
{model.window_seconds:g}-second window is {level}, cut into 3-second patches, and the mean of the
patches' `{chosen["layer"]}` embedding is standardised and classified by a logistic regression
(C = {chosen["C"]:g}). Runs through ONNX Runtime and NumPy; no scikit-learn or torch at prediction.

## Data
The head was trained on {n_clips} clips of GTZAN (Tzanetakis & Cook 2002), `{data_name}`: {describe_clips(data)};
neighbouring numbers often share an artist. Layer and C were chosen by {settings.inner_folds}-fold
cross-validation over those clips, by track (inner CV accuracy {chosen["inner_cv_accuracy"]:.3f}).

**Pretraining overlap:** some GTZAN songs are commercial recordings that may also be in the Million
Song Dataset on which the backbone was trained (with Last.fm tags, not GTZAN labels), so the
backbone may have heard some of these clips before.

## Validation (nested CV over the same {n_clips} clips, seed {settings.seed})
{settings.folds} outer folds, layer and C chosen inside each training fold by {settings.inner_folds}-fold CV;
out-of-fold scores. With one row per clip, "grouped" (by track) and "random" differ only in how the
folds are drawn; neither keeps an artist's clips together, so expect lower accuracy on unseen artists
and on music unlike GTZAN.

| protocol | accuracy | macro-F1 | per-fold accuracy |
|---|---|---|---|
{rows}

## Also
`musicgenre predict --tags` reports the backbone's own top tags (50 Last.fm tags for MSD).

## Reproduce
```
{command}
```
"""


def save_final(
    settings: ProbeSettings, data: Embedded, folder: str | os.PathLike, results: list[dict], data_name: str, command: str
):
    """Fit the shipping head on every clip and save it with a card citing the CV results of the same settings."""
    from musicgenre.families.probe.model import ProbeModel, head_from_pipeline, save_probe

    head, chosen = fit_final(data, settings)
    model = ProbeModel(
        load_backbone(settings.backbone),
        chosen["layer"],
        head_from_pipeline(head),
        normalise=settings.normalise,
        meta={"trained_on": f"{len(data.labels)} clips of {data_name}", "chosen": chosen, "seed": settings.seed},
    )
    from dataclasses import asdict

    key = {"settings": asdict(settings), "data_dir": data_name, "tracks": len(data.labels), **result_identity(settings)}
    cv = [r for r in results if "out_of_fold" in r and {k: r.get(k) for k in key} == key]
    model.meta["cross_validation"] = [
        {"protocol": r["protocol"], "accuracy": r["out_of_fold"]["accuracy"], "macro_f1": r["out_of_fold"]["macro_f1"]}
        for r in cv
    ]
    return save_probe(model, folder, model_card(model, chosen, cv, data, data_name, settings, command))
