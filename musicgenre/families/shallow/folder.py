"""The shallow family's model folder: a scikit-learn pipeline on the handcrafted features, saved in formats that are safe to load.

A model is a folder: ``musicgenre.json`` (labels, features, audio window), the scikit-learn
pipeline as ``pipeline.skops`` and, for XGBoost, the booster as ``xgboost.json``; plus a
``README.md`` model card. skops refuses to build any type we have not allowed, so a
downloaded model cannot run code on load (unlike a pickle). A pipeline that ends linearly (LDA,
logistic regression) also gets ``linear.safetensors``, its NumPy form (``musicgenre.models.linear``),
which is what loads unless ``runtime="sklearn"`` (``musicgenre.models.runtime``, chosen by the entry point): no
scikit-learn import (~2.3 s).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgenre.data.gtzan import GENRES
from musicgenre.errors import ModelError
from musicgenre.families.shallow import FORMAT  # the registry line and the folders name one format
from musicgenre.features.handcrafted import FEATURE_COLUMNS, SAMPLE_RATE, extract_features
from musicgenre.models.folder import CONFIG_NAME, write_model_folder
from musicgenre.models.runtime import Runtime

PIPELINE_NAME = "pipeline.skops"
XGB_NAME = "xgboost.json"
# Every non-builtin, non-numpy type our pipelines contain, and nothing else: our transformers, the
# scikit-learn estimators of the study's seven models and the plain-data helpers they keep. skops
# is imported without its scikit-learn-wide default list (see ``_skops_io``), so this is the list.
TRUSTED_TYPES = [
    "musicgenre.families.shallow.model.LogVariance",
    "musicgenre.families.shallow.model.GainInvariant",
    "musicgenre.models.shallow.LogVariance",  # the same classes, as files saved before issue 34 name them
    "musicgenre.models.shallow.GainInvariant",
    "musicgenre.shallow.LogVariance",  # the same classes, as files saved before issue 17 name them
    "musicgenre.shallow.GainInvariant",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.svm._classes.SVC",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",  # SVMs saved before temperature scaling
    "sklearn.calibration._TemperatureScaling",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
]


def _skops_io():
    """``skops.io``, imported without the default trust list it builds by importing every scikit-learn estimator.

    That discovery (``sklearn.utils.all_estimators``) costs seconds and pulls in torch through
    scikit-learn's array-API modules. It only decides what skops trusts when the caller names
    nothing; we always name ``TRUSTED_TYPES``, so it is replaced by an empty list while skops is
    imported. If skops was imported before, its default list is emptied (in place, the list its
    loaders read): either way no scikit-learn estimator outside ``TRUSTED_TYPES`` loads here.
    """
    if "skops.io" not in sys.modules:
        import sklearn.utils

        discover = sklearn.utils.all_estimators
        sklearn.utils.all_estimators = lambda *args, **kwargs: []
        try:
            import skops.io  # noqa: F401
        finally:
            sklearn.utils.all_estimators = discover
    from skops.io import _trusted_types

    _trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES.clear()  # fail closed whoever imported skops first
    return sys.modules["skops.io"]


@dataclass
class ShallowModel:
    """A fitted feature pipeline plus what is needed to apply it to audio."""

    pipeline: object
    labels: list[str] = field(default_factory=lambda: list(GENRES))
    window_seconds: float = 30.0
    sample_rate: int = SAMPLE_RATE
    meta: dict = field(default_factory=dict)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Rows of probabilities over ``labels`` for feature rows in FEATURE_COLUMNS order."""
        from musicgenre.models.linear import full_proba

        return full_proba(self.pipeline, X, len(self.labels))

    def predict_windows(self, parts: list[np.ndarray]) -> np.ndarray:
        """One probability row per window of mono audio at ``sample_rate``: the table's features, then the pipeline."""
        return self.predict_proba(feature_rows(parts, self.sample_rate))


def feature_rows(parts: list[np.ndarray], sr: int = SAMPLE_RATE) -> np.ndarray:
    """The table's features of each window, one row each in FEATURE_COLUMNS order (what a ShallowModel classifies)."""
    rows = [extract_features(part, sr) for part in parts]
    return np.array([[r[c] for c in FEATURE_COLUMNS] for r in rows])


