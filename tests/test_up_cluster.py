"""``minimq up --cluster``: a real 3-node NATS JetStream cluster, gateways over it, clients.

- the node configuration :mod:`minimq.cli.nats_cluster` writes is one ``nats-server`` accepts,
  with ``sync_interval: always``, a store directory per node and routes to every node;
- started by the supervisor, the three nodes elect a JetStream meta leader, report
  ``sync_always`` in ``/jsz`` and stop by PID with SIGTERM;
- ``minimq up --cluster`` end to end: the nodes, two gateways, the producers and the UI; a
  record produced through gateway 1 is read through gateway 2; a stop signal leaves no process;
  a second run serves what the first one stored;
- a missing ``nats-server`` and a taken or doubly used port are one-line errors.

Every process runs on free 127.0.0.1 ports with temporary directories and is stopped by PID,
also when a test fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from minimq.cli import nats_cluster
from minimq.cli.main import main
from minimq.cli.supervisor import PrefixedOutput, Supervisor
from tests.support.processes import free_port

# Generous: a loaded two-core machine can take tens of seconds to elect a meta leader and
# start two gateways and a UI.
START_TIMEOUT = max(float(os.environ.get("MINIMQ_TEST_START_TIMEOUT", "60")), 60.0) * 2
STOP_TIMEOUT = 30.0
TOPICS = {"temperature", "humidity", "pressure"}


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_run(count: int, taken: set[int]) -> int:
    """The first of ``count`` consecutive free ports, none of them in ``taken``."""
    for _ in range(1000):
        base = random.randrange(20000, 60000 - count)
        run = set(range(base, base + count))
        if not run & taken and all(port_is_free(p) for p in run):
            taken |= run
            return base
    raise AssertionError(f"no {count} consecutive free ports found")


def cluster_ports() -> dict[str, int]:
    """Bases for the NATS nodes' three port kinds, two gateways, Kafka and the UI."""
    taken: set[int] = set()
    return {
        "--nats-port": free_port_run(3, taken),
        "--nats-route-port": free_port_run(3, taken),
        "--nats-monitor-port": free_port_run(3, taken),
        "--broker-port": free_port_run(2, taken),
        "--kafka-port": free_port_run(1, taken),
        "--ui-port": free_port_run(1, taken),
    }


def plan(directory: Path, ports: dict[str, int]) -> nats_cluster.NatsCluster:
    return nats_cluster.plan_cluster(
        directory,
        bind_host="127.0.0.1",
        connect_host="127.0.0.1",
        client_port=ports["--nats-port"],
        route_port=ports["--nats-route-port"],
        monitor_port=ports["--nats-monitor-port"],
    )


def jsz(cluster: nats_cluster.NatsCluster, node: nats_cluster.NatsNode) -> Any:
    with urllib.request.urlopen(f"{cluster.monitor_url(node)}/jsz", timeout=5) as answer:
        return json.loads(answer.read())


# -- the node configuration ---------------------------------------------------


