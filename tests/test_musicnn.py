"""The pretrained musicnn backbone: parity with the original TF graph, preprocessing, the probe and its study.

The parity test builds the original TensorFlow-1 graph from the ``musicnn`` wheel's own models.py
(tests/musicnn/tf_reference.py, in a subprocess: graph mode is global) and compares it with the
PyTorch port and the shipped ONNX file on real GTZAN clips. It fetches the wheel with
``pip download`` into .cache/musicnn when missing, and skips with the reason when it cannot.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, run_cli, write_audio

from musicgenre.audio.io import load_audio
from musicgenre.data.gtzan import GENRES
from musicgenre.errors import ModelError
from musicgenre.families.probe.model import load_probe, save_probe
from musicgenre.models.musicnn import (
    OUTPUTS,
    PATCH_FRAMES,
    SAMPLE_RATE,
    backbone_path,
    load_backbone,
    log_mel,
    normalise_level,
    patches,
)
from musicgenre.models.musicnn_convert import fetch_wheel, largest_relative_difference

PARITY = 1e-4  # the bound: relative to the largest value of each output
WHEEL_DIR = ROOT / ".cache" / "musicnn"


@pytest.fixture(scope="module")
def wheel() -> Path:
    if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("tf_keras") is None:
        pytest.skip("TensorFlow and tf-keras (the dev extra) are needed to build the original musicnn graph")
    try:
        return fetch_wheel(WHEEL_DIR)
    except ModelError as exc:
        pytest.skip(f"the musicnn wheel is not here and could not be downloaded: {exc}")


@pytest.fixture(scope="module")
def real_patches(mini_clips) -> np.ndarray:
    """Patches of three real clips of different genres (30 patches), through the port's preprocessing."""
    backbone = load_backbone()
    chosen = [next(c for c in mini_clips if c.name.startswith(g)) for g in ("blues", "classical", "metal")]
    return np.concatenate([patches(log_mel(load_audio(c, sr=SAMPLE_RATE).samples, backbone.mel_basis)) for c in chosen])


@pytest.mark.slow
def test_port_and_onnx_match_the_original_tensorflow_graph(wheel, real_patches, tmp_path):
    np.savez(tmp_path / "in.npz", patches=real_patches)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests/musicnn/tf_reference.py"), str(wheel), "MSD_musicnn", str(tmp_path / "in.npz"),
         str(tmp_path / "out.npz")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(tmp_path / "out.npz") as z:
        reference = [z[k] for k in OUTPUTS]
    for runtime in ("onnxruntime", "torch"):
        got = load_backbone(runtime=runtime).run_patches(real_patches)
        for name, ref, out in zip(OUTPUTS, reference, got, strict=True):
            assert out.shape == ref.shape, (runtime, name)
            assert largest_relative_difference([ref], [out]) < PARITY, (runtime, name)
    top = [int(np.argmax(reference[0][i : i + 10].mean(axis=0))) for i in (0, 10, 20)]  # each clip's top tag
    assert len(set(top)) == 3  # blues, classical and metal are told apart: the comparison is not of blank outputs


@pytest.mark.slow
def test_conversion_reproduces_the_shipped_weights(wheel, tmp_path):
    from safetensors.numpy import load_file

    from musicgenre.models.musicnn_convert import convert

    folder = convert(wheel, "MSD_musicnn", tmp_path)
    fresh, shipped = load_file(folder / "model.safetensors"), load_file(backbone_path() / "model.safetensors")
    assert fresh.keys() == shipped.keys()
    assert all(np.array_equal(fresh[k], shipped[k]) for k in fresh)
    config = json.loads((folder / "config.json").read_text())
    # The checkpoint's 792,079 values less batch norm's 4,920 running statistics, which are not parameters.
    assert config["parameters"] == 792_079 - 4_920 and len(config["tags"]) == 50 and "female vocalists" in config["tags"]
    card = (folder / "README.md").read_text()
    assert "Universitat Pompeu Fabra" in card and "arXiv:1909.06654" in card and "Million Song Dataset" in card