def save_model(model: ShallowModel, folder: str | os.PathLike, card: str | None = None) -> Path:
    """Write ``model`` to ``folder`` (replaced atomically if it exists)."""
    from sklearn.pipeline import Pipeline

    sio = _skops_io()

    def write_files(tmp: Path) -> dict:
        pipeline = model.pipeline
        estimator = pipeline.steps[-1][1]
        config = {
            "format": FORMAT,
            "version": 1,
            "labels": model.labels,
            "feature_columns": FEATURE_COLUMNS,
            "sample_rate": model.sample_rate,
            "window_seconds": model.window_seconds,
            "classes": [int(c) for c in pipeline.classes_],
            "xgboost": False,
        }
        if type(estimator).__name__ == "XGBClassifier":
            estimator.save_model(tmp / XGB_NAME)
            pipeline = Pipeline(pipeline.steps[:-1])
            config["xgboost"] = True
        sio.dump(pipeline, tmp / PIPELINE_NAME)
        if not config["xgboost"]:
            config["linear_head"] = _export_head(pipeline, tmp)
        return config

    return write_model_folder(folder, write_files, meta=model.meta, card=card)  # computed values win over stale meta


def _export_head(pipeline, folder: Path) -> dict | None:
    """Write the pipeline's NumPy head (``linear.FILE``) if it has one that agrees with it; what was checked, or None."""
    from musicgenre.models import linear

    head = linear.from_pipeline(pipeline)
    if head is None:
        return None
    rows = linear.check_rows()
    change = float(np.abs(head.predict_proba(rows) - pipeline.predict_proba(rows)).max())
    expected = pipeline.decision_function(rows)
    score_change = float(np.abs(head.decision_function(rows) - expected).max() / max(np.abs(expected).max(), 1.0))
    if max(change, score_change) > linear.TOLERANCE:
        return None
    head.save(folder / linear.FILE)
    (folder / linear.FILE).chmod(0o644)  # safetensors writes owner-only files; the others are world-readable
    return {"file": linear.FILE, "max_probability_change_on_probe": change, "max_relative_score_change_on_probe": score_change}


def _load_head(folder: Path, config: dict, runtime: Runtime | None):
    """The saved NumPy head, if there is one and ``runtime`` is not ``sklearn``; else None."""
    from musicgenre.models import linear

    if not config.get("linear_head") or runtime == "sklearn":
        return None
    head = linear.load_head(folder / linear.FILE)
    if not np.array_equal(head.classes_, np.asarray(config["classes"])):
        raise ModelError(f"{folder}: the linear head's classes do not match its config")
    return head


def load_pipeline(folder: str | os.PathLike, config: dict | None = None):
    """The fitted scikit-learn pipeline of a shallow model folder (skops, trusted types only), even where
    prediction runs its ``linear.safetensors`` copy: what refitting the same recipe (``sklearn.base.clone``) needs."""
    folder = Path(folder)
    config = config or json.loads((folder / CONFIG_NAME).read_text())
    sio = _skops_io()
    untrusted = sio.get_untrusted_types(file=folder / PIPELINE_NAME)
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ModelError(f"{folder}: refusing to load types that are not trusted: {refused}")
    pipeline = sio.load(folder / PIPELINE_NAME, trusted=TRUSTED_TYPES)
    if config.get("xgboost"):
        from sklearn.pipeline import Pipeline
        from xgboost import XGBClassifier

        booster = XGBClassifier()
        booster.load_model(folder / XGB_NAME)
        pipeline = Pipeline([*pipeline.steps, ("model", booster)])
    classes = np.asarray(config["classes"])
    if not hasattr(pipeline, "classes_") or not np.array_equal(np.asarray(pipeline.classes_), classes):
        raise ModelError(f"{folder}: the pipeline's classes do not match its config")
    return pipeline


def load_shallow(folder: Path, config: dict, runtime: Runtime | None = None) -> ShallowModel:
    """A shallow folder whose ``musicgenre.json`` is ``config``: its NumPy head where it has one (unless ``runtime`` is
    "sklearn"), else the pipeline; ``meta["runtime"]`` says which ran ("numpy" or "sklearn")."""
    if config.get("feature_columns") != FEATURE_COLUMNS:
        raise ModelError(f"{folder}: the model was trained on other feature columns")
    meta = {k: v for k, v in config.items() if k not in ("labels", "window_seconds", "sample_rate")}
    head = _load_head(folder, config, runtime)
    predictor, meta["runtime"] = (head, "numpy") if head is not None else (load_pipeline(folder, config), "sklearn")
    return ShallowModel(predictor, config["labels"], config["window_seconds"], config["sample_rate"], meta)
