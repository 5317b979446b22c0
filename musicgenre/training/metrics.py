"""Metrics (among them what ``musicgenre evaluate`` prints) and the files every experiment writes: JSON, a Markdown
table, confusion matrices."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from musicgenre.errors import MusicGenreError, describe_failure


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


def feature_table_metrics(model, path: str | os.PathLike) -> dict:
    """``classification_metrics`` of a feature model on a labelled table in the public GTZAN schema (its ``label``
    column is the truth). What ``musicgenre evaluate --features`` prints."""
    from musicgenre.features.handcrafted import FEATURE_COLUMNS
    from musicgenre.features.table import load_feature_table

    table = load_feature_table(path)
    if "label" not in table.columns:
        raise MusicGenreError(f"{path}: no 'label' column to evaluate against")
    unknown = sorted(set(table["label"]) - set(model.labels))
    if unknown:
        raise MusicGenreError(f"{path}: labels the model does not know: {unknown[:5]}")
    probs = model.predict_proba(table[FEATURE_COLUMNS].to_numpy())
    pred = [model.labels[i] for i in probs.argmax(axis=1)]
    return classification_metrics(table["label"], pred, model.labels)


def audio_folder_metrics(model, folder: str | os.PathLike) -> dict:
    """``classification_metrics`` of ``model`` on a labelled audio folder (each file's genre from its folder or name),
    and ``failed``: the files that could not be classified, with why (listed like unreadable files; the rest are still
    scored). What ``musicgenre evaluate --audio`` prints."""
    from musicgenre.data.gtzan import label_from_path, labelled_files
    from musicgenre.models.predict import predict_file

    files = labelled_files(folder)
    truth, pred, failed = [], [], {}
    for path in files:
        try:
            pred.append(predict_file(model, path)["genre"])
        except Exception as exc:  # listed like an unreadable file; the rest are still scored
            failed[str(path)] = describe_failure(exc)
            continue
        truth.append(label_from_path(path))
    if not truth:
        raise MusicGenreError(f"{folder}: none of the {len(files)} files could be classified")
    return {**classification_metrics(truth, pred, model.labels), "failed": failed}


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
