"""A file is untouched or fully rewritten, whatever happens: real files, real signals, real processes.

The safety layer does not know about audio formats, so these tests edit plain bytes; the format layer's own tests
write real tags through it.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from musicgenre.errors import TagError
from musicgenre.tagging.journal import Journal, default_journal_path, first_states
from musicgenre.tagging.safety import check_writable, deferred_signals, recover, rewrite

ROOT = Path(__file__).resolve().parents[1]


def tagged(data: bytes) -> bytes:
    return b"TAGGED:" + data + b":END"


def write_tag(tmp: Path) -> None:
    tmp.write_bytes(tagged(tmp.read_bytes()))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*musicgenre*"))


@pytest.fixture
def song(tmp_path: Path) -> Path:
    path = tmp_path / "song.mp3"
    path.write_bytes(os.urandom(4096))
    return path


def test_rewrite_replaces_content_keeps_mode_owner_and_xattrs(song: Path) -> None:
    old = song.read_bytes()
    os.chmod(song, 0o2640)
    if os.geteuid() == 0:
        os.chown(song, 1234, 5678)
    os.setxattr(song, "user.comment", b"kept")
    os.utime(song, (1_000_000_000, 1_000_000_000))
    before = song.stat()
    seen = []
    rewrite(song, write_tag, verify=lambda original, tmp: seen.append((original.read_bytes(), tmp.read_bytes())))
    after = song.stat()
    assert song.read_bytes() == tagged(old)
    assert seen == [(old, tagged(old))]  # verify compares the untouched original with the edited copy
    assert stat.S_IMODE(after.st_mode) == 0o2640
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert os.getxattr(song, "user.comment") == b"kept"
    assert after.st_mtime > before.st_mtime  # content changed: library managers must notice
    assert after.st_ino != before.st_ino  # replaced by rename, not edited where it lay
    assert leftovers(song.parent) == []


def test_hard_linked_file_is_rewritten_in_its_own_inode(song: Path) -> None:
    other = song.with_name("other-name.mp3")
    os.link(song, other)
    old, inode = song.read_bytes(), song.stat().st_ino
    rewrite(song, write_tag)
    assert other.read_bytes() == song.read_bytes() == tagged(old)
    assert song.stat().st_ino == other.stat().st_ino == inode
    assert song.stat().st_nlink == 2
    assert leftovers(song.parent) == []


def test_symlink_stays_a_link_and_its_target_is_rewritten(song: Path, tmp_path: Path) -> None:
    (tmp_path / "library").mkdir()
    link = tmp_path / "library" / "link.mp3"
    link.symlink_to(song)
    old = song.read_bytes()
    rewrite(link, write_tag)
    assert link.is_symlink() and os.readlink(link) == str(song)
    assert song.read_bytes() == tagged(old)
    assert leftovers(tmp_path) == []


def test_read_only_file_and_folder_are_refused_even_for_root(song: Path, tmp_path: Path) -> None:
    old = song.read_bytes()
    os.chmod(song, 0o444)
    with pytest.raises(TagError, match=rf"{song}: its permission bits deny writing \(mode 0444\)"):
        check_writable(song)
    with pytest.raises(TagError, match="deny writing"):
        rewrite(song, write_tag)
    assert song.read_bytes() == old and leftovers(tmp_path) == []
    with pytest.raises(TagError, match=rf"{tmp_path}: is a folder"):
        check_writable(tmp_path)
    with pytest.raises(TagError, match=rf"{tmp_path / 'gone.mp3'}: no such file"):
        check_writable(tmp_path / "gone.mp3")
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "a.mp3").write_bytes(b"x")
    folder.chmod(0o555)
    with pytest.raises(TagError, match="folder's permission bits deny writing"):
        check_writable(folder / "a.mp3")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_the_class_that_applies_decides_for_other_users() -> None:
    """As nobody: root's 0644 file is read-only (other bits); nobody's own 0466 file too (owner bits win)."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o777)
        modes = {"root644": (0o644, 0), "root646": (0o646, 0), "own600": (0o600, 65534), "own466": (0o466, 65534)}
        for name, (mode, uid) in modes.items():
            path = Path(folder, name)
            path.write_bytes(b"x")
            os.chown(path, uid, uid)
            path.chmod(mode)
        code = (  # imported as root (the interpreter may live where nobody can read), then checked as nobody
            "import os, sys\nfrom musicgenre.tagging.safety import check_writable\nfrom musicgenre.errors import TagError\n"
            "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
            "for p in sys.argv[1:]:\n    try:\n        check_writable(p); print('ok')\n"
            "    except TagError:\n        print('refused')\n"
        )
        args = [sys.executable, "-c", code, *(str(Path(folder, n)) for n in modes)]
        out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["refused", "ok", "ok", "refused"]


