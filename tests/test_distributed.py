"""`musicgenre features --ray`, `embed --ray` and `predict --ray` on a real Ray cluster on 127.0.0.1: a head and one more worker
node, started with `ray start` as a user would, one CPU each. The rows must be the local process pool's, byte for
byte, and the predictions the local ones within 1e-6; unreadable files are listed; a table half done is resumed;
a worker killed mid-run still leaves every file exactly once."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, write_audio

pytest.importorskip("ray", reason="the Ray tests need the scale extra: pip install -e '.[scale]'")
RAY = Path(sys.executable).with_name("ray")
pytestmark = pytest.mark.slow  # a two-node Ray cluster starts and stops around the module (~15 s): not for the quick loop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Ray 2.5x's clusters require a token (as a user's would): one for this cluster, given to every process.
TOKEN_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The address of a two-node Ray cluster on loopback (stopped afterwards)."""
    from musicgenre.testing.ray_nodes import ray_nodes

    port, temp = _free_port(), tmp_path_factory.mktemp("ray")
    address, common = f"127.0.0.1:{port}", ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    head = ["--head", "--port", str(port), "--temp-dir", str(temp), "--include-dashboard", "false", *common]
    with ray_nodes(str(RAY), [head, ["--address", address, *common]], {**os.environ, **TOKEN_ENV}, temp):
        yield address


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    for genre in ("jazz", "rock"):
        (folder / genre).mkdir()
    return [
        write_audio(folder / g / f"{g}.0000{i}.wav", seconds=6.0, seed=i + 10 * k)
        for k, g in enumerate(("jazz", "rock"))
        for i in range(3)
    ]


def _musicgenre(*args: str, **kwargs) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "musicgenre", *args]
    env = {**os.environ, **TOKEN_ENV}
    env.pop("RAY_ADDRESS", None)
    env.pop("MUSICGENRE_RAY_ENGINE", None)  # the default engine, unless a test asks for another with --ray-engine
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _features(*args: str, **kwargs) -> subprocess.Popen:
    return _musicgenre("features", "--no-progress", *args, **kwargs)


def _run(*args: str, engine: str = "") -> str:
    proc = _features(*(["--ray-engine", engine] if engine else []), *args)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    return err


def _kill_one_mid_run(proc: subprocess.Popen, title: str) -> int:
    """SIGKILL the first Ray worker process whose title contains ``title`` while ``proc`` runs; its pid."""
    import psutil

    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        for p in psutil.process_iter(["pid", "cmdline"]):
            if any(title in part for part in (p.info["cmdline"] or [])):
                os.kill(p.info["pid"], signal.SIGKILL)
                return p.info["pid"]
        time.sleep(0.05)
    raise AssertionError(f"no Ray worker titled {title} was seen running")


@pytest.fixture(scope="module")
def local_table(clips, tmp_path_factory) -> Path:
    """What the local process pool writes for the same files."""
    out = tmp_path_factory.mktemp("local") / "local.csv"
    _run("--workers", "2", "--out", str(out), *map(str, clips))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["", "data"])  # Ray core tasks (the default), and Ray Data's map_batches
def test_rows_on_the_cluster_are_the_local_pools_and_a_table_half_done_is_resumed(cluster, clips, local_table, tmp_path, engine):
    out = tmp_path / "cluster.csv"
    _run("--workers", "2", "--out", str(out), *map(str, clips[:2]))  # half done, locally
    broken = tmp_path / "jazz.00009.wav"
    broken.write_bytes(b"RIFF, but not a WAV file")
    err = _run("--out", str(out), "--ray", cluster, *map(str, clips), str(broken), engine=engine)
    assert f"{len(clips) - 2} files added, 2 already present, 1 unreadable" in err, err[-3000:]
    assert f"unreadable: {broken}" in err
    assert out.read_bytes() == local_table.read_bytes()


@pytest.mark.slow
def test_a_worker_killed_mid_run_still_leaves_every_file_exactly_once(cluster, clips, local_table, tmp_path):
    out = tmp_path / "killed.csv"
    proc = _features("--ray", cluster, "--out", str(out), *map(str, clips))
    _kill_one_mid_run(proc, "ray::_extract")  # while it extracts a file
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    assert f"{len(clips)} files added, 0 already present, 0 unreadable" in err
    assert out.read_bytes() == local_table.read_bytes()  # each file once, in order, with the same values


