"""Which container a file is (from its content, not its name), where its audio lies, and a digest of those bytes.

A tag edit must never touch the sound. The caller proves it: it hashes the audio payload of the original and of the
edited copy, and only a copy with the same digest may replace the original. The digest covers the payload alone, so
it stays equal however the tags grew, moved or were renumbered, and changes if a single audio byte did. The layout is
read with mutagen's own parsers (ID3 and APE locators, FLAC block headers, Ogg pages, MP4 atoms, RIFF/IFF chunks),
the same reading of the file that the writer uses.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from contextlib import contextmanager

from mutagen import MutagenError
from mutagen._riff import RiffFile
from mutagen.aiff import AIFF, AIFFFile
from mutagen.apev2 import _APEv2Data
from mutagen.flac import FLAC
from mutagen.id3 import BitPaddedInt
from mutagen.id3._id3v1 import find_id3v1
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, Atoms
from mutagen.ogg import OggPage
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from musicgenre.errors import TagError

# The containers the tagger handles, by the name FileTags.format reports.
KINDS = {"mp3": MP3, "flac": FLAC, "ogg": OggVorbis, "opus": OggOpus, "mp4": MP4, "wav": WAVE, "aiff": AIFF}

# What mutagen (or a malformed file under it) may raise; all of it becomes a TagError naming the file.
FAILURES = (MutagenError, OSError, EOFError, ValueError, TypeError, KeyError, IndexError, struct.error, OverflowError)

# Header packets of an Ogg logical stream, by the start of its first packet: identification, comment (the one
# mutagen rewrites) and, for Vorbis, setup. Every later packet is audio.
_OGG_HEADERS = {b"\x01vorbis": 3, b"OpusHead": 2}
_OGG_CODECS = {b"\x01vorbis": "ogg", b"OpusHead": "opus"}
_BLOCK = 1 << 20


def where(path: str | os.PathLike) -> str:
    """The file's full path, for messages: a batch over a whole collection must say which file failed."""
    return os.path.abspath(os.fspath(path))


@contextmanager
def guard(path: str | os.PathLike, action: str):
    """Turn any failure of mutagen or of the file into a TagError that names the file and what was being done."""
    try:
        yield
    except FAILURES as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if not detail.strip("() "):  # mutagen wraps a bare IOError from a short read: say what that means
            detail = f"malformed or truncated data ({type(exc).__module__}.{type(exc).__name__})"
        raise TagError(f"{where(path)}: cannot {action}: {detail}") from exc


def detect(path: str | os.PathLike) -> str:
    """The container kind ("mp3", "flac", ...), from the content.

    Not from the name: the caller edits a temporary copy whose name ends in ``.tmp``, and the copy must be read as
    the original was (mutagen.File's name-weighted scores would read an ID3-prefixed FLAC as MP3 under such a
    name). Only an MPEG stream that starts with neither an ID3 tag nor a frame sync falls back on a ``.mp3`` or
    ``.mp2`` name; the MP3 loader (and its check for a run of valid frames) decides then.
    """
    with guard(path, "read the file"), open(path, "rb") as fh:
        start = _id3v2_end(fh)
        fh.seek(start)
        head = fh.read(512)
    if head.startswith(b"fLaC"):  # FLAC may carry an ID3v2 tag in front
        return "flac"
    other = _signature(head)
    if other == "ogg-other":
        raise TagError(f"{where(path)}: not a supported audio file (an Ogg stream that is neither Vorbis nor Opus)")
    if other and start:
        raise TagError(f"{where(path)}: not a supported audio file (an ID3 tag in front of {other.upper()} data)")
    if other:
        return other
    synced = len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
    if start or synced or os.fspath(path).lower().endswith((".mp3", ".mp2")):
        return "mp3"
    raise TagError(f"{where(path)}: not a supported audio file (MP3, FLAC, Ogg Vorbis/Opus, MP4/M4A, WAV or AIFF)")


def _signature(head: bytes) -> str | None:
    """The kind whose signature ``head`` starts with ("ogg-other" for an Ogg stream of another codec), or None."""
    if head[:4] == b"OggS":  # the codec's identification packet is on the first page(s), as mutagen looks for it
        return next((kind for magic, kind in _OGG_CODECS.items() if magic in head), "ogg-other")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[4:8] == b"ftyp":
        return "mp4"
    return None


def audio_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of the file's audio payload only; TagError if the layout cannot be parsed."""
    kind = detect(path)
    sha = hashlib.sha256()
    with guard(path, "read the audio payload"), open(path, "rb") as fh:
        _DIGESTS[kind](fh, sha.update)
    return sha.hexdigest()


def check_payload(path: str | os.PathLike, kind: str) -> None:
    """TagError unless the audio payload lies wholly inside the file: writing into a truncated file would make the
    container claim bytes that are now tags (a WAV whose ``data`` chunk runs into the new ID3 chunk plays it as noise).
    The same walk as the digest, without reading the audio (Ogg's pages are parsed, as they must be to find it)."""
    with guard(path, "read the audio layout"), open(path, "rb") as fh:
        _DIGESTS[kind](fh, None)


