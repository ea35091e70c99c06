"""Lazy imports of the optional ``bench`` dependencies, with a message that says how to install."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingDependency(RuntimeError):
    """An optional benchmark dependency is not installed."""


def require(module: str, package: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` naming the pip ``package``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"the benchmark needs {package!r} (import {module!r} failed: {exc}); "
            "install the extra with: pip install 'minimq[bench]'"
        ) from exc
