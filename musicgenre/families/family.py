"""What a model family is, as the registry (``musicgenre.families.FAMILIES``) holds it.

A family is one folder, ``musicgenre/families/<name>/``: its model (load, save, predict), its training and
cross-validation, and its ``__init__.py`` with ``FAMILY``, the :class:`Family` that names them. Everything
outside ``families/`` reaches a family through the registry, never by importing its folder (the
import-linter contracts in pyproject.toml), so adding one is a folder and one line in ``registry.py``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from musicgenre.models.predict import GenreModel


@dataclass(frozen=True)
class Family:
    """One model family. ``load``/``save`` import the family's model code only when called, so the registry is cheap
    to import and loading one family's folder imports no other family."""

    name: str
    title: str  # what the app, the study and the model cards call it
    format: str | None  # the ``format`` of its folders' musicgenre.json; None: its checkpoints are not our folders
    # (folder, its parsed musicgenre.json, runtime=None: musicgenre.models.runtime) -> a model that predicts
    load: Callable[..., GenreModel]
    save: Callable[..., Path] | None = None  # (model, folder, card=None) -> folder, written atomically
    bundled: tuple[str, ...] = ()  # the names of the models of this family shipped in the package (``bundled:<name>``)
    hub_kind: str = ""  # the kind ``checkpoint_kind`` reports for its folders (download_model.py, push_to_hub.py)
    hub_library: str = ""  # the ``library_name`` of a generated model card
    recognise: Callable[[Path], bool] | None = None  # a checkpoint folder without musicgenre.json that is this family's
    # (folder or Hub id, revision, local_files_only, runtime=None, cache_root=None: where exports are kept) -> model
    load_checkpoint: Callable[..., GenreModel] | None = None
    reads: str = "audio"  # what its models classify: "audio" windows, or also rows of the handcrafted "features"
    served_as: str = ""  # how the app names its bundled model: "bundled (<served_as>)"

    def module(self, part: str = "model") -> ModuleType:
        """One module of the family's folder (``model``, ``train``, ...), imported now: how code outside ``families``
        (the study, the benchmarks, the experiments) reaches what a family holds without importing its folder."""
        return importlib.import_module(f"musicgenre.families.{self.name}.{part}")

    def trainer(self) -> ModuleType:
        """The family's training module (fit, cross-validate, fold fit, model card), imported now: serving never does."""
        return self.module("train")


def lazy(module: str, name: str) -> Callable:
    """``module.name``, imported when first called: how a family's ``__init__`` names its ``load`` and ``save``
    without importing its model code (and the libraries that code needs) when the registry is imported."""

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"``{module}.{name}``, imported on first call."
    return call
