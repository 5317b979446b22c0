"""musicnn (Pons & Serra 2019) in PyTorch: the network of the ``musicnn`` package's ``models.py``, layer for layer.

Input: (batch, 187 frames, 96 mels) log-compressed mel patches (``musicgenre.models.musicnn.log_mel``).
Front-end: batch norm, then two timbral convolutions (7 frames x 38 / 67 mels, 204 filters each)
and three temporal ones (128 / 64 / 32 frames x 1 mel, 51 filters each), each ReLU, batch norm and
max-pooled over frequency. Mid-end: three 7-frame convolutions of 64 filters over the whole
front-end, the last two residual. Back-end: max and mean over time of the 753 front- and mid-end
features, batch norm, a 200-unit dense layer (the "penultimate" embedding) and the 50 tag logits.
Batch norm uses TensorFlow's epsilon (1e-3), so the converted checkpoint gives the same numbers.

Conversion, the ONNX export, tests and the torch runtime (``musicgenre.models.runtime``: ``--runtime torch`` or
``MUSICGENRE_RUNTIME=torch`` at an entry point) import this module; by default prediction runs the exported ONNX
file (``musicgenre.models.musicnn``), so serving needs no torch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

TF_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=TF_EPSILON)


def _bn1d(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=TF_EPSILON)


class MusicnnNet(nn.Module):
    """The musicnn architecture; ``forward`` returns tag logits, penultimate, mean pool and max pool."""

    def __init__(self, n_mels: int = 96, n_tags: int = 50, midend_filters: int = 64, backend_units: int = 200):
        super().__init__()
        self.input_bn = _bn(1)
        timbral = int(1.6 * 128)  # 204, as the original's num_filt=1.6
        temporal = int(1.6 * 32)  # 51
        self.timbral = nn.ModuleList(nn.Conv2d(1, timbral, (7, int(f * n_mels))) for f in (0.4, 0.7))
        self.timbral_bn = nn.ModuleList(_bn(timbral) for _ in range(2))
        self.temporal = nn.ModuleList(nn.Conv2d(1, temporal, (k, 1)) for k in (128, 64, 32))
        self.temporal_bn = nn.ModuleList(_bn(temporal) for _ in range(3))
        frontend = 2 * timbral + 3 * temporal  # 561
        self.midend = nn.ModuleList(nn.Conv1d(c, midend_filters, 7) for c in (frontend, midend_filters, midend_filters))
        self.midend_bn = nn.ModuleList(_bn1d(midend_filters) for _ in range(3))
        self.features = frontend + 3 * midend_filters  # 753
        self.pool_bn = _bn1d(2 * self.features)
        self.dense = nn.Linear(2 * self.features, backend_units)
        self.dense_bn = _bn1d(backend_units)
        self.tags = nn.Linear(backend_units, n_tags)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.input_bn(x.unsqueeze(1))  # (B, 1, T, F)
        front = []
        padded = F.pad(x, (0, 0, 3, 3))  # time only: 'same' in time, 'valid' in frequency
        for conv, bn in zip(self.timbral, self.timbral_bn, strict=True):
            front.append(bn(F.relu(conv(padded))).amax(dim=3))  # (B, 204, T)
        for conv, bn in zip(self.temporal, self.temporal_bn, strict=True):
            k = conv.kernel_size[0]
            same = F.pad(x, (0, 0, (k - 1) // 2, k - 1 - (k - 1) // 2))  # TensorFlow's 'same': the extra row after
            front.append(bn(F.relu(conv(same))).amax(dim=3))  # (B, 51, T)
        h = torch.cat(front, dim=1)  # (B, 561, T)
        layers = [h]
        for i, (conv, bn) in enumerate(zip(self.midend, self.midend_bn, strict=True)):
            out = bn(F.relu(conv(F.pad(layers[-1], (3, 3)))))
            layers.append(out if i == 0 else out + layers[-1])
        features = torch.cat(layers, dim=1)  # (B, 753, T)
        max_pool = features.amax(dim=2)
        mean_pool = features.mean(dim=2)
        penultimate = self.backend(max_pool, mean_pool)
        return self.tags(penultimate), penultimate, mean_pool, max_pool

    BACKEND = ("pool_bn", "dense", "dense_bn")  # the layers of ``backend``, which fine-tuning the top retrains

    def backend(self, max_pool: torch.Tensor, mean_pool: torch.Tensor) -> torch.Tensor:
        """The penultimate embedding from the time-pooled features (also the input of a fine-tuned top)."""
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # TF's order: max, mean per feature
        return self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))


def from_tensorflow(variables: dict[str, object]) -> dict[str, torch.Tensor]:
    """The port's state dict from the TF-1 checkpoint's variables (name -> array), by the graph's creation order.

    ``tf.compat.v1.layers`` names layers by creation order (``conv2d``, ``conv2d_1``, ...); models.py
    creates them as: input BN; timbral 74, 77; temporal 128, 64, 32; mid-end 1-3; pool BN, dense, dense BN, tags.
    """
    import numpy as np

    def t(name: str) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(variables[name], dtype=np.float32))

    def suffix(i: int) -> str:
        return "" if i == 0 else f"_{i}"

    out: dict[str, torch.Tensor] = {}

    def bn(prefix: str, i: int) -> None:
        tf = f"batch_normalization{suffix(i)}"
        out[f"{prefix}.weight"] = t(f"{tf}/gamma")
        out[f"{prefix}.bias"] = t(f"{tf}/beta")
        out[f"{prefix}.running_mean"] = t(f"{tf}/moving_mean")
        out[f"{prefix}.running_var"] = t(f"{tf}/moving_variance")
        out[f"{prefix}.num_batches_tracked"] = torch.tensor(0)

    def conv(prefix: str, i: int, one_d: bool = False) -> None:
        kernel = t(f"conv2d{suffix(i)}/kernel")  # (kh, kw, in, out)
        weight = kernel.permute(3, 2, 0, 1)  # (out, in, kh, kw)
        if one_d:  # a [7, C] kernel over (time, C, 1): Conv1d over time with C input channels
            weight = weight[:, 0].permute(0, 2, 1)  # (out, C, 7)
        out[f"{prefix}.weight"] = weight.contiguous()
        out[f"{prefix}.bias"] = t(f"conv2d{suffix(i)}/bias")

    bn("input_bn", 0)
    for j in range(2):
        conv(f"timbral.{j}", j)
        bn(f"timbral_bn.{j}", 1 + j)
    for j in range(3):
        conv(f"temporal.{j}", 2 + j)
        bn(f"temporal_bn.{j}", 3 + j)
    for j in range(3):
        conv(f"midend.{j}", 5 + j, one_d=True)
        bn(f"midend_bn.{j}", 6 + j)
    bn("pool_bn", 9)
    out["dense.weight"] = t("dense/kernel").T.contiguous()
    out["dense.bias"] = t("dense/bias")
    bn("dense_bn", 10)
    out["tags.weight"] = t("dense_1/kernel").T.contiguous()
    out["tags.bias"] = t("dense_1/bias")
    return out


class LowRankConv(nn.Module):
    """A convolution whose filters span only ``rank`` dimensions, as two: ``rank`` basis filters of the same size,
    then a 1x1 convolution mixing them into the original outputs (with the original bias)."""

    def __init__(self, basis: nn.Module, mix: nn.Module, kernel_size: tuple[int, ...]):
        super().__init__()
        self.basis, self.mix, self.kernel_size = basis, mix, kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(self.basis(x))


def _low_rank(conv: nn.Conv1d | nn.Conv2d, tolerance: float) -> tuple[nn.Module, int | None]:
    """``conv`` as a LowRankConv when its filters' singular values beyond some rank are all below ``tolerance``
    times the largest and the two convolutions cost fewer multiply-adds; else ``conv`` itself."""
    weight = conv.weight.detach().double()
    out, size = weight.shape[0], weight[0].numel()
    u, s, vh = torch.linalg.svd(weight.reshape(out, size), full_matrices=False)
    rank = int((s > tolerance * s[0]).sum())
    if rank * (size + out) >= out * size:
        return conv, None
    kind = type(conv)
    basis = kind(conv.in_channels, rank, conv.kernel_size, bias=False)
    basis.weight.data = vh[:rank].reshape(rank, *weight.shape[1:]).float()
    mix = kind(rank, out, 1)
    mix.weight.data = (u[:, :rank] * s[:rank]).reshape(out, rank, *[1] * (weight.dim() - 2)).float()
    mix.bias.data = conv.bias.detach().clone()
    return LowRankConv(basis, mix, conv.kernel_size), rank


def low_rank(net: MusicnnNet, tolerance: float = 1e-7) -> tuple[MusicnnNet, dict[str, int]]:
    """A copy of ``net`` whose low-rank convolutions are factored (see ``_low_rank``), and the rank of each.

    Why: MSD musicnn's 204 timbral filters of each size span only 24 and 14 dimensions, its temporal ones 4, 7
    and 17 of 51, and the first mid-end layer 20 of 64 (singular values beyond are below 1e-7 of the largest), so
    the factored network computes the same function up to float rounding with ~5x fewer multiply-adds. Only
    the exported ONNX file uses it; the weights and the port stay the original's.
    """
    import copy

    net = copy.deepcopy(net)
    ranks = {}
    for name in ("timbral", "temporal", "midend"):
        layers = getattr(net, name)
        for i, conv in enumerate(layers):
            layers[i], rank = _low_rank(conv, tolerance)
            if rank is not None:
                ranks[f"{name}.{i}"] = rank
    return net, ranks
