"""Cap glibc's malloc arenas in a threaded server, so its memory levels off instead of creeping up.

glibc gives each new thread its own arena (up to 8 per core); the app's worker threads allocate
and free large numpy buffers of varying size in them, and freed memory stays fragmented across
arenas. Measured with benchmarks/load.py (10 bursts of 8 clients × 10 requests, 2 cores): after
each burst the server's RSS rose from 1.29 to 2.12 GB with glibc's default (8 arenas per core;
benchmarks/load_uncapped.json) and stayed between 1.03 and 1.11 GB with this cap
(benchmarks/load.json), at ~9% more median latency. The same as ``MALLOC_ARENA_MAX=2``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

M_ARENA_MAX = -8  # from glibc's malloc.h
log = logging.getLogger(__name__)


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Apply the cap (glibc only; respects an explicit ``MALLOC_ARENA_MAX``). Returns whether it was set."""
    if platform.system() != "Linux" or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # musl or another libc without mallopt: nothing to do
        log.debug("mallopt is not available; malloc arenas are not capped")
        return False
