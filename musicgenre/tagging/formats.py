"""The genre fields of music files: read, write, snapshot and restore, through mutagen.

A tool that writes into someone's music collection must change what it means to and nothing else, and must be
able to put back what it changed. So each format is written the way the file already is (an ID3v2.3 tag stays
v2.3, an ID3v1 tag stays and only its genre byte follows, no ID3v1 tag is ever added), only the genre and the two
``MUSICGENRE_*`` fields are touched, and ``snapshot`` records exactly those (JSON, for the undo journal) so that
``restore`` can put them back, removing a tag block that was not there before. Where the fields live:

- MP3, WAV, AIFF: ID3v2 ``TCON`` and ``TXXX:MUSICGENRE_SCORES`` / ``TXXX:MUSICGENRE_TAGS`` (WAV and AIFF in their
  ID3 chunk). Several values are ID3v2.4's null-separated strings; ID3v2.3 has no such thing, and mutagen
  (``v23_sep``) and Picard (``id3v23_join_with``) both join them with "/" there, which neither splits when reading,
  so ``read_tags`` splits v2.3 values on "/" and ``write_tags`` refuses a value containing "/" for a v2.3 tag.
- FLAC, Ogg Vorbis, Opus: Vorbis comments ``GENRE`` (repeated), ``MUSICGENRE_SCORES``, ``MUSICGENRE_TAGS``.
- MP4/M4A: ``©gen`` (a list), freeform ``----:com.apple.iTunes:MUSICGENRE_*`` (UTF-8); writing ``©gen`` drops the
  numeric ``gnre`` atom, which would otherwise be a second, stale genre.

The audio payload is never touched; ``payload.audio_digest`` is how the caller checks that. Everything is edited in
place on the given path: the caller passes a temporary copy and swaps it in atomically.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field

from mutagen.id3 import TCON, TXXX
from mutagen.id3._id3v1 import find_id3v1
from mutagen.mp4 import AtomDataType, Atoms, MP4FreeForm

from musicgenre.errors import TagError
from musicgenre.tagging.names import SCORES_FIELD, TAGS_FIELD
from musicgenre.tagging.payload import KINDS, audio_digest, check_payload, detect, guard, where

__all__ = ["SUPPORTED_SUFFIXES", "FileTags", "read_tags", "snapshot", "write_tags", "restore", "audio_digest"]

# File name suffixes worth opening (the container is then decided from the content, see payload.detect).
SUPPORTED_SUFFIXES = frozenset(
    {".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".m4b", ".mp4", ".wav", ".wave", ".aif", ".aiff", ".aifc"}
)

_ID3 = {"mp3", "wav", "aiff"}
_VORBIS = {"flac", "ogg", "opus"}
_V23_SEP = "/"
_ID3_KEYS = ("TCON", f"TXXX:{SCORES_FIELD}", f"TXXX:{TAGS_FIELD}")
_VC_KEYS = {"genre", SCORES_FIELD.lower(), TAGS_FIELD.lower()}
_MP4_SCORES = f"----:com.apple.iTunes:{SCORES_FIELD}"
_MP4_TAGS = f"----:com.apple.iTunes:{TAGS_FIELD}"
_MP4_GENRE_ATOMS = ("\xa9gen", "gnre")
_NO_V1 = {"mp3": {"v1": 0}}  # ID3v1 is MP3's alone (AIFF's ID3 save takes no such argument); see _write_id3


@dataclass
class FileTags:
    """What a file says now: its genre values (ID3 references such as "(17)" resolved to names), our record, our
    tags, and the ID3v2 major version (None without an ID3v2 tag)."""

    format: str
    genres: list[str] = field(default_factory=list)
    record: str | None = None
    tags: list[str] = field(default_factory=list)
    id3_version: int | None = None


def read_tags(path: str | os.PathLike) -> FileTags:
    """The file's current genre fields; TagError if it is unreadable, corrupt or not a supported container."""
    kind = detect(path)
    with guard(path, "read the tags"):
        audio = _load(path, kind, raw=False)
        tags = audio.tags
        if tags is None:
            return FileTags(kind)
        if kind in _ID3:
            version = tags.version[1] if tags.version[0] == 2 else None
            split = _split if version is not None and version < 4 else list
            genres = split(tags["TCON"].genres) if "TCON" in tags else []
            record = _first(tags[_ID3_KEYS[1]].text) if _ID3_KEYS[1] in tags else None
            values = split(tags[_ID3_KEYS[2]].text) if _ID3_KEYS[2] in tags else []
            return FileTags(kind, genres, record, values, version)
        if kind in _VORBIS:
            genres, records, values = (tags[key] if key in tags else [] for key in ("GENRE", SCORES_FIELD, TAGS_FIELD))
            return FileTags(kind, list(genres), _first(records), list(values))
        records = [_text(v) for v in tags.get(_MP4_SCORES, [])]
        return FileTags(kind, list(tags.get("\xa9gen", [])), _first(records), [_text(v) for v in tags.get(_MP4_TAGS, [])])


