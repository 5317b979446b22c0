"""Shared test fixtures: real GTZAN data from ../shared/data when present, synthetic audio otherwise."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

# A suite started in the background (`nohup pytest &`) inherits SIGINT ignored, and so would every process the
# tests start: the Ctrl-C tests need it to interrupt, as it does in a terminal. A handler, unlike SIG_IGN, is
# reset to the default in the children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Bytecode is cached (Python's default) even where PYTHONDONTWRITEBYTECODE is set, as on the 2-core machine the
# durations record comes from: the suite starts many fresh Python processes (commands, scripts, workers), and each
# would otherwise compile musicgenre's modules from source again (~0.2 s for `musicgenre predict`). `__pycache__/` is
# git-ignored.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

# The Hub is unreachable in CI; without this, hub loaders retry for ~45 s before failing.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# ONNX exports and librosa's compiled code go to a fresh cache: every test run also exercises the first, cold
# start. The commands and apps the tests start read it from $MUSICGENRE_CACHE, as a user's do; in this process it
# is passed down (CACHE_ROOT), as the entry points pass theirs.
CACHE_ROOT = Path(tempfile.mkdtemp(prefix="musicgenre-cache-"))
os.environ["MUSICGENRE_CACHE"] = str(CACHE_ROOT)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from musicgenre.audio.example import example_clip  # noqa: E402
from musicgenre.data.gtzan import default_shared_data  # noqa: E402
from musicgenre.features import jitcache  # noqa: E402
from musicgenre.testing.app_process import AppProcess, start_app  # noqa: E402

# The test session is an entry point, as the CLI is: librosa's compiled code (some tests import librosa
# themselves) goes to that cache, set before anything imports numba (importing musicgenre sets nothing).
jitcache.configure(CACHE_ROOT)

# Property tests: derandomised in CI (repeatable); HYPOTHESIS_PROFILE=thorough searches ten times longer.
settings.register_profile(
    "ci", max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
settings.register_profile("thorough", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]
# The benchmarks' harness (benchmarks/harness), which the load test drives, importable as when a benchmark runs.
sys.path.append(str(ROOT / "benchmarks"))
SHARED = default_shared_data()
SR = 22050
UPLOAD_LIMIT = "8mb"  # the test server's --max_upload


DATA_FIXTURES = {"shared_data", "mini_clips", "gtzan_dir"}


_librosa_build: subprocess.Popen | None = None


def pytest_collection_finish(session) -> None:
    """Build librosa's compiled code in the session's cache in the background (one core, ~30 s) when a selected test
    needs it (the ``librosa`` marker), so that the tests before the first of them run meanwhile; that test then
    waits for the build on the cache's lock, as a second musicgenre command would. Then the other background starts;
    ``--collect-only`` starts nothing."""
    global _librosa_build
    if session.config.option.collectonly:
        return
    if any(item.get_closest_marker("librosa") for item in session.items):
        code = "from musicgenre.features import jitcache; jitcache.configure(); jitcache.ensure_ready()"
        _librosa_build = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _start_jit_scenarios(session)  # after the build has started: its race waits for that build
    _start_app(session)


_app_start: tuple[AppProcess, Path, Path] | None = None  # the server, its tiny HuBERT, their folder


def _start_app_process(hubert: Path, folder: Path) -> AppProcess:
    return start_app(ROOT / "app.py", ["--models", str(hubert), "--max_upload", UPLOAD_LIMIT], folder / "server.log")


def _start_app(session) -> None:
    """Start the session's app server (``app``) without waiting for it, when a selected test needs it: its ~12 s start
    (imports, models, the tiny HuBERT's ONNX export) then runs beside the tests that come before the first server test,
    which ``pytest_collection_modifyitems`` puts after all the others."""
    global _app_start
    if any("app" in getattr(item, "fixturenames", ()) for item in session.items):
        folder = Path(tempfile.mkdtemp(prefix="musicgenre-app-"))
        hubert = make_tiny_hubert(folder / "tiny-hubert")
        _app_start = _start_app_process(hubert, folder), hubert, folder


_jit_scenarios: tuple[subprocess.Popen, Path] | None = None


def _start_jit_scenarios(session) -> None:
    """tests/jit/scenarios.py in the background (after the librosa build has started: it waits for that build), when a
    selected test asks for ``jit_scenarios``: minutes of compilation on the cores other tests leave idle."""
    global _jit_scenarios
    if any("jit_scenarios" in getattr(item, "fixturenames", ()) for item in session.items):
        work = Path(tempfile.mkdtemp(prefix="musicgenre-jit-"))
        (work / "rock").mkdir()
        clips = [str(write_audio(work / "rock" / f"rock.0000{i}.wav", seconds=4.0, seed=i)) for i in range(3)]
        cmd = [sys.executable, str(ROOT / "tests" / "jit" / "scenarios.py"), str(work), *clips]
        log = open(work / "scenarios.log", "w")  # noqa: SIM115 - the process's output, read if it fails
        # Its own process group (killed as one), in the session's scheduling group: a new session would get a CPU share
        # of its own (Linux autogroups), whatever its nice value.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, process_group=0)
        _jit_scenarios = proc, work


@pytest.fixture(scope="session")
def jit_scenarios():
    """What tests/jit/scenarios.py recorded (started at the end of collection; waited for here). Its folder (~20 MB of
    caches) is removed afterwards unless a scenario failed."""
    import shutil

    if _jit_scenarios is None:
        pytest.fail("the jit scenarios were not started (pytest_collection_finish)")
    proc, work = _jit_scenarios
    proc.wait(timeout=1800)
    if not (work / "scenarios.json").is_file():
        pytest.fail(f"tests/jit/scenarios.py wrote no result: {(work / 'scenarios.log').read_text()[-3000:]}")
    result = json.loads((work / "scenarios.json").read_text())
    yield result
    if proc.returncode == 0:
        shutil.rmtree(work, ignore_errors=True)


def pytest_sessionfinish(session) -> None:
    if _app_start is not None:
        import shutil

        _app_start[0].stop()  # if its fixture never ran; stopping twice is harmless
        shutil.rmtree(_app_start[2], ignore_errors=True)
    if _librosa_build is not None:
        if _librosa_build.poll() is None:  # e.g. the session was cut short before any librosa test ran
            _librosa_build.kill()
        _librosa_build.communicate()
    if _jit_scenarios is not None and _jit_scenarios[0].poll() is None:  # its test did not run: stop it and its commands
        os.killpg(_jit_scenarios[0].pid, signal.SIGKILL)
        _jit_scenarios[0].wait()


def pytest_collection_modifyitems(items) -> None:
    """Mark every test that reads the shared data or falls back to synthetic clips without it, and run the modules
    that use the app server after the others (in their own order), while it starts in the background (``_start_app``).

    `.ci/run` runs the marked tests once more with the data pointed elsewhere, as a fresh clone without
    ../shared runs them: the ones that need it must skip and the fallbacks must pass.
    """
    for item in items:
        if DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.shared_data)
    server_modules = {item.module for item in items if "app" in getattr(item, "fixturenames", ())}
    items.sort(key=lambda item: getattr(item, "module", None) in server_modules)  # stable: every other order is kept


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED / "features_30_sec.csv").is_file():
        pytest.skip(f"real GTZAN data not found at {SHARED} (set MUSICGENRE_SHARED_DATA; see the README); these tests need it")
    return SHARED


@pytest.fixture(scope="session")
def mini_clips(shared_data: Path) -> list[Path]:
    clips = sorted((shared_data / "gtzan_mini").rglob("*.wav"))
    if not clips:
        pytest.skip(f"no GTZAN clips under {shared_data / 'gtzan_mini'}")
    return clips


@pytest.fixture(scope="session")
def three_per_genre(mini_clips, tmp_path_factory) -> Path:
    """A GTZAN folder of three real clips per genre (links to the shared ones): what the study scripts' tests read."""
    folder = tmp_path_factory.mktemp("three-per-genre")
    for genre in sorted({clip.parent.name for clip in mini_clips}):
        (folder / genre).mkdir()
        for clip in [c for c in mini_clips if c.parent.name == genre][:3]:
            (folder / genre / clip.name).symlink_to(clip)
    return folder


@pytest.fixture(scope="session")
def three_second_table(three_per_genre, tmp_path_factory) -> Path:
    """The 3-second feature table of ``three_per_genre``, extracted once: a script's tests copy it into their work folder,
    where the script's own extraction resumes it (rows are named by file, so nothing is left to do)."""
    from musicgenre.features.table import extract_table

    out = tmp_path_factory.mktemp("three-second") / "features_3_sec.csv"
    files = sorted(three_per_genre.rglob("*.wav"))
    report = extract_table(files, out, 3.0, workers=2, progress=False)
    assert report.written == len(files) and not report.failed
    return out


def make_tiny_hubert(folder: Path) -> Path:
    """A randomly initialised, tiny HuBERT genre classifier saved in ``folder`` like a fine-tuned checkpoint.

    No pretrained DistilHuBERT weights can be downloaded here; this exercises exactly the code
    path a real checkpoint takes (config with id2label, feature extractor, safetensors weights).
    """
    from transformers import HubertConfig, HubertForSequenceClassification, Wav2Vec2FeatureExtractor

    from musicgenre.data.gtzan import GENRES

    config = HubertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32),
        conv_stride=(10, 8, 4),
        conv_kernel=(10, 8, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        classifier_proj_size=16,
        feat_extract_norm="group",
        id2label=dict(enumerate(GENRES)),
        label2id={g: i for i, g in enumerate(GENRES)},
    )
    import torch

    torch.manual_seed(0)
    with contextlib.redirect_stderr(io.StringIO()):  # its progress bar, printed outside any test when the app starts
        HubertForSequenceClassification(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_hubert(tmp_path_factory) -> Path:
    """``make_tiny_hubert``: the one the app server was started with, if it was (``_start_app``)."""
    if _app_start is not None:
        return _app_start[1]
    return make_tiny_hubert(tmp_path_factory.mktemp("tiny-hubert"))


def synth(seconds: float, sr: int = SR, seed: int = 0, channels: int = 1) -> np.ndarray:
    """The library's example clip (``(n, channels)`` with a different gain per channel if ``channels`` > 1)."""
    return example_clip(seconds, sr, seed, channels)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``musicgenre ARGS`` in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "musicgenre", *args], capture_output=True, text=True, cwd=ROOT, timeout=600)


