"""A small VGG-like Keras 3 CNN on log-mel spectrograms, and its safe saved form.

The study's CNN flattened 30 s spectrograms into a 554 MB model; here stacked convolution blocks
(batch normalisation, max pooling, dropout) end in global average pooling, so the size does not
grow with the input length. Keras 3 runs it on the torch backend by default (torch is installed
anyway) or on TensorFlow (``KERAS_BACKEND=tensorflow``). A saved model is a folder: ``model.keras``
(loaded with Keras' ``safe_mode``, which refuses arbitrary code) plus ``musicgenre.json``, and the
same network as ``model.onnx``: exported when saved, kept only if it gives the same probabilities
(within ``ONNX_TOLERANCE``), and what prediction runs, through ONNX Runtime, so that classifying a
clip needs neither Keras nor torch (their imports cost ~8 s; the network itself 0.2 s a clip).
``runtime="keras"`` (``musicgenre.models.runtime``, chosen by the entry point) loads the Keras file instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgenre.audio import spectral
from musicgenre.data.gtzan import GENRES
from musicgenre.errors import ModelError
from musicgenre.families.cnn import FORMAT  # the registry line and the folders name one format
from musicgenre.models.folder import write_model_folder
from musicgenre.models.runtime import Runtime

MODEL_FILE = "model.keras"
ONNX_FILE = "model.onnx"
ONNX_TOLERANCE = 1e-5  # largest probability change the ONNX copy may make on a probe batch
SAMPLE_RATE = 22050
N_MELS = 128
HOP = 512


def import_keras():
    """``import keras``, on the torch backend unless ``KERAS_BACKEND`` names another. Keras reads that variable once,
    on its first import, so it is set here, right before that import, and not when this module is imported
    (issue 34); worker processes started later inherit it."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    return keras


