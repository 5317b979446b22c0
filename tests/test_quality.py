"""The recording-quality record (issue 33) says what is wrong with real audio, and stays quiet on clean music."""

from __future__ import annotations

import json

import numpy as np

from musicgenre.audio.degradations import add_noise, pink_noise
from musicgenre.audio.io import load_audio
from musicgenre.audio.quality import assess, effective_band

SR = 22050
BAND_ISSUES = {"narrow_band", "limited_band"}


def _clip(mini_clips, name: str, sr: int = SR) -> np.ndarray:
    return load_audio(next(c for c in mini_clips if c.name == name), sr=sr).samples.astype(np.float64)


def _codes(y: np.ndarray, sr: int = SR) -> list[str]:
    return assess(y, sr).to_dict()["issues"]


def _telephone(y: np.ndarray, order: int, sr: int = SR) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(order, [300, 3400], btype="band", fs=sr, output="sos"), y)


def test_silence_empty_and_tiny_input_never_raise():
    for y in (np.zeros(0), np.zeros(SR * 5), np.zeros(int(0.1 * SR))):
        q = assess(y, SR)
        assert q.to_dict()["issues"][0] == "silent" and q.severe
        json.dumps(q.to_dict(), allow_nan=False)
    tiny = assess(0.1 * np.sin(np.arange(int(0.1 * SR)) * 0.1), SR)
    assert "too_short" in tiny.to_dict()["issues"] and tiny.severe
    json.dumps(tiny.to_dict(), allow_nan=False)


def test_near_silence_is_severe():
    y = 10 ** (-70 / 20) * np.random.default_rng(0).standard_normal(SR * 5)  # -70 dBFS hiss
    q = assess(y, SR)
    assert "near_silent" in q.to_dict()["issues"] and q.severe


def test_short_clipped_and_telephone_music(mini_clips):
    y = _clip(mini_clips, "rock.00003.wav")
    assert "too_short" in _codes(y[:SR])
    clipped = np.clip(8 * y / np.abs(y).max(), -1, 1)
    q = assess(clipped, SR)
    assert q.clipped_fraction > 0.01 and "clipped" in q.to_dict()["issues"] and q.severe
    for order in (4, 8):
        q = assess(_telephone(y, order), SR)
        assert 2800 < q.high_hz < 4500 and "narrow_band" in q.to_dict()["issues"], (order, q.high_hz)
        assert not q.severe
    assert 200 < assess(_telephone(y, 8), SR).low_hz < 400


def test_band_of_resampled_and_low_passed_audio(mini_clips):
    from scipy.signal import butter, resample_poly, sosfilt

    y = _clip(mini_clips, "disco.00002.wav")
    phone = resample_poly(resample_poly(y, 320, 882), 882, 320)  # 22,050 -> 8,000 -> 22,050 Hz
    assert 3000 < effective_band(phone, SR)[1] < 4100
    assert 6000 < effective_band(sosfilt(butter(8, 7000, fs=SR, output="sos"), y), SR)[1] < 7600
    assert 3000 < effective_band(resample_poly(y, 320, 882), 8000)[1] <= 4000  # an 8 kHz file itself


def test_clean_clips_have_no_severe_or_band_issue(mini_clips):
    for name in ("classical.00000.wav", "hiphop.00004.wav", "jazz.00001.wav", "country.00002.wav", "reggae.00003.wav"):
        q = assess(_clip(mini_clips, name), SR)
        assert not q.severe and not BAND_ISSUES & set(q.to_dict()["issues"]), (name, q.to_dict())
        assert q.high_hz >= 7500 and q.low_hz < 150 and q.speech_fraction < 0.4, (name, q)


def test_pink_noise_reads_noisy_and_in_order(mini_clips):
    y = _clip(mini_clips, "jazz.00001.wav")
    rng = np.random.default_rng(0)
    at10, at25 = (assess(add_noise(y, pink_noise(len(y), rng), snr), SR) for snr in (10.0, 25.0))
    assert "noisy" in at10.to_dict()["issues"] and not at10.severe
    assert 5 < at10.snr_db < 13 < at25.snr_db
    assert at10.noise_floor_dbfs > at25.noise_floor_dbfs + 8


def test_speech_is_flagged_even_over_quiet_music(speech, mini_clips):
    q = assess(speech, SR)
    assert q.speech_fraction >= 0.7 and "speech" in q.to_dict()["issues"] and q.severe
    music = _clip(mini_clips, "classical.00000.wav")[: len(speech)]
    over = speech / np.std(speech) + 0.1 * music / np.std(music)  # music 20 dB under the talk
    assert "speech" in _codes(over)