@pytest.mark.parametrize("failure", [TagError("bad tags"), ValueError("a bug")])
def test_failed_edit_leaves_the_original_byte_identical(song: Path, failure: Exception) -> None:
    old, inode = song.read_bytes(), song.stat().st_ino

    def edit(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise failure

    with pytest.raises(type(failure), match=str(failure)):
        rewrite(song, edit)
    assert song.read_bytes() == old and song.stat().st_ino == inode
    assert leftovers(song.parent) == []


def test_failed_verify_or_journal_write_aborts(song: Path) -> None:
    old = song.read_bytes()

    def verify(original: Path, tmp: Path) -> None:
        raise TagError(f"{original}: the audio changed")

    with pytest.raises(TagError, match="the audio changed"):
        rewrite(song, write_tag, verify=verify)
    with pytest.raises(TagError, match="journal full"):
        rewrite(song, write_tag, before_commit=lambda: (_ for _ in ()).throw(TagError("journal full")))
    assert song.read_bytes() == old and leftovers(song.parent) == []


def test_a_file_that_vanishes_mid_run_is_named_and_not_recreated(song: Path) -> None:
    with pytest.raises(TagError, match=rf"{song}: vanished while being tagged"):
        rewrite(song, lambda tmp: (write_tag(tmp), song.unlink()))
    assert not song.exists() and leftovers(song.parent) == []


@pytest.mark.parametrize("linked", [False, True], ids=["renamed", "hard-linked"])
def test_ctrl_c_during_the_commit_waits_for_the_file(song: Path, linked: bool) -> None:
    if linked:
        os.link(song, song.with_name("other.mp3"))
    old = song.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        rewrite(song, write_tag, before_commit=lambda: signal.raise_signal(signal.SIGINT))
    assert song.read_bytes() == tagged(old) and leftovers(song.parent) == []
    with pytest.raises(KeyboardInterrupt):  # outside the block, signals act at once again
        with deferred_signals():
            pass
        signal.raise_signal(signal.SIGINT)
        time.sleep(1)


# A run over many files, some hard-linked, journaling each before its commit; the test signals it mid-run.
RUN = """
import os, signal, sys, time
from pathlib import Path
from musicgenre.tagging.journal import Journal
from musicgenre.tagging.safety import rewrite

folder, journal, at, sig = Path(sys.argv[1]), Journal(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print("ready", flush=True)
for i, path in enumerate(sorted(folder.glob("f*"))):
    def edit(tmp):
        data = tmp.read_bytes()
        with open(tmp, "wb") as f:
            f.write(b"TAGGED:" + data[:1000])
            time.sleep(0.01)
            f.write(data[1000:] + b":END")
    def commit():
        journal.record(path, {"index": i})
        if i == at:
            os.kill(os.getpid(), sig)
    rewrite(path, edit, before_commit=commit)
"""


@pytest.mark.parametrize(
    ("sig", "self_at"),
    [(signal.SIGTERM, -1), (signal.SIGINT, -1), (signal.SIGTERM, 6), (signal.SIGINT, 7), (signal.SIGKILL, 9)],
    ids=["SIGTERM", "SIGINT", "SIGTERM-in-commit", "SIGINT-in-commit", "SIGKILL-before-in-place-copy"],
)
def test_interrupted_run_leaves_every_file_whole_and_the_journal_consistent(tmp_path: Path, sig: int, self_at: int) -> None:
    folder = tmp_path / "music"
    folder.mkdir()
    originals = {}
    for i in range(40):
        path = folder / f"f{i:02d}.mp3"
        path.write_bytes(os.urandom(8192))
        originals[path] = path.read_bytes()
        if i % 3 == 0:
            os.link(path, folder / f"h{i:02d}.mp3")  # another name for the same file
    journal_path = tmp_path / "journal.jsonl"
    args = [sys.executable, "-c", RUN, str(folder), str(journal_path), str(self_at), str(sig)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    if self_at < 0:
        deadline = time.monotonic() + 10
        while len(Journal.entries(journal_path)) < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(sig)
    proc.wait(timeout=20)
    assert proc.returncode == -sig, proc.stderr.read().decode()  # the signal was obeyed, not swallowed

    journaled = {Path(e["file"]) for e in Journal.entries(journal_path)}
    changed = {p for p, old in originals.items() if p.read_bytes() != old}
    for path, old in originals.items():
        assert path.read_bytes() in (old, tagged(old)), f"{path} is neither untouched nor fully tagged"
        link = path.with_name("h" + path.name[1:])
        if link.exists():
            assert link.read_bytes() == path.read_bytes() and link.stat().st_ino == path.stat().st_ino
    assert changed and len(changed) < len(originals)  # it really stopped mid-run
    assert changed <= journaled  # no change reached the disk without its journal entry
    files = sorted(originals)
    if sig == signal.SIGKILL:
        # Killed after journaling file 9 (hard-linked) and backing it up, before copying into it: it is untouched,
        # and its backup remains. Simulate the torn copy a kill a moment later would leave, then recover.
        victim = files[self_at]
        assert changed == set(files[:self_at]) and victim in journaled
        assert (folder / f".{victim.name}.musicgenre-backup").exists()
        with open(victim, "r+b") as f:
            f.write(tagged(originals[victim])[:3000])
    else:
        assert changed == journaled  # a commit is never cut between its journal entry and the file
        if self_at >= 0:
            assert changed == set(files[: self_at + 1])
    restored = recover(folder)
    assert leftovers(tmp_path) == []
    for path, old in originals.items():
        assert path.read_bytes() in (old, tagged(old))
    if sig == signal.SIGKILL:
        assert victim in restored and victim.read_bytes() == originals[victim]
        assert (folder / ("h" + victim.name[1:])).read_bytes() == originals[victim]


def test_recover_removes_dead_temporaries_and_restores_dead_backups_only(song: Path, tmp_path: Path) -> None:
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout)
    stale = tmp_path / f".song.mp3.musicgenre.{dead}.abcd1234.tmp"
    live = tmp_path / f".song.mp3.musicgenre.{os.getpid()}.abcd1234.tmp"
    stranger = tmp_path / f".song.mp3.{dead}.abcd1234.tmp"  # not ours: another program's, left alone
    for p in (stale, live, stranger):
        p.write_bytes(b"partial")
    other = song.with_name("other.mp3")
    os.link(song, other)
    old, inode = song.read_bytes(), song.stat().st_ino
    backup = tmp_path / ".song.mp3.musicgenre-backup"
    backup.write_bytes(old)
    with open(song, "r+b") as f:
        f.write(b"torn" * 100)

    with open(backup, "rb") as held:  # a live writer holds its backup locked
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert recover([song]) == [stale]
        with pytest.raises(TagError, match=rf"{song}: another musicgenre run is rewriting it now"):
            rewrite(song, write_tag)
    assert live.exists() and stranger.exists() and backup.exists()

    assert recover(tmp_path) == [song]  # the writer is gone: its backup goes back into the same inode
    assert song.read_bytes() == other.read_bytes() == old and song.stat().st_ino == inode
    assert not backup.exists()
    live.unlink()
    stranger.unlink()


def test_journal_records_reads_back_and_ignores_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "state" / "j.jsonl"
    odd = os.fsdecode(b"/music/caf\xe9.mp3")  # a Latin-1 name on a UTF-8 system
    with Journal(path) as journal:
        journal.record(tmp_path / "a.mp3", {"genres": ["Rock"]})
        journal.record(odd, {"genres": []}, model="bundled")
        journal.record(tmp_path / "a.mp3", {"genres": ["Pop"]})
    header = json.loads(path.read_text().splitlines()[0])
    assert header["journal"] == "musicgenre-tag" and header["version"] == 1
    with open(path, "ab") as f:
        f.write(b'{"file": "/music/b.mp3", "bef')  # a crash mid-write
    entries = Journal.entries(path)
    assert [e["file"] for e in entries] == [str(tmp_path / "a.mp3"), odd, str(tmp_path / "a.mp3")]
    assert entries[1]["model"] == "bundled"
    assert first_states(path) == {str(tmp_path / "a.mp3"): {"genres": ["Rock"]}, odd: {"genres": []}}

    with Journal(path) as journal:  # reopening cuts the torn line off before appending
        journal.record("/music/c.mp3", {"genres": None})
    assert [e["file"] for e in Journal.entries(path)][-1] == "/music/c.mp3"

    path.write_text(path.read_text().replace('"before"', '"gone"', 1))
    with pytest.raises(TagError, match="line 2 of the journal is not an entry"):
        Journal.entries(path)


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"file": "/x.mp3", "before": {}}\n')
    with pytest.raises(TagError, match=rf"{notes}: not a musicgenre tag journal"):
        Journal.entries(notes)
    with pytest.raises(TagError, match="not a musicgenre tag journal"):
        Journal(notes)
    assert notes.read_text() == '{"file": "/x.mp3", "before": {}}\n'  # and it was not written to
    newer = tmp_path / "newer.jsonl"
    newer.write_text('{"journal": "musicgenre-tag", "version": 99}\n')
    with pytest.raises(TagError, match="format version 99"):
        first_states(newer)
    with pytest.raises(TagError, match="no such journal"):
        Journal.entries(tmp_path / "missing.jsonl")


def test_default_journal_path_is_in_the_state_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    path = default_journal_path()
    assert path.parent == tmp_path / "musicgenre" / "journals"
    assert path.name.startswith("tag-") and path.suffix == ".jsonl"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # the XDG spec says to ignore relative paths
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_journal_path().parent == tmp_path / "home" / ".local" / "state" / "musicgenre" / "journals"
