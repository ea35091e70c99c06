"""Reliability harness: a message-id ledger and checker, workloads, fault drivers.

- :mod:`.ledger`: what clients were told (acknowledged, failed, unknown) and the
  checker that reads every partition from offset 0 and judges the log against it.
- :mod:`.workload`: producer and group-consumer threads that feed the ledger.
- :mod:`.crash_loop`: kill -9 a real broker at random moments under load.
- :mod:`.power_loss`: an fsync-tracking simulation of a power cut, without root.

Used by ``tests/reliability`` (reduced runs) and runnable as scripts (full runs).
"""
