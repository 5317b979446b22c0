"""Run one model under one protocol, honestly: tuning happens inside the training data only.

- ``random`` / ``grouped``: nested cross-validation. Each outer fold tunes on its own
  training rows (inner folds of the same protocol), refits, and scores its held-out rows.
- ``filtered``: tune on the split's ``train`` tracks by CV over runs of consecutive track
  numbers (whole artists, see ``splits.artist_proxy_groups``), refit on them, score ``valid``.

For 3-second rows the result also has track-level accuracy, from segment probabilities
averaged per track. Whenever a "best" model is picked (for a figure, a comparison or the
bundled model) it is picked by the inner CV score, never by the score being reported.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from musicgenre.data.gtzan import GENRES, find_audio_files, track_id
from musicgenre.data.splits import PROTOCOLS, artist_proxy_groups, filtered_part, kfold, max_folds
from musicgenre.errors import DataError
from musicgenre.families.shallow.model import full_proba, make_pipeline, tune
from musicgenre.features.handcrafted import FEATURE_COLUMNS
from musicgenre.features.table import load_feature_table
from musicgenre.training.metrics import classification_metrics, fmt, markdown_table, plot_confusion, track_level
from musicgenre.util.atomic import write_json_atomic


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

    def subset(self, idx: np.ndarray) -> FeatureSet:
        return FeatureSet(self.X[idx], self.y[idx], self.tracks[idx], self.input)


@dataclass
class Fold:
    """Outer training and scoring rows, and the inner tuning folds (all as indices into the data)."""

    train: np.ndarray
    test: np.ndarray
    inner: list[tuple[np.ndarray, np.ndarray]]
    inner_groups: str


def _inner_folds(data: FeatureSet, train: np.ndarray, protocol: str, n: int, seed: int) -> tuple[list, str]:
    sub = data.subset(train)
    cv_protocol, groups, kind = protocol, sub.tracks, "tracks" if protocol != "random" else "rows"
    if protocol == "filtered":
        cv_protocol = "grouped"
        runs = artist_proxy_groups(sub.tracks)
        if max_folds("grouped", sub.y, runs) >= 2:  # else some genre's train tracks are one run
            groups, kind = runs, "artist-proxy runs"
    folds = [(train[a], train[b]) for a, b in kfold(cv_protocol, sub.y, groups, n, seed)]
    return folds, kind


def filtered_train_valid(data: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the filtered split's train and valid tracks, if they can train and score a 10-genre model."""
    part = filtered_part(data.tracks)
    train, valid = np.flatnonzero(part == "train"), np.flatnonzero(part == "valid")
    missing = sorted(set(range(len(GENRES))) - set(data.y[train]))
    if missing:
        raise DataError(f"the filtered split's train tracks here miss genres {[GENRES[i] for i in missing]}")
    if len(valid) == 0:
        raise DataError("none of these tracks is on the filtered split's valid list")
    return train, valid


def plan_folds(data: FeatureSet, protocol: str, outer_folds: int = 5, inner_folds: int = 3, seed: int = 0) -> list[Fold]:
    """Every train/score/tune split a protocol uses, so that they can be checked for leaks."""
    if protocol not in PROTOCOLS:
        raise DataError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
    if protocol == "filtered":
        outer = [filtered_train_valid(data)]
    else:
        outer = list(kfold(protocol, data.y, data.tracks, outer_folds, seed))
    return [Fold(train, test, *_inner_folds(data, train, protocol, inner_folds, seed)) for train, test in outer]


def describe_rows(data: FeatureSet, idx: np.ndarray) -> str:
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
    feature_set: str = "invariant",
) -> dict:
    """Tune, fit and score ``model`` under ``protocol``; a JSON-ready result dict."""
    start = time.perf_counter()
    folds = plan_folds(data, protocol, outer_folds, inner_folds, seed)
    scored = np.concatenate([f.test for f in folds])
    probs = np.zeros((len(data.y), len(GENRES)))
    fold_acc, fold_params, inner_scores = [], [], []
    for fold in folds:
        # tune() gets only training rows: inner folds are re-expressed relative to them.
        position = {row: i for i, row in enumerate(fold.train)}
        inner = [(np.array([position[r] for r in a]), np.array([position[r] for r in b])) for a, b in fold.inner]
        sub = data.subset(fold.train)
        params, cv_score = tune(model, sub.X, sub.y, inner, search, n_trials, seed, n_jobs, feature_set)
        pipe = make_pipeline(model, params, seed, feature_set).fit(sub.X, sub.y)
        probs[fold.test] = full_proba(pipe, data.X[fold.test], len(GENRES))
        fold_acc.append(float(np.mean(probs[fold.test].argmax(axis=1) == data.y[fold.test])))
        fold_params.append(params)
        inner_scores.append(cv_score)
    result: dict = {
        "model": model,
        "feature_set": feature_set,
        "search": search,
        "input": data.input,
        "protocol": protocol,
        "seed": seed,
        "requested": {
            "n_trials": n_trials if search == "bayes" else None,
            "outer_folds": outer_folds,
            "inner_folds": inner_folds,
            "rows": len(data.y),
        },
        "inner_folds": min(len(f.inner) for f in folds),
        "inner_groups": folds[0].inner_groups,
        "inner_cv_accuracy": float(np.mean(inner_scores)),
        **_score(data, scored, probs[scored]),
    }
    if protocol == "filtered":
        result.update(
            best_params=fold_params[0],
            train_description=f"filtered train: {describe_rows(data, folds[0].train)}",
            eval_description=f"filtered valid: {describe_rows(data, folds[0].test)}",
        )
    else:
        result.update(
            fold_accuracy=fold_acc,
            fold_accuracy_mean=float(np.mean(fold_acc)),
            fold_accuracy_std=float(np.std(fold_acc)),
            best_params=fold_params,
            outer_folds=len(folds),
            train_description=f"{len(folds)}-fold {protocol} CV over {describe_rows(data, scored)}",
            eval_description="each row once, out of fold",
        )
        if protocol == "random" and data.input != "30s":
            result["note"] = "leaky: segments of one track fall on both sides of a fold"
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


