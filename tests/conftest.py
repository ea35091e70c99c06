from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import BrokerProcess


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def broker(data_dir: Path) -> Iterator[BrokerProcess]:
    """A fresh broker process on a free port with its own data directory."""
    with BrokerProcess(data_dir) as process:
        yield process


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """One broker for a whole test module, for tests that do not restart it."""
    data = tmp_path_factory.mktemp("shared") / "data"
    data.mkdir()
    with BrokerProcess(data) as process:
        yield process