def test_node_configs_are_accepted_by_nats_server_and_say_what_durability_needs(
    tmp_path: Path,
) -> None:
    cluster = plan(tmp_path / "nats", cluster_ports())
    nats_cluster.write_configs(cluster)
    binary = nats_cluster.find_nats_server()
    store_dirs = {node.store_dir for node in cluster.nodes}
    assert len(store_dirs) == 3 and all(d.is_dir() for d in store_dirs)
    for node in cluster.nodes:
        text = node.config_path.read_text()
        assert "sync_interval: always" in text
        assert f'store_dir: "{node.store_dir}"' in text
        for peer in cluster.nodes:
            assert cluster.route_url(peer) in text
        checked = subprocess.run(
            [binary, "-t", "-c", str(node.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_node_ports_are_consecutive_from_each_base(tmp_path: Path) -> None:
    cluster = nats_cluster.plan_cluster(
        tmp_path,
        bind_host="0.0.0.0",
        connect_host="127.0.0.1",
        client_port=4222,
        route_port=6222,
        monitor_port=8222,
    )
    assert cluster.backend() == "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"
    assert [n.route_port for n in cluster.nodes] == [6222, 6223, 6224]
    assert [n.monitor_port for n in cluster.nodes] == [8222, 8223, 8224]
    assert 'listen: "0.0.0.0:4223"' in nats_cluster.node_config(cluster, cluster.nodes[1])
    with pytest.raises(ValueError, match="consecutive"):
        nats_cluster.plan_cluster(
            tmp_path,
            bind_host="127.0.0.1",
            connect_host="127.0.0.1",
            client_port=65534,
            route_port=6222,
            monitor_port=8222,
        )


# -- the cluster under the supervisor -----------------------------------------


def test_supervised_nodes_elect_a_meta_leader_sync_always_and_stop_by_pid(tmp_path: Path) -> None:
    cluster = plan(tmp_path / "nats", cluster_ports())
    nats_cluster.write_configs(cluster)
    specs = nats_cluster.node_specs(cluster, nats_cluster.find_nats_server(), tier=0)
    output = io.StringIO()
    processes: list[psutil.Process] = []
    with Supervisor(PrefixedOutput(output, 6, colour=False)) as supervisor:
        for spec in specs:
            processes.append(psutil.Process(supervisor.start(spec).process.pid))
        assert supervisor.wait_for(
            lambda: nats_cluster.cluster_ready(cluster), START_TIMEOUT, "meta leader"
        )
        reports = [jsz(cluster, node) for node in cluster.nodes]
        leaders = {r["meta_cluster"]["leader"] for r in reports}
        assert len(leaders) == 1, "the nodes disagree on the meta leader"
        for node, report in zip(cluster.nodes, reports, strict=True):
            config = report["config"]
            assert config["sync_always"] is True, config
            assert config["store_dir"].startswith(str(node.store_dir)), config
            assert report["meta_cluster"]["cluster_size"] == 3
    _, alive = psutil.wait_procs(processes, timeout=STOP_TIMEOUT)
    assert alive == []
    log = output.getvalue()
    assert log.count("Server Exiting") == 3, log[-3000:]
    assert "did not stop within" not in log  # SIGTERM sufficed: no SIGKILL


# -- minimq up --cluster ------------------------------------------------------


def role(process: psutil.Process) -> str:
    """``nats-server``, or the command of ``python -m minimq COMMAND ...``."""
    argv = process.cmdline()
    if Path(argv[0]).name == "nats-server":
        return "nats-server"
    return argv[argv.index("minimq") + 1]


class ClusterUp:
    """One ``minimq up --cluster`` run on free ports; its output goes to ``log_path``."""

    def __init__(self, data_dir: Path, ports: dict[str, int]) -> None:
        self.ports = ports
        self.log_path = data_dir.parent / f"up-cluster-{uuid.uuid4().hex[:6]}.log"
        argv = [sys.executable, "-m", "minimq", "up", "--cluster", "--data-dir", str(data_dir)]
        argv += [part for flag, value in ports.items() for part in (flag, str(value))]
        argv += ["--interval", "0.2"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.descendants: list[psutil.Process] = []

    def gateway(self, number: int) -> str:
        return f"http://127.0.0.1:{self.ports['--broker-port'] + number - 1}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['--ui-port']}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not condition():
            assert self.process.poll() is None, f"minimq up exited early:\n{self.log()[-6000:]}"
            assert time.monotonic() < deadline, f"{what} not within {START_TIMEOUT} s"
            time.sleep(0.2)

    def message_counts(self, gateway: int) -> dict[str, int]:
        try:
            topics = httpx.get(f"{self.gateway(gateway)}/v1/topics", timeout=5).json()["topics"]
        except (httpx.HTTPError, ValueError, KeyError):
            return {}
        return {topic["name"]: topic["messages"] for topic in topics}

    def wait_until_running(self) -> None:
        self.wait_until(lambda: "MiniMQ is up on a 3-node" in self.log(), "the banner")
        self.descendants = psutil.Process(self.process.pid).children(recursive=True)

    def stop(self) -> int:
        os.kill(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"minimq up did not stop within {STOP_TIMEOUT} s:\n{self.log()[-6000:]}")

    def survivors(self) -> list[str]:
        _, alive = psutil.wait_procs(self.descendants, timeout=STOP_TIMEOUT)
        left = []
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.status() != psutil.STATUS_ZOMBIE:
                    left.append(" ".join(process.cmdline()))
        return left

    def kill_everything(self) -> None:
        if self.process.poll() is None:
            self.descendants = psutil.Process(self.process.pid).children(recursive=True)
            self.process.kill()
        self.process.wait()
        for process in self.descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


@pytest.fixture
def start_cluster_up(tmp_path: Path) -> Iterator[Callable[[dict[str, int]], ClusterUp]]:
    runs: list[ClusterUp] = []

    def start(ports: dict[str, int]) -> ClusterUp:
        run = ClusterUp(tmp_path / "data", ports)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill_everything()


@pytest.mark.slow
def test_up_cluster_runs_nodes_gateways_and_clients_and_keeps_data_across_runs(
    start_cluster_up: Callable[[dict[str, int]], ClusterUp], tmp_path: Path
) -> None:
    ports = cluster_ports()
    run = start_cluster_up(ports)
    run.wait_until_running()
    assert sorted(role(p) for p in run.descendants) == sorted(
        ["nats-server"] * 3 + ["broker"] * 2 + ["producer"] * 3 + ["ui"]
    )
    log = run.log()
    for number in (1, 2):
        assert f"gateway {number}   {run.gateway(number)}" in log
    assert f"web UI      {run.ui_url}" in log
    assert f"BROKER_URL={run.gateway(1)},{run.gateway(2)}" in log
    assert "nats://127.0.0.1:{}".format(ports["--nats-port"] + 2) in log

    marker = uuid.uuid4().hex
    produced = httpx.post(
        f"{run.gateway(1)}/produce", json={"topic": "cluster-check", "message": marker}, timeout=30
    )
    assert produced.status_code == 201, produced.text
    read = httpx.get(
        f"{run.gateway(2)}/v1/topics/cluster-check/partitions/0/records",
        params={"offset": "earliest", "limit": 10},
        timeout=30,
    )
    assert read.status_code == 200, read.text
    assert [r["value"] for r in read.json()["records"]] == [marker]
    # The producers write through the gateways; either gateway sees all of it.
    run.wait_until(
        lambda: all(run.message_counts(2).get(topic, 0) > 0 for topic in TOPICS),
        "every sensor topic filling, seen through gateway 2",
    )
    assert httpx.get(f"{run.ui_url}/healthz", timeout=10).status_code == 200

    assert run.stop() == 0
    assert run.survivors() == []
    assert "received; stopping every service" in run.log()
    assert "Traceback" not in run.log()

    second = start_cluster_up(ports)
    second.wait_until_running()
    again = httpx.get(
        f"{second.gateway(2)}/v1/topics/cluster-check/partitions/0/records",
        params={"offset": "earliest", "limit": 10},
        timeout=30,
    )
    assert [r["value"] for r in again.json()["records"]] == [marker]
    assert second.stop() == 0
    assert second.survivors() == []


# -- errors before anything starts --------------------------------------------


def test_a_missing_nats_server_is_a_one_line_error_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code = main(["up", "--cluster", "--data-dir", str(tmp_path / "data")])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("minimq up: nats-server is not installed")
    assert line.endswith("install it with: pip install 'minimq[cluster]'")
    assert not (tmp_path / "data").exists()


def test_a_taken_nats_port_is_a_one_line_error_naming_its_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ports = cluster_ports()
    taken = ports["--nats-route-port"] + 1
    argv = ["up", "--cluster", "--data-dir", str(tmp_path / "data")]
    argv += [part for flag, value in ports.items() for part in (flag, str(value))]
    with socket.create_server(("127.0.0.1", taken)):
        code = main(argv)
    _, err = capsys.readouterr()
    assert code == 1
    assert err.splitlines() == [
        f"minimq up: port {taken} on 127.0.0.1 (for the nats-2 route) is already in use; "
        "stop whatever holds it or choose another with --nats-route-port"
    ]
    assert not (tmp_path / "data").exists()


def test_two_services_on_one_port_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ui_port = free_port()
    # The second gateway takes --broker-port + 1: here the UI's port.
    argv = ["up", "--cluster", "--data-dir", str(tmp_path / "data"), "--ui-port", str(ui_port)]
    argv += ["--broker-port", str(ui_port - 1)]
    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 1
    assert err.splitlines() == [
        f"minimq up: the gateway-2 (--broker-port) and the ui (--ui-port) would both use"
        f" port {ui_port}"
    ]
