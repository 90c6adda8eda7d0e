"""Host allocator settings for training: keep freed memory instead of returning it every step.

glibc serves blocks above its mmap threshold (128 KiB, adapting up to 32 MiB) with a fresh
`mmap` and gives them back with `munmap` on free, and it trims the top of the heap above 128 KiB.
A training step frees and re-allocates the same large activations every step, so by default each
step pays for page faults on memory it had a moment ago: measured on the 2-core box at vocab
8,192, 41% of the `tiny` step was system time (657k page faults per 10 steps).

`keep_freed_memory()` raises both thresholds once per process (regmix does this itself; the user
sets nothing). The mmap threshold's ceiling is 32 MiB on 64-bit glibc, which is why the chunked
cross-entropy keeps each logits slice below it. Elsewhere (musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: glibc's ceiling for M_MMAP_THRESHOLD on 64-bit (4 MiB * sizeof(long)); larger values are refused.
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
#: Free memory at the top of the heap kept before trimming (bytes): 1 GiB, far above one step's churn.
TRIM_THRESHOLD = 1024 * 1024 * 1024

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed blocks up to 32 MiB in the heap and never trim it below
    1 GiB of free space. Idempotent; returns whether the settings are in effect."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success, 0 on error.
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
