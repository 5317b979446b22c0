"""Saving and loading models in formats that are safe to load.

A model is a folder: ``musicgenre.json`` (labels, features, audio window), the scikit-learn
pipeline as ``pipeline.skops`` and, for XGBoost, the booster as ``xgboost.json``; plus a
``README.md`` model card. skops refuses to build any type we have not allowed, so a
downloaded model cannot run code on load (unlike a pickle).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from musicgenre.data import GENRES
from musicgenre.errors import ModelError
from musicgenre.features import FEATURE_COLUMNS, SAMPLE_RATE
from musicgenre.shallow import full_proba

FORMAT = "musicgenre-shallow"
CONFIG_NAME = "musicgenre.json"
PIPELINE_NAME = "pipeline.skops"
XGB_NAME = "xgboost.json"
# Types beyond skops' defaults that our own pipelines contain, and nothing else: our transformer
# and the plain-data helpers scikit-learn's CalibratedClassifierCV (the SVM's probabilities) keeps.
TRUSTED_TYPES = [
    "musicgenre.shallow.LogVariance",
    "musicgenre.shallow.GainInvariant",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
]


@dataclass
class ShallowModel:
    """A fitted feature pipeline plus what is needed to apply it to audio."""

    pipeline: object
    labels: list[str] = field(default_factory=lambda: list(GENRES))
    window_seconds: float = 30.0
    sample_rate: int = SAMPLE_RATE
    meta: dict = field(default_factory=dict)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Rows of probabilities over ``labels`` for feature rows in FEATURE_COLUMNS order."""
        return full_proba(self.pipeline, X, len(self.labels))


def save_model(model: ShallowModel, folder: str | os.PathLike, card: str | None = None) -> Path:
    """Write ``model`` to ``folder`` (replaced atomically if it exists)."""
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    tmp.chmod(0o755)
    try:
        pipeline = model.pipeline
        estimator = pipeline.steps[-1][1]
        config = {
            **model.meta,  # first: what is computed below always wins over stale loaded values
            "format": FORMAT,
            "version": 1,
            "labels": model.labels,
            "feature_columns": FEATURE_COLUMNS,
            "sample_rate": model.sample_rate,
            "window_seconds": model.window_seconds,
            "classes": [int(c) for c in pipeline.classes_],
            "xgboost": False,
        }
        if type(estimator).__name__ == "XGBClassifier":
            estimator.save_model(tmp / XGB_NAME)
            pipeline = Pipeline(pipeline.steps[:-1])
            config["xgboost"] = True
        sio.dump(pipeline, tmp / PIPELINE_NAME)
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        if card:
            (tmp / "README.md").write_text(card)
        # Swap folders so that a crash at any point leaves the old or the new model, never none.
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_model_folder(folder: str | os.PathLike) -> ShallowModel:
    """Load a folder written by :func:`save_model`, refusing any type not explicitly trusted."""
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise ModelError(f"{folder}: not a musicgenre model folder (no {CONFIG_NAME})")
    try:
        return _load_model_folder(folder)
    except ModelError:
        raise
    except Exception as exc:  # a damaged download or hand-edited folder: say which, not where it broke
        raise ModelError(f"{folder}: the model files are damaged or incomplete ({type(exc).__name__}: {exc})") from None


def _load_model_folder(folder: Path) -> ShallowModel:
    import skops.io as sio

    config = json.loads((folder / CONFIG_NAME).read_text())
    if config.get("format") != FORMAT:
        raise ModelError(f"{folder}: unknown model format {config.get('format')!r}")
    if config.get("feature_columns") != FEATURE_COLUMNS:
        raise ModelError(f"{folder}: the model was trained on other feature columns")
    untrusted = sio.get_untrusted_types(file=folder / PIPELINE_NAME)
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ModelError(f"{folder}: refusing to load types that are not trusted: {refused}")
    pipeline = sio.load(folder / PIPELINE_NAME, trusted=untrusted)
    if config.get("xgboost"):
        from sklearn.pipeline import Pipeline
        from xgboost import XGBClassifier

        booster = XGBClassifier()
        booster.load_model(folder / XGB_NAME)
        pipeline = Pipeline([*pipeline.steps, ("model", booster)])
    classes = np.asarray(config["classes"])
    if not hasattr(pipeline, "classes_") or not np.array_equal(np.asarray(pipeline.classes_), classes):
        raise ModelError(f"{folder}: the pipeline's classes do not match its config")
    meta = {k: v for k, v in config.items() if k not in ("labels", "window_seconds", "sample_rate")}
    return ShallowModel(pipeline, config["labels"], config["window_seconds"], config["sample_rate"], meta)


def bundled_model_path() -> Path:
    return Path(str(resources.files("musicgenre") / "bundled" / "shallow"))


def resolve_model(spec: str = "bundled", revision: str | None = None) -> ShallowModel:
    """``bundled``, a local folder, or a Hugging Face Hub model id (downloaded to the cache)."""
    if spec in ("bundled", "bundled:shallow"):
        path = bundled_model_path()
        if not (path / CONFIG_NAME).is_file():
            raise ModelError("the bundled model is missing from this installation (run experiments/train_bundled.py)")
        return load_model_folder(path)
    if Path(spec).exists():
        return load_model_folder(spec)
    if spec.count("/") == 1 and not spec.startswith((".", "/")):
        return load_model_folder(download_model(spec, revision))
    raise ModelError(f"no model {spec!r}: not 'bundled', an existing folder, or a Hub id like 'owner/name'")


def download_model(repo_id: str, revision: str | None = None, local_dir: str | None = None) -> Path:
    """snapshot_download with errors that say what to do (offline, missing repo)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (
            HfHubHTTPError,
            HFValidationError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError:
        raise ModelError("loading Hub models needs huggingface_hub: pip install huggingface_hub") from None
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_dir=local_dir))
    except LocalEntryNotFoundError:
        raise ModelError(f"{repo_id}: not in the local cache and the Hugging Face Hub cannot be reached (offline?)") from None
    except HFValidationError as exc:
        raise ModelError(f"{repo_id!r} is not a valid Hub model id ({exc})") from None
    except RepositoryNotFoundError:
        raise ModelError(f"{repo_id}: no such model repository on the Hugging Face Hub (or it is private)") from None
    except (HfHubHTTPError, OSError) as exc:
        raise ModelError(f"{repo_id}: download failed ({exc})") from None
