"""``pip install .`` into a clean virtual environment gives a working ``minimq``.

The install is the real one a newcomer does: a fresh venv without system
site-packages, an isolated build of the project, and every dependency
resolved by pip (about 10 s here with a warm pip cache). The project is
copied first so the build leaves nothing behind in the working tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

import minimq
from tests.support.processes import free_port, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "minimq"


def run(argv: Sequence[str | Path], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean venv with the project installed from a copy of the source tree."""
    base = tmp_path_factory.mktemp("packaging")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    env_dir = base / "venv"
    run([sys.executable, "-m", "venv", env_dir])
    run([env_dir / "bin" / "python", "-m", "pip", "install", "--quiet", source], timeout=600)
    return env_dir


def test_console_script_reports_the_version(venv: Path) -> None:
    result = run([venv / "bin" / "minimq", "--version"])
    assert result.stdout.strip() == f"minimq {minimq.__version__}"


@pytest.mark.parametrize("command", ["broker", "producer", "ui", "up"])
def test_commands_have_help(venv: Path, command: str) -> None:
    result = run([venv / "bin" / "minimq", command, "--help"])
    assert result.stdout.startswith(f"usage: minimq {command}")


def test_the_installed_broker_serves_health(venv: Path, tmp_path: Path) -> None:
    port = free_port()
    argv = [venv / "bin" / "minimq", "broker", "--port", str(port), "--data-dir", tmp_path]
    with subprocess.Popen([str(arg) for arg in argv], stderr=subprocess.PIPE) as broker:
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=30, process=broker)
        finally:
            broker.terminate()
    assert broker.returncode == 0


def test_the_installed_copy_is_used_not_the_checkout(venv: Path) -> None:
    result = run([venv / "bin" / "python", "-c", "import minimq; print(minimq.__file__)"])
    assert Path(result.stdout.strip()).is_relative_to(venv)


def test_declared_dependencies_are_consistent(venv: Path) -> None:
    run([venv / "bin" / "python", "-m", "pip", "check"])


def test_every_data_file_of_the_package_is_installed(venv: Path) -> None:
    result = run([venv / "bin" / "python", "-c", "import minimq; print(minimq.__file__)"])
    installed = Path(result.stdout.strip()).parent
    data_files = [
        path.relative_to(PACKAGE)
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    ]
    assert Path("py.typed") in data_files
    missing = [str(path) for path in data_files if not (installed / path).is_file()]
    assert missing == []
