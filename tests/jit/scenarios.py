"""The two numba-cache scenarios of tests/test_jitcache.py that cost minutes of CPU, and the helpers its tests share.

    python tests/jit/scenarios.py WORKDIR CLIP...

Run by conftest as one background process from the end of collection (when a selected test asks for the
``jit_scenarios`` fixture), at the lowest priority (nice 19), so that their compilations use only the cores that the
tests running meanwhile leave idle (Ray start-ups, subprocess start-ups, browsers); the two tests then judge what it
recorded. It inherits the
session's cache (``NUMBA_CACHE_DIR``, configured by conftest), waits for conftest's build of it, and writes
``WORKDIR/scenarios.json``: each step's exit status and output, or the error that stopped it.

- **pair**: two ``features --librosa --workers 2`` started at once on an empty cache (started first: its
  compilation overlaps the race's), then a later command and a plain librosa process on that cache.
- **race**: numba #10128's interleaving forced on a copy of the session's cache without librosa.core.pitch's
  code, then the commands that must see it, refuse it or heal it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from musicgenre.features import jitcache

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
EXTRACT = ["features", "--librosa", "--workers", "2", "--no-progress"]

# Two calls of ensure_ready in one process: both must refuse (never fall through to the broken kernel).
REFUSE_TWICE = """
from musicgenre.features.jitcache import JitCacheError, ensure_ready
for _ in range(2):
    try:
        ensure_ready()
    except JitCacheError as exc:
        print(exc)