@pytest.mark.slow
def test_predictions_on_the_cluster_are_the_local_ones(cluster, clips, tmp_path):
    """The default model (the pretrained probe) with tags, and a file that is not audio: the same lines, in order."""
    broken = tmp_path / "notes.wav"
    broken.write_text("not audio")
    files = [*map(str, clips[:4]), str(broken)]
    outputs = []
    for where in ([], ["--ray", cluster]):
        proc = _musicgenre("predict", "--tags", *where, *files)
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 1, err[-3000:]  # as locally: one file could not be classified
        outputs.append([json.loads(line) for line in out.splitlines()])
    local, remote = outputs
    assert [line["file"] for line in remote] == files
    assert remote[-1] == local[-1] and "error" in remote[-1]
    for mine, theirs in zip(local[:-1], remote[:-1], strict=True):
        assert mine["genre"] == theirs["genre"] and [t["tag"] for t in mine["tags"]] == [t["tag"] for t in theirs["tags"]]
        assert max(abs(mine["scores"][g] - theirs["scores"][g]) for g in mine["scores"]) < 1e-6


def test_tagging_on_the_cluster_writes_what_a_local_run_writes(cluster, clips, tmp_path):
    """``tag --write --ray``: actors analyse, the command's machine writes; the same genres and records as locally."""
    import shutil

    from musicgenre.tagging.formats import read_tags
    from musicgenre.tagging.names import Record

    written = []
    for where in ([], ["--ray", cluster]):
        folder = tmp_path / ("ray" if where else "local")
        folder.mkdir()
        copies = [shutil.copy(c, folder / c.name) for c in clips[:4]]
        proc = _musicgenre("tag", "--write", "--no-progress", "--journal", str(folder / "j.jsonl"), *where, str(folder))
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        written.append([(read_tags(c).genres, Record.decode(read_tags(c).record)) for c in copies])
    for (genres, record), (their_genres, theirs) in zip(*written, strict=True):
        assert genres == their_genres == record.genres == theirs.genres
        assert max(abs(record.scores[g] - theirs.scores[g]) for g in record.scores) <= 1e-3


def _embed(*args: str) -> tuple[int, str]:
    proc = _musicgenre("embed", "--no-progress", *args)
    _, err = proc.communicate(timeout=900)
    return proc.returncode, err


def _same_embeddings(a: Path, b: Path) -> None:
    """The same rows in the same order; the vectors within 1e-6 of the largest value (one ONNX thread per actor
    against every core locally)."""
    import numpy as np
    import pyarrow.parquet as pq

    mine, theirs = pq.read_table(a), pq.read_table(b)
    assert mine.drop_columns(["embedding"]).equals(theirs.drop_columns(["embedding"]))
    x, y = (np.asarray(t.column("embedding").to_pylist(), dtype=np.float32) for t in (mine, theirs))
    assert x.shape == y.shape and np.abs(x - y).max() <= 1e-6 * np.abs(x).max()


