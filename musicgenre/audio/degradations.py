"""The ways users really record music, as named, seeded degradations of a clip (issue 16's robustness study).

Lossy codecs, a phone line, a room, a laptop speaker recorded by a phone, background noise, level,
pitch, tempo and short excerpts. The effects are Spotify's ``pedalboard`` (the ``robustness``
extra): LAME MP3 at a fixed bitrate, GSM 06.10 (the full-rate mobile codec), first-order filters,
Freeverb reverb, tanh distortion, hard clipping and Rubber Band's pitch shift and time stretch.
AAC and Opus come from ``ffmpeg`` when it is installed; without it those two are skipped with a
notice. No noise or speech recordings ship with any package here, so the noise is generated:
pink noise (1/f power) and speech-shaped babble (six talkers of noise with a speech spectrum,
each switched on and off at a syllable rate), mixed at an exact SNR.

Every degradation takes mono float32 audio and its rate and returns mono float32 audio at the same
rate, the same length except the excerpts (and tempo, which changes duration by design), and is
deterministic given ``seed``.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgenre.audio.io import fix_length, resample
from musicgenre.errors import AudioError, MusicGenreError

MP3_DELAY = 1105  # LAME's encoder (576) plus decoder (529) delay in samples, trimmed after the round trip
PHONE_RATE = 8000  # narrow-band telephony: GSM, AMR-NB


Transform = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]  # (mono audio, rate, rng) -> audio


class DegradationError(MusicGenreError):
    """An unknown degradation, or one that cannot run here (a missing ffmpeg)."""


def _pedalboard():
    try:
        import pedalboard
    except ImportError:
        raise DegradationError("degradations need pedalboard: pip install 'musicgenre[robustness]'") from None
    return pedalboard


def _below_nyquist(hz: float, sr: int) -> float:
    """A filter cut-off kept below 0.45 x the rate: at Nyquist a first-order filter degenerates."""
    return min(hz, 0.45 * sr)


def _board(y: np.ndarray, sr: int, plugins: list) -> np.ndarray:
    pb = _pedalboard()
    return pb.Pedalboard(plugins)(y[None], sr)[0]


# --- codecs ---------------------------------------------------------------------------------------


def mp3(kbps: int) -> Transform:
    def apply(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        from pedalboard.io import AudioFile

        encoded = io.BytesIO()
        with AudioFile(encoded, "w", sr, 1, format="mp3", quality=kbps) as f:
            f.write(y[None])
        with AudioFile(io.BytesIO(encoded.getvalue())) as f:
            parts = []
            while f.tell() < f.frames:  # an MP3's frame count can be an estimate until the file is read
                parts.append(f.read(f.frames - f.tell())[0])
        decoded = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return fix_length(decoded[MP3_DELAY:], len(y))

    return apply


def ffmpeg_codec(codec: str, kbps: int, container: str) -> Transform:
    """A round trip through ffmpeg's encoder ``codec`` (e.g. ``aac``, ``libopus``); containers trim the priming."""

    def apply(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        raw = ["-f", "f32le", "-ac", "1", "-ar", str(sr)]
        with tempfile.TemporaryDirectory(prefix="musicgenre-codec-") as tmp:
            path = Path(tmp) / f"clip.{container}"
            encode = ["ffmpeg", "-nostdin", "-loglevel", "error", *raw, "-i", "pipe:0", "-c:a", codec, "-b:a", f"{kbps}k"]
            if codec == "libopus":
                encode += ["-ar", "48000"]  # Opus codes at 48 kHz; the decode below resamples back
            _ffmpeg([*encode, str(path)], y.astype("<f4").tobytes())
            out = _ffmpeg(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), *raw, "pipe:1"])
        return fix_length(np.frombuffer(out, dtype="<f4"), len(y))

    return apply


