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


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(imports: str) -> str:
    """The one README Python example that imports ``imports``."""
    (example,) = [
        b
        for b in PYTHON_BLOCK.findall(README.read_text())
        if re.search(rf"^from {imports}[ .]", b, re.M)
    ]
    return example


def test_readme_example_runs(broker: BrokerProcess) -> None:
    assert run_block(readme_block("minimq"), broker.url).startswith("last offset: ")


def test_readme_kafka_example_runs(tmp_path: Path) -> None:
    """The confluent-kafka example, against a broker's Kafka listener."""
    data = tmp_path / "data"
    data.mkdir()
    with BrokerProcess(data, kafka=True) as kafka_broker:
        example = readme_block("confluent_kafka").replace(
            "localhost:9092", kafka_broker.kafka_bootstrap
        )
        printed = run_block(example, kafka_broker.url)
    assert printed.strip() == "b'c7' b'{\"id\": 2, \"total\": 3.0}' 0", printed
