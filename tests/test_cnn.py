"""The Keras CNN: a tiny one trains an epoch, saves safely, reloads with the same probabilities, and serves.

Runs on Keras' torch backend (the project's default). The TensorFlow backend test runs where
tensorflow is installed and says why it skips otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import ROOT, synth, write_audio
from test_cli import run_cli

from musicgenre.audio.io import load_audio, windows
from musicgenre.data.gtzan import GENRES
from musicgenre.errors import ModelError
from musicgenre.families import bundled_model_path, plan_upload, resolve_model
from musicgenre.families.cnn.model import CnnModel, build_cnn, log_mel, save_cnn
from musicgenre.serving.service import load_models
from musicgenre.study.report import read as read_result


def train_tiny(seconds: float = 3.0) -> CnnModel:
    network = build_cnn(seconds, width=4, blocks=2)
    X = np.stack([log_mel(synth(seconds, seed=i)) for i in range(20)])
    y = np.arange(20) % 10
    network.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    network.fit(X, y, epochs=1, batch_size=8, verbose=0)
    return CnnModel(network, seconds, meta={"trained_on": "20 synthetic clips (a test)"})


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = train_tiny()
    folder = save_cnn(model, tmp_path_factory.mktemp("cnn") / "tiny-cnn", card="# tiny CNN\n")
    return model, folder


def test_global_pooling_keeps_the_size_independent_of_the_input_length():
    assert build_cnn(3.0).count_params() == build_cnn(30.0).count_params() < 2_500_000  # under 10 MB as float32


def test_save_reload_same_probabilities(saved):
    model, folder = saved
    with zipfile.ZipFile(folder / "model.keras") as saved_file:  # trained with Adam; its state is not shipped
        assert not json.loads(saved_file.read("config.json")).get("compile_config")
        assert b"optimizer" not in saved_file.read("model.weights.h5")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "model.keras", "model.onnx", "musicgenre.json"]
    config = json.loads((folder / "musicgenre.json").read_text())
    assert config["onnx"]["file"] == "model.onnx" and config["onnx"]["max_probability_change_on_probe"] <= 1e-5
    loaded = resolve_model(str(folder))  # the ONNX copy: Keras is not needed to predict
    assert isinstance(loaded, CnnModel) and loaded.labels == list(GENRES) and loaded.window_seconds == 3.0
    assert loaded.meta["runtime"] == "onnxruntime" and "runtime" not in config
    parts = [synth(3.0, seed=50), synth(1.0, seed=51)]  # a short window is padded
    assert np.allclose(loaded.predict_windows(parts), model.predict_windows(parts), atol=1e-6)
    assert np.allclose(loaded.predict_windows(parts).sum(axis=1), 1.0)


def test_the_keras_file_still_loads_and_agrees_with_the_onnx_copy(saved):
    _, folder = saved
    parts = [synth(3.0, seed=52), synth(3.0, seed=53)]
    via_onnx = resolve_model(str(folder)).predict_windows(parts)
    keras_model = resolve_model(str(folder), runtime="keras")
    assert keras_model.meta["runtime"] == "keras" and resolve_model(str(folder), runtime="torch").meta["runtime"] == "keras"
    assert np.allclose(keras_model.predict_windows(parts), via_onnx, atol=1e-6)


def test_the_bundled_cnn_onnx_copy_matches_its_keras_file_on_real_clips(mini_clips):
    clips = [load_audio(c, sr=22050).samples for c in mini_clips[::15]]
    via_onnx = resolve_model("bundled:cnn")
    via_keras = resolve_model("bundled:cnn", runtime="keras")
    for y in clips:
        parts = windows(y, 22050, 3.0)
        assert np.abs(via_onnx.predict_windows(parts) - via_keras.predict_windows(parts)).max() < 1e-5


def test_served_by_predict_the_app_and_the_push_script(saved, tmp_path):
    _, folder = saved
    clip = write_audio(tmp_path / "clip.wav", seconds=7.0)
    result = run_cli("predict", "--model", str(folder), str(clip))
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    assert list(line["scores"]) == list(GENRES) and line["windows"] == 2  # 3 + 3 s (the 1 s tail is under half)
    served = load_models(None, [str(folder)], bundled=False)
    assert list(served.models) == ["cnn: tiny-cnn"]
    plan = plan_upload(folder, "me/tiny-cnn")
    assert plan.kind == "keras" and "model.keras" in plan.files


def test_damaged_model_file_is_a_model_error(saved, tmp_path):
    import shutil

    _, folder = saved
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ModelError, match="model.onnx is not the file that was checked"):
        resolve_model(str(broken))  # a swapped or damaged ONNX copy is never run
    config = json.loads((broken / "musicgenre.json").read_text())
    config["onnx"]["sha256"] = hashlib.sha256(b"not an onnx file").hexdigest()
    (broken / "musicgenre.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="cannot load model.onnx"):
        resolve_model(str(broken))
    (broken / "model.keras").write_bytes(b"not a keras file")
    with pytest.raises(ModelError, match="cannot load model.keras"):
        resolve_model(str(broken), runtime="keras")


@pytest.mark.slow
def test_tensorflow_backend(tmp_path):
    pytest.importorskip("tensorflow", reason="tensorflow is not installed (install the dev extra)")
    code = (
        "import numpy as np, sys; sys.path.insert(0, 'tests'); from test_cnn import train_tiny; "
        "from musicgenre.families.cnn.model import save_cnn; from musicgenre.families import resolve_model; "
        "from conftest import synth; "
        f"m = train_tiny(); f = save_cnn(m, {str(tmp_path / 'tf')!r}); parts = [synth(3.0, seed=5)]; "
        "assert np.allclose(resolve_model(str(f)).predict_windows(parts), m.predict_windows(parts), atol=1e-6); print('ok')"
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


@pytest.fixture(scope="module")
def synthetic_gtzan(tmp_path_factory):
    """4 short clips per genre, each genre a different synthetic sound (seed), in the <genre>/ layout."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("gtzan-synth")
    for g, genre in enumerate(GENRES):
        (root / genre).mkdir()
        for k in range(4):
            sf.write(root / genre / f"{genre}.{k:05d}.wav", synth(4.0, seed=100 * g + k), 22050)
    return root


