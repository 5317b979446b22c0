"""Training the Keras CNN honestly: K-fold CV grouped by track, early stopping on a fold of the training data.

- Inputs are 3-second segments or whole 30-second clips (log-mel, see ``musicgenre.families.cnn.model``).
- Folds are built over tracks (``splits.kfold("grouped", ...)``): the segments of one track are
  never on both sides. Inside each training part, one more grouped split carves a validation
  fold for early stopping, so the fold being scored never steers training.
- The 76 shared clips are few, so training examples are augmented: a random crop of the clip per
  epoch (a time shift), and mixup of two examples with blended labels. (Gain changes nothing:
  the log-mel input is taken relative to its maximum.)
- Scores: per segment, and per track from the averaged segment probabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from musicgenre.data.gtzan import GENRES, Clip
from musicgenre.data.splits import kfold
from musicgenre.families.cnn.model import SAMPLE_RATE, CnnModel, build_cnn, frames, import_keras, log_mel, mel_power, to_input
from musicgenre.training.metrics import classification_metrics, track_level


@dataclass
class CnnSettings:
    seconds: float = 3.0  # input length: 3 (segments) or 30 (whole clips)
    width: int = 16
    blocks: int = 4
    dropout: float = 0.3
    epochs: int = 30
    patience: int = 6
    batch_size: int = 32
    learning_rate: float = 1e-3
    mixup: float = 0.2  # Beta(a, a) mixing weight; 0 turns mixup off
    folds: int = 5
    seed: int = 0


def fixed_windows(samples: np.ndarray, seconds: float) -> list[np.ndarray]:
    """Consecutive full windows of ``seconds`` (a clip shorter than one window is zero-padded to one)."""
    size = int(round(seconds * SAMPLE_RATE))
    if len(samples) < size:
        return [np.pad(samples, (0, size - len(samples)))]
    return [samples[i : i + size] for i in range(0, len(samples) - size + 1, size)]


class Crops:
    """Training batches: each epoch, one random crop per window slot of every clip, optionally mixed up.

    A clip's mel spectrogram is computed once and cropped in frames, which is what a crop of the
    waveform gives up to the crop's two edge frames, at a fraction of the cost.
    """

    def __init__(self, clips: list[Clip], settings: CnnSettings, rng: np.random.Generator):
        self.labels = [clip.label for clip in clips]
        self.s, self.rng = settings, rng
        self.frames = frames(settings.seconds)
        self.mels = [mel_power(clip.samples) for clip in clips]
        self.slots = [len(fixed_windows(clip.samples, settings.seconds)) for clip in clips]

    def epoch(self) -> tuple[np.ndarray, np.ndarray]:
        """One epoch of (log-mel inputs, one-hot or mixed targets), shuffled."""
        xs, ys = [], []
        for mel, label, n in zip(self.mels, self.labels, self.slots, strict=True):
            for _ in range(n):
                start = int(self.rng.integers(0, max(1, len(mel) - self.frames + 1)))
                part = mel[start : start + self.frames]
                xs.append(to_input(np.pad(part, ((0, self.frames - len(part)), (0, 0)))))
                ys.append(np.eye(len(GENRES), dtype=np.float32)[label])
        x, y = np.stack(xs), np.stack(ys)
        order = self.rng.permutation(len(x))
        x, y = x[order], y[order]
        if self.s.mixup > 0:
            lam = self.rng.beta(self.s.mixup, self.s.mixup, size=(len(x), 1)).astype(np.float32)
            partner = self.rng.permutation(len(x))
            x = lam[:, :, None, None] * x + (1 - lam[:, :, None, None]) * x[partner]
            y = lam * y + (1 - lam) * y[partner]
        return x, y


def windows_of(clips: list[Clip], seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluation inputs: every full window of every clip, its genre, and which clip it came from."""
    xs, labels, owner = [], [], []
    for c, clip in enumerate(clips):
        for part in fixed_windows(clip.samples, seconds):
            xs.append(log_mel(part))
            labels.append(clip.label)
            owner.append(c)
    return np.stack(xs), np.array(labels), np.array(owner)


def scores(probs: np.ndarray, labels: np.ndarray, owner: np.ndarray, clips: list[Clip]) -> dict:
    truth, pred = track_level(probs, owner, labels)
    return {
        "segment_accuracy": float(np.mean(probs.argmax(axis=1) == labels)),
        "track_accuracy": float(np.mean(truth == pred)),
        "tracks": len(clips),
        "segments": len(labels),
    }


def pooled(probs: np.ndarray, labels: np.ndarray, owner: np.ndarray) -> dict:
    """Out-of-fold scores over every track at once: per segment, and per track (with its confusion matrix)."""
    names = list(GENRES)
    truth, pred = track_level(probs, owner, labels)
    segment = classification_metrics([names[i] for i in labels], [names[i] for i in probs.argmax(axis=1)], names)
    track = classification_metrics([names[i] for i in truth], [names[i] for i in pred], names)
    return {
        "segment": {k: segment[k] for k in ("accuracy", "macro_f1", "n")},
        "track": track,
    }


