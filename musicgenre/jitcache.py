"""The project's own numba cache: compiled by one process at a time, checked, and rebuilt when broken.

librosa compiles its numba code on first use and caches it on disk. Two processes that compile
the same ``guvectorize`` kernel at once can leave the kernel from one and its ufunc wrapper from
the other (numba #10128): the wrapper then looks the kernel up under a name the other process
gave it, finds nothing, and numpy calls a null loop pointer. Every later process that loads that
cache segfaults. So:

- ``configure`` (run by ``musicgenre/__init__`` before numba can be imported) points numba at a
  folder of our own, keyed by the versions of Python, numba, llvmlite and librosa; worker
  processes inherit it through ``NUMBA_CACHE_DIR``.
- ``ensure_ready`` (run before any librosa call) trusts the folder only if a fresh process has
  loaded and run every compiled function we use from exactly these files (a manifest of names,
  sizes and times). Otherwise it takes a file lock, and one process rebuilds it in a child
  process: a child that dies by a signal, or loads a gufunc whose loop pointer is null, means a
  broken cache, which is discarded and rebuilt once, with a one-line notice.
- Cost when the cache is good: reading one small JSON file and listing the folder.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from musicgenre.errors import MusicGenreError

MARKER = "musicgenre-verified.json"
_CHILD_ENV = "MUSICGENRE_JIT_CHILD"  # set in the child that builds the cache: it must not wait for itself
_LOCK_TIMEOUT_S = 1800.0
_ready = False


class JitCacheError(MusicGenreError):
    """librosa's compiled code could not be built, or was found broken in this process (it has been rebuilt)."""


def cache_root() -> Path:
    """Where musicgenre keeps its caches: ``$MUSICGENRE_CACHE`` or ``~/.cache/musicgenre``."""
    return Path(os.environ.get("MUSICGENRE_CACHE") or Path.home() / ".cache" / "musicgenre")


def cache_key() -> str:
    """One folder per version set: numba's own cache keys miss a changed numba or llvmlite build."""

    from importlib import metadata

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "none"

    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return "-".join([py, *(f"{name}{version(name)}" for name in ("numba", "llvmlite", "librosa"))])


def cache_folder() -> Path:
    return cache_root() / "numba" / cache_key()


_configured: Path | None = None


def configure() -> Path | None:
    """Point numba's cache at our folder; None if numba was imported first (then its cache is not ours)."""
    global _configured
    folder = cache_folder()
    if "numba" in sys.modules and os.environ.get("NUMBA_CACHE_DIR") != str(folder):
        return None
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    _configured = folder
    return folder


def _active_folder() -> Path | None:
    """The folder ``configure`` gave numba in this process, if numba still reads that one."""
    return _configured if _configured is not None and os.environ.get("NUMBA_CACHE_DIR") == str(_configured) else None


