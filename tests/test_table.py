"""`musicgenre features`: resumable, atomic, and unreadable files are reported, never fatal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
from conftest import ROOT, write_audio

from musicgenre.features.handcrafted import TABLE_COLUMNS


def _features(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "musicgenre", "features", "--no-progress", "--workers", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_gtzan_layout_resume_and_bad_files(tmp_path):
    data = tmp_path / "Data" / "genres_original"
    for genre in ("rock", "jazz"):
        (data / genre).mkdir(parents=True)
        for i in range(2):
            write_audio(data / genre / f"{genre}.0000{i}.wav", seconds=4.0, seed=i)
    out = tmp_path / "table.csv"

    first = _features(str(tmp_path), "--out", str(out))
    assert first.returncode == 0, first.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == TABLE_COLUMNS
    assert sorted(table["filename"]) == ["jazz.00000.wav", "jazz.00001.wav", "rock.00000.wav", "rock.00001.wav"]
    assert set(table["label"]) == {"rock", "jazz"}
    before = out.read_text()

    # New clips and a broken one arrive; a re-run adds only the new, reports the broken one.
    write_audio(data / "jazz" / "jazz.00002.wav", seconds=4.0, seed=7)
    (data / "jazz" / "jazz.00054.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE" + bytes(100))
    second = _features(str(tmp_path), "--out", str(out))
    assert second.returncode == 0, second.stderr
    assert "1 files added, 4 already present, 1 unreadable" in second.stderr
    assert "jazz.00054.wav" in second.stderr
    after = out.read_text()
    assert after.startswith(before)  # existing rows untouched
    assert len(pd.read_csv(out)) == 5
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temp files left behind


def test_no_audio_is_a_clear_error(tmp_path):
    result = _features(str(tmp_path), "--out", str(tmp_path / "t.csv"))
    assert result.returncode == 2
    assert "no audio files found" in result.stderr


def test_three_second_table_resumes_and_reports_short_clips(tmp_path):
    write_audio(tmp_path / "pop.00001.wav", seconds=7.0)
    out = tmp_path / "t3.csv"
    assert _features(str(tmp_path / "pop.00001.wav"), "--segment-seconds", "3", "--out", str(out)).returncode == 0
    write_audio(tmp_path / "pop.00002.wav", seconds=6.5, seed=2)
    write_audio(tmp_path / "pop.00003.wav", seconds=2.0, seed=3)  # shorter than one segment
    again = _features(str(tmp_path), "--segment-seconds", "3", "--out", str(out))
    assert "1 files added, 1 already present, 1 unreadable" in again.stderr
    assert "pop.00003.wav: shorter than one 3-second segment" in again.stderr
    names = pd.read_csv(out)["filename"].tolist()
    assert names == ["pop.00001.0.wav", "pop.00001.1.wav", "pop.00002.0.wav", "pop.00002.1.wav"]


def test_killed_extraction_resumes_with_every_clip_exactly_once(tmp_path):
    """SIGKILL (no cleanup at all) in the middle of a two-process run, then the same command again."""
    data = tmp_path / "rock"
    data.mkdir()
    names = [f"rock.{i:05d}.wav" for i in range(40)]
    for i, name in enumerate(names):
        write_audio(data / name, seconds=5.0, seed=i)
    out = tmp_path / "table.csv"
    cmd = [sys.executable, "-m", "musicgenre", "features", str(data), "--out", str(out), "--workers", "2", "--save-every", "0"]
    log = tmp_path / "first-run.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([*cmd, "--no-progress"], cwd=ROOT, start_new_session=True, stderr=err)
    deadline = time.monotonic() + 300
    partial = pd.DataFrame()
    while proc.poll() is None and time.monotonic() < deadline:
        if out.exists() and len(partial := pd.read_csv(out)) >= 3:  # always a whole table: saves are atomic
            os.killpg(proc.pid, signal.SIGKILL)  # the main process and its workers, mid-run
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be interrupted:\n{log.read_text()}"
    partial = pd.read_csv(out)
    assert 3 <= len(partial) < len(names) and partial["filename"].is_unique

    again = subprocess.run([*cmd, "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{len(names) - len(partial)} files added, {len(partial)} already present, 0 unreadable" in again.stderr
    table = pd.read_csv(out)
    assert sorted(table["filename"]) == names  # every clip, exactly once
    pd.testing.assert_frame_equal(table.iloc[: len(partial)], partial)  # rows saved before the kill are untouched
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_only_dead_writers_temporaries_are_removed(tmp_path):
    from musicgenre.util.atomic import remove_stale_temporaries

    names = {
        ".t.csv.999999999.abcd_123.tmp": True,  # a writer that no longer runs: removed
        f".t.csv.{os.getpid()}.abcdefgh.tmp": False,  # a live writer's
        ".t.csv.json.999999999.abcdefgh.tmp": False,  # another output's
        "t.csv.999999999.abcdefgh.tmp": False,  # not ours at all
    }
    for name in names:
        (tmp_path / name).write_text("partial")
    removed = remove_stale_temporaries(tmp_path / "t.csv")
    assert sorted(p.name for p in removed) == sorted(n for n, gone in names.items() if gone)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, gone in names.items() if not gone)


def test_out_that_is_not_a_table_is_refused_and_left_alone(tmp_path):
    write_audio(tmp_path / "rock.00000.wav", seconds=4.0)
    for name, content in (("notes.csv", b"title,author\nx,y\n"), ("blob.csv", bytes(range(256)) * 4)):
        out = tmp_path / name
        out.write_bytes(content)
        result = _features(str(tmp_path / "rock.00000.wav"), "--out", str(out))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"{out}: exists but" in result.stderr and "choose another --out" in result.stderr
        assert out.read_bytes() == content  # nothing lost


def test_same_file_name_twice_and_bad_segment_length(tmp_path):
    import pytest

    from musicgenre.errors import DataError
    from musicgenre.features.table import extract_table

    for folder, seed in (("a", 0), ("b", 1)):
        (tmp_path / folder).mkdir()
        write_audio(tmp_path / folder / "rock.00000.wav", seconds=4.0, seed=seed)
    first, second = tmp_path / "a" / "rock.00000.wav", tmp_path / "b" / "rock.00000.wav"
    report = extract_table([first, second, first], tmp_path / "t.csv", workers=1, progress=False)
    assert report.written == 1 and list(report.failed) == [str(second)]
    assert f"same file name as {first}" in report.failed[str(second)]
    assert pd.read_csv(tmp_path / "t.csv")["filename"].tolist() == ["rock.00000.wav"]
    for bad in (0.0, -3.0):
        with pytest.raises(DataError, match="segment length must be positive"):
            extract_table([first], tmp_path / "t3.csv", segment_seconds=bad, progress=False)
    assert not (tmp_path / "t3.csv").exists()


def test_lists_of_paths_and_a_parquet_table_resume_like_a_csv(tmp_path):
    """A .txt and a .parquet list of paths as inputs, a Parquet table as output: the CSV's values, typed, resumable,
    and loadable by the Hugging Face datasets library as it is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    music = tmp_path / "music" / "rock"
    music.mkdir(parents=True)
    clips = [write_audio(music / f"rock.0000{i}.wav", seconds=4.0, seed=i) for i in range(3)]
    (tmp_path / "music" / "list.txt").write_text(f"# two clips, relative to this list\nrock/{clips[0].name}\n\n{clips[1]}\n")
    pq.write_table(pa.table({"path": [str(clips[2])]}), tmp_path / "more.parquet")

    csv, parquet = tmp_path / "t.csv", tmp_path / "t.parquet"
    assert _features(str(tmp_path / "music" / "list.txt"), "--out", str(parquet)).returncode == 0
    resumed = _features(str(tmp_path / "music" / "list.txt"), str(tmp_path / "more.parquet"), "--out", str(parquet))
    assert resumed.returncode == 0 and "1 files added, 2 already present, 0 unreadable" in resumed.stderr, resumed.stderr
    assert _features(*map(str, clips), "--out", str(csv)).returncode == 0

    table = pq.read_table(parquet)
    assert table.column_names == TABLE_COLUMNS and table.schema.field("length").type == pa.int64()
    # the same rows and values, typed instead of text (in one process or in a pool: one BLAS thread either way)
    assert table.to_pandas().equals(pd.read_csv(csv, dtype={"label": "str"}, engine="python"))

    from datasets import load_dataset

    loaded = load_dataset("parquet", data_files=str(parquet), split="train")
    assert loaded.column_names == TABLE_COLUMNS and loaded["filename"] == [c.name for c in clips]


def test_an_unreadable_list_of_paths_is_a_clear_error(tmp_path):
    (tmp_path / "list.parquet").write_bytes(b"not parquet")
    failed = _features(str(tmp_path / "list.parquet"), "--out", str(tmp_path / "t.csv"))
    assert failed.returncode != 0 and "cannot read it as a list of paths" in failed.stderr and "Traceback" not in failed.stderr
