"""What the numba cache's checking child runs (``jitcache._run_child``): every compiled path musicgenre uses.

Its own module, above both ``jitcache`` and ``handcrafted``: the check runs the librosa reference features,
which themselves call ``jitcache.ensure_ready`` before any librosa call; kept in ``jitcache``, it made the two
import each other (issue 34: no import cycles). ``jitcache`` names it only in the child's command line.
"""

from __future__ import annotations

import sys

from musicgenre.audio.example import example_clip
from musicgenre.features.handcrafted import extract_features_naive
from musicgenre.features.jitcache import BROKEN_EXIT, LIBROSA, broken_loops


def exercise() -> None:
    """Every compiled path musicgenre uses (librosa's reference feature code) on a short clip: compiles (or loads)
    all of it, at the dtypes we use; exits with ``BROKEN_EXIT`` on null loop pointers."""
    _exit_if_broken(broken_loops(LIBROSA))
    extract_features_naive(example_clip(3.0))
    _exit_if_broken(broken_loops())


def _exit_if_broken(broken: list[str]) -> None:
    if broken:
        print(f"null loop pointers in {', '.join(broken)}", file=sys.stderr)
        sys.exit(BROKEN_EXIT)
