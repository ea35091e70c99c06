"""Where the cluster section sits in ``docs/benchmarks.md``, and how it survives regeneration.

``minimq bench --cluster`` owns the text between :data:`SECTION_START` and
:data:`SECTION_END` and replaces only that in the report (the rest, written by
``minimq bench``, stays); ``minimq bench`` in turn carries the section over
when it regenerates its own report (:func:`carry_over`). Without the markers
the section goes before the report's "## Analysis" heading, or at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

SECTION_START: Final = "<!-- cluster:start (written by `minimq bench --cluster`) -->"
SECTION_END: Final = "<!-- cluster:end -->"
ANALYSIS_HEADING: Final = "## Analysis"


def existing(text: str) -> str | None:
    """The cluster section (markers included) of a report's ``text``, if it has one."""
    start, end = text.find(SECTION_START), text.find(SECTION_END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(SECTION_END)]


def splice(text: str, section: str) -> str:
    """``text`` with its cluster section replaced by ``section`` (or ``section`` added)."""
    old = existing(text)
    if old is not None:
        return text.replace(old, section, 1)
    heading = text.find(f"\n{ANALYSIS_HEADING}\n")
    if heading >= 0:
        return f"{text[: heading + 1]}{section}\n\n{text[heading + 1 :]}"
    return f"{text.rstrip()}\n\n{section}\n" if text.strip() else f"{section}\n"


def carry_over(output: Path, text: str) -> str:
    """``text`` (a regenerated report) with the cluster section of the file ``output``."""
    if not output.exists():
        return text
    kept = existing(output.read_text(encoding="utf-8"))
    return text if kept is None else splice(text, kept)
