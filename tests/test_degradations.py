"""Each degradation does to the audio what its name says: measured on real signals, not mocked."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from musicgenre.audio.degradations import DEGRADATIONS, Degradation, DegradationError, pink_noise, select
from musicgenre.errors import AudioError

pytest.importorskip("pedalboard", reason="the degradations need pedalboard (the robustness extra)")

SR = 22050
SECONDS = 12.0  # longer than the longest excerpt
FFMPEG = shutil.which("ffmpeg") is not None


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    """Harmonic tones with a beat and broadband noise: energy across the whole band, like music."""
    from musicgenre.audio.example import example_clip

    rng = np.random.default_rng(0)
    y = example_clip(SECONDS, SR) + 0.05 * rng.standard_normal(int(SECONDS * SR))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module")
def white() -> np.ndarray:
    return (0.1 * np.random.default_rng(1).standard_normal(int(SECONDS * SR))).astype(np.float32)


def _band_power(y: np.ndarray, lo: float, hi: float = np.inf) -> float:
    power = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / SR)
    return float(power[(f >= lo) & (f < hi)].sum())


def _snr_db(clean: np.ndarray, degraded: np.ndarray) -> float:
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((degraded - clean).astype(np.float64) ** 2))


def _lag(a: np.ndarray, b: np.ndarray, span: int = 3000) -> int:
    """The shift of ``b`` against ``a`` that lines them up best, in samples."""
    n = min(len(a), len(b), 4 * SR)
    corr = np.correlate(b[span : n - span], a[:n], mode="valid")  # b[span + k] against a
    return span - int(np.argmax(corr))


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_every_degradation_is_mono_float32_and_seeded(name, music):
    d = DEGRADATIONS[name]
    if not d.available():
        pytest.skip(f"{name} needs {d.requires}")
    out = d(music, SR, seed=3)
    assert out.dtype == np.float32 and out.ndim == 1 and np.isfinite(out).all()
    np.testing.assert_array_equal(out, d(music, SR, seed=3))
    if name.startswith("excerpt_"):
        assert len(out) == int(float(name.split("_")[1][:-1]) * SR)
    elif name.startswith("tempo_"):
        factor = 1.05 if "+" in name else 0.95
        assert len(out) == pytest.approx(len(music) / factor, rel=0.01)
    else:
        assert len(out) == len(music)
    if name != "clean":
        assert not np.array_equal(out, music)
    if "noise" in d.description or "babble" in name:
        assert not np.array_equal(out, d(music, SR, seed=4))  # another seed, other noise


@pytest.mark.parametrize("name, snr", [("pink_20db", 20), ("pink_10db", 10), ("babble_20db", 20), ("babble_10db", 10)])
def test_noise_is_mixed_at_the_requested_snr(name, snr, music):
    assert _snr_db(music, DEGRADATIONS[name](music, SR)) == pytest.approx(snr, abs=0.5)


def test_pink_noise_falls_3_db_per_octave():
    n = pink_noise(2**18, np.random.default_rng(0))
    octaves = [_band_power(n, 250 * 2**k, 500 * 2**k) for k in range(4)]  # 250 Hz ... 4 kHz, equal power per octave
    assert np.ptp(10 * np.log10(octaves)) < 1.0


def test_phone_keeps_300_to_3400_hz_only(white):
    out = DEGRADATIONS["phone"](white, SR)

    def gain_db(lo: float, hi: float) -> float:
        return 10 * np.log10(_band_power(out, lo, hi) / _band_power(white, lo, hi))

    inside = gain_db(500, 3000)
    assert gain_db(4100, SR / 2) < inside - 40  # nothing above 4 kHz (the 8 kHz line)
    assert gain_db(3600, 4000) < inside - 6  # the 3.4 kHz low-pass
    assert gain_db(20, 150) < inside - 10  # the 300 Hz high-pass


def test_laptop_speaker_loses_the_bass(white):
    out = DEGRADATIONS["laptop_to_phone"](white, SR)
    bass = _band_power(out, 20, 80) / _band_power(white, 20, 80)
    middle = _band_power(out, 1000, 3000) / _band_power(white, 1000, 3000)
    assert 10 * np.log10(bass / middle) < -10


def test_reverb_leaves_a_tail_after_the_sound_stops():
    y = np.zeros(2 * SR, dtype=np.float32)
    y[: SR // 10] = np.sin(2 * np.pi * 440 * np.arange(SR // 10) / SR)  # a 100 ms tone, then silence
    out = DEGRADATIONS["reverb"](y, SR)
    tail = slice(SR // 10 + SR // 20, SR // 2)  # 50-400 ms after the tone
    assert np.sqrt(np.mean(out[tail] ** 2)) > 1e-3 and not y[tail].any()


@pytest.mark.parametrize(
    "name", ["mp3_128k", "mp3_64k", pytest.param("aac_48k", marks=pytest.mark.skipif(not FFMPEG, reason="no ffmpeg")),
             pytest.param("opus_48k", marks=pytest.mark.skipif(not FFMPEG, reason="no ffmpeg"))],
)  # fmt: skip
@pytest.mark.parametrize("sr", [SR, 16000])
def test_codec_round_trips_keep_length_and_timing(name, sr, music):
    from musicgenre.audio.io import resample

    music = resample(music, SR, sr)
    out = DEGRADATIONS[name](music, sr)
    assert len(out) == len(music)
    assert abs(_lag(music, out)) <= 1  # the encoder's priming samples are trimmed
    assert 0.9 < np.corrcoef(music, out)[0, 1] < 0.9999  # lossy, but the same music


def test_mp3_at_a_lower_bitrate_loses_more(music):
    assert _snr_db(music, DEGRADATIONS["mp3_64k"](music, SR)) <= _snr_db(music, DEGRADATIONS["mp3_128k"](music, SR)) + 0.5


def test_gain_and_clipping(music):
    quiet = DEGRADATIONS["gain_-30db"](music, SR)
    assert 20 * np.log10(np.std(quiet) / np.std(music)) == pytest.approx(-30, abs=0.05)
    loud = DEGRADATIONS["gain_+12db_clipped"](music, SR)
    assert np.abs(loud).max() <= 1.0 and np.sum(np.abs(loud) >= 0.999) >= 10  # the peaks hit full scale


@pytest.mark.parametrize("name, ratio", [("pitch_+1", 2 ** (1 / 12)), ("pitch_-1", 2 ** (-1 / 12))])
def test_pitch_moves_a_tone_by_a_semitone(name, ratio):
    t = np.arange(3 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = DEGRADATIONS[name](tone, SR)[SR // 2 : -SR // 2]
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out)), 8 * len(out)))
    peak = np.fft.rfftfreq(8 * len(out), 1 / SR)[np.argmax(spectrum)]
    assert peak == pytest.approx(440 * ratio, rel=0.003)


def test_excerpts_come_from_the_middle(music):
    out = DEGRADATIONS["excerpt_5s"](music, SR)
    start = (len(music) - 5 * SR) // 2
    np.testing.assert_array_equal(out, music[start : start + 5 * SR])
    short = music[: 2 * SR]
    np.testing.assert_array_equal(DEGRADATIONS["excerpt_5s"](short, SR), short)  # shorter than 5 s: all of it


def test_bad_input_and_names_are_our_errors(music):
    with pytest.raises(AudioError, match="mono"):
        DEGRADATIONS["phone"](np.stack([music, music]), SR)
    with pytest.raises(AudioError, match="non-empty"):
        DEGRADATIONS["phone"](np.zeros(0, np.float32), SR)
    with pytest.raises(DegradationError, match="unknown degradation"):
        select(["phone", "underwater"])


def test_a_degradation_whose_program_is_missing_is_skipped_with_a_notice(music, monkeypatch):
    missing = Degradation("tape", "a cassette", lambda y, sr, rng: y, requires="no-such-program-musicgenre")
    assert not missing.available()
    with pytest.raises(DegradationError, match="needs no-such-program-musicgenre"):
        missing(music, SR)
    monkeypatch.setitem(DEGRADATIONS, "tape", missing)  # a real catalogue entry whose program does not exist
    chosen, notices = select(["clean", "tape", "phone"])
    assert [d.name for d in chosen] == ["clean", "phone"]
    assert notices == ["skipped tape: needs no-such-program-musicgenre, which is not installed"]


@pytest.mark.parametrize("name", ["laptop_to_phone", "phone", "mp3_64k"])
def test_16_khz_audio_is_degraded_without_instability(name, music):
    """A 16 kHz model's rate: the laptop chain's 8 kHz low-pass would sit at Nyquist; it is kept below."""
    from musicgenre.audio.io import resample

    y = resample(music, SR, 16000)
    out = DEGRADATIONS[name](y, 16000)
    assert len(out) == len(y) and np.isfinite(out).all() and np.abs(out).max() < 4 * np.abs(y).max()