def snapshot(path: str | os.PathLike) -> dict:
    """Exactly what ``write_tags`` may change, as JSON-able data for ``restore``.

    Keys: ``format``; ``tagged`` (an ID3v2 tag / FLAC Vorbis comment block / MP4 ``ilst`` existed); ``genres``
    (the genre values as ``read_tags`` gives them, for people reading the journal; ``restore`` does not use it);
    ``id3_version``; ``id3v1`` (base64 of an MP3's ID3v1 tag, or None); and the raw fields of the format:
    ``frames`` (ID3: frame key -> {"encoding", "text"}), ``comments`` (Vorbis: [index, key, value] of each genre and
    MUSICGENRE_* comment, so their order comes back too), ``atoms`` (MP4: [name, base64 payload] of the ``©gen`` and
    ``gnre`` atoms, kept raw because mutagen reads ``gnre`` as ``©gen``) and ``freeform`` (MP4: key -> [{"data"
    (base64), "dataformat", "version"}]).
    """
    kind = detect(path)
    current = read_tags(path)
    with guard(path, "snapshot the tags"):
        audio = _load(path, kind, raw=True)
        tags = audio.tags
        snap = {"format": kind, "tagged": tags is not None, "genres": current.genres, "id3_version": None, "id3v1": None}
        if kind in _ID3:
            frames = {key: tags.getall(key)[0] for key in _ID3_KEYS if tags is not None and tags.getall(key)}
            snap["frames"] = {key: {"encoding": int(f.encoding), "text": list(f.text)} for key, f in frames.items()}
            snap["id3_version"] = tags.version[1] if tags is not None else None
            if kind == "mp3":
                v1 = _read_v1(path)
                snap["id3v1"] = base64.b64encode(v1).decode("ascii") if v1 is not None else None
        elif kind in _VORBIS:
            snap["comments"] = [[i, k, v] for i, (k, v) in enumerate(tags or []) if k.lower() in _VC_KEYS]
        else:
            snap["atoms"] = _mp4_genre_atoms(path) if tags is not None else []
            snap["freeform"] = {
                key: [_freeform_json(v) for v in tags[key]] for key in (_MP4_SCORES, _MP4_TAGS) if key in (tags or {})
            }
        return snap


def write_tags(path: str | os.PathLike, genres: list[str], record: str, tags: list[str] | None = None) -> None:
    """Set the file's genres (best first), its ``MUSICGENRE_SCORES`` record and, unless ``tags`` is None, its
    ``MUSICGENRE_TAGS`` values (an empty list removes them), in place. Nothing else in the file changes."""
    if not genres or not all(isinstance(g, str) and g.strip() for g in genres):
        raise ValueError(f"write_tags needs one or more non-empty genre names, got {genres!r}")
    values = [*genres, record, *(tags or [])]
    if not all(isinstance(v, str) and "\x00" not in v for v in values):
        raise ValueError("tag values must be strings without NUL characters")
    kind = detect(path)
    check_payload(path, kind)
    with guard(path, "write the tags"):
        audio = _load(path, kind, raw=True)
        if audio.tags is None:
            audio.add_tags()
        if kind in _ID3:
            _write_id3(path, kind, audio.tags, list(genres), record, tags)
            return
        if kind in _VORBIS:
            comments = audio.tags
            comments["GENRE"] = list(genres)
            comments[SCORES_FIELD] = [record]
            if tags is not None:
                _set_or_delete(comments, TAGS_FIELD, list(tags))
        else:
            items = audio.tags
            items["\xa9gen"] = list(genres)
            items._failed_atoms.pop("gnre", None)  # a gnre mutagen could not parse is kept raw there; drop it too
            items[_MP4_SCORES] = [MP4FreeForm(record.encode("utf-8"), AtomDataType.UTF8)]
            if tags is not None:
                _set_or_delete(items, _MP4_TAGS, [MP4FreeForm(t.encode("utf-8"), AtomDataType.UTF8) for t in tags])
        audio.save()


