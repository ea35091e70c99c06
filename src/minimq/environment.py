"""Settings from environment variables, shared by every command-line entry point."""

from __future__ import annotations

import os


def env(name: str, default: str | None = None) -> str | None:
    """The value of environment variable ``name``, or ``default`` when unset or empty."""
    value = os.environ.get(name)
    return value if value else default
