"""Bursts of concurrent clients against the running app: right answers, clear errors, latency, memory.

Every request uploads one file through ``gradio_client`` (a separate client, i.e. session, per
simulated user) and calls the app's ``/predict`` API. A burst is judged against single calls made
beforehand: a good file must get exactly the answer it got alone, a bad one an error, and the
server must still be up. Used by the load test (asserts correctness and bounded memory) and by
``benchmarks/load.py`` (records cold start, p50/p95 latency and memory; asserts nothing).
"""

from __future__ import annotations

import math
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from musicgenre.errors import MusicGenreError
from musicgenre.testing.app_process import AppProcess, launch_app

SCORE_TOLERANCE = 1e-6  # the same computation on the same audio; only float summation order may differ


@dataclass
class Outcome:
    """One request of a burst: which file, how long it took, and the answer or the error message."""

    name: str
    seconds: float
    result: dict | None = None
    error: str | None = None


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def call(client, path: Path, model: str) -> Outcome:
    """One ``/predict`` request; an app error (or a refused upload) is an outcome, not an exception."""
    from gradio_client import handle_file

    start = time.perf_counter()
    try:
        result = client.predict(handle_file(str(path)), model, api_name="/predict")
        return Outcome(path.name, time.perf_counter() - start, result=result)
    except Exception as exc:  # AppError for refused audio; anything else is recorded the same way and judged
        return Outcome(path.name, time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")


def first_answer_seconds(app: AppProcess, path: Path, model: str = "all", timeout: float = 300.0) -> float:
    """Seconds from the app's launch until a ``/predict`` request on ``path`` was answered."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            outcome = call(_client(app.url), path, model)
            if outcome.result is not None:
                return time.monotonic() - app.launched
            error = outcome.error
        except Exception as exc:  # noqa: BLE001 - the server may still be starting
            error = f"{type(exc).__name__}: {exc}"
        if not app.alive() or time.monotonic() > deadline:
            raise MusicGenreError(f"no answer from the app on {path.name}: {error}\n{app.log_tail()}")
        time.sleep(0.2)


def burst(url: str, files: list[Path], clients: int, per_client: int, model: str = "all") -> list[Outcome]:
    """``clients`` concurrent sessions each send ``per_client`` requests, cycling through ``files`` from
    different starting points so good and bad files are mixed at every moment."""
    sessions = [_client(url) for _ in range(clients)]

    def run(i: int) -> list[Outcome]:
        return [call(sessions[i], files[(i * per_client + j) % len(files)], model) for j in range(per_client)]

    with ThreadPoolExecutor(clients) as pool:
        return [o for outcomes in pool.map(run, range(clients)) for o in outcomes]


@dataclass(frozen=True)
class Refusal:
    """What a bad file must get: an error whose message contains ``match`` (the app's words, not a crash)."""

    match: str


Expected = dict[str, dict | Refusal]  # file name -> its single-call answer, or the refusal it must get


def _differs(got: dict, ref: dict) -> str | None:
    """Why an answer is not the reference one, or None if it is."""
    try:
        pairs = list(zip(got["results"], ref["results"], strict=True))
        for g, r in pairs:
            worst = max(abs(g["scores"][genre] - p) for genre, p in r["scores"].items())
            if g["model"] != r["model"] or worst > SCORE_TOLERANCE:
                return f"{g['model']} differs from a single call by {worst:.3g}"
    except (KeyError, TypeError, ValueError) as exc:
        return f"malformed answer ({type(exc).__name__}: {exc})"
    return None


def problems(outcomes: list[Outcome], expected: Expected) -> list[str]:
    """What went wrong: a good file not answered exactly as alone, a bad one not refused in its own words."""
    found = []
    for o in outcomes:
        want = expected[o.name]
        if isinstance(want, Refusal):
            if o.error is None or want.match not in o.error:
                found.append(f"{o.name}: should have been refused ({want.match!r}), got {o.error or 'an answer'}")
        elif o.error is not None:
            found.append(f"{o.name}: {o.error}")
        elif why := _differs(o.result, want):
            found.append(f"{o.name}: {why}")
    return found


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (no interpolation: with 80 requests, p95 is the 76th fastest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarise_burst(outcomes: list[Outcome], expected: Expected, wall: float, focus: str | None = None) -> dict:
    """Counts, problems and latency of the good requests (``focus_*``: of one named file's requests only)."""
    good = [o.seconds for o in outcomes if not isinstance(expected[o.name], Refusal)]
    focused = [o.seconds for o in outcomes if o.name == focus]
    summary = {
        "requests": len(outcomes),
        "good_requests": len(good),
        "refused_as_expected": sum(1 for o in outcomes if isinstance(expected[o.name], Refusal) and o.error is not None),
        "problems": problems(outcomes, expected),
        "wall_seconds": round(wall, 2),
        "requests_per_second": round(len(outcomes) / wall, 2),
    }
    for key, values in (("latency", good), ("focus", focused)):
        if values:
            summary[f"{key}_p50_seconds"] = round(statistics.median(values), 3)
            summary[f"{key}_p95_seconds"] = round(percentile(values, 95), 3)
    if good:
        summary["latency_max_seconds"] = round(max(good), 3)
    return summary


def load_test(
    app: AppProcess,
    files: list[Path],
    expected: Expected,
    bursts: int,
    clients: int,
    per_client: int,
    model: str = "all",
    focus: str | None = None,
) -> list[dict]:
    """Repeated bursts; each summary adds the server's memory after it and whether it is still up."""
    out = []
    for i in range(bursts):
        start = time.perf_counter()
        outcomes = burst(app.url, files, clients, per_client, model)
        summary = summarise_burst(outcomes, expected, time.perf_counter() - start, focus)
        summary |= {"burst": i + 1, "server_alive": app.alive(), "server_rss_mb": round(app.rss_mb(), 1) if app.alive() else None}
        out.append(summary)
    return out


def rss_growth_mb(bursts: list[dict]) -> float | None:
    """The server's RSS growth from after the second burst (the first ones warm caches up) to after the last.

    Whether memory levels off: a request that kept its decoded 30 s clip (2.6 MB) would add ~330 MB over
    three bursts of 40 clip requests, while RSS moves by up to ~50 MB between bursts, so this needs several
    full bursts (benchmarks/load.json at 8 x 10 requests: +66 MB with the app's arena cap, +225 MB with
    glibc's default arenas). None with fewer than three bursts or a server that died.
    """
    rss = [b["server_rss_mb"] for b in bursts]
    if len(rss) < 3 or None in rss:
        return None
    return round(rss[-1] - rss[1], 1)


def single_answers(url: str, files: list[Path], refusals: dict[str, Refusal], model: str) -> Expected:
    """Each file's answer when sent alone; the files in ``refusals`` are expected to be refused instead."""
    client = _client(url)
    answers: Expected = dict(refusals)
    for path in files:
        if path.name in refusals:
            continue
        outcome = call(client, path, model)
        if outcome.result is None:
            raise MusicGenreError(f"{path.name} should classify but failed on its own: {outcome.error}")
        answers[path.name] = outcome.result
    return answers


def mixed_requests(clip: Path, folder: Path) -> tuple[list[Path], dict[str, Refusal]]:
    """``clip`` alternating with every uploadable file of the bad-input corpus (written into ``folder``;
    not the directory), and the refusals the corpus's bad files must get."""
    from musicgenre.testing.bad_inputs import write_corpus

    corpus = [(case, path) for case, path in write_corpus(folder) if path.is_file()]
    files = [f for _, path in corpus for f in (clip, path)]
    return files, {path.name: Refusal(case.match) for case, path in corpus if case.expect == "error"}


def run_load_benchmark(
    app_script: Path,
    folder: Path,
    clip: Path,
    clients: int = 8,
    per_client: int = 10,
    bursts: int = 3,
    model: str = "all",
    app_args: tuple[str, ...] = (),
    app_env: dict[str, str] | None = None,
) -> dict:
    """Launch the app, time its first answer on ``clip``, then send ``bursts`` mixed bursts.

    Half the requests are ``clip`` (a real 30 s recording), half the bad-input corpus (some of
    which is awkward but valid audio, some must be refused).
    """
    import os
    import platform

    files, refusals = mixed_requests(clip, folder / "corpus")
    app = launch_app(app_script, list(app_args), folder / "server.log", env=app_env)
    try:
        cold = first_answer_seconds(app, clip, model)
        expected = single_answers(app.url, sorted(set(files)), refusals, model)
        idle_mb = app.rss_mb()
        results = load_test(app, files, expected, bursts, clients, per_client, model, focus=clip.name)
    finally:
        app.stop()
    return {
        "cold_start_seconds": round(cold, 2),
        "page_seconds": round(app.page_seconds, 2),
        "served_models": [r["model"] for r in expected[clip.name]["results"]],
        "model": model,
        "clip": clip.name,
        "clip_seconds": expected[clip.name]["duration_seconds"],
        "corpus_files": len(files) // 2,
        "corpus_files_refused": len(refusals),
        "clients": clients,
        "requests_per_client": per_client,
        "server_rss_mb_before_bursts": round(idle_mb, 1),
        "server_rss_growth_mb": rss_growth_mb(results),
        "app_env": app_env or {},
        "bursts": results,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
