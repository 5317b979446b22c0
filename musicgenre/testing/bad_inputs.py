"""A corpus of broken and awkward audio files, generated on demand: what every entry point must survive.

Nothing binary is committed: ``write_corpus`` writes the files. Each :class:`Case` says what a
correct program does with its file: classify it (``"predict"``, flagged ``uncertain`` where the
recording is too poor to judge: silence is answered, never refused) or refuse it with an
``AudioError`` whose message contains ``match`` (``"error"``). The tests send every case through
the library, the ``musicgenre`` command and the app; ``benchmarks/load.py`` mixes them into its
request bursts.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from musicgenre.audio.example import example_clip

SR = 22050


@dataclass(frozen=True)
class Case:
    """One corpus file: its name, the expected outcome and, for errors, words the message must contain."""

    name: str
    expect: str  # "predict" or "error"
    match: str = ""
    seconds: float | None = None  # the duration a prediction must report, when it is not the clip's
    uncertain: bool = False  # a prediction that must be flagged uncertain (silence, near-silence, heavy clipping, 1 s)


def _wav_bytes(y: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    import io

    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def _with_data_size(wav: bytes, frames_claimed: int, frame_bytes: int) -> bytes:
    """The same WAV with its RIFF and data chunk sizes rewritten to claim ``frames_claimed`` frames."""
    data = wav.index(b"data")
    size = min(frames_claimed * frame_bytes, 0xFFFFFFFF - data - 8)
    out = bytearray(wav)
    out[data + 4 : data + 8] = struct.pack("<I", size)
    out[4:8] = struct.pack("<I", size + data)
    return bytes(out)


def _with_sample_rate(wav: bytes, rate: int) -> bytes:
    """The same WAV with a header claiming ``rate`` (and the matching byte rate)."""
    fmt = wav.index(b"fmt ")
    channels, bits = struct.unpack("<H", wav[fmt + 10 : fmt + 12])[0], struct.unpack("<H", wav[fmt + 22 : fmt + 24])[0]
    out = bytearray(wav)
    out[fmt + 12 : fmt + 20] = struct.pack("<II", rate, rate * channels * bits // 8)
    return bytes(out)


def write_corpus(folder: str | os.PathLike, seconds: float = 6.0, seed: int = 0) -> list[tuple[Case, Path]]:
    """Write every case into ``folder`` (created if needed); returns ``(case, path)`` in a fixed order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    music = example_clip(seconds, SR, seed)
    rng = np.random.default_rng(seed)
    written: list[tuple[Case, Path]] = []

    def add(case: Case, write) -> None:
        path = folder / case.name
        write(path)
        written.append((case, path))

    def audio(y: np.ndarray, sr: int = SR, **kwargs):
        return lambda path: sf.write(path, y, sr, **kwargs)

    def raw(data: bytes):
        return lambda path: path.write_bytes(data)

    wav = _wav_bytes(music, SR)
    add(Case("empty.wav", "error", "empty"), raw(b""))
    for ext in ("wav", "mp3", "flac"):
        add(Case(f"random_bytes.{ext}", "error", "not a readable audio file"), raw(rng.bytes(20_000)))
    add(Case("text_named.wav", "error", "not a readable audio file"), raw(b"these are my notes, not music\n" * 50))
    add(Case("truncated_header.wav", "error", "not a readable audio file"), raw(wav[:30]))
    short = _wav_bytes(music[: 3 * SR], SR)  # 3 s of samples under a header that claims the whole clip
    add(Case("header_lies.wav", "predict", seconds=3.0), raw(_with_data_size(short, len(music), 2)))
    add(Case("claims_10_hours.wav", "predict", seconds=seconds), raw(_with_data_size(wav, 10 * 3600 * SR, 2)))
    nan, inf = music.copy(), music.copy()
    nan[SR] = np.nan
    inf[SR:SR + 10] = np.inf  # fmt: skip
    add(Case("nan_float.wav", "error", "NaN or infinite"), audio(nan, subtype="FLOAT"))
    add(Case("inf_float.wav", "error", "NaN or infinite"), audio(inf, subtype="FLOAT"))
    add(Case("one_sample.wav", "error", "too short"), audio(music[:1]))
    add(Case("silence.wav", "predict", uncertain=True), audio(np.zeros_like(music)))
    add(Case("one_second.wav", "predict", seconds=1.0, uncertain=True), audio(music[:SR]))
    add(Case("dc_offset.wav", "predict"), audio(0.5 * music + 0.4))
    add(Case("clipping.wav", "predict", uncertain=True), audio(np.clip(music * 20, -1, 1)))
    add(Case("very_quiet.wav", "predict", uncertain=True), audio(music * 1e-4, subtype="FLOAT"))  # about -80 dBFS
    add(Case("rate_8000.wav", "predict"), audio(example_clip(seconds, 8000, seed), 8000))
    add(Case("rate_44100.flac", "predict"), audio(example_clip(seconds, 44100, seed), 44100))
    add(Case("rate_96000.wav", "predict"), audio(example_clip(seconds, 96000, seed), 96000))
    add(Case("rate_2000.wav", "error", "unsupported sample rate"), audio(example_clip(seconds, 2000, seed), 2000))
    add(Case("rate_100_MHz.wav", "error", "unsupported sample rate"), raw(_with_sample_rate(wav, 100_000_000)))
    add(Case("stereo.wav", "predict"), audio(example_clip(seconds, SR, seed, channels=2)))
    add(Case("six_channels.wav", "predict"), audio(example_clip(seconds, SR, seed, channels=6)))
    add(Case("música ünïcode 音楽.wav", "predict"), audio(music))
    add(Case("name with spaces.flac", "predict"), audio(music))
    add(Case("a folder.wav", "error", "directory"), lambda path: path.mkdir())
    return written


def write_long_sparse_wav(path: str | os.PathLike, hours: float = 10.0, music_seconds: float = 20.0, rate: int = SR) -> Path:
    """A WAV that really is ``hours`` long (16-bit mono at ``rate``): music, then silence.

    The silence is a hole in a sparse file, so it takes no disk space, but a reader that
    decodes everything would need ``hours`` of samples in memory (10 h at 22,050 Hz: 3.2 GB
    as float32). WAV sizes are 32-bit: at most ~4 GB of data (~6 h at 96 kHz).
    """
    path = Path(path)
    frames = int(hours * 3600 * rate)
    if frames * 2 > 0xFFFFFFFF - 100:
        raise ValueError(f"{hours} h at {rate} Hz does not fit in a WAV file")
    header = _with_data_size(_wav_bytes(example_clip(music_seconds, rate, 0), rate), frames, 2)
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) - int(music_seconds * rate) * 2 + frames * 2)
    return path