# Which (dataset, protocol) cells the shallow study runs. 30-second rows are one per track,
# so "grouped" equals "random" there and is not repeated.
STUDY = [
    ("30s table", "filtered"),
    ("30s table", "random"),
    ("30s audio", "random"),
    ("30s audio", "filtered"),
    ("3s audio", "random"),
    ("3s audio", "grouped"),
    ("3s audio", "filtered"),
]


def load_study_data(table_30s: str, audio_dir: str, work_dir: str, workers: int | None = None) -> dict[str, FeatureSet]:
    """The public 30 s table, and 30 s / 3 s features of exactly the tracks in ``audio_dir``."""
    from musicgenre.features.table import extract_table

    data = {"30s table": FeatureSet.from_table(load_feature_table(table_30s), "30s")}
    files = find_audio_files([audio_dir])
    if files:
        wanted = {track_id(f.name) for f in files}
        for seconds, name in ((None, "30s audio"), (3.0, "3s audio")):
            out = Path(work_dir) / f"features_{'30' if seconds is None else '3'}_sec.csv"
            report = extract_table(files, out, seconds, workers)
            for path, error in report.failed.items():
                print(f"unreadable, left out: {path}: {error}", flush=True)
            table = load_feature_table(out)
            table = table[table["track"].isin(wanted) & table["label"].isin(GENRES)]  # the cache may hold other folders
            data[name] = FeatureSet.from_table(table, "30s" if seconds is None else "3s")
    return data


def _run_key(r: dict) -> tuple:
    return r["model"], r["feature_set"], r["search"], r["dataset"], r["protocol"], r["seed"]


def selection_key(r: dict) -> tuple:
    """How results are ranked when one is picked: inner CV; exact ties go to the simpler search
    space (grid), then by name, so the pick never depends on the order results were computed in."""
    return r["inner_cv_accuracy"], r["search"] == "grid", r["model"], r["feature_set"]


