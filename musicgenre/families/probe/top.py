"""Fine-tuning the top of musicnn for genre, scored against the frozen probe on the same folds.

Issue 15 asked for this as an option, to be kept only if grouped CV says it helps. The front- and
mid-end stay frozen, so training runs on the cached per-patch max and mean pools (no backbone pass,
seconds per fit). The back-end's pool batch norm, its 200-unit dense layer and that layer's batch norm
start from the pretrained checkpoint; a new 10-way genre layer on top starts at random. Each 3 s patch
is one training example carrying its clip's genre, and a clip's probabilities are the mean over its
patches. Inside every outer training fold, an inner CV by track picks the learning rate of the
pretrained layers (0 leaves them frozen, so only the genre layer learns) and the number of epochs.
The outer folds are the frozen probe's (``probe.nested_cv``), so the two are compared fold for fold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from musicgenre.data.gtzan import GENRES
from musicgenre.families.probe.train import Embedded, ProbeSettings, inner_folds, nested_cv


@dataclass
class TopSettings:
    epochs: list[int] = field(default_factory=lambda: [5, 20, 50], metadata={"help": "epoch counts the inner CV chooses from"})
    backbone_lr: list[float] = field(
        default_factory=lambda: [0.0, 1e-4, 1e-3],
        metadata={"help": "learning rates of the pretrained dense layers the inner CV chooses from (0: frozen)"},
    )
    head_lr: float = field(default=1e-3, metadata={"help": "learning rate of the new genre layer (AdamW)"})
    weight_decay: float = 1e-2
    dropout: float = field(default=0.5, metadata={"help": "dropout before the genre layer"})
    batch_size: int = 64


def _patches(data: Embedded, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The back-end's input per patch (max pool, then mean pool), its label and its clip."""
    x = [np.concatenate([data.outputs[i]["max_pool"], data.outputs[i]["mean_pool"]], axis=1) for i in idx]
    y = [np.full(len(p), data.labels[i]) for i, p in zip(idx, x, strict=True)]
    clip = [np.full(len(p), i) for i, p in zip(idx, x, strict=True)]
    return np.concatenate(x).astype(np.float32), np.concatenate(y), np.concatenate(clip)


def _network(backbone: str, dropout: float):
    """The shipped network, whose back-end starts the fit, with a new genre layer on its penultimate output."""
    from torch import nn

    from musicgenre.models.musicnn import backbone_path, load_torch_network

    class Top(nn.Module):
        def __init__(self):
            super().__init__()
            self.musicnn = load_torch_network(backbone_path(backbone))
            self.dropout = nn.Dropout(dropout)
            self.genre = nn.Linear(self.musicnn.dense.out_features, len(GENRES))

        def pretrained(self) -> list:
            return [p for name in self.musicnn.BACKEND for p in getattr(self.musicnn, name).parameters()]

        def forward(self, x):
            max_pool, mean_pool = x.split(self.musicnn.features, dim=1)
            return self.genre(self.dropout(self.musicnn.backend(max_pool, mean_pool)))

    return Top()


def train_top(
    backbone: str, x: np.ndarray, y: np.ndarray, lr: float, epochs: list[int], top: TopSettings, seed: int, on_epoch=None
):
    """Fit from the pretrained weights for max(epochs) epochs; after each epoch in ``epochs``, call
    ``on_epoch(epoch, predict)`` (``predict``: patch features -> genre probabilities). Returns the network."""
    import torch

    torch.manual_seed(seed)  # before the new layer is initialised: a fit depends on its seed only, not on what ran before
    net = _network(backbone, top.dropout)
    for p in net.musicnn.parameters():  # only the back-end may learn, and only with lr > 0
        p.requires_grad_(False)
    groups = [{"params": list(net.genre.parameters()), "lr": top.head_lr}]
    if lr > 0:
        for p in net.pretrained():
            p.requires_grad_(True)
        groups.append({"params": net.pretrained(), "lr": lr})
    optimiser = torch.optim.AdamW(groups, weight_decay=top.weight_decay)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    generator = torch.Generator().manual_seed(seed)

    for epoch in range(1, max(epochs) + 1):
        net.train()
        if lr == 0:  # frozen: the pretrained batch norms keep their statistics too
            net.musicnn.eval()
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(order), top.batch_size):
            batch = order[start : start + top.batch_size]
            if len(batch) < 2:  # batch norm needs two examples
                continue
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[batch]), yt[batch]).backward()
            optimiser.step()
        if on_epoch is not None and epoch in epochs:
            on_epoch(epoch, lambda features: predict_top(net, features))
    return net


def predict_top(net, features: np.ndarray) -> np.ndarray:
    """Genre probabilities per patch (eval mode: dropout off, batch norms on their running statistics)."""
    import torch

    net.eval()
    with torch.no_grad():
        return torch.softmax(net(torch.from_numpy(features)), dim=1).numpy()


def _clip_probabilities(patch_probs: np.ndarray, clip: np.ndarray, clips: np.ndarray) -> np.ndarray:
    return np.stack([patch_probs[clip == i].mean(axis=0) for i in clips])


def choose(data: Embedded, train: np.ndarray, settings: ProbeSettings, top: TopSettings, protocol: str, seed: int) -> dict:
    """The pretrained layers' learning rate and the epoch count with the best mean inner-CV clip accuracy."""
    inner = inner_folds(data, train, settings, protocol, seed)
    scores: dict[tuple[float, int], list[float]] = {}
    for a, b in inner:
        x, y, _ = _patches(data, train[a])
        xb, _, clip_b = _patches(data, train[b])
        for lr in top.backbone_lr:

            def score(epoch, predict, lr=lr, b=b, xb=xb, clip_b=clip_b):
                p = _clip_probabilities(predict(xb), clip_b, train[b])
                scores.setdefault((lr, epoch), []).append(float(np.mean(p.argmax(1) == data.labels[train[b]])))

            train_top(settings.backbone, x, y, lr, top.epochs, top, seed, score)
    (lr, epochs), accs = max(scores.items(), key=lambda kv: (np.mean(kv[1]), -kv[0][0], -kv[0][1]))  # ties: frozen, fewer epochs
    return {"backbone_lr": lr, "epochs": epochs, "inner_cv_accuracy": float(np.mean(accs))}


def cross_validate(data: Embedded, protocol: str, settings: ProbeSettings, top: TopSettings) -> dict:
    """Nested CV of the fine-tuned top under ``protocol``, on the frozen probe's outer folds and in its format."""

    def fit_fold(train: np.ndarray, test: np.ndarray, k: int):
        chosen = choose(data, train, settings, top, protocol, settings.seed + 1 + k)
        x, y, _ = _patches(data, train)
        xt, _, clip_t = _patches(data, test)
        net = train_top(settings.backbone, x, y, chosen["backbone_lr"], [chosen["epochs"]], top, settings.seed + k)
        return chosen, _clip_probabilities(predict_top(net, xt), clip_t, test)

    return nested_cv(data, protocol, settings, fit_fold)
