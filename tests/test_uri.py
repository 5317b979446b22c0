"""Inputs named by URIs (``util.uri``): a collection served on 127.0.0.1 by a real HTTP server and by an S3 server
(moto's, the S3 API that boto3, s3fs and the AWS SDKs speak; AWS itself cannot be reached here), ``file://`` URIs,
and lists of paths at a URI. Features, predictions and embeddings must be the local ones; missing remote files are
listed, not fatal."""

from __future__ import annotations

import functools
import http.server
import json
import threading

import pytest
from conftest import write_audio

from musicgenre.cli import main

pytest.importorskip("upath", reason="URIs need the scale extra: pip install -e '.[scale]'")
pytest.importorskip("aiohttp", reason="fsspec's HTTP filesystem needs aiohttp (the scale extra brings it)")


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """Four clips in genre folders, a .txt list with relative paths (one of them missing) and a Parquet list."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("served")
    names = []
    for k, genre in enumerate(("blues", "pop")):
        (root / genre).mkdir()
        for i in range(2):
            write_audio(root / genre / f"{genre}.0000{i}.wav", seconds=4.0, seed=i + 10 * k)
            names.append(f"{genre}/{genre}.0000{i}.wav")
    (root / "list.txt").write_text("# the collection\n" + "\n".join(names) + "\npop/pop.00009.wav\n")
    pq.write_table(pa.table({"path": names}), root / "list.parquet")
    return root, names


@pytest.fixture(scope="module")
def server(collection):
    """A real HTTP file server for the collection's folder, on a free port of 127.0.0.1."""
    root, _ = collection
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *a, **k: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_predictions_of_files_listed_at_a_url_are_the_local_ones(collection, server, capsys):
    root, names = collection
    assert main(["predict", *(str(root / n) for n in names)]) == 0
    local = _lines(capsys)
    assert main(["predict", f"{server}/list.txt"]) == 1  # the list names one file the server does not have
    remote = _lines(capsys)
    assert [line["file"] for line in remote] == [f"{server}/{n}" for n in [*names, "pop/pop.00009.wav"]]
    assert remote[-1]["error"] == f"pop.00009.wav: no such file ({server}/pop/pop.00009.wav)"
    for mine, theirs in zip(local, remote[:-1], strict=True):
        assert {**theirs, "file": mine["file"]} == mine  # the same bytes decoded: the same numbers exactly
    assert main(["predict", f"{server}/list.parquet"]) == 0
    assert [line["genre"] for line in _lines(capsys)] == [line["genre"] for line in local]


def test_a_feature_table_of_a_remote_folder_is_the_local_folders(collection, server, tmp_path, capsys):
    root, _ = collection
    local, remote = tmp_path / "local.csv", tmp_path / "remote.csv"
    assert main(["features", str(root), "--out", str(local), "--workers", "1", "--no-progress"]) == 0
    assert main(["features", f"{server}/", "--out", str(remote), "--workers", "2", "--no-progress"]) == 0
    assert "4 files added, 0 already present, 0 unreadable" in capsys.readouterr().err
    assert remote.read_bytes() == local.read_bytes()  # labels from the URIs' folders, rows named by file name


def test_file_uris_are_local_paths(collection, tmp_path):
    import pyarrow.parquet as pq

    root, names = collection
    local, uris = tmp_path / "local.parquet", tmp_path / "uris.parquet"
    assert main(["embed", *(str(root / n) for n in names), "--out", str(local), "--no-progress"]) == 0
    assert main(["embed", *((root / n).as_uri() for n in names), "--out", str(uris), "--no-progress"]) == 0
    assert pq.read_table(uris).equals(pq.read_table(local))


def test_a_filesystem_whose_package_is_missing_is_a_clear_error(capsys):
    """gs:// without gcsfs: one line saying what is missing, before any work (every file there would fail alike)."""
    import importlib.util

    from musicgenre.errors import DataError
    from musicgenre.util.uri import to_path

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here, so gs:// opens")
    with pytest.raises(DataError, match=r"gs://bucket/a.wav: cannot open this filesystem \(.*gcsfs"):
        to_path("gs://bucket/a.wav")
    assert main(["predict", "gs://bucket/a.wav"]) == 2
    assert "cannot open this filesystem" in capsys.readouterr().err


@pytest.fixture(scope="module")
def s3_bucket(collection):
    """An S3 server on a free port of 127.0.0.1 (``moto_server``) holding the collection in ``s3://music/``;
    s3fs is pointed at it through fsspec's configuration, as a user points it at their storage."""
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    pytest.importorskip("s3fs", reason="s3:// needs s3fs (in the dev extra)")
    boto3 = pytest.importorskip("boto3", reason="the S3 server test needs moto[server] (in the dev extra)")
    server = Path(sys.executable).with_name("moto_server")
    if not server.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    import fsspec.config

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    fsspec.config.conf["s3"] = {"endpoint_url": endpoint}
    try:
        client = boto3.client("s3", endpoint_url=endpoint)
        for _ in range(100):
            try:
                client.create_bucket(Bucket="music")
                break
            except Exception:  # not listening yet
                time.sleep(0.1)
        root, _ = collection
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            client.upload_file(str(f), "music", f.relative_to(root).as_posix())
        yield "s3://music"
    finally:
        fsspec.config.conf.pop("s3", None)
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        proc.terminate()
        proc.wait(timeout=30)


def test_a_collection_in_s3_gives_the_local_features_and_predictions(collection, s3_bucket, tmp_path, capsys):
    root, names = collection
    local, remote = tmp_path / "local.csv", tmp_path / "s3.csv"
    assert main(["features", str(root), "--out", str(local), "--workers", "1", "--no-progress"]) == 0
    assert main(["features", f"{s3_bucket}/", "--out", str(remote), "--workers", "2", "--no-progress"]) == 0
    assert "4 files added, 0 already present, 0 unreadable" in capsys.readouterr().err
    assert remote.read_bytes() == local.read_bytes()
    assert main(["predict", *(str(root / n) for n in names)]) == 0
    expected = _lines(capsys)
    assert main(["predict", f"{s3_bucket}/list.txt"]) == 1  # the list names a key the bucket does not have
    lines = _lines(capsys)
    assert lines[-1]["error"] == f"pop.00009.wav: no such file ({s3_bucket}/pop/pop.00009.wav)"
    assert [{**line, "file": mine["file"]} for line, mine in zip(lines, expected, strict=False)] == expected