def _ffmpeg(cmd: list[str], stdin: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise DegradationError(f"ffmpeg took over 300 s: {' '.join(cmd[:8])} ...") from None
    if proc.returncode:
        raise DegradationError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')[-500:]}")
    return proc.stdout


# --- channels: phone, room, speaker ----------------------------------------------------------------


def phone(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A mobile call: 8 kHz, 300-3,400 Hz (two first-order filters each side), GSM full rate, mild distortion."""
    pb = _pedalboard()
    narrow = resample(y, sr, PHONE_RATE)
    band = [pb.HighpassFilter(300), pb.HighpassFilter(300), pb.LowpassFilter(3400), pb.LowpassFilter(3400)]
    narrow = _board(narrow, PHONE_RATE, [*band, pb.GSMFullRateCompressor(), pb.Distortion(drive_db=6)])
    return fix_length(resample(narrow, PHONE_RATE, sr), len(y))  # soxr's steep filter: nothing above 4 kHz


def telephone_band(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Only 300-3,400 Hz, through a steep filter (8th-order elliptic band-pass, 0.5 dB ripple, 60 dB stop band):
    a telephone channel without its codec."""
    from scipy.signal import ellip, sosfilt

    sos = ellip(4, 0.5, 60, [300, _below_nyquist(3400, sr)], btype="bandpass", fs=sr, output="sos")
    return sosfilt(sos, y).astype(np.float32)


def telephone_gentle(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Only 300-3,400 Hz, through a gentle filter (2nd-order Butterworth band-pass, 12 dB per octave): a cheap
    loudspeaker or headset rather than a telephone exchange, with no cliff at the band's edges."""
    from scipy.signal import butter, sosfilt

    sos = butter(2, [300, _below_nyquist(3400, sr)], btype="bandpass", fs=sr, output="sos")
    return sosfilt(sos, y).astype(np.float32)


def reverb(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A medium room (Freeverb, half wet)."""
    pb = _pedalboard()
    return _board(y, sr, [pb.Reverb(room_size=0.6, damping=0.5, wet_level=0.3, dry_level=0.7)])


def laptop_to_phone(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Played through a laptop speaker (no bass below ~250 Hz, little above ~8 kHz) in a room with some noise
    (25 dB down), recorded by a phone (its own roll-off)."""
    pb = _pedalboard()
    speaker = [pb.HighpassFilter(250), pb.HighpassFilter(250), pb.LowpassFilter(_below_nyquist(8000, sr)), pb.Distortion(3)]
    room = [pb.Reverb(room_size=0.4, damping=0.6, wet_level=0.25, dry_level=0.75)]
    heard = _board(y, sr, [*speaker, *room])
    heard = add_noise(heard, pink_noise(len(heard), rng), 25.0)
    return _board(heard, sr, [pb.HighpassFilter(100), pb.HighpassFilter(100), pb.LowpassFilter(_below_nyquist(7000, sr))])


def laptop_mic_room(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A loudspeaker in a live room heard by a laptop microphone: a diffuse reverberant tail (exponentially decaying
    noise, RT60 0.7 s, a third of the energy), the microphone's 150-7,000 Hz (4th-order Chebyshev), and the room's
    own rumble (brown noise) 15 dB down. Another generator than the training rooms (pyroomacoustics' image source)."""
    from scipy.signal import cheby1, fftconvolve, sosfilt

    n = int(0.7 * sr)
    tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)  # -60 dB at 0.7 s
    tail *= np.sqrt(0.5 / np.sum(tail**2))
    ir = np.concatenate([[1.0], np.zeros(int(0.01 * sr)), tail])  # direct sound, 10 ms gap, the tail
    wet = fftconvolve(y, ir)[: len(y)]
    sos = cheby1(4, 1.0, [150, _below_nyquist(7000, sr)], btype="bandpass", fs=sr, output="sos")
    heard = sosfilt(sos, wet).astype(np.float32)
    rumble = _shaped_noise(len(y), rng, lambda f: 1 / np.maximum(f, 20.0), sr)
    out = add_noise(heard, rumble, 15.0)
    return out * (np.abs(y).max() / max(float(np.abs(out).max()), 1e-12))  # the recorder's gain: the input's peak


# --- noise -----------------------------------------------------------------------------------------


def _shaped_noise(n: int, rng: np.random.Generator, gain: Callable[[np.ndarray], np.ndarray], sr: int = 1) -> np.ndarray:
    """Unit-variance Gaussian noise whose amplitude spectrum is ``gain(frequency)``."""
    from musicgenre.audio.spectral import next_fast_len

    m = next_fast_len(n)  # a 30 s clip's length is a slow FFT size
    spectrum = np.fft.rfft(rng.standard_normal(m))
    noise = np.fft.irfft(spectrum * gain(np.fft.rfftfreq(m, 1 / sr)), m)[:n]
    return (noise / (np.std(noise) + 1e-12)).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise with 1/f power (-3 dB per octave)."""
    return _shaped_noise(n, rng, lambda f: 1 / np.sqrt(np.maximum(f, f[1] if len(f) > 1 else 1.0)))


def babble(n: int, sr: int, rng: np.random.Generator, talkers: int = 6) -> np.ndarray:
    """Speech-shaped babble: noise with speech's long-term spectrum (a 100-500 Hz plateau, then about -9 dB per
    octave), one per talker, each gated by its own syllable-rate (~4 Hz) envelope."""

    def speech_spectrum(f: np.ndarray) -> np.ndarray:
        rise = f / np.sqrt(f**2 + 100.0**2)  # below 100 Hz: little
        return rise / (1 + (f / 500.0) ** 1.5)  # amplitude: -9 dB/octave in power above 500 Hz

    mix = np.zeros(n, dtype=np.float32)
    for _ in range(talkers):
        voice = _shaped_noise(n, rng, speech_spectrum, sr)
        envelope = _shaped_noise(n, rng, lambda f: np.exp(-((f / 4.0) ** 2)), sr)  # slow, ~4 Hz
        mix += voice * np.maximum(envelope, 0)  # half-wave: talkers pause
    return (mix / (np.std(mix) + 1e-12)).astype(np.float32)


def add_noise(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``y`` plus ``noise`` scaled so that power(y) / power(noise) is ``snr_db``."""
    signal = float(np.mean(np.square(y, dtype=np.float64)))
    if signal == 0:
        return y.copy()
    power = float(np.mean(np.square(noise, dtype=np.float64)))
    if power == 0:  # e.g. babble whose talkers all pause through a very short clip
        raise DegradationError("the generated noise is silent over this clip; it is too short to mix noise into")
    scale = np.sqrt(signal / (power * 10 ** (snr_db / 10)))
    return (y + scale * noise).astype(np.float32)


def noise(kind: str, snr_db: float) -> Transform:
    def apply(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        source = pink_noise(len(y), rng) if kind == "pink" else babble(len(y), sr, rng)
        return add_noise(y, source, snr_db)

    return apply


# --- level, pitch, tempo, length -------------------------------------------------------------------


def gain(db: float, clip: bool = False) -> Transform:
    def apply(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        pb = _pedalboard()
        return _board(y, sr, [pb.Gain(db), *([pb.Clipping(threshold_db=0.0)] if clip else [])])

    return apply


def pitch(semitones: float) -> Transform:
    def apply(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        pb = _pedalboard()
        return fix_length(pb.time_stretch(y[None], sr, 1.0, pitch_shift_in_semitones=semitones)[0], len(y))

    return apply


def tempo(factor: float) -> Transform:
    """Played ``factor`` times as fast, pitch kept (the clip gets shorter or longer)."""

    def apply(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        pb = _pedalboard()
        return pb.time_stretch(y[None], sr, factor)[0]

    return apply


def excerpt(seconds: float) -> Transform:
    """The middle ``seconds`` of the clip (all of it if shorter)."""

    def apply(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        n = int(round(seconds * sr))
        start = max(0, (len(y) - n) // 2)
        return y[start : start + n].copy()

    return apply


def _identity(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    return y.copy()


# --- the catalogue ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Degradation:
    """One named condition: what it does, and what it needs to run (``requires``: an external program)."""

    name: str
    description: str
    transform: Transform
    requires: str | None = None
    pedalboard: bool = True  # False: NumPy or ffmpeg alone

    def available(self) -> bool:
        return self.requires is None or shutil.which(self.requires) is not None

    def __call__(self, y: np.ndarray, sr: int, seed: int = 0) -> np.ndarray:
        """The degraded copy of mono ``y`` at rate ``sr``: float32, deterministic in (``seed``, name)."""
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1 or not len(y):
            raise AudioError(f"{self.name}: expected a non-empty mono signal, got shape {y.shape}")
        if not self.available():
            raise DegradationError(f"{self.name} needs {self.requires}, which is not installed")
        rng = np.random.default_rng([seed, zlib.crc32(self.name.encode())])
        return np.ascontiguousarray(self.transform(y, sr, rng), dtype=np.float32)


DEGRADATIONS: dict[str, Degradation] = {
    d.name: d
    for d in [
        Degradation("clean", "the clip as it is", _identity, pedalboard=False),
        Degradation("mp3_128k", "MP3, 128 kbps (LAME)", mp3(128)),
        Degradation("mp3_64k", "MP3, 64 kbps (LAME)", mp3(64)),
        Degradation("aac_48k", "AAC, 48 kbps (ffmpeg)", ffmpeg_codec("aac", 48, "m4a"), "ffmpeg", pedalboard=False),
        Degradation("opus_48k", "Opus, 48 kbps (ffmpeg)", ffmpeg_codec("libopus", 48, "ogg"), "ffmpeg", pedalboard=False),
        Degradation("phone", "a mobile call: 300-3,400 Hz at 8 kHz, GSM full rate, mild distortion", phone),
        Degradation("telephone_band", "telephone band: 300-3,400 Hz through a steep filter", telephone_band, pedalboard=False),
        Degradation("telephone_gentle", "300-3,400 Hz through a gentle filter", telephone_gentle, pedalboard=False),
        Degradation("reverb", "a medium room's reverb", reverb),
        Degradation("laptop_to_phone", "played on a laptop speaker in a room, recorded by a phone", laptop_to_phone),
        Degradation(
            "laptop_mic_room", "a loudspeaker in a live room, a laptop microphone, room rumble", laptop_mic_room, pedalboard=False
        ),
        Degradation("pink_20db", "pink noise at 20 dB SNR", noise("pink", 20.0), pedalboard=False),
        Degradation("pink_10db", "pink noise at 10 dB SNR", noise("pink", 10.0), pedalboard=False),
        Degradation("babble_20db", "synthetic speech-shaped babble, 20 dB SNR", noise("babble", 20.0), pedalboard=False),
        Degradation("babble_10db", "synthetic speech-shaped babble, 10 dB SNR", noise("babble", 10.0), pedalboard=False),
        Degradation("gain_-30db", "30 dB quieter", gain(-30.0)),
        Degradation("gain_+12db_clipped", "12 dB louder, clipped at full scale", gain(12.0, clip=True)),
        Degradation("pitch_+1", "one semitone higher (tempo kept)", pitch(1.0)),
        Degradation("pitch_-1", "one semitone lower (tempo kept)", pitch(-1.0)),
        Degradation("tempo_+5%", "5% faster (pitch kept)", tempo(1.05)),
        Degradation("tempo_-5%", "5% slower (pitch kept)", tempo(0.95)),
        Degradation("excerpt_10s", "the middle 10 s", excerpt(10.0), pedalboard=False),
        Degradation("excerpt_5s", "the middle 5 s", excerpt(5.0), pedalboard=False),
    ]
}


def select(names: list[str] | None = None) -> tuple[list[Degradation], list[str]]:
    """The degradations named (all by default) that can run here, and a notice for each that cannot (no ffmpeg).

    Raises ``DegradationError`` for unknown names, or when pedalboard is missing and a chosen one needs it.
    """
    names = names or list(DEGRADATIONS)
    unknown = [n for n in names if n not in DEGRADATIONS]
    if unknown:
        raise DegradationError(f"unknown degradation(s) {unknown}; choose from {', '.join(DEGRADATIONS)}")
    chosen = [DEGRADATIONS[n] for n in names]
    if any(d.pedalboard for d in chosen):
        _pedalboard()  # a clear DegradationError now, not one per file later
    notices = [f"skipped {d.name}: needs {d.requires}, which is not installed" for d in chosen if not d.available()]
    return [d for d in chosen if d.available()], notices
