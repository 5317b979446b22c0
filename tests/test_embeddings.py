"""`musicgenre embed` and `predict --out x.parquet`: tables of a collection's backbone embeddings and predictions,
in the Hugging Face datasets Parquet format, resumable, with unreadable files listed; and an embedding table as the
probe's training data. Real clips and the shipped backbone, in-process CLI calls."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_audio

from musicgenre.cli import main


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Six short synthetic clips in genre folders, and a file that is not audio."""
    root = tmp_path_factory.mktemp("collection")
    for k, genre in enumerate(("jazz", "rock")):
        (root / genre).mkdir()
        for i in range(3):
            write_audio(root / genre / f"{genre}.0000{i}.wav", seconds=4.0 + i, seed=i + 10 * k)
    (root / "rock" / "rock.00009.wav").write_bytes(b"RIFF, but not a WAV file")
    return root


def _table(path):
    import pyarrow.parquet as pq

    return pq.read_table(path)


def test_embedding_rows_are_the_backbones_patch_means_and_load_with_datasets(folder, tmp_path, capsys):
    from datasets import load_dataset

    from musicgenre.audio.io import load_audio
    from musicgenre.models.musicnn import SAMPLE_RATE, clip_embedding, load_backbone

    out = tmp_path / "emb.parquet"
    assert main(["embed", str(folder), "--out", str(out), "--layer", "penultimate", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "6 files added, 0 already present, 1 unreadable" in err and "rock.00009.wav" in err
    ds = load_dataset("parquet", data_files=str(out), split="train")
    assert ds.features["embedding"].length == 200 and ds.features["embedding"].feature.dtype == "float32"
    assert [r["label"] for r in ds] == ["jazz"] * 3 + ["rock"] * 3
    assert [r["track"] for r in ds][:2] == ["jazz.00000", "jazz.00001"]
    backbone = load_backbone()
    for row in ds:
        per_patch = backbone.analyse(load_audio(row["path"], sr=SAMPLE_RATE).samples)
        assert row["patches"] == len(per_patch["tags"]) and row["seconds"] == pytest.approx(4.0, abs=2.01)
        np.testing.assert_array_equal(np.float32(row["embedding"]), clip_embedding(per_patch, "penultimate"))


def test_an_embedding_table_resumes_and_refuses_other_settings(folder, tmp_path, capsys):
    whole, part = tmp_path / "whole.parquet", tmp_path / "part.parquet"
    files = sorted(map(str, folder.rglob("*.0000[0-2].wav")))
    assert main(["embed", *files, "--out", str(whole), "--no-progress"]) == 0
    assert main(["embed", *files[:2], "--out", str(part), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["embed", *files, "--out", str(part), "--no-progress"]) == 0  # as after an interruption
    assert "4 files added, 2 already present, 0 unreadable" in capsys.readouterr().err
    assert _table(part).equals(_table(whole))
    assert main(["embed", *files, "--out", str(part), "--layer", "max_pool", "--no-progress"]) == 2
    assert "made differently (layer 'mean_pool' -> 'max_pool')" in capsys.readouterr().err
    assert _table(part).equals(_table(whole))  # untouched
    assert main(["embed", files[0], "--out", str(tmp_path / "emb.csv")]) == 2
    assert "name it *.parquet" in capsys.readouterr().err


def test_an_embedding_table_is_the_probes_training_data(mini_clips, tmp_path):
    """The study's own embeddings of the same clips, through the table: the same matrix, bit for bit."""
    from musicgenre.families.probe.train import ProbeSettings, embed_folder, embedded_table
    from musicgenre.models.embeddings import EmbeddingSettings, embed_inputs

    data_dir = tmp_path / "mini"
    for genre in ("blues", "metal"):
        (data_dir / genre).mkdir(parents=True)
        for clip in [c for c in mini_clips if c.parent.name == genre][:3]:
            (data_dir / genre / clip.name).symlink_to(clip)
    out = tmp_path / "joined.parquet"
    embed_inputs([str(data_dir)], out, EmbeddingSettings(layer="joined"), progress=False)
    data, made = embedded_table(out)
    assert made.layers == ["joined"] and made.backbone == "MSD_musicnn" and made.normalise
    study = embed_folder(data_dir, ProbeSettings(), cache_dir=None)
    for layer in ("joined",):
        np.testing.assert_array_equal(data.matrix(layer), study.matrix(layer))
    np.testing.assert_array_equal(data.labels, study.labels)
    np.testing.assert_array_equal(data.tracks, study.tracks)


def test_predictions_as_a_table_are_the_json_lines_and_resume(folder, tmp_path, capsys):
    from datasets import load_dataset

    files = sorted(map(str, folder.rglob("*.wav")))
    assert main(["predict", "--tags", "--num-tags", "3", *files]) == 1  # one file is not audio
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    out = tmp_path / "pred.parquet"
    assert main(["predict", "--tags", "--num-tags", "3", *files[:3], "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["predict", "--tags", "--num-tags", "3", *files, "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "3 files added, 3 already present, 1 unreadable" in err and "rock.00009.wav" in err
    rows = load_dataset("parquet", data_files=str(out), split="train").to_list()
    expected = [line for line in lines if "error" not in line]  # the JSON line's fields, quality and uncertain included
    assert [r["file"] for r in rows] == [e["file"] for e in expected]
    for row, line in zip(rows, expected, strict=True):
        assert row == {**line, "truncated": False}  # float64 columns: the JSON line's values exactly
    assert main(["predict", "--model", "bundled:shallow", files[0], "--out", str(out)]) == 2
    assert "made differently (model 'bundled' -> 'bundled:shallow'" in capsys.readouterr().err
