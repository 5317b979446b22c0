"""Audio in, genre probabilities out: window by window, probabilities averaged.

Works for any ``GenreModel``: the bundled/shallow feature pipelines (``modelio.ShallowModel``)
and transformers checkpoints (``transformer_model.TransformerModel``).
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from musicgenre.audio import DEFAULT_MAX_SECONDS, load_audio, prepare_audio, windows


class GenreModel(Protocol):
    """What prediction needs from a model: its labels, audio rate and window, and per-window probabilities."""

    labels: list[str]
    window_seconds: float
    meta: dict

    @property
    def sample_rate(self) -> int: ...

    def predict_windows(self, parts: list[np.ndarray]) -> np.ndarray: ...


def window_probabilities(model: GenreModel, y: np.ndarray) -> np.ndarray:
    """One probability row per model window of validated audio at ``model.sample_rate``."""
    return model.predict_windows(windows(y, model.sample_rate, model.window_seconds))


def summarise(labels: list[str], probs: np.ndarray) -> dict:
    """The averaged probabilities of a clip's windows: top genre, all scores, window count."""
    mean = probs.mean(axis=0)
    scores = {label: float(p) for label, p in zip(labels, mean, strict=True)}
    return {"genre": labels[int(np.argmax(mean))], "scores": scores, "windows": len(probs)}


def predict_array(model: GenreModel, y: np.ndarray, sr: float, max_seconds: float = DEFAULT_MAX_SECONDS) -> dict:
    """Classify in-memory audio (any rate, mono or multichannel); only its first ``max_seconds`` are used.

    Raises ``AudioError`` for anything that is not usable audio (see ``audio.prepare_audio``).
    """
    audio = prepare_audio(y, sr, model.sample_rate, max_seconds=max_seconds)
    out = summarise(model.labels, window_probabilities(model, audio.samples))
    if audio.truncated:
        out["truncated"] = True
    return out


def predict_file(model: GenreModel, path: str | os.PathLike, max_seconds: float = DEFAULT_MAX_SECONDS) -> dict:
    """Classify an audio file; input longer than ``max_seconds`` is cut (``"truncated": true``)."""
    audio = load_audio(path, sr=model.sample_rate, max_seconds=max_seconds)
    out = {"file": str(path), **summarise(model.labels, window_probabilities(model, audio.samples))}
    if audio.truncated:
        out["truncated"] = True
    return out
