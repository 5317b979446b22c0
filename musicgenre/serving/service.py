"""What the app serves: models loaded once at start-up, and one clip analysed by one or all of them.

The Gradio UI (``app.py``) only lays out what ``analyse`` returns. Everything here is plain
Python, so the app's behaviour is unit-tested without a server, and usable from a notebook.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from musicgenre.audio.io import DEFAULT_MAX_SECONDS, float_mono, load_audio, prepare_audio, silent_edges, trim_silence
from musicgenre.audio.quality import Quality, assess
from musicgenre.data.gtzan import GENRES
from musicgenre.errors import ModelError
from musicgenre.families import FAMILIES, resolve_model
from musicgenre.models.hub import hub_reachable
from musicgenre.models.predict import GenreModel, judge, summarise, window_outputs, window_probabilities
from musicgenre.models.runtime import Runtime

log = logging.getLogger(__name__)

# The Hugging Face audio course's DistilHuBERT fine-tuned on GTZAN (0.83 on its random split).
DEFAULT_MODEL_ID = "sanchit-gandhi/distilhubert-finetuned-gtzan"
# Every bundled model, in the registry's order (the default first), by the name the app shows: "bundled (...)".
BUNDLED_MODELS = {f"bundled:{name}": f"bundled ({family.served_as})" for family in FAMILIES.values() for name in family.bundled}
BUNDLED_PROBE_NAME = BUNDLED_MODELS["bundled:musicnn"]  # "bundled (pretrained musicnn + linear probe)"
BUNDLED_NAME = BUNDLED_MODELS["bundled:shallow"]  # "bundled (handcrafted features)"
BUNDLED_CNN_NAME = BUNDLED_MODELS["bundled:cnn"]  # "bundled (CNN on mel spectrograms)"
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
    model_id: str | None = DEFAULT_MODEL_ID,
    extra: list[str] | tuple[str, ...] = (),
    bundled: bool = True,
    runtime: Runtime | None = None,
    cache_root: Path | None = None,
) -> ModelSet:
    """Load the Hub model ``model_id``, the bundled model(s) and ``extra`` folders/ids, each run by ``runtime``
    (``musicgenre.models.runtime``: the app's ``--runtime``), exports kept in ``cache_root`` (the app's cache folder);
    never fail on one of them.

    A model that cannot be loaded (no network, bad folder) becomes a notice the app shows; the
    app serves whatever did load. Only if nothing loads is that an error.
    """
    models: dict[str, GenreModel] = {}
    notices: list[str] = []
    specs = [s for s in [model_id, *extra] if s]
    online = hub_reachable() if any(not os.path.exists(s) for s in specs) else False
    if not online and any(not os.path.exists(s) for s in specs):
        notices.append("The Hugging Face Hub cannot be reached (offline): Hub models are served only if already cached.")
    load = partial(resolve_model, online=online, runtime=runtime, cache_root=cache_root)
    for spec in specs[:1]:
        _add(models, notices, spec, load)
    if bundled:
        for spec, name in BUNDLED_MODELS.items():
            _add(models, notices, spec, load, name)
    for spec in specs[1:]:
        _add(models, notices, spec, load)
    if not models:
        raise ModelError("no model could be loaded: " + " ".join(notices))
    return ModelSet(models, notices)


def _add(models: dict, notices: list[str], spec: str, load: Callable[[str], GenreModel], name: str | None = None) -> None:
    try:
        model = load(spec)
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
    uncertain: bool = False  # ``models.predict.judge``: a severe quality issue, or too low a top probability

    @property
    def window_starts(self) -> np.ndarray:
        return np.arange(len(self.window_probs)) * self.window_seconds

    @property
    def top_probability(self) -> float:
        return float(self.window_probs.mean(axis=0).max())

    def to_dict(self) -> dict:
        summary = summarise(self.labels, self.window_probs)
        return {"model": self.name, **summary, "uncertain": self.uncertain, "seconds": round(self.seconds, 3)}


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
    quality: Quality | None = None  # the recording's, as analysed (after trimming): one for all models
    trimmed: tuple[float, float] | None = None  # seconds of silence cut at the start and the end, when asked

    def to_dict(self) -> dict:
        out = {
            "duration_seconds": round(self.duration, 3),
            "truncated": self.truncated,
            "results": [r.to_dict() for r in self.results],
        }
        if self.quality is not None:
            out["quality"] = self.quality.to_dict()
        if self.trimmed is not None:
            out["trimmed_seconds"] = {"start": round(self.trimmed[0], 3), "end": round(self.trimmed[1], 3)}
        if self.tags is not None:
            out["tags"] = self.tags
        if self.truncated:
            out["notice"] = self.truncation_notice()
        return out

    def uncertainty_note(self, result: ModelResult) -> str | None:
        """Why ``result`` is marked uncertain, in plain words (None if it is not): the recording's severe issues
        if it has any, else the model's own doubt."""
        return why_uncertain(self.quality, result.top_probability) if result.uncertain else None

    def truncation_notice(self) -> str:
        length = f"{self.original_seconds:.0f} s" if self.original_seconds else "longer"
        return f"The recording ({length}) was cut to its first {self.max_seconds:g} s; only that part was analysed."