def test_the_shipped_onnx_runs_the_factored_network_and_computes_the_ports_function(real_patches):
    """The ONNX file is the port with its low-rank convolutions factored (ranks as its config records): far fewer
    multiply-adds, the same outputs on real clips within the conversion's tolerance."""
    import torch

    from musicgenre.models.musicnn import load_torch_network
    from musicgenre.models.musicnn_convert import ONNX_TOLERANCE
    from musicgenre.models.musicnn_torch import LowRankConv, low_rank

    net = load_torch_network(backbone_path())
    factored, ranks = low_rank(net)
    config = json.loads((backbone_path() / "config.json").read_text())
    assert ranks == config["onnx_low_rank"]["ranks"] and ranks["timbral.0"] < 204 / 4

    def macs(model) -> int:  # multiply-adds of the convolutions on one patch (the front-end's output sizes)
        total, hooks = 0, []

        def count(module, _, out):
            nonlocal total
            total += out.numel() * module.weight[0].numel()

        for m in model.modules():
            if isinstance(m, torch.nn.Conv1d | torch.nn.Conv2d):
                hooks.append(m.register_forward_hook(count))
        with torch.inference_mode():
            model(torch.from_numpy(real_patches[:1]))
        for h in hooks:
            h.remove()
        return total

    assert macs(factored) < macs(net) / 4
    assert any(isinstance(m, LowRankConv) for m in factored.modules())
    with torch.inference_mode():
        logits, *rest = net(torch.from_numpy(real_patches))
        f_logits, *f_rest = factored(torch.from_numpy(real_patches))
    port = [torch.sigmoid(logits).numpy(), *(r.numpy() for r in rest)]
    assert largest_relative_difference(port, [torch.sigmoid(f_logits).numpy(), *(r.numpy() for r in f_rest)]) < ONNX_TOLERANCE
    assert largest_relative_difference(port, load_backbone().run_patches(real_patches)) < ONNX_TOLERANCE


@pytest.mark.slow
def test_the_fast_path_leaves_genre_probabilities_unchanged(mini_clips):
    """The issue's speed bound: the shipped ONNX file (factored, batched patches) against the plain
    PyTorch port under the same head, on whole real clips of every genre: within 1e-4."""
    from dataclasses import replace

    from musicgenre.families import resolve_model
    from musicgenre.models.predict import predict_array

    fast = resolve_model("bundled:musicnn")
    reference = replace(fast, backbone=load_backbone(runtime="torch"))
    assert fast.backbone.runtime == "onnxruntime" and reference.backbone.runtime == "torch"
    worst = 0.0
    for genre in GENRES:
        clip = next(c for c in mini_clips if c.name.startswith(genre))
        y = load_audio(clip, sr=SAMPLE_RATE).samples
        got, expected = (predict_array(m, y, SAMPLE_RATE)["scores"] for m in (fast, reference))
        worst = max(worst, max(abs(got[g] - expected[g]) for g in GENRES))
    assert worst < 1e-4


@pytest.mark.slow  # librosa's compiled code (~30 s to build once), the reference path only
@pytest.mark.librosa
def test_preprocessing_matches_librosa():
    import librosa

    from musicgenre.features.jitcache import ensure_ready

    ensure_ready()  # librosa's compiled code, from the session's checked cache

    y = np.random.default_rng(0).normal(scale=0.1, size=SAMPLE_RATE * 7).astype(np.float32)
    backbone = load_backbone()
    basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=512, n_mels=96)
    assert np.allclose(backbone.mel_basis, basis, rtol=0, atol=1e-7)
    mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, n_fft=512, hop_length=256, n_mels=96).T
    expected = np.log10(10000 * mel + 1)
    got = log_mel(y, backbone.mel_basis)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4 * np.abs(expected).max()
    loud = log_mel(y * 1000, backbone.mel_basis)  # mel power x 10000 beyond float16's 65504: the original's NaN
    assert np.all(np.isfinite(loud)) and loud.max() > np.log10(65504)


def test_patches_cover_the_clip_and_pad_short_audio():
    spec = np.arange(1876 * 96, dtype=np.float32).reshape(1876, 96)  # 30 s at 16 kHz
    p = patches(spec)
    assert p.shape == (10, PATCH_FRAMES, 96) and np.array_equal(p[1], spec[PATCH_FRAMES : 2 * PATCH_FRAMES])
    short = patches(spec[:50])  # 0.8 s: repeated to one patch, as musicnn's training padded short clips
    assert short.shape == (1, PATCH_FRAMES, 96) and np.array_equal(short[0, 50:100], spec[:50])


def test_each_patch_gets_its_own_embedding_and_level_does_not_matter(mini_clips):
    """The original extractor returned the first patch's penultimate layer for every patch; -30 dB lost the genre."""
    backbone = load_backbone()
    y = load_audio(mini_clips[0], sr=SAMPLE_RATE).samples
    out = backbone.analyse(y)
    assert {k: v.shape for k, v in out.items()} == {
        "tags": (10, 50), "penultimate": (10, 200), "mean_pool": (10, 753), "max_pool": (10, 753),
    }  # fmt: skip
    assert not np.allclose(out["penultimate"][0], out["penultimate"][1])
    quiet = backbone.analyse(y * 10 ** (-30 / 20))
    assert np.allclose(quiet["mean_pool"], out["mean_pool"], rtol=1e-3, atol=1e-4)
    as_recorded = backbone.analyse(y * 10 ** (-30 / 20), normalise=False)
    assert not np.allclose(as_recorded["mean_pool"], out["mean_pool"], rtol=1e-2, atol=1e-2)
    assert float(np.sqrt(np.mean(normalise_level(y) ** 2))) == pytest.approx(0.1, rel=1e-4)