def restore(path: str | os.PathLike, snap: dict) -> None:
    """Put back in place exactly what ``snap`` (from ``snapshot``) recorded, removing a tag block that was absent.

    Limitation: an MP4 that had no ``ilst`` keeps an empty one (mutagen cannot remove the atoms it adds).
    """
    kind = detect(path)
    if snap.get("format") != kind:
        raise TagError(f"{where(path)}: the snapshot is of a {snap.get('format')} file, but this is {kind}")
    check_payload(path, kind)
    with guard(path, "restore the tags"):
        audio = _load(path, kind, raw=True)
        if not snap["tagged"] and _only_ours(audio, kind):
            audio.delete()  # no-op without tags; removes the whole ID3 tag/chunk or FLAC comment block
            if kind == "mp3":
                _put_v1(path, base64.b64decode(snap["id3v1"]) if snap["id3v1"] else None)
            return
        if not snap["tagged"]:  # the block is new, but the user has added to it since: remove only our fields
            version = audio.tags.version[1] if kind in _ID3 else None
            snap = {**snap, "frames": {}, "comments": [], "atoms": [], "freeform": {}, "id3_version": version}
        if kind in _ID3:
            if audio.tags is None:
                audio.add_tags()
            if audio.tags.version[1] != snap["id3_version"]:  # re-saved since in the other version: convert its frames
                if snap["id3_version"] == 3:
                    audio.tags.update_to_v23()
                else:
                    audio.tags.update_to_v24()
            for key in _ID3_KEYS:
                audio.tags.delall(key)
            for key, frame in snap["frames"].items():
                if key == "TCON":
                    audio.tags.add(TCON(encoding=frame["encoding"], text=frame["text"]))
                else:
                    audio.tags.add(TXXX(encoding=frame["encoding"], desc=key[5:], text=frame["text"]))
            audio.tags.save(path, v2_version=snap["id3_version"], v23_sep=None, **_NO_V1.get(kind, {}))
        elif kind in _VORBIS:
            if audio.tags is None:
                audio.add_tags()
            audio.tags[:] = [(k, v) for k, v in audio.tags if k.lower() not in _VC_KEYS]
            for index, key, value in snap["comments"]:
                audio.tags.insert(index, (key, value))
            audio.save()
        else:
            if audio.tags is None:
                audio.add_tags()
            items, failed = audio.tags, audio.tags._failed_atoms
            for key in ("\xa9gen", _MP4_SCORES, _MP4_TAGS):
                items.pop(key, None)
            for name in _MP4_GENRE_ATOMS:
                failed.pop(name, None)
            # mutagen writes back raw the atoms it could not parse (unless it holds a parsed value of that name):
            # the one way to put back a numeric gnre atom byte for byte.
            for name, payload in snap["atoms"]:
                failed.setdefault(name, []).append(base64.b64decode(payload))
            for key, values in snap["freeform"].items():
                items[key] = [MP4FreeForm(base64.b64decode(v["data"]), v["dataformat"], v["version"]) for v in values]
            audio.save()
        if kind == "mp3":
            _put_v1(path, base64.b64decode(snap["id3v1"]) if snap["id3v1"] else None)


def _only_ours(audio, kind: str) -> bool:
    """Whether the file's tag block holds nothing but the fields ``write_tags`` sets (so removing it loses nothing)."""
    tags = audio.tags
    if tags is None:
        return True
    if kind in _ID3:
        return all(key in _ID3_KEYS for key in tags.keys())
    if kind in _VORBIS:
        return all(key.lower() in _VC_KEYS for key, _ in tags)
    return all(key in ("\xa9gen", _MP4_SCORES, _MP4_TAGS) for key in tags.keys()) and not tags._failed_atoms


def _load(path, kind: str, raw: bool):
    """The mutagen file object. ``raw`` (for writing) reads ID3 frames as stored (``translate=False``: a v2.3
    tag's frames are written back as they were) and without ID3v1 (which mutagen would otherwise copy into the
    ID3v2 tag); ID3v2.2, which mutagen reads but cannot write, is refused there since undo could not restore it."""
    cls = KINDS[kind]
    if kind in _ID3:
        audio = cls(path, translate=not raw, load_v1=kind == "mp3" and not raw)
        if raw and audio.tags is not None and audio.tags.version[1] < 3:
            raise TagError(f"{where(path)}: has an ID3v2.2 tag, which cannot be rewritten without converting it")
    else:
        audio = cls(path)
    if kind == "mp3" and audio.info.sketchy:
        raise TagError(f"{where(path)}: does not look like MPEG audio (no run of valid MPEG frames found)")
    return audio