def why_uncertain(quality: Quality | None, top_probability: float) -> str:
    """An uncertain answer's reason for the page: the recording's severe issues, else the model's low top score."""
    severe = [issue.note for issue in (quality.issues if quality else []) if issue.severe]
    return "; ".join(severe) if severe else f"the model gives its top genre only {top_probability:.0%}"


def analyse(
    path: str | os.PathLike, models: dict[str, GenreModel], max_seconds: float = DEFAULT_MAX_SECONDS, trim: bool = False
) -> Analysis:
    """Decode ``path`` once (at most ``max_seconds``), judge its quality and run every model on all of its windows.

    The clip is decoded at 22,050 Hz: GTZAN's rate, what the feature and CNN models and the
    mel-spectrogram use as is; a 16 kHz transformer or the probe resamples it once more. ``trim``
    (microphone recordings: the room before and after the music) cuts leading and trailing silence
    first (``audio.io.silent_edges``); uploads are analysed as they are, since a file's quiet
    start is part of the music. The quality (``audio.quality.assess``) is the recording's, once;
    each model's answer is marked uncertain by ``models.predict.judge`` from it and its own scores.
    Several models run at the same time, one thread each: the feature model's NumPy work is
    mostly one core, the networks' runtimes use the others and release the GIL, so comparing
    all three bundled models takes about as long as the slowest (``benchmarks/startup.py``).
    The first pretrained probe among ``models`` also reports its tagger's top tags ("what the
    pretrained tagger hears"), from the same pass that classifies.
    """
    audio = load_audio(path, sr=MEL_SAMPLE_RATE, max_seconds=max_seconds)
    samples, trimmed = _trim(audio.samples, audio.sample_rate) if trim else (audio.samples, None)
    quality = assess(samples, audio.sample_rate)
    outputs = _run_models(models, samples, audio.sample_rate, quality, Path(path).name)
    results, tags = [result for result, _ in outputs], None
    for model, (_, tag_probs) in zip(models.values(), outputs, strict=True):
        if tag_probs is not None:
            tags = model.top_tags(tag_probs.mean(axis=0), TOP_TAGS)
            break
    return Analysis(
        str(path), len(samples) / audio.sample_rate, audio.truncated, audio.original_seconds, max_seconds, results,
        samples, audio.sample_rate, tags, quality, trimmed,
    )  # fmt: skip


def _trim(samples: np.ndarray, sr: int) -> tuple[np.ndarray, tuple[float, float]]:
    """The recording without its silent edges, and how many seconds went at each end."""
    start, stop = silent_edges(samples, sr)
    return samples[start:stop], (start / sr, (len(samples) - stop) / sr)


