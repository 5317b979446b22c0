"""Property: any array of samples at any sample rate either classifies or raises the project's AudioError.

Hypothesis draws arrays that look like audio gone wrong (any length, dtype, channel layout, gain
from zero to overflow, NaN/inf injected, nonsense rates) as well as raw arbitrary small arrays
of any shape, cut at any ``max_seconds``. Runs are derandomised, so CI is repeatable (profiles in
conftest.py); set HYPOTHESIS_PROFILE=thorough for a longer search.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from musicgenre.audio.example import example_clip
from musicgenre.data.gtzan import GENRES
from musicgenre.errors import AudioError
from musicgenre.families import resolve_model
from musicgenre.models.predict import predict_array

REAL_RATES = st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000])
ANY_RATES = st.one_of(st.integers(-100_000, 1_000_000), st.floats())


@st.composite
def rates(draw) -> float:
    """Real rates four times in five, so the classifying path gets exercised as much as the refusals."""
    return draw(draw(st.sampled_from([REAL_RATES] * 4 + [ANY_RATES])))


GAINS = st.one_of(st.sampled_from([0.0, 1e-9, 1e-6, 1e-4, 1.0, 100.0, 1e4, 1e6, 1e39]), st.floats(0, 10))


@st.composite
def signals(draw) -> np.ndarray:
    """Music, noise, a tone, a constant or silence; scaled, typed, multichannel, with special values injected."""
    n = draw(draw(st.sampled_from([st.integers(0, 20_000)] + [st.integers(20_000, 120_000)] * 3)))
    kind = draw(st.sampled_from(["music", "noise", "tone", "constant", "zeros"]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    y = {
        "music": lambda: example_clip(n / 22050, 22050, seed)[:n],
        "noise": lambda: rng.standard_normal(n),
        "tone": lambda: np.sin(np.arange(n) * draw(st.floats(0, np.pi))),
        "constant": lambda: np.full(n, draw(st.floats(-1, 1))),
        "zeros": lambda: np.zeros(n),
    }[kind]()
    y = np.asarray(y, dtype=np.float64) * draw(GAINS)
    if n and draw(st.sampled_from([True, False, False, False])):
        specials = draw(st.lists(st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e30, 5e-324]), min_size=1, max_size=3))
        y[rng.integers(0, n, len(specials))] = specials
    channels = draw(st.sampled_from([1, 1, 2, 6]))
    if channels > 1:
        y = np.stack([y] * channels, axis=draw(st.sampled_from([0, 1])))
    dtype = draw(st.sampled_from(["float32", "float64", "float16", "int16", "int32"]))
    if dtype.startswith("int"):
        info = np.iinfo(dtype)
        y = np.nan_to_num(np.clip(y * info.max, info.min, info.max), nan=0.0).astype(dtype)
    else:
        with np.errstate(over="ignore"):
            y = y.astype(dtype)
    return y


ANY_ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int16, np.uint8, np.bool_, np.complex64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40),
)


@pytest.fixture(scope="module")
def models():
    return [resolve_model("bundled"), resolve_model("bundled:shallow"), resolve_model("bundled:cnn")]


MAX_SECONDS = st.sampled_from([600.0, 5.0, 1.0, 0.6, 0.1])


def _classifies_or_refuses(models, y, sr, max_seconds: float = 600.0) -> None:
    for model in models:
        try:
            out = predict_array(model, y, sr, max_seconds=max_seconds)
        except AudioError as exc:
            assert str(exc)
            event("refused: " + re.sub(r"\d[\d.,e+-]*", "N", str(exc).split(": ", 1)[1])[:40])
            continue
        event("classified")
        scores = np.array(list(out["scores"].values()))
        assert list(out["scores"]) == list(GENRES) and np.all(np.isfinite(scores))
        assert scores.sum() == pytest.approx(1.0, abs=1e-6)


@given(y=signals(), sr=rates(), max_seconds=MAX_SECONDS)
def test_any_signal_at_any_rate_classifies_or_raises_audio_error(models, y, sr, max_seconds):
    _classifies_or_refuses(models, y, sr, max_seconds)


@given(y=ANY_ARRAYS, sr=rates())
def test_any_array_classifies_or_raises_audio_error(models, y, sr):
    _classifies_or_refuses(models, y, sr)


@st.composite
def plausible_audio(draw) -> tuple[np.ndarray, int]:
    """Recordings nothing is wrong with: at least half a second, at a real rate, -80 dBFS to full scale."""
    sr = draw(REAL_RATES)
    n = int(draw(st.floats(0.51, 8.0)) * sr)
    seed = draw(st.integers(0, 2**16))
    y = {
        "music": lambda: example_clip(n / sr + 1, sr, seed)[:n],
        "noise": lambda: np.random.default_rng(seed).uniform(-1, 1, n),
        "tone": lambda: np.sin(np.arange(n) * draw(st.floats(0.01, np.pi)) + 0.5),
    }[draw(st.sampled_from(["music", "noise", "tone"]))]()
    y = np.asarray(y, np.float64) / np.max(np.abs(y)) * draw(st.floats(1e-4, 1.0))
    channels = draw(st.sampled_from([1, 2, 6]))
    if channels > 1:
        y = np.stack([y] * channels, axis=draw(st.sampled_from([0, 1])))
    dtype = draw(st.sampled_from(["float32", "float64", "int16", "int32"]))
    y = (y * np.iinfo(dtype).max).astype(dtype) if dtype.startswith("int") else y.astype(dtype)
    return y, sr


@given(audio=plausible_audio(), max_seconds=st.sampled_from([600.0, 3.0, 1.0]))
def test_any_plausible_recording_classifies(models, audio, max_seconds):
    y, sr = audio
    for model in models:
        out = predict_array(model, y, sr, max_seconds=max_seconds)
        assert list(out["scores"]) == list(GENRES) and sum(out["scores"].values()) == pytest.approx(1.0, abs=1e-6)
        assert out.get("truncated", False) == (max(y.shape) > round(max_seconds * sr))
