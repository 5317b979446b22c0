"""What the app serves: models loaded once at start-up, and one clip analysed by one or all of them.

The Gradio UI (``app.py``) only lays out what ``analyse`` returns. Everything here is plain
Python, so the app's behaviour is unit-tested without a server, and usable from a notebook.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgenre.audio.io import DEFAULT_MAX_SECONDS, load_audio, prepare_audio
from musicgenre.data.gtzan import GENRES
from musicgenre.errors import ModelError
from musicgenre.models.io import hub_reachable, resolve_model
from musicgenre.models.predict import GenreModel, summarise, window_outputs, window_probabilities

log = logging.getLogger(__name__)

# The Hugging Face audio course's DistilHuBERT fine-tuned on GTZAN (0.83 on its random split).
DEFAULT_MODEL_ID = "sanchit-gandhi/distilhubert-finetuned-gtzan"
BUNDLED_PROBE_NAME = "bundled (pretrained musicnn + linear probe)"
BUNDLED_NAME = "bundled (handcrafted features)"
BUNDLED_CNN_NAME = "bundled (CNN on mel spectrograms)"
TOP_TAGS = 10
MEL_SAMPLE_RATE = 22050


@dataclass
class ModelSet:
    """The models the app serves, by display name in display order, and what could not be loaded."""

    models: dict[str, GenreModel]
    notices: list[str] = field(default_factory=list)

    def select(self, name: str | None) -> dict[str, GenreModel]:
        """All models for ``None``/"all", else the one named (a ModelError names the choices)."""
        if name in (None, "", "all"):
            return dict(self.models)
        if name not in self.models:
            raise ModelError(f"no model {name!r}; choose one of {list(self.models)} or 'all'")
        return {name: self.models[name]}

    def warm_up(self) -> None:
        """Run every model once on a short synthetic clip, so the first visitor does not pay for JIT compilation."""
        from musicgenre.audio.example import example_clip

        clip = example_clip(2.0, MEL_SAMPLE_RATE)
        for name, model in list(self.models.items()):
            try:
                window_probabilities(model, prepare_audio(clip, MEL_SAMPLE_RATE, model.sample_rate).samples)
            except Exception as exc:  # a model that cannot classify a clip is not served
                log.warning("model %s failed its warm-up: %s", name, exc)
                del self.models[name]
                self.notices.append(f"Not served: {name} failed on a test clip ({type(exc).__name__}: {exc})")
        if not self.models:
            raise ModelError("no model could classify a test clip: " + " ".join(self.notices))

    def describe(self) -> list[dict]:
        """Name, labels, window and provenance of each model (what an API user needs to choose one)."""
        keys = ("estimator", "feature_set", "model_type", "architecture", "backbone", "layer", "runtime", "source")
        keys += ("trained_on", "validation", "cross_validation")
        return [
            {"name": n, "labels": m.labels, "window_seconds": m.window_seconds, **{k: m.meta[k] for k in keys if k in m.meta}}
            for n, m in self.models.items()
        ]


def _display_name(spec: str, model: GenreModel) -> str:
    kind = model.meta.get("model_type") or model.meta.get("estimator") or "model"
    return f"{kind}: {Path(spec).name if os.path.isdir(spec) else spec}"


def load_models(
    model_id: str | None = DEFAULT_MODEL_ID, extra: list[str] | tuple[str, ...] = (), bundled: bool = True
) -> ModelSet:
    """Load the Hub model ``model_id``, the bundled model(s) and ``extra`` folders/ids; never fail on one of them.

    A model that cannot be loaded (no network, bad folder) becomes a notice the app shows; the
    app serves whatever did load. Only if nothing loads is that an error.
    """
    models: dict[str, GenreModel] = {}
    notices: list[str] = []
    specs = [s for s in [model_id, *extra] if s]
    online = hub_reachable() if any(not os.path.exists(s) for s in specs) else False
    if not online and any(not os.path.exists(s) for s in specs):
        notices.append("The Hugging Face Hub cannot be reached (offline): Hub models are served only if already cached.")
    for spec in specs[:1]:
        _add(models, notices, spec, online)
    if bundled:
        _add(models, notices, "bundled:musicnn", online, BUNDLED_PROBE_NAME)
        _add(models, notices, "bundled:shallow", online, BUNDLED_NAME)
        _add(models, notices, "bundled:cnn", online, BUNDLED_CNN_NAME)
    for spec in specs[1:]:
        _add(models, notices, spec, online)
    if not models:
        raise ModelError("no model could be loaded: " + " ".join(notices))
    return ModelSet(models, notices)


def _add(models: dict, notices: list[str], spec: str, online: bool, name: str | None = None) -> None:
    try:
        model = resolve_model(spec, online=online)
    except ModelError as exc:
        log.warning("model not loaded: %s", exc)
        notices.append(f"Not loaded: {exc}")
        return
    name = name or _display_name(spec, model)
    unique, n = name, 1
    while unique in models:  # e.g. two runs/*/final folders: both served, told apart
        n += 1
        unique = f"{name} ({n})"
    models[unique] = model


@dataclass
class ModelResult:
    """One model's answer for one clip: per-window probabilities and how long it took (wall time, shared cores)."""

    name: str
    labels: list[str]
    window_probs: np.ndarray
    window_seconds: float
    seconds: float

    @property
    def window_starts(self) -> np.ndarray:
        return np.arange(len(self.window_probs)) * self.window_seconds

    def to_dict(self) -> dict:
        return {"model": self.name, **summarise(self.labels, self.window_probs), "seconds": round(self.seconds, 3)}


