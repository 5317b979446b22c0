"""The project's own numba cache: compiled by one process at a time, checked, and rebuilt when broken.

librosa compiles its numba code on first use and caches it on disk. Two processes that compile
the same ``guvectorize`` kernel at once can leave the kernel from one and its ufunc wrapper from
the other (numba #10128): the wrapper then looks the kernel up under a name the other process
gave it, finds nothing, and numpy calls a null loop pointer. Every later process that loads that
cache segfaults. musicgenre's own features, spectrograms and models run no compiled code (they
are NumPy, ``musicgenre.audio.spectral``), so predicting, extracting and serving never load this cache;
only librosa's reference code does (``musicgenre features --librosa``, the tests, benchmarks and
any librosa call in a process that configured the cache first). For that code:

- ``configure(root)`` points numba at a folder of our own under ``root`` (the entry point's cache folder:
  ``$MUSICGENRE_CACHE``, read by ``musicgenre.cli`` and ``app.py`` only), keyed by the versions of Python, numba,
  llvmlite and librosa; worker processes and Ray nodes started from that process inherit it through
  ``NUMBA_CACHE_DIR``. It must run before numba is imported, so the entry points call it first
  (``musicgenre.cli.main``, ``app.py``, the tests' conftest), and ``ensure_ready`` calls it if nothing did (then
  the folder is the one an inherited ``NUMBA_CACHE_DIR`` names, if it is ours, else under
  ``~/.cache/musicgenre``); importing musicgenre sets nothing (issue 34: no module changes the environment on import).
- ``ensure_ready`` (run before any librosa call) trusts the folder only if a fresh process has
  loaded and run every compiled function we use from exactly these files (a manifest of names,
  sizes and times). Otherwise it takes a file lock, and one process checks it in a child
  process (compiling what is missing): a child that dies by a signal, or loads a gufunc whose
  loop pointer is null, means a broken cache. A new one is then built in a fresh folder and
  checked the same way, and the folder's link is switched to it in one step (at most twice),
  with a one-line notice; processes still using the old one never see it half deleted.
- A process that finds null loop pointers in what it has loaded refuses every later call.
- What the check runs is every librosa path musicgenre uses, on float32 audio (what decoding
  gives). Code compiled later for other inputs (float64 arrays passed to the library) changes the
  manifest, so the next process checks the folder once more (loading, ~10 s) before trusting it.
- Cost when the cache is good: reading one small JSON file and listing the folder (~11 ms).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

from musicgenre.errors import MusicGenreError

MARKER = "musicgenre-verified.json"
_CHILD_ENV = "MUSICGENRE_JIT_CHILD"  # set in the child that builds the cache: it must not wait for itself
_LOCK_TIMEOUT_S = 1800.0


class JitCacheError(MusicGenreError):
    """librosa's compiled code could not be built, or was found broken in this process (it has been rebuilt)."""


PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # holds this musicgenre: the checking child imports the same one


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


def cache_folder(root: Path) -> Path:
    """The link numba is pointed at under the cache folder ``root``."""
    return Path(root) / "numba" / cache_key()


def _inherited() -> Path | None:
    """The folder a parent process configured (a worker inherits ``NUMBA_CACHE_DIR``), if it is one of ours."""
    folder = os.environ.get("NUMBA_CACHE_DIR")
    if folder and Path(folder).name == cache_key() and Path(folder).parent.name == "numba":
        return Path(folder)
    return None


_configured: Path | None = None
_state = threading.Lock()  # ensure_ready runs once per process, also with request threads
_ready = False
_scanned: set[str] = set()  # modules whose compiled functions this process has checked
_poisoned: str | None = None  # set once broken code is loaded here: never call into it


