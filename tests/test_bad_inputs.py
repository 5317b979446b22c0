"""The generated bad-input corpus (musicgenre.testing.bad_inputs) through the library, the command line and the app.

Every case must end in a valid prediction or the project's clear AudioError naming the file,
never a crash, a hang or unbounded memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tracemalloc

import pytest
from conftest import ROOT, SR, write_audio

from musicgenre.audio.io import load_audio
from musicgenre.data.gtzan import GENRES
from musicgenre.errors import AudioError
from musicgenre.families import resolve_model
from musicgenre.models.predict import predict_file
from musicgenre.testing.bad_inputs import write_corpus, write_long_sparse_wav


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("bad inputs"))


def _valid(scores: dict[str, float], genre: str) -> None:
    assert list(scores) == list(GENRES)
    assert all(0.0 <= p <= 1.0 for p in scores.values())
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert genre == max(scores, key=scores.get)


@pytest.fixture(scope="module")
def models():
    return {spec: resolve_model(spec) for spec in ("bundled", "bundled:shallow", "bundled:cnn")}


def test_library(corpus, models):
    for case, path in corpus:
        for kind, model in models.items():
            if case.expect == "error":
                with pytest.raises(AudioError, match=case.match) as info:
                    predict_file(model, path)
                assert path.name in str(info.value) and str(path.parent) not in str(info.value), case.name
                continue
            out = predict_file(model, path)
            _valid(out["scores"], out["genre"])
            assert "truncated" not in out, (case.name, kind)
            if case.uncertain:
                assert out["uncertain"] is True and any(out["quality"]["notes"]), (case.name, kind, out["quality"])
        if case.expect == "predict" and case.seconds:
            assert load_audio(path).seconds == pytest.approx(case.seconds, abs=0.01), case.name


def test_command_line(corpus):
    """One `musicgenre predict` over the whole corpus: a JSON line per file, in order, exit status 1."""
    paths = [str(path) for _, path in corpus]
    result = subprocess.run(
        [sys.executable, "-m", "musicgenre", "predict", *paths], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == paths
    for (case, path), line in zip(corpus, lines, strict=True):
        if case.expect == "error":
            assert case.match in line["error"] and path.name in line["error"], line
            assert "unexpected" not in line["error"]
        else:
            _valid(line["scores"], line["genre"])
            assert line["uncertain"] is True or not case.uncertain, (case.name, line)


def test_app(corpus, app):
    """Every file a browser could upload (not the directory), then a good file: the server is still serving."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from musicgenre.serving.service import BUNDLED_NAME

    client = Client(app.url, verbose=False)
    for case, path in corpus:
        if not path.is_file():
            continue
        if case.expect == "error":
            with pytest.raises(AppError, match=case.match) as info:
                client.predict(handle_file(str(path)), BUNDLED_NAME, api_name="/predict")
            assert path.name in str(info.value), case.name
            continue
        out = client.predict(handle_file(str(path)), "all", api_name="/predict")
        assert len(out["results"]) == 4, case.name  # the three bundled models and the tiny HuBERT
        for r in out["results"]:
            _valid(r["scores"], r["genre"])
            assert r["uncertain"] is True or not case.uncertain, (case.name, r)
        assert out["quality"]["notes"] or not case.uncertain, case.name
        if case.seconds:
            assert out["duration_seconds"] == pytest.approx(case.seconds, abs=0.01), case.name
    assert app.alive()
    assert "Traceback" not in app.log_tail(100_000)


@pytest.mark.parametrize(("hours", "rate", "max_seconds"), [(10, 22050, 60), (3, 96000, 300)])
def test_long_file_decoding_costs_only_what_is_kept(tmp_path, hours, rate, max_seconds):
    """A real multi-hour WAV (sparse on disk): memory follows the kept part at the output rate, not the file."""
    long = write_long_sparse_wav(tmp_path / "long.wav", hours=hours, rate=rate)
    load_audio(long, sr=SR, max_seconds=5)  # imports and first-call set-up, outside the measurement
    tracemalloc.start()
    try:
        audio = load_audio(long, sr=SR, max_seconds=max_seconds)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert audio.truncated and audio.seconds == max_seconds and audio.original_seconds == pytest.approx(hours * 3600)
    kept = max_seconds * SR * 4  # float32 bytes of what is returned
    assert peak < 3 * kept + 8e6  # not max_seconds at the file's rate, let alone the whole file


def test_ten_hour_file_through_the_command_line(tmp_path):
    """The command line decodes only --max-seconds of a 10-hour file: its peak memory is a short file's."""
    long = write_long_sparse_wav(tmp_path / "ten hours.wav", hours=10)

    def peak_rss_mb(path) -> tuple[float, dict]:
        cmd = [sys.executable, "-m", "musicgenre", "predict", "--max-seconds", "60", str(path)]
        with open(tmp_path / "out.json", "w+") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.DEVNULL)
            watchdog = threading.Timer(600, proc.kill)  # a hang fails the test instead of stalling it
            watchdog.start()
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak memory
            watchdog.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            return usage.ru_maxrss / 1024, json.loads(out.read())

    short_mb, _ = peak_rss_mb(write_audio(tmp_path / "short.wav", seconds=60.0))
    long_mb, line = peak_rss_mb(long)
    assert line["truncated"] is True and line["windows"] == 2
    _valid(line["scores"], line["genre"])
    assert long_mb - short_mb < 200  # the same 60 s analysed; a full decode would add gigabytes