def _run_models(
    models: dict[str, GenreModel], samples: np.ndarray, sr: int, quality: Quality, name: str
) -> list[tuple[ModelResult, np.ndarray | None]]:
    """Each model's result (in display order) and its tag probabilities; in threads when there are several."""

    def run(item: tuple[str, GenreModel]) -> tuple[ModelResult, np.ndarray | None]:
        label, model = item
        start = time.perf_counter()
        probs, tag_probs = window_outputs(model, prepare_audio(samples, sr, model.sample_rate, name, None).samples, quality)
        uncertain = judge(model, probs.mean(axis=0), quality)
        seconds = time.perf_counter() - start
        return ModelResult(label, list(model.labels), probs, model.window_seconds, seconds, uncertain), tag_probs

    if len(models) <= 1:
        return [run(item) for item in models.items()]
    with ThreadPoolExecutor(len(models), thread_name_prefix="musicgenre-model") as pool:
        return list(pool.map(run, models.items()))  # display order; the first failure is raised


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


# Live mode: the microphone's last LIVE_SECONDS, classified each time a chunk arrives by the first model only.
# 12 s is four CNN windows or a third of the probe's window: enough to hear a style, short enough to follow a
# change; the first answer waits for LIVE_MIN_SECONDS, below which every model guesses.
LIVE_SECONDS = 12.0
LIVE_MIN_SECONDS = 3.0


@dataclass(frozen=True)
class LiveBuffer:
    """The most recent ``LIVE_SECONDS`` of a live recording, as float32 mono at the recording's own rate.

    Immutable: ``add`` returns the next buffer, which is what a ``gr.State`` should hold between chunks.
    """

    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    sample_rate: int = 0

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0

    def add(self, sr: int, chunk: np.ndarray) -> LiveBuffer:
        """This buffer with ``chunk`` (int PCM or float, ``(n,)`` or ``(n, channels)``) appended; a new rate starts afresh."""
        mono = float_mono(np.asarray(chunk))  # browser chunks: int16 PCM, (n, channels) when stereo
        kept = self.samples if sr == self.sample_rate else np.zeros(0, np.float32)
        return LiveBuffer(np.concatenate([kept, mono])[-int(LIVE_SECONDS * sr) :], int(sr))


@dataclass
class LiveAnswer:
    """One model's answer on a live buffer: the top genre, its probability, and whether to trust it."""

    model: str
    genre: str
    probability: float
    uncertain: bool
    seconds: float  # of audio heard
    quality: Quality

    def uncertainty_note(self) -> str | None:
        return why_uncertain(self.quality, self.probability) if self.uncertain else None

    def to_dict(self) -> dict:
        return {
            "model": self.model, "genre": self.genre, "probability": round(self.probability, 4),
            "uncertain": self.uncertain, "seconds": round(self.seconds, 2), "quality": self.quality.to_dict(),
        }  # fmt: skip


def live_answer(name: str, model: GenreModel, buffer: LiveBuffer) -> LiveAnswer | None:
    """``model``'s answer on ``buffer`` (None until ``LIVE_MIN_SECONDS`` are heard); silence is answered, flagged uncertain.

    One model on at most ``LIVE_SECONDS``: a few hundred milliseconds on two cores, so it keeps up with chunks
    every few seconds while the full analysis stays available for the finished recording.
    """
    if buffer.seconds < LIVE_MIN_SECONDS:
        return None
    heard = trim_silence(buffer.samples, buffer.sample_rate)  # the room before the music is not the music
    samples = prepare_audio(heard, buffer.sample_rate, model.sample_rate, "the live recording", None).samples
    mean = window_probabilities(model, samples).mean(axis=0)
    quality = assess(heard, buffer.sample_rate)
    top = int(np.argmax(mean))
    return LiveAnswer(name, model.labels[top], float(mean[top]), judge(model, mean, quality), buffer.seconds, quality)
