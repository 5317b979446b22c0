"""The format layer of `musicgenre tag`: genre fields written, read back and restored in real files of every
supported container (written by libsndfile and ffmpeg, edited by mutagen), with the audio proven untouched twice:
by the payload digest and by decoding the samples before and after."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from mutagen.apev2 import APEv2
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TCON, TIT2, TXXX, TYER
from mutagen.mp4 import MP4, Atoms, MP4FreeForm, MP4Tags

from musicgenre.audio.example import example_clip
from musicgenre.errors import TagError
from musicgenre.tagging.formats import SUPPORTED_SUFFIXES, audio_digest, read_tags, restore, snapshot, write_tags

FFMPEG = shutil.which("ffmpeg")
FORMATS = ["mp3", "flac", "ogg", "opus", "m4a", "wav", "aiff", "aifc"]
KIND = {"m4a": "mp4", "aifc": "aiff"}  # FileTags.format, where it differs from the suffix
RECORD = '{"model": "models/cnn", "genre": ["Blues", "Rock"], "scores": {"blues": 0.6, "rock": 0.3}}'
NO_FFMPEG = "ffmpeg is not installed: the M4A (AAC) test file is made and decoded with it"


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Path]:
    """One tiny file per format (one second of a synthetic clip); tests edit copies."""
    folder = tmp_path_factory.mktemp("originals")
    clip = example_clip(1.0, 22050)
    files = {fmt: folder / f"song.{fmt}" for fmt in FORMATS}
    sf.write(files["mp3"], clip, 22050, format="MP3")
    sf.write(files["flac"], clip, 22050)
    sf.write(files["ogg"], clip, 22050, format="OGG", subtype="VORBIS")
    sf.write(files["opus"], example_clip(1.0, 48000), 48000, format="OGG", subtype="OPUS")
    sf.write(files["wav"], clip, 22050, subtype="PCM_16")
    sf.write(files["aiff"], clip, 22050, format="AIFF", subtype="PCM_16")
    sf.write(files["aifc"], clip, 22050, format="AIFF", subtype="FLOAT")  # float samples make it AIFF-C
    if FFMPEG:  # moov before mdat (faststart), so growing tags move the audio and mutagen must fix the chunk offsets
        command = [FFMPEG, "-v", "error", "-i", str(files["wav"]), "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart"]
        subprocess.run([*command, str(files["m4a"])], check=True)
    else:
        del files["m4a"]
    return files


@pytest.fixture
def make(originals, tmp_path):
    def make(fmt: str, name: str = "track") -> Path:
        if fmt not in originals:
            pytest.skip(NO_FFMPEG)
        path = tmp_path / f"{name}.{fmt}"
        shutil.copyfile(originals[fmt], path)
        return path

    return make


def decode(path: Path) -> np.ndarray:
    """The decoded samples: libsndfile for its formats, ffmpeg (raw float PCM) for AAC in MP4."""
    if path.suffix == ".m4a":
        if not FFMPEG:
            pytest.skip(NO_FFMPEG)
        out = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-f", "f32le", "-"], check=True, capture_output=True)
        return np.frombuffer(out.stdout, dtype=np.float32)
    return sf.read(path, dtype="float32")[0]


def journalled(snap: dict) -> dict:
    """The snapshot as the undo journal gives it back: through JSON."""
    return json.loads(json.dumps(snap))


def tag_state(path: Path) -> dict:
    """Everything mutagen sees of the file's tags, plus the ID3 version, the ID3v1 bytes and an ID3 header."""
    tags = mutagen.File(path).tags
    if tags is None:
        items = None
    elif isinstance(tags, list):  # Vorbis comments: (key, value) in file order
        items = list(tags)
    else:
        items = sorted((key, repr(value)) for key, value in tags.items())
    data = path.read_bytes()
    return {
        "items": items,
        "id3_version": getattr(tags, "version", None),
        "id3v1": data[-128:] if data[-128:-125] == b"TAG" else None,
        "id3_header": data[:3] == b"ID3",
    }


