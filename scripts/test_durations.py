"""Run the test suite (or part of it) and record how long each test took, for tests/durations.json.

    python scripts/test_durations.py                                  # the whole suite -> tests/durations.json
    python scripts/test_durations.py --out /tmp/d.json tests/test_load.py -m slow   # any pytest arguments

Runs ``python -m pytest --durations=0 --durations-min=0 ARGS`` (its output passes through), adds each
test's setup, call and teardown times, and writes (atomically) the test id -> seconds, the total,
the number of tests, the pytest result line, the machine's cores and speed (``cpu_index``), the date and the
command; then prints the 15 slowest. The exit status is pytest's.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musicgenre.util.atomic import write_json_atomic  # noqa: E402

# "12.34s call     tests/test_x.py::test_y[a b]" in pytest's "slowest durations" section
DURATION = re.compile(r"^(\d+(?:\.\d+)?)s\s+(setup|call|teardown)\s+(\S.*?)\s*$")
RESULT = re.compile(r"^=* ?(\d+ (?:passed|failed|errors?|skipped|deselected)\b.* in [\d.]+s.*?|no tests ran.*?) ?=*$")


def parse_durations(output: str) -> dict[str, float]:
    """Test id -> seconds (setup + call + teardown) from pytest's ``--durations`` section."""
    per_test: dict[str, float] = {}
    in_section = False
    for line in output.splitlines():
        if "slowest" in line and "durations" in line and line.startswith("="):
            in_section = True
            continue
        if in_section and line.startswith("="):
            break
        if in_section and (m := DURATION.match(line)):
            per_test[m[3]] = per_test.get(m[3], 0.0) + float(m[1])
    return per_test


def result_line(output: str) -> str:
    """pytest's closing line, e.g. "3 passed, 1 warning in 95.01s"."""
    lines = [m[1] for line in output.splitlines() if (m := RESULT.match(line.strip()))]
    return lines[-1] if lines else ""


def cpu_index() -> float:
    """Seconds for a fixed pure-Python loop on one core (the best of 5): this machine's speed varies by 15% and more
    within an evening, so the record says how fast it was, before and after the run, to compare records by."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        sum(i * i for i in range(3_000_000))
        best = min(best, time.perf_counter() - start)
    return round(best, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "tests" / "durations.json"), help="the record to write")
    parser.add_argument("--top", type=int, default=15, help="how many of the slowest tests to print")
    args, pytest_args = parser.parse_known_args()
    cmd = [sys.executable, "-m", "pytest", "--durations=0", "--durations-min=0", *pytest_args]

    before = cpu_index()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    captured = []
    for line in proc.stdout:
        sys.stdout.write(line)
        captured.append(line)
    rc = proc.wait()
    wall = time.monotonic() - start
    output = "".join(captured)

    per_test = dict(sorted(parse_durations(output).items(), key=lambda kv: -kv[1]))
    record = {
        "command": " ".join(["python", "-m", "pytest", *cmd[3:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "result": result_line(output),
        "exit_code": rc,
        "tests": len(per_test),
        "total_seconds": round(sum(per_test.values()), 2),
        "wall_seconds": round(wall, 2),
        "cpu_index_seconds": {"before": before, "after": cpu_index()},
        "durations": {test: round(seconds, 2) for test, seconds in per_test.items()},
    }
    write_json_atomic(args.out, record)

    print(f"\n{len(per_test)} tests, {record['total_seconds']:.1f} s in tests, {wall:.1f} s wall ({record['result']})")
    print(f"{'seconds':>8}  test (the {min(args.top, len(per_test))} slowest)")
    for test, seconds in list(per_test.items())[: args.top]:
        print(f"{seconds:8.1f}  {test}")
    print(f"written: {args.out}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
