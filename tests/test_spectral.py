"""The NumPy port of librosa's spectral code gives librosa's values: bit for bit where the arithmetic is the same."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal
from conftest import SR, synth

from musicgenre.audio import spectral
from musicgenre.audio.io import load_audio, resample
from musicgenre.features.handcrafted import FEATURE_COLUMNS, N_FFT, extract_features, extract_features_naive
from musicgenre.features.jitcache import ensure_ready

HOP = 512


@pytest.fixture(scope="module")
def clips(mini_clips) -> list[np.ndarray]:
    """Three real clips of different genres (blues, classical, metal), decoded as prediction decodes them."""
    chosen = [next(p for p in mini_clips if p.name.startswith(genre)) for genre in ("blues", "classical", "metal")]
    ensure_ready()  # librosa's compiled code, from the checked cache
    return [load_audio(p, sr=SR).samples for p in chosen]


@pytest.fixture(scope="module")
def signals(request) -> list[np.ndarray]:
    """A synthetic clip, one shorter than a frame and silence, plus the real clips when ../shared/data is there."""
    synthetic = [synth(4.0, seed=2), synth(0.03, seed=1), np.zeros(SR, np.float32)]
    try:
        return [*request.getfixturevalue("clips"), *synthetic]
    except pytest.skip.Exception:  # no real data: the synthetic signals still check every function
        ensure_ready()
        return synthetic


@pytest.mark.parametrize("n", [512, 2048, 344])
def test_hann_is_scipys_periodic_window(n):
    assert np.array_equal(spectral.hann(n), scipy.signal.get_window("hann", n, fftbins=True))


def test_next_fast_len_is_scipys():
    assert [spectral.next_fast_len(n) for n in range(1, 3000)] == [scipy.fft.next_fast_len(n, real=True) for n in range(1, 3000)]


@pytest.mark.parametrize(("sr", "n_fft", "n_mels"), [(22050, 2048, 128), (22050, 2048, 64), (16000, 512, 96)])
def test_mel_filters_are_librosas(sr, n_fft, n_mels):
    assert np.array_equal(spectral.mel_filters(sr, n_fft, n_mels), librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels))


@pytest.mark.slow  # librosa.filters.chroma imports librosa.core, which compiles its numba code (~13 s on a fresh cache)
@pytest.mark.librosa
@pytest.mark.parametrize("tuning", [0.0, -0.13, 0.31])
def test_chroma_filters_are_librosas(tuning):
    ours, theirs = spectral.chroma_filters(SR, N_FFT, tuning), librosa.filters.chroma(sr=SR, n_fft=N_FFT, tuning=tuning)
    assert np.allclose(ours, theirs, rtol=1e-6, atol=1e-9)


@pytest.mark.slow  # librosa's compiled code (~30 s to build once), the reference path only
@pytest.mark.librosa
def test_stft_istft_and_resampling_are_librosas_bit_for_bit(signals):
    for y in signals:
        stft = spectral.stft(y, N_FFT, HOP)
        assert np.array_equal(stft, librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
        mask = np.random.default_rng(0).random(stft.shape).astype(np.float32)
        ours = spectral.istft(np.stack([stft * mask, stft]), HOP, len(y), y.dtype)
        assert np.array_equal(ours[0], librosa.istft(stft * mask, hop_length=HOP, length=len(y), dtype=y.dtype))
        assert np.array_equal(ours[1], librosa.istft(stft, hop_length=HOP, length=len(y), dtype=y.dtype))
        for rate in (16000, 44100):
            assert np.array_equal(resample(y, SR, rate), librosa.resample(y, orig_sr=SR, target_sr=rate))


@pytest.mark.slow  # librosa's compiled code (~30 s to build once), the reference path only
@pytest.mark.librosa
def test_spectral_features_are_librosas(signals):
    freq = spectral.fft_frequencies(SR, N_FFT)
    for y in signals:
        mag = np.abs(librosa.stft(y))
        power = mag**2
        centroid = librosa.feature.spectral_centroid(S=mag, sr=SR)
        mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=SR))
        pairs = [
            (spectral.spectral_centroid(mag, freq), centroid),
            (
                spectral.spectral_bandwidth(mag, freq, centroid),
                librosa.feature.spectral_bandwidth(S=mag, sr=SR, centroid=centroid),
            ),
            (spectral.spectral_rolloff(mag, freq), librosa.feature.spectral_rolloff(S=mag, sr=SR)),
            (spectral.rms(y, N_FFT, HOP), librosa.feature.rms(y=y)),
            (spectral.zero_crossing_rate(y, N_FFT, HOP), librosa.feature.zero_crossing_rate(y)),
            (spectral.power_to_db(spectral.mel_filters(SR, N_FFT) @ power), mel_db),
            (spectral.melspectrogram(y, SR), librosa.feature.melspectrogram(y=y, sr=SR)),
            (spectral.power_to_db(power, ref=None), librosa.power_to_db(power, ref=np.max)),
            (
                spectral.onset_strength_median(mel_db, N_FFT, HOP),
                librosa.onset.onset_strength(S=mel_db, sr=SR, aggregate=np.median),
            ),
            (spectral.chroma_stft(power, SR), librosa.feature.chroma_stft(S=power, sr=SR)),
            (spectral.dct_ortho(mel_db, 20), librosa.feature.mfcc(S=mel_db, n_mfcc=20)),
        ]
        for i, (ours, theirs) in enumerate(pairs):
            assert ours.shape == theirs.shape, i
            scale = max(float(np.abs(theirs).max()), 1e-12)
            assert np.abs(ours - theirs).max() <= 1e-5 * scale, (i, np.abs(ours - theirs).max(), scale)
        assert spectral.estimate_tuning(power, SR, N_FFT) == librosa.estimate_tuning(S=power, sr=SR)
        onset = librosa.onset.onset_strength(S=mel_db, sr=SR, aggregate=np.median)
        assert spectral.tempo(onset, SR, HOP) == librosa.feature.tempo(onset_envelope=onset, sr=SR)[0]


@pytest.mark.slow
@pytest.mark.librosa
def test_table_features_equal_librosas_own_calls_on_real_clips(clips):
    """Every one of the 57 columns, as the public notebooks compute them, on 30 s of real music."""
    for y in clips:
        fast, naive = extract_features(y, SR), extract_features_naive(y, SR)
        for col in FEATURE_COLUMNS:
            # harmony/perceptr means are ~1e-6 averages of signed samples: compare them absolutely
            assert fast[col] == pytest.approx(naive[col], rel=1e-4, abs=1e-6), col
