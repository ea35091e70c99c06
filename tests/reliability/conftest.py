"""Scale of the reliability tests: reduced in the normal suite, full with an env var.

``MINIMQ_FULL_RELIABILITY=1 pytest tests/reliability`` runs every test at the
size the reliability document states (20 kills, 1,000 bit flips, 1 GiB
recovery, ...) and also checks the timing bounds; the normal suite runs the
same code on fewer iterations and checks correctness only.
"""

from __future__ import annotations

import os

FULL = os.environ.get("MINIMQ_FULL_RELIABILITY") == "1"


def scale(reduced: int, full: int) -> int:
    """``full`` under ``MINIMQ_FULL_RELIABILITY=1``, else ``reduced``."""
    return full if FULL else reduced
