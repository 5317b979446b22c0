"""GTZAN on disk: where the clips are, what genre each is, and lists of paths."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgenre.audio.io import AUDIO_EXTENSIONS, load_audio
from musicgenre.errors import AudioError, DataError, describe_failure
from musicgenre.util.parquet import pyarrow_parquet
from musicgenre.util.uri import is_remote, is_uri, remote_files, to_path

GENRES: tuple[str, ...] = (
    "blues",
    "classical",
    "country",
    "disco",
    "hiphop",
    "jazz",
    "metal",
    "pop",
    "reggae",
    "rock",
)
# GTZAN names tracks <genre>.NNNNN; 3-second segment rows add the segment index: blues.00000.3.wav
_TRACK_RE = re.compile(r"^(?P<track>[a-z]+\.\d{5})(?:\.(?P<segment>\d+))?\.[A-Za-z0-9]+$")


SHARED_DATA_ENV = "MUSICGENRE_SHARED_DATA"


def default_shared_data() -> Path:
    """Real GTZAN data for tests and experiments: ``$MUSICGENRE_SHARED_DATA``, else ``../shared/data`` beside a checkout."""
    return Path(os.environ.get(SHARED_DATA_ENV) or Path(__file__).resolve().parents[3] / "shared" / "data")  # beside the checkout


def track_id(filename: str) -> str:
    """``blues.00000`` for ``blues.00000.wav``, ``blues.00000.3.wav`` or ``genres/blues/blues.00000.au``."""
    name = os.path.basename(filename)
    match = _TRACK_RE.match(name)
    if match:
        return match.group("track")
    return os.path.splitext(name)[0]


def label_from_path(path: str | os.PathLike) -> str:
    """The genre a GTZAN path or URI names (parent folder or file-name prefix), or '' if none."""
    text = str(path)
    parent = os.path.basename(os.path.dirname(text))
    if parent in GENRES:
        return parent
    prefix = os.path.basename(text).split(".", 1)[0]
    return prefix if prefix in GENRES else ""


def _genre_root(root: Path) -> Path | None:
    """The folder that holds one sub-folder per genre, searched a few levels down."""
    queue = [root]
    for _ in range(4):
        next_level = []
        for folder in queue:
            subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
            if sum(p.name in GENRES for p in subdirs) >= 2:
                return folder
            next_level.extend(subdirs)
        queue = next_level
    return None


def expand_lists(inputs: list[str | os.PathLike]) -> list[str]:
    """The inputs with each list of paths replaced by its paths: a ``.txt`` file (one path per line; blank lines and
    ``#`` comments skipped) or a ``.parquet`` file with a ``path`` column, local or at a URI (``util.uri``). Relative
    paths are relative to the list's folder, so a list travels with its collection."""
    out: list[str] = []
    for item in inputs:
        path = to_path(item)
        suffix = path.suffix.lower()
        if suffix not in (".txt", ".parquet") or not path.is_file():
            out.append(str(item))
            continue
        try:
            if suffix == ".txt":
                listed = [line.strip() for line in path.read_text().splitlines()]
                listed = [line for line in listed if line and not line.startswith("#")]
            else:
                import pyarrow as pa

                table = pyarrow_parquet().read_table(pa.BufferReader(path.read_bytes()), columns=["path"])
                listed = [str(p) for p in table.column("path").to_pylist()]
        except (OSError, UnicodeDecodeError, KeyError, ValueError) as exc:
            raise DataError(f"{item}: cannot read it as a list of paths ({exc})") from None
        out.extend(p if is_uri(p) or Path(p).is_absolute() else str(path.parent / p) for p in listed)
    return out


def find_audio_files(inputs: list[str | os.PathLike]) -> list[Path]:
    """Expand files, dataset folders and lists of paths (``expand_lists``), local or at URIs, into a sorted,
    de-duplicated list of audio files (``Path``, or ``UPath`` for a remote one).

    Folders may use any common GTZAN layout: ``<genre>/<genre>.NNNNN.wav``,
    ``genres_original/<genre>/...`` (the Kaggle copy), ``genres/<genre>/*.au`` (the original
    archive), or just be a folder of audio files. A remote folder gives every audio file below it.
    """
    found: list[Path] = []
    for item in expand_lists(inputs):
        path = to_path(item)
        if is_remote(path) and path.is_dir():
            found.extend(p for p in remote_files(path) if p.suffix.lower() in AUDIO_EXTENSIONS)
        elif path.is_dir():
            base = _genre_root(path) or path
            found.extend(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            found.append(path)  # missing or odd files are reported by the loader, not dropped here
    return sorted(set(found), key=lambda p: (is_remote(p), tuple(p.parts)))  # local first, in pathlib's order


@dataclass
class Clip:
    """A decoded clip at the model's rate, its genre index and track id."""

    samples: np.ndarray
    label: int
    track: str


def labelled_files(data_dir: str | os.PathLike) -> list[Path]:
    """The audio files of a GTZAN-like folder whose genre the path names; none at all is a DataError."""
    files = [f for f in find_audio_files([data_dir]) if label_from_path(f)]
    if not files:
        raise DataError(f"{data_dir}: no audio files in <genre>/ folders or named <genre>.NNNNN.*")
    return files


def load_clips(data_dir: str | os.PathLike, sample_rate: int, max_seconds: float = 600.0) -> tuple[list[Clip], dict]:
    """Every labelled clip of a GTZAN-like folder, decoded once; unreadable ones are listed, not fatal."""
    from tqdm.auto import tqdm

    files = labelled_files(data_dir)
    clips, failed = [], {}
    for path in tqdm(files, desc="decoding", unit="clip"):
        try:
            audio = load_audio(path, sr=sample_rate, max_seconds=max_seconds)
        except AudioError as exc:
            failed[str(path)] = describe_failure(exc)
            continue
        clips.append(Clip(audio.samples, GENRES.index(label_from_path(path)), track_id(path.name)))
    return clips, failed
