"""Metrics and the files every experiment writes: JSON, a Markdown table, confusion matrices."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score


def classification_metrics(y_true: Sequence, y_pred: Sequence, labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1, n and the confusion matrix (rows: truth, columns: prediction)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=list(labels), average="macro", zero_division=0)),
        "n": int(len(y_true)),
        "labels": list(labels),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=list(labels)).tolist(),
    }


def calibration_metrics(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict:
    """Accuracy, log loss, Brier score (sum over genres, mean over clips), top-label ECE in ``bins`` equal bins,
    and the mean top probability of the wrong answers."""
    probs = np.clip(probs, 1e-12, 1.0)
    top, pred = probs.max(axis=1), probs.argmax(axis=1)
    right = pred == labels
    onehot = np.eye(probs.shape[1])[labels]
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(top, edges[1:-1]), 0, bins - 1)
    ece = sum(
        abs(right[which == b].mean() - top[which == b].mean()) * np.mean(which == b) for b in range(bins) if (which == b).any()
    )
    return {
        "clips": int(len(labels)),
        "accuracy": float(right.mean()),
        "log_loss": float(-np.log(probs[np.arange(len(labels)), labels]).mean()),
        "brier": float(np.sum((probs - onehot) ** 2, axis=1).mean()),
        "ece": float(ece),
        "wrong_top_probability": float(top[~right].mean()) if (~right).any() else None,
    }


def track_level(probs: np.ndarray, tracks: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average segment probabilities per track: (track truth, track prediction) as class indices."""
    order = {t: i for i, t in enumerate(dict.fromkeys(tracks))}
    idx = np.array([order[t] for t in tracks])
    summed = np.zeros((len(order), probs.shape[1]))
    np.add.at(summed, idx, probs)
    truth = np.zeros(len(order), dtype=int)
    truth[idx] = y
    return truth, summed.argmax(axis=1)


def plot_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str, path: str | os.PathLike) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown_table(results: Sequence[dict]) -> str:
    """One row per result; every row names its protocol, data size and seed."""
    head = (
        "| model | features | search | input | protocol | accuracy | macro-F1 | track acc. | folds mean ± std "
        "| trained on | scored on | seed |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in results:
        folds = (
            f"{r['fold_accuracy_mean']:.3f} ± {r['fold_accuracy_std']:.3f}" if r.get("fold_accuracy_mean") is not None else "–"
        )
        cells = [
            r["model"],
            r["feature_set"],
            r["search"],
            r["input"],
            r["protocol"],
            fmt(r["accuracy"]),
            fmt(r["macro_f1"]),
            fmt(r.get("track_accuracy")),
            folds,
            r["train_description"],
            r["eval_description"],
            str(r["seed"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"