def test_the_probe_head_is_the_fitted_scikit_learn_pipeline(tmp_path):
    from musicgenre.families.probe.model import ProbeModel, head_from_pipeline
    from musicgenre.families.probe.train import make_head

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 753)).astype(np.float32), np.arange(60) % 10  # noqa: N806
    X[:, [5, 400]] = 2e-6 + rng.normal(scale=1e-12, size=(60, 2))  # dead units: dropped, not amplified
    pipeline = make_head(0.1, 0).fit(X, y)
    assert pipeline.named_steps["constant"].get_support().sum() == 751
    model = ProbeModel(load_backbone(), "mean_pool", head_from_pipeline(pipeline))
    assert np.abs(model.probabilities(X) - pipeline.predict_proba(X)).max() < 1e-5
    folder = save_probe(model, tmp_path / "probe")
    config = json.loads((folder / "musicgenre.json").read_text())
    loaded = load_probe(folder, config)
    assert np.array_equal(loaded.probabilities(X), model.probabilities(X)) and loaded.layer == "mean_pool"
    with pytest.raises(ModelError, match="another version"):
        load_probe(folder, {**config, "backbone_onnx_sha256": "0" * 64})


def test_a_tampered_backbone_is_refused(tmp_path, monkeypatch):
    import shutil

    import musicgenre.models.musicnn as musicnn

    copy = tmp_path / "pretrained" / "MSD_musicnn"
    shutil.copytree(backbone_path(), copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-100] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    monkeypatch.setattr(musicnn, "backbone_path", lambda name="MSD_musicnn": copy)
    musicnn._load_backbone.cache_clear()
    try:
        with pytest.raises(ModelError, match="not the file exported"):
            musicnn.load_backbone()
    finally:
        musicnn._load_backbone.cache_clear()


def test_predict_tags_and_evaluate_on_audio(tmp_path, mini_clips):
    clip = mini_clips[0]
    done = run_cli("predict", "--tags", str(clip))
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout)
    assert len(line["tags"]) == 5 and line["tags"][0]["probability"] >= line["tags"][-1]["probability"]
    other = json.loads(run_cli("predict", "--model", "bundled:shallow", "--tags", "--num-tags", "3", str(clip)).stdout)
    assert [t["tag"] for t in other["tags"]] == [t["tag"] for t in line["tags"][:3]]  # the same tagger, whatever the model
    folder = tmp_path / "few"
    for c in mini_clips[::10]:
        (folder / c.parent.name).mkdir(parents=True, exist_ok=True)
        (folder / c.parent.name / c.name).symlink_to(c)
    (folder / "rock" / "rock.00099.wav").write_bytes(b"not audio")  # listed, not fatal
    scored = run_cli("evaluate", "--audio", str(folder))
    assert scored.returncode == 0, scored.stderr
    out = json.loads(scored.stdout)
    assert out["n"] == len(mini_clips[::10]) and list(out["failed"]) == [str(folder / "rock" / "rock.00099.wav")]
    assert np.trace(np.array(out["confusion_matrix"])) == round(out["accuracy"] * out["n"])
    both = run_cli("evaluate", "--audio", str(folder), "--features", "x.csv")
    assert both.returncode == 2 and "exactly one" in both.stderr