def write_audio(path: Path, seconds: float = 5.0, sr: int = SR, seed: int = 0, channels: int = 1, **kwargs) -> Path:
    sf.write(path, synth(seconds, sr, seed, channels), sr, **kwargs)
    return path


@pytest.fixture(scope="session")
def app(tiny_hubert, tmp_path_factory):
    """One real app server for the whole session, on 127.0.0.1, offline: the bundled models and the tiny HuBERT. It was
    started at the end of collection (``_start_app``); this waits for its page."""
    from musicgenre.errors import MusicGenreError

    running = _app_start[0] if _app_start is not None else _start_app_process(tiny_hubert, tmp_path_factory.mktemp("app"))
    try:
        running.wait_ready(timeout=180.0)
    except MusicGenreError as exc:
        pytest.fail(str(exc))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def server(app) -> str:
    return app.url


SENTENCES = (
    "The quick brown fox jumps over the lazy dog. Yesterday afternoon, we walked to the market and bought "
    "some fresh bread, apples and cheese. My sister said that the weather would be better next week, so we "
    "might go to the beach. Please remember to call your grandmother on Sunday evening."
)


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> np.ndarray:
    """About 15 s of real (synthesised) speech at 22,050 Hz, spoken by espeak-ng."""
    import shutil

    from musicgenre.audio.io import load_audio

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: no real speech to test the speech detector on (apt install espeak-ng)")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), SENTENCES], check=True, capture_output=True, timeout=60)
    return load_audio(path, sr=22050).samples.astype(np.float64)