def prefill(path: Path, fmt: str) -> None:
    """A user's tags: title, genre Jazz and a MUSICGENRE_TAGS value, set with mutagen as any tagger would."""
    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    if fmt in ("mp3", "wav", "aiff", "aifc"):
        audio.tags.add(TIT2(encoding=3, text=["Song"]))
        audio.tags.add(TCON(encoding=3, text=["Jazz"]))
        audio.tags.add(TXXX(encoding=3, desc="MUSICGENRE_TAGS", text=["keep"]))
    elif fmt == "m4a":
        audio.tags["\xa9nam"] = ["Song"]
        audio.tags["\xa9gen"] = ["Jazz"]
        audio.tags["----:com.apple.iTunes:MUSICGENRE_TAGS"] = [MP4FreeForm(b"keep")]
    else:
        audio.tags["TITLE"] = ["Song"]
        audio.tags["GENRE"] = ["Jazz"]
        audio.tags["MUSICGENRE_TAGS"] = ["keep"]
    audio.save()


def title(path: Path) -> list[str]:
    tags = mutagen.File(path).tags
    if isinstance(tags, ID3):
        return list(tags["TIT2"].text)
    return list(tags["\xa9nam" if isinstance(tags, MP4Tags) else "TITLE"])


def v23_mp3(path: Path, genre: str = "(8)") -> None:
    """An ID3v2.3 tag as older taggers write it: a genre reference and the v2.3-only TYER frame."""
    tags = ID3()
    tags.add(TIT2(encoding=1, text=["Song"]))
    tags.add(TYER(encoding=0, text=["2001"]))
    tags.add(TCON(encoding=0, text=[genre]))
    tags.save(path, v2_version=3)


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_read_restore_keeps_the_audio(make, fmt):
    path = make(fmt)
    assert path.suffix in SUPPORTED_SUFFIXES
    raw, before, samples = path.read_bytes(), tag_state(path), decode(path)
    digest = audio_digest(path)
    snap = journalled(snapshot(path))
    assert read_tags(path).genres == [] and path.read_bytes() == raw  # the read-only calls changed nothing

    write_tags(path, ["Blues", "Rock"], RECORD, ["mood:calm", "live"])
    got = read_tags(path)
    assert (got.format, got.genres, got.record, got.tags) == (
        KIND.get(fmt, fmt),
        ["Blues", "Rock"],
        RECORD,
        ["mood:calm", "live"],
    )
    assert got.id3_version == (4 if fmt in ("mp3", "wav", "aiff", "aifc") else None)  # a new ID3 tag is v2.4
    assert audio_digest(path) == digest
    np.testing.assert_array_equal(decode(path), samples)
    if fmt == "mp3":
        assert path.read_bytes()[-128:-125] != b"TAG"  # no ID3v1 tag added to a file without one

    restore(path, snap)
    assert tag_state(path) == before
    assert audio_digest(path) == digest
    np.testing.assert_array_equal(decode(path), samples)
    if fmt in ("mp3", "wav", "aiff", "aifc"):  # these had no tag: the ID3 tag / chunk is gone again, to the byte
        assert path.read_bytes() == raw


@pytest.mark.parametrize("fmt", FORMATS)
def test_existing_genre_is_replaced_and_the_rest_kept(make, fmt):
    path = make(fmt)
    prefill(path, fmt)
    before, digest = tag_state(path), audio_digest(path)
    got = read_tags(path)
    assert (got.genres, got.record, got.tags) == (["Jazz"], None, ["keep"])
    snap = journalled(snapshot(path))
    assert snap["genres"] == ["Jazz"]

    write_tags(path, ["Rock"], RECORD, None)  # tags=None: MUSICGENRE_TAGS left as it is
    got = read_tags(path)
    assert (got.genres, got.record, got.tags) == (["Rock"], RECORD, ["keep"])
    assert title(path) == ["Song"]
    write_tags(path, ["Rock"], RECORD, [])  # an empty list removes them
    assert read_tags(path).tags == []
    assert audio_digest(path) == digest

    restore(path, snap)
    assert tag_state(path) == before


