"""librosa's spectral building blocks in plain NumPy: the same values, none of its import cost.

The public GTZAN tables were computed with librosa 0.11 defaults, and the CNN was trained on its
mel spectrograms. Importing librosa's feature code costs ~2.5 s (scipy.signal, scipy.stats, and
numba loading its compiled kernels) before a 30 s clip's features take 0.5 s, and its on-disk
kernel cache is what two processes can break (see ``jitcache``). Everything prediction needs is
here, written after librosa's source with the same dtypes at every step, and checked against
librosa itself in ``tests/test_spectral.py`` (each function and every table feature on real
clips). Only the features' median filter is compiled (``musicgenre.features.medfilt``, with numba).

Shapes follow librosa: spectrograms are ``(bins, frames)``.
"""

from __future__ import annotations

from functools import cache

import numpy as np


def hann(n: int) -> np.ndarray:
    """scipy's periodic Hann window (``get_window('hann', n)``), computed the way scipy does, in float64."""
    fac = np.linspace(-np.pi, np.pi, n + 1)[:n]
    return 0.5 + 0.5 * np.cos(fac)


def frame(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """``librosa.util.frame``: a (length, frames) view of 1-D ``x``, one column per frame."""
    return np.lib.stride_tricks.sliding_window_view(x, length)[::hop].T


def normalize(S: np.ndarray, norm: float, axis: int) -> np.ndarray:  # noqa: N803
    """``librosa.util.normalize`` with its defaults: columns whose norm is below ``tiny`` are left as they are."""
    mag = np.abs(S).astype(float)
    if norm == np.inf:
        length = np.max(mag, axis=axis, keepdims=True)
    else:
        length = np.sum(mag**norm, axis=axis, keepdims=True) ** (1.0 / norm)
    length[length < np.finfo(S.dtype).tiny] = 1.0
    out = np.empty_like(S)
    out[:] = S / length
    return out


def stft(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``librosa.stft`` with its defaults: centred frames padded with zeros, periodic Hann window.

    The window is float64, so each frame's FFT is computed in float64 and stored as complex64 for
    float32 audio, as librosa does.
    """
    frames = frame(np.pad(y, n_fft // 2), n_fft, hop)
    out_dtype = np.complex64 if y.dtype == np.float32 else np.complex128
    return np.fft.rfft(hann(n_fft)[:, None] * frames, axis=0).astype(out_dtype)


def istft(stft_matrix: np.ndarray, hop: int, length: int, dtype: np.dtype) -> np.ndarray:
    """``librosa.istft(..., length=length)`` of several spectrograms at once: ``(..., bins, frames)`` -> ``(..., length)``.

    Overlap-add frame by frame in librosa's order (each float64 windowed frame added into the
    ``dtype`` buffer), then division by the summed squared window where it is above ``tiny``.
    """
    n_fft = 2 * (stft_matrix.shape[-2] - 1)
    window = hann(n_fft)
    n_frames = min(stft_matrix.shape[-1], int(np.ceil((length + 2 * (n_fft // 2)) / hop)))
    frames = window[:, None] * np.fft.irfft(stft_matrix[..., :n_frames], n=n_fft, axis=-2)
    total = n_fft + hop * (n_frames - 1)
    square = window**2
    if n_fft % hop == 0:
        # Hop-sized blocks: block b gets part p of frame b - p. Adding the parts from the last to the
        # first adds each sample's frames in librosa's order, one vectorised step per part.
        parts = n_fft // hop
        blocks = np.zeros((*stft_matrix.shape[:-2], n_frames + parts - 1, hop), dtype=dtype)
        blocks_ss = np.zeros((n_frames + parts - 1, hop), dtype=dtype)
        for p in reversed(range(parts)):
            blocks[..., p : p + n_frames, :] += np.swapaxes(frames[..., p * hop : (p + 1) * hop, :], -1, -2)
            blocks_ss[p : p + n_frames] += square[p * hop : (p + 1) * hop]
        y = blocks.reshape(*blocks.shape[:-2], total)
        window_ss = blocks_ss.reshape(total)
    else:
        y = np.zeros((*stft_matrix.shape[:-2], total), dtype=dtype)
        window_ss = np.zeros(total, dtype=dtype)
        for i in range(n_frames):
            y[..., i * hop : i * hop + n_fft] += frames[..., i]
            window_ss[i * hop : i * hop + n_fft] += square
    start = n_fft // 2
    y = y[..., start : start + length]
    window_ss = window_ss[start : start + length]
    if window_ss.shape[-1] < length:  # librosa's fix_length: zeros past the last frame
        y = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, length - y.shape[-1])])
        window_ss = np.pad(window_ss, (0, length - window_ss.shape[-1]))
    nonzero = window_ss > np.finfo(window_ss.dtype).tiny
    y[..., nonzero] /= window_ss[nonzero]
    return y


def fft_frequencies(sr: float, n_fft: int) -> np.ndarray:
    return np.fft.rfftfreq(n=n_fft, d=1.0 / sr)


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asanyarray(f, dtype=float)
    mels = f / (200.0 / 3)
    log_t = f >= 1000.0
    mels[log_t] = 1000.0 / (200.0 / 3) + np.log(f[log_t] / 1000.0) / (np.log(6.4) / 27.0)
    return mels


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    freqs = (200.0 / 3) * mels
    min_log_mel = 1000.0 / (200.0 / 3)
    log_t = mels >= min_log_mel
    freqs[log_t] = 1000.0 * np.exp(np.log(6.4) / 27.0 * (mels[log_t] - min_log_mel))
    return freqs


def mel_frequencies(sr: float, n: int) -> np.ndarray:
    """``n`` frequencies (Hz) evenly spaced on the mel scale from 0 Hz to sr/2: mel bands' edges and centres."""
    return mel_to_hz(np.linspace(hz_to_mel(np.array([0.0]))[0], hz_to_mel(np.array([sr / 2.0]))[0], n))


@cache
def mel_filters(sr: float, n_fft: int, n_mels: int = 128) -> np.ndarray:
    """``librosa.filters.mel`` with its defaults (0 Hz to sr/2, Slaney scale and area normalisation), float32.

    Built once per process and shape, and read-only since it is shared."""
    fftfreqs = fft_frequencies(sr, n_fft)
    mel_f = mel_frequencies(sr, n_mels + 2)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    weights.setflags(write=False)
    return weights


def melspectrogram(y: np.ndarray, sr: float, n_fft: int = 2048, hop: int = 512, n_mels: int = 128) -> np.ndarray:
    """``librosa.feature.melspectrogram(y=y)``: (mels, frames) mel power spectrogram."""
    return mel_filters(sr, n_fft, n_mels) @ np.abs(stft(y, n_fft, hop)) ** 2


def power_to_db(S: np.ndarray, ref: float | None = 1.0, top_db: float = 80.0) -> np.ndarray:  # noqa: N803
    """``librosa.power_to_db`` (amin 1e-10); ``ref=None`` means relative to the maximum (librosa's ``ref=np.max``)."""
    ref_value = np.max(S) if ref is None else abs(ref)
    log_spec = 10.0 * np.log10(np.maximum(1e-10, S))
    log_spec -= 10.0 * np.log10(np.maximum(1e-10, ref_value))
    return np.maximum(log_spec, log_spec.max() - top_db)


def dct_ortho(x: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` coefficients of the orthonormal DCT-II along axis 0 (``scipy.fft.dct(norm='ortho')``)."""
    m = x.shape[0]
    k = np.arange(n)[:, None]
    basis = np.cos(np.pi * k * (2 * np.arange(m)[None, :] + 1) / (2 * m)) * np.sqrt(2.0 / m)
    basis[0] /= np.sqrt(2.0)
    return (basis @ x.astype(np.float64)).astype(x.dtype)


def softmask(X: np.ndarray, X_ref: np.ndarray, power: int = 2) -> np.ndarray:  # noqa: N803
    """``librosa.util.softmask``: X^p / (X^p + X_ref^p), 0 where both are (nearly) zero."""
    Z = np.maximum(X, X_ref)  # noqa: N806
    bad = Z < np.finfo(Z.dtype).tiny
    Z[bad] = 1
    mask = (X / Z) ** power
    ref_mask = (X_ref / Z) ** power
    good = ~bad
    mask[good] /= mask[good] + ref_mask[good]
    mask[bad] = 0.0
    return mask


def _local_max(x: np.ndarray) -> np.ndarray:
    """``librosa.util.localmax`` along axis 0: x[i] > x[i-1] and x[i] >= x[i+1]; the last bin only needs x[-1] > x[-2]."""
    out = np.zeros(x.shape, dtype=bool)
    out[1:-1] = (x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])
    out[-1] = x[-1] > x[-2]
    return out


def _parabolic_shift(x: np.ndarray) -> np.ndarray:
    """librosa's parabolic peak interpolation along axis 0 (0 at the edges and where the optimum is over a bin away)."""
    xf = x.astype(np.float64)  # numba computes the stencil in float64 (its int literals promote)
    a = xf[2:] + xf[:-2] - 2 * xf[1:-1]
    b = (xf[2:] - xf[:-2]) / 2
    shift = np.zeros(x.shape, dtype=x.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a)
    shift[1:-1] = inner
    return shift


def estimate_tuning(power: np.ndarray, sr: float, n_fft: int, resolution: float = 0.01, bins_per_octave: int = 12) -> float:
    """``librosa.estimate_tuning(S=power)``: piptrack's peaks (150-4000 Hz, above 0.1 of each frame's maximum), then
    the histogram peak of their deviation from equal temperament, in fractions of a bin."""
    S = np.abs(power)  # noqa: N806
    fft_freqs = fft_frequencies(sr, n_fft)
    avg = np.gradient(S, axis=-2)
    shift = _parabolic_shift(S)
    dskew = 0.5 * avg * shift
    freq_mask = ((150.0 <= fft_freqs) & (fft_freqs < min(4000.0, sr / 2)))[:, None]
    ref_value = 0.1 * np.max(S, axis=-2)[None, :]
    idx = np.nonzero(freq_mask & _local_max(S * (S > ref_value)))
    pitch = np.zeros_like(S)
    mag = np.zeros_like(S)
    pitch[idx] = (idx[-2] + shift[idx]) * float(sr) / n_fft
    mag[idx] = S[idx] + dskew[idx]
    pitch_mask = pitch > 0
    threshold = np.median(mag[pitch_mask]) if pitch_mask.any() else 0.0
    freqs = pitch[(mag >= threshold) & pitch_mask]
    freqs = freqs[freqs > 0]
    if not np.any(freqs):
        return 0.0
    residual = np.mod(bins_per_octave * np.log2(freqs / (440.0 / 16)), 1.0)
    residual[residual >= 0.5] -= 1.0
    counts, edges = np.histogram(residual, np.linspace(-0.5, 0.5, int(np.ceil(1.0 / resolution)) + 1))
    return float(edges[np.argmax(counts)])


def chroma_filters(sr: float, n_fft: int, tuning: float, n_chroma: int = 12) -> np.ndarray:
    """``librosa.filters.chroma`` with its defaults (centre octave 5, width 2, L2-normalised, starting at C), float32."""
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    a440 = 440.0 * 2.0 ** (tuning / n_chroma)
    frqbins = n_chroma * np.log2(frequencies / (float(a440) / 16))
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    D = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T  # noqa: N806
    half = np.round(float(n_chroma) / 2)
    D = np.remainder(D + half + 10 * n_chroma, n_chroma) - half  # noqa: N806
    wts = np.exp(-0.5 * (2 * D / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    wts = normalize(wts, norm=2, axis=0)
    wts *= np.tile(np.exp(-0.5 * (((frqbins / n_chroma - 5.0) / 2) ** 2)), (n_chroma, 1))
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    return np.ascontiguousarray(wts[:, : int(1 + n_fft / 2)], dtype=np.float32)


def chroma_stft(power: np.ndarray, sr: float) -> np.ndarray:
    """``librosa.feature.chroma_stft(S=power)``: 12 pitch classes, tuning estimated from the spectrogram, max-normalised."""
    n_fft = 2 * (power.shape[-2] - 1)
    fb = chroma_filters(sr, n_fft, estimate_tuning(power, sr, n_fft))
    return normalize(fb @ power, norm=np.inf, axis=-2)


def spectral_centroid(mag: np.ndarray, freq: np.ndarray) -> np.ndarray:
    return np.sum(freq[:, None] * normalize(mag, norm=1, axis=-2), axis=-2, keepdims=True)


def spectral_bandwidth(mag: np.ndarray, freq: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    deviation = np.abs(np.subtract.outer(centroid[0], freq).T)
    return np.sum(normalize(mag, norm=1, axis=-2) * deviation**2, axis=-2, keepdims=True) ** 0.5


def spectral_rolloff(mag: np.ndarray, freq: np.ndarray, roll_percent: float = 0.85) -> np.ndarray:
    total = np.cumsum(mag, axis=-2)
    ind = np.where(total < roll_percent * total[-1:, :], np.nan, 1)
    return np.nanmin(ind * freq[:, None], axis=-2, keepdims=True)


def rms(y: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """``librosa.feature.rms(y=y)``: centred, zero-padded frames."""
    x = frame(np.pad(y, frame_length // 2), frame_length, hop)
    return np.sqrt(np.mean(np.square(x, dtype=np.float32), axis=-2, keepdims=True))


def zero_crossing_rate(y: np.ndarray, frame_length: int, hop: int, threshold: float = 1e-10) -> np.ndarray:
    """``librosa.feature.zero_crossing_rate``: centred frames padded by repeating the edge samples; samples within
    ``threshold`` of 0 count as 0, and 0 as positive."""
    x = frame(np.pad(y, frame_length // 2, mode="edge"), frame_length, hop)
    negative = np.signbit(np.where(np.abs(x) <= threshold, 0, x))
    crossings = np.zeros(x.shape, dtype=bool)
    crossings[1:] = negative[1:] != negative[:-1]
    return np.mean(crossings, axis=-2, keepdims=True)


def onset_strength_median(mel_db: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``librosa.onset.onset_strength(S=mel_db, aggregate=np.median)``: beat_track's onset envelope."""
    onset = np.maximum(0.0, mel_db[:, 1:] - mel_db[:, :-1])
    onset = np.median(onset, axis=0).astype(mel_db.dtype)
    onset = np.pad(onset, (1 + n_fft // (2 * hop), 0))
    return onset[: mel_db.shape[-1]]


def next_fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (``scipy.fft.next_fast_len(n, real=True)``)."""
    best = n
    while True:
        m = best
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return best
        best += 1


def tempo(onset: np.ndarray, sr: float, hop: int, start_bpm: float = 120.0, ac_size: float = 8.0, max_bpm: float = 320.0):
    """``librosa.feature.tempo(onset_envelope=onset)`` in BPM: the mean autocorrelation tempogram's peak under a
    log-normal prior."""
    win = int((ac_size * sr) // hop)
    n = onset.shape[-1]
    padded = np.pad(onset, win // 2, mode="linear_ramp", end_values=[0, 0])
    odf = frame(padded, win, 1)[:, :n] * hann(win)[:, None]
    n_pad = next_fast_len(2 * win - 1)
    spectrum = np.fft.rfft(odf, n=n_pad, axis=0)
    autocorr = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n_pad, axis=0)[:win]
    tg = np.mean(normalize(autocorr, norm=np.inf, axis=0), axis=-1)
    bpms = np.zeros(win)
    bpms[0] = np.inf
    bpms[1:] = 60.0 * sr / (hop * np.arange(1.0, win))
    logprior = -0.5 * (np.log2(bpms) - np.log2(start_bpm)) ** 2
    logprior[: int(np.argmax(bpms < max_bpm))] = -np.inf
    return float(bpms[np.argmax(np.log1p(1e6 * tg) + logprior)])