def _hash_range(fh, start: int, length: int, update: Callable[[bytes], None] | None) -> None:
    if update is None:
        if start + length > fh.seek(0, os.SEEK_END):
            raise EOFError(f"the file ends {start + length - fh.tell()} bytes before the end of its audio data")
        return
    fh.seek(start)
    while length > 0:
        block = fh.read(min(_BLOCK, length))
        if not block:
            raise EOFError(f"the file ends {length} bytes before the end of its audio data")
        update(block)
        length -= len(block)


def _hash_rest(fh, start: int, update: Callable[[bytes], None] | None) -> None:
    size = fh.seek(0, os.SEEK_END)
    if start > size:
        raise EOFError("the file ends inside its header")
    _hash_range(fh, start, size - start, update)


def _id3v2_end(fh, offset: int = 0) -> int:
    """Offset after the ID3v2 tags at ``offset`` (header, frames, padding and footer; stacked tags too)."""
    while True:
        fh.seek(offset)
        head = fh.read(10)
        if len(head) < 10 or head[:3] != b"ID3":
            return offset
        offset += 10 + BitPaddedInt(head[6:10]) + (10 if head[5] & 0x10 else 0)


def _mp3(fh, update) -> None:
    """MPEG frames: after the ID3v2 tag(s), before a trailing APEv2 and ID3v1 tag (the bytes taggers rewrite)."""
    start = _id3v2_end(fh)
    end = fh.seek(0, os.SEEK_END)
    tag, offset = find_id3v1(fh)
    if tag is not None:
        end += offset
    if start > end:
        raise EOFError(f"the ID3v2 tag claims {start} bytes, more than the file's {end}")
    ape = _APEv2Data(fh)
    if ape.metadata is not None and not ape.is_at_start and start <= ape.start < end:
        end = ape.start
    _hash_range(fh, start, end - start, update)


def _flac(fh, update) -> None:
    """Frames after the last metadata block (mutagen rewrites the blocks and their padding, never the frames).

    A block header is one byte (last-block flag, type) and a 24-bit length; mutagen reads the same headers in
    ``FLAC.__find_audio_offset``, which is private, hence these few lines.
    """
    start = _id3v2_end(fh)
    fh.seek(start)
    if fh.read(4) != b"fLaC":
        raise ValueError("no fLaC stream marker")
    last = False
    while not last:
        head = fh.read(4)
        if len(head) < 4:
            raise EOFError("the file ends inside the FLAC metadata")
        last = bool(head[0] & 0x80)
        fh.seek(int.from_bytes(head[1:4], "big"), os.SEEK_CUR)
    _hash_rest(fh, fh.tell(), update)


def _ogg(fh, update) -> None:
    """The audio packets of every logical stream, each with its length.

    mutagen rewrites the comment packet and re-pages the headers, which renumbers the later pages and changes their
    checksums, so pages cannot be compared; the packets after the headers are what must not change.
    """
    streams: dict[int, list] = {}  # serial -> [packets seen, header packets, pieces of the open packet]
    fh.seek(0)
    while True:
        try:
            page = OggPage(fh)
        except EOFError:
            break
        state = streams.setdefault(page.serial, [0, 0, []])
        for i, piece in enumerate(page.packets):
            if i or not page.continued:
                state[2] = []
            state[2].append(piece)
            if i < len(page.packets) - 1 or page.complete:
                packet = b"".join(state[2])
                if state[0] == 0:
                    state[1] = next((n for magic, n in _OGG_HEADERS.items() if packet.startswith(magic)), 0)
                if state[0] >= state[1] and update is not None:
                    update(len(packet).to_bytes(8, "little"))
                    update(packet)
                state[0] += 1
    if not streams:
        raise ValueError("no Ogg pages")


def _mp4(fh, update) -> None:
    """The contents of the top-level ``mdat`` atoms (mutagen may move them and rewrite the chunk offsets)."""
    mdats = [atom for atom in Atoms(fh).atoms if atom.name == b"mdat"]
    if not mdats:
        raise ValueError("no mdat atom")
    for atom in mdats:
        _hash_range(fh, atom.offset + atom.length - atom.datalength, atom.datalength, update)


def _wav(fh, update) -> None:
    riff = RiffFile(fh)
    if riff.file_type != "WAVE":
        raise ValueError(f"a RIFF {riff.file_type!r} file, not WAVE")
    chunk = riff["data"]
    _hash_range(fh, chunk.data_offset, chunk.data_size, update)


def _aiff(fh, update) -> None:
    chunk = AIFFFile(fh)["SSND"]
    _hash_range(fh, chunk.data_offset, chunk.data_size, update)


_DIGESTS = {"mp3": _mp3, "flac": _flac, "ogg": _ogg, "opus": _ogg, "mp4": _mp4, "wav": _wav, "aiff": _aiff}