def test_id3v23_stays_v23_with_the_slash_convention(make):
    path = make("mp3")
    v23_mp3(path)
    assert (read_tags(path).genres, read_tags(path).id3_version) == (["Jazz"], 3)  # "(8)" is ID3v1's Jazz
    before, snap, digest = tag_state(path), journalled(snapshot(path)), audio_digest(path)

    write_tags(path, ["Blues", "Rock"], RECORD, ["a", "b"])
    assert path.read_bytes()[3] == 3  # the header's major version
    got = read_tags(path)
    assert (got.genres, got.record, got.tags, got.id3_version) == (["Blues", "Rock"], RECORD, ["a", "b"], 3)
    # What mutagen reads back and Picard writes for v2.3 (its default id3v23_join_with is "/"): one joined string.
    assert ID3(path)["TCON"].text == ["Blues/Rock"] and ID3(path)["TCON"].genres == ["Blues/Rock"]
    raw = ID3(path, translate=False)
    assert raw["TYER"].text == ["2001"] and raw["TIT2"].text == ["Song"]  # v2.3 frames kept as they were
    assert audio_digest(path) == digest

    restore(path, snap)
    assert tag_state(path) == before and path.read_bytes()[3] == 3


def test_restore_brings_back_v23_after_another_tagger_saved_v24(make):
    path = make("mp3")
    v23_mp3(path)
    before, snap = tag_state(path), journalled(snapshot(path))
    write_tags(path, ["Blues", "Rock"], RECORD)
    ID3(path).save(path)  # e.g. a player re-saving the tag, as mutagen does by default: ID3v2.4
    assert path.read_bytes()[3] == 4
    restore(path, snap)
    assert path.read_bytes()[3] == 3 and tag_state(path) == before


def test_id3v23_refuses_values_with_a_slash(make):
    path = make("mp3")
    v23_mp3(path)
    raw = path.read_bytes()
    with pytest.raises(TagError, match="ID3v2.3") as caught:
        write_tags(path, ["Drum/Bass"], RECORD)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == raw


def test_id3v1_genre_byte_follows_the_top_genre(make):
    path = make("mp3")
    ID3().save(path)  # no frames yet
    tags = ID3(path)
    tags.add(TIT2(encoding=3, text=["Song"]))
    tags.add(TCON(encoding=3, text=["Jazz"]))
    tags.save(path, v1=2)  # creates an ID3v1 tag from the frames
    data = bytearray(path.read_bytes())
    data[-125:-95] = b"Only in v1".ljust(30, b"\0")  # a v1 title the v2 tag does not have: must survive
    path.write_bytes(bytes(data))
    v1 = bytes(data[-128:])
    assert v1[127] == TCON.GENRES.index("Jazz")
    snap, digest, samples = journalled(snapshot(path)), audio_digest(path), decode(path)

    write_tags(path, ["Rock", "Blues"], RECORD)
    now = path.read_bytes()[-128:]
    assert now[:127] == v1[:127] and now[127] == TCON.GENRES.index("Rock")
    write_tags(path, ["Chamber Pop Deluxe"], RECORD)  # not an ID3v1 genre: 255, "none"
    assert path.read_bytes()[-128:] == v1[:127] + b"\xff"
    assert audio_digest(path) == digest
    np.testing.assert_array_equal(decode(path), samples)

    restore(path, snap)
    assert path.read_bytes()[-128:] == v1 and read_tags(path).genres == ["Jazz"]


def test_apev2_and_id3v1_stay_outside_the_mp3_payload(make):
    path = make("mp3")
    ape = APEv2()
    ape["Comment"] = "kept"
    ape.save(path)  # at the end of the file...
    ID3().save(path, v1=2)  # ...and then an ID3v1 tag after it, the usual order
    assert path.read_bytes()[-128:-125] == b"TAG" and b"APETAGEX" in path.read_bytes()[-300:]
    digest = audio_digest(path)
    path.write_bytes(path.read_bytes().replace(b"kept", b"KEPT"))  # an APE value changed in place
    assert audio_digest(path) == digest

    write_tags(path, ["Reggae"], RECORD)
    assert APEv2(path)["Comment"] == "KEPT"
    assert path.read_bytes()[-1] == TCON.GENRES.index("Reggae") and audio_digest(path) == digest


