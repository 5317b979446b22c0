"""Feature sets and linear heads in NumPy: a saved feature pipeline that predicts without scikit-learn.

Importing scikit-learn and skops costs ~2.3 s (scipy.stats, pandas), four times the features of
a 30 s clip. The study's pipelines are a stateless feature set, standard scaling and an estimator;
when the estimator is linear with softmax probabilities (LDA, the bundled model, and logistic
regression), the whole pipeline is a few arrays. ``save_model`` writes them as ``linear.safetensors``
beside the skops file, but only if they give the pipeline's probabilities on real feature rows
(within ``TOLERANCE``); loading then never imports scikit-learn. The column logic of the feature
sets lives here so that ``shallow``'s scikit-learn transformers and the head run the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgenre.features.handcrafted import FEATURE_COLUMNS

FILE = "linear.safetensors"
TOLERANCE = 1e-9  # the largest probability change the head may make against its pipeline
VAR_COLUMNS: tuple[int, ...] = tuple(i for i, c in enumerate(FEATURE_COLUMNS) if c.endswith("_var"))
# Columns whose value moves with the recording's level (gain), and level-free replacements.
LEVEL_DEPENDENT = ("rms_mean", "rms_var", "harmony_mean", "perceptr_mean", "harmony_var", "perceptr_var", "mfcc1_mean")
KEPT = [c for c in FEATURE_COLUMNS if c not in LEVEL_DEPENDENT]
INVARIANT_COLUMNS: list[str] = [*KEPT, "rms_cv", "harmonic_ratio", "hpss_level"]
INVARIANT_LOG = tuple(i for i, c in enumerate(INVARIANT_COLUMNS) if c.endswith("_var") or c in ("rms_cv", "hpss_level"))
FEATURE_SETS = ("invariant", "raw")
ESTIMATORS = ("LinearDiscriminantAnalysis", "LogisticRegression")  # linear scores, softmax probabilities


def log_variance(X: np.ndarray, columns: Sequence[int] = VAR_COLUMNS, floor: float = 1e-12) -> np.ndarray:  # noqa: N803
    """``X`` (float64 copy) with the log of the given (heavy-tailed, positive) variance columns."""
    X = np.array(X, dtype=np.float64, copy=True)  # noqa: N806
    cols = list(columns)
    X[:, cols] = np.log(np.maximum(X[:, cols], floor))
    return X


def gain_invariant(X: np.ndarray) -> np.ndarray:  # noqa: N803
    """The table columns with the level-dependent ones replaced by ratios a change of gain leaves alone."""
    X = np.asarray(X, dtype=np.float64)  # noqa: N806
    if X.ndim != 2 or X.shape[1] != len(FEATURE_COLUMNS):
        raise ValueError(f"expected the {len(FEATURE_COLUMNS)} table feature columns, got shape {X.shape}")
    col = {c: X[:, i] for i, c in enumerate(FEATURE_COLUMNS)}
    energy = col["rms_mean"] ** 2 + 1e-12
    hpss = col["harmony_var"] + col["perceptr_var"] + 1e-12
    extra = [col["rms_var"] / energy, col["harmony_var"] / hpss, hpss / energy]
    return np.column_stack([col[c] for c in KEPT] + extra)


def feature_set(X: np.ndarray, name: str) -> np.ndarray:  # noqa: N803
    """What a pipeline's feature steps (``shallow.feature_steps(name)``) make of table rows."""
    if name == "invariant":
        return log_variance(gain_invariant(X), INVARIANT_LOG)
    if name == "raw":
        return log_variance(X)
    raise ValueError(f"unknown feature set {name!r}; choose from {FEATURE_SETS}")


def full_proba(model, X: np.ndarray, n_classes: int) -> np.ndarray:  # noqa: N803
    """Probabilities over all ``n_classes`` even if the training data lacked some class."""
    probs = np.zeros((len(X), n_classes))
    probs[:, np.asarray(model.classes_, dtype=int)] = model.predict_proba(np.asarray(X, dtype=np.float64))
    return probs


@dataclass
class LinearHead:
    """softmax(((features(X) - mean) / scale) @ coef.T + intercept): a pipeline's probabilities from arrays."""

    feature_set: str
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    classes_: np.ndarray

    def decision_function(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return ((feature_set(X, self.feature_set) - self.mean) / self.scale) @ self.coef.T + self.intercept

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        scores = self.decision_function(X)
        scores -= scores.max(axis=1, keepdims=True)
        probs = np.exp(scores)
        return probs / probs.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        arrays = {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept}
        arrays = {**arrays, "classes": self.classes_}
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path), metadata={"feature_set": self.feature_set})


def load_head(path: Path) -> LinearHead:
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
        name = (f.metadata() or {}).get("feature_set", "")
    if name not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {name!r}")
    head = LinearHead(name, arrays["mean"], arrays["scale"], arrays["coef"], arrays["intercept"], arrays["classes"])
    n_in = len(INVARIANT_COLUMNS if name == "invariant" else FEATURE_COLUMNS)
    k = len(head.classes_)
    if head.mean.shape != (n_in,) or head.scale.shape != (n_in,) or head.coef.shape != (k, n_in) or head.intercept.shape != (k,):
        raise ValueError("the head's arrays do not fit its feature set")
    return head


def from_pipeline(pipeline) -> LinearHead | None:
    """The pipeline as a head, if it is feature set -> StandardScaler -> a linear softmax classifier with 3+ classes."""
    steps = [type(step).__name__ for _, step in pipeline.steps]
    model, scaler = pipeline.steps[-1][1], pipeline.steps[-2][1] if len(steps) > 1 else None
    if steps[:-2] == ["GainInvariant", "LogVariance"] and tuple(pipeline.steps[1][1].columns) == INVARIANT_LOG:
        name = "invariant"
    elif steps[:-2] == ["LogVariance"] and tuple(pipeline.steps[0][1].columns) == VAR_COLUMNS:
        name = "raw"
    else:
        return None
    if steps[-2:-1] != ["StandardScaler"] or steps[-1] not in ESTIMATORS or len(model.classes_) < 3:
        return None
    if any(getattr(step, "floor", 1e-12) != 1e-12 for _, step in pipeline.steps):
        return None
    if getattr(model, "multi_class", "auto") == "ovr":
        return None
    n = len(scaler.mean_) if scaler.with_mean else scaler.n_features_in_
    mean = scaler.mean_ if scaler.with_mean else np.zeros(n)
    scale = scaler.scale_ if scaler.with_std else np.ones(n)
    return LinearHead(
        name, np.asarray(mean, float), np.asarray(scale, float), np.asarray(model.coef_, float),
        np.asarray(model.intercept_, float), np.asarray(model.classes_, dtype=np.int64),
    )  # fmt: skip


def check_rows(seconds: float = 3.0, seeds: int = 4) -> np.ndarray:
    """Real table rows to check a head against its pipeline: the features of the library's example clip."""
    from musicgenre.audio.example import example_clip
    from musicgenre.features.handcrafted import extract_features

    rows = [extract_features(example_clip(seconds, seed=s) * (0.2 + 0.2 * s)) for s in range(seeds)]
    return np.array([[r[c] for c in FEATURE_COLUMNS] for r in rows])
