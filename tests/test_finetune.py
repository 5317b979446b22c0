"""Fine-tuning DistilHuBERT's code path end to end, on a tiny random HuBERT (no pretrained weights offline).

A few training steps on real GTZAN clips (synthetic clips named after filtered-split tracks when
../shared/data is absent), then the checkpoint is loaded by `musicgenre predict`, the app's loader
and transformers' own pipeline. The accuracy of such a model means nothing; the plumbing does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from conftest import CACHE_ROOT, ROOT, SHARED, synth
from test_cli import run_cli

from musicgenre.data.gtzan import GENRES, Clip, find_audio_files, label_from_path, load_clips
from musicgenre.data.splits import course_split, filtered_split
from musicgenre.errors import DataError
from musicgenre.families.transformer.train import ClipMetrics, EvalWindows, export_hub_dataset, split_clips
from musicgenre.study.report import read as read_result

SCRIPT = ROOT / "experiments" / "finetune_distilhubert.py"


def _script_module():
    spec = importlib.util.spec_from_file_location("finetune_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def gtzan_dir(tmp_path_factory) -> Path:
    """The real mini GTZAN when present, else 3 synthetic 8 s clips per genre named after filtered tracks."""
    real = SHARED / "gtzan_mini"
    if real.is_dir():
        return real
    root = tmp_path_factory.mktemp("gtzan")
    split = filtered_split()
    for g, genre in enumerate(GENRES):
        for part, count in (("train", 2), ("valid", 1)):
            for k, track in enumerate(sorted(t for t in split[part] if t.startswith(genre + "."))[:count]):
                (root / genre).mkdir(exist_ok=True)
                sf.write(root / genre / f"{track}.wav", synth(8.0, seed=10 * g + k + (5 if part == "valid" else 0)), 22050)
    return root


def run_finetune(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPT), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})


MAX_EVAL = 4  # --max_eval_samples below


def expected_eval_clips(gtzan_dir: Path) -> int:
    """What the random split (test_size 0.1) holds out of the clips the fixture found, capped at MAX_EVAL."""
    n = sum(1 for f in find_audio_files([gtzan_dir]) if label_from_path(f))
    return min(MAX_EVAL, len(course_split(n, 0.1, 42)[1]))


@pytest.fixture(scope="module")
def checkpoint(tiny_hubert, gtzan_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "distilhubert-gtzan"
    common = ["--model_name_or_path", str(tiny_hubert), "--data_dir", str(gtzan_dir), "--output_dir", str(out)]
    small = ["--per_device_train_batch_size", "4", "--train_crop_seconds", "2", "--eval_whole_clips"]
    small += ["--max_eval_samples", str(MAX_EVAL)]
    every3 = ["--save_strategy", "steps", "--save_steps", "3", "--eval_strategy", "steps", "--eval_steps", "3"]
    first = run_finetune(*common, *small, *every3, "--max_steps", "3")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "random (test_size 0.1, seed 42)" in first.stdout
    resumed = run_finetune(*common, *small, *every3, "--max_steps", "5")  # a longer run picks up where the first stopped
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {out / 'checkpoint-3'}" in resumed.stdout
    return out


@pytest.mark.slow
def test_checkpoint_folder_has_what_the_hub_and_loaders_need(checkpoint, gtzan_dir):
    names = {p.name for p in checkpoint.iterdir()}
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md", "eval_results.json"} <= names
    config = json.loads((checkpoint / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(10)] == list(GENRES) and config["window_seconds"] == 2.0
    assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == 5
    metrics = json.loads((checkpoint / "eval_results.json").read_text())
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and 0.0 <= metrics["eval_macro_f1"] <= 1.0
    assert metrics["eval_clips"] == expected_eval_clips(gtzan_dir)
    (row,), _ = read_result(checkpoint / "musicgenre_run.json")  # what experiments/report.py shows
    assert (row.family, row.input, row.protocol, row.seed) == ("distilhubert", "waveform", "random", 42)
    assert row.accuracy == metrics["eval_accuracy"] and f"{metrics['eval_clips']} clips scored" in row.data
    card = (checkpoint / "README.md").read_text()
    assert "model-index:" in card and "type: accuracy" in card and f"value: {round(metrics['eval_accuracy'], 4)}" in card


@pytest.mark.slow
def test_checkpoint_loads_in_predict_the_app_and_transformers_pipeline(checkpoint, tmp_path):
    from transformers import pipeline

    from musicgenre.families import resolve_model
    from musicgenre.models.predict import predict_array
    from musicgenre.serving.service import analyse, load_models

    clip = tmp_path / "clip.wav"
    sf.write(clip, synth(5.0), 22050)
    result = run_cli("predict", "--model", str(checkpoint), str(clip))
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    assert (
        list(line["scores"]) == list(GENRES) and line["windows"] == 3
    )  # 2 s windows: 2 + 2 + a 1 s tail (half a window is kept)

    served = load_models(None, [str(checkpoint)], bundled=False, cache_root=CACHE_ROOT)
    analysis = analyse(clip, served.models)
    assert analysis.results[0].window_probs.shape == (3, 10)

    y16 = librosa.resample(synth(1.5), orig_sr=22050, target_sr=16000).astype(np.float32)
    scores = {d["label"]: d["score"] for d in pipeline("audio-classification", model=str(checkpoint), top_k=None)(y16)}
    assert set(scores) == set(GENRES) and sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    ours = predict_array(resolve_model(str(checkpoint), cache_root=CACHE_ROOT), y16, 16000)["scores"]  # one window
    assert all(ours[g] == pytest.approx(scores[g], abs=1e-5) for g in GENRES)


@pytest.mark.slow
def test_push_dry_run_of_the_checkpoint_and_the_bundled_model(checkpoint):
    from musicgenre.families import bundled_model_path

    result = subprocess.run(
        [sys.executable, "scripts/push_to_hub.py", str(checkpoint), "--repo-id", "me/distilhubert-gtzan", "--dry-run"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    uploads = [x.split()[1] for x in result.stdout.splitlines() if x.strip().startswith("upload")]
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md"} <= set(uploads)
    assert not any(name.endswith(".bin") or name.startswith("checkpoint-") for name in uploads)
    assert "skip   training_args.bin (pickle-based" in result.stdout and "checkpoint-3/ (training leftover" in result.stdout
    bundled = subprocess.run(
        [sys.executable, "scripts/push_to_hub.py", str(bundled_model_path("shallow")), "--repo-id", "me/bundled", "--dry-run"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert bundled.returncode == 0 and "upload pipeline.skops" in bundled.stdout and "upload musicgenre.json" in bundled.stdout
    probe = subprocess.run(
        [sys.executable, "scripts/push_to_hub.py", str(bundled_model_path("musicnn")), "--repo-id", "me/probe", "--dry-run"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert probe.returncode == 0 and "upload head.safetensors" in probe.stdout and "probe checkpoint" in probe.stdout


def test_arguments_from_yaml_and_flags_over_the_course_recipe(tmp_path):
    script = _script_module()
    config = tmp_path / "run.yaml"
    config.write_text(
        "model_name_or_path: some/model\ndata_dir: /data/gtzan\noutput_dir: out\nprotocol: filtered\nlearning_rate: 1.0e-4\n"
    )
    model_args, data_args, training_args = script.parse([str(config)])
    assert model_args.model_name_or_path == "some/model" and data_args.protocol == "filtered"
    assert training_args.learning_rate == 1e-4 and training_args.num_train_epochs == 10  # file value; recipe default
    assert training_args.per_device_train_batch_size == 8 and training_args.warmup_steps == 0.1
    assert training_args.metric_for_best_model == "accuracy" and training_args.load_best_model_at_end
    _, data_args, training_args = script.parse(
        ["--data_dir", "d", "--output_dir", "o", "--num_train_epochs", "2", "--train_crop_seconds", "10", "--eval_whole_clips"]
    )
    assert training_args.num_train_epochs == 2 and data_args.train_crop_seconds == 10.0 and data_args.eval_whole_clips


def test_clip_metrics_average_windows_per_clip():
    clips = [Clip(np.zeros(16000 * 4, np.float32), 0, "blues.00000"), Clip(np.zeros(16000 * 2, np.float32), 3, "disco.00001")]
    windows = EvalWindows(clips, 16000, 2.0, whole_clips=True)
    assert windows.clip_of == [0, 0, 1] and len(windows) == 3
    logits = np.full((3, 10), -5.0)
    logits[0, 0], logits[1, 6], logits[1, 0], logits[2, 3] = 5.0, 3.0, 2.9, 4.0  # window 2 of clip 0 leans metal
    metrics = ClipMetrics(windows)((logits, None))
    assert metrics["accuracy"] == 1.0 and metrics["clips"] == 2  # averaged, clip 0 is still blues
    first_only = EvalWindows(clips, 16000, 2.0, whole_clips=False)
    assert first_only.clip_of == [0, 1]


def test_splits_random_is_the_course_split_and_filtered_uses_the_lists():
    datasets = pytest.importorskip("datasets")
    expected = datasets.Dataset.from_dict({"i": list(range(100))}).train_test_split(test_size=0.1, seed=42)
    train, test = course_split(100)
    assert list(train) == expected["train"]["i"] and list(test) == expected["test"]["i"]

    split = filtered_split()
    tracks = sorted(split["train"])[:6] + sorted(split["valid"])[:3] + sorted(split["test"])[:2]
    clips = [Clip(np.zeros(10, np.float32), GENRES.index(t.split(".")[0]), t) for t in tracks]
    train, valid, text = split_clips(clips, "filtered")
    assert {c.track for c in train} == set(tracks[:6]) and {c.track for c in valid} == set(tracks[6:9])
    assert "held back" in text
    with pytest.raises(DataError, match="unknown protocol"):
        split_clips(clips, "grouped")


def test_hub_dataset_is_written_to_a_folder_once(tmp_path):
    datasets = pytest.importorskip("datasets")
    src = tmp_path / "src"
    src.mkdir()
    rows = []
    for i, genre in enumerate(["jazz", "metal"]):
        path = src / f"{genre}.0000{i}.wav"
        sf.write(path, synth(2.0, seed=i), 22050)
        rows.append({"bytes": path.read_bytes(), "path": path.name})  # as parquet mirrors store audio
    # Encoding an Audio column needs torchcodec, so the audio stays a plain {bytes, path} struct here.
    table = datasets.Dataset.from_dict({"audio": rows, "genre": ["jazz", "metal"]})
    table = table.cast_column("genre", datasets.ClassLabel(names=list(GENRES)))
    (tmp_path / "hubcopy").mkdir()
    table.to_parquet(str(tmp_path / "hubcopy" / "train.parquet"))  # a local stand-in for a Hub parquet mirror
    out = export_hub_dataset(str(tmp_path / "hubcopy"), tmp_path / "export")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav")) == ["jazz/jazz.00000.wav", "metal/metal.00001.wav"]
    clips, failed = load_clips(out, 16000)
    assert not failed and [c.label for c in clips] == [5, 6] and len(clips[0].samples) == 32000
    before = (out / "jazz" / "jazz.00000.wav").stat().st_mtime_ns
    export_hub_dataset(str(tmp_path / "hubcopy"), tmp_path / "export")
    assert (out / "jazz" / "jazz.00000.wav").stat().st_mtime_ns == before  # already there: not rewritten


def test_hub_dataset_without_file_names_across_splits(tmp_path):
    datasets = pytest.importorskip("datasets")
    source = tmp_path / "clip.wav"
    sf.write(source, synth(1.0), 22050)
    folder = tmp_path / "hubcopy"
    folder.mkdir()
    for split in ("train", "test"):  # no file names: each clip is numbered within its genre over all splits
        rows = [{"bytes": source.read_bytes(), "path": None}] * 2
        table = datasets.Dataset.from_dict({"audio": rows, "genre": ["rock", "rock"]})
        table.to_parquet(str(folder / f"{split}.parquet"))
    out = export_hub_dataset(str(folder), tmp_path / "export")
    assert len(list((out / "rock").glob("rock.unnamed*.wav"))) == 4
    named = tmp_path / "named"
    named.mkdir()
    for split in ("train", "test"):
        table = datasets.Dataset.from_dict(
            {"audio": [{"bytes": source.read_bytes(), "path": "rock.00001.wav"}], "genre": ["rock"]}
        )
        table.to_parquet(str(named / f"{split}.parquet"))
    with pytest.raises(DataError, match="both named rock/rock.00001.wav"):
        export_hub_dataset(str(named), tmp_path / "export2")
