"""Process-wide runtime tuning for the broker: garbage collector, allocator, descriptors.

The first two are about objects a request creates and drops, not about correctness.

Garbage collector.  A batch produce or fetch creates thousands of short-lived
containers (parsed records, tuples, dicts); with the default thresholds that
triggers a young collection every 700 allocations, and the resulting older
collections also walk every object the process made at startup (aiohttp,
prometheus, the CLI's imports). Measured on a 1,000-record batch produce this
was ~40% of the broker's CPU. So once the broker is set up its objects are
frozen (never scanned again; they live as long as the process anyway) and the
young generation is allowed to grow to :data:`GC_YOUNG_THRESHOLD` objects
before a collection. Reference cycles are still collected, just less often;
the price of freezing is that a startup object caught in a reference cycle
(say, the partition log of a topic deleted later) is freed only by reference
counting, so such a cycle stays in memory. Files are always closed explicitly,
so this can cost a little memory, never descriptors.

Allocator (glibc only).  glibc gives the top of the heap back to the kernel
once 128 KiB of it are free. A request builds and drops many ~1 KiB buffers
(orjson starts every output at 1 KiB and shrinks it), so the heap grows and
shrinks by ``brk`` over and over and every growth page-faults fresh memory:
keeping 1,000 ``orjson.dumps`` results took 1.2 ms instead of 0.05 ms here.
Raising the trim threshold keeps up to :data:`TRIM_THRESHOLD_BYTES` of freed
memory for reuse instead. Likewise glibc serves every allocation over 128 KiB
(a fetch response of 10,000 records is ~2 MB, built and copied a few times)
with a fresh ``mmap`` that page-faults in and is unmapped again on free;
below :data:`MMAP_THRESHOLD_BYTES` they now come from the reused heap:
building one such response took 0.5 ms instead of 2.1 ms.

The price of keeping freed memory: after a burst of large answers (slow
readers holding up to the response budget) the heap stayed that large.
:func:`release_freed_memory` (``malloc_trim``) hands the free pages back,
anywhere in the heap, and the response budget calls it once it has been idle
for a second after large bodies were freed; the figures are in
:mod:`minimq.server.response_budget`.

Descriptors.  Every connection, and every open segment file, is a descriptor,
and the soft ``RLIMIT_NOFILE`` a shell hands out is often 1,024 while the hard
limit is far higher. :func:`raise_open_file_limit` lifts the soft limit to the
hard one at start-up, as servers commonly do, so that ``--max-connections``
and the data directory are not refused by a default the operator never chose.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import platform
import resource

log = logging.getLogger("minimq.broker")

GC_YOUNG_THRESHOLD = 20_000
GC_OLDER_THRESHOLDS = (50, 100)
# mallopt() parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# A soft limit to ask for when the hard limit is "unlimited" (the kernel's
# nr_open, 1,048,576 by default, caps it anyway).
UNLIMITED_FILES_SOFT_LIMIT = 1024 * 1024
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # the largest value glibc accepts on 64-bit


def tune_for_serving() -> None:
    """Call once the broker is set up, before it serves requests."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *GC_OLDER_THRESHOLDS)
    if not keep_freed_memory():
        log.debug("malloc trim threshold left as is (not glibc)")


def keep_freed_memory() -> bool:
    """Raise glibc's heap trim and mmap thresholds; True when both were applied."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    trim = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    return bool(trim and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def release_freed_memory() -> bool:
    """Give free heap memory back to the kernel (glibc's ``malloc_trim``); True if it did."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    return bool(malloc_trim(0))


def raise_open_file_limit() -> int:
    """Lift the soft ``RLIMIT_NOFILE`` to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = UNLIMITED_FILES_SOFT_LIMIT if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, wanted, exc)
            return soft
        log.info("raised the open-file limit from %d to %d", soft, wanted)
        return wanted
    return soft