def fit(train: list[Clip], valid: list[Clip] | None, settings: CnnSettings, epochs: int | None = None):
    """Train a fresh network; with ``valid``, stop when its loss stops improving (best weights kept)."""
    keras = import_keras()

    keras.utils.set_random_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    network = build_cnn(settings.seconds, settings.width, settings.blocks, settings.dropout)
    network.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    crops = Crops(train, settings, rng)
    valid_data = None
    if valid:
        xv, yv, _ = windows_of(valid, settings.seconds)
        valid_data = (xv, np.eye(len(GENRES), dtype=np.float32)[yv])
    best, best_epoch, waited, weights = math.inf, 0, 0, None
    for epoch in range(epochs or settings.epochs):
        x, y = crops.epoch()
        network.fit(x, y, batch_size=settings.batch_size, epochs=1, verbose=0)
        if valid_data is None:
            continue
        loss = float(network.evaluate(*valid_data, verbose=0)[0])
        if loss < best - 1e-4:
            best, best_epoch, waited, weights = loss, epoch + 1, 0, network.get_weights()
        else:
            waited += 1
            if waited >= settings.patience:
                break
    if weights is not None:
        network.set_weights(weights)
    return network, (best_epoch if valid_data is not None else (epochs or settings.epochs))


def fit_fold(train: list[Clip], settings: CnnSettings, k: int):
    """Outer fold ``k``'s network: trained on ``train`` less one grouped inner fold, which decides when to stop."""
    labels, tracks = np.array([c.label for c in train]), np.array([c.track for c in train])
    inner_train, inner_valid = next(kfold("grouped", labels, tracks, min(4, settings.folds), settings.seed + 1 + k))
    return fit([train[i] for i in inner_train], [train[i] for i in inner_valid], settings)


def cross_validate(clips: list[Clip], settings: CnnSettings, progress=print) -> dict:
    """Grouped K-fold: per-fold and mean ± std accuracy, pooled out-of-fold metrics, the early-stopping epochs."""
    tracks = np.array([c.track for c in clips])
    labels = np.array([c.label for c in clips])
    folds, oof_probs, oof_labels, oof_owner = [], [], [], []
    for k, (train_idx, test_idx) in enumerate(kfold("grouped", labels, tracks, settings.folds, settings.seed)):
        network, epochs = fit_fold([clips[i] for i in train_idx], settings, k)
        test = [clips[i] for i in test_idx]
        x, y, owner = windows_of(test, settings.seconds)
        probs = np.asarray(network.predict(x, verbose=0), dtype=np.float64)
        result = {"fold": k, "epochs": epochs, **scores(probs, y, owner, test)}
        progress(f"fold {k}: {result}")
        folds.append(result)
        oof_probs.append(probs)
        oof_labels.append(y)
        oof_owner.append(test_idx[owner])  # clip indices into ``clips``: unique across folds
    summary = {}
    for key in ("segment_accuracy", "track_accuracy"):
        values = np.array([f[key] for f in folds])
        summary[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    out_of_fold = pooled(np.concatenate(oof_probs), np.concatenate(oof_labels), np.concatenate(oof_owner))
    return {"folds": folds, **summary, "out_of_fold": out_of_fold, "epochs": [f["epochs"] for f in folds]}


def train_final(clips: list[Clip], settings: CnnSettings, epochs: int) -> CnnModel:
    """The model to ship: all clips, for the median early-stopping epoch count found by cross-validation."""
    network, _ = fit(clips, None, settings, epochs=epochs)
    return CnnModel(network, settings.seconds)


def model_card(settings: CnnSettings, cv: dict, n_tracks: int, parameters: int, size_bytes: int, command: str) -> str:
    per_fold = ", ".join("{:.3f}".format(f["track_accuracy"]) for f in cv["folds"])
    seg, trk, so, to = cv["segment_accuracy"], cv["track_accuracy"], cv["out_of_fold"]["segment"], cv["out_of_fold"]["track"]
    return f"""---
license: mit
library_name: keras
tags: [audio-classification, music-genre, gtzan, musicgenre]
---
# musicgenre CNN ({settings.seconds:g}-second log-mel inputs)

A VGG-like Keras 3 CNN ({settings.blocks} blocks of width {settings.width}, global average pooling):
{parameters:,} parameters, {size_bytes / 1e6:.2f} MB as `.keras`. Trained on {n_tracks} GTZAN tracks for
{cv["final_epochs"]} epochs (the median early-stopping epoch of cross-validation), with random crops and mixup
({settings.mixup}). Applied to audio in {settings.seconds:g}-second windows whose probabilities are averaged.
The same network is saved as `model.onnx` (checked against Keras on a probe batch when saved); prediction
runs it through ONNX Runtime, so it needs neither Keras nor torch (`MUSICGENRE_RUNTIME=keras` for the Keras file).

## Cross-validation ({settings.folds}-fold, grouped by track, seed {settings.seed}, {n_tracks} tracks)
Early stopping used a validation fold carved from the training folds, never the fold being scored.

| score | folds: mean ± std | all tracks out of fold: accuracy | macro-F1 |
|---|---|---|---|
| per segment | {seg["mean"]:.3f} ± {seg["std"]:.3f} | {so["accuracy"]:.3f} | {so["macro_f1"]:.3f} |
| per track (averaged segments) | {trk["mean"]:.3f} ± {trk["std"]:.3f} | {to["accuracy"]:.3f} | {to["macro_f1"]:.3f} |

Chance is 0.100. Per-fold track accuracy: {per_fold}; early-stopping
epochs {cv["epochs"]}.

## Reproduce
```
{command}
```
"""
