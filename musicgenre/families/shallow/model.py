"""The study's six shallow models plus linear discriminant analysis, their search spaces, and hyper-parameter tuning.

Every model is a scikit-learn Pipeline (log of the variance columns -> standard scaling ->
estimator), so all preprocessing is refitted inside each cross-validation fold.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from musicgenre.models.linear import (  # noqa: F401 - full_proba and the column lists are this module's public names too
    FEATURE_SETS,
    INVARIANT_COLUMNS,
    INVARIANT_LOG,
    VAR_COLUMNS,
    full_proba,
    gain_invariant,
    log_variance,
)

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

# The estimators are imported where they are built: loading a saved LDA pipeline (the bundled
# model) then imports the LDA module alone, not scikit-learn's ensembles, SVMs and model selection.

MODELS = ("svm", "logreg", "rf", "tree", "xgb", "knn", "lda")
SEARCHES = ("bayes", "grid")


class LogVariance(TransformerMixin, BaseEstimator):
    """Log of the (heavy-tailed, positive) ``*_var`` columns; a 5-10 point gain for linear models."""

    def __init__(self, columns: Sequence[int] = VAR_COLUMNS, floor: float = 1e-12):
        self.columns = columns
        self.floor = floor

    def fit(self, X, y=None):  # noqa: N803 - scikit-learn's naming
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):  # noqa: N803
        return log_variance(X, self.columns, self.floor)


class GainInvariant(TransformerMixin, BaseEstimator):
    """Replace the level-dependent table columns by ratios that a change of gain leaves alone.

    A clip's loudness says more about its mastering (its artist or album) than its genre, and a
    microphone or upload sets an arbitrary level. Kept: every spectral, chroma, tempo and MFCC
    column but mfcc1_mean (log energy). Added: rms_var / rms_mean^2 (loudness contrast),
    harmony_var / (harmony_var + perceptr_var) (harmonic share) and (harmony_var + perceptr_var)
    / rms_mean^2. Dropped too: harmony_mean and perceptr_mean, waveform means that are ~0 noise.
    Stateless, so it cannot leak anything across folds.
    """

    def fit(self, X, y=None):  # noqa: N803
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):  # noqa: N803
        return gain_invariant(X)


def _svm(C: float = 10.0, gamma: float | str = "scale", seed: int = 0):
    """An RBF SVM whose probabilities keep its own decisions.

    SVC(probability=True) is deprecated in scikit-learn 1.9 for CalibratedClassifierCV. Its
    default, one-vs-rest sigmoids fitted to SVC's vote-based "ovr" scores, reorders the classes:
    on the public table (random 5-fold, C=3, gamma=0.01) argmax accuracy fell from SVC's 0.753
    to 0.678. One temperature over all classes rescales every row monotonically, so the argmax
    stays that of SVC's decision function (0.743; SVC.predict breaks vote ties differently on 3%
    of rows) and the log loss is lower too (1.10 against 1.13). Three calibration folds, so that
    genres with a handful of tracks (6 per genre in the 76-clip folder) still fit.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    return CalibratedClassifierCV(SVC(C=C, gamma=gamma), method="temperature", ensemble=False, cv=3)


def _sklearn(module: str, name: str) -> type:
    import importlib

    return getattr(importlib.import_module(f"sklearn.{module}"), name)


def _xgb(seed: int = 0, **params):
    from xgboost import XGBClassifier

    return XGBClassifier(tree_method="hist", n_jobs=1, random_state=seed, **params)