def configure(root: Path | None = None) -> Path | None:
    """Point numba's cache at our folder under the cache folder ``root``; None if numba was imported first (then its
    cache is not ours). ``root`` None (a library caller, a worker process): the folder a parent configured, else
    under ``~/.cache/musicgenre``.

    The folder is a link to the last verified build (``<key>.<build>``), switched atomically when a
    new build is verified, so processes already using a cache never see it half deleted. The
    child that builds or checks a cache keeps the folder it was given.
    """
    global _configured
    if os.environ.get(_CHILD_ENV):
        return None
    if root is not None:
        link = cache_folder(root)
    else:
        from musicgenre.util.cache import default_cache_root

        link = _inherited() or cache_folder(default_cache_root())
    if "numba" in sys.modules and os.environ.get("NUMBA_CACHE_DIR") != str(link):
        return None
    os.environ["NUMBA_CACHE_DIR"] = str(link)
    _configured = link
    return link


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
    """The cache's file lock (beside its folder); waiting is announced, and waiting too long is a JitCacheError."""

    def __init__(self, link: Path):
        from filelock import FileLock

        try:
            link.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JitCacheError(
                f"cannot create {link.parent} ({exc.strerror}); set MUSICGENRE_CACHE to a writable folder"
            ) from None
        self.lock = FileLock(str(link.parent / f"{link.name}.lock"))

    def __enter__(self) -> None:
        from filelock import Timeout

        try:
            self.lock.acquire(timeout=0)
            return
        except Timeout:
            _notice("waiting for another musicgenre process to finish building librosa's compiled code")
        try:
            self.lock.acquire(timeout=_LOCK_TIMEOUT_S)
        except Timeout:
            raise JitCacheError(
                f"waited {_LOCK_TIMEOUT_S:g} s for another process to build the cache ({self.lock.lock_file})"
            ) from None

    def __exit__(self, *exc) -> None:
        self.lock.release()


BROKEN_EXIT = 3  # the child found null loop pointers (jitcheck exits with it)
_CHILD_TIMEOUT_S = 1800.0


def _run_child(folder: Path) -> str | None:
    """Load (compiling what is missing) and run every compiled function we use, in a fresh process on ``folder``.

    None if that worked, else why the cache is broken (the child died by a signal or found null
    loop pointers). Any other failure (an import error, a bug) is not the cache's fault: a JitCacheError.
    """
    import signal
    import subprocess

    path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(folder), _CHILD_ENV: "1", "PYTHONPATH": path}
    code = "from musicgenre.features.jitcheck import exercise; exercise()"  # a program run by name, not an import
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, timeout=_CHILD_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise JitCacheError(f"compiling librosa's code took more than {_CHILD_TIMEOUT_S:g} s") from None
    tail = proc.stderr.strip().splitlines()
    if proc.returncode == 0:
        return None
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return f"a process using it died with {name}"
    if proc.returncode == BROKEN_EXIT:
        return tail[-1] if tail else "null loop pointers"
    raise JitCacheError(f"compiling librosa's code failed: {tail[-1] if tail else f'exit status {proc.returncode}'}")


def _mark(folder: Path) -> None:
    from musicgenre.util.atomic import atomic_open

    record = {"key": cache_key(), "manifest": manifest(folder)}  # before the marker's temporary file exists
    with atomic_open(folder / MARKER) as f:
        json.dump(record, f)


def _switch(link: Path, build: Path) -> None:
    """Make ``link`` point at ``build`` in one step, then remove whatever it pointed at before."""
    import time

    old = link.resolve() if link.is_symlink() else None
    tmp = link.parent / f"{link.name}.link-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(build.name, tmp)
    if link.is_dir() and not link.is_symlink():  # a plain folder (numba wrote there before any build)
        old = link.parent / f"{link.name}.old-{os.getpid()}-{time.time_ns()}"
        os.replace(link, old)
    os.replace(tmp, link)
    if old is not None and old != build.resolve():
        _discard(old)


def _new_build(link: Path, reason: str | None) -> None:
    """With the lock held: compile into a fresh folder, check it in a child, switch ``link`` to it; twice at most."""
    import time

    target = link.resolve() if link.is_symlink() else None
    for stale in link.parent.glob(f"{link.name}.*"):  # builds a killed process left behind (the lock is held)
        if stale.is_dir() and not stale.is_symlink() and stale != target:
            _discard(stale)
    for _attempt in range(2):
        if reason is not None:
            _notice(f"the compiled-code cache was broken ({reason}); building a new one (about a minute)")
        build = link.parent / f"{link.name}.{os.getpid()}-{time.time_ns()}"
        build.mkdir(parents=True)
        try:
            reason = _run_child(build)
        except JitCacheError:
            _discard(build)
            raise
        if reason is None:
            _mark(build)
            _switch(link, build)
            return
        _discard(build)
    raise JitCacheError(f"could not build librosa's compiled code in {link}: {reason}")


