"""One audio file's rows of the feature table: what a local pool worker (``table``) and a Ray task (``cluster``)
compute alike. Its own module so that both import it, and neither the other (issue 34: ``table`` and ``cluster``
imported each other)."""

from __future__ import annotations

from pathlib import Path

from musicgenre.audio.io import load_audio, windows
from musicgenre.data.gtzan import label_from_path
from musicgenre.errors import AudioError, describe_failure
from musicgenre.features.handcrafted import SAMPLE_RATE, extract_features, extract_features_naive


def row_names(path: Path, segment_seconds: float | None, n_segments: int) -> list[str]:
    """Table ``filename`` values: ``x.wav`` for a clip, ``x.0.wav``, ``x.1.wav``... for segments."""
    if not segment_seconds:
        return [path.name]
    return [f"{path.stem}.{i}{path.suffix}" for i in range(n_segments)]


def clip_rows(path: Path, segment_seconds: float | None = None, librosa: bool = False) -> list[dict]:
    """Feature rows of one audio file (one row, or one per full segment); ``librosa``: by librosa's own calls."""
    audio = load_audio(path, sr=SAMPLE_RATE)
    y = audio.samples
    parts = [y]
    if segment_seconds:
        size = int(round(segment_seconds * SAMPLE_RATE))
        parts = [w for w in windows(y, SAMPLE_RATE, segment_seconds) if len(w) == size]  # full segments only
        if not parts:
            raise AudioError(f"{path.name}: shorter than one {segment_seconds:g}-second segment ({audio.seconds:.2f} s)")
    label = label_from_path(path)
    names = row_names(path, segment_seconds, len(parts))
    extract = extract_features_naive if librosa else extract_features
    return [
        {"filename": name, "length": len(part), **extract(part, SAMPLE_RATE), "label": label}
        for name, part in zip(names, parts, strict=True)
    ]


def file_rows(args: tuple[Path, float | None, bool]) -> tuple[Path, list[dict] | None, str | None]:
    """``(path, rows, error)`` of one ``(path, segment_seconds, librosa)`` job: what a pool worker or a Ray task returns."""
    path, segment_seconds, librosa = args
    try:
        return path, clip_rows(path, segment_seconds, librosa), None
    except Exception as exc:  # one bad file is reported and skipped, never fatal to the batch
        return path, None, describe_failure(exc)
