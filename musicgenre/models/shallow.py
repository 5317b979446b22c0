"""Deprecated: moved to ``musicgenre.families.shallow.model``; this name stays for one release
(it is that module, not a copy). New code reaches the family through ``musicgenre.families``."""

import sys

from musicgenre.families.shallow import model as _moved

sys.modules[__name__] = _moved