def pick_best(cell: list[dict]) -> dict:
    """The result a person would have chosen without seeing the reported score: best inner CV."""
    return max(cell, key=selection_key)


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
    feature_sets: tuple[str, ...] = ("invariant",),
) -> list[dict]:
    """Every model x feature set x search x study cell; resumable through ``out_dir/results.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else []
    for r in results:
        r.setdefault("feature_set", "raw")  # files from before feature sets existed used the raw columns
    data = load_study_data(table_30s, audio_dir, work_dir, workers)
    skipped = []
    for dataset, protocol in STUDY:
        if dataset not in data:
            skipped.append(f"{dataset}, {protocol}: no audio folder given or found")
            continue
        try:
            plan_folds(data[dataset], protocol, outer_folds, inner_folds, seed)
        except DataError as exc:  # e.g. a small audio folder that misses genres of the filtered split
            skipped.append(f"{dataset}, {protocol}: {exc}")
            print(f"{dataset:10s} {protocol:8s} skipped: {exc}", flush=True)
            continue
        requested = {"n_trials": None, "outer_folds": outer_folds, "inner_folds": inner_folds, "rows": len(data[dataset].y)}
        for model, feature_set, search in itertools.product(models, feature_sets, searches):
            req = {**requested, "n_trials": n_trials if search == "bayes" else None}
            key = (model, feature_set, search, dataset, protocol, seed)
            if any(_run_key(r) == key and r["requested"] == req for r in results):
                continue
            result = run_protocol(
                model, data[dataset], protocol, search, n_trials, outer_folds, inner_folds, seed, feature_set=feature_set
            )
            result["dataset"] = dataset
            results = [r for r in results if _run_key(r) != key] + [result]  # a rerun with new settings replaces
            write_json_atomic(results_path, results)
            print(
                f"{dataset:10s} {protocol:8s} {model:6s} {feature_set:9s} {search:5s} accuracy {result['accuracy']:.3f} "
                f"(inner CV {result['inner_cv_accuracy']:.3f}; {result['eval_description']}; {result['seconds']} s)",
                flush=True,
            )
    shown = [r for r in results if r["seed"] == seed]  # reports compare pipelines of one seed
    for dataset, protocol in STUDY:
        cell = [r for r in shown if r["dataset"] == dataset and r["protocol"] == protocol]
        if cell:
            best = pick_best(cell)
            name = f"confusion_{dataset.replace(' ', '_')}_{protocol}.png"
            title = (
                f"{best['model']} ({best['feature_set']}, {best['search']}; best inner CV), {dataset}, {protocol}: "
                f"acc {best['accuracy']:.3f}, n={best['n']}, seed {best['seed']}"
            )
            plot_confusion(best["confusion_matrix"], best["labels"], title, out / name)
    (out / "results.md").write_text(results_markdown(shown, skipped))
    return results


def results_markdown(results: list[dict], skipped: Sequence[str] = ()) -> str:
    parts = [
        "# Shallow baselines\n\nGenerated by `experiments/shallow_baselines.py`; every row names its protocol, data and seed. "
        "Inner CV: the tuning score on training data only (what the best model of a cell is chosen by). "
        "Track acc.: 3-second segment probabilities averaged per track. Random 3-second rows are leaky "
        "(segments of one track on both sides).\n"
    ]
    parts.append(headline_table(results))
    if skipped:
        parts.append("\nCells not run on these data:\n\n" + "".join(f"- {why}\n" for why in skipped))
    claim = claim_table(results)
    if claim:
        parts.append(claim)
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        rows = sorted((r for r in results if r["dataset"] == dataset), key=lambda r: (r["protocol"], -r["accuracy"]))
        parts.append(f"\n## {dataset}\n\n" + markdown_table(rows))
    return "".join(parts)


def _pipeline(r: dict) -> tuple[str, str, str]:
    return r["model"], r["feature_set"], r["search"]


def claim_table(results: list[dict]) -> str:
    """The study's claim "3-second models beat 30-second ones", as usually measured and leak-free.

    Same tracks on both sides (the audio folder's); one row per pipeline, no picking.
    """

    def find(dataset: str, protocol: str, pipeline: tuple) -> dict | None:
        return next((r for r in results if (r["dataset"], r["protocol"], *_pipeline(r)) == (dataset, protocol, *pipeline)), None)

    rows = []
    for pipeline in dict.fromkeys(map(_pipeline, results)):
        r30 = find("30s audio", "random", pipeline)
        leaky, grouped = find("3s audio", "random", pipeline), find("3s audio", "grouped", pipeline)
        if not (r30 and leaky and grouped):
            continue
        rows.append(
            f"| {' | '.join(pipeline)} | {r30['accuracy']:.3f} | {leaky['accuracy']:.3f} | {leaky['track_accuracy']:.3f} "
            f"| {grouped['accuracy']:.3f} | {grouped['track_accuracy']:.3f} |"
        )
    if not rows:
        return ""
    any30 = next(r for r in results if r["dataset"] == "30s audio" and r["protocol"] == "random")
    any3 = next(r for r in results if r["dataset"] == "3s audio" and r["protocol"] == "grouped")
    return (
        "\n## Do 3-second models beat 30-second ones?\n\n"
        f"Same {any30['n']} tracks; 30 s: {any30['train_description']}; 3 s: {any3['train_description']}; "
        f"seed {any3['seed']}. Segment accuracy scores each 3 s row; track accuracy averages a track's segment "
        "probabilities.\n\n"
        "| model | features | search | 30 s (random) | 3 s random, segments (leaky) | 3 s random, tracks (leaky) "
        "| 3 s grouped, segments | 3 s grouped, tracks |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def headline_table(results: list[dict]) -> str:
    """One row per (dataset, protocol): the pipeline chosen by inner CV, and the spread of all of them."""
    lines = [
        "| data | protocol | evaluated on | chosen by inner CV | accuracy | macro-F1 | track acc. "
        "| all pipelines (min–max) | seed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, protocol in STUDY:
        cell = [r for r in results if r["dataset"] == dataset and r["protocol"] == protocol]
        if not cell:
            continue
        best = pick_best(cell)
        accs = [r["accuracy"] for r in cell]
        scope = best["eval_description"] if protocol == "filtered" else best["train_description"]
        chosen = f"{best['model']} ({best['feature_set']}, {best['search']})"
        cells = [
            dataset,
            protocol,
            scope,
            chosen,
            f"{best['accuracy']:.3f}",
            f"{best['macro_f1']:.3f}",
            fmt(best.get("track_accuracy")),
            f"{min(accs):.3f}–{max(accs):.3f} ({len(cell)})",
            str(best["seed"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n## Headline\n\n" + "\n".join(lines) + "\n"
