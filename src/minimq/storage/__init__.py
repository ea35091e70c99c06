"""The disk engine: Kafka RecordBatch v2 segments, indexes, recovery, retention.

One implementation of the storage seam (:mod:`minimq.core.storage_seam`): a
data directory one broker process owns.  Only the composition root
(``minimq.server.process``) opens it, with :func:`open_storage`; everything
else of the broker sees the seam's protocols.  The byte layout is described
in :mod:`minimq.recordbatch.frames`, :mod:`minimq.storage.index` and
:mod:`minimq.storage.segment`, and for users in ``docs/storage-format.md``.
"""

from minimq.storage.engine import DiskStorage, open_storage
from minimq.storage.limits import StorageLimits

__all__ = ["DiskStorage", "StorageLimits", "open_storage"]
