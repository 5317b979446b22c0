"""Start-up as a user waits for it: whole-process wall time and peak memory, this checkout against a baseline.

    python benchmarks/startup.py                          # this checkout and the commit before the start-up work
    python benchmarks/startup.py --baselines 0b59797 a26afb1   # ... and a later commit too
    python benchmarks/startup.py --baselines none         # this checkout only

Each command runs once to warm the caches (page cache, numba's compiled code), then ``--runs``
times; the median is reported. Commands: ``musicgenre --help``, ``musicgenre predict`` of one 30 s
clip with the default and with each bundled model, and the app from launch to its first answered ``/predict`` (offline:
the bundled models), with its memory once idle after that answer and the share of a core it then uses idle
(``idle_cpu_percent``, over 5 s: ``musicgenre.serving.gradio_queue``). Each baseline is a copy of
a git revision (``--baselines``) run with the same interpreter and packages. Writes
``benchmarks/startup.json`` and prints both side by side. Numbers are recorded, never asserted.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from musicgenre.arguments import parse_dataclasses
from musicgenre.util.atomic import atomic_open

ROOT = Path(__file__).resolve().parents[1]
# "bundled" is the default model: the handcrafted-feature model before, the musicnn probe since issue 15.
TARGETS = {
    "help": 0.5,
    "predict bundled": 2.0,
    "predict bundled:shallow": 2.0,
    "predict bundled:musicnn": 3.0,
    "predict bundled:cnn": 3.0,
    "app first /predict": 8.0,
}
IDLE_SECONDS = 5.0  # how long the app's idle CPU is measured, after its first answer and memory


@dataclass
class Arguments:
    baselines: list[str] = field(
        default_factory=lambda: ["0b59797"], metadata={"help": "git revisions to compare with ('none': none)"}
    )
    clip: str | None = field(default=None, metadata={"help": "a 30 s clip (default: a synthetic one)"})
    runs: int = field(default=5, metadata={"help": "timed runs per command, after one warm-up"})
    app: bool = field(default=True, metadata={"help": "also time the app (about 30 s a run)"})
    out: str = "benchmarks/startup.json"


def _env(source: Path) -> dict[str, str]:
    """The commands' environment. Bytecode is written (the warm-up run leaves it), as pip's install compiles it for
    a user: with ``PYTHONDONTWRITEBYTECODE`` set (as on some CI machines) every run would compile every module."""
    return {
        **os.environ,
        **_WRITE_BYTECODE,
        "PYTHONPATH": str(source),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }


_WRITE_BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}  # empty: unset, for Python


# Started by a minimal interpreter: a child forked from this process would report this process's
# memory as its own peak (Linux keeps the high-water mark across fork), not the command's.
_SPAWN = (
    "import json, os, sys, time; t = time.perf_counter(); pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ); "
    "_, status, usage = os.wait4(pid, 0); "
    "print(json.dumps([time.perf_counter() - t, os.waitstatus_to_exitcode(status), usage.ru_maxrss]), file=sys.stderr)"
)


def _timed(cmd: list[str], source: Path) -> tuple[float, float]:
    """Wall seconds from start to exit and the command's peak RSS in MB."""
    proc = subprocess.run(
        [sys.executable, "-c", _SPAWN, *cmd], cwd=source, env=_env(source), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    *log, last = proc.stderr.decode(errors="replace").strip().splitlines()
    seconds, code, peak_kb = json.loads(last)
    if code:
        raise SystemExit(f"{' '.join(cmd)} failed in {source}: {chr(10).join(log)[-2000:]}")
    return seconds, peak_kb / 1024


def _app_run(source: Path, clip: str) -> tuple[float, float, float]:
    """Launch -> first answered /predict; the server's RSS (MB) 5 s after that answer; then the share of one core it
    uses over the next 5 s, idle (percent)."""
    from gradio_client import Client, handle_file

    from musicgenre.testing.app_process import launch_app

    with tempfile.TemporaryDirectory() as tmp:
        app = launch_app(
            source / "app.py", [], Path(tmp) / "app.log", timeout=300, env={"PYTHONPATH": str(source), **_WRITE_BYTECODE}
        )
        try:
            Client(app.url, verbose=False).predict(handle_file(clip), "all", api_name="/predict")
            seconds = time.monotonic() - app.launched
            time.sleep(5)
            rss = app.rss_mb()
            cpu = app.cpu_seconds()
            time.sleep(IDLE_SECONDS)
            idle = 100 * (app.cpu_seconds() - cpu) / IDLE_SECONDS
        finally:
            app.stop()
    return seconds, rss, idle


def measure(source: Path, clip: str, runs: int, app: bool) -> dict[str, dict]:
    module = [sys.executable, "-m", "musicgenre"]
    commands = {
        "help": [*module, "--help"],
        "predict bundled": [*module, "predict", clip],
        **{f"predict bundled:{k}": [*module, "predict", "--model", f"bundled:{k}", clip] for k in ("shallow", "musicnn", "cnn")},
    }
    out = {}
    for name, cmd in commands.items():
        shipped = [source / "musicgenre" / "bundled", source / "musicgenre" / "models" / "bundled"]  # before/after issue 17
        if "musicnn" in name and not any((p / "musicnn").is_dir() for p in shipped):
            continue  # a baseline from before the model existed
        _timed(cmd, source)  # warm-up
        samples = [_timed(cmd, source) for _ in range(runs)]
        out[name] = _summary(samples, "peak_rss_mb")
        print(f"  {source.name}: {name}: {out[name]['median_s']:.2f} s", flush=True)
    if app:
        _app_run(source, clip)
        samples = [_app_run(source, clip) for _ in range(runs)]
        out["app first /predict"] = _summary([s[:2] for s in samples], "idle_rss_mb")
        out["app first /predict"]["idle_cpu_percent"] = round(statistics.median(s[2] for s in samples), 2)
        print(f"  {source.name}: app: {out['app first /predict']['median_s']:.2f} s", flush=True)
    return out


def _summary(samples: list[tuple[float, float]], memory: str) -> dict:
    times = [s for s, _ in samples]
    return {"median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times],
            memory: round(statistics.median(m for _, m in samples), 1)}  # fmt: skip


def _checkout(revision: str, into: Path) -> Path:
    into.mkdir()
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def table(results: dict[str, dict]) -> str:
    labels = list(results)
    lines = [
        "| command | target | " + " | ".join(f"{label} (s, MB)" for label in labels) + " |",
        "|---" * (len(labels) + 2) + "|",
    ]
    for name, target in TARGETS.items():
        cells = []
        for label in labels:
            r = results[label].get(name)
            mem = r and (r.get("peak_rss_mb") or r.get("idle_rss_mb"))
            cells.append(f"{r['median_s']:.2f} s, {mem:.0f} MB" if r else "—")
        lines.append(f"| {name} | ≤ {target:g} s | " + " | ".join(cells) + " |")
    idle = [(results[label].get("app first /predict") or {}).get("idle_cpu_percent") for label in labels]
    if any(v is not None for v in idle):
        lines.append("| app idle, share of a core | | " + " | ".join("—" if v is None else f"{v:.1f}%" for v in idle) + " |")
    return "\n".join(lines)


def main() -> None:
    (args,) = parse_dataclasses(Arguments, description=__doc__)
    # Each command (the baseline's too) finds its own numba cache, as a user's does (importing musicgenre sets none now;
    # this is for a NUMBA_CACHE_DIR the caller's shell may have).
    os.environ.pop("NUMBA_CACHE_DIR", None)
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        clip = args.clip
        if clip is None:
            import soundfile as sf

            from musicgenre.audio.example import example_clip

            clip = str(Path(tmp) / "clip.wav")
            sf.write(clip, example_clip(30.0), 22050)
        revisions = list(dict.fromkeys(r for r in args.baselines if r != "none"))  # each once, in order
        sources = {f"before ({r})": _checkout(r, Path(tmp) / f"baseline-{i}") for i, r in enumerate(revisions)}
        sources["after"] = ROOT
        results = {}
        for label, source in sources.items():
            print(f"{label}: {source}", flush=True)
            results[label] = measure(source, clip, args.runs, args.app)
    record = {
        "benchmark": "startup",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "runs": args.runs,
        "clip": args.clip or "synthetic 30 s example clip",
        "targets_s": TARGETS,
        "results": results,
    }
    with atomic_open(ROOT / args.out) as f:
        f.write(json.dumps(record, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
