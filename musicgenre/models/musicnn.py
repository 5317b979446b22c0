"""A pretrained music tagger, musicnn (Pons & Serra 2019), as a backbone: tags and embeddings of audio, offline.

The weights ship inside the package (``musicgenre/models/pretrained/<name>/``), converted once from the
TF-1 checkpoints of the ``musicnn`` 0.1.0 wheel by ``scripts/convert_musicnn.py``: safetensors for
the PyTorch port (``musicgenre.models.musicnn_torch``) and the same network as ONNX, which is what runs
here, so that tagging a clip needs neither torch nor TensorFlow. ``runtime="torch"`` (``musicgenre.models.runtime``,
chosen by the entry point) runs the port instead.

Preprocessing is the original's (16 kHz mono, n_fft 512, hop 256, 96 mel bands, log10(10000 x + 1),
3 s patches of 187 frames) without its two bugs: the compression is computed in float32 (its
float16 overflows to NaN under NumPy 2) and every patch gets its own embedding. The STFT and mel
projection are NumPy (the filter bank is librosa's, stored with the weights), so classifying a file
needs no librosa code, numba or scipy.signal either. (The original's librosa 0.6 padded STFT frames
by reflection, librosa 0.11 and this code by zeros: only the first and last frame of a clip differ.)
Audio is first scaled to a fixed RMS level: the log compression makes the network's input depend on
level, and a quiet recording (-30 dB) otherwise loses almost every genre.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from musicgenre.errors import ModelError
from musicgenre.models.runtime import Runtime

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # 3 s: librosa.time_to_frames(3, sr=16000, hop_length=256, n_fft=512) + 1
# Patches per ONNX Runtime call. A 30 s clip's ten at once grow the runtime's memory arena by ~620 MB (the
# timbral convolutions' im2col buffers), two at a time by ~100 MB; one at a time is also the fastest for a single
# clip (the first call's buffers are the smallest to allocate: 0.15 s for a 30 s clip on 2 busy cores against
# 0.25 s for two at a time) and no slower after it.
PATCH_BATCH = 1
TARGET_RMS = 0.1  # -20 dBFS, near the median GTZAN clip (-17 dBFS over the 76 shared clips)
BACKBONES = ("MSD_musicnn", "MTT_musicnn")
DEFAULT_BACKBONE = "MSD_musicnn"
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"
CONFIG_FILE = "config.json"
# Clip embeddings a probe can use: the mean over a clip's patches of one layer, or of several joined.
LAYERS = {
    "penultimate": ("penultimate",),
    "mean_pool": ("mean_pool",),
    "max_pool": ("max_pool",),
    "mean_max": ("mean_pool", "max_pool"),  # the bundled probe's (issue 33: it holds up best on degraded audio)
    "joined": ("penultimate", "mean_pool", "max_pool"),
}
OUTPUTS = ("tags", "penultimate", "mean_pool", "max_pool")  # per patch, in the ONNX file's output order


def backbone_path(name: str = DEFAULT_BACKBONE) -> Path:
    """The folder of a converted backbone inside the package."""
    if name not in BACKBONES:
        raise ModelError(f"no pretrained backbone {name!r}; choose from {', '.join(BACKBONES)}")
    return Path(str(resources.files("musicgenre.models") / "pretrained" / name))


def sha256(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def hann(n: int = N_FFT) -> np.ndarray:
    """The periodic Hann window (scipy's ``get_window('hann', n)``, librosa's STFT default)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def normalise_level(y: np.ndarray, target_rms: float = TARGET_RMS) -> np.ndarray:
    """``y`` scaled to ``target_rms`` (silence is left as it is): the backbone's input then ignores level."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0
    return y if rms < 1e-8 else (y * (target_rms / rms)).astype(np.float32)


def log_mel(y: np.ndarray, mel_basis: np.ndarray) -> np.ndarray:
    """(frames, 96) log10(10000 x + 1) of the mel power spectrogram of 16 kHz audio, as librosa computes it.

    librosa's defaults: centred frames with zero padding, periodic Hann window, power 2.
    """
    y = np.pad(np.asarray(y, dtype=np.float32), N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP]
    spectrum = np.fft.rfft(frames * hann(), axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return np.log10(10000.0 * (power @ mel_basis.T) + 1.0, dtype=np.float32)


def patches(spectrogram: np.ndarray) -> np.ndarray:
    """(patches, 187, 96): consecutive 3 s patches; a tail shorter than a patch is dropped.

    Audio shorter than one patch is repeated until it fills one, as musicnn's training padded
    short clips ("repeat-pad"), instead of the original extractor's crash.
    """
    n = len(spectrogram)
    if n < PATCH_FRAMES:
        spectrogram = np.tile(spectrogram, (-(-PATCH_FRAMES // max(n, 1)), 1))[:PATCH_FRAMES]
        n = PATCH_FRAMES
    count = n // PATCH_FRAMES
    return np.ascontiguousarray(spectrogram[: count * PATCH_FRAMES].reshape(count, PATCH_FRAMES, N_MELS))


@dataclass
class Backbone:
    """A converted musicnn: per-patch tags and embeddings of 16 kHz audio."""

    name: str
    config: dict
    mel_basis: np.ndarray
    run_patches: object  # (patches, 187, 96) float32 -> the four OUTPUTS
    runtime: str
    tag_names: list[str] = field(default_factory=list)

    def analyse(self, y: np.ndarray, normalise: bool = True) -> dict[str, np.ndarray]:
        """Per-patch ``tags`` (sigmoid probabilities), ``penultimate``, ``mean_pool`` and ``max_pool`` of a clip."""
        y = normalise_level(y) if normalise else y
        batch = patches(log_mel(y, self.mel_basis))
        return dict(zip(OUTPUTS, self.run_patches(batch), strict=True))


def clip_embedding(per_patch: dict[str, np.ndarray], layer: str) -> np.ndarray:
    if layer not in LAYERS:
        raise ModelError(f"unknown musicnn layer {layer!r}; choose from {', '.join(LAYERS)}")
    return np.concatenate([per_patch[name].mean(axis=0) for name in LAYERS[layer]]).astype(np.float32)


def _onnx_runner(path: Path):
    from musicgenre.models.onnx_runtime import open_session

    # "extended": the NCHWc layout rewrite of "all" makes this network ~20% slower on x86 (first call and after);
    # the outputs agree within float32 rounding (probabilities within 1e-6).
    session = open_session(path, optimization="extended")
    name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> list[np.ndarray]:
        batch = np.asarray(batch, dtype=np.float32)
        parts = [session.run(None, {name: batch[i : i + PATCH_BATCH]}) for i in range(0, len(batch), PATCH_BATCH)]
        return [np.concatenate(outputs) for outputs in zip(*parts, strict=True)]

    return run


def _torch_runner(folder: Path, config: dict):
    import torch

    net = load_torch_network(folder, config)

    def run(batch: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            logits, *rest = net(torch.from_numpy(np.asarray(batch, dtype=np.float32)))
            return [torch.sigmoid(logits).numpy(), *(r.numpy() for r in rest)]

    return run


def load_torch_network(folder: str | os.PathLike, config: dict | None = None):
    """The PyTorch port with the converted weights (eval mode)."""
    from safetensors.torch import load_file

    from musicgenre.models.musicnn_torch import MusicnnNet

    folder = Path(folder)
    config = config or json.loads((folder / CONFIG_FILE).read_text())
    state = load_file(folder / WEIGHTS_FILE)
    state.pop("mel_basis")
    net = MusicnnNet(n_mels=config["n_mels"], n_tags=len(config["tags"]))
    net.load_state_dict(state)
    return net.eval()


def load_backbone(name: str = DEFAULT_BACKBONE, runtime: Runtime | None = None) -> Backbone:
    """A shipped backbone, through ONNX Runtime (checked by SHA-256) or, with ``runtime="torch"``, the port (any
    other runtime: ONNX Runtime, as by default).

    One per name and runtime in a process (the app's probe and the tagger share it).
    """
    return _load_backbone(name, "torch" if runtime == "torch" else "onnxruntime")


@cache
def _load_backbone(name: str, runtime: str) -> Backbone:
    folder = backbone_path(name)
    if not (folder / CONFIG_FILE).is_file():
        hint = f"; convert it with: python scripts/convert_musicnn.py --models {name}" if name != DEFAULT_BACKBONE else ""
        raise ModelError(f"the pretrained backbone {name} is not in this installation ({folder}){hint}")
    config = json.loads((folder / CONFIG_FILE).read_text())
    from safetensors import safe_open

    with safe_open(folder / WEIGHTS_FILE, framework="numpy") as weights:  # only the filter bank, not the torch port's weights
        mel_basis = weights.get_tensor("mel_basis")
    if runtime == "torch":
        run = _torch_runner(folder, config)
    else:
        if sha256(folder / ONNX_FILE) != config["onnx_sha256"]:
            raise ModelError(f"{folder}: {ONNX_FILE} is not the file exported from {WEIGHTS_FILE} at conversion")
        run = _onnx_runner(folder / ONNX_FILE)
    return Backbone(name, config, mel_basis, run, runtime, list(config["tags"]))


def top_tags(probabilities: np.ndarray, names: list[str], k: int = 5) -> list[dict]:
    """The ``k`` most probable tags, most probable first."""
    order = np.argsort(-probabilities)[:k]
    return [{"tag": names[i], "probability": round(float(probabilities[i]), 4)} for i in order]


# Genres of GTZAN that are also tags of the backbone: zero-shot genre from the tagger alone.
GENRE_TAGS = {
    "MSD_musicnn": {
        "blues": "blues",
        "country": "country",
        "hiphop": "Hip-Hop",
        "jazz": "jazz",
        "metal": "metal",
        "pop": "pop",
        "rock": "rock",
    },
    "MTT_musicnn": {"classical": "classical", "country": "country", "metal": "metal", "pop": "pop", "rock": "rock"},
}


def zero_shot(tag_probabilities: np.ndarray, names: list[str], backbone: str = DEFAULT_BACKBONE) -> str:
    """The genre whose tag is most probable, among the genres that have a tag."""
    genres = GENRE_TAGS[backbone]
    scores = {genre: tag_probabilities[names.index(tag)] for genre, tag in genres.items()}
    return max(scores, key=scores.get)
