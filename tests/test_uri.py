"""Inputs named by URIs (``util.uri``): a collection served by a real HTTP server on 127.0.0.1 (fsspec's HTTP
filesystem, standing in for object storage, which cannot exist here), ``file://`` URIs, and lists of paths at a
URI. Features, predictions and embeddings must be the local ones; missing remote files are listed, not fatal."""

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
    """s3:// without s3fs: one line saying what is missing, before any work (every file there would fail alike)."""
    import importlib.util

    from musicgenre.errors import DataError
    from musicgenre.util.uri import to_path

    if importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed here, so s3:// opens")
    with pytest.raises(DataError, match=r"s3://bucket/a.wav: cannot open this filesystem \(Install s3fs"):
        to_path("s3://bucket/a.wav")
    assert main(["predict", "s3://bucket/a.wav"]) == 2
    assert "cannot open this filesystem (Install s3fs to access S3)" in capsys.readouterr().err
