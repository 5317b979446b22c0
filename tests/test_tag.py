"""``musicgenre tag`` end to end on real files in every format it claims: dry run, --write, rerun, undo, bad files,
an interrupted run and workers. The format layer and the rewrite's safety have their own tests
(test_tag_formats.py, test_tag_safety.py)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicgenre.audio.example import example_clip
from musicgenre.cli import main
from musicgenre.tagging.formats import audio_digest, read_tags
from musicgenre.tagging.names import DISPLAY_NAMES, Record

SR = 22050
FORMATS = {".mp3": ("MP3", "MPEG_LAYER_III"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"), ".wav": ("WAV", "PCM_16")}


def _clip(seed: int, seconds: float = 4.0) -> np.ndarray:
    """Distinct synthetic clips: different noise, offsets and levels."""
    y = example_clip(seconds, SR, seed=seed)
    return np.roll(y, seed * 997) * (0.5 + 0.1 * seed)


def _make(folder: Path, n: int = 8) -> list[Path]:
    files = []
    for i in range(n):
        suffix = list(FORMATS)[i % len(FORMATS)]
        fmt, subtype = FORMATS[suffix]
        path = folder / f"sub{i % 2}" / f"track{i}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, _clip(i), SR, format=fmt, subtype=subtype)
        files.append(path)
    return files


def _set_genre(path: Path, genre: str) -> None:
    import mutagen

    f = mutagen.File(path, easy=True)
    if f.tags is None:
        f.add_tags()
    f.tags["genre"] = genre
    f.save()


def _state(paths: list[Path]) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _run(capsys, *argv: str) -> tuple[int, list[list[str]], str]:
    code = main(["tag", "--no-progress", *argv])
    captured = capsys.readouterr()
    rows = [line.split("\t") for line in captured.out.splitlines()[1:]]
    return code, rows, captured.err


@pytest.fixture
def library(tmp_path: Path) -> dict:
    files = _make(tmp_path / "music")
    _set_genre(files[1], "Shoegaze")  # a genre the user chose: kept unless --overwrite
    corrupt = tmp_path / "music" / "corrupt.mp3"
    corrupt.write_bytes(b"ID3\x04\x00\x00\x00\x00\x7f\x7f" + os.urandom(3000))  # a tag header claiming more than is there
    readonly = tmp_path / "music" / "readonly.flac"
    sf.write(readonly, _clip(9), SR, format="FLAC")
    readonly.chmod(0o444)
    (tmp_path / "music" / "cover.jpg").write_bytes(b"not audio: ignored by the walk")
    return {"root": tmp_path / "music", "files": files, "corrupt": corrupt, "readonly": readonly, "tmp": tmp_path}


def test_dry_run_write_rerun_and_undo(library, capsys) -> None:
    from musicgenre.families import resolve_model
    from musicgenre.models.predict import predict_file

    root, files, corrupt, readonly = library["root"], library["files"], library["corrupt"], library["readonly"]
    everything = [*files, corrupt, readonly]
    before = _state(everything)
    samples = {p: sf.read(p)[0] for p in files}
    digests = {p: audio_digest(p) for p in files}
    model = resolve_model("bundled")
    expected = {p: DISPLAY_NAMES[predict_file(model, p)["genre"]] for p in files}

    code, rows, err = _run(capsys, str(root))
    assert code == 1  # the two bad files failed
    assert _state(everything) == before  # a dry run changes no byte
    by_file = {row[0]: row for row in rows}
    assert set(by_file) == {str(p) for p in everything}
    assert by_file[str(files[1])][4] == "kept" and by_file[str(files[1])][2] == expected[files[1]]  # proposal still shown
    assert all(by_file[str(p)][4] == "tag" and by_file[str(p)][2] == expected[p] for p in files if p != files[1])
    assert by_file[str(corrupt)][4] == "failed" and by_file[str(readonly)][4] == "failed"
    assert "2 failed" in err and f"failed: {corrupt}" in err and f"failed: {readonly}" in err

    journal = library["tmp"] / "journal.jsonl"
    code, rows, err = _run(capsys, "--write", "--journal", str(journal), str(root))
    assert code == 1 and f"journal: {journal}" in err
    for p in files:
        tags = read_tags(p)
        assert tags.genres == (["Shoegaze"] if p == files[1] else [expected[p]])
        assert audio_digest(p) == digests[p]
        assert np.array_equal(sf.read(p)[0], samples[p])  # decoded audio identical
        if p != files[1]:
            record = Record.decode(tags.record)
            assert record.model == "bundled:musicnn" and record.genres == [expected[p]] and len(record.scores) == 10
    assert _state([corrupt, readonly]) == {p: before[p] for p in (corrupt, readonly)}  # the bad files untouched
    assert not [p for p in root.rglob(".*")]  # no temporary or backup left beside the files

    tagged = _state(everything)
    code, rows, err = _run(capsys, "--write", "--journal", str(journal), str(root))
    assert _state(everything) == tagged  # a second --write changes no byte
    assert {row[4] for row in rows if row[0] in map(str, files)} == {"done", "kept"}

    code = main(["tag", "--undo", str(journal)])
    assert code == 0
    for p in files:
        assert read_tags(p).genres == (["Shoegaze"] if p == files[1] else [])
        assert read_tags(p).record is None
        assert np.array_equal(sf.read(p)[0], samples[p])
    # files that had no tag block at all have none again
    import mutagen

    assert mutagen.File(files[0]).tags is None and mutagen.File(files[3]).tags is None


def test_overwrite_multi_min_prob_and_genre_map(library, capsys) -> None:
    files = library["files"][:4]
    genre_map = library["tmp"] / "map.txt"
    genre_map.write_text("# MusicBrainz spellings\n" + "\n".join(f"{k} = {v.lower()}" for k, v in DISPLAY_NAMES.items()))
    journal = library["tmp"] / "j.jsonl"
    code, rows, _ = _run(
        capsys,
        "--write",
        "--overwrite",
        "--multi",
        "0.0",
        "--genre-map",
        str(genre_map),
        "--journal",
        str(journal),
        *map(str, files),
    )
    assert code == 0
    for p in files:
        genres = read_tags(p).genres
        assert len(genres) == 10 and genres[0] == genres[0].lower()  # every genre (>= 0.0), in the map's spelling
        assert genres == Record.decode(read_tags(p).record).genres
    code, rows, err = _run(capsys, "--write", "--force", "--min-prob", "1.0", "--journal", str(journal), *map(str, files))
    assert {row[4] for row in rows} == {"below"} and "4 below --min-prob" in err


def test_unsupported_and_missing_paths(tmp_path, capsys) -> None:
    au = tmp_path / "x.au"
    sf.write(au, _clip(0, 1.0), SR, format="AU")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, rows, err = _run(capsys, "--write", str(au), str(empty), str(tmp_path / "gone.mp3"))
    assert code == 1
    assert {row[0]: row[4] for row in rows} == {str(au): "failed", str(empty): "failed", str(tmp_path / "gone.mp3"): "failed"}
    assert "3 failed" in err


def test_workers_match_one_process(library, capsys) -> None:
    files = [str(p) for p in library["files"]]
    _, one, _ = _run(capsys, *files)
    _, two, _ = _run(capsys, "--workers", "2", *files)
    assert sorted(one) == sorted(two)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_run_leaves_files_whole_and_resumes(tmp_path, signum) -> None:
    """SIGTERM or Ctrl-C while writing: every file is either untouched or fully tagged, and a rerun finishes the rest
    (after Ctrl-C the command says where the journal is)."""
    files = _make(tmp_path / "music", n=12)
    originals = _state(files)
    journal = tmp_path / "journal.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    argv = [
        sys.executable,
        "-m",
        "musicgenre",
        "tag",
        "--write",
        "--no-progress",
        "--journal",
        str(journal),
        str(tmp_path / "music"),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    tagged_rows = 0
    for line in proc.stdout:
        tagged_rows += line.rstrip().endswith("tagged")
        if tagged_rows == 3:
            proc.send_signal(signum)
            break
    proc.wait(timeout=60)
    assert proc.returncode != 0
    if signum == signal.SIGINT:
        err = proc.stderr.read()
        assert proc.returncode == 130 and "interrupted" in err and f"journal: {journal}" in err
    changed = [p for p in files if hashlib.sha256(p.read_bytes()).hexdigest() != originals[p]]
    assert 3 <= len(changed) < len(files)
    for p in changed:  # fully tagged, never half
        assert Record.decode(read_tags(p).record) is not None
    journaled = {json.loads(line).get("file") for line in journal.read_text().splitlines()}
    assert {str(p) for p in changed} <= journaled
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()[1:]]
    assert sum(row[4] == "done" for row in rows) == len(changed)  # not analysed or written again
    assert all(Record.decode(read_tags(p).record) is not None for p in files)
    assert not [p for p in (tmp_path / "music").rglob(".*")]


def test_undo_keeps_what_the_user_added_after_tagging_and_links_are_tagged_once(tmp_path, capsys) -> None:
    """A tag block that tagging created but the user has added to since: undo removes only our fields. A file
    reached by two names (a symlink) is analysed, written and journaled once."""
    from mutagen.id3 import ID3, TIT2

    music = tmp_path / "music"
    (song,) = _make(music, n=1)
    (music / "link.mp3").symlink_to(song)
    journal = tmp_path / "j.jsonl"
    code, rows, _ = _run(capsys, "--write", "--journal", str(journal), str(music))
    assert code == 0 and [row[4] for row in rows] == ["tagged"]
    tags = ID3(song)
    tags.add(TIT2(encoding=3, text=["My title"]))
    tags.save()
    assert main(["tag", "--undo", str(journal)]) == 0
    after = ID3(song)
    assert str(after["TIT2"]) == "My title" and not after.getall("TCON") and not after.getall("TXXX")


def test_a_genre_set_while_the_run_analysed_is_left_alone(tmp_path) -> None:
    from musicgenre.tagging.journal import Journal
    from musicgenre.tagging.run import ChangedMeanwhileError, _write

    (song,) = _make(tmp_path, n=1)
    seen = read_tags(song)
    _set_genre(song, "Polka")  # e.g. a tag editor, while the model was busy with the rest of the library
    state = _state([song])
    with pytest.raises(ChangedMeanwhileError, match=str(song)):
        _write(song, ["Rock"], Record("m", ["Rock"], {"rock": 1.0}), None, lambda: Journal(tmp_path / "j"), seen)
    assert _state([song]) == state and not (tmp_path / "j").exists()
