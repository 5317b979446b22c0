"""A model named on the command line, in the app or in a library call, parsed once into a typed value.

``bundled`` (= ``bundled:musicnn``), ``bundled:<name>``, an existing folder, or a Hub id ``owner/name``:
:func:`parse_spec` decides which, once, at the edge; everything below takes the :class:`ModelSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from musicgenre.errors import ModelError

DEFAULT_BUNDLED = "musicnn"  # the most accurate under grouped CV (docs/results.md): the pretrained probe


@dataclass(frozen=True)
class ModelSpec:
    """``kind`` bundled: ``name`` is the bundled model's name; folder: a path; hub: a repository id."""

    kind: Literal["bundled", "folder", "hub"]
    name: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"bundled:{self.name}" if self.kind == "bundled" else self.name


def parse_spec(text: str | ModelSpec, revision: str | None = None) -> ModelSpec:
    """``text`` as a ModelSpec (a ModelSpec is returned as it is, with ``revision`` if given); ModelError if it is
    none of the three."""
    if isinstance(text, ModelSpec):
        return text if revision is None else ModelSpec(text.kind, text.name, revision)
    if text == "bundled" or text.startswith("bundled:"):
        return ModelSpec("bundled", text.partition(":")[2] or DEFAULT_BUNDLED, revision)
    if Path(text).exists():
        return ModelSpec("folder", text, revision)
    if text.count("/") == 1 and not text.startswith((".", "/")):
        return ModelSpec("hub", text, revision)
    raise ModelError(f"no model {text!r}: not 'bundled', an existing folder, or a Hub id like 'owner/name'")
