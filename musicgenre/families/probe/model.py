"""A genre probe on a pretrained backbone: musicnn clip embeddings, standardised, into a logistic regression.

Saved as a folder: ``musicgenre.json`` (labels, backbone, layer, and the SHA-256 of the backbone's
ONNX file the head was trained on), ``head.safetensors`` (the scaler's mean and scale, the
regression's coefficients and intercepts) and a model card.

A robust probe (format version 2, ``families.probe.robust``) has up to three heads, each with its own
temperature (calibrated out of fold): ``wide`` (trained on clean clips and random room, microphone and
noise copies; it answers when alone), ``clean`` and ``narrow`` (telephone-like copies). Each window
goes to the head its measured channel calls for (``route``: the band and noise that
``audio.quality`` measures), a clean-sounding window to the mean of ``clean`` and ``wide``. Prediction is NumPy over the ONNX
backbone: no scikit-learn, torch or librosa import, so a clip is classified in a fraction of
the start-up time of the feature models. ``musicgenre.families.probe.train`` fits and cross-validates it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgenre.audio.quality import NARROW_HZ
from musicgenre.data.gtzan import GENRES
from musicgenre.errors import ModelError
from musicgenre.families.probe import FORMAT  # the registry line and the folders name one format
from musicgenre.models.folder import write_model_folder
from musicgenre.models.musicnn import LAYERS, SAMPLE_RATE, Backbone, clip_embedding, load_backbone, top_tags
from musicgenre.models.runtime import Runtime

HEAD_FILE = "head.safetensors"
HEAD_KEYS = ("mean", "scale", "coef", "intercept")
HEAD_NAMES = ("wide", "clean", "narrow")  # "wide" first: the head that answers whatever no other head is for


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def route(heads, low_hz: float, high_hz: float, snr_db: float, narrow_below_hz: float) -> str:
    """The head for a window with this measured channel: ``narrow`` for a band ending below ``narrow_below_hz``;
    ``clean`` for a window with no band or noise issue (``audio.quality``'s own lines); else ``wide``. A head the
    model does not have passes its windows to ``wide``."""
    from musicgenre.audio.quality import LIMITED_HIGH_HZ, LIMITED_LOW_HZ, NOISY_SNR_DB

    if "narrow" in heads and high_hz < narrow_below_hz:
        return "narrow"
    if "clean" in heads and high_hz >= LIMITED_HIGH_HZ and low_hz <= LIMITED_LOW_HZ and snr_db >= NOISY_SNR_DB:
        return "clean"
    return "wide"


@dataclass
class ProbeModel:
    """Backbone + linear head(s), applied window by window (``window_seconds`` each, 3 s patches inside).

    ``head`` is the ``wide`` head; ``more_heads`` may add ``clean`` and ``narrow``; ``temperature`` holds each
    head's (1 where absent: an uncalibrated version-1 probe); ``narrow_below_hz`` is the routing's band edge.
    """

    backbone: Backbone
    layer: str
    head: dict[str, np.ndarray]
    labels: list[str] = field(default_factory=lambda: list(GENRES))
    window_seconds: float = 30.0
    normalise: bool = True
    meta: dict = field(default_factory=dict)
    more_heads: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    temperature: dict[str, float] = field(default_factory=dict)
    narrow_below_hz: float = NARROW_HZ

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def heads(self) -> dict[str, dict[str, np.ndarray]]:
        return {"wide": self.head, **self.more_heads}

    def head_probabilities(self, name: str, embeddings: np.ndarray) -> np.ndarray:
        """One head's calibrated genre probabilities of clip embeddings (rows): scaler, regression, temperature."""
        h = self.heads[name]
        logits = ((embeddings - h["mean"]) / h["scale"]) @ h["coef"].T + h["intercept"]
        return softmax(logits / self.temperature.get(name, 1.0)).astype(np.float64)

    def probabilities(self, embeddings: np.ndarray, channels: list[tuple[float, float, float]] | None = None) -> np.ndarray:
        """Genre probabilities of clip embeddings; with several heads, each row by the head its channel
        ``(low_hz, high_hz, snr_db)`` is routed to (a clean one: the mean of ``clean`` and ``wide``)."""
        if not self.more_heads or channels is None:
            return self.head_probabilities("wide", embeddings)
        rows = []
        for embedding, channel in zip(embeddings, channels, strict=True):
            name = route(self.heads, *channel, self.narrow_below_hz)
            probs = self.head_probabilities(name, embedding[None])[0]
            if name == "clean":
                probs = (probs + self.head_probabilities("wide", embedding[None])[0]) / 2
            rows.append(probs)
        return np.stack(rows)

    def window_outputs(self, parts: list[np.ndarray], channels: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per window: genre probabilities and the tagger's mean tag probabilities. ``channels``: each window's
        measured (low_hz, high_hz, snr_db) if the caller has them, else measured here when the heads need them."""
        outs = [self.backbone.analyse(p, self.normalise) for p in parts]
        embeddings = np.stack([clip_embedding(o, self.layer) for o in outs])
        if self.more_heads and channels is None:
            channels = [channel(p) for p in parts]
        return self.probabilities(embeddings, channels), np.stack([o["tags"].mean(axis=0) for o in outs])

    def predict_windows(self, parts: list[np.ndarray]) -> np.ndarray:
        return self.window_outputs(parts)[0]

    def top_tags(self, tag_probabilities: np.ndarray, k: int = 5) -> list[dict]:
        return top_tags(tag_probabilities, self.backbone.tag_names, k)


def channel(y: np.ndarray) -> tuple[float, float, float]:
    """(low_hz, high_hz, snr_db) of 16 kHz audio, as ``audio.quality`` measures them: what ``route`` reads."""
    from musicgenre.audio.quality import assess

    q = assess(y, SAMPLE_RATE)
    return q.low_hz, q.high_hz, q.snr_db


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
    """Write ``model`` to ``folder`` (replaced atomically if it exists): version 1 for a single uncalibrated head,
    else version 2 (``<head>.<key>`` arrays, each head's temperature and the routing's band edge)."""
    from safetensors.numpy import save_file

    single = not model.more_heads and not model.temperature
    arrays = {
        (k if single else f"{name}.{k}"): np.ascontiguousarray(head[k], dtype=np.float32)
        for name, head in model.heads.items()
        for k in HEAD_KEYS
    }

    def write_files(tmp: Path) -> dict:
        save_file(arrays, str(tmp / HEAD_FILE))
        config = {
            "format": FORMAT,
            "version": 1 if single else 2,
            "labels": model.labels,
            "backbone": model.backbone.name,
            "backbone_onnx_sha256": model.backbone.config["onnx_sha256"],
            "layer": model.layer,
            "normalise_level": model.normalise,
            "sample_rate": SAMPLE_RATE,
            "window_seconds": model.window_seconds,
        }
        if not single:
            config["heads"] = [{"name": n, "temperature": model.temperature.get(n, 1.0)} for n in model.heads]
            config["narrow_below_hz"] = model.narrow_below_hz
        return config

    return write_model_folder(folder, write_files, meta=model.meta, card=card)


def load_probe(folder: str | os.PathLike, config: dict, runtime: Runtime | None = None) -> ProbeModel:
    """Load a saved probe, its backbone run by ``runtime`` (``musicgenre.models.runtime``: ONNX Runtime, or the torch
    port); refuses a head trained on another version of its backbone."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    backbone = load_backbone(config["backbone"], runtime)
    if config.get("backbone_onnx_sha256") != backbone.config["onnx_sha256"]:
        raise ModelError(f"{folder}: its head was trained on another version of the {config['backbone']} backbone")
    arrays = load_file(folder / HEAD_FILE)
    listed = config.get("heads") or [{"name": "wide", "temperature": 1.0}]
    names = [h["name"] for h in listed]
    if "wide" not in names or not set(names) <= set(HEAD_NAMES):
        raise ModelError(f"{folder}: unknown probe heads {names}; expected 'wide' and any of {', '.join(HEAD_NAMES)}")
    prefix = (lambda name: "") if "heads" not in config else (lambda name: f"{name}.")
    expected_keys = {prefix(n) + k for n in names for k in HEAD_KEYS}
    if set(arrays) != expected_keys:
        raise ModelError(f"{folder}: {HEAD_FILE} does not hold the probe heads {names} ({sorted(arrays)})")
    heads = {n: {k: arrays[prefix(n) + k] for k in HEAD_KEYS} for n in names}
    labels = list(config["labels"])
    if config.get("layer") not in LAYERS:
        raise ModelError(f"{folder}: unknown embedding layer {config.get('layer')!r}; expected one of {', '.join(LAYERS)}")
    width = sum(backbone.config["embeddings"][name] for name in LAYERS[config["layer"]])
    expected = {"mean": (width,), "scale": (width,), "coef": (len(labels), width), "intercept": (len(labels),)}
    for name, head in heads.items():
        shapes = {k: v.shape for k, v in head.items()}
        if shapes != expected:
            raise ModelError(
                f"{folder}: the {name} head's shapes {shapes} do not fit {len(labels)} labels"
                f" on the {width}-wide {config['layer']}"
            )
    meta = {k: v for k, v in config.items() if k not in ("labels", "window_seconds", "sample_rate", "heads")}
    meta["runtime"] = backbone.runtime
    return ProbeModel(
        backbone, config["layer"], heads.pop("wide"), labels, float(config["window_seconds"]), bool(config["normalise_level"]),
        meta, heads, {h["name"]: float(h["temperature"]) for h in listed if "heads" in config},
        float(config.get("narrow_below_hz", NARROW_HZ)),
    )  # fmt: skip