def _check(link: Path) -> None:
    """With the lock held: make ``link`` a verified cache, checking what is there before building anew."""
    if not link.is_dir():  # neither a folder nor a link to one (a dangling link is no cache)
        _notice(f"compiling librosa's numba code once (about a minute), into {link}")
        _new_build(link, None)
        return
    _notice("checking librosa's compiled-code cache: it changed since it was last checked (up to a minute)")
    reason = _run_child(link)  # files were added or changed since it was verified: load them all once more
    if reason is None:
        _mark(link)
    else:
        _new_build(link, reason)


def ensure_ready(modules: tuple[str, ...] | None = None) -> None:
    """Make sure the numba cache this process will load is whole; cheap after the first call and when it is good.

    ``modules`` are what the caller is about to run (default ``LIBROSA``): they are imported and
    their compiled functions checked for null loop pointers, once per process.
    """
    global _ready, _poisoned
    modules = LIBROSA if modules is None else modules
    if os.environ.get(_CHILD_ENV) or (_ready and _scanned.issuperset(modules)):
        return
    with _state:
        if _poisoned:
            raise JitCacheError(_poisoned)
        link = _active_folder() if _configured is not None else configure()  # a library caller's first librosa call
        if not _ready and link is not None and not _verified(link):
            with _Locked(link):
                if not _verified(link):  # another process may have built it while we waited
                    _check(link)
        broken = broken_loops(modules)
        if broken and link is None:  # numba was imported before the cache was configured: it is not ours to repair
            _poisoned = (
                f"librosa's compiled-code cache ({os.environ.get('NUMBA_CACHE_DIR') or 'beside librosa'}) is broken: null "
                f"loop pointers in {', '.join(broken)}. Delete its *.nbi and *.nbc files, or call "
                "musicgenre.features.jitcache.configure() before importing librosa."
            )
        elif broken:  # cannot happen with a verified cache; if it does, never call into it
            with _Locked(link):
                _new_build(link, f"null loop pointers in {', '.join(broken)}")
            _poisoned = "librosa's compiled code was broken in this process; the cache has been rebuilt: run it again"
        if _poisoned:
            raise JitCacheError(_poisoned)
        _scanned.update(modules)
        _ready = True


def heal(reason: str, rebuild: bool = False) -> None:
    """A worker died (e.g. by a signal): check the cache in a child and rebuild it if broken (or if ``rebuild``)."""
    link = _active_folder()
    if link is None:
        _notice(f"{reason}; retrying (librosa's compiled-code cache is not musicgenre's here, so it is left as it is)")
        return
    with _Locked(link):
        if rebuild:
            _new_build(link, f"{reason} again")
            return
        problem = _run_child(link) if link.is_dir() else "it is missing"
        if problem is None:
            _notice(f"{reason}; the compiled-code cache checks out, so it is kept; retrying")
            _mark(link)
        else:
            _new_build(link, problem)


# What the compiled code musicgenre runs is: librosa's reference feature code (``features.
# extract_features_naive``, ``musicgenre features --librosa``) imports these two, and with them
# librosa.util.utils, core.audio and core.pitch, whose eager gufuncs are what #10128 breaks.
# Nothing else musicgenre runs is compiled: its features and spectrograms are NumPy.
LIBROSA = ("librosa.feature.spectral", "librosa.beat")


def _null_loops(ufunc) -> bool:
    """Whether a numpy ufunc has a null inner-loop pointer (read from numpy's public PyUFuncObject layout).

    The struct starts with PyObject_HEAD, then ``int nin, nout, nargs, identity``, the array of
    loop function pointers, the data array and ``int ntypes``. If the ints read there do not
    match the ufunc's attributes, the layout is not the one assumed and nothing is claimed.
    """
    import ctypes

    head = object.__basicsize__  # PyObject_HEAD, whatever this build's header holds
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
            ufunc = getattr(value, "ufunc", None) if type(value).__module__.startswith("numba.") else value
            if isinstance(ufunc, np.ufunc) and _null_loops(ufunc):
                found.append(f"{modname}.{attr}")
    return sorted(set(found))
