"""Transformers checkpoints as genre models: loading, window-by-window prediction, the CLI, errors.

The checkpoint is the tiny random HuBERT of conftest (no pretrained weights exist offline), so
these tests check the plumbing a real DistilHuBERT checkpoint goes through, not accuracy.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import CACHE_ROOT, SR, synth, write_audio
from test_cli import run_cli

from musicgenre.data.gtzan import GENRES
from musicgenre.errors import ModelError
from musicgenre.families import resolve_model
from musicgenre.families.transformer.model import TransformerModel, load_transformer_model
from musicgenre.models.predict import predict_array, predict_file, window_probabilities


@pytest.fixture(scope="module")
def hubert(tiny_hubert) -> TransformerModel:
    return resolve_model(str(tiny_hubert), cache_root=CACHE_ROOT)


def test_folder_resolves_to_a_transformer_model(hubert, tiny_hubert):
    assert isinstance(hubert, TransformerModel)
    assert hubert.labels == list(GENRES)
    assert hubert.sample_rate == 16000 and hubert.window_seconds == 30.0
    assert hubert.meta["model_type"] == "hubert" and hubert.meta["source"] == str(tiny_hubert)


def test_windows_are_batched_without_changing_results(hubert):
    y = synth(75.0, 16000)  # windows of 30, 30 and 15 s
    probs = window_probabilities(hubert, y)
    assert probs.shape == (3, 10)
    assert np.allclose(probs.sum(axis=1), 1.0)
    one_by_one = np.vstack([hubert.predict_windows([part]) for part in (y[:480000], y[480000:960000], y[960000:])])
    assert np.allclose(probs, one_by_one, atol=1e-5)


def test_predict_file_resamples_and_averages(hubert, tmp_path):
    path = write_audio(tmp_path / "clip.wav", seconds=40.0, sr=SR, channels=2)  # 22.05 kHz stereo in, 16 kHz mono used
    result = predict_file(hubert, path)
    assert result["windows"] == 1  # a 10 s tail is less than half a window: dropped
    assert sum(result["scores"].values()) == pytest.approx(1.0)
    in_memory = predict_array(hubert, synth(40.0, SR, channels=2), SR)  # the same audio before 16-bit quantisation
    assert result["genre"] == in_memory["genre"]
    assert list(result["scores"].values()) == pytest.approx(list(in_memory["scores"].values()), abs=1e-5)


@pytest.mark.slow
def test_cli_predict_with_a_checkpoint_folder(tiny_hubert, tmp_path):
    path = write_audio(tmp_path / "clip.flac", seconds=5.0)
    result = run_cli("predict", "--model", str(tiny_hubert), str(path))
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    assert list(line["scores"]) == list(GENRES) and sum(line["scores"].values()) == pytest.approx(1.0, abs=1e-6)


def test_evaluate_refuses_an_audio_model(tiny_hubert, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("filename,label\n")
    result = run_cli("evaluate", "--model", str(tiny_hubert), "--features", str(table))
    assert result.returncode != 0 and "reads audio, not features" in result.stderr


def test_a_models_family_is_known_from_its_files_before_it_is_loaded(tiny_hubert, tmp_path):
    """What lets ``evaluate`` refuse an audio model at once: the family, from the spec and the folder's files."""
    from musicgenre.families import FAMILIES, bundled_model_path, family_of_spec

    assert family_of_spec("bundled") is FAMILIES["probe"] and family_of_spec("bundled:shallow") is FAMILIES["shallow"]
    assert family_of_spec(str(bundled_model_path("cnn"))) is FAMILIES["cnn"]
    assert family_of_spec(str(tiny_hubert)) is FAMILIES["transformer"]
    assert family_of_spec("owner/name") is None and family_of_spec(str(tmp_path)) is None  # a Hub id; an empty folder


def test_broken_checkpoints_and_offline_hub_ids_give_model_errors(tiny_hubert, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_hubert, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelError, match="broken"):
        resolve_model(str(broken))
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="broken"):
        resolve_model(str(broken))
    with pytest.raises(ModelError, match="cannot be reached"):  # HF_HUB_OFFLINE=1 in conftest: no network attempt
        resolve_model("someone/not-cached-anywhere")
    with pytest.raises(ModelError, match="cannot be reached"):
        load_transformer_model("someone/not-cached-anywhere", local_files_only=True)


def test_onnx_runtime_gives_torch_probabilities_and_is_cached(tiny_hubert, monkeypatch, tmp_path):
    """The app and `predict` run checkpoints through ONNX Runtime (benchmarks/transformer_inference.py: ~1.3x)."""
    from musicgenre.models.onnx_runtime import cache_dir

    monkeypatch.setenv("MUSICGENRE_CACHE", str(tmp_path / "not-read"))  # the entry points read it, the library never
    fast = load_transformer_model(str(tiny_hubert), local_files_only=True, cache_root=tmp_path)  # a cold cache
    exported = list(cache_dir(tmp_path).glob("*.onnx"))
    assert fast.meta["runtime"] == "onnxruntime" and fast.session is not None and len(exported) == 1
    plain = load_transformer_model(str(tiny_hubert), local_files_only=True, runtime="torch")
    assert plain.meta["runtime"] == "torch" and plain.session is None
    y = synth(75.0, 16000)  # windows of 30, 30 and 15 s: the export takes any length
    assert np.abs(window_probabilities(fast, y) - window_probabilities(plain, y)).max() < 1e-5
    stamp = exported[0].stat().st_mtime_ns
    again = load_transformer_model(str(tiny_hubert), local_files_only=True, cache_root=tmp_path)
    assert again.meta["runtime"] == "onnxruntime" and exported[0].stat().st_mtime_ns == stamp  # reused, not re-exported
    assert sorted(p.name for p in cache_dir(tmp_path).iterdir()) == [exported[0].name]  # no temporary files left behind
    assert not (tmp_path / "not-read").exists()
    monkeypatch.setenv("MUSICGENRE_RUNTIME", "torch")  # the entry points read it and pass it down; the library never does
    assert load_transformer_model(str(tiny_hubert), local_files_only=True, cache_root=tmp_path).meta["runtime"] == "onnxruntime"


def test_half_precision_checkpoints_run_in_float32(tiny_hubert, tmp_path):
    import torch
    from transformers import AutoModelForAudioClassification

    folder = tmp_path / "bf16"
    shutil.copytree(tiny_hubert, folder)
    AutoModelForAudioClassification.from_pretrained(folder).to(torch.bfloat16).save_pretrained(folder)
    model = load_transformer_model(str(folder), local_files_only=True, cache_root=CACHE_ROOT)
    assert model.meta["runtime"] == "onnxruntime" and next(model.model.parameters()).dtype == torch.float32
    assert np.allclose(window_probabilities(model, synth(3.0, 16000)).sum(axis=1), 1.0)


def test_a_failing_runtime_falls_back_to_torch_for_good(tiny_hubert):
    model = load_transformer_model(str(tiny_hubert), local_files_only=True, cache_root=CACHE_ROOT)
    y = synth(4.0, 16000)
    expected = window_probabilities(model, y)

    class BrokenSession:  # stands in for an ONNX Runtime error on some input
        def run(self, *args, **kwargs):
            raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT")

    model.session = BrokenSession()
    assert np.allclose(window_probabilities(model, y), expected, atol=1e-5)
    assert model.session is None and model.meta["runtime"] == "torch"
