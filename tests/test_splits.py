"""Protocols: the shipped filtered split, grouped folds that never split a track, artist-proxy runs."""

from __future__ import annotations

import numpy as np

from musicgenre.data.gtzan import find_audio_files, label_from_path, track_id
from musicgenre.data.splits import artist_proxy_groups, filtered_part, filtered_split, kfold
from musicgenre.features.table import load_feature_table


def test_filtered_split_is_shipped_and_disjoint():
    parts = filtered_split()
    assert {k: len(v) for k, v in parts.items()} == {"train": 443, "valid": 197, "test": 290}
    assert not (parts["train"] & parts["valid"]) and not (parts["train"] & parts["test"]) and not (parts["valid"] & parts["test"])
    assert all(t.split(".")[0] in label_from_path(f"{t}.wav") for t in parts["train"])


def test_filtered_split_lists_match_shared_copy(shared_data):
    for part, ids in filtered_split().items():
        lines = (shared_data / "splits" / f"gtzan_filtered_{part}.txt").read_text().split()
        assert {track_id(x) for x in lines} == ids


def test_parts_come_from_the_lists_not_from_presence(shared_data):
    table = load_feature_table(shared_data / "features_30_sec.csv")
    part = filtered_part(table["track"])
    assert (part == "test").sum() == 0  # the shared table holds test rows back
    assert set(part) == {"train", "valid", ""}  # "" = faulty clips the split leaves out
    assert filtered_part(["blues.00012", "blues.00029", "blues.00000"]).tolist() == ["test", "train", "valid"]


def test_track_ids():
    assert track_id("blues.00000.wav") == "blues.00000"
    assert track_id("blues.00000.3.wav") == "blues.00000"
    assert track_id("genres/jazz/jazz.00054.au") == "jazz.00054"


def test_grouped_folds_never_split_a_track():
    tracks = np.repeat([f"{g}.{i:05d}" for g in ("rock", "jazz", "pop") for i in range(6)], 10)
    labels = np.array([t.split(".")[0] for t in tracks])
    for train, test in kfold("grouped", labels, tracks, 5, seed=0):
        assert not set(tracks[train]) & set(tracks[test])
    leaky = [bool(set(tracks[tr]) & set(tracks[te])) for tr, te in kfold("random", labels, tracks, 5, seed=0)]
    assert any(leaky)  # why "random" is called leaky for segments


def test_artist_proxy_groups_are_runs_of_consecutive_tracks():
    groups = artist_proxy_groups(["rock.00001", "rock.00002", "rock.00005", "jazz.00003", "rock.00003", "jazz.00004"])
    assert groups[0] == groups[1] == groups[4]  # rock 1-3
    assert groups[2] != groups[0]  # rock 5 starts a new run
    assert groups[3] == groups[5] and groups[3] != groups[0]


def test_dataset_layouts(tmp_path):
    for layout in ("genres_original", "genres", "Data/genres_original"):
        root = tmp_path / layout.replace("/", "_")
        for genre in ("blues", "rock"):
            (root / layout / genre).mkdir(parents=True)
            ext = ".au" if layout == "genres" else ".wav"
            (root / layout / genre / f"{genre}.00000{ext}").write_bytes(b"x")
        (root / "README.txt").write_text("not audio")
        assert [p.name for p in find_audio_files([root])] in (
            ["blues.00000.wav", "rock.00000.wav"],
            ["blues.00000.au", "rock.00000.au"],
        )
