"""Handcrafted features with exactly the columns and values of the public GTZAN tables.

The public ``features_30_sec.csv`` / ``features_3_sec.csv`` were computed with librosa
defaults at 22,050 Hz (n_fft 2048, hop 512), one librosa call per feature. We compute
one STFT per clip and derive every spectral feature from it, and run HPSS once with an
exact fast median filter: same values, several times faster (see ``benchmarks/``). The
computation is librosa's, rewritten in NumPy (``musicgenre.audio.spectral``, ``musicgenre.features.medfilt``),
so extracting them costs no librosa import (~2.5 s) and runs no compiled (numba) code at all;
librosa itself runs only ``extract_features_naive``, the reference that tests compare against
and ``musicgenre features --librosa`` uses.
"""

from __future__ import annotations

import numpy as np

from musicgenre.audio import spectral
from musicgenre.errors import AudioError

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
    """The 57 table features of one mono clip (values as librosa's per-feature calls give), in NumPy."""
    # Samples near float32's limit overflow on the way; the result is refused below, with an AudioError.
    with np.errstate(over="ignore", invalid="ignore"):
        out = _extract(y, sr)
    if not np.all(np.isfinite(list(out.values()))):
        raise AudioError("the audio's sample values are out of range (features are not finite)")
    return out


def _extract(y: np.ndarray, sr: int) -> dict[str, float]:
    from musicgenre.features.medfilt import median_filter_1d

    stft = spectral.stft(y, N_FFT, HOP_LENGTH)
    mag = np.abs(stft)
    power = mag**2
    freq = spectral.fft_frequencies(sr, N_FFT)

    centroid = spectral.spectral_centroid(mag, freq)
    mel_db = spectral.power_to_db(spectral.mel_filters(sr, N_FFT) @ power)
    # librosa.beat.beat_track's envelope (median over mel bands): its tempo is the table's.
    onset_env = spectral.onset_strength_median(mel_db, N_FFT, HOP_LENGTH)

    # HPSS on the shared STFT: the same masks librosa.effects.hpss builds, one pass.
    harm_med = median_filter_1d(mag, HPSS_KERNEL, axis=1)
    perc_med = median_filter_1d(mag, HPSS_KERNEL, axis=0)
    masks = np.stack([spectral.softmask(harm_med, perc_med), spectral.softmask(perc_med, harm_med)])
    harmonic, percussive = spectral.istft(stft * masks, HOP_LENGTH, len(y), y.dtype)

    frames = {
        "chroma_stft": spectral.chroma_stft(power, sr),
        "rms": spectral.rms(y, N_FFT, HOP_LENGTH),
        "spectral_centroid": centroid,
        "spectral_bandwidth": spectral.spectral_bandwidth(mag, freq, centroid),
        "rolloff": spectral.spectral_rolloff(mag, freq),
        "zero_crossing_rate": spectral.zero_crossing_rate(y, N_FFT, HOP_LENGTH),
        "harmony": harmonic,
        "perceptr": percussive,
    }
    tempo = spectral.tempo(onset_env, sr, HOP_LENGTH)
    mfcc = spectral.dct_ortho(mel_db, N_MFCC)
    return _summarise(frames, tempo, mfcc)


def extract_features_naive(y: np.ndarray, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """Reference: one librosa call per feature, as the public notebooks do (for tests/benchmarks)."""
    from musicgenre.features.jitcache import ensure_ready

    ensure_ready()  # first: it points numba at musicgenre's checked cache, which only works before numba is imported
    import librosa

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