def test_grouped_cross_validation_scores_every_track_once(synthetic_gtzan):
    from musicgenre.data.gtzan import load_clips
    from musicgenre.families.cnn.train import CnnSettings, Crops, cross_validate, fixed_windows

    clips, failed = load_clips(synthetic_gtzan, 22050)
    assert not failed and len(clips) == 40
    assert [len(w) for w in fixed_windows(clips[0].samples, 3.0)] == [66150]  # full windows only
    settings = CnnSettings(seconds=3.0, width=4, blocks=1, epochs=2, patience=1, folds=2, batch_size=16)
    x, y = Crops(clips, settings, np.random.default_rng(0)).epoch()
    assert x.shape == (40, 130, 128, 1) and np.allclose(y.sum(axis=1), 1.0)  # mixup blends labels, still a distribution
    cv = cross_validate(clips, settings, progress=lambda _: None)
    assert sum(f["tracks"] for f in cv["folds"]) == 40 and all(1 <= e <= 2 for e in cv["epochs"])
    assert 0.0 <= cv["track_accuracy"]["mean"] <= 1.0
    pooled = cv["out_of_fold"]  # every track scored once, out of fold
    assert pooled["track"]["n"] == 40 and np.sum(pooled["track"]["confusion_matrix"]) == 40
    assert pooled["track"]["accuracy"] == pytest.approx(np.mean([f["track_accuracy"] for f in cv["folds"]]), abs=0.1)