def _lda(shrinkage: float | str | None = None):
    """Linear discriminant analysis: one covariance pooled over genres.

    With ~40 tracks per genre and 50+ correlated columns, a shared covariance is what the data
    can estimate; it whitens away the within-genre (artist, production) variation. ``shrinkage``
    None is the plain SVD solver, a number or "auto" (Ledoit-Wolf) shrinks the pooled covariance.
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    if shrinkage is None:
        return LinearDiscriminantAnalysis(solver="svd")
    return LinearDiscriminantAnalysis(solver="lsqr", shrinkage=shrinkage)


_FACTORIES: dict[str, Callable[..., Any]] = {
    "svm": lambda seed=0, **p: _svm(seed=seed, **p),
    "logreg": lambda seed=0, **p: _sklearn("linear_model", "LogisticRegression")(max_iter=5000, **p),
    "rf": lambda seed=0, **p: _sklearn("ensemble", "RandomForestClassifier")(random_state=seed, n_jobs=1, **p),
    "tree": lambda seed=0, **p: _sklearn("tree", "DecisionTreeClassifier")(random_state=seed, **p),
    "xgb": _xgb,
    "knn": lambda seed=0, **p: _sklearn("neighbors", "KNeighborsClassifier")(**p),
    "lda": lambda seed=0, **p: _lda(**p),
}

# Grid search spaces: small, so the nested cross-validation stays affordable on a laptop.
GRIDS: dict[str, dict[str, list]] = {
    "svm": {"C": [0.3, 1, 3, 10, 30, 100], "gamma": ["scale", 0.003, 0.01, 0.03]},
    "logreg": {"C": [0.01, 0.03, 0.1, 0.3, 1, 3, 10]},
    "rf": {"n_estimators": [300], "max_depth": [None, 12], "max_features": ["sqrt", 0.3], "min_samples_leaf": [1, 3]},
    "tree": {"max_depth": [4, 8, 16, None], "min_samples_leaf": [1, 5, 10], "criterion": ["gini", "entropy"]},
    "xgb": {"n_estimators": [300], "max_depth": [2, 4, 6], "learning_rate": [0.05, 0.1], "subsample": [0.8]},
    "knn": {"n_neighbors": [1, 3, 5, 9, 15, 25], "weights": ["uniform", "distance"]},
    "lda": {"shrinkage": [None, 0.01, 0.03, 0.1, 0.3, "auto"]},
}


def suggest(name: str, trial) -> dict[str, Any]:
    """Optuna (TPE) search space of each model."""
    if name == "svm":
        return {"C": trial.suggest_float("C", 1e-2, 1e3, log=True), "gamma": trial.suggest_float("gamma", 1e-4, 1.0, log=True)}
    if name == "logreg":
        return {"C": trial.suggest_float("C", 1e-4, 1e2, log=True)}
    if name == "rf":
        return {
            "n_estimators": trial.suggest_int("n_estimators", 100, 400, step=50),
            "max_depth": trial.suggest_categorical("max_depth", [None, 8, 16, 32]),
            "max_features": trial.suggest_float("max_features", 0.05, 0.6),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 8),
        }
    if name == "tree":
        return {
            "max_depth": trial.suggest_int("max_depth", 2, 30),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 30),
            "criterion": trial.suggest_categorical("criterion", ["gini", "entropy"]),
        }
    if name == "xgb":
        return {
            "n_estimators": trial.suggest_int("n_estimators", 100, 500, step=50),
            "max_depth": trial.suggest_int("max_depth", 2, 8),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.2, 1.0),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 10, log=True),
        }
    if name == "knn":
        return {
            "n_neighbors": trial.suggest_int("n_neighbors", 1, 40),
            "weights": trial.suggest_categorical("weights", ["uniform", "distance"]),
            "p": trial.suggest_categorical("p", [1, 2]),
        }
    if name == "lda":
        if trial.suggest_categorical("shrink", [False, True]):
            return {"shrinkage": trial.suggest_float("shrinkage", 1e-3, 0.9, log=True)}
        return {"shrinkage": None}
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


def feature_steps(feature_set: str = "invariant") -> list[tuple[str, Any]]:
    """The pipeline steps that turn table columns into a feature set: [gain-invariant columns ->] log of variances."""
    if feature_set == "invariant":
        return [("gain", GainInvariant()), ("logvar", LogVariance(INVARIANT_LOG))]
    if feature_set == "raw":
        return [("logvar", LogVariance())]
    raise ValueError(f"unknown feature set {feature_set!r}; choose from {FEATURE_SETS}")


def make_pipeline(name: str, params: dict[str, Any] | None = None, seed: int = 0, feature_set: str = "invariant") -> Pipeline:
    """Feature set -> scale -> estimator (with ``params``)."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown model {name!r}; choose from {MODELS}")
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model = _FACTORIES[name](seed=seed, **(params or {}))
    return Pipeline([*feature_steps(feature_set), ("scale", StandardScaler()), ("model", model)])


def tune(
    name: str,
    X: np.ndarray,  # noqa: N803
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    search: str = "bayes",
    n_trials: int = 30,
    seed: int = 0,
    n_jobs: int = -1,
    feature_set: str = "invariant",
) -> tuple[dict[str, Any], float]:
    """Best estimator parameters by mean accuracy over ``folds`` (Optuna TPE or scikit-learn's full grid)."""
    from sklearn.model_selection import ParameterGrid, cross_val_score

    def cv_accuracy(params: dict[str, Any]) -> float:
        pipe = make_pipeline(name, params, seed=seed, feature_set=feature_set)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # failed fits (e.g. more neighbours than rows) score NaN below
            try:
                scores = cross_val_score(pipe, X, y, cv=folds, scoring="accuracy", n_jobs=n_jobs, error_score=np.nan)
            except ValueError:  # raised instead when every fold's fit failed
                return 0.0
        return 0.0 if np.isnan(scores).any() else float(np.mean(scores))

    if search == "grid":
        scored = [(cv_accuracy(p), i, p) for i, p in enumerate(ParameterGrid(GRIDS[name]))]
        best_score, _, best = max(scored, key=lambda s: (s[0], -s[1]))
        return best, best_score
    if search != "bayes":
        raise ValueError(f"unknown search {search!r}; choose from {SEARCHES}")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial) -> float:
        return cv_accuracy(suggest(name, trial))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials)
    return suggest(name, optuna.trial.FixedTrial(study.best_params)), float(study.best_value)
