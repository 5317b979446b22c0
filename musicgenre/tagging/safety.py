"""Rewriting a music file so that it is either untouched or fully rewritten, never half written.

A tool that writes into someone's collection must not damage it, whatever happens mid-run: Ctrl-C, SIGTERM, a full
disk, a file that vanishes, a crash. So a file is never edited where it lies:

* the file is copied to a hidden temporary beside it (``.NAME.musicgenre.PID.XXXXXXXX.tmp``: same folder, so same
  filesystem, so the final rename is atomic; the writer's pid in the name lets the next run delete it once that
  process is gone, through ``musicgenre.util.atomic.remove_stale_temporaries``);
* the caller's ``edit`` changes the temporary, ``verify`` compares it with the original (the audio must be the same);
* with SIGINT/SIGTERM held back, ``before_commit`` (the journal entry) runs and the temporary replaces the file.

What the file keeps: its permission bits (chmod, setuid/setgid too), its owner and group (chown, when we are allowed
to; a non-root user who is not in the file's group leaves it in their own group), its extended attributes, which on
Linux hold POSIX ACLs and SELinux labels (copied one by one where permitted). Not its timestamps: the content
changed, and library managers (beets, Picard, players' scanners) notice changes by mtime.

A symlink is resolved and its target rewritten, so the link stays a link to the same place. A file with several hard
links (``st_nlink > 1``) cannot be renamed over, because the other names would keep the old inode and the old tags;
its new bytes are copied into the same inode instead. That copy can be torn by a crash, so first a backup of the old
bytes is made beside it (``.NAME.musicgenre-backup``, complete before it gets that name, and locked with ``flock``
while its writer lives); the backup is removed once the copy is whole and synced. ``recover`` (run at the start of
the next run) deletes stale temporaries and copies a dead writer's backup back into its file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from musicgenre.errors import TagError
from musicgenre.util.atomic import remove_stale_temporaries

MARK = "musicgenre"
BACKUP_SUFFIX = f".{MARK}-backup"
_TEMP = re.compile(rf"\.(?P<name>.+)\.{MARK}\.\d+\.[A-Za-z0-9_]{{8}}\.tmp")
_BACKUP = re.compile(rf"\.(?P<name>.+){re.escape(BACKUP_SUFFIX)}")
_DEFERRED = (signal.SIGINT, signal.SIGTERM)


def _shown(path: str | os.PathLike) -> str:
    """The full path a message names (absolute, links not resolved: the name the user gave)."""
    return os.path.abspath(os.fspath(path))


def _failure(path: str | os.PathLike, exc: OSError) -> TagError:
    if isinstance(exc, FileNotFoundError):
        return TagError(f"{_shown(path)}: vanished while being tagged; nothing written")
    return TagError(f"{_shown(path)}: {exc.strerror or exc}; left as it was")


def _write_allowed(st: os.stat_result) -> bool:
    """Whether the mode bits let us write, for the owner, group or other class that applies to this process.

    Root is every class at once, so for root a file is writable when any write bit is set: 0o444 (nobody may write)
    is left alone, while another user's 0o644 file is not read-only, only not root's.
    """
    uid = os.geteuid()
    if uid == 0:
        return bool(st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IWUSR)
    if st.st_gid == os.getegid() or st.st_gid in os.getgroups():
        return bool(st.st_mode & stat.S_IWGRP)
    return bool(st.st_mode & stat.S_IWOTH)


def check_writable(path: str | os.PathLike) -> None:
    """Raise ``TagError`` unless ``path`` (a link is followed) is a regular file that its permission bits let us write.

    Decided from ``st_mode``, not ``os.access``, because ``os.access`` says yes to root for every file, and a file
    someone made read-only must stay untouched whoever runs the tool. Its folder must allow writing too: the
    temporary copy (or the backup of a hard-linked file) is made there.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise TagError(f"{_shown(path)}: no such file (or it vanished); nothing written") from None
    except OSError as exc:
        raise _failure(path, exc) from None
    if stat.S_ISDIR(st.st_mode):
        raise TagError(f"{_shown(path)}: is a folder, not a music file")
    if not stat.S_ISREG(st.st_mode):
        raise TagError(f"{_shown(path)}: not a regular file; left alone")
    if not _write_allowed(st):
        raise TagError(f"{_shown(path)}: its permission bits deny writing (mode {stat.S_IMODE(st.st_mode):04o}); left untouched")
    folder = os.path.dirname(os.path.realpath(path))
    try:
        folder_st = os.stat(folder)
    except OSError as exc:
        raise _failure(path, exc) from None
    if not _write_allowed(folder_st):
        raise TagError(
            f"{_shown(path)}: its folder's permission bits deny writing (mode {stat.S_IMODE(folder_st.st_mode):04o}), "
            "and the tagged copy is made there; left untouched"
        )


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM received inside the block, and deliver them (each once, in order) when it ends.

    The commit of one file (journal entry, then rename or in-place copy) must not be cut in half by Ctrl-C. Python
    runs signal handlers in the main thread only, so elsewhere this is a no-op: a worker thread is never interrupted
    by a signal anyway (the main thread gets the KeyboardInterrupt, and waits for the worker's file to finish).
    Nested blocks work: the inner one hands its signals on to the outer one's handler.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in _DEFERRED}

    def hold(signum, frame) -> None:
        if signum not in received:
            received.append(signum)

    for sig in _DEFERRED:
        signal.signal(sig, hold)
    try:
        yield
    finally:
        # Blocked while the handlers go back, so a signal arriving now cannot cut this short; the held ones are
        # raised while blocked too, and all of them are delivered, to the restored handlers, when the mask lifts.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
        try:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            for sig in received:
                signal.raise_signal(sig)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename or unlink in ``folder`` durable (a synced file under a name that a crash loses helps nobody)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary(target: Path) -> Path:
    """An empty, private (0600) temporary beside ``target``, named for ``remove_stale_temporaries``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{MARK}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(tmp)


def _keep_metadata(st: os.stat_result, source: Path, tmp: Path) -> None:
    """Give the temporary the original's owner, extended attributes (ACLs included) and mode, in that order.

    chown first because it clears setuid/setgid bits; xattrs before chmod because setting an ACL rewrites the group
    bits, which the final chmod then puts back as they were (they are the ACL mask, so the two agree).
    """
    try:
        os.chown(tmp, st.st_uid, st.st_gid)
    except PermissionError:
        pass  # not root and not in the file's group: the copy stays ours, as any editor's save would
    try:
        names = os.listxattr(source)
    except OSError:
        names = []  # a filesystem without extended attributes
    for name in names:
        try:
            os.setxattr(tmp, name, os.getxattr(source, name))
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.ENODATA):
                raise
    os.chmod(tmp, stat.S_IMODE(st.st_mode))


def _unchanged(target: Path, before: os.stat_result, shown: str) -> None:
    """Refuse to commit when the file vanished or was changed by someone else since it was copied."""
    try:
        now = os.stat(target)
    except FileNotFoundError:
        raise TagError(f"{shown}: vanished while being tagged; nothing written") from None
    if (now.st_ino, now.st_dev, now.st_size, now.st_mtime_ns) != (
        before.st_ino,
        before.st_dev,
        before.st_size,
        before.st_mtime_ns,
    ):
        raise TagError(f"{shown}: changed by something else while being tagged; left as that left it")


def _copy_into(source: Path, target: Path) -> None:
    """Overwrite ``target``'s bytes with ``source``'s in the same inode (every hard link sees them), then sync."""
    with open(source, "rb") as src, open(target, "r+b") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.truncate()
        dst.flush()
        os.fsync(dst.fileno())


def _backup_path(target: Path) -> Path:
    return target.with_name(f".{target.name}{BACKUP_SUFFIX}")


def _restore_backup(target: Path, backup: Path) -> bool:
    """Copy a dead writer's backup back into ``target`` and delete it; False if its writer still holds it."""
    with open(backup, "rb") as held:
        try:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live run is rewriting this file right now
        if not target.exists():
            return False  # the file was deleted since: do not bring it back, and keep its last copy
        if not _same_bytes(backup, target):
            _copy_into(backup, target)
        backup.unlink()
    _fsync_dir(target.parent)
    return True


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            chunk = fa.read(1 << 20)
            if chunk != fb.read(1 << 20):
                return False
            if not chunk:
                return True


def _commit_in_place(
    target: Path, tmp: Path, before: os.stat_result, shown: str, before_commit: Callable[[], None] | None
) -> None:
    """Copy ``tmp`` into the hard-linked ``target``'s own inode, under a locked backup of its old bytes."""
    backup = _backup_path(target)
    staging = _temporary(target)
    with open(staging, "r+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # recover() leaves a backup alone while this lock is held
        try:
            with open(target, "rb") as src:
                shutil.copyfileobj(src, held, 1 << 20)
            held.flush()
            os.fsync(held.fileno())
            try:
                os.link(staging, backup)  # complete before it has the name; never over another run's backup
            except FileExistsError:
                raise TagError(f"{shown}: another run's backup {backup} is in the way; run again to recover it") from None
        finally:
            staging.unlink(missing_ok=True)
        keep_backup = False  # true from the moment the file's own bytes may be half copied
        try:
            _fsync_dir(target.parent)
            with deferred_signals():
                _unchanged(target, before, shown)
                if before_commit is not None:
                    before_commit()
                keep_backup = True
                try:
                    _copy_into(tmp, target)
                except BaseException:
                    _copy_into(backup, target)  # the whole old file back; if this fails too, recover() will do it
                    keep_backup = False
                    raise
                keep_backup = False
                backup.unlink()
                _fsync_dir(target.parent)
        finally:
            if not keep_backup:
                backup.unlink(missing_ok=True)


def rewrite(
    path: str | os.PathLike,
    edit: Callable[[Path], None],
    before_commit: Callable[[], None] | None = None,
    verify: Callable[[Path, Path], None] | None = None,
) -> None:
    """Apply ``edit`` to a copy of ``path`` and put the copy in its place, so the file is untouched or fully rewritten.

    ``edit(temp)`` changes the copy in place; ``verify(original, temp)`` raises (``TagError``) if the copy must not
    replace the original (the caller compares audio digests). Then, with SIGINT/SIGTERM held, ``before_commit()``
    runs (it journals what the file held; if it raises, nothing is replaced) and the copy replaces the file: by
    rename, or for a hard-linked file by copying into the same inode under a backup (module docstring). Anything
    that goes wrong before that leaves the original byte-identical and removes the copy. Errors are ``TagError``
    naming the file's full path (an ``OSError``, ours or a callback's, becomes one); the callbacks' other exceptions
    pass through unchanged.
    """
    shown = _shown(path)
    check_writable(path)
    target = Path(os.path.realpath(path))
    tmp: Path | None = None
    try:
        backup = _backup_path(target)
        if backup.exists() and not _restore_backup(target, backup):
            raise TagError(f"{shown}: another musicgenre run is rewriting it now; left to that run")
        before = os.stat(target)
        tmp = _temporary(target)
        shutil.copyfile(target, tmp)
        try:
            edit(tmp)
        except TagError as exc:  # about the copy, which the user never sees: name their file instead
            raise type(exc)(str(exc).replace(str(tmp.absolute()), shown).replace(str(tmp), shown)) from None
        if verify is not None:
            verify(target, tmp)
        _fsync_file(tmp)
        if before.st_nlink > 1:
            _commit_in_place(target, tmp, before, shown, before_commit)
            return
        _keep_metadata(before, target, tmp)
        with deferred_signals():
            _unchanged(target, before, shown)
            if before_commit is not None:
                before_commit()
            os.replace(tmp, target)
            tmp = None
            _fsync_dir(target.parent)
    except OSError as exc:
        raise _failure(path, exc) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _recover_folder(folder: Path, names: Iterable[str]) -> list[Path]:
    """Handle our leftovers among ``names`` (entries of ``folder``): stale temporaries, then dead writers' backups."""
    done: list[Path] = []
    temp_owners, backups = set(), []
    for name in names:
        if m := _TEMP.fullmatch(name):
            temp_owners.add(m["name"])
        elif m := _BACKUP.fullmatch(name):
            backups.append(m["name"])
    for owner in sorted(temp_owners):
        done += remove_stale_temporaries(folder / f"{owner}.{MARK}")
    for owner in backups:
        target = folder / owner
        try:
            if _restore_backup(target, _backup_path(target)):
                done.append(target)
        except FileNotFoundError:
            pass  # a live run finished with it meanwhile
        except OSError as exc:
            raise _failure(target, exc) from None
    return done


def recover(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Clean up after interrupted runs: delete stale temporaries and restore files whose in-place copy may be torn.

    ``paths`` is a folder (searched recursively), a file, or several of either. For a file, a symlink is followed to
    the folder where its temporaries would be; in a folder, so are the symlinked files found there. Temporaries of
    a process that still runs and backups still locked by their writer are left alone. Returns the temporaries
    deleted and the files restored from a backup.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    folders: dict[Path, set[str] | None] = {}  # folder -> the files whose leftovers to look for (None: all)

    def want(folder: Path, name: str | None) -> None:
        if name is None or folders.get(folder, set()) is None:
            folders[folder] = None
        else:
            folders.setdefault(folder, set()).add(name)

    for given in paths:
        given = Path(given)
        if given.is_dir():
            for root, _dirs, files in os.walk(given):
                want(Path(root), None)
                for name in files:
                    entry = Path(root, name)
                    if entry.is_symlink() and entry.is_file():
                        real = Path(os.path.realpath(entry))
                        want(real.parent, real.name)
        else:
            real = Path(os.path.realpath(given))
            want(real.parent, real.name)
    done: list[Path] = []
    for folder, only in folders.items():
        try:
            names = [e.name for e in os.scandir(folder) if e.name.startswith(".") and MARK in e.name]
        except (FileNotFoundError, NotADirectoryError):
            continue
        if only is not None:
            names = [n for n in names if any(n.startswith(f".{o}.") for o in only)]
        done += _recover_folder(folder, sorted(names))
    return done
