"""The transformer family: transformers audio-classification checkpoints (DistilHuBERT fine-tuned on GTZAN), from a
folder or the Hub. ``model`` loads and runs them (torch, or ONNX Runtime); ``train`` fine-tunes with the Trainer.
Its checkpoints are transformers folders (``config.json`` and safetensors weights), not musicgenre.json folders."""

from __future__ import annotations

from pathlib import Path

from musicgenre.errors import ModelError
from musicgenre.families.family import Family, lazy


def _load(folder: Path, config: dict, runtime: str | None = None):
    raise ModelError(f"{folder}: transformers checkpoints have no musicgenre.json")


FAMILY = Family(
    name="transformer",
    title="DistilHuBERT (fine-tuned)",
    format=None,
    load=_load,
    hub_kind="transformers",
    hub_library="transformers",
    recognise=lazy(f"{__name__}.model", "is_transformers_folder"),
    load_checkpoint=lazy(f"{__name__}.model", "load_transformer_model"),
)
