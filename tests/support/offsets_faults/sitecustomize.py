"""Put first on ``PYTHONPATH`` of a broker child: its offsets COMMITs fail on demand.

While the file named by ``MINIMQ_TEST_OFFSETS_FAULT_ARM`` exists, every COMMIT
of the offsets database runs and then raises ``SQLITE_IOERR_FSYNC`` (see
``tests/support/failing_sqlite.py``).  Unset, this does nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ARM = os.environ.get("MINIMQ_TEST_OFFSETS_FAULT_ARM")
if _ARM:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from tests.support import failing_sqlite

    failing_sqlite.install(failing_sqlite.armed_by_file(Path(_ARM)))
    del sys.path[0]
