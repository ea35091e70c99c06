"""The Python examples in docs/client.md and README.md run as written against a real broker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.processes import BrokerProcess

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def run_block(block: str, url: str) -> str:
    script = block.replace("http://localhost:5000", url)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{block}\n{result.stderr}"
    return result.stdout


def test_client_md_examples_run_in_order(broker: BrokerProcess) -> None:
    quick_start, async_example = PYTHON_BLOCK.findall(DOC.read_text())
    assert run_block(quick_start, broker.url).startswith("last offset: ")
    printed = run_block(async_example, broker.url).splitlines()
    assert printed[0] == "orders 100 messages"
    # The replay of partition 0: offsets 0, 1, 2, ... each with its value.
    assert [line.split(" ", 1)[0] for line in printed[1:]] == [
        str(n) for n in range(len(printed) - 1)
    ]
    assert len(printed) > 1


def test_readme_example_runs(broker: BrokerProcess) -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    (example,) = PYTHON_BLOCK.findall(readme.read_text())
    assert run_block(example, broker.url).startswith("last offset: ")
