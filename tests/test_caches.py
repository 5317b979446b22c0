"""The one model-folder writer (``models.folder``) and the one on-disk cache of arrays computed from a file
(``util.cache``), and the caches built on it keeping their layout: entries written before still read back."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import write_audio

from musicgenre.models.folder import write_model_folder
from musicgenre.util.cache import NpzCache, file_digest


def test_a_model_folder_holds_the_files_the_config_after_meta_and_the_card(tmp_path):
    def write_files(tmp):
        (tmp / "weights.bin").write_bytes(b"w")
        return {"format": "f", "labels": ["a"], "note": "computed"}

    meta = {"note": "stale", "runtime": "onnxruntime", "trained": "today"}
    folder = write_model_folder(tmp_path / "m", write_files, meta=meta, card="# card\n")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "musicgenre.json", "weights.bin"]
    text = (folder / "musicgenre.json").read_text()
    assert text == json.dumps({"note": "computed", "trained": "today", "format": "f", "labels": ["a"]}, indent=2) + "\n"
    assert (folder / "README.md").read_text() == "# card\n"

    made = write_model_folder(
        folder, lambda tmp: {"name": "x"}, card=lambda config: f"# {config['name']}\n", config_name="c.json"
    )
    assert sorted(p.name for p in made.iterdir()) == ["README.md", "c.json"]  # replaced whole
    assert (made / "README.md").read_text() == "# x\n"


def test_a_failed_write_leaves_the_old_folder_and_no_temporary(tmp_path):
    folder = write_model_folder(tmp_path / "m", lambda tmp: {"format": "old"})

    def broken(tmp):
        (tmp / "half").write_bytes(b"")
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError, match="export failed"):
        write_model_folder(folder, broken, card="# new\n")
    assert json.loads((folder / "musicgenre.json").read_text()) == {"format": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_npz_cache_entries_round_trip_by_key(tmp_path):
    cache = NpzCache(tmp_path / "c")
    assert cache.get("abc", "clean") is None and not cache.has("abc", "clean")
    cache.put("abc", "clean", arrays={"x": np.arange(3.0), "y": np.eye(2, dtype=np.float32)})
    assert cache.entry("abc", "clean") == tmp_path / "c" / "abc" / "clean.npz" and cache.has("abc", "clean")
    got = cache.get("abc", "clean")
    assert sorted(got) == ["x", "y"] and got["y"].dtype == np.float32
    np.testing.assert_array_equal(got["x"], np.arange(3.0))
    assert [p.name for p in (tmp_path / "c" / "abc").iterdir()] == ["clean.npz"]  # no temporaries left
    path = write_audio(tmp_path / "a.wav", seconds=0.5)
    assert file_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_digest(path, 24) == file_digest(path)[:24]


def _backbone(calls: list):
    def analyse(y, normalise=True):
        calls.append(len(y))
        return {name: np.full((2, 3), float(len(calls)), np.float32) for name in ("tags", "penultimate", "mean_pool", "max_pool")}

    return SimpleNamespace(name="MSD_musicnn", config={"onnx_sha256": "ab" * 32}, runtime="onnxruntime", analyse=analyse)


def test_the_probes_embeddings_are_cached_by_content_where_they_always_were(tmp_path):
    from musicgenre.families.probe.train import PREPROCESS_VERSION, embed_file
    from musicgenre.models.musicnn import TARGET_RMS

    calls: list = []
    backbone, cache_dir = _backbone(calls), tmp_path / "cache"
    clip = write_audio(tmp_path / "a.wav", seconds=1.0)
    first = embed_file(clip, backbone, True, cache_dir)
    tag = f"MSD_musicnn-{'ab' * 6}-onnxruntime-p{PREPROCESS_VERSION}-rms{TARGET_RMS:g}"
    assert (cache_dir / tag / f"{hashlib.sha256(clip.read_bytes()).hexdigest()}.npz").is_file()  # the layout of before
    copy = tmp_path / "renamed.wav"
    copy.write_bytes(clip.read_bytes())
    again = embed_file(copy, backbone, True, cache_dir)
    assert len(calls) == 1 and all(np.array_equal(first[k], again[k]) for k in first)
    embed_file(clip, backbone, True, None)  # no cache: computed
    assert len(calls) == 2


def test_the_robust_views_are_cached_per_clip_and_view(tmp_path, monkeypatch):
    from musicgenre.families.probe import robust_views
    from musicgenre.models import musicnn

    calls: list = []
    backbone = _backbone(calls)
    monkeypatch.setattr(musicnn, "load_backbone", lambda *a, **k: backbone)
    monkeypatch.setattr(robust_views, "make_view", lambda y22, view, track: y22)
    monkeypatch.setattr(robust_views, "embed_audio", lambda y, b: b.analyse(y))
    clip = str(write_audio(tmp_path / "blues.00000.wav", seconds=1.0))
    folder = robust_views.cache_folder(tmp_path / "cache")
    assert robust_views._compute((clip, "blues.00000", ["clean", "wide0"], folder)) == (clip, {})
    assert sorted(p.name for p in (folder / file_digest(clip, 24)).iterdir()) == ["clean.npz", "wide0.npz"]
    assert robust_views._compute((clip, "blues.00000", ["clean", "wide0"], folder)) == (clip, {})
    assert len(calls) == 2  # the rerun computed nothing
    view = robust_views.load_view(tmp_path / "cache", clip, "wide0")
    np.testing.assert_array_equal(view["mean_pool"], np.full((2, 3), 2.0, np.float32))
    assert robust_views.load_view(tmp_path / "cache", clip, "narrow0") is None
