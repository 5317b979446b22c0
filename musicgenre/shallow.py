"""Where saved shallow models look for their transformers: skops files written before the package was split
into subpackages (issue 17), the bundled one included, name ``musicgenre.shallow.LogVariance`` and
``musicgenre.shallow.GainInvariant``. A class's import path is part of the skops format, so this name stays.
New code imports ``musicgenre.models.shallow``."""

from musicgenre.models.shallow import GainInvariant, LogVariance

__all__ = ["GainInvariant", "LogVariance"]