@pytest.mark.slow
def test_study_end_to_end_on_a_few_clips_with_a_cache(tmp_path, mini_clips):
    """The experiment on 40 clips (4 per genre), a small grid: results, zero-shot, a saved probe, cached embeddings."""
    data = tmp_path / "data"
    for genre in GENRES:
        for c in [c for c in mini_clips if c.parent.name == genre][:4]:
            (data / genre).mkdir(parents=True, exist_ok=True)
            (data / genre / c.name).symlink_to(c)
    args = [
        sys.executable, "experiments/pretrained_probe.py", "--data_dir", str(data), "--out_dir", str(tmp_path / "out"),
        "--cache_dir", str(tmp_path / "cache"), "--variants", "MSD_musicnn:norm", "--protocols", "random",
        "--folds", "2", "--inner_folds", "2", "--layers", "penultimate", "mean_pool", "--c_grid", "0.1", "1",
        "--model_dir", str(tmp_path / "model"), "--epochs", "2", "4", "--backbone_lr", "0", "0.001",
    ]  # fmt: skip
    first = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(r["family"], r["protocol"]) for r in results] == [
        ("musicnn-probe", "random"), ("musicnn-top", "random"), ("musicnn-probe", "zero-shot"),
    ]  # fmt: skip
    cv, tuned = results[0], results[1]
    assert cv["out_of_fold"]["n"] == 40 and {f["layer"] for f in cv["folds"]} <= {"penultimate", "mean_pool"}
    assert tuned["out_of_fold"]["n"] == 40 and [f["tracks"] for f in tuned["folds"]] == [f["tracks"] for f in cv["folds"]]
    assert {(f["backbone_lr"], f["epochs"]) for f in tuned["folds"]} <= {(0.0, 2), (0.0, 4), (0.001, 2), (0.001, 4)}
    assert results[2]["n"] == 28  # the 7 genres with a tag, 4 clips each
    cached = sorted((tmp_path / "cache").rglob("*.npz"))
    assert len(cached) == 40
    model = json.loads(run_cli("predict", "--model", str(tmp_path / "model"), str(mini_clips[0])).stdout)
    assert model["genre"] in GENRES
    stamp = [p.stat().st_mtime_ns for p in cached]
    (tmp_path / "out" / "results.json").unlink()
    again = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert again.returncode == 0 and json.loads((tmp_path / "out" / "results.json").read_text()) == results
    assert [p.stat().st_mtime_ns for p in cached] == stamp  # the embeddings came from the cache

    from musicgenre.study.report import read

    rows, _ = read(tmp_path / "out" / "results.json")
    assert {r.family for r in rows} == {"musicnn-probe", "musicnn-top", "musicnn-zero-shot"}


def test_fine_tuning_the_top_starts_from_the_pretrained_layers_and_frozen_means_frozen():
    """The tuned top is the checkpoint's back-end: before any step, fed a patch's pools, it gives the shipped
    network's own penultimate output for that patch; with learning rate 0 the pretrained layers (batch-norm
    statistics included) stay as shipped, otherwise they move; the seed alone decides a fit."""
    import torch

    from musicgenre.families.probe.top import TopSettings, _network, _patches, train_top
    from musicgenre.families.probe.train import Embedded
    from musicgenre.models.musicnn import backbone_path, load_torch_network

    shipped = load_torch_network(backbone_path("MSD_musicnn"))
    mels = torch.from_numpy(np.random.default_rng(0).random((80, 187, 96), dtype=np.float32) * 3)  # log-mel-like
    with torch.no_grad():
        _, penultimate, mean_pool, max_pool = shipped(mels)
    outputs = [{"max_pool": max_pool[i : i + 4].numpy(), "mean_pool": mean_pool[i : i + 4].numpy()} for i in range(0, 80, 4)]
    data = Embedded(outputs, np.arange(20) % len(GENRES), np.array([f"blues.{i:05d}" for i in range(20)]), {})
    x, y, clip = _patches(data, np.arange(20))
    assert x.shape == (80, 1506) and list(clip[:5]) == [0, 0, 0, 0, 1] and y[4] == data.labels[1]

    top = _network("MSD_musicnn", dropout=0.5).eval()
    with torch.no_grad():
        features = torch.from_numpy(x)
        torch.testing.assert_close(top.musicnn.backend(*features.split(753, dim=1)), penultimate)

    def check(epoch, predict):
        probs = predict(x)
        assert probs.shape == (80, len(GENRES)) and np.allclose(probs.sum(1), 1, atol=1e-5)

    def state_after(lr: float) -> dict:
        return train_top("MSD_musicnn", x, y, lr, [2], TopSettings(batch_size=16), 0, check).state_dict()

    frozen, tuned = state_after(0.0), state_after(1e-3)
    torch.rand(7)  # other random draws in between: the seed alone decides a fit
    again = state_after(1e-3)
    assert all(torch.equal(again[k], v) for k, v in tuned.items())
    reference = shipped.state_dict()
    for name, value in reference.items():  # the whole shipped network, back-end included, as it was
        torch.testing.assert_close(frozen[f"musicnn.{name}"], value)
    moved = {name for name, value in reference.items() if not torch.equal(tuned[f"musicnn.{name}"], value)}
    assert {"dense.weight", "pool_bn.running_mean", "dense_bn.running_mean"} <= moved
    assert all(name.startswith(shipped.BACKEND) for name in moved)  # nothing below the back-end learns


def test_short_and_multichannel_audio_through_the_default_model(tmp_path):
    from musicgenre.families import resolve_model
    from musicgenre.models.predict import predict_array, predict_file

    model = resolve_model("bundled")
    assert model.backbone.name == "MSD_musicnn" and model.meta["runtime"] == "onnxruntime"
    short = predict_file(model, write_audio(tmp_path / "short.wav", seconds=0.5))
    assert short["windows"] == 1 and sum(short["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    y, sr = sf.read(write_audio(tmp_path / "st.wav", seconds=4.0, channels=2))
    out = predict_array(model, y, sr, tags=3)
    assert len(out["tags"]) == 3 and out["genre"] in GENRES
