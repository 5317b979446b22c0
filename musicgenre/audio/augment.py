"""Random multi-condition copies of training clips (issue 33): how a recording reaches a microphone, simulated.

Each copy passes through a random chain of audiomentations transforms: a simulated room (its
``RoomSimulator`` is pyroomacoustics' hybrid model with random size, absorption and positions: image
sources for the first reflections, ray tracing for the tail; image sources alone, capped at order 12,
cut a 0.9 s room's tail to ~0.3 s, far drier than a living room heard by a laptop),
a loudspeaker's and a microphone's band limits (high- and low-pass of random cut-off and slope), an
uneven response (random shelves and a peak), stationary noise of a random colour at a random SNR,
and a random level. Two families of chains: ``wide`` (a laptop or phone near a loudspeaker: upper
limit 5-8 kHz or none) and ``narrow`` (telephone-like: upper limit 2.8-4.2 kHz, lower 200-450 Hz).

What is deliberately never here, so that the robustness study can test on condition families that
training never saw: lossy codecs, non-stationary (babble) noise, clipping, pitch and tempo changes,
and pedalboard's Freeverb rooms; the evaluation conditions come from ``audio.degradations``, a
different generator with other parameters and seeds.
"""

from __future__ import annotations

import random
from functools import cache

import numpy as np

from musicgenre.errors import MusicGenreError

KINDS = ("wide", "narrow")


def _audiomentations():
    try:
        import audiomentations
    except ImportError:
        raise MusicGenreError("augmentation needs audiomentations: pip install 'musicgenre[robustness]'") from None
    return audiomentations


@cache
def chain(kind: str):
    """The random chain of one family (built once; its randomness comes from the seeded global RNGs below)."""
    A = _audiomentations()
    if kind not in KINDS:
        raise MusicGenreError(f"unknown augmentation family {kind!r}; choose from {', '.join(KINDS)}")
    if kind == "wide":
        band = [
            A.HighPassFilter(min_cutoff_freq=40, max_cutoff_freq=350, min_rolloff=6, max_rolloff=36, p=0.8),
            A.LowPassFilter(min_cutoff_freq=4500, max_cutoff_freq=7800, min_rolloff=6, max_rolloff=36, p=0.6),
        ]
    else:
        band = [
            A.HighPassFilter(min_cutoff_freq=200, max_cutoff_freq=450, min_rolloff=12, max_rolloff=48, p=1.0),
            A.LowPassFilter(min_cutoff_freq=2800, max_cutoff_freq=4200, min_rolloff=12, max_rolloff=72, p=1.0),
        ]
    return A.Compose(
        [
            A.RoomSimulator(
                min_size_x=2.5, max_size_x=8.0, min_size_y=2.5, max_size_y=6.0, min_size_z=2.2, max_size_z=3.5,
                min_target_rt60=0.15, max_target_rt60=0.9, calculation_mode="rt60", use_ray_tracing=True, max_order=3,
                min_mic_distance=0.3, max_mic_distance=2.5, leave_length_unchanged=True, p=0.6,
            ),
            *band,
            A.LowShelfFilter(min_gain_db=-9, max_gain_db=6, p=0.4),
            A.HighShelfFilter(min_gain_db=-9, max_gain_db=6, p=0.4),
            A.PeakingFilter(min_gain_db=-9, max_gain_db=9, p=0.4),
            A.AddColorNoise(min_snr_db=5.0, max_snr_db=30.0, min_f_decay=-6.0, max_f_decay=3.0, p=0.7),
            A.Gain(min_gain_db=-40.0, max_gain_db=0.0, p=0.5),
        ]
    )  # fmt: skip


def augmented(y: np.ndarray, sr: int, kind: str, seed: int) -> np.ndarray:
    """One random copy of mono ``y``, deterministic in ``seed``.

    audiomentations draws from Python's and NumPy's global generators, so both are seeded here and
    their previous states restored afterwards: the caller's random streams are left as they were.
    """
    import pyroomacoustics as pra

    transforms = chain(kind)
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        pra.random.seed(numpy=seed % 2**32, libroom=seed % 2**32)  # the room's ray tracer draws from its own
        out = transforms(samples=np.asarray(y, dtype=np.float32), sample_rate=sr)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    out = np.nan_to_num(np.asarray(out, dtype=np.float32))
    peak = float(np.abs(out).max(initial=0.0))
    return out / peak if peak > 1.0 else out  # scaled back, never clipped: clipping is a family training must not see
