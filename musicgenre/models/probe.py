"""A genre probe on a pretrained backbone: musicnn clip embeddings, standardised, into a logistic regression.

Saved as a folder: ``musicgenre.json`` (labels, backbone, layer, and the SHA-256 of the backbone's
ONNX file the head was trained on), ``head.safetensors`` (the scaler's mean and scale, the
regression's coefficients and intercepts) and a model card. Prediction is NumPy over the ONNX
backbone: no scikit-learn, torch or librosa import, so a clip is classified in a fraction of
the start-up time of the feature models. ``musicgenre.training.probe`` fits and cross-validates it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgenre.data.gtzan import GENRES
from musicgenre.errors import ModelError
from musicgenre.models.musicnn import LAYERS, SAMPLE_RATE, Backbone, clip_embedding, load_backbone, top_tags
from musicgenre.util.atomic import atomic_folder

FORMAT = "musicgenre-probe"
HEAD_FILE = "head.safetensors"
HEAD_KEYS = ("mean", "scale", "coef", "intercept")


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class ProbeModel:
    """Backbone + linear head, applied window by window (``window_seconds`` each, 3 s patches inside)."""

    backbone: Backbone
    layer: str
    head: dict[str, np.ndarray]
    labels: list[str] = field(default_factory=lambda: list(GENRES))
    window_seconds: float = 30.0
    normalise: bool = True
    meta: dict = field(default_factory=dict)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """Genre probabilities of clip embeddings (rows): the saved scaler and logistic regression."""
        h = self.head
        return softmax(((embeddings - h["mean"]) / h["scale"]) @ h["coef"].T + h["intercept"]).astype(np.float64)

    def window_outputs(self, parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Per window: genre probabilities and the tagger's mean tag probabilities."""
        outs = [self.backbone.analyse(p, self.normalise) for p in parts]
        embeddings = np.stack([clip_embedding(o, self.layer) for o in outs])
        return self.probabilities(embeddings), np.stack([o["tags"].mean(axis=0) for o in outs])

    def predict_windows(self, parts: list[np.ndarray]) -> np.ndarray:
        return self.window_outputs(parts)[0]

    def top_tags(self, tag_probabilities: np.ndarray, k: int = 5) -> list[dict]:
        return top_tags(tag_probabilities, self.backbone.tag_names, k)


def head_from_pipeline(pipeline) -> dict[str, np.ndarray]:
    """The arrays of a fitted [VarianceThreshold +] StandardScaler + LogisticRegression pipeline (multinomial),
    full width: a dropped dimension gets mean 0, scale 1 and no weight."""
    steps = dict(pipeline.steps)
    scaler, regression = steps["scale"], pipeline.steps[-1][1]
    if list(regression.classes_) != list(range(len(GENRES))):
        raise ModelError("the probe's head must be trained on every genre (classes 0-9)")
    kept = steps["constant"].get_support() if "constant" in steps else np.ones(scaler.n_features_in_, bool)
    mean, scale = np.zeros(len(kept), np.float32), np.ones(len(kept), np.float32)
    coef = np.zeros((regression.coef_.shape[0], len(kept)), np.float32)
    mean[kept], scale[kept], coef[:, kept] = scaler.mean_, scaler.scale_, regression.coef_
    return {"mean": mean, "scale": scale, "coef": coef, "intercept": regression.intercept_.astype(np.float32)}


def save_probe(model: ProbeModel, folder: str | os.PathLike, card: str | None = None) -> Path:
    """Write ``model`` to ``folder`` (replaced atomically if it exists)."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        save_file({k: np.ascontiguousarray(model.head[k], dtype=np.float32) for k in HEAD_KEYS}, str(tmp / HEAD_FILE))
        config = {
            **{k: v for k, v in model.meta.items() if k != "runtime"},
            "format": FORMAT,
            "version": 1,
            "labels": model.labels,
            "backbone": model.backbone.name,
            "backbone_onnx_sha256": model.backbone.config["onnx_sha256"],
            "layer": model.layer,
            "normalise_level": model.normalise,
            "sample_rate": SAMPLE_RATE,
            "window_seconds": model.window_seconds,
        }
        (tmp / "musicgenre.json").write_text(json.dumps(config, indent=2) + "\n")
        if card:
            (tmp / "README.md").write_text(card)
    return folder


def load_probe(folder: str | os.PathLike, config: dict) -> ProbeModel:
    """Load a saved probe; refuses a head trained on another version of its backbone."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    backbone = load_backbone(config["backbone"])
    if config.get("backbone_onnx_sha256") != backbone.config["onnx_sha256"]:
        raise ModelError(f"{folder}: its head was trained on another version of the {config['backbone']} backbone")
    head = load_file(folder / HEAD_FILE)
    if set(head) != set(HEAD_KEYS):
        raise ModelError(f"{folder}: {HEAD_FILE} does not hold a probe head ({sorted(head)})")
    labels = list(config["labels"])
    if config.get("layer") not in LAYERS:
        raise ModelError(f"{folder}: unknown embedding layer {config.get('layer')!r}; expected one of {', '.join(LAYERS)}")
    width = sum(backbone.config["embeddings"][name] for name in LAYERS[config["layer"]])
    shapes = {k: v.shape for k, v in head.items()}
    expected = {"mean": (width,), "scale": (width,), "coef": (len(labels), width), "intercept": (len(labels),)}
    if shapes != expected:
        raise ModelError(
            f"{folder}: the head's shapes {shapes} do not fit {len(labels)} labels on the {width}-wide {config['layer']}"
        )
    meta = {k: v for k, v in config.items() if k not in ("labels", "window_seconds", "sample_rate")}
    meta["runtime"] = backbone.runtime
    return ProbeModel(
        backbone, config["layer"], head, labels, float(config["window_seconds"]), bool(config["normalise_level"]), meta
    )
