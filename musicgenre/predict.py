"""Audio in, genre probabilities out: window by window, probabilities averaged."""

from __future__ import annotations

import os

import numpy as np

from musicgenre.audio import DEFAULT_MAX_SECONDS, load_audio, prepare_samples, windows
from musicgenre.features import FEATURE_COLUMNS, extract_features
from musicgenre.modelio import ShallowModel


def window_probabilities(model: ShallowModel, y: np.ndarray) -> np.ndarray:
    """One probability row per model window of validated audio at ``model.sample_rate``."""
    parts = windows(y, model.sample_rate, model.window_seconds)
    rows = [extract_features(part, model.sample_rate) for part in parts]
    X = np.array([[r[c] for c in FEATURE_COLUMNS] for r in rows])  # noqa: N806
    return model.predict_proba(X)


def _result(model: ShallowModel, probs: np.ndarray) -> dict:
    mean = probs.mean(axis=0)
    scores = {label: float(p) for label, p in zip(model.labels, mean, strict=True)}
    return {"genre": model.labels[int(np.argmax(mean))], "scores": scores, "windows": len(probs)}


def predict_array(model: ShallowModel, y: np.ndarray, sr: int) -> dict:
    """Classify in-memory audio (any rate, mono or multichannel)."""
    samples = prepare_samples(y, sr, model.sample_rate)
    return _result(model, window_probabilities(model, samples))


def predict_file(model: ShallowModel, path: str | os.PathLike, max_seconds: float = DEFAULT_MAX_SECONDS) -> dict:
    """Classify an audio file; input longer than ``max_seconds`` is cut (``"truncated": true``)."""
    audio = load_audio(path, sr=model.sample_rate, max_seconds=max_seconds)
    out = {"file": str(path), **_result(model, window_probabilities(model, audio.samples))}
    if audio.truncated:
        out["truncated"] = True
    return out
