"""schemathesis against every operation of a fresh broker: 0 server errors allowed.

The full version of ``tests/server/test_openapi_conformance.py`` (25 examples
per operation there): ``--examples`` (1,000) generated requests per operation,
with the same checks (no 5xx, documented status codes, content types and
bodies).  The SSE stream is left out (it never ends by design), generated
``wait_ms`` values are capped at 0 so long-polls do not stretch the run, and
each topic an example creates is deleted again.

    python -m bench.reliability.api_fuzz [--examples 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.support.processes import BrokerProcess

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz(url: str, examples: int) -> dict[str, str | None]:
    """Run every operation; return operation -> None when it passed, else the failure."""
    records = [{"value": {"n": i}, "key": f"k{i % 3}"} for i in range(20)]
    httpx.post(f"{url}/v1/topics", json={"name": "seeded", "partitions": 2})
    httpx.post(f"{url}/v1/topics/seeded/records", json={"records": records})
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    outcomes: dict[str, str | None] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.definition.raw.get("operationId") == "stream":
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            if case.query and "wait_ms" in case.query:
                case.query["wait_ms"] = 0
            response = case.call_and_validate(base_url=url, checks=CHECKS, timeout=30)
            creates_topic = case.operation.definition.raw.get("operationId") == "createTopic"
            if creates_topic and response.status_code == 201:
                # Examples are independent: without this, a thousand topics of up to
                # 1,024 partitions (three open files each) exhaust file descriptors.
                httpx.delete(f"{url}/v1/topics/{response.json()['name']}", timeout=30)

        started = time.monotonic()
        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # record it, go on with the others
            outcomes[operation.label] = f"{type(exc).__name__}: {exc}"[:2000]
        else:
            outcomes[operation.label] = None
        status = "ok" if outcomes[operation.label] is None else "FAILED"
        print(f"{operation.label:60} {status} ({time.monotonic() - started:.0f}s)", flush=True)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="minimq-api-fuzz-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        with BrokerProcess(data_dir, ["--log-level", "WARNING"]) as broker:
            outcomes = fuzz(broker.url, args.examples)
            log = broker.log()
    failures = {label: failure for label, failure in outcomes.items() if failure}
    for label, failure in failures.items():
        print(f"\n{label}:\n{failure}")
    if "Traceback" in log:
        print(f"\nthe broker logged a traceback:\n{log[-3000:]}")
    print(f"{len(outcomes)} operations x {args.examples} examples: {len(failures)} failed")
    return 0 if not failures and "Traceback" not in log else 1


if __name__ == "__main__":
    sys.exit(main())
