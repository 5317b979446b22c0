"""Weighed for issue 33, not shipped: musicnn's own back-end fine-tuned on the robust probe's training copies.

The issue asks whether training musicnn's back-end on augmented audio beats linear heads on its frozen
embeddings. The back-end (pool batch norm, the 200-unit dense layer and its batch norm, pretrained) with a
new genre layer on top (``top._network``, what ``top`` fine-tunes on clean patches) is trained here on the
clean clips and their wide and narrow random copies together, as the ``pooled`` linear design is, and scored
in the same grouped CV (``robust.cross_validate``'s folds and output, so ``study.real_recordings`` reports it).

One approximation, said where the numbers are: the back-end's input is the clip mean of each copy's
per-patch max and mean pools, not each patch, because the view cache (``robust_views``) keeps patch means
only; per-patch training would mean running the backbone again on every copy. Inside each training fold an
inner CV by track picks the learning rate of the pretrained layers (0: frozen, only the genre layer learns)
and the epochs by inner log loss; a temperature and the ``uncertain`` threshold come from the same inner
out-of-fold answers, as the linear heads' do.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from musicgenre.data.splits import kfold
from musicgenre.families.probe.robust import (
    RobustSettings,
    choose_threshold,
    fit_temperature,
    head_views,
    log_softmax,
    out_of_fold,
)
from musicgenre.families.probe.top import TopSettings, predict_top, train_top
from musicgenre.models.musicnn import DEFAULT_BACKBONE

BACKEND = "backend"
LAYER = "mean_max"  # what the back-end reads: mean_pool then max_pool (its own order is max, mean)
# top's inner-CV grid, in bigger batches: a fold's rows are clean clips and 8 copies each (~550), ten times the clips
SETTINGS = TopSettings(epochs=[10, 30, 60], batch_size=128)


def _inputs(views: dict[str, np.ndarray], labels: np.ndarray, clips: np.ndarray, names: list[str], clean_repeat: int):
    """The back-end's rows (max pool, mean pool) of ``clips`` under ``names``; clean rows repeated ``clean_repeat``
    times (the linear heads' clean weight), failed views left out."""
    xs, ys, cs = [], [], []
    for name in names:
        block, ok = views[name][clips], ~np.isnan(views[name][clips, 0])
        for _ in range(clean_repeat if name == "clean" else 1):
            xs.append(block[ok]), ys.append(labels[clips][ok]), cs.append(clips[ok])
    x = np.vstack(xs).astype(np.float32)
    mean_pool, max_pool = np.split(x, 2, axis=1)
    return np.concatenate([max_pool, mean_pool], axis=1), np.concatenate(ys), np.concatenate(cs)


def _logits(net, x: np.ndarray) -> np.ndarray:
    """Log-probabilities of the rows ``x`` (mean_max order) from the network (which takes max, then mean)."""
    mean_pool, max_pool = np.split(x.astype(np.float32), 2, axis=1)
    return np.log(np.clip(predict_top(net, np.concatenate([max_pool, mean_pool], axis=1)), 1e-12, 1.0))


def fit_backend(views, labels, tracks, train, settings: RobustSettings, top: TopSettings, seed: int) -> dict:
    """On the clips ``train``: the learning rate and epochs by inner CV (log loss after a temperature), then the
    network on all of them. Returns ``net``, ``temperature``, ``uncertain_below`` and what was chosen."""
    names = head_views(replace(settings, design="pooled"))["wide"]
    repeat = round(settings.clean_weight)
    folds = list(kfold("grouped", labels[train], tracks[train], settings.inner_folds, seed))
    logits: dict[tuple[float, int], list] = {}
    truth = []
    for a, b in folds:
        x, y, _ = _inputs(views, labels, train[a], names, repeat)
        xb, yb, _ = _inputs(views, labels, train[b], names, 1)
        truth.append(yb)
        for lr in top.backbone_lr:

            def keep(epoch, predict, lr=lr, xb=xb):
                logits.setdefault((lr, epoch), []).append(np.log(np.clip(predict(xb), 1e-12, 1.0)))

            train_top(DEFAULT_BACKBONE, x, y, lr, top.epochs, top, seed, keep)
    y_oof = np.concatenate(truth)
    scored = {}
    for key, parts in logits.items():
        z = np.concatenate(parts)
        t = fit_temperature(z, y_oof)
        scored[key] = (float(-log_softmax(z / t)[np.arange(len(y_oof)), y_oof].mean()), t, z)
    (lr, epochs), (loss, t, z) = min(scored.items(), key=lambda kv: (kv[1][0], kv[0][0], kv[0][1]))
    p = np.exp(log_softmax(z / t))
    threshold = choose_threshold(p.max(axis=1), p.argmax(axis=1) == y_oof, settings.max_flag_right)
    x, y, _ = _inputs(views, labels, train, names, repeat)
    net = train_top(DEFAULT_BACKBONE, x, y, lr, [epochs], top, seed)
    chosen = {"backbone_lr": lr, "epochs": epochs, "inner_log_loss": loss, "temperature": t, "uncertain_below": threshold}
    return {"net": net, "temperature": t, "uncertain_below": threshold, "chosen": chosen}


def cross_validate_backend(views: dict[str, np.ndarray], labels: np.ndarray, tracks: np.ndarray, conditions: list[str],
                           settings: RobustSettings, seeds: list[int], folds: int = 5, top: TopSettings | None = None,
                           progress=print) -> dict:  # fmt: skip
    """``robust.out_of_fold`` of the fine-tuned back-end: the linear heads' folds and output. ``views`` must hold
    the ``mean_max`` embedding."""
    top = top or SETTINGS

    def fit_fold(train: np.ndarray, seed: int):
        fit = fit_backend(views, labels, tracks, train, settings, top, seed)
        predict = lambda c, rows: np.exp(log_softmax(_logits(fit["net"], views[c][rows]) / fit["temperature"]))  # noqa: E731
        return predict, fit["chosen"]

    return out_of_fold(fit_fold, views, labels, tracks, conditions, seeds, folds, progress, BACKEND)
