"""Where saved shallow models look for their transformers: skops files written before the package was split
into subpackages (issue 17), the bundled one included, name ``musicgenre.shallow.LogVariance`` and
``musicgenre.shallow.GainInvariant``. A class's import path is part of the skops format, so this name stays
(as does ``musicgenre.models.shallow``, the name of files saved before issue 34). New code reaches the shallow
family through ``musicgenre.families``."""

from musicgenre.families.shallow.model import GainInvariant, LogVariance

__all__ = ["GainInvariant", "LogVariance"]
