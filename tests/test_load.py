"""A bounded load on the real app: 8 concurrent gradio_client sessions × 10 requests, good and bad files mixed.

Every good request must get exactly the answer the same file gets alone, every bad one the app's
refusal in its own words; the server must stay up, log no unexpected failure, and its memory must
level off over repeated bursts. Latency is recorded by benchmarks/load.py, never asserted here.
"""

from __future__ import annotations

import pytest
from conftest import ROOT, write_audio

from musicgenre.testing.app_process import launch_app
from musicgenre.testing.load_benchmark import load_test, mixed_requests, single_answers

BURSTS, CLIENTS, PER_CLIENT = 5, 8, 10
# RSS growth allowed from after burst 2 (the first bursts warm caches up) to after burst 5. Keeping each
# request's decoded audio would add ~330 MB (3 bursts × 40 clips of 30 s at 2.6 MB, plus the small good
# files). Measured in this configuration (benchmarks/load.json): +66 MB; RSS moves by up to ~50 MB
# between bursts. With glibc's default arenas instead of the app's cap: +225 MB.
LEAK_BUDGET_MB = 200


@pytest.fixture()
def bundled_app(tmp_path):
    """The app as benchmarks/load.py measures it: the bundled models only, in a fresh process."""
    app = launch_app(ROOT / "app.py", [], tmp_path / "server.log")
    yield app
    app.stop()


@pytest.mark.slow
def test_bursts_of_mixed_requests(bundled_app, tmp_path):
    app = bundled_app
    clip = write_audio(tmp_path / "song.wav", seconds=30.0)
    files, refusals = mixed_requests(clip, tmp_path / "corpus")
    expected = single_answers(app.url, sorted(set(files)), refusals, "all")

    bursts = load_test(app, files, expected, BURSTS, CLIENTS, PER_CLIENT, "all")

    for b in bursts:
        assert b["problems"] == [], b["problems"][:5]
        assert b["requests"] == CLIENTS * PER_CLIENT and b["server_alive"]
        assert 0 < b["refused_as_expected"] == b["requests"] - b["good_requests"] < b["requests"]
    assert "unexpected failure" not in app.log_tail(1_000_000)
    rss = [b["server_rss_mb"] for b in bursts]
    assert rss[-1] - rss[1] < LEAK_BUDGET_MB, rss
