"""Audio in, genre probabilities out: window by window, probabilities averaged.

Works for any ``GenreModel``: the pretrained probe (``probe.ProbeModel``), the feature pipelines
(``modelio.ShallowModel``), the CNN and transformers checkpoints (``transformer_model.TransformerModel``).
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from musicgenre.audio.io import DEFAULT_MAX_SECONDS, load_audio, prepare_audio, windows


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


# A model saved without its own threshold (chosen out of fold; see ``families.probe.robust``) flags answers whose top
# probability is below this: for ten classes, less than an even chance for the winner.
DEFAULT_UNCERTAIN_BELOW = 0.5


def judge(model: GenreModel, mean_probs: np.ndarray, quality) -> bool:
    """``uncertain``: the recording has a severe quality issue (silence, too short, speech, heavy clipping), or the
    model's top probability is below its threshold (``meta["uncertain_below"]``, chosen out of fold)."""
    threshold = float(model.meta.get("uncertain_below", DEFAULT_UNCERTAIN_BELOW))
    return bool(quality.severe or float(np.max(mean_probs)) < threshold)


def window_outputs(model: GenreModel, y: np.ndarray, quality=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-window genre probabilities of validated audio and, for a probe on the tagger, its per-window
    tag probabilities from the same pass (None for any other model).

    ``quality``: the recording's, when already measured; a probe that routes windows by their channel then
    reuses it for a recording of one window instead of measuring that window again.
    """
    parts = windows(y, model.sample_rate, model.window_seconds)
    if hasattr(model, "window_outputs"):
        same = quality is not None and len(parts) == 1 and len(parts[0]) == len(y)  # the window is the recording
        return model.window_outputs(parts, [(quality.low_hz, quality.high_hz, quality.snr_db)] if same else None)
    return model.predict_windows(parts), None


def _classify(model: GenreModel, y: np.ndarray, tags: int) -> dict:
    """Summary of validated audio at ``model.sample_rate`` with ``uncertain`` and the recording's ``quality``, plus the
    pretrained tagger's top ``tags`` if asked.

    A probe reports the tags of the very windows it classified; for any other model the tagger
    runs on the same decoded audio, resampled to its rate (never decoded twice).
    """
    from musicgenre.audio.quality import assess

    quality = assess(y, model.sample_rate)
    probs, tag_probs = window_outputs(model, y, quality)
    out = summarise(model.labels, probs)
    out["uncertain"] = judge(model, probs.mean(axis=0), quality)
    out["quality"] = quality.to_dict()
    if tags:
        from musicgenre.models.musicnn import SAMPLE_RATE, load_backbone, top_tags

        if tag_probs is None:
            tagger = load_backbone()
            y16 = prepare_audio(y, model.sample_rate, SAMPLE_RATE).samples
            tag_probs = np.stack(
                [tagger.analyse(p)["tags"].mean(axis=0) for p in windows(y16, SAMPLE_RATE, model.window_seconds)]
            )
        out["tags"] = top_tags(tag_probs.mean(axis=0), load_backbone().tag_names, tags)
    return out


def predict_array(model: GenreModel, y: np.ndarray, sr: float, max_seconds: float = DEFAULT_MAX_SECONDS, tags: int = 0) -> dict:
    """Classify in-memory audio (any rate, mono or multichannel); only its first ``max_seconds`` are used.

    ``tags`` > 0 adds the pretrained tagger's top tags. Raises ``AudioError`` for anything that is
    not usable audio (see ``audio.prepare_audio``).
    """
    audio = prepare_audio(y, sr, model.sample_rate, max_seconds=max_seconds)
    out = _classify(model, audio.samples, tags)
    if audio.truncated:
        out["truncated"] = True
    return out


def predict_file(model: GenreModel, path: str | os.PathLike, max_seconds: float = DEFAULT_MAX_SECONDS, tags: int = 0) -> dict:
    """Classify an audio file; input longer than ``max_seconds`` is cut (``"truncated": true``); ``tags`` as above."""
    audio = load_audio(path, sr=model.sample_rate, max_seconds=max_seconds)
    out = {"file": str(path), **_classify(model, audio.samples, tags)}
    if audio.truncated:
        out["truncated"] = True
    return out


def predict_line(model: GenreModel, path: str | os.PathLike, max_seconds: float = DEFAULT_MAX_SECONDS, tags: int = 0) -> dict:
    """One line of ``musicgenre predict``: ``predict_file``'s answer, or ``{"file", "error"}`` for a file that cannot
    be classified (reported on its own line, so the other files still get theirs)."""
    from musicgenre.errors import describe_failure

    try:
        return predict_file(model, path, max_seconds=max_seconds, tags=tags)
    except Exception as exc:
        return {"file": str(path), "error": describe_failure(exc)}
