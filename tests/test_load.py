"""Concurrent gradio_client sessions on the real app, good and bad files mixed: every answer as if alone.

Every good request must get exactly the answer the same file gets alone, every bad one the app's
refusal in its own words, and the server must stay up and log no unexpected failure. It runs on
the session's app (the bundled models and the tiny HuBERT), already started by the other app tests.
Latency, and whether memory levels off over many bursts, need many more requests than correctness
does: benchmarks/load.py records them (p50/p95 and the server's RSS after each burst, in
benchmarks/load.json); nothing here asserts them.
"""

from __future__ import annotations

import pytest
from conftest import write_audio

from harness.load_benchmark import load_test, mixed_requests, single_answers

# More sessions than the app processes at once (its --concurrency_limit, 2), so requests queue; the burst
# sends every file of the mix (the clip alternating with the bad-input corpus) at least once, to a server that
# has just refused and answered each file alone (single_answers). One burst proves what a second one would.
BURSTS, CLIENTS, PER_CLIENT = 1, 8, 7


@pytest.mark.slow
def test_bursts_of_mixed_requests(app, tmp_path):
    clip = write_audio(tmp_path / "song.wav", seconds=10.0)
    files, refusals = mixed_requests(clip, tmp_path / "corpus")
    sent = {files[(i * PER_CLIENT + j) % len(files)] for i in range(CLIENTS) for j in range(PER_CLIENT)}  # as burst() sends
    assert sent == set(files), "a burst must send every file of the mix"
    log_start = len(app.log.read_text(errors="replace"))  # the session's server: judge only what this test logs
    expected = single_answers(app.url, sorted(set(files)), refusals, "all")

    bursts = load_test(app, files, expected, BURSTS, CLIENTS, PER_CLIENT, "all")

    for b in bursts:
        assert b["problems"] == [], b["problems"][:5]
        assert b["requests"] == CLIENTS * PER_CLIENT and b["server_alive"]
        assert 0 < b["refused_as_expected"] == b["requests"] - b["good_requests"] < b["requests"]
    assert "unexpected failure" not in app.log.read_text(errors="replace")[log_start:]
