"""The `musicgenre` command as a user runs it: predict, evaluate, demo, help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, SR, run_cli, write_audio

from musicgenre.data.gtzan import GENRES
from musicgenre.data.splits import filtered_part
from musicgenre.families import resolve_model
from musicgenre.families.shallow.folder import ShallowModel, save_model
from musicgenre.families.shallow.model import make_pipeline
from musicgenre.families.shallow.train import FeatureSet
from musicgenre.features.table import load_feature_table
from musicgenre.models.predict import predict_array, predict_file


def _check_scores(line: dict) -> None:
    assert list(line["scores"]) == list(GENRES)
    assert sum(line["scores"].values()) == pytest.approx(1.0, abs=1e-6)
    assert line["genre"] == max(line["scores"], key=line["scores"].get)


def test_predict_real_long_and_bad_files(tmp_path, mini_clips):
    real = next(c for c in mini_clips if c.name == "metal.00002.wav")
    long = write_audio(tmp_path / "long song.flac", seconds=75.0)  # 3 windows: 30 + 30 + 15 s
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"ID3" + bytes(300))
    huge = tmp_path / "huge.wav"
    sf.write(huge, np.full(SR * 3, 1e20, dtype=np.float32), SR, subtype="FLOAT")
    result = run_cli("predict", str(real), str(bad), str(huge), str(long))
    assert result.returncode == 1  # files failed, after the others were done
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["file"] for x in lines] == [str(real), str(bad), str(huge), str(long)]
    assert "out of range" in lines[2]["error"]
    lines.pop(2)
    _check_scores(lines[0])
    assert lines[0]["windows"] == 1
    assert "broken.mp3" in lines[1]["error"] and "scores" not in lines[1]
    _check_scores(lines[2])
    assert lines[2]["windows"] == 3


def test_predict_real_clips_mostly_right(mini_clips):
    """The bundled model saw these tracks' public rows in training (the shared clips are filtered train/valid
    tracks), so this checks the audio -> features -> model chain end to end, not generalisation."""
    clips = mini_clips[::5]
    result = run_cli("predict", *map(str, clips))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    right = sum(line["genre"] == clip.parent.name for line, clip in zip(lines, clips, strict=True))
    assert right >= 0.6 * len(clips)


def test_truncation_is_reported(tmp_path):
    path = write_audio(tmp_path / "a.wav", seconds=12.0)
    result = run_cli("predict", "--max-seconds", "5", str(path))
    line = json.loads(result.stdout)
    assert result.returncode == 0 and line["truncated"] is True and line["windows"] == 1


def test_predict_in_memory_equals_predict_file(mini_clips):
    model = resolve_model("bundled")
    clip = mini_clips[3]
    samples, sr = sf.read(clip, dtype="float32")
    from_memory = predict_array(model, np.stack([samples, samples], axis=1), sr)  # stereo in memory
    from_file = predict_file(model, clip)
    assert from_memory["genre"] == from_file["genre"]
    assert np.allclose(list(from_memory["scores"].values()), list(from_file["scores"].values()), atol=1e-6)


def test_evaluate_matches_library_scoring(shared_data, tmp_path):
    """A model trained on the filtered train rows, scored by the CLI on the valid rows (out of sample)."""
    table = load_feature_table(shared_data / "features_30_sec.csv")
    part = filtered_part(table["track"])
    data = FeatureSet.from_table(table, "30s")
    pipe = make_pipeline("logreg", {"C": 0.3}).fit(data.X[part == "train"], data.y[part == "train"])
    folder = save_model(ShallowModel(pipe), tmp_path / "model")
    valid = tmp_path / "valid.csv"
    table[part == "valid"].drop(columns="track").to_csv(valid, index=False)
    result = run_cli("evaluate", "--model", str(folder), "--features", str(valid))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    expected = float(np.mean(pipe.predict(data.X[part == "valid"]) == data.y[part == "valid"]))
    assert out["n"] == 188 and out["accuracy"] == pytest.approx(expected)
    assert np.trace(np.array(out["confusion_matrix"])) == round(expected * 188)


def test_clear_errors_for_bad_models_and_tables(tmp_path):
    offline = run_cli("predict", "--model", "someone/not-cached-model", str(tmp_path / "x.wav"))
    assert offline.returncode == 2 and "cannot be reached" in offline.stderr
    missing = run_cli("predict", "--model", str(tmp_path), str(tmp_path / "x.wav"))
    assert missing.returncode == 2 and "not a musicgenre model folder" in missing.stderr
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    table = run_cli("evaluate", "--features", str(tmp_path / "t.csv"))
    assert table.returncode == 2 and "not a GTZAN feature table" in table.stderr
    assert "Traceback" not in offline.stderr + missing.stderr + table.stderr


def test_the_runtime_is_the_option_else_the_environment(tmp_path, monkeypatch, capsys):
    """``--runtime``, else ``$MUSICGENRE_RUNTIME``: the command reads it and passes it down (the library never reads it)."""
    from musicgenre import families
    from musicgenre.cli import main

    real, ran = families.resolve_model, []

    def resolve_model(*args, **kwargs):
        model = real(*args, **kwargs)
        ran.append(model.meta["runtime"])
        return model

    monkeypatch.setattr(families, "resolve_model", resolve_model)
    clip = str(write_audio(tmp_path / "clip.wav", seconds=4.0))
    monkeypatch.setenv("MUSICGENRE_RUNTIME", "sklearn")
    assert main(["predict", "--model", "bundled:shallow", clip]) == 0
    assert main(["predict", "--model", "bundled:shallow", "--runtime", "onnxruntime", clip]) == 0  # the option wins
    monkeypatch.delenv("MUSICGENRE_RUNTIME")
    assert main(["predict", "--model", "bundled:shallow", clip]) == 0
    assert ran == ["sklearn", "numpy", "numpy"]  # the skops pipeline, then the NumPy head (the default)
    monkeypatch.setenv("MUSICGENRE_RUNTIME", "tensorflow")
    assert main(["predict", "--model", "bundled:shallow", clip]) == 2
    assert "$MUSICGENRE_RUNTIME: unknown runtime 'tensorflow'" in capsys.readouterr().err


def test_the_ray_engine_is_the_option_else_the_environment(monkeypatch, capsys):
    """``--ray-engine``, else ``$MUSICGENRE_RAY_ENGINE``, else core: the command reads it and passes it down; the
    library only checks the value it is given."""
    from musicgenre import cli
    from musicgenre.util.cluster import ClusterError, run_per_path

    engines = []
    monkeypatch.setattr(cli, "_features", lambda args: engines.append(args.ray_engine) or 0)
    command = ["features", "--ray", "--out", "t.csv", "a.wav"]
    monkeypatch.delenv("MUSICGENRE_RAY_ENGINE", raising=False)
    assert cli.main(command) == 0
    monkeypatch.setenv("MUSICGENRE_RAY_ENGINE", "data")
    assert cli.main(command) == 0
    assert cli.main(["features", "--ray-engine", "core", *command[1:]]) == 0  # the option wins
    assert engines == ["core", "data", "core"]
    monkeypatch.setenv("MUSICGENRE_RAY_ENGINE", "spark")
    assert cli.main(command) == 2
    assert "$MUSICGENRE_RAY_ENGINE: unknown Ray engine 'spark'" in capsys.readouterr().err
    with pytest.raises(ClusterError, match="unknown Ray engine 'spark'"):
        next(run_per_path(["a.wav"], print, {}, None, 1, "spark"))


def test_demo_and_help(tmp_path):
    demo = run_cli("demo", "--out", str(tmp_path / "demo.wav"))
    assert demo.returncode == 0, demo.stderr
    _check_scores(json.loads(demo.stdout))
    for sub in ("features", "predict", "evaluate", "demo"):
        assert run_cli(sub, "--help").returncode == 0
    script = Path(sys.executable).parent / "musicgenre"  # the installed console script
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, cwd=ROOT)
    assert version.stdout.startswith("musicgenre ")


def test_long_input_scores_are_the_mean_of_its_windows(tmp_path, mini_clips):
    """Three different real clips back to back: the file's scores average the three clips' own scores.

    The feature model, at the clips' own rate: a model at another rate resamples the joined file, whose
    resampler sees across the joins (the probe's windows then differ by ~2e-5 from the parts alone).
    """
    model = resolve_model("bundled:shallow")
    names = ("metal.00002.wav", "classical.00001.wav", "reggae.00003.wav")
    parts = [sf.read(next(c for c in mini_clips if c.name == n))[0][: 30 * SR] for n in names]
    joined = tmp_path / "three.wav"
    sf.write(joined, np.concatenate(parts), SR)
    each = [predict_array(model, p, SR) for p in parts]
    assert [e["windows"] for e in each] == [1, 1, 1]
    assert len({e["genre"] for e in each}) > 1  # the windows disagree, so averaging matters
    whole = predict_file(model, joined)
    assert whole["windows"] == 3
    for genre in GENRES:
        assert whole["scores"][genre] == pytest.approx(np.mean([e["scores"][genre] for e in each]), abs=1e-5)