@pytest.mark.slow
def test_experiment_script_saves_a_servable_model_and_resumes(synthetic_gtzan, tmp_path):
    args = [
        sys.executable, "experiments/cnn_keras.py", "--data_dir", str(synthetic_gtzan), "--out_dir", str(tmp_path / "res"),
        "--model_dir", str(tmp_path / "models"), "--input_seconds", "3", "--width", "4", "--blocks", "1", "--epochs", "1",
        "--folds", "2", "--batch_size", "16",
    ]  # fmt: skip
    first = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    results = json.loads((tmp_path / "res" / "results.json").read_text())
    assert len(results) == 1 and results[0]["tracks"] == 40 and results[0]["protocol"] == "grouped 2-fold by track, seed 0"
    assert results[0]["parameters"] > 0 and results[0]["size_bytes"] > 0
    (row,), _ = read_result(tmp_path / "res" / "results.json")  # what experiments/report.py shows
    assert (row.family, row.input, row.protocol, row.size_bytes) == ("cnn", "3 s", "grouped", results[0]["size_bytes"])
    assert row.accuracy == results[0]["out_of_fold"]["track"]["accuracy"] and "over 40 tracks" in row.data
    model = resolve_model(str(tmp_path / "models" / "cnn-3s"))
    assert isinstance(model, CnnModel) and "grouped by track" in (tmp_path / "models" / "cnn-3s" / "README.md").read_text()
    stamp = (tmp_path / "res" / "results.json").stat().st_mtime_ns
    saved = (tmp_path / "models" / "cnn-3s" / "musicgenre.json").stat().st_mtime_ns
    again = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0 and "fold 0" not in again.stdout  # already in results.json: not cross-validated again
    assert (tmp_path / "res" / "results.json").stat().st_mtime_ns == stamp
    assert "(already saved)" in again.stdout  # the same model is not trained again
    assert (tmp_path / "models" / "cnn-3s" / "musicgenre.json").stat().st_mtime_ns == saved


def test_training_crops_of_a_clip_spectrogram_equal_the_windows_log_mel():
    """Crops cut from a clip's once-computed mel equal log_mel of the waveform crop, but for the edge frames."""
    from musicgenre.families.cnn.model import HOP, mel_power, to_input

    clip = synth(8.0, seed=3)
    start = 40  # frames; the waveform crop starts on the same hop boundary
    window = log_mel(clip[start * HOP : start * HOP + 3 * 22050])
    crop = to_input(mel_power(clip)[start : start + len(window)])
    assert crop.shape == window.shape
    assert np.allclose(crop[3:-3], window[3:-3], atol=1e-4)


def test_bundled_cnn_is_small_better_than_chance_in_cv_and_classifies(tmp_path):
    model = resolve_model("bundled:cnn")
    assert isinstance(model, CnnModel) and model.window_seconds == 3.0 and model.labels == list(GENRES)
    folder = bundled_model_path("cnn")
    assert sum(p.stat().st_size for p in folder.iterdir()) < 10_000_000
    config = json.loads((folder / "musicgenre.json").read_text())
    results = json.loads((ROOT / "results" / "cnn" / "results.json").read_text())
    shipped = next(r for r in results if r["settings"]["seconds"] == 3.0)
    assert config["cross_validation"]["track_accuracy"] == shipped["track_accuracy"]
    assert config["cross_validation"]["protocol"] == shipped["protocol"] and shipped["out_of_fold"]["track"]["accuracy"] > 0.3
    clip = write_audio(tmp_path / "short.wav", seconds=2.0)  # shorter than a window: padded, still classified
    line = json.loads(run_cli("predict", "--model", "bundled:cnn", str(clip)).stdout)
    assert line["windows"] == 1 and abs(sum(line["scores"].values()) - 1) < 1e-6


def test_bundled_kinds_are_named_in_the_error():
    with pytest.raises(ModelError, match="no bundled model 'nope'; choose from bundled:musicnn, bundled:shallow, bundled:cnn"):
        resolve_model("bundled:nope")
    assert resolve_model("bundled:shallow").labels == list(GENRES)
