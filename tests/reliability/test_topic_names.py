"""Topic-name fuzzing through HTTP: bad names get 400 and nothing lands outside the data dir."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.conftest import scale
from tests.support.processes import BrokerProcess

VALID = re.compile(r"[A-Za-z0-9._-]{1,249}")
NASTY = ["..", ".", "../", "..%2f", "%2e%2e", "%2E%2E", "\x00", "\\", "/", "~", " ", "\u2215", "é"]
TOPIC_CHARS = "abcXYZ09._-"


def is_valid(name: str) -> bool:
    return bool(VALID.fullmatch(name)) and name not in (".", "..")


def clash_key(name: str) -> str:
    return name.casefold().replace(".", "_")


names = st.one_of(
    st.text(alphabet=TOPIC_CHARS, min_size=1, max_size=12),
    st.text(alphabet=TOPIC_CHARS, min_size=245, max_size=260),
    st.lists(st.sampled_from([*NASTY, "a", "B", "."]), min_size=1, max_size=8).map("".join),
    st.text(min_size=0, max_size=40),
)


@pytest.fixture(scope="module")
def fuzz_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data = tmp_path_factory.mktemp("names") / "data"
    data.mkdir()
    with BrokerProcess(data, ["--log-level", "WARNING"]) as broker:
        yield broker


def everything_under(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def test_fuzzed_topic_names_never_escape_the_data_dir(fuzz_broker: BrokerProcess) -> None:
    broker = fuzz_broker
    outside_root = broker.data_dir.parent
    outside_before = everything_under(outside_root) - everything_under(broker.data_dir)
    existing: dict[str, str] = {}  # clash key -> the name that holds it

    @given(name=names)
    @settings(max_examples=scale(80, 1000), deadline=None, suppress_health_check=list(HealthCheck))
    def check(name: str) -> None:
        with httpx.Client(base_url=broker.url, timeout=30) as client:
            legacy = client.post("/produce", json={"topic": name, "message": 1})
            v1 = client.post(
                f"/v1/topics/{quote(name, safe='')}/records", json={"records": [{"value": 1}]}
            )
        clash = existing.get(clash_key(name))
        if is_valid(name) and clash in (None, name):
            assert legacy.status_code == 201, (name, legacy.text)
            assert v1.status_code == 200, (name, v1.text)
            existing[clash_key(name)] = name
        else:
            assert legacy.status_code == 400, (name, legacy.text)
            assert legacy.json()["error"]["code"] in ("INVALID_TOPIC_NAME", "INVALID_REQUEST")
            # A name with "/" or a dot-segment (normalized away by the URL) never
            # reaches the produce handler: another route's 405, or no route's 404.
            assert v1.status_code in (400, 404, 405), (name, v1.text)

    check()
    outside_after = everything_under(outside_root) - everything_under(broker.data_dir)
    assert outside_after - outside_before <= {broker.log_path}
    topics = {p.name for p in (broker.data_dir / "topics").iterdir()}
    assert topics == set(existing.values())
    assert all(is_valid(name) for name in topics)


def test_names_differing_only_by_case_or_dot_underscore_are_refused(
    fuzz_broker: BrokerProcess,
) -> None:
    with httpx.Client(base_url=fuzz_broker.url) as client:
        assert client.post("/v1/topics", json={"name": "Sensor.Temp"}).status_code == 201
        for twin in ["sensor.temp", "SENSOR.TEMP", "Sensor_Temp", "sensor_temp"]:
            for response in (
                client.post("/v1/topics", json={"name": twin}),
                client.post("/produce", json={"topic": twin, "message": 1}),
                client.post(f"/v1/topics/{twin}/records", json={"records": [{"value": 1}]}),
            ):
                assert response.status_code == 400, (twin, response.text)
                assert response.json()["error"]["code"] == "INVALID_TOPIC_NAME"
        assert client.get("/v1/topics/Sensor.Temp").status_code == 200
        assert client.get("/v1/topics/sensor_temp").status_code == 404
