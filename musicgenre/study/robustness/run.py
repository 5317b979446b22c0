"""Running the robustness study: every family out of fold under every condition, external models as given.

Protocol: grouped K-fold by track over a GTZAN-like folder (``splits.kfold``, the same folds and seed
as the CNN's and the probe's cross-validation). Inside each fold every family is fitted on the clean
training clips (``fit``); only the held-out clips are degraded and scored, so each clip is scored once
per condition, by a model that never saw it. With ``augment`` a family is also fitted on its training
clips plus degraded copies of them, to see whether training-time augmentation buys robustness without
costing clean accuracy. ``run_study`` writes ``results.json`` after each model, with everything the
results depend on, so a rerun reuses what is still valid and an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from musicgenre.audio.io import load_audio
from musicgenre.data.gtzan import GENRES, Clip
from musicgenre.data.splits import kfold
from musicgenre.errors import DataError, describe_failure
from musicgenre.study.robustness.catalogue import DEGRADE_RATE, FAMILY_NAMES, STUDY_VERSION, Recipes, StudySettings, clip_seed
from musicgenre.study.robustness.fit import FOLD_FITS, FoldJob
from musicgenre.study.robustness.report import augmentation_verdicts, markdown
from musicgenre.study.robustness.views import StudyData, ViewStore, prepare


def condition_scores(probs: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, dict]:
    """Per condition: accuracy and macro-F1 over the clips it could score, the change in accuracy against
    clean audio on those same clips, and how often the top genre stayed what it was on clean audio."""
    from musicgenre.training.metrics import classification_metrics

    names = list(GENRES)
    clean, clean_ok = probs["clean"].argmax(axis=1), ~np.isnan(probs["clean"][:, 0])
    out = {}
    for condition, p in probs.items():
        ok = ~np.isnan(p[:, 0])
        if not ok.any():  # no clip had usable audio under it: shown as missing, not as 0
            continue
        pred, both = p[ok].argmax(axis=1), ok & clean_ok
        metrics = classification_metrics([names[i] for i in labels[ok]], [names[i] for i in pred], names)
        out[condition] = {
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "n": metrics["n"],
            "change": float(np.mean(p[both].argmax(axis=1) == labels[both]) - np.mean(clean[both] == labels[both])),
            "unchanged": float(np.mean(p[both].argmax(axis=1) == clean[both])),
            "confusion_matrix": metrics["confusion_matrix"],
        }
    return out


def run_family(
    family: str,
    data: StudyData,
    store: ViewStore,
    settings: StudySettings,
    recipes: Recipes,
    augment: list[str],
    cnn_settings=None,
    clips: list[Clip] | None = None,
    progress=print,
    table=None,
) -> dict:
    """One family (fitted on clean clips, plus ``augment`` copies if any) scored out of fold under every condition."""
    folds = list(kfold("grouped", data.labels, data.tracks, settings.folds, settings.seed))
    probs = {c: np.full((len(data.labels), len(GENRES)), np.nan) for c in data.conditions}
    info = []
    if family not in FOLD_FITS:
        raise DataError(f"unknown family {family!r}; choose from {', '.join(FAMILY_NAMES)}")
    for k, (train, test) in enumerate(folds):
        job = FoldJob(store, train, test, augment, recipes, k, settings.seed, clips, cnn_settings, table)
        predict, fold = FOLD_FITS[family](job)
        for i in test:
            for c in data.conditions:
                v = store(i, c)
                if v is not None:
                    probs[c][i] = predict(v)
        fold["tracks"] = len(test)
        scored = test[~np.isnan(probs["clean"][test, 0])]  # a clip without clean views is not counted as a miss
        fold["clean_accuracy"] = float(np.mean(probs["clean"][scored].argmax(axis=1) == data.labels[scored]))
        info.append(fold)
        progress(f"{family}{' +' + '+'.join(augment) if augment else ''} fold {k}: {fold}")
    return {
        "family": family,
        "name": FAMILY_NAMES[family],
        "augment": augment,
        "folds": info,
        "conditions": condition_scores(probs, data.labels),
        "predictions": _predictions(probs),
    }


def score_external(spec: str, data: StudyData, settings: StudySettings, progress=print, cache_root: Path | None = None) -> dict:
    """A model given by folder or Hub id, as it is (not refitted: it must not have trained on these clips),
    on every clip under every condition, through ``predict_array`` as the app and CLI run it (a checkpoint's ONNX
    export kept in ``cache_root``, the entry point's cache folder)."""
    from musicgenre.audio.degradations import DEGRADATIONS
    from musicgenre.families import resolve_model
    from musicgenre.models.predict import predict_array

    model = resolve_model(spec, cache_root=cache_root)
    probs = {c: np.full((len(data.labels), len(GENRES)), np.nan) for c in data.conditions}
    if set(GENRES) - set(model.labels):
        raise DataError(f"{spec}: its labels {model.labels} are not GTZAN's ten genres")
    for i, path in enumerate(data.paths):
        y = load_audio(path, sr=DEGRADE_RATE, max_seconds=settings.max_seconds).samples
        for c in data.conditions:
            try:
                degraded = DEGRADATIONS[c](y, DEGRADE_RATE, clip_seed(settings.seed, data.tracks[i]))
                scores = predict_array(model, degraded, DEGRADE_RATE, settings.max_seconds)["scores"]
            except Exception as exc:  # as for the views: this clip and condition go unscored, the rest go on
                progress(f"{spec}: {data.tracks[i]}: {c}: {describe_failure(exc)}")
                continue
            probs[c][i] = [scores[g] for g in GENRES]
        progress(f"{spec}: {i + 1}/{len(data.paths)}")
    return {
        "family": "external",
        "name": spec,
        "augment": [],
        "folds": [],
        "conditions": condition_scores(probs, data.labels),
        "predictions": _predictions(probs),
        "note": "not refitted per fold: scored as given, so it is out of sample only if it never trained on these clips",
    }


def _predictions(probs: dict[str, np.ndarray]) -> dict[str, list[str | None]]:
    """Per condition, each clip's top genre (None where the condition left no usable audio)."""
    return {c: [None if np.isnan(row[0]) else GENRES[int(row.argmax())] for row in p] for c, p in probs.items()}


def run_study(
    data_dir: str | os.PathLike,
    settings: StudySettings,
    out_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
    command: str = "",
    progress=print,
    cache_root: Path | None = None,
) -> dict:
    """Views, then every family (clean-trained and, with ``augment``, augmented) and every external model;
    writes ``results.json`` (after each model, atomically: a rerun skips what is there) and ``results.md``.
    ``cache_root``: where an external checkpoint's ONNX export is kept (the entry point's cache folder)."""
    import json

    from musicgenre.audio.degradations import DEGRADATIONS
    from musicgenre.families import FAMILIES
    from musicgenre.models.musicnn import sha256
    from musicgenre.util.atomic import atomic_open, write_json_atomic

    unknown = sorted(set(settings.families + settings.augment_families) - set(FAMILY_NAMES))
    if unknown:
        raise DataError(f"unknown famil(ies) {unknown}; choose from {', '.join(FAMILY_NAMES)}")
    recipes = Recipes.bundled()
    data = prepare(data_dir, settings, recipes, cache_dir, progress)
    for path, why in data.unreadable.items():
        progress(f"unreadable, left out: {path}: {why}")
    for path, bad in data.failed.items():
        progress(f"{Path(path).name}: no views for {', '.join(f'{c} ({w})' for c, w in bad.items())}")
    augment = settings.augmentations()
    n_folds = len(list(kfold("grouped", data.labels, data.tracks, settings.folds, settings.seed)))  # may be fewer
    cnn_settings = (
        FAMILIES["cnn"]
        .trainer()
        .CnnSettings(seconds=recipes.cnn_window, epochs=settings.cnn_epochs, folds=settings.folds, seed=settings.seed)
    )
    identity = {  # everything a stored result depends on: a rerun reuses results only when all of it is the same
        "protocol": f"grouped {n_folds}-fold by track, seed {settings.seed}",
        "data_dir": Path(data_dir).name,
        "clips": len(data.paths),
        "tracks": data.tracks.tolist(),
        "conditions": data.conditions,
        "study_version": STUDY_VERSION,
        "views": data.folder.name,
        "max_seconds": settings.max_seconds,
        "shallow_recipe_sha256": recipe_sha256(recipes.shallow_pipeline),
        "cnn_settings": asdict(cnn_settings),
        "feature_table_sha256": sha256(settings.feature_table)
        if "features_table" in settings.families and settings.feature_table
        else None,
    }
    out = Path(out_dir)
    path = out / "results.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    same = {k: old.get(k) for k in identity} == identity
    study = {
        "kind": "robustness",
        **identity,
        "seed": settings.seed,
        "command": command,
        "degradations": {c: DEGRADATIONS[c].description for c in data.conditions},
        "failed": data.failed,
        "unreadable": data.unreadable,
        "truth": [GENRES[i] for i in data.labels],
        "models": [],
    }
    done = {(m["family"], m["name"], tuple(m["augment"])): m for m in old.get("models", [])} if same else {}
    store = ViewStore(data)
    clips = table = None
    families = list(settings.families)
    if "features_table" in families and not settings.feature_table:
        progress("skipped features_table: no --feature_table (a public-schema 30-second table) given")
        families.remove("features_table")
    wanted = []
    for family in families:
        wanted.append((family, FAMILY_NAMES[family], ()))
        if augment and family in settings.augment_families:
            wanted.append((family, FAMILY_NAMES[family], tuple(augment)))
    wanted += [("external", spec, ()) for spec in settings.models]
    for key in wanted:
        family, name, aug = key
        if key not in done:
            if family == "external":
                done[key] = score_external(name, data, settings, progress, cache_root)
            else:
                if family == "cnn" and clips is None:
                    from musicgenre.data.gtzan import load_clips

                    clips, _ = load_clips(data_dir, DEGRADE_RATE, settings.max_seconds)
                    if [c.track for c in clips] != data.tracks.tolist():
                        raise DataError(f"{data_dir}: the clips changed while the study ran")
                if family == "features_table" and table is None:
                    table = _table(settings.feature_table)
                done[key] = run_family(family, data, store, settings, recipes, list(aug), cnn_settings, clips, progress, table)
                if family == "features_table":
                    done[key]["feature_table"] = Path(settings.feature_table).name
            done[key]["command"] = command  # the run that computed it (a later run may only reuse it)
        study["models"] = [done[k] for k in wanted if k in done]
        write_json_atomic(path, study)
    study["augmentation"] = augmentation_verdicts(study)
    write_json_atomic(path, study)
    with atomic_open(out / "results.md") as fh:
        fh.write(f"# Robustness: every model under real-world degradations\n\nGenerated by `{command}`.\n\n{markdown(study)}")
    return study


def recipe_sha256(pipeline) -> str:
    """What an unfitted scikit-learn pipeline is: its steps' types and every plain parameter, hashed. Not the
    fitted file's bytes: refitting the bundled model on other rows (e.g. with degraded copies) keeps the recipe."""
    import json

    steps = [(name, f"{type(step).__module__}.{type(step).__qualname__}") for name, step in pipeline.steps]
    params = {k: repr(v) for k, v in pipeline.get_params(deep=True).items() if k != "steps" and not hasattr(v, "get_params")}
    return hashlib.sha256(json.dumps({"steps": steps, "params": params}, sort_keys=True).encode()).hexdigest()


def _table(path: str):
    from musicgenre.families import FAMILIES
    from musicgenre.features.table import load_feature_table

    return FAMILIES["shallow"].trainer().FeatureSet.from_table(load_feature_table(path), "30s")
