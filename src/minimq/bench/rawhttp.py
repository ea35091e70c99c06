"""Raw HTTP load on MiniMQ with ``wrk``: what the broker does without a Python client in front.

Each wrk request is ``POST /v1/topics/<topic>/records`` with one 100-byte
record, so requests per second equal messages per second. wrk's own report
is parsed; any non-2xx answer makes the measurement fail rather than count.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import orjson

from minimq.bench.workloads import Throughput, payload

WRK_GRACE_S = 15.0


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def wrk_produce(base_url: str, topic: str, connections: int, seconds: float) -> Throughput:
    """Run wrk with ``connections`` keep-alive connections for ``seconds``; one record each."""
    binary = wrk_binary()
    if binary is None:
        raise RuntimeError("wrk not found (apt-get install wrk)")
    body = orjson.dumps({"records": [{"value": payload(0, 100)}]}).decode()
    script = (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {orjson.dumps(body).decode()}\n"
    )
    with tempfile.TemporaryDirectory(prefix="minimq-bench-wrk-") as workdir:
        script_path = Path(workdir) / "produce.lua"
        script_path.write_text(script)
        threads = min(2, connections)
        completed = subprocess.run(
            [
                binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                "-s", str(script_path), f"{base_url}/v1/topics/{topic}/records",
            ],
            capture_output=True, text=True, timeout=seconds + WRK_GRACE_S, check=True,
        )  # fmt: skip
    return parse_wrk(completed.stdout)


def parse_wrk(output: str) -> Throughput:
    """Requests and duration from wrk's summary (``N requests in 2.00s, ...``)."""
    if "Non-2xx or 3xx responses" in output:
        raise RuntimeError(f"wrk saw error responses:\n{output}")
    match = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", output)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0}[match.group(3)]
    return Throughput(int(match.group(1)), float(match.group(2)) * scale)
