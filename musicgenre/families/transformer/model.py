"""Transformers audio-classification checkpoints (e.g. DistilHuBERT fine-tuned on GTZAN) as genre models.

Loaded with AutoFeatureExtractor + AutoModelForAudioClassification from a local folder or a Hub
id, and applied to raw windows at the extractor's rate, so neither ffmpeg nor torchaudio is
needed (transformers' own pipeline wants both for files and resampling). torch and
transformers are imported only when such a model is used.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicgenre.errors import ModelError
from musicgenre.models.runtime import Runtime

log = logging.getLogger(__name__)

DEFAULT_WINDOW_SECONDS = 30.0  # the audio course's max_duration: what GTZAN fine-tunes see
BATCH_SIZE = 4  # windows per forward pass; 4 x 30 s of DistilHuBERT is ~1 GB of activations


@dataclass
class TransformerModel:
    """A fine-tuned audio-classification model plus its feature extractor."""

    model: Any
    feature_extractor: Any
    labels: list[str]
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    meta: dict = field(default_factory=dict)
    session: Any = None  # an ONNX Runtime session of the same model (musicgenre.models.onnx_runtime), used when set
    # One forward pass at a time: torch already spreads one pass over all cores, and concurrent
    # passes from several app requests would only oversubscribe them.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def sample_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    def _onnx_logits(self, values: np.ndarray):
        """ONNX Runtime's logits, or None after switching this model to torch for good if the runtime fails."""
        import torch

        try:
            return torch.from_numpy(self.session.run(None, {"input_values": values})[0])
        except Exception as exc:  # e.g. a window longer than the export allows
            log.warning("ONNX Runtime failed (%s); running %s with torch from now on", _first_line(exc), self.meta.get("source"))
            self.session = None
            self.meta["runtime"] = "torch"
            return None

    def predict_windows(self, parts: list[np.ndarray]) -> np.ndarray:
        """One probability row per window (mono float audio at ``sample_rate``)."""
        import torch

        probs = np.zeros((len(parts), len(self.labels)))
        # Equal-length windows are batched; a shorter tail goes alone, so no padding ever changes
        # a result (models with group-norm feature encoders take no attention mask).
        for length in dict.fromkeys(len(p) for p in parts):
            index = [i for i, p in enumerate(parts) if len(p) == length]
            for start in range(0, len(index), BATCH_SIZE):
                chunk = index[start : start + BATCH_SIZE]
                inputs = self.feature_extractor([parts[i] for i in chunk], sampling_rate=self.sample_rate, return_tensors="pt")
                with self._lock, torch.inference_mode():
                    logits = self._onnx_logits(inputs["input_values"].numpy()) if self.session is not None else None
                    if logits is None:
                        logits = self.model(**inputs).logits
                probs[chunk] = torch.softmax(logits.float(), dim=-1).numpy()
        return probs


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def is_transformers_folder(folder: str | os.PathLike) -> bool:
    return os.path.isfile(os.path.join(folder, "config.json"))


def load_transformer_model(
    spec: str,
    revision: str | None = None,
    local_files_only: bool = False,
    window_seconds: float | None = None,
    runtime: Runtime | None = None,
    cache_root: Path | None = None,
) -> TransformerModel:
    """Load ``spec`` (folder or Hub id); errors become ModelError with the reason in one line.

    ``runtime`` (``musicgenre.models.runtime``): by default the model runs with ONNX Runtime when it is installed and
    agrees with torch (``musicgenre.models.onnx_runtime``), its export kept in ``cache_root`` (the entry point's cache
    folder; default ``~/.cache/musicgenre``); "torch" never exports it.
    """
    try:
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
    except ImportError:
        raise ModelError("transformers models need torch and transformers: pip install torch transformers") from None
    kwargs = {"revision": revision, "local_files_only": local_files_only}
    try:
        extractor = AutoFeatureExtractor.from_pretrained(spec, **kwargs)
        model = AutoModelForAudioClassification.from_pretrained(spec, **kwargs)
    except Exception as exc:  # damaged files fail in many library-specific ways (safetensors, JSON, shapes)
        offline = local_files_only and not os.path.isdir(spec)
        where = "the Hugging Face Hub cannot be reached and it is not in the local cache" if offline else _first_line(exc)
        raise ModelError(f"{spec}: cannot load an audio-classification model ({where})") from None
    model = model.float().eval()  # half-precision checkpoints: CPU inference (and the ONNX export) in float32
    config = model.config
    labels = [str(config.id2label[i]) for i in range(config.num_labels)]
    seconds = window_seconds or float(getattr(config, "window_seconds", None) or DEFAULT_WINDOW_SECONDS)
    session = None
    if runtime != "torch":
        from musicgenre.models.onnx_runtime import onnx_session

        session = onnx_session(model, cache_root)
    meta = {
        "source": spec,
        "model_type": config.model_type,
        "architecture": type(model).__name__,
        "runtime": "onnxruntime" if session is not None else "torch",
    }
    return TransformerModel(model, extractor, labels, seconds, meta, session)
