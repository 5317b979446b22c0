"""Hub scripts without the Hub: dry runs, the errors a user meets (no token, offline, wrong folder), cached downloads.

Nothing here reaches the network (HF_HUB_OFFLINE=1); the one thing that cannot exist here, a real
upload, is not simulated. The download test builds a Hub cache in the layout huggingface_hub documents.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, write_audio

from musicgenre.errors import ModelError
from musicgenre.families import bundled_model_path, checkpoint_kind, plan_upload
from musicgenre.models.hub import plan_space_upload, push


def script(name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run(
        [sys.executable, f"scripts/{name}", *args], capture_output=True, text=True, cwd=ROOT, env=environ, timeout=120
    )


def test_plans_of_each_checkpoint_kind(tiny_hubert, tmp_path):
    hubert = plan_upload(tiny_hubert, "me/tiny", revision="v1", private=True)
    assert hubert.kind == "transformers" and hubert.files == ["config.json", "model.safetensors", "preprocessor_config.json"]
    assert hubert.card is not None and "library_name: transformers" in hubert.card  # no README.md: one is generated
    assert hubert.url == "https://huggingface.co/me/tiny/tree/v1" and "private model" in hubert.describe()
    bundled = plan_upload(bundled_model_path("shallow"), "me/bundled")
    assert bundled.kind == "shallow" and bundled.card is None and "pipeline.skops" in bundled.files
    probe = plan_upload(bundled_model_path(), "me/probe")  # the default bundled model: the musicnn probe
    assert probe.kind == "probe" and sorted(probe.files) == ["README.md", "head.safetensors", "musicgenre.json"]
    keras = tmp_path / "cnn"
    keras.mkdir()
    (keras / "model.keras").write_bytes(b"zip")
    assert checkpoint_kind(keras) == "keras"
    with pytest.raises(ModelError, match="not a checkpoint folder"):
        plan_upload(tmp_path, "me/x")
    with pytest.raises(ModelError, match="not a valid repository id|OWNER/NAME"):
        plan_upload(tiny_hubert, "no owner")


def test_pickles_and_trainer_leftovers_are_never_uploaded(tiny_hubert, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(tiny_hubert, folder)
    (folder / "training_args.bin").write_bytes(b"pickle")
    (folder / "checkpoint-10").mkdir()
    (folder / "checkpoint-10" / "optimizer.pt").write_bytes(b"pickle")
    (folder / "README.md").write_text("# my card\n")
    (folder / "extra").mkdir()
    (folder / "extra" / ".env").write_text("HF_TOKEN=secret")
    (folder / "extra" / "scaler.pkl.gz").write_bytes(b"pickle")
    (folder / "extra" / "outside.json").symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text("{}")
    plan = plan_upload(folder, "me/run")
    assert plan.files == ["README.md", "config.json", "model.safetensors", "preprocessor_config.json"] and plan.card is None
    assert plan.skipped == [
        "checkpoint-10/\ttraining leftover, 1 files",
        "extra/.env\thidden",
        "extra/outside.json\ta symbolic link (it may point outside the folder)",
        "extra/scaler.pkl.gz\tpickle-based, unsafe to load",
        "training_args.bin\tpickle-based, unsafe to load",
    ]


def test_dry_run_lists_every_file_and_sends_nothing(tiny_hubert):
    result = script("push_to_hub.py", str(tiny_hubert), "--repo-id", "me/tiny", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "  upload config.json",
        "  upload model.safetensors",
        "  upload preprocessor_config.json",
        "  upload README.md (model card generated: the folder has none)",
        "dry run: 4 files would be uploaded; nothing was sent",
    ]


def test_push_errors_are_clear_and_never_show_the_token(tiny_hubert, tmp_path):
    no_token = script("push_to_hub.py", str(tiny_hubert), "--repo-id", "me/tiny", HF_TOKEN="", HF_HOME=str(tmp_path / "hf"))
    assert no_token.returncode == 1 and "no Hugging Face token" in no_token.stderr
    offline = script("push_to_hub.py", str(tiny_hubert), "--repo-id", "me/tiny", HF_TOKEN="hf_secret_value_123")
    assert offline.returncode == 1 and "cannot be reached" in offline.stderr and "nothing was uploaded" in offline.stderr
    assert "hf_secret_value_123" not in offline.stdout + offline.stderr
    wrong = script("push_to_hub.py", str(tmp_path), "--repo-id", "me/tiny", "--dry-run")
    assert wrong.returncode == 1 and "not a checkpoint folder" in wrong.stderr
    with pytest.raises(ModelError, match="cannot be reached"):  # the library call behind the script, same error
        push(plan_upload(tiny_hubert, "me/tiny"), token="hf_x")


def test_space_plan_is_the_app_and_the_package():
    plan = plan_space_upload(ROOT, "me/musicgenre-space")
    assert plan.repo_type == "space" and plan.url == "https://huggingface.co/spaces/me/musicgenre-space"
    assert {"app.py", "requirements.txt", "packages.txt", "README.md", "musicgenre/serving/service.py"} <= set(plan.files)
    assert "musicgenre/models/bundled/shallow/pipeline.skops" in plan.files
    shipped = {"musicgenre/models/pretrained/MSD_musicnn/model.onnx", "musicgenre/models/bundled/musicnn/head.safetensors"}
    assert shipped <= set(plan.files)
    assert not any(f.startswith(("tests/", "experiments/", "results/", "benchmarks/")) or f.endswith(".pyc") for f in plan.files)
    assert not any(f.startswith("musicgenre/testing/") for f in plan.files)  # test support stays behind


def test_download_uses_and_reports_a_cached_copy(tmp_path):
    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = cache / "models--me--bundled" / "snapshots" / commit
    shutil.copytree(bundled_model_path(), snapshot)
    (cache / "models--me--bundled" / "refs").mkdir()
    (cache / "models--me--bundled" / "refs" / "main").write_text(commit)
    result = script("download_model.py", "me/bundled", HF_HUB_CACHE=str(cache))
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    assert line == {"repo_id": "me/bundled", "revision": None, "path": str(snapshot), "source": "cache", "kind": "probe"}
    assert "using the cached copy" in result.stderr
    missing = script("download_model.py", "me/not-cached", HF_HUB_CACHE=str(cache))
    assert missing.returncode == 1 and "not in the local cache" in missing.stderr
    clip = write_audio(tmp_path / "clip.wav", seconds=3.0)
    predicted = subprocess.run(  # `predict` takes the Hub id and, offline, the same cached copy
        [sys.executable, "-m", "musicgenre", "predict", "--model", "me/bundled", str(clip)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)},
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["genre"]
