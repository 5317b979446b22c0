"""Run one model under one protocol, honestly: tuning happens inside the training data only.

- ``random`` / ``grouped``: nested cross-validation. Each outer fold tunes on its own
  training rows (inner folds of the same protocol), refits, and scores its held-out rows.
- ``filtered``: tune on the split's ``train`` tracks by CV over runs of consecutive track
  numbers (whole artists, see ``splits.artist_proxy_groups``), refit on them, score ``valid``.

For 3-second rows the result also has track-level accuracy, from segment probabilities
averaged per track.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from musicgenre.data import GENRES
from musicgenre.errors import DataError
from musicgenre.evaluation import classification_metrics, track_level
from musicgenre.features import FEATURE_COLUMNS
from musicgenre.shallow import make_pipeline, tune
from musicgenre.splits import PROTOCOLS, artist_proxy_groups, filtered_part, kfold, max_folds


@dataclass
class FeatureSet:
    """Feature matrix, genre codes (index into GENRES) and track ids of a table."""

    X: np.ndarray  # noqa: N815
    y: np.ndarray
    tracks: np.ndarray
    input: str  # "30s" or "3s"

    @classmethod
    def from_table(cls, table: pd.DataFrame, input_name: str) -> FeatureSet:
        unknown = sorted(set(table["label"]) - set(GENRES))
        if unknown:
            raise DataError(f"labels outside the 10 GTZAN genres: {unknown[:5]}")
        y = table["label"].map({g: i for i, g in enumerate(GENRES)}).to_numpy()
        return cls(table[FEATURE_COLUMNS].to_numpy(np.float64), y, table["track"].to_numpy(), input_name)

    def subset(self, mask: np.ndarray) -> FeatureSet:
        return FeatureSet(self.X[mask], self.y[mask], self.tracks[mask], self.input)


def _describe(data: FeatureSet, idx: np.ndarray) -> str:
    n_tracks = len(set(data.tracks[idx]))
    return f"{n_tracks} tracks" if data.input == "30s" else f"{len(idx)} segments / {n_tracks} tracks"


def _score(data: FeatureSet, idx: np.ndarray, probs: np.ndarray) -> dict:
    labels = list(GENRES)
    pred = probs.argmax(axis=1)
    out = classification_metrics([labels[i] for i in data.y[idx]], [labels[i] for i in pred], labels)
    if data.input != "30s":
        truth, track_pred = track_level(probs, data.tracks[idx], data.y[idx])
        track = classification_metrics([labels[i] for i in truth], [labels[i] for i in track_pred], labels)
        out["track_accuracy"] = track["accuracy"]
        out["track_macro_f1"] = track["macro_f1"]
        out["track_confusion_matrix"] = track["confusion_matrix"]
        out["n_tracks_scored"] = track["n"]
    return out


def _predict_proba(pipe, X: np.ndarray) -> np.ndarray:  # noqa: N803
    """Probabilities over all 10 genres even if a training fold lacked one."""
    probs = np.zeros((len(X), len(GENRES)))
    probs[:, pipe.classes_] = pipe.predict_proba(X)
    return probs


def run_protocol(
    model: str,
    data: FeatureSet,
    protocol: str,
    search: str = "bayes",
    n_trials: int = 30,
    outer_folds: int = 5,
    inner_folds: int = 3,
    seed: int = 0,
    n_jobs: int = -1,
) -> dict:
    """Tune, fit and score ``model`` under ``protocol``; a JSON-ready result dict."""
    if protocol not in PROTOCOLS:
        raise DataError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
    start = time.perf_counter()
    result: dict = {
        "model": model,
        "search": search,
        "input": data.input,
        "protocol": protocol,
        "seed": seed,
        "n_trials": n_trials if search == "bayes" else None,
        "inner_folds": inner_folds,
    }

    def fit_fold(train_idx: np.ndarray, cv_protocol: str) -> tuple[object, dict, float]:
        sub = data.subset(train_idx)
        groups = sub.tracks
        if protocol == "filtered":
            runs = artist_proxy_groups(sub.tracks)
            # Fall back to track groups when some genre's training tracks form a single run.
            if max_folds("grouped", sub.y, runs) >= 2:
                groups = runs
            result["inner_groups"] = "artist-proxy runs" if groups is runs else "tracks"
        inner = list(kfold(cv_protocol, sub.y, groups, inner_folds, seed))
        params, cv_score = tune(model, sub.X, sub.y, inner, search, n_trials, seed, n_jobs)
        return make_pipeline(model, params, seed).fit(sub.X, sub.y), params, cv_score

    if protocol == "filtered":
        part = filtered_part(data.tracks)
        train_idx, eval_idx = np.flatnonzero(part == "train"), np.flatnonzero(part == "valid")
        missing = sorted(set(range(len(GENRES))) - set(data.y[train_idx]))
        if len(eval_idx) == 0 or missing:
            raise DataError(
                f"the filtered split's train tracks here miss genres {[GENRES[i] for i in missing]} "
                f"or there are no valid tracks ({len(eval_idx)})"
            )
        pipe, params, cv_score = fit_fold(train_idx, "grouped")
        probs = _predict_proba(pipe, data.X[eval_idx])
        result.update(_score(data, eval_idx, probs))
        result.update(
            best_params=params,
            inner_cv_accuracy=cv_score,
            train_description=f"filtered train: {_describe(data, train_idx)}",
            eval_description=f"filtered valid: {_describe(data, eval_idx)}",
        )
    else:
        oof = np.zeros((len(data.y), len(GENRES)))
        fold_acc, fold_params = [], []
        folds = list(kfold(protocol, data.y, data.tracks, outer_folds, seed))
        for train_idx, test_idx in folds:
            pipe, params, _ = fit_fold(train_idx, protocol)
            oof[test_idx] = _predict_proba(pipe, data.X[test_idx])
            fold_acc.append(float(np.mean(oof[test_idx].argmax(axis=1) == data.y[test_idx])))
            fold_params.append(params)
        everything = np.arange(len(data.y))
        result.update(_score(data, everything, oof))
        result.update(
            fold_accuracy=fold_acc,
            fold_accuracy_mean=float(np.mean(fold_acc)),
            fold_accuracy_std=float(np.std(fold_acc)),
            best_params=fold_params,
            outer_folds=len(folds),
            train_description=f"{len(folds)}-fold {protocol} CV over {_describe(data, everything)}",
            eval_description="each row once, out of fold",
        )
        if protocol == "random" and data.input != "30s":
            result["note"] = "leaky: segments of one track fall on both sides of a fold"
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


# Which (input, protocol) pairs the shallow study runs. 30-second rows are one per track,
# so "grouped" equals "random" there and is not repeated.
STUDY = [
    ("30s table", "random"),
    ("30s table", "filtered"),
    ("30s audio", "random"),
    ("30s audio", "filtered"),
    ("3s audio", "random"),
    ("3s audio", "grouped"),
    ("3s audio", "filtered"),
]


def load_study_data(table_30s: str, audio_dir: str, work_dir: str, workers: int | None = None) -> dict[str, FeatureSet]:
    """The public 30 s table, and 30 s / 3 s features of the tracks in ``audio_dir`` (same tracks)."""
    from pathlib import Path

    from musicgenre.data import find_audio_files, load_feature_table
    from musicgenre.table import extract_table

    data = {"30s table": FeatureSet.from_table(load_feature_table(table_30s), "30s")}
    files = find_audio_files([audio_dir])
    if files:
        work = Path(work_dir)
        for seconds, name in ((None, "30s audio"), (3.0, "3s audio")):
            out = work / f"features_{'30' if seconds is None else '3'}_sec.csv"
            extract_table(files, out, seconds, workers)
            table = load_feature_table(out)
            data[name] = FeatureSet.from_table(table[table["label"].isin(GENRES)], "30s" if seconds is None else "3s")
    return data


def run_all(
    table_30s: str,
    audio_dir: str,
    work_dir: str,
    out_dir: str,
    models: list[str],
    searches: list[str],
    n_trials: int,
    outer_folds: int,
    inner_folds: int,
    seed: int,
    workers: int | None = None,
) -> list[dict]:
    """Every model x search x study cell; resumable through ``out_dir/results.json``."""
    import json
    from pathlib import Path

    from musicgenre.evaluation import plot_confusion, write_json_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else []
    data = load_study_data(table_30s, audio_dir, work_dir, workers)
    for dataset, protocol in STUDY:
        if dataset not in data:
            continue
        for model in models:
            for search in searches:
                key = (model, search, dataset, protocol, seed)
                if any((r["model"], r["search"], r["dataset"], r["protocol"], r["seed"]) == key for r in results):
                    continue
                try:
                    result = run_protocol(model, data[dataset], protocol, search, n_trials, outer_folds, inner_folds, seed)
                except DataError as exc:  # e.g. a small audio folder that misses genres of the filtered split
                    print(f"{dataset:10s} {protocol:8s} skipped: {exc}", flush=True)
                    break
                result["dataset"] = dataset
                results.append(result)
                write_json_atomic(results_path, results)
                print(
                    f"{dataset:10s} {protocol:8s} {model:6s} {search:5s} accuracy {result['accuracy']:.3f} "
                    f"({result['eval_description']}; {result['seconds']} s)",
                    flush=True,
                )
    for dataset, protocol in STUDY:
        cell = [r for r in results if r["dataset"] == dataset and r["protocol"] == protocol]
        if cell:
            best = max(cell, key=lambda r: r["accuracy"])
            name = f"confusion_{dataset.replace(' ', '_')}_{protocol}_{best['model']}_{best['search']}.png"
            title = (
                f"{best['model']} ({best['search']}), {dataset}, {protocol}: "
                f"acc {best['accuracy']:.3f}, n={best['n']}, seed {best['seed']}"
            )
            plot_confusion(best["confusion_matrix"], best["labels"], title, out / name)
    (out / "results.md").write_text(results_markdown(results))
    return results


def results_markdown(results: list[dict]) -> str:
    from musicgenre.evaluation import markdown_table

    parts = [
        "# Shallow baselines\n\nGenerated by `experiments/shallow_baselines.py`; every row names its protocol, data and seed. "
        "Track acc.: 3-second segment probabilities averaged per track. Random 3-second rows are leaky "
        "(segments of one track on both sides).\n"
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        rows = sorted((r for r in results if r["dataset"] == dataset), key=lambda r: (r["protocol"], -r["accuracy"]))
        parts.append(f"\n## {dataset}\n\n" + markdown_table(rows))
    return "".join(parts)
