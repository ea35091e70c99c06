"""Consumer-group churn checker, in the spirit of Jepsen: churn the members, then judge.

Eight member processes of one group join, leave, crash (SIGKILL) and pause
(SIGSTOP beyond the session timeout) on a seeded schedule while producers
write keyed records; every process logs what it was told, and the checker
reads those histories afterwards.

- :mod:`.history`: the JSON-lines history files every process appends to.
- :mod:`.member`: one member process (``python -m bench.churn.member``), in
  commit=true or explicit-commit mode.
- :mod:`.producers`, :mod:`.monitor`: producer threads and the
  ``describe_group`` sampler.
- :mod:`.schedule`: the seeded churn schedule (a pure function).
- :mod:`.fleet`: member processes started, signalled and reaped by PID.
- :mod:`.driver`: one run of one mode, from broker start to final state.
- :mod:`.checker`: the checks, as functions of histories.

``python -m bench.churn --seconds 150`` runs both modes; ``make churn`` too.
"""