def _write_id3(path, kind: str, tags, genres: list[str], record: str, values: list[str] | None) -> None:
    version, top, plain_genres, plain_values = (tags.version[1] if tags.version[0] == 2 else 4), genres[0], genres, values
    read = _split if version == 3 else list
    if version == 3:
        genres, values = [_V23_SEP.join(genres)], (None if values is None else [_V23_SEP.join(values)] if values else [])
    # Refuse what would not read back as written (Record.matches compares the genres read with those recorded):
    # in ID3 a number or "(n)" is a reference to an ID3v1 genre, and in v2.3 "/" separates values.
    if read(TCON(encoding=3, text=genres).genres) != plain_genres or (values and read(values) != plain_values):
        raise TagError(
            f"{where(path)}: {plain_genres + (plain_values or [])!r} would not read back as written from this ID3v2.{version} "
            "tag (a number or '(n)' is an ID3v1 genre reference; in ID3v2.3, '/' separates values)"
        )
    tags.delall("TCON")
    tags.add(TCON(encoding=3, text=genres))
    tags.delall(_ID3_KEYS[1])
    tags.add(TXXX(encoding=3, desc=SCORES_FIELD, text=[record]))
    if values is not None:
        tags.delall(_ID3_KEYS[2])
        if values:
            tags.add(TXXX(encoding=3, desc=TAGS_FIELD, text=values))
    v1 = _read_v1(path) if kind == "mp3" else None
    # v1=0: mutagen would rebuild an ID3v1 tag from the ID3v2 frames (losing its own title etc.); it is put back
    # below with only its genre byte changed. v23_sep=None: other frames' values stay as stored.
    tags.save(path, v2_version=version, v23_sep=None, **_NO_V1.get(kind, {}))
    if v1 is not None:
        _put_v1(path, _v1_with_genre(v1, top))


def _read_v1(path) -> bytes | None:
    """The file's ID3v1 tag as stored (128 bytes, or fewer for an old broken writer's), or None."""
    with open(path, "rb") as fh:
        tag, offset = find_id3v1(fh)
        if tag is None:
            return None
        fh.seek(offset, os.SEEK_END)
        return fh.read()


def _put_v1(path, data: bytes | None) -> None:
    """Replace the file's ID3v1 tag with ``data`` (None: no ID3v1 tag)."""
    with open(path, "r+b") as fh:
        tag, offset = find_id3v1(fh)
        if tag is not None:
            fh.seek(offset, os.SEEK_END)
            fh.truncate()
        if data:
            fh.seek(0, os.SEEK_END)
            fh.write(data)


def _v1_with_genre(v1: bytes, genre: str) -> bytes:
    """The ID3v1 tag with its genre byte set to ``genre``'s index in ID3v1's list (255, "none", if not listed)."""
    if len(v1) != 128:
        return v1
    names = [name.lower() for name in TCON.GENRES]
    index = names.index(genre.lower()) if genre.lower() in names else 255
    return v1[:127] + bytes([index])


def _mp4_genre_atoms(path) -> list[list[str]]:
    with open(path, "rb") as fh:
        ilst = Atoms(fh).path(b"moov", b"udta", b"meta", b"ilst")[-1]
        found = []
        for atom in ilst.children:
            if atom.name.decode("latin-1") in _MP4_GENRE_ATOMS:
                ok, data = atom.read(fh)
                if not ok:
                    raise EOFError("the file ends inside its MP4 tags")
                found.append([atom.name.decode("latin-1"), base64.b64encode(data).decode("ascii")])
        return found


def _freeform_json(value: MP4FreeForm) -> dict:
    return {"data": base64.b64encode(bytes(value)).decode("ascii"), "dataformat": int(value.dataformat), "version": value.version}


def _set_or_delete(tags, key: str, values: list) -> None:
    if values:
        tags[key] = values
    elif key in tags:
        del tags[key]


def _split(values) -> list[str]:
    return [part.strip() for value in values for part in value.split(_V23_SEP) if part.strip()]


def _first(values) -> str | None:
    return values[0] if values else None


def _text(value: bytes) -> str:
    return bytes(value).decode("utf-8", errors="replace")
