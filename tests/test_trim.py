"""Trimming a microphone recording's silent start and end: the room before and after the music."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import synth

from musicgenre.audio.io import TRIM_MARGIN_SECONDS, silent_edges, trim_silence

SR = 48000


def _noise(seconds: float, dbfs: float) -> np.ndarray:
    return np.random.default_rng(1).normal(size=int(seconds * SR)) * 10 ** (dbfs / 20)


@pytest.mark.parametrize("room_dbfs", [-120.0, -65.0, -55.0])  # digital silence, a quiet room, a noisy one
def test_silent_edges_are_cut_with_a_margin(room_dbfs):
    y = np.concatenate([_noise(2.0, room_dbfs), synth(5.0, SR), _noise(1.0, room_dbfs)]).astype(np.float32)
    start, stop = silent_edges(y, SR)
    assert start / SR == pytest.approx(2.0 - TRIM_MARGIN_SECONDS, abs=0.06)
    assert (len(y) - stop) / SR == pytest.approx(1.0 - TRIM_MARGIN_SECONDS, abs=0.06)
    assert len(trim_silence(y, SR)) == stop - start


@pytest.mark.parametrize(
    "y",
    [
        synth(5.0, SR),  # music throughout
        _noise(5.0, -70.0),  # all quiet: left for the quality check to report
        np.concatenate([_noise(5.0, -70.0), synth(0.2, SR), _noise(5.0, -70.0)]),  # a click: too short to keep alone
        np.zeros(10),  # shorter than a frame
    ],
)
def test_nothing_to_trim_keeps_everything(y):
    assert silent_edges(y.astype(np.float32), SR) == (0, len(y))