"""


def env(cache: Path) -> dict[str, str]:
    """A command's environment with its own cache folder (the CLI reads $MUSICGENRE_CACHE)."""
    out = {**os.environ, "MUSICGENRE_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    out.pop("NUMBA_CACHE_DIR", None)
    return out


def folder(cache: Path) -> Path:
    return cache / "numba" / jitcache.cache_key()


def raw_env(cache: Path) -> dict[str, str]:
    """A process that names the cache through numba's own variable (plain librosa, or a worker of a configured parent)."""
    return {**env(cache), "NUMBA_CACHE_DIR": str(folder(cache))}


def musicgenre(cache: Path, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "musicgenre", *args]
    return subprocess.Popen(cmd, env=env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def raw(cache: Path, script: str) -> subprocess.CompletedProcess:
    """A plain librosa process (no musicgenre) on the same numba folder."""
    return subprocess.run([sys.executable, str(HERE / script)], env=raw_env(cache), capture_output=True, text=True, timeout=600)


def _done(proc: subprocess.CompletedProcess | subprocess.Popen, out: str | None = None, err: str | None = None) -> dict:
    if isinstance(proc, subprocess.Popen):
        out, err = proc.communicate(timeout=900)
    else:
        out, err = proc.stdout, proc.stderr
    return {"returncode": proc.returncode, "stdout": out[-5000:], "stderr": err[-5000:]}


def force_broken_cache(cache: Path, session: Path) -> dict:
    """The interleaving of numba #10128, forced: one process stopped mid-compilation while another finishes.

    The cache starts as the session's good one without librosa.core.pitch's code (and without its marker), so the
    two processes compile only that module: a cache broken in one module is what the race leaves, and the commands
    that heal it still build a whole new cache from nothing."""
    shutil.copytree(session, folder(cache), ignore=shutil.ignore_patterns("*pitch.*", jitcache.MARKER))
    stopped = subprocess.Popen([sys.executable, str(HERE / "race_stop_before_saving.py")], env=raw_env(cache))
    deadline = time.monotonic() + 600
    while Path(f"/proc/{stopped.pid}/stat").read_text().split()[2] != "T":
        if stopped.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the compiling process never reached its stop")
        time.sleep(0.2)
    other = raw(cache, "call_parabolic.py")  # compiles and saves the kernel and its wrapper, and runs fine
    os.kill(stopped.pid, signal.SIGCONT)
    return {"other": _done(other), "stopped": stopped.wait(timeout=600)}


def race(work: Path, clips: list[str], record: dict) -> None:
    jitcache.ensure_ready()  # the session's cache, built by conftest in the background: wait for it on its lock
    session = Path(os.environ["NUMBA_CACHE_DIR"])
    cache = work / "cache"
    record["forced"] = force_broken_cache(cache, session)
    record["crashed"] = _done(raw(cache, "call_parabolic.py"))
    saved = work / "broken"
    shutil.copytree(folder(cache), saved)

    # The in-process check sees the null loop without calling it (the child flag skips ensure_ready).
    code = "from musicgenre.features import jitcache; print(jitcache.broken_loops(('librosa.core.pitch',)))"
    found_env = {**raw_env(cache), "MUSICGENRE_JIT_CHILD": "1"}  # as the checking child runs: on the folder it is given
    record["found"] = _done(
        subprocess.run([sys.executable, "-c", code], env=found_env, capture_output=True, text=True, timeout=600)
    )

    # A checked cache whose files were then overwritten by the broken ones: its marker vouches for other files, so
    # the next command (with worker processes) checks it again and rebuilds it.
    (folder(cache) / jitcache.MARKER).write_text(json.dumps({"key": jitcache.cache_key(), "manifest": "0" * 64}))
    extracted = musicgenre(cache, *EXTRACT, "--out", str(work / "t.csv"), *clips)

    # A marker that vouches for these very files (as if they broke after a check): a library process (a worker, say,
    # whose cache is the NUMBA_CACHE_DIR its parent configured) refuses, and the cache heals.
    vouched = work / "vouched"
    shutil.copytree(saved, folder(vouched))
    (folder(vouched) / jitcache.MARKER).write_text(
        json.dumps({"key": jitcache.cache_key(), "manifest": jitcache.manifest(folder(vouched))})
    )
    cmd = [sys.executable, "-c", REFUSE_TWICE]
    poisoned = subprocess.Popen(cmd, env=raw_env(vouched), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # numba imported before the cache is configured: it is not ours to repair, but it is never called into either.
    foreign = {**env(cache), "NUMBA_CACHE_DIR": str(saved)}  # not our folder
    cmd = [sys.executable, "-c", "import numba\n" + REFUSE_TWICE]
    record["refused"] = _done(subprocess.run(cmd, env=foreign, capture_output=True, text=True, timeout=600))

    record["extracted"] = _done(extracted)
    record["healed_raw"] = _done(raw(cache, "call_parabolic.py"))  # healed on disk, for plain librosa too
    record["healed_marker"] = (folder(cache) / jitcache.MARKER).is_file()
    record["poisoned"] = _done(poisoned)
    record["vouched_raw"] = _done(raw(vouched, "call_parabolic.py"))


def pair_judged(cache: Path, pair: list[subprocess.Popen], work: Path, clip: str, record: dict) -> None:
    record["pair"] = [_done(proc) for proc in pair]
    later = musicgenre(cache, *EXTRACT[:2], "--no-progress", "--out", str(work / "later.csv"), clip)
    record["pair_raw"] = _done(raw(cache, "call_parabolic.py"))
    record["later"] = _done(later)


def main(work: Path, clips: list[str]) -> int:
    os.nice(19)  # it and its commands take only what the tests running meanwhile leave idle
    result: dict = {"race": {}, "pair": {}}
    pair_work = work / "pair"
    pair_cache = pair_work / "cache"
    pair = [musicgenre(pair_cache, *EXTRACT, "--out", str(pair_work / f"t{k}.csv"), *clips) for k in range(2)]
    status = 0
    for name, run in (("race", lambda: race(work / "race", clips, result["race"])),
                      ("pair", lambda: pair_judged(pair_cache, pair, pair_work, clips[1], result["pair"]))):  # fmt: skip
        try:
            run()
        except Exception:
            result[name]["error"] = traceback.format_exc()
            status = 1
    for proc in pair:  # after an error above
        if proc.poll() is None:
            proc.kill()
    tmp = work / "scenarios.json.tmp"
    tmp.write_text(json.dumps(result))
    os.replace(tmp, work / "scenarios.json")
    return status


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
