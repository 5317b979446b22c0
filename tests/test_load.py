"""A bounded load on the real app: 8 concurrent gradio_client sessions × 10 requests, good and bad files mixed.

Every good request must get exactly the answer the same file gets alone, every bad one an error;
the server must stay up, and its memory must level off over repeated bursts. Latency is recorded
by benchmarks/load.py, never asserted here.
"""

from __future__ import annotations

import pytest
from conftest import write_audio

from musicgenre.load_benchmark import load_test, single_answers, uploadable_corpus

BURSTS, CLIENTS, PER_CLIENT = 4, 8, 10
LEAK_BUDGET_MB = 200  # between bursts 2 and 4 (160 requests); keeping each request's 30 s of audio would add ~420 MB


@pytest.mark.slow
def test_bursts_of_mixed_requests(app, tmp_path):
    corpus, expect = uploadable_corpus(tmp_path / "corpus")
    clip = write_audio(tmp_path / "song.wav", seconds=30.0)
    expect[clip.name] = "predict"
    files = [f for pair in zip([clip] * len(corpus), corpus, strict=True) for f in pair]
    expected = single_answers(app.url, [clip, *corpus], expect, "all")

    bursts = load_test(app, files, expected, BURSTS, CLIENTS, PER_CLIENT, "all")

    bad = sum(1 for f in files if expect[f.name] == "error")
    for b in bursts:
        assert b["problems"] == [], b["problems"][:5]
        assert b["requests"] == CLIENTS * PER_CLIENT and b["server_alive"]
        assert b["refused_as_expected"] == b["requests"] - b["good_requests"] > 0
    assert 0 < bad < len(files)
    growth = bursts[-1]["server_rss_mb"] - bursts[1]["server_rss_mb"]
    assert growth < LEAK_BUDGET_MB, [b["server_rss_mb"] for b in bursts]
