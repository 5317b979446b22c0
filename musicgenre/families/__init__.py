"""The model families, one folder each: ``shallow`` (handcrafted features), ``cnn`` (log-mel CNN), ``probe`` (head on
the pretrained musicnn backbone) and ``transformer`` (fine-tuned DistilHuBERT). Each holds its model (load, save,
predict), its training and its fold fit, and is registered in ``FAMILIES`` (``registry.py``: name -> ``Family``),
which the CLI, the app, the study, the robustness runs and the Hub scripts use instead of naming a family.
``spec`` parses a model's name once into a ``ModelSpec``; ``resolve`` loads one through the registry.

Outside this package a family is reached only through this module (import-linter: no module outside
``families`` imports ``musicgenre.families.<name>``), and no family imports another.

May import: ``training``, ``models`` and everything below them."""

from musicgenre.families.family import Family
from musicgenre.families.registry import FAMILIES
from musicgenre.families.resolve import (
    BUNDLED_KINDS,
    CONFIG_NAME,
    bundled_model_path,
    checkpoint_kind,
    family_of_format,
    family_of_model,
    family_of_spec,
    load_model_folder,
    plan_upload,
    resolve_model,
)
from musicgenre.families.spec import DEFAULT_BUNDLED, ModelSpec, parse_spec

__all__ = [
    "BUNDLED_KINDS",
    "CONFIG_NAME",
    "DEFAULT_BUNDLED",
    "FAMILIES",
    "Family",
    "ModelSpec",
    "bundled_model_path",
    "checkpoint_kind",
    "family_of_format",
    "family_of_model",
    "family_of_spec",
    "load_model_folder",
    "parse_spec",
    "plan_upload",
    "resolve_model",
]
