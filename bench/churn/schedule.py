"""The churn schedule: a seeded, precomputed list of what happens to which member when.

``churn_schedule`` is a pure function of its arguments, so a seed names one
run's churn exactly and a failing run can be replayed.  It starts ``members``
members at once, then every ``gap_s`` (uniform) applies one action to a
member chosen among the running, unpaused ones:

``join``   start a new member process (only while fewer than ``members`` run);
``leave``  SIGTERM: the member commits (explicit mode), leaves and exits;
``kill``   SIGKILL: no leave, the broker notices after the session timeout;
``pause``  SIGSTOP for ``pause_s`` (beyond the session timeout), then a ``resume``
           (SIGCONT): the member wakes up a zombie with a stale generation.

The first three actions are ``leave``, ``kill`` and ``pause`` in a seeded
order, so even a short run has one of each; at least ``min_running`` members
stay running and unpaused, so the group keeps consuming.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Action = Literal["join", "leave", "kill", "pause", "resume"]

# How often each action is drawn once the guaranteed first three are done.
WEIGHTS: dict[Action, int] = {"join": 3, "leave": 1, "kill": 1, "pause": 1}


@dataclass(frozen=True, slots=True)
class ChurnStep:
    at_s: float  # seconds after the start of the churn
    action: Action
    member: str


def member_name(number: int) -> str:
    return f"m{number:02d}"


def churn_schedule(
    seed: int,
    seconds: float,
    *,
    members: int = 8,
    pause_s: tuple[float, float] = (3.0, 5.0),
    gap_s: tuple[float, float] = (0.4, 1.6),
    min_running: int = 2,
) -> list[ChurnStep]:
    """Steps in time order for a churn of ``seconds`` (see the module docstring)."""
    rng = random.Random(seed)
    steps = [ChurnStep(0.0, "join", member_name(n)) for n in range(members)]
    running = {member_name(n) for n in range(members)}
    paused: dict[str, float] = {}  # member -> when it resumes
    started = members
    guaranteed: list[Action] = ["leave", "kill", "pause"]
    rng.shuffle(guaranteed)
    now = 1.0 + rng.uniform(*gap_s)  # a moment for the first generation to settle
    while now < seconds:
        for member, resume_at in sorted(paused.items()):
            if resume_at <= now:
                del paused[member]
                running.add(member)
        allowed: list[Action] = []
        if len(running) + len(paused) < members:
            allowed.append("join")
        if len(running) > min_running:
            allowed += ["leave", "kill", "pause"]
        if guaranteed and guaranteed[0] in allowed:
            action = guaranteed.pop(0)
        elif allowed:
            action = rng.choices(allowed, [WEIGHTS[a] for a in allowed])[0]
        else:
            now += rng.uniform(*gap_s)
            continue
        if action == "join":
            member = member_name(started)
            started += 1
            running.add(member)
        else:
            member = rng.choice(sorted(running))
            running.discard(member)
            if action == "pause":
                paused[member] = now + rng.uniform(*pause_s)
                steps.append(ChurnStep(paused[member], "resume", member))
        steps.append(ChurnStep(now, action, member))
        now += rng.uniform(*gap_s)
    return sorted(steps, key=lambda step: step.at_s)
