"""What a tagged file says: the genres' display names and the ``MUSICGENRE_SCORES`` record.

The model's labels (``hiphop``) are identifiers, not what a music library shows; the default display names
are ID3v1's genre names ("Hip-Hop"), which every player knows and which ID3v1's one-byte genre can hold.
``--genre-map FILE`` replaces them (e.g. MusicBrainz's "hip hop").

The record is what lets a later run tell its own genre from the user's: it stores the genre values it wrote
(as written, display names), the model and the scores. A file whose genre still equals the recorded one
carries our answer; a file whose genre differs was changed by someone since, and is the user's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from musicgenre.errors import DataError

# Tag field names, the same in every format: ID3 ``TXXX:<name>``, a Vorbis comment ``<name>``, an MP4
# ``----:com.apple.iTunes:<name>`` atom (the form Picard and beets read and show).
SCORES_FIELD = "MUSICGENRE_SCORES"
TAGS_FIELD = "MUSICGENRE_TAGS"

# ID3v1's names for GTZAN's ten genres (all ten are in ID3v1's list, so the v1 genre byte can hold them).
DISPLAY_NAMES: dict[str, str] = {
    "blues": "Blues",
    "classical": "Classical",
    "country": "Country",
    "disco": "Disco",
    "hiphop": "Hip-Hop",
    "jazz": "Jazz",
    "metal": "Metal",
    "pop": "Pop",
    "reggae": "Reggae",
    "rock": "Rock",
}


def load_genre_map(path: str | os.PathLike | None) -> dict[str, str]:
    """Display names: the defaults, with ``path``'s entries replacing them.

    ``path`` is JSON (``{"hiphop": "hip hop"}``) or text with one ``label = name`` (or ``label: name``) per line;
    blank lines and ``#`` comments are ignored. Keys must be model labels; a value must not be empty.
    """
    names = dict(DISPLAY_NAMES)
    if path is None:
        return names
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read the genre map: {exc.strerror or exc}") from exc
    try:
        entries = json.loads(text) if text.lstrip().startswith("{") else _text_entries(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: the genre map is not valid JSON: {exc}") from exc
    for label, name in entries.items():
        if label not in names:
            raise DataError(f"{path}: {label!r} is not a genre label (expected one of {', '.join(names)})")
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"{path}: the name for {label!r} is empty")
        names[label] = name.strip()
    return names


def _text_entries(text: str) -> dict[str, str]:
    entries = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        sep = "=" if "=" in line else ":"
        label, found, name = line.partition(sep)
        if not found:
            raise DataError(f"line {number}: expected 'label = name', got {line!r}")
        entries[label.strip()] = name.strip()
    return entries


def chosen_genres(scores: dict[str, float], multi: float | None = None) -> list[str]:
    """The labels to write: the top one, or with ``multi`` every label whose probability is at least ``multi``
    (the top one always, best first)."""
    ranked = sorted(scores, key=scores.get, reverse=True)
    if multi is None:
        return ranked[:1]
    return [ranked[0]] + [label for label in ranked[1:] if scores[label] >= multi]


@dataclass(frozen=True)
class Record:
    """The ``MUSICGENRE_SCORES`` value: which model, the genre values written (display form) and all scores."""

    model: str
    genres: list[str]
    scores: dict[str, float] = field(default_factory=dict)

    def encode(self) -> str:
        scores = {label: round(float(p), 4) for label, p in self.scores.items()}
        return json.dumps({"model": self.model, "genre": self.genres, "scores": scores}, separators=(", ", ": "))

    @classmethod
    def decode(cls, text: str | None) -> Record | None:
        """The record in a file's field, or None when absent or not one of ours (a user's text is left alone)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(str(data["model"]), [str(g) for g in data["genre"]], {k: float(v) for k, v in data["scores"].items()})
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def matches(self, genres: list[str]) -> bool:
        """Whether a file's current genre values are the ones this record wrote (so the genre is ours)."""
        return [g.strip() for g in genres] == self.genres