def test_id3v1_only_file(make):
    """A genre only in ID3v1 is the genre players show; writing adds an ID3v2.4 tag, undo takes it away again."""
    path = make("mp3")
    tags = ID3()
    tags.add(TCON(encoding=0, text=["Metal"]))
    tags.save(path, v1=2)
    mutagen.id3.delete(path, delete_v1=False, delete_v2=True)
    raw = path.read_bytes()
    assert raw[:3] != b"ID3" and raw[-128:-125] == b"TAG"
    assert (read_tags(path).genres, read_tags(path).id3_version) == (["Metal"], None)
    snap = snapshot(path)
    write_tags(path, ["Disco"], RECORD)
    assert read_tags(path).id3_version == 4 and path.read_bytes()[-1] == TCON.GENRES.index("Disco")
    restore(path, snap)
    assert path.read_bytes() == raw


def _ilst_names(path: Path) -> list[bytes]:
    with open(path, "rb") as fh:
        return [atom.name for atom in Atoms(fh).path(b"moov", b"udta", b"meta", b"ilst")[-1].children]


def test_mp4_numeric_gnre_goes_and_comes_back(make):
    path = make("m4a")
    audio = MP4(path)
    # mutagen reads gnre but never writes it; hand it one to keep raw, as an iTunes-tagged file would have it
    gnre = struct.pack(">I4sII", 18, b"data", 0, 0) + struct.pack(">H", TCON.GENRES.index("Metal") + 1)
    audio.tags._failed_atoms["gnre"] = [gnre]
    audio.save()
    assert b"gnre" in _ilst_names(path) and read_tags(path).genres == ["Metal"]
    before, snap, digest = tag_state(path), journalled(snapshot(path)), audio_digest(path)

    write_tags(path, ["Rock", "Pop"], RECORD)
    assert b"gnre" not in _ilst_names(path) and b"\xa9gen" in _ilst_names(path)
    assert MP4(path).tags["\xa9gen"] == ["Rock", "Pop"]
    assert audio_digest(path) == digest

    restore(path, snap)
    assert b"gnre" in _ilst_names(path) and b"\xa9gen" not in _ilst_names(path)
    assert tag_state(path) == before


def test_flac_without_a_comment_block_gets_none_back(make):
    path = make("flac")
    FLAC(path).delete()  # removes the VORBIS_COMMENT block altogether
    assert FLAC(path).tags is None
    snap, digest = snapshot(path), audio_digest(path)
    write_tags(path, ["Blues"], RECORD)
    assert read_tags(path).genres == ["Blues"]
    restore(path, snap)
    assert FLAC(path).tags is None and audio_digest(path) == digest


@pytest.mark.parametrize("fmt", FORMATS)
def test_digest_sees_a_changed_audio_byte(make, fmt):
    """Each file ends in audio data (MP3 frames, FLAC frames, the last Ogg packet, mdat after moov, WAV data, SSND):
    flipping the last byte must change the digest, or the digest would prove nothing."""
    path = make(fmt)
    digest = audio_digest(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x55
    path.write_bytes(bytes(data))
    assert audio_digest(path) != digest


def _corrupt_id3(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + data)  # a tag claiming 256 MB in a tiny file


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:60])


