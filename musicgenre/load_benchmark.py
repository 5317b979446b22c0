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

from musicgenre.app_process import AppProcess, launch_app
from musicgenre.errors import MusicGenreError

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


def problems(outcomes: list[Outcome], expected: dict[str, dict | str]) -> list[str]:
    """What went wrong: ``expected`` maps a file name to its single-call answer, or to ``"error"``."""
    found = []
    for o in outcomes:
        want = expected[o.name]
        if want == "error":
            if o.error is None:
                found.append(f"{o.name}: answered, but should have been refused")
            continue
        if o.error is not None:
            found.append(f"{o.name}: {o.error}")
            continue
        for got, ref in zip(o.result["results"], want["results"], strict=True):
            worst = max(abs(got["scores"][g] - p) for g, p in ref["scores"].items())
            if got["model"] != ref["model"] or worst > SCORE_TOLERANCE:
                found.append(f"{o.name}: {got['model']} differs from a single call by {worst:.3g}")
    return found


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (no interpolation: with 80 requests, p95 is the 76th fastest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarise_burst(outcomes: list[Outcome], expected: dict[str, dict | str], wall: float, focus: str | None = None) -> dict:
    """Counts, problems and latency of the good requests (``focus_*``: of one named file's requests only)."""
    good = [o.seconds for o in outcomes if expected[o.name] != "error"]
    summary = {
        "requests": len(outcomes),
        "good_requests": len(good),
        "refused_as_expected": sum(1 for o in outcomes if expected[o.name] == "error" and o.error is not None),
        "problems": problems(outcomes, expected),
        "wall_seconds": round(wall, 2),
        "requests_per_second": round(len(outcomes) / wall, 2),
        "latency_p50_seconds": round(statistics.median(good), 3),
        "latency_p95_seconds": round(percentile(good, 95), 3),
        "latency_max_seconds": round(max(good), 3),
    }
    focused = [o.seconds for o in outcomes if o.name == focus]
    if focused:
        summary |= {
            "focus_p50_seconds": round(statistics.median(focused), 3),
            "focus_p95_seconds": round(percentile(focused, 95), 3),
        }
    return summary


def load_test(
    app: AppProcess,
    files: list[Path],
    expected: dict[str, dict | str],
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


def single_answers(url: str, files: list[Path], expect: dict[str, str], model: str) -> dict[str, dict | str]:
    """Each file's answer when sent alone (``"error"`` for files expected to be refused)."""
    client = _client(url)
    answers: dict[str, dict | str] = {}
    for path in files:
        if expect[path.name] == "error":
            answers[path.name] = "error"
            continue
        outcome = call(client, path, model)
        if outcome.result is None:
            raise MusicGenreError(f"{path.name} should classify but failed on its own: {outcome.error}")
        answers[path.name] = outcome.result
    return answers


def uploadable_corpus(folder: Path) -> tuple[list[Path], dict[str, str]]:
    """The bad-input corpus minus what no upload can be (a directory): files and their expected outcome."""
    from musicgenre.bad_inputs import write_corpus

    cases = [(c, p) for c, p in write_corpus(folder) if p.is_file()]
    return [p for _, p in cases], {p.name: c.expect for c, p in cases}


def run_load_benchmark(
    app_script: Path,
    folder: Path,
    clip: Path,
    clients: int = 8,
    per_client: int = 10,
    bursts: int = 3,
    model: str = "all",
    app_args: tuple[str, ...] = (),
) -> dict:
    """Launch the app, time its first answer on ``clip``, then send ``bursts`` mixed bursts.

    Half the requests are ``clip`` (a real 30 s recording), half the bad-input corpus.
    """
    import os
    import platform

    corpus, expect = uploadable_corpus(folder / "corpus")
    files = [f for pair in zip([clip] * len(corpus), corpus, strict=True) for f in pair]
    expect[clip.name] = "predict"
    app = launch_app(app_script, list(app_args), folder / "server.log")
    try:
        cold = first_answer_seconds(app, clip, model)
        expected = single_answers(app.url, [clip, *corpus], expect, model)
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
        "corpus_files": len(corpus),
        "clients": clients,
        "requests_per_client": per_client,
        "server_rss_mb_before_bursts": round(idle_mb, 1),
        "bursts": results,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
