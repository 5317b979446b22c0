"""The registry: every model family, by name, one line each. A new family is a folder beside these and a line here."""

from __future__ import annotations

from musicgenre.families import cnn, probe, shallow, transformer
from musicgenre.families.family import Family

FAMILIES: dict[str, Family] = {
    "probe": probe.FAMILY,  # first: the default model's, so loading it tries no other family's format
    "shallow": shallow.FAMILY,
    "cnn": cnn.FAMILY,
    "transformer": transformer.FAMILY,
}
