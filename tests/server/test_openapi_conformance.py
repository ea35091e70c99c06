"""schemathesis drives every operation of /openapi.json against a real broker.

Bounded: a few dozen generated cases per operation. Checked: no 5xx, status
codes, content types and bodies all as documented. The SSE stream is left
out (it never ends by design; tests/server/test_stream.py covers it), and
long-poll waits are capped so generated ``wait_ms`` values keep the run short.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema
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


@pytest.fixture(scope="module")
def conformance_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data = tmp_path_factory.mktemp("conformance") / "data"
    data.mkdir()
    with BrokerProcess(data) as broker:
        records = [{"value": {"n": i}, "key": f"k{i % 3}"} for i in range(20)]
        httpx.post(f"{broker.url}/v1/topics", json={"name": "seeded", "partitions": 2})
        httpx.post(f"{broker.url}/v1/topics/seeded/records", json={"records": records})
        yield broker


OPENAPI = orjson.loads((Path(__file__).parents[2] / "src/minimq/server/openapi.json").read_bytes())
OPERATIONS = [
    (path, method)
    for path, item in OPENAPI["paths"].items()
    for method, operation in item.items()
    if method != "parameters" and operation["operationId"] != "stream"
]


@pytest.fixture(scope="module")
def api_schema(conformance_broker: BrokerProcess) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{conformance_broker.url}/openapi.json")


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_operation_conforms_to_openapi(
    api_schema: BaseSchema, conformance_broker: BrokerProcess, path: str, method: str
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        if case.query and "wait_ms" in case.query:
            case.query["wait_ms"] = 0
        case.call_and_validate(base_url=conformance_broker.url, checks=CHECKS, timeout=30)

    check()