@pytest.fixture(scope="module")
def local_embeddings(clips, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "local.parquet"
    code, err = _embed("--out", str(out), *map(str, clips))
    assert code == 0, err[-3000:]
    return out


@pytest.mark.slow
def test_embeddings_on_the_cluster_are_the_local_ones_and_a_table_half_done_is_resumed(
    cluster, clips, local_embeddings, tmp_path
):
    out = tmp_path / "cluster.parquet"
    assert _embed("--out", str(out), *map(str, clips[:2]))[0] == 0  # half done, locally
    broken = tmp_path / "jazz.00009.wav"
    broken.write_bytes(b"RIFF, but not a WAV file")
    code, err = _embed("--out", str(out), "--ray", cluster, *map(str, clips), str(broken))
    assert code == 0 and f"{len(clips) - 2} files added, 2 already present, 1 unreadable" in err, err[-3000:]
    assert f"unreadable: {broken}" in err
    _same_embeddings(out, local_embeddings)


@pytest.mark.slow
def test_an_actor_killed_mid_run_still_leaves_every_file_embedded_once(cluster, clips, local_embeddings, tmp_path):
    """Ray restarts the actor that holds the backbone and retries its batch; the table has each file once."""
    out = tmp_path / "killed.parquet"
    proc = _musicgenre("embed", "--no-progress", "--ray", cluster, "--out", str(out), *map(str, clips))
    _kill_one_mid_run(proc, "ray::_EmbedActor")
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0 and f"{len(clips)} files added, 0 already present, 0 unreadable" in err, err[-3000:]
    _same_embeddings(out, local_embeddings)


@pytest.mark.slow
def test_a_prediction_table_on_the_cluster_is_the_local_one_even_when_an_actor_is_killed(cluster, clips, tmp_path):
    """One of the actors holding the model is killed mid-run: Ray restarts it and retries its call, and the table
    still has every file once, in order, with the local answer."""
    import pyarrow.parquet as pq

    tables = []
    for where in ([], ["--ray", cluster]):
        out = tmp_path / f"pred{len(tables)}.parquet"
        proc = _musicgenre("predict", "--tags", "--no-progress", "--out", str(out), *where, *map(str, clips[:4]))
        if where:
            _kill_one_mid_run(proc, "ray::_Predictor")
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        tables.append(pq.read_table(out).to_pylist())
    local, remote = tables
    assert [r["file"] for r in remote] == [r["file"] for r in local] == list(map(str, clips[:4]))
    for mine, theirs in zip(local, remote, strict=True):
        assert mine["genre"] == theirs["genre"] and [t["tag"] for t in mine["tags"]] == [t["tag"] for t in theirs["tags"]]
        assert max(abs(mine["scores"][g] - theirs["scores"][g]) for g in mine["scores"]) < 1e-6


@pytest.mark.slow
def test_a_cluster_that_refuses_the_connection_is_a_clear_error(cluster, clips, tmp_path):
    """Ray 2.5x clusters need the token: without it, the command ends with one line saying so, and writes nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["RAY_NUM_REDIS_GET_RETRIES"] = "2"  # Ray retries a refused connection once a second, 20 times by default
    cmd = [sys.executable, "-m", "musicgenre", "features", "--ray", cluster, "--out", str(tmp_path / "t.csv"), str(clips[0])]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and f"cannot reach the Ray cluster at {cluster}" in done.stderr, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]  # Ray itself may log the refusal above it
    assert last.startswith("musicgenre: error: cannot reach the Ray cluster") and not (tmp_path / "t.csv").exists()


CRASH_ON_B = """
import os, sys
from musicgenre.util.cluster import ClusterError, run_per_path

def crash_on_b(batch):  # defined in __main__, so Ray sends it to the workers by value
    if batch["path"][0] == "b":
        os._exit(1)
    return {"path": batch["path"], "out": [batch["path"][0].upper()]}

rows = run_per_path(["a", "b", "c"], crash_on_b, {}, sys.argv[1], 1)
print(next(rows))
try:
    next(rows)
except ClusterError as exc:
    print(exc)
"""


@pytest.mark.slow
def test_a_file_that_kills_its_worker_every_time_ends_the_run_with_a_clear_error(cluster):
    """Not retried for ever: after Ray's retries, one line naming the file (as three deaths of the local pool)."""
    env = {**os.environ, **TOKEN_ENV}
    done = subprocess.run(
        [sys.executable, "-c", CRASH_ON_B, cluster], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if "(raylet)" not in line]  # Ray reports each death too
    assert lines == ["{'path': 'a', 'out': 'A'}", "b: the Ray worker died on it 4 times (WorkerCrashedError)"]


def test_without_ray_the_flag_says_what_to_install(tmp_path, monkeypatch):
    from musicgenre.util import cluster as distributed

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(distributed.ClusterError, match=r"pip install 'musicgenre\[scale\]'"):
        distributed.connect("127.0.0.1:1")


def test_the_address_is_optional_before_the_inputs():
    from musicgenre.cli import _ray_address, build_parser

    args = build_parser().parse_args(["features", "--ray", "a.wav", "b.wav", "--out", "t.csv"])
    _ray_address(args)
    assert (args.ray, args.inputs) == ("", ["a.wav", "b.wav"])
    args = build_parser().parse_args(["features", "--ray", "10.0.0.5:6379", "a.wav", "--out", "t.csv"])
    _ray_address(args)
    assert (args.ray, args.inputs) == ("10.0.0.5:6379", ["a.wav"])
