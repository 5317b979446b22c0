"""Audio loading: any common format to a validated mono float32 array at the rate a model needs.

WAV, AU, FLAC, OGG and MP3 decode through libsndfile (the ``soundfile`` wheel), so the
project works without ffmpeg; other containers (m4a, aac, webm, ...) go through the
``ffmpeg`` binary when it is installed. Every failure becomes an :class:`AudioError`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from musicgenre.errors import AudioError, DataError
from musicgenre.util.uri import is_remote, local_copy, to_path

DEFAULT_MAX_SECONDS = 600.0  # 10 minutes: longer input is cut (or refused with on_overlong="error")
MIN_SECONDS = 0.5
MAX_PEAK = 1e4  # float audio lives around ±1; far beyond is a unit mistake (or overflows the STFT)
SOUNDFILE_EXTENSIONS = {".wav", ".wave", ".au", ".snd", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff"}
FFMPEG_EXTENSIONS = {".m4a", ".aac", ".webm", ".mp4", ".opus", ".wma", ".mka"}
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS | FFMPEG_EXTENSIONS  # what a dataset folder scan picks up
MIN_SAMPLE_RATE = 4_000  # below any real recording format (telephone audio is 8 kHz)
MAX_SAMPLE_RATE = 768_000  # the highest rate audio interfaces offer
READ_BLOCK_FRAMES = 1 << 18  # frames decoded at a time (~6 s at 44.1 kHz)


@dataclass
class Audio:
    """Decoded audio and what happened on the way (``truncated`` if cut at ``max_seconds``)."""

    samples: np.ndarray
    sample_rate: int
    source: str
    truncated: bool = False
    original_seconds: float | None = None

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


class _UnreadableError(AudioError):
    """libsndfile cannot parse the file (ffmpeg, when installed, may still)."""


def _unreadable(path: Path, exc: Exception) -> _UnreadableError:
    reason = str(exc).replace(f"'{path}'", "").replace(str(path), "").replace("Error opening :", "").strip()
    if "does not exist" in reason:  # libsndfile's words for an MP3 it cannot parse; the file is there
        reason = "unrecognised or damaged audio data"
    return _UnreadableError(f"{path.name}: not a readable audio file ({reason})")


def _read_soundfile(path: Path, sr: int | None, max_seconds: float) -> tuple[np.ndarray, int, float | None, bool]:
    """At most ``max_seconds`` of ``path`` as mono float32 at ``sr`` (or the file's rate).

    Decoded block by block, each block downmixed and (as one stream, identical to resampling the
    whole) resampled at once, so memory follows the cap at the output rate, whatever the header
    claims about the length, the channels or the rate. Returns the samples, their rate, the
    file's length in seconds if the header gives one, and whether it was cut.
    """
    import soxr

    errors = (sf.LibsndfileError, RuntimeError, TypeError, ValueError)
    try:
        f = sf.SoundFile(str(path))
    except errors as exc:
        raise _unreadable(path, exc) from None
    with f:
        rate, total = f.samplerate, (f.frames if f.frames > 0 else None)
        check_sample_rate(rate, path.name)
        limit = int(round(max_seconds * rate))
        stream = soxr.ResampleStream(rate, sr, 1, dtype="float32", quality="HQ") if sr and sr != rate else None
        parts, got = [], 0
        try:
            while got <= limit:  # one frame past the cap tells whether there is more
                block = f.read(frames=min(READ_BLOCK_FRAMES, limit + 1 - got), dtype="float32", always_2d=True)
                if not len(block):
                    break
                got += len(block)
                mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0].copy()
                mono = mono[: len(mono) - max(0, got - limit)]
                parts.append(stream.resample_chunk(mono) if stream is not None else mono)
        except errors as exc:
            raise _unreadable(path, exc) from None
    if stream is not None:
        parts.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    seconds = total / rate if total else None
    truncated = got > limit or (seconds is not None and seconds > max_seconds + 1.0 / rate)
    y = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return y, (sr or rate), seconds, truncated


def _read_ffmpeg(path: Path, sr: int, max_seconds: float) -> tuple[np.ndarray, bool]:
    """At most ``max_seconds`` at ``sr`` through the ffmpeg binary, and whether the input was longer."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(
            f"{path.name}: {path.suffix or 'this'} files need ffmpeg, which is not installed "
            "(install it, e.g. 'apt-get install ffmpeg', or convert the file to WAV/FLAC/OGG/MP3)"
        )
    cmd = [
        ffmpeg,
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(path),
        "-t",
        f"{max_seconds + 1.0 / sr:.6f}",
        "-f",
        "f32le",
        "-ac",
        "1",
        "-ar",
        str(sr),
        "-",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        raise AudioError(f"{path.name}: ffmpeg took more than 10 minutes to decode it") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").replace(f"{path}: ", "").strip().splitlines()
        raise AudioError(f"{path.name}: ffmpeg could not decode it ({detail[-1] if detail else 'no detail'})")
    y = np.frombuffer(proc.stdout, dtype="<f4")
    cap = int(round(max_seconds * sr))
    return y[:cap].copy(), y.size > cap  # decoded one sample past the cap to tell


def check_sample_rate(sr: float, name: str = "audio") -> None:
    """Refuse rates no recording has: resampling from them would make a huge or meaningless signal."""
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        shown = f"{sr:,.0f}" if float(sr).is_integer() else f"{sr:g}"
        raise AudioError(f"{name}: unsupported sample rate {shown} Hz (expected {MIN_SAMPLE_RATE:,}–{MAX_SAMPLE_RATE:,} Hz)")


def validate_samples(y: np.ndarray, sr: int, name: str = "audio") -> np.ndarray:
    """Reject audio no model can use; return it as contiguous float32."""
    y = np.ascontiguousarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise AudioError(f"{name}: expected mono samples, got an array of shape {y.shape}")
    if y.size == 0:
        raise AudioError(f"{name}: the audio is empty (0 samples)")
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{name}: the audio contains NaN or infinite samples")
    if y.size < MIN_SECONDS * sr:
        raise AudioError(f"{name}: the audio is too short ({y.size / sr:.3f} s; at least {MIN_SECONDS} s needed)")
    peak = float(np.max(np.abs(y)))
    if peak > MAX_PEAK:
        raise AudioError(f"{name}: sample values are out of range (peak {peak:.3g}; expected floats around ±1)")
    return y


def _time_axis(y: np.ndarray) -> int:
    """Samples run along the longer axis: ``(n, channels)`` and ``(channels, n)`` both occur."""
    return 0 if y.ndim == 1 or y.shape[0] >= y.shape[1] else 1


def fix_length(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` cut or zero-padded at the end to ``n`` samples (``librosa.util.fix_length``)."""
    return np.pad(y[:n], (0, max(0, n - len(y))))


def resample(y: np.ndarray, sr: float, target_sr: float) -> np.ndarray:
    """``librosa.resample``'s default: soxr at high quality, length fixed to ceil(n * target_sr / sr)."""
    if sr == target_sr:
        return y
    import soxr

    n = int(np.ceil(y.shape[-1] * float(target_sr) / sr))
    out = soxr.resample(y, sr, target_sr, quality="soxr_hq")
    return np.asarray(fix_length(out, n), dtype=y.dtype)


def float_mono(y: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Samples as float32 mono around ±1: integer PCM scaled, channels averaged (time along ``axis``, by default
    the longer one). Nothing is validated: ``prepare_audio`` does that, a live chunk is checked when classified."""
    y = np.asarray(y)
    axis = _time_axis(y) if axis is None else axis
    if np.issubdtype(y.dtype, np.integer):  # PCM: signed around 0, unsigned (8-bit WAV style) around its midpoint
        half = float(2 ** (8 * y.dtype.itemsize - 1))
        y = (y.astype(np.float64) - (half if np.issubdtype(y.dtype, np.unsignedinteger) else 0.0)) / half
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, refused by validation
        y = y.astype(np.float32, copy=False)
    return y.mean(axis=1 - axis, dtype=np.float32) if y.ndim == 2 else y.reshape(-1)


def prepare_audio(
    y: np.ndarray,
    sr: float,
    target_sr: int | None = None,
    name: str = "audio",
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
) -> Audio:
    """In-memory audio made usable: cut to ``max_seconds``, downmixed, resampled to ``target_sr``, validated.

    Takes 1-D or 2-D (``(n, channels)`` or ``(channels, n)``) arrays; integer PCM (e.g. int16 from
    a browser recording) is scaled to ±1 floats. The cut comes before any conversion, so an
    hour-long array costs no more than ``max_seconds`` of it.
    """
    y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise AudioError(f"{name}: expected a 1-D or 2-D array of samples, got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise AudioError(f"{name}: expected numeric samples, got {y.dtype}")
    check_sample_rate(sr, name)
    if y.size == 0:  # also (channels, 0): averaging nothing would report NaN instead
        raise AudioError(f"{name}: the audio is empty (0 samples)")
    axis = _time_axis(y)
    seconds = y.shape[axis] / sr
    cap = y.shape[axis] if max_seconds is None else int(round(max_seconds * sr))
    truncated = y.shape[axis] > cap
    if truncated:
        y = np.take(y, np.arange(cap), axis=axis)
    y = float_mono(y, axis)
    if not np.all(np.isfinite(y)):  # before resampling, which would spread them
        raise AudioError(f"{name}: the audio contains NaN or infinite samples")
    if target_sr and sr != target_sr and y.size:
        y = resample(y, sr, target_sr)
        sr = target_sr
    return Audio(validate_samples(y, sr, name), int(sr), name, truncated, seconds)


def load_audio(
    path: str | os.PathLike,
    sr: int | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    on_overlong: str = "truncate",
) -> Audio:
    """Decode ``path`` to mono float32 (resampled to ``sr`` if given), at most ``max_seconds``.

    Only the first ``max_seconds`` are decoded, so a huge file costs no more than the cap.
    ``on_overlong="error"`` refuses longer input instead of cutting it.
    """
    if on_overlong not in ("truncate", "error"):
        raise ValueError("on_overlong must be 'truncate' or 'error'")
    if is_remote(path):
        return _load_remote(path, sr, max_seconds, on_overlong)
    path = Path(path)
    name = path.name
    if path.is_dir():
        raise AudioError(f"{name}: is a directory, not an audio file")
    if not path.exists():
        raise AudioError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{name}: the file is empty (0 bytes)")

    if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
        try:
            y, rate, original, truncated = _read_soundfile(path, sr, max_seconds)
        except _UnreadableError as libsndfile_error:
            if shutil.which("ffmpeg") is None:
                raise
            rate, original = sr or 22050, None
            try:  # ffmpeg reads more variants of some formats
                y, truncated = _read_ffmpeg(path, rate, max_seconds)
            except AudioError:
                raise libsndfile_error from None
    else:
        rate, original = sr or 22050, None
        y, truncated = _read_ffmpeg(path, rate, max_seconds)
    if truncated and on_overlong == "error":
        length = f"{original:.1f} s" if original else f"more than {max_seconds:g} s"
        raise AudioError(f"{name}: the audio is too long ({length}; the limit is {max_seconds:g} s)")
    y = prepare_audio(y, rate, sr, name, max_seconds).samples  # at ``rate`` already: cuts a resampler's extra sample
    return Audio(y, sr or rate, str(path), truncated, original)


def _load_remote(uri: str | os.PathLike, sr: int | None, max_seconds: float, on_overlong: str) -> Audio:
    """A file in object storage (any fsspec URI), fetched to a temporary local file and decoded as one."""
    try:
        remote = to_path(uri)
    except DataError as exc:  # the filesystem's package is missing: this file, like every file there, is unreadable
        raise AudioError(str(exc)) from None
    with ExitStack() as stack:
        try:
            local = stack.enter_context(local_copy(remote))
        except FileNotFoundError:
            raise AudioError(f"{remote.name}: no such file ({uri})") from None
        except Exception as exc:  # the filesystem's own errors: permissions, network, a missing bucket...
            raise AudioError(f"{remote.name}: cannot fetch it ({uri}: {type(exc).__name__}: {exc})") from None
        return replace(load_audio(local, sr, max_seconds, on_overlong), source=str(uri))


def windows(y: np.ndarray, sr: int, seconds: float, min_seconds: float | None = None) -> list[np.ndarray]:
    """Split audio into consecutive ``seconds``-long windows for window-by-window prediction.

    A tail shorter than ``min_seconds`` (default: half a window) is dropped unless it is
    the only window, so short clips still get one (shorter) window.
    """
    size = int(round(seconds * sr))
    min_size = int(round((seconds / 2 if min_seconds is None else min_seconds) * sr))
    out = [y[i : i + size] for i in range(0, len(y), size)]
    if len(out) > 1 and len(out[-1]) < min_size:
        out.pop()
    return out


# A browser recording starts and ends with the room before the music: frames this far below its loud frames are
# that room, not music. 35 dB is below any sustained music a microphone hears and above typical room noise.
TRIM_BELOW_LOUD_DB = 35.0
TRIM_QUIET_DBFS = -60.0  # a recording whose loud frames are this quiet is all quiet: nothing to tell apart
TRIM_MARGIN_SECONDS = 0.25  # kept either side of the sound, so an attack or a fade is not clipped
TRIM_FRAME_SECONDS = 0.05


def silent_edges(
    y: np.ndarray, sr: int, below_loud_db: float = TRIM_BELOW_LOUD_DB, margin_seconds: float = TRIM_MARGIN_SECONDS
) -> tuple[int, int]:
    """``(start, stop)``: the samples of ``y`` between its leading and trailing silence (or near-silence).

    Silence is relative: frames ``below_loud_db`` under the recording's loud frames (its 98th percentile of
    frame RMS), so room noise counts as silence whatever the microphone's gain. A recording that is quiet
    all through, or whose sound would be shorter than ``MIN_SECONDS``, is kept whole: trimming it would
    leave nothing to judge, and the quality check should be the one to say it is quiet.
    """
    frame = max(1, int(TRIM_FRAME_SECONDS * sr))
    n = len(y) // frame
    if n < 2:
        return 0, len(y)
    power = np.mean(np.square(y[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    db = 10 * np.log10(power + 1e-20)
    loud = float(np.percentile(db, 98))
    if loud < TRIM_QUIET_DBFS:
        return 0, len(y)
    active = np.flatnonzero(db > loud - below_loud_db)
    margin = int(margin_seconds * sr)
    start = max(0, int(active[0]) * frame - margin)
    stop = len(y) if active[-1] == n - 1 else min(len(y), (int(active[-1]) + 1) * frame + margin)
    return (start, stop) if stop - start >= MIN_SECONDS * sr else (0, len(y))


def trim_silence(y: np.ndarray, sr: int, **kwargs) -> np.ndarray:
    """``y`` without its leading and trailing silence (see ``silent_edges``); a view, not a copy."""
    start, stop = silent_edges(y, sr, **kwargs)
    return y[start:stop]