# case -> (format, how the file is spoilt, whether its tags still read: a WAV cut inside its audio has intact tags,
# but writing must refuse it, or the data chunk would claim the new ID3 chunk's bytes as sound)
BAD_FILES = {
    "text renamed .mp3": ("mp3", lambda p: p.write_text("not music, just a renamed text file\n" * 40), False),
    "random bytes .mp3": ("mp3", lambda p: p.write_bytes(np.random.default_rng(0).bytes(20000)), False),
    "random bytes .flac": ("flac", lambda p: p.write_bytes(np.random.default_rng(1).bytes(20000)), False),
    "unsupported container": ("wav", lambda p: p.write_bytes(b"\x00\x01" * 500), False),
    "truncated FLAC": ("flac", _truncate, False),
    "truncated WAV": ("wav", _truncate, True),
    "corrupt ID3 tag": ("mp3", _corrupt_id3, False),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_raise_tag_error_naming_the_file(make, case):
    fmt, spoil, readable = BAD_FILES[case]
    path = make(fmt, name="bad file")
    spoil(path)
    raw = path.read_bytes()
    calls = [lambda p: write_tags(p, ["Rock"], RECORD)]
    if readable:
        snap = snapshot(path)
        calls.append(lambda p: restore(p, snap))
    else:
        calls += [read_tags, snapshot]
    if case in ("truncated FLAC", "truncated WAV", "unsupported container", "corrupt ID3 tag"):
        calls.append(audio_digest)  # (other byte soup is a valid MP3 payload as far as the digest goes)
    for call in calls:
        with pytest.raises(TagError) as caught:
            call(path)
        assert str(path) in str(caught.value)
    assert path.read_bytes() == raw


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_content_decides_not_the_name(make, fmt):
    """The caller edits a copy named like ``.x.flac.musicgenre.1.ab.tmp``: it must be read as the original is."""
    original = make(fmt)
    copy = original.with_name(f".{original.name}.musicgenre.1.abcdefgh.tmp")
    shutil.copyfile(original, copy)
    assert read_tags(copy).format == read_tags(original).format == KIND.get(fmt, fmt)
    assert audio_digest(copy) == audio_digest(original)
    write_tags(copy, ["Pop"], RECORD)
    assert read_tags(copy).genres == ["Pop"] and audio_digest(copy) == audio_digest(original)


def test_flac_with_an_id3_tag_in_front_is_flac(make, tmp_path):
    """mutagen.File's scores would call this MP3 without the .flac name (an ID3 header outscores nothing)."""
    path = make("flac")
    tags = ID3()
    tags.add(TIT2(encoding=3, text=["Song"]))
    tags.save(path)  # ID3v2 prepended to the FLAC stream, as some taggers do
    copy = tmp_path / "copy.tmp"
    shutil.copyfile(path, copy)
    digest = audio_digest(copy)
    write_tags(copy, ["Blues"], RECORD)
    assert read_tags(copy).format == "flac" and FLAC(copy).tags["GENRE"] == ["Blues"]
    assert ID3(copy)["TIT2"].text == ["Song"] and audio_digest(copy) == digest


def test_restore_refuses_a_snapshot_of_another_format(make):
    mp3, flac = make("mp3"), make("flac")
    with pytest.raises(TagError, match="snapshot") as caught:
        restore(flac, snapshot(mp3))
    assert str(flac) in str(caught.value)


VALUE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12)


@pytest.mark.parametrize("fmt", ["mp3", "flac"])
@settings(max_examples=25)
@given(genres=st.lists(VALUE.filter(str.strip), min_size=1, max_size=3), values=st.lists(VALUE, max_size=3))
def test_any_text_reads_back_as_written_or_is_refused(originals, tmp_path_factory, fmt, genres, values):
    """What write_tags accepts reads back exactly (the next run compares it with its record); what ID3 would read
    otherwise (numbers and "(n)" are ID3v1 genre references there) is refused, leaving the file as it was."""
    path = tmp_path_factory.mktemp("prop") / f"x.{fmt}"
    shutil.copyfile(originals[fmt], path)
    raw, digest = path.read_bytes(), audio_digest(path)
    try:
        write_tags(path, genres, RECORD, values)
    except TagError as exc:
        assert fmt == "mp3" and "would not read back" in str(exc) and path.read_bytes() == raw
        assert TCON(encoding=3, text=genres).genres != genres
        return
    got = read_tags(path)
    assert (got.genres, got.record, got.tags) == (genres, RECORD, values)
    assert audio_digest(path) == digest


def test_id3_genre_references_are_refused(make):
    path = make("mp3")
    with pytest.raises(TagError, match="would not read back"):
        write_tags(path, ["17"], RECORD)  # ID3 reads "17" as ID3v1 genre 17, Rock
    write_tags(path, ["Rock", "Pop"], RECORD)
    assert read_tags(path).genres == ["Rock", "Pop"]
