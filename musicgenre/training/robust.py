"""The robust probe: one head per listening condition family, calibrated, with an out-of-fold "unsure" threshold.

Issue 33. The frozen musicnn probe trained on clean clips is right on clean audio and sure of itself
on a phone line. Here each outer training fold fits:

- a ``wide`` head on the clips' clean embeddings plus their ``wide`` random copies (a room, a
  loudspeaker's and a microphone's band limits down to 5-8 kHz, coloured noise, level: ``audio.augment``),
- a ``narrow`` head on their ``narrow`` copies (telephone-like bands), used for input whose effective
  band (``audio.quality.effective_band``) ends below ``narrow_below_hz``,
- a temperature per head and an ``uncertain_below`` threshold on the calibrated top probability, both
  chosen on inner out-of-fold predictions of the training clips only (clean and copies alike).

Designs compared by ``experiments/robust_probe.py``: ``clean`` (today's head), ``wide``, ``pooled``
(one head on everything) and ``selector`` (the two heads chosen by the band). Everything is fitted
inside the folds; the held-out clips are only scored, under evaluation conditions made by other
generators (``audio.degradations``) with other seeds, including families training never saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from musicgenre.data.gtzan import GENRES
from musicgenre.data.splits import kfold

DESIGNS = ("clean", "wide", "pooled", "selector")


@dataclass
class RobustSettings:
    design: str = field(default="selector", metadata={"help": f"one of {', '.join(DESIGNS)}"})
    layer: str = field(default="mean_pool", metadata={"help": "musicnn embedding layer"})
    wide_copies: int = field(default=4, metadata={"help": "wide random copies per training clip"})
    narrow_copies: int = field(default=4, metadata={"help": "narrow (telephone-like) random copies per training clip"})
    c_grid: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0], metadata={"help": "logistic C values"})
    inner_folds: int = field(default=4, metadata={"help": "inner folds: C, temperatures and threshold"})
    narrow_below_hz: float = field(default=4500.0, metadata={"help": "effective band edge below which the narrow head answers"})
    clean_weight: float = field(default=1.0, metadata={"help": "weight of a clean row against one random copy"})
    max_flag_right: float = field(default=0.2, metadata={"help": "most right answers (inner OOF) the threshold may flag"})


# ---- calibration and the threshold: small enough to read, no library needed at serving time ----


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the log loss of softmax(logits / T) (Guo et al. 2017), searched on log T."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t))[np.arange(len(labels)), labels].mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-3.0, 4.0), method="bounded").x))


def choose_threshold(top: np.ndarray, right: np.ndarray, max_flag_right: float) -> float:
    """The top-probability threshold that flags the most wrong answers minus right ones (Youden's J), among those
    that flag at most ``max_flag_right`` of the right answers."""
    best, best_j = 0.0, -1.0
    for t in np.unique(np.round(top, 3)):
        flagged = top < t
        flag_right = float(flagged[right].mean()) if right.any() else 0.0
        flag_wrong = float(flagged[~right].mean()) if (~right).any() else 0.0
        if flag_right <= max_flag_right and flag_wrong - flag_right > best_j:
            best, best_j = float(t), flag_wrong - flag_right
    return best


# ---- heads ----


def make_head(c: float, seed: int = 0):
    from musicgenre.training.probe import make_head as probe_head

    return probe_head(c, seed)


def logits_of(head, X: np.ndarray) -> np.ndarray:
    return head.decision_function(X)


@dataclass
class Rows:
    """Training rows: embeddings, genre labels, the clip each row comes from (copies share their clip), weights."""

    X: np.ndarray
    y: np.ndarray
    clip: np.ndarray
    weight: np.ndarray


def rows(
    views: dict[str, np.ndarray], labels: np.ndarray, clips: np.ndarray, names: list[str], clean_weight: float = 1.0
) -> Rows:
    """The rows of ``clips`` under each view in ``names`` (views: name -> (clips, dim) embeddings; NaN rows skipped)."""
    X, y, c, w = [], [], [], []
    for name in names:
        block = views[name][clips]
        ok = ~np.isnan(block[:, 0])
        X.append(block[ok]), y.append(labels[clips][ok]), c.append(clips[ok])
        w.append(np.full(int(ok.sum()), clean_weight if name == "clean" else 1.0))
    return Rows(np.vstack(X), np.concatenate(y), np.concatenate(c), np.concatenate(w))


@dataclass
class FittedHead:
    head: object
    C: float
    temperature: float

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        return np.exp(log_softmax(logits_of(self.head, X) / self.temperature))


def fit_head(data: Rows, tracks: np.ndarray, settings: RobustSettings, seed: int) -> tuple[FittedHead, np.ndarray, np.ndarray]:
    """C and temperature by inner CV grouped by track (a clip's copies never straddle inner folds), then the head
    on all ``data``. Returns the head, and the inner out-of-fold calibrated probabilities and labels of its rows."""
    clip_ids = np.unique(data.clip)
    folds = list(kfold("grouped", _clip_labels(data, clip_ids), tracks[clip_ids], settings.inner_folds, seed))
    best = None
    for c in settings.c_grid:
        oof = np.full((len(data.y), len(GENRES)), np.nan)
        for a, b in folds:
            train, test = np.isin(data.clip, clip_ids[a]), np.isin(data.clip, clip_ids[b])
            head = make_head(c, seed).fit(data.X[train], data.y[train], model__sample_weight=data.weight[train])
            oof[test] = _full_logits(head, data.X[test])
        t = fit_temperature(oof, data.y)
        loss = float(-log_softmax(oof / t)[np.arange(len(data.y)), data.y].mean())
        if best is None or loss < best[0]:
            best = (loss, c, t, oof)
    _, c, t, oof = best
    head = make_head(c, seed).fit(data.X, data.y, model__sample_weight=data.weight)
    return FittedHead(head, c, t), np.exp(log_softmax(oof / t)), data.y


def _clip_labels(data: Rows, clip_ids: np.ndarray) -> np.ndarray:
    first = {c: y for c, y in zip(data.clip[::-1], data.y[::-1], strict=True)}
    return np.array([first[c] for c in clip_ids])


def _full_logits(head, X: np.ndarray) -> np.ndarray:
    """Logits over all ten genres; a genre missing from an inner training fold gets a very low one."""
    out = np.full((len(X), len(GENRES)), -30.0)
    out[:, head.classes_] = logits_of(head, X)
    return out


@dataclass
class RobustFit:
    """What one training set gives: the heads, which view family each answers, and the threshold."""

    heads: dict[str, FittedHead]
    uncertain_below: float
    narrow_below_hz: float
    inner: dict = field(default_factory=dict)

    def probabilities(self, X: np.ndarray, high_hz: np.ndarray | None = None) -> np.ndarray:
        """Calibrated genre probabilities of embeddings ``X``; with two heads, the narrow one answers rows whose
        effective band ends below ``narrow_below_hz``."""
        if "narrow" not in self.heads or high_hz is None:
            return self.heads[next(iter(self.heads))].probabilities(X)
        narrow = high_hz < self.narrow_below_hz
        out = np.empty((len(X), len(GENRES)))
        if (~narrow).any():
            out[~narrow] = self.heads["wide"].probabilities(X[~narrow])
        if narrow.any():
            out[narrow] = self.heads["narrow"].probabilities(X[narrow])
        return out


def training_views(settings: RobustSettings) -> dict[str, list[str]]:
    """Head name -> the views its rows come from, per design."""
    wide = ["clean", *[f"wide{j}" for j in range(settings.wide_copies)]]
    narrow = [f"narrow{j}" for j in range(settings.narrow_copies)]
    return {
        "clean": {"wide": ["clean"]},
        "wide": {"wide": wide},
        "pooled": {"wide": wide + narrow},
        "selector": {"wide": wide, "narrow": narrow},
    }[settings.design]


def fit_robust(views: dict[str, np.ndarray], labels: np.ndarray, tracks: np.ndarray, train: np.ndarray,
               settings: RobustSettings, seed: int) -> RobustFit:  # fmt: skip
    """Every head of ``settings.design`` on the clips ``train``, and the threshold from their pooled inner OOF answers."""
    heads, tops, rights = {}, [], []
    for name, names in training_views(settings).items():
        data = rows(views, labels, train, names, settings.clean_weight)
        heads[name], oof, y = fit_head(data, tracks, settings, seed)
        tops.append(oof.max(axis=1)), rights.append(oof.argmax(axis=1) == y)
    top, right = np.concatenate(tops), np.concatenate(rights)
    threshold = choose_threshold(top, right, settings.max_flag_right)
    inner = {"flag_right": float((top[right] < threshold).mean()), "flag_wrong": float((top[~right] < threshold).mean())}
    return RobustFit(heads, threshold, settings.narrow_below_hz, inner)


# ---- scoring ----


def calibration_metrics(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict:
    """Accuracy, log loss, Brier score (sum over genres, mean over clips), top-label ECE in ``bins`` equal bins,
    and the mean top probability of the wrong answers."""
    probs = np.clip(probs, 1e-12, 1.0)
    top, pred = probs.max(axis=1), probs.argmax(axis=1)
    right = pred == labels
    onehot = np.eye(probs.shape[1])[labels]
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(top, edges[1:-1]), 0, bins - 1)
    ece = sum(
        abs(right[which == b].mean() - top[which == b].mean()) * np.mean(which == b) for b in range(bins) if (which == b).any()
    )
    return {
        "clips": int(len(labels)),
        "accuracy": float(right.mean()),
        "log_loss": float(-np.log(probs[np.arange(len(labels)), labels]).mean()),
        "brier": float(np.sum((probs - onehot) ** 2, axis=1).mean()),
        "ece": float(ece),
        "wrong_top_probability": float(top[~right].mean()) if (~right).any() else None,
    }


def cross_validate(views: dict[str, np.ndarray], labels: np.ndarray, tracks: np.ndarray, conditions: list[str],
                   settings: RobustSettings, seeds: list[int], high_hz: dict[str, np.ndarray] | None = None,
                   folds: int = 5, progress=print) -> dict:  # fmt: skip
    """Grouped ``folds``-fold CV by track per seed: out-of-fold calibrated probabilities of every clip under every
    condition (NaN where a condition failed on a clip), and each fold's chosen C, temperatures and threshold."""
    out = {"probabilities": {}, "thresholds": {}, "folds": []}
    for seed in seeds:
        probs = {c: np.full((len(labels), len(GENRES)), np.nan) for c in conditions}
        threshold = np.full(len(labels), np.nan)
        for k, (train, test) in enumerate(kfold("grouped", labels, tracks, folds, seed)):
            fit = fit_robust(views, labels, tracks, train, settings, seed + 1 + k)
            threshold[test] = fit.uncertain_below
            for c in conditions:
                X = views[c][test]
                ok = ~np.isnan(X[:, 0])
                band = None if high_hz is None else high_hz[c][test][ok]
                probs[c][test[ok]] = fit.probabilities(X[ok], band)
            out["folds"].append({
                "seed": seed, "fold": k, "uncertain_below": fit.uncertain_below, **fit.inner,
                "heads": {n: {"C": h.C, "temperature": h.temperature} for n, h in fit.heads.items()},
            })  # fmt: skip
            progress(f"seed {seed} fold {k}: threshold {fit.uncertain_below:.3f}")
        out["probabilities"][seed], out["thresholds"][seed] = probs, threshold
    return out
