"""glibc malloc settings for the vna's peak memory (docs/performance.md, "RSS at 10,000").

Both are no-ops (returning False) where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # glibc's malloc.h

try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _mallopt = _libc.mallopt
    _malloc_trim = _libc.malloc_trim
except (OSError, AttributeError):
    _libc = None


def limit_arenas(arenas: int) -> bool:
    """At most `arenas` malloc arenas for all threads; True when glibc took it.  Call
    before the threads start: one already running keeps the arena it has."""
    if _libc is None:
        return False
    return bool(_mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Give the pages malloc holds free (in every arena, not only at a heap's top) back
    to the system; True when some were."""
    if _libc is None:
        return False
    return bool(_malloc_trim(0))