def mel_power(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """(frames, mels) mel power spectrogram (librosa's ``melspectrogram`` defaults, in NumPy); training crops a
    clip's once-computed one."""
    return spectral.melspectrogram(y, sr, hop=HOP, n_mels=N_MELS).T


def to_input(power: np.ndarray) -> np.ndarray:
    """(frames, mels, 1) network input from mel power: dB re the excerpt's maximum, scaled to roughly [-1, 1].

    Relative to the maximum, so the input is level-free (a gain change does nothing).
    """
    db = spectral.power_to_db(power, ref=None, top_db=80.0)
    return ((db + 40.0) / 40.0).astype(np.float32)[..., None]


def log_mel(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The network input of a waveform excerpt."""
    return to_input(mel_power(y, sr))


def frames(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE)) // HOP + 1


def build_cnn(seconds: float, width: int = 16, blocks: int = 4, dropout: float = 0.3, n_classes: int = len(GENRES)):
    """VGG-like: ``blocks`` x [conv-BN-ReLU x2, max-pool, dropout], global average pooling, dense, softmax.

    Batch normalisation keeps its running statistics with momentum 0.9, not Keras' 0.99: with a
    few dozen steps per epoch the slow average still remembers its initial values when early
    stopping evaluates, and a held-out fold then scores at chance (3 s inputs, fold 0 of the 76-clip CV,
    seed 0: 0.07 vs 0.64 per segment after 8 epochs).
    """
    keras = import_keras()
    layers = keras.layers
    inputs = keras.Input(shape=(frames(seconds), N_MELS, 1), name="log_mel")
    x = inputs
    for b in range(blocks):
        filters = width * 2**b
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(dropout / 2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(4 * width, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="genre")(x)
    return keras.Model(inputs, outputs, name="vgg_like_cnn")


class OnnxNetwork:
    """A saved network through ONNX Runtime, with the one method prediction uses from a Keras model."""

    def __init__(self, path: str | os.PathLike):
        from musicgenre.models.onnx_runtime import open_session

        self.session = open_session(path)
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, batch: np.ndarray, verbose: int = 0) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.asarray(batch, dtype=np.float32)})[0]


def _export_onnx(network, folder: Path) -> dict | None:
    """Write ``network`` as ONNX into ``folder`` if the copy agrees with it on a probe batch; what was checked, or None."""
    import contextlib
    import io
    import logging
    import warnings

    probe = np.random.default_rng(0).normal(size=(2, *network.input_shape[1:])).astype(np.float32)
    expected = np.asarray(network.predict(probe, verbose=0))  # the exporter also needs the model called once
    path = folder / ONNX_FILE
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            network.export(str(path), format="onnx", verbose=False)
        change = float(np.abs(OnnxNetwork(path).predict(probe) - expected).max())
    except Exception as exc:  # e.g. the TensorFlow backend without tf2onnx: the Keras file alone still works
        logging.getLogger(__name__).warning("no ONNX copy of the CNN (%s: %s)", type(exc).__name__, str(exc)[:200])
        path.unlink(missing_ok=True)
        return None
    if change > ONNX_TOLERANCE:
        path.unlink()
        return None
    return {"file": ONNX_FILE, "sha256": _sha256(path), "max_probability_change_on_probe": change}


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class CnnModel:
    """A trained CNN applied to audio window by window (``window_seconds`` each)."""

    network: object
    window_seconds: float
    labels: list[str] = field(default_factory=lambda: list(GENRES))
    sample_rate: int = SAMPLE_RATE
    meta: dict = field(default_factory=dict)

    def predict_windows(self, parts: list[np.ndarray]) -> np.ndarray:
        """One probability row per window; a short window is zero-padded to the network's input length."""
        batch = window_inputs(parts, self.window_seconds, self.sample_rate)
        return np.asarray(self.network.predict(batch, verbose=0), dtype=np.float64)


def window_inputs(parts: list[np.ndarray], seconds: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The network's input batch for windows of audio: each cut or zero-padded to ``seconds``, then log-mel."""
    size = int(round(seconds * sr))
    return np.stack([log_mel(np.pad(p[:size], (0, max(0, size - len(p)))), sr) for p in parts])


def _inference_copy(network):
    """The same layers and weights without the optimizer's state (Adam's moments would triple the file)."""
    keras = import_keras()

    if getattr(network, "optimizer", None) is None:  # uncompiled (e.g. loaded with compile=False): nothing to drop
        return network
    # The same layer objects in a new, never-compiled model (clone_model and from_config compile again).
    return keras.Model(network.inputs, network.outputs, name=network.name)


def save_cnn(model: CnnModel, folder: str | os.PathLike, card: str | None = None) -> Path:
    """Write ``model`` to ``folder`` (replaced atomically if it exists)."""
    if isinstance(model.network, OnnxNetwork):
        raise ModelError("this CNN was loaded from its ONNX copy; load it with runtime='keras' to save it")

    def write_files(tmp: Path) -> dict:
        network = _inference_copy(model.network)
        network.save(tmp / MODEL_FILE)
        onnx = _export_onnx(network, tmp)
        return {
            "format": FORMAT,
            "model_type": "cnn",
            "labels": model.labels,
            "window_seconds": model.window_seconds,
            "sample_rate": model.sample_rate,
            "onnx": onnx,
        }

    return write_model_folder(folder, write_files, meta=model.meta, card=card)


def load_cnn(folder: str | os.PathLike, config: dict, runtime: Runtime | None = None) -> CnnModel:
    """Load a saved CNN: its checked ONNX copy if it has one and ``runtime`` is not "keras" or "torch"
    (``musicgenre.models.runtime``), else the Keras file (safe_mode refuses code in it)."""
    folder = Path(folder)
    meta = {k: v for k, v in config.items() if k not in ("labels", "window_seconds", "sample_rate")}
    if config.get("onnx") and (folder / ONNX_FILE).is_file() and runtime not in ("keras", "torch"):
        if _sha256(folder / ONNX_FILE) != config["onnx"].get("sha256"):
            raise ModelError(f"{folder}: {ONNX_FILE} is not the file that was checked against {MODEL_FILE} when it was saved")
        try:
            network = OnnxNetwork(folder / ONNX_FILE)
        except Exception as exc:
            raise ModelError(f"{folder}: cannot load {ONNX_FILE} ({type(exc).__name__}: {str(exc)[:200]})") from None
        meta["runtime"] = "onnxruntime"
        return CnnModel(network, float(config["window_seconds"]), list(config["labels"]), int(config["sample_rate"]), meta)
    keras = import_keras()

    try:
        network = keras.saving.load_model(folder / MODEL_FILE, safe_mode=True, compile=False)
    except Exception as exc:  # a damaged or foreign file fails in many ways inside Keras
        raise ModelError(
            f"{folder}: cannot load {MODEL_FILE} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    meta["runtime"] = "keras"
    return CnnModel(network, float(config["window_seconds"]), list(config["labels"]), int(config["sample_rate"]), meta)
