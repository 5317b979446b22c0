"""A synthetic, music-like clip: GTZAN audio cannot ship, but the demo and tests need sound."""

from __future__ import annotations

import numpy as np


def example_clip(seconds: float = 10.0, sr: int = 22050, seed: int = 0, channels: int = 1) -> np.ndarray:
    """A decaying kick every half second, a three-note bass line and hi-hat noise, as float32.

    With ``channels`` > 1: shape ``(n, channels)``, each channel at a different gain (0.5 to 1).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    kick = np.sin(2 * np.pi * 55 * t) * np.exp(-10 * (t % 0.5))
    bass = 0.3 * np.sin(2 * np.pi * (110 + 55 * (np.floor(t) % 3)) * t)
    hats = rng.normal(0, 0.1, t.size) * np.exp(-40 * ((t + 0.25) % 0.5))
    y = (0.4 * (kick + bass + hats)).astype(np.float32)
    if channels > 1:
        y = np.stack([y * (0.5 + 0.5 * c / channels) for c in range(channels)], axis=1)
    return y
