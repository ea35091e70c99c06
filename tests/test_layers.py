"""The package layering of docs/architecture.md holds: import-linter's contracts pass."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "minimq"


def test_import_layer_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_only_the_composition_root_names_a_storage_backend() -> None:
    """Found by reading the source, not only by import-linter's contracts."""
    backends = ("minimq.storage", "minimq.jetstream")
    roots = {SRC / "server" / "process.py", SRC / "cli" / "broker_command.py"}
    offenders = sorted(
        f"{path.relative_to(SRC)}: {module}"
        for package in ("core", "kafka", "server")
        for path in (SRC / package).rglob("*.py")
        if path not in roots
        for module in _imports_of(path)
        if module.startswith(backends)
    )
    assert offenders == []


def test_backends_import_only_the_seam_of_the_core() -> None:
    seam = {"minimq.core.records", "minimq.core.topic_config", "minimq.core.storage_seam"}
    offenders = sorted(
        f"{path.relative_to(SRC)}: {module}"
        for package in ("storage", "jetstream", "recordbatch")
        for path in (SRC / package).rglob("*.py")
        for module in _imports_of(path)
        if (module == "minimq.core" or module.startswith("minimq.core.")) and module not in seam
    )
    assert offenders == []


def test_the_contracts_forbid_what_layers_would_allow() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    by_name = {c["name"]: c for c in contracts["contracts"]}
    root = by_name["Only the composition root picks a storage backend"]
    assert root["type"] == "forbidden"
    assert set(root["source_modules"]) == {"minimq.server", "minimq.kafka", "minimq.core"}
    assert set(root["forbidden_modules"]) == {"minimq.storage", "minimq.jetstream"}
    assert all(rule.startswith("minimq.server.process ->") for rule in root["ignore_imports"])
    seam = by_name["Backends see only the storage seam of the core"]
    assert seam["type"] == "forbidden" and seam["forbidden_modules"] == ["minimq.core"]
