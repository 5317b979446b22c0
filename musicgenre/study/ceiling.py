"""An optimistic ceiling: how high fixed pipelines on the public table's columns score on new artists.

The study tunes on training data only and reports one pick. When that pick misses a target,
this says whether tuning or the inputs are short: many untuned pipelines are each fitted on the
filtered split's train tracks and scored on its valid list. The best of them is chosen on the
scored list, so it is an upper bound for these inputs, never an accuracy to report.
"""

from __future__ import annotations

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import BaggingClassifier, ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import PolynomialFeatures, QuantileTransformer, StandardScaler
from sklearn.svm import SVC

from musicgenre.families import FAMILIES

feature_steps = FAMILIES["shallow"].module().feature_steps
_TRAIN = FAMILIES["shallow"].trainer()
FeatureSet, describe_rows, filtered_train_valid = _TRAIN.FeatureSet, _TRAIN.describe_rows, _TRAIN.filtered_train_valid


def estimators(seed: int) -> dict[str, object]:
    """Untuned estimators spanning the study's search spaces (fresh objects on every call)."""
    lda = LinearDiscriminantAnalysis
    found: dict[str, object] = {"lda svd": lda()}
    for s in (0.01, 0.03, 0.1, 0.2, 0.3, 0.5, "auto"):
        found[f"lda shrinkage={s}"] = lda(solver="lsqr", shrinkage=s)
    for c in (0.003, 0.01, 0.03, 0.1, 0.3, 1, 3):
        found[f"logreg C={c}"] = LogisticRegression(C=c, max_iter=5000)
    for c in (0.3, 1, 3, 10, 30):
        for g in (0.001, 0.003, 0.01, 0.03):
            found[f"svm C={c} gamma={g}"] = SVC(C=c, gamma=g)
    for k in (5, 10, 20, 30):
        found[f"knn k={k}"] = KNeighborsClassifier(k, weights="distance")
    for f in (0.1, 0.3):
        found[f"rf max_features={f}"] = RandomForestClassifier(500, max_features=f, random_state=seed, n_jobs=-1)
        found[f"extra trees max_features={f}"] = ExtraTreesClassifier(500, max_features=f, random_state=seed, n_jobs=-1)
    shrunk = lda(solver="lsqr", shrinkage=0.1)
    found["bagged lda"] = BaggingClassifier(shrunk, n_estimators=50, max_features=0.7, random_state=seed)
    for a in (1.0, 3.0, 10.0):
        found[f"mlp 64 alpha={a}"] = MLPClassifier((64,), alpha=a, max_iter=3000, random_state=seed)
    found["degree-2 logreg C=0.003"] = make_pipeline(
        PolynomialFeatures(2, include_bias=False), StandardScaler(), LogisticRegression(C=0.003, max_iter=5000)
    )
    return found


def candidates(seed: int) -> dict[str, Pipeline]:
    """Every feature set x estimator, as a table-columns-in pipeline."""
    quantile = ("quantile", QuantileTransformer(n_quantiles=200, output_distribution="normal"))
    feature_sets = {
        "raw table": [],
        "raw, log variances": feature_steps("raw"),
        "invariant": feature_steps("invariant"),
        "invariant, quantile-normalised": [*feature_steps("invariant"), quantile],
    }
    return {
        f"{fs} | {name}": Pipeline([*steps, ("scale", StandardScaler()), ("model", est)])
        for fs, steps in feature_sets.items()
        for name, est in estimators(seed).items()
    }


def filtered_ceiling(data: FeatureSet, candidates: dict[str, object], thresholds: tuple[float, ...] = (0.6,)) -> dict:
    """Valid-list accuracy of fixed, untuned pipelines, each fitted on the filtered split's train tracks.

    Picking among these by the very list they are scored on is selection on test data, so the
    maximum is an optimistic ceiling, not a result: it says whether more tuning of these inputs
    could plausibly reach a target, or whether the inputs themselves fall short.
    """
    train, valid = filtered_train_valid(data)
    scores = []
    for name, pipe in candidates.items():
        pipe.fit(data.X[train], data.y[train])
        scores.append({"pipeline": name, "accuracy": float(np.mean(pipe.predict(data.X[valid]) == data.y[valid]))})
    scores.sort(key=lambda r: -r["accuracy"])
    accs = np.array([r["accuracy"] for r in scores])
    return {
        "protocol": "filtered",
        "train_description": f"filtered train: {describe_rows(data, train)}",
        "eval_description": f"filtered valid: {describe_rows(data, valid)}",
        "note": "optimistic: the maximum is chosen on the list it is scored on",
        "n_pipelines": len(scores),
        "max": float(accs.max()),
        "median": float(np.median(accs)),
        "at_least": {f"{t:.2f}": int(np.sum(accs >= t)) for t in thresholds},
        "scores": scores,
    }
