"""Handcrafted features with exactly the columns and values of the public GTZAN tables.

The public ``features_30_sec.csv`` / ``features_3_sec.csv`` were computed with librosa
defaults at 22,050 Hz (n_fft 2048, hop 512), one librosa call per feature. We compute
one STFT per clip and derive every spectral feature from it, and run HPSS once with an
exact fast median filter: same values, several times faster (see ``benchmarks/``).
"""

from __future__ import annotations

import librosa
import numpy as np

from musicgenre.errors import AudioError
from musicgenre.jitcache import ensure_ready

SAMPLE_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 512
N_MFCC = 20
HPSS_KERNEL = 31  # librosa.decompose.hpss default

_FRAME_FEATURES = (
    "chroma_stft",
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "rolloff",
    "zero_crossing_rate",
    "harmony",
    "perceptr",
)
FEATURE_COLUMNS: list[str] = (
    [f"{name}_{stat}" for name in _FRAME_FEATURES for stat in ("mean", "var")]
    + ["tempo"]
    + [f"mfcc{i}_{stat}" for i in range(1, N_MFCC + 1) for stat in ("mean", "var")]
)
TABLE_COLUMNS: list[str] = ["filename", "length", *FEATURE_COLUMNS, "label"]


def _summarise(frames: dict[str, np.ndarray], tempo: float, mfcc: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in _FRAME_FEATURES:
        out[f"{name}_mean"] = float(np.mean(frames[name]))
        out[f"{name}_var"] = float(np.var(frames[name]))
    out["tempo"] = float(tempo)
    for i in range(N_MFCC):
        out[f"mfcc{i + 1}_mean"] = float(np.mean(mfcc[i]))
        out[f"mfcc{i + 1}_var"] = float(np.var(mfcc[i]))
    return out


def extract_features(y: np.ndarray, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """The 57 table features of one mono clip (values as librosa's per-feature calls give)."""
    ensure_ready()
    from musicgenre.medfilt import median_filter_1d

    stft = librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH)
    mag = np.abs(stft)
    power = mag**2

    centroid = librosa.feature.spectral_centroid(S=mag, sr=sr)
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr))
    # librosa.beat.beat_track's envelope (median over mel bands): its tempo is the table's.
    onset_env = librosa.onset.onset_strength(S=mel_db, sr=sr, hop_length=HOP_LENGTH, aggregate=np.median)

    # HPSS on the shared STFT: the same masks librosa.effects.hpss builds, one pass.
    harm_med = median_filter_1d(mag, HPSS_KERNEL, axis=1)
    perc_med = median_filter_1d(mag, HPSS_KERNEL, axis=0)
    mask_h = librosa.util.softmask(harm_med, perc_med, power=2)
    mask_p = librosa.util.softmask(perc_med, harm_med, power=2)
    harmonic = librosa.istft(stft * mask_h, hop_length=HOP_LENGTH, length=len(y), dtype=y.dtype)
    percussive = librosa.istft(stft * mask_p, hop_length=HOP_LENGTH, length=len(y), dtype=y.dtype)

    frames = {
        "chroma_stft": librosa.feature.chroma_stft(S=power, sr=sr),
        "rms": librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP_LENGTH),
        "spectral_centroid": centroid,
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(S=mag, sr=sr, centroid=centroid),
        "rolloff": librosa.feature.spectral_rolloff(S=mag, sr=sr),
        "zero_crossing_rate": librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP_LENGTH),
        "harmony": harmonic,
        "perceptr": percussive,
    }
    tempo = librosa.feature.tempo(onset_envelope=onset_env, sr=sr, hop_length=HOP_LENGTH)[0]
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
    out = _summarise(frames, tempo, mfcc)
    if not np.all(np.isfinite(list(out.values()))):
        raise AudioError("the audio's sample values are out of range (features are not finite)")
    return out


def extract_features_naive(y: np.ndarray, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """Reference: one librosa call per feature, as the public notebooks do (for tests/benchmarks)."""
    ensure_ready()
    frames = {
        "chroma_stft": librosa.feature.chroma_stft(y=y, sr=sr),
        "rms": librosa.feature.rms(y=y),
        "spectral_centroid": librosa.feature.spectral_centroid(y=y, sr=sr),
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(y=y, sr=sr),
        "rolloff": librosa.feature.spectral_rolloff(y=y, sr=sr),
        "zero_crossing_rate": librosa.feature.zero_crossing_rate(y),
        "harmony": librosa.effects.harmonic(y),
        "perceptr": librosa.effects.percussive(y),
    }
    tempo = np.atleast_1d(librosa.beat.beat_track(y=y, sr=sr)[0])[0]
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC)
    return _summarise(frames, tempo, mfcc)