@dataclass
class Analysis:
    """A clip, as analysed: its duration, whether it was cut, and each model's result."""

    source: str
    duration: float
    truncated: bool
    original_seconds: float | None
    max_seconds: float
    results: list[ModelResult]
    samples: np.ndarray = field(repr=False)
    sample_rate: int = MEL_SAMPLE_RATE
    tags: list[dict] | None = None  # the pretrained tagger's top tags, when a probe model was run

    def to_dict(self) -> dict:
        out = {
            "duration_seconds": round(self.duration, 3),
            "truncated": self.truncated,
            "results": [r.to_dict() for r in self.results],
        }
        if self.tags is not None:
            out["tags"] = self.tags
        if self.truncated:
            out["notice"] = self.truncation_notice()
        return out

    def truncation_notice(self) -> str:
        length = f"{self.original_seconds:.0f} s" if self.original_seconds else "longer"
        return f"The recording ({length}) was cut to its first {self.max_seconds:g} s; only that part was analysed."


def analyse(path: str | os.PathLike, models: dict[str, GenreModel], max_seconds: float = DEFAULT_MAX_SECONDS) -> Analysis:
    """Decode ``path`` once (at most ``max_seconds``) and run every model on all of its windows.

    The clip is decoded at 22,050 Hz: GTZAN's rate, what the feature and CNN models and the
    mel-spectrogram use as is; a 16 kHz transformer or the probe resamples it once more.
    Several models run at the same time, one thread each: the feature model's NumPy work is
    mostly one core, the networks' runtimes use the others and release the GIL, so comparing
    all three bundled models takes about as long as the slowest (``benchmarks/startup.py``).
    The first pretrained probe among ``models`` also reports its tagger's top tags ("what the
    pretrained tagger hears"), from the same pass that classifies.
    """
    audio = load_audio(path, sr=MEL_SAMPLE_RATE, max_seconds=max_seconds)

    def run(item: tuple[str, GenreModel]) -> tuple[ModelResult, np.ndarray | None]:
        name, model = item
        start = time.perf_counter()
        samples = prepare_audio(audio.samples, audio.sample_rate, model.sample_rate, Path(path).name, None).samples
        probs, tag_probs = window_outputs(model, samples)
        return ModelResult(name, list(model.labels), probs, model.window_seconds, time.perf_counter() - start), tag_probs

    if len(models) <= 1:
        outputs = [run(item) for item in models.items()]
    else:
        with ThreadPoolExecutor(len(models), thread_name_prefix="musicgenre-model") as pool:
            outputs = list(pool.map(run, models.items()))  # display order; the first failure is raised
    results, tags = [result for result, _ in outputs], None
    for model, (_, tag_probs) in zip(models.values(), outputs, strict=True):
        if tag_probs is not None:
            tags = model.top_tags(tag_probs.mean(axis=0), TOP_TAGS)
            break
    return Analysis(
        str(path), audio.seconds, audio.truncated, audio.original_seconds, max_seconds, results, audio.samples,
        audio.sample_rate, tags,
    )  # fmt: skip


def ordered_scores(result: ModelResult) -> dict[str, float]:
    """Mean probabilities keyed by label, the ten GTZAN genres first in their usual order."""
    scores = summarise(result.labels, result.window_probs)["scores"]
    order = [g for g in GENRES if g in scores] + [label for label in scores if label not in GENRES]
    return {label: scores[label] for label in order}


def mel_spectrogram_db(samples: np.ndarray, sr: int, n_mels: int = 128) -> tuple[np.ndarray, int, int]:
    """Log-mel spectrogram (dB re max) of a clip for display, at 22,050 Hz; returns (S_db, sr, hop)."""
    from musicgenre.audio import spectral
    from musicgenre.audio.io import resample

    samples = resample(samples, sr, MEL_SAMPLE_RATE)
    hop = 512 if len(samples) <= 120 * MEL_SAMPLE_RATE else 2048  # long clips: fewer columns to draw
    mel = spectral.melspectrogram(samples, MEL_SAMPLE_RATE, hop=hop, n_mels=n_mels)
    return spectral.power_to_db(mel, ref=None), MEL_SAMPLE_RATE, hop


def mel_axis_ticks(n_mels: int, sr: int) -> tuple[list[float], list[str]]:
    """Where on a mel spectrogram's band axis (0..n_mels) the octaves from 250 Hz up lie, and their labels."""
    from musicgenre.audio import spectral

    centres = spectral.mel_frequencies(sr, n_mels + 2)[1:-1]
    hz = [0, 250, 500, 1000, 2000, 4000, 8000, 16000]
    hz = [f for f in hz if f <= sr / 2]
    positions = [float(np.interp(f, centres, np.arange(n_mels))) + 0.5 for f in hz]
    return positions, [f"{f / 1000:g}k" if f >= 1000 else str(f) for f in hz]