def manifest(folder: Path) -> str:
    """A digest of every cache file's name, size and modification time: any write changes it."""
    import hashlib

    entries = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name == MARKER:
                continue
            path = Path(root) / name
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            entries.append(f"{path.relative_to(folder)}\t{st.st_size}\t{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()


def _verified(folder: Path) -> bool:
    try:
        recorded = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return recorded.get("key") == cache_key() and recorded.get("manifest") == manifest(folder)


def _notice(message: str) -> None:
    print(f"musicgenre: {message}", file=sys.stderr, flush=True)


def _discard(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


class _Locked:
    """The folder's file lock (beside it, so discarding the folder keeps it); waiting too long is a JitCacheError."""

    def __init__(self, folder: Path):
        from filelock import FileLock

        folder.parent.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(str(folder.parent / f"{folder.name}.lock"), timeout=_LOCK_TIMEOUT_S)

    def __enter__(self) -> None:
        from filelock import Timeout

        try:
            self.lock.acquire()
        except Timeout:
            raise JitCacheError(f"waited {_LOCK_TIMEOUT_S:g} s for another process to build {self.lock.lock_file}") from None

    def __exit__(self, *exc) -> None:
        self.lock.release()


_BROKEN_EXIT = 3  # the child found null loop pointers


def _run_child(folder: Path) -> str | None:
    """Build (or load) and run every compiled function in a fresh process; None if it worked, else why the cache is broken.

    Any other failure (an import error, a bug) is not the cache's fault: it is raised as it is.
    """
    import signal
    import subprocess

    env = {**os.environ, "NUMBA_CACHE_DIR": str(folder), _CHILD_ENV: "1"}
    code = "from musicgenre.jitcache import exercise; exercise()"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    tail = proc.stderr.strip().splitlines()
    if proc.returncode == 0:
        return None
    if proc.returncode < 0:
        return f"a process using it died with {signal.Signals(-proc.returncode).name}"
    if proc.returncode == _BROKEN_EXIT:
        return tail[-1] if tail else "null loop pointers"
    raise JitCacheError(f"compiling librosa's code failed: {tail[-1] if tail else f'exit status {proc.returncode}'}")


def _build(folder: Path, reason: str | None = None) -> None:
    """With the lock held: make ``folder`` a verified cache, discarding it once if it proves broken."""
    if reason is not None:
        _discard(folder)
    elif not (folder / MARKER).exists():
        _notice(f"compiling librosa's numba code once (about a minute), into {folder}")
    for attempt in range(2):
        if reason is not None:
            _notice(f"the compiled-code cache was broken ({reason}); discarded it and rebuilding it (about a minute)")
        folder.mkdir(parents=True, exist_ok=True)
        try:
            reason = _run_child(folder)
        except JitCacheError:
            _discard(folder)
            raise
        if reason is None:
            from musicgenre.atomic import atomic_open

            record = {"key": cache_key(), "manifest": manifest(folder)}  # before the marker's temporary file exists
            with atomic_open(folder / MARKER) as f:
                json.dump(record, f)
            return
        _discard(folder)
        if attempt:
            break
    raise JitCacheError(f"could not build librosa's compiled code in {folder}: {reason}")


def ensure_ready() -> None:
    """Make sure the numba cache this process will load is whole; cheap after the first call and when it is good."""
    global _ready
    if _ready or os.environ.get(_CHILD_ENV):
        return
    folder = _active_folder()
    if folder is not None and not _verified(folder):
        with _Locked(folder):
            if not _verified(folder):  # another process may have built it while we waited
                _build(folder)
    _ready = True
    broken = broken_loops(_USED_MODULES)
    if broken and folder is None:  # numba was imported before musicgenre, so its cache is not ours to repair
        raise JitCacheError(
            f"librosa's compiled-code cache ({os.environ.get('NUMBA_CACHE_DIR') or 'beside librosa'}) is broken: null loop "
            f"pointers in {', '.join(broken)}. Delete its *.nbi and *.nbc files, or import musicgenre before librosa."
        )
    if broken:  # cannot happen with a verified cache; if it does, never call into it
        with _Locked(folder):
            _build(folder, f"null loop pointers in {', '.join(broken)}")
        raise JitCacheError("librosa's compiled code was broken in this process; the cache has been rebuilt, run it again")


def heal(reason: str) -> None:
    """A worker died (e.g. by a signal): discard and rebuild the cache once before the work is retried."""
    global _ready
    folder = _active_folder()
    if folder is None:
        return
    with _Locked(folder):
        _build(folder, reason)
    _ready = True


# Importing these compiles (or loads) librosa's eager gufuncs: every feature path imports the first
# (and with it librosa.util.utils, core.audio and core.pitch); the naive reference also needs beat.
_USED_MODULES = ("librosa.feature.spectral",)
_ALL_MODULES = (*_USED_MODULES, "librosa.beat")


def _null_loops(ufunc) -> bool:
    """Whether a numpy ufunc has a null inner-loop pointer (read from numpy's public PyUFuncObject layout).

    The struct starts with PyObject_HEAD, then ``int nin, nout, nargs, identity``, the array of
    loop function pointers, the data array and ``int ntypes``. If the ints read there do not
    match the ufunc's attributes, the layout is not the one assumed and nothing is claimed.
    """
    import ctypes

    head = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)
    nin, nout, nargs = (ctypes.c_int * 3).from_address(id(ufunc) + head)
    if (nin, nout, nargs) != (ufunc.nin, ufunc.nout, ufunc.nargs):
        return False
    pointers = head + 4 * ctypes.sizeof(ctypes.c_int)
    functions = ctypes.c_void_p.from_address(id(ufunc) + pointers).value
    ntypes = ctypes.c_int.from_address(id(ufunc) + pointers + 2 * ctypes.sizeof(ctypes.c_void_p)).value
    if not functions or ntypes != ufunc.ntypes:
        return False
    return any(ctypes.c_void_p.from_address(functions + i * ctypes.sizeof(ctypes.c_void_p)).value is None for i in range(ntypes))


def broken_loops(modules: tuple[str, ...] = ()) -> list[str]:
    """Names of loaded librosa/musicgenre ufuncs (numba's gufuncs included) with a null loop pointer.

    ``modules`` are imported first. Loading a broken gufunc is harmless; only calling it crashes.
    """
    import importlib

    import numpy as np

    for name in modules:
        importlib.import_module(name)
    found = []
    for modname, module in list(sys.modules.items()):
        if not modname.startswith(("librosa", "musicgenre")) or module is None:
            continue
        for attr, value in list(vars(module).items()):
            # No getattr on arbitrary objects: librosa's lazy-module proxies import (or raise) when touched.
            ufunc = vars(value).get("ufunc") if type(value).__module__.startswith("numba.") else value
            if isinstance(ufunc, np.ufunc) and _null_loops(ufunc):
                found.append(f"{modname}.{attr}")
    return sorted(set(found))


def exercise() -> None:
    """Every librosa path musicgenre uses, on a short clip: compiles (or loads) all of it, at the dtypes we use."""
    from musicgenre.cnn import log_mel
    from musicgenre.example import example_clip
    from musicgenre.features import extract_features, extract_features_naive
    from musicgenre.serving import mel_spectrogram_db

    _exit_if_broken(broken_loops(_ALL_MODULES))
    y = example_clip(3.0)
    extract_features(y)
    extract_features_naive(y)
    log_mel(y)
    mel_spectrogram_db(y, 22050)
    _exit_if_broken(broken_loops())


def _exit_if_broken(broken: list[str]) -> None:
    if broken:
        print(f"null loop pointers in {', '.join(broken)}", file=sys.stderr)
        sys.exit(_BROKEN_EXIT)
