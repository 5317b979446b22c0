"""Audio loading: formats, downmix, resampling, windows and every kind of bad input."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, synth, write_audio

from musicgenre.audio.io import load_audio, prepare_audio, windows
from musicgenre.errors import AudioError, MusicGenreError


@pytest.mark.parametrize("ext", ["wav", "au", "flac", "ogg", "mp3"])
def test_formats_decode_without_ffmpeg(tmp_path, ext, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg reachable: these go through libsndfile
    path = write_audio(tmp_path / f"clip.{ext}", seconds=3.0)
    audio = load_audio(path)
    assert audio.sample_rate == SR
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert abs(audio.seconds - 3.0) < 0.1  # mp3/ogg codecs pad a few ms
    assert not audio.truncated


def test_wav_is_bit_exact(tmp_path):
    y = synth(2.0)
    sf.write(tmp_path / "a.wav", y, SR, subtype="FLOAT")
    assert np.array_equal(load_audio(tmp_path / "a.wav").samples, y)


def test_stereo_downmix_and_resample(tmp_path):
    path = write_audio(tmp_path / "stereo.wav", seconds=2.0, sr=44100, channels=2)
    stereo = sf.read(path, dtype="float32")[0]
    audio = load_audio(path)
    assert np.allclose(audio.samples, stereo.mean(axis=1), atol=1e-6)
    resampled = load_audio(path, sr=16000)
    assert resampled.sample_rate == 16000 and abs(len(resampled.samples) - 32000) <= 1


def test_nan_in_memory_is_our_error_even_when_resampling():
    y = synth(1.0)
    y[10] = np.nan
    with pytest.raises(AudioError, match="NaN or infinite"):
        prepare_audio(y, 44100, target_sr=SR)


def test_six_channels_in_memory_are_downmixed():
    y = synth(1.0, channels=6)
    assert prepare_audio(y, SR).samples.shape == (SR,)
    assert prepare_audio(y.T, SR).samples.shape == (SR,)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_m4a_through_ffmpeg(tmp_path):
    wav = write_audio(tmp_path / "a.wav", seconds=3.0)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), str(tmp_path / "a.m4a")], check=True)
    audio = load_audio(tmp_path / "a.m4a", sr=SR)
    assert abs(audio.seconds - 3.0) < 0.1


def test_m4a_without_ffmpeg_names_ffmpeg(tmp_path, monkeypatch):
    (tmp_path / "song.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    monkeypatch.setenv("PATH", str(tmp_path))  # an environment with no ffmpeg binary
    with pytest.raises(AudioError, match="ffmpeg"):
        load_audio(tmp_path / "song.m4a")


def _bad_files(tmp_path):
    wav = write_audio(tmp_path / "good.wav", seconds=2.0)
    good = wav.read_bytes()
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "noise.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    (tmp_path / "text.mp3").write_text("this is not an mp3 file\n" * 50)
    (tmp_path / "truncated_header.wav").write_bytes(good[:30])
    (tmp_path / "corrupt.wav").write_bytes(good[:12] + b"garbage!" * 200)
    sf.write(tmp_path / "zero_frames.wav", np.zeros(0, dtype=np.float32), SR)
    nan = synth(2.0)
    nan[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan, SR, subtype="FLOAT")
    inf = synth(2.0)
    inf[5] = np.inf
    sf.write(tmp_path / "inf.wav", inf, SR, subtype="FLOAT")
    sf.write(tmp_path / "one_sample.wav", np.array([0.5], dtype=np.float32), SR)
    return {
        "empty.wav": "empty",
        "noise.wav": "not a readable audio file",
        "text.mp3": "not a readable audio file",
        "truncated_header.wav": "not a readable audio file",
        "corrupt.wav": "not a readable audio file",
        "zero_frames.wav": "empty",
        "nan.wav": "NaN or infinite",
        "inf.wav": "NaN or infinite",
        "one_sample.wav": "too short",
    }


def test_bad_input_raises_one_clear_error_type(tmp_path):
    for name, message in _bad_files(tmp_path).items():
        with pytest.raises(AudioError, match=message) as info:
            load_audio(tmp_path / name)
        assert name in str(info.value)
        assert str(tmp_path) not in str(info.value)  # no server paths in messages the app shows
        assert "does not exist" not in str(info.value)  # it does; libsndfile's wording misleads
        assert isinstance(info.value, MusicGenreError)


def test_truncated_data_decodes_what_is_there(tmp_path):
    good = write_audio(tmp_path / "good.wav", seconds=4.0).read_bytes()
    (tmp_path / "cut.wav").write_bytes(good[: len(good) // 2])  # header promises 4 s, data holds 2 s
    assert 1.5 < load_audio(tmp_path / "cut.wav").seconds < 2.5


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="directory"):
        load_audio(tmp_path)


def test_overlong_input_is_cut_or_refused(tmp_path):
    path = write_audio(tmp_path / "long.flac", seconds=12.0)
    audio = load_audio(path, max_seconds=5.0)
    assert audio.truncated and audio.seconds == pytest.approx(5.0, abs=1 / SR)
    assert audio.original_seconds == pytest.approx(12.0, abs=0.01)
    with pytest.raises(AudioError, match="too long"):
        load_audio(path, max_seconds=5.0, on_overlong="error")


def test_gtzan_jazz_00054_style_corruption(tmp_path, mini_clips):
    """A real clip whose body is overwritten, like GTZAN's broken jazz.00054.wav."""
    raw = bytearray(mini_clips[0].read_bytes())
    raw[:4] = b"\x00\x00\x00\x00"
    (tmp_path / "jazz.00054.wav").write_bytes(bytes(raw))
    with pytest.raises(AudioError, match="jazz.00054.wav"):
        load_audio(tmp_path / "jazz.00054.wav")


def test_windows():
    y = np.ones(int(80 * SR), dtype=np.float32)
    assert [len(w) / SR for w in windows(y, SR, 30.0)] == [30.0, 30.0, 20.0]
    assert len(windows(y[: 70 * SR], SR, 30.0)) == 2  # a 10 s tail (< half a window) is dropped
    assert len(windows(y[: 5 * SR], SR, 30.0)) == 1  # a short clip still gets its one window
    assert [len(w) for w in windows(y[: 10 * SR], SR, 3.0, min_seconds=3.0)] == [3 * SR] * 3


def test_out_of_range_and_integer_samples(tmp_path):
    loud = synth(2.0) * 1e20
    sf.write(tmp_path / "huge.wav", loud, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="out of range"):
        load_audio(tmp_path / "huge.wav")
    pcm = (synth(1.0) * 32767).astype(np.int16)
    assert np.allclose(prepare_audio(pcm, SR).samples, synth(1.0), atol=1e-4)  # int16 scaled to ±1


def test_unsigned_pcm_is_centred():
    """8-bit PCM is unsigned around 128 (as in 8-bit WAV): scaled to ±1 around zero, not shifted by +1."""
    u8 = np.round(synth(1.0) * 127 + 128).astype(np.uint8)
    assert np.allclose(prepare_audio(u8, SR).samples, synth(1.0), atol=1 / 127)
