"""Step 6 of ``make docker-check``: ``docker-compose.cluster.yaml`` on the real engine.

Run by :mod:`check` (which provides the engine, the image and the report) after
the single-broker compose file:

1. ``up --scale producer=2`` on free host ports, from the image step 3 built:
   3 NATS nodes, 2 gateways, 2 producers and the UI, every one healthy by the
   image's own check (a NATS node: its ``/healthz``, current with the meta
   leader);
2. every node's ``/jsz``, read inside its container: ``sync_always``, its store
   on its volume, a 3-node meta group and one leader that all agree on;
3. a record produced through gateway 1 is read back through gateway 2, and
   the producers' topics fill, seen through gateway 2; the UI answers;
4. a rolling restart of one node (``docker restart``: SIGTERM, then start):
   healthy again, and the record is still read through gateway 2; the time
   to healthy is printed;
5. a clean stop (every exit code 0), then ``down --volumes`` leaves nothing.
"""

from __future__ import annotations

import json
import time
import uuid

from check import (
    ROOT,
    Compose,
    Report,
    compose_command,
    free_port,
    health,
    http_get,
    http_post_json,
    inspect,
    run,
    service_of,
    tail,
    volumes,
    wait_all_healthy,
    wait_until,
)

COMPOSE_FILE = ROOT / "docker-compose.cluster.yaml"
NODES = ("nats-1", "nats-2", "nats-3")
PRODUCERS = 2
EXPECTED = len(NODES) + 2 + PRODUCERS + 1  # nodes, gateways, producers, UI
TOPICS = {"temperature", "humidity", "pressure"}
READ_JSZ = (
    "import urllib.request;"
    " print(urllib.request.urlopen('http://127.0.0.1:8222/jsz', timeout=5).read().decode())"
)


def node_report(compose: Compose, node: str) -> dict[str, object]:
    """A node's ``/jsz``, read inside its container (the monitoring port is not published)."""
    found = compose.containers(node)
    if not found:
        return {}
    answer = run(["docker", "exec", found[0], "python", "-c", READ_JSZ], timeout=60)
    try:
        report: dict[str, object] = json.loads(answer.stdout)
    except ValueError:
        return {}
    return report


def records(gateway: str, topic: str) -> list[object]:
    status, body = http_get(
        f"{gateway}/v1/topics/{topic}/partitions/0/records?offset=earliest&limit=100"
    )
    return [r["value"] for r in json.loads(body)["records"]] if status == 200 else []


def cluster_compose_checks(report: Report, image: str, base: str, tag: str) -> None:
    command = compose_command()
    if command is None:
        report.fail("cluster compose", "neither `docker compose` nor `docker-compose` is installed")
        return
    ports = {name: free_port() for name in ("gateway-1", "gateway-2", "ui", "kafka")}
    env = {
        "MINIMQ_IMAGE": image,
        "MINIMQ_BASE_IMAGE": base,
        "MINIMQ_PIP_NO_INDEX": "1",
        "MINIMQ_GATEWAY_1_PORT": str(ports["gateway-1"]),
        "MINIMQ_GATEWAY_2_PORT": str(ports["gateway-2"]),
        "MINIMQ_UI_PORT": str(ports["ui"]),
        "MINIMQ_KAFKA_PORT": str(ports["kafka"]),
        "MINIMQ_KAFKA_ADVERTISED_HOST": "127.0.0.1",
    }
    project = f"{tag}cluster"
    compose = Compose(command, project, env, COMPOSE_FILE)
    gateway_1 = f"http://127.0.0.1:{ports['gateway-1']}"
    gateway_2 = f"http://127.0.0.1:{ports['gateway-2']}"
    volumes_before = volumes()
    try:
        started = time.monotonic()
        # The image exists (step 3), so `up` starts from it without building.
        up = compose("up", "-d", "--scale", f"producer={PRODUCERS}", timeout=1200)
        if not report.check(
            up.returncode == 0,
            "cluster: compose up",
            f"{COMPOSE_FILE.name} on host ports {ports}"
            if up.returncode == 0
            else tail(up.stderr + up.stdout, 25),
        ):
            return
        healthy, states = wait_all_healthy(compose, EXPECTED)
        report.info("cluster: start to all healthy", f"{time.monotonic() - started:.1f}s")
        report.check(
            healthy,
            f"cluster: all {EXPECTED} containers healthy",
            ", ".join(f"{k}={v}" for k, v in sorted(states.items())),
        )
        node_checks(report, compose)
        traffic_checks(report, gateway_1, gateway_2, f"http://127.0.0.1:{ports['ui']}")
        restart_checks(report, compose, gateway_2)
        stop_checks(report, compose)
    finally:
        compose("down", "--volumes", "--remove-orphans", timeout=300)
        left = volumes() - volumes_before
        networks = run(
            [
                "docker",
                "network",
                "ls",
                "-q",
                "--filter",
                f"label=com.docker.compose.project={project}",
            ]
        ).stdout.split()
        report.check(
            not left and not compose.containers() and not networks,
            "cluster: compose down --volumes",
            f"left behind: {len(compose.containers())} containers, {len(networks)} networks,"
            f" volumes {sorted(left)}",
        )


def node_checks(report: Report, compose: Compose) -> None:
    reports = {node: node_report(compose, node) for node in NODES}
    configs = {node: r.get("config") or {} for node, r in reports.items()}
    metas = {node: r.get("meta_cluster") or {} for node, r in reports.items()}
    report.check(
        all(isinstance(c, dict) and c.get("sync_always") is True for c in configs.values()),
        "cluster: every node fsyncs each write (sync_interval: always)",
        ", ".join(
            f"{n}: sync_always={c.get('sync_always') if isinstance(c, dict) else None}"
            for n, c in configs.items()
        ),
    )
    report.check(
        all(
            isinstance(c, dict) and str(c.get("store_dir", "")).startswith("/data")
            for c in configs.values()
        ),
        "cluster: every node's store on its own volume",
        ", ".join(
            f"{n}: {c.get('store_dir') if isinstance(c, dict) else None}"
            for n, c in configs.items()
        ),
    )
    leaders = {m.get("leader") if isinstance(m, dict) else None for m in metas.values()}
    sizes = {m.get("cluster_size") if isinstance(m, dict) else None for m in metas.values()}
    report.check(
        len(leaders) == 1 and None not in leaders and sizes == {3},
        "cluster: one JetStream meta leader that all 3 nodes agree on",
        f"leaders {sorted(map(str, leaders))}, cluster sizes {sorted(map(str, sizes))}",
    )


def traffic_checks(report: Report, gateway_1: str, gateway_2: str, ui: str) -> None:
    marker = uuid.uuid4().hex
    statuses: list[int] = []

    def produced() -> bool:
        statuses.append(
            http_post_json(f"{gateway_1}/produce", {"topic": "cluster-check", "message": marker})
        )
        return statuses[-1] == 201

    # Retried: one produce, acknowledged once; a retry of a failed one may store it twice,
    # which the read below would show.
    wait_until(produced, 60, 2.0)
    report.check(
        statuses[-1] == 201,
        "cluster: produce through gateway 1",
        f"POST /produce -> {statuses[-1]} after {len(statuses)} attempt(s)",
    )
    wait_until(lambda: marker in records(gateway_2, "cluster-check"), 30, 1.0)
    seen = records(gateway_2, "cluster-check")
    report.check(
        seen.count(marker) == 1,
        "cluster: consume through gateway 2",
        f"the record produced through gateway 1, read through gateway 2: {seen[:3]}",
    )

    def topics() -> set[str]:
        status, body = http_get(f"{gateway_2}/v1/topics")
        return {t["name"] for t in json.loads(body)["topics"]} if status == 200 else set()

    wait_until(lambda: topics() >= TOPICS and all(records(gateway_2, t) for t in TOPICS), 60, 1)
    report.check(
        topics() >= TOPICS and all(records(gateway_2, t) for t in TOPICS),
        "cluster: the producers deliver through the gateways",
        f"topics seen through gateway 2: {sorted(topics())[:8]}",
    )
    status, body = http_get(f"{ui}/")
    report.check(status == 200 and b"MiniMQ" in body, "cluster: UI answers", f"GET / -> {status}")


def restart_checks(report: Report, compose: Compose, gateway_2: str) -> None:
    (node,) = compose.containers("nats-2") or [""]
    if not node:
        report.fail("cluster: rolling restart of a node", "no nats-2 container")
        return
    before = records(gateway_2, "cluster-check")
    started = time.monotonic()
    restarted = run(["docker", "restart", node], timeout=120)
    # Healthy again: running, and its /healthz (current with the meta leader) answers.
    wait_until(
        lambda: health(node) == "healthy" and inspect(node, "{{.State.Running}}") == "true",
        120,
        0.5,
    )
    seconds = time.monotonic() - started
    report.info("cluster: node restart to healthy", f"{seconds:.1f}s (docker restart nats-2)")
    after = records(gateway_2, "cluster-check")
    report.check(
        restarted.returncode == 0 and health(node) == "healthy" and after == before and bool(after),
        "cluster: rolling restart of a node (SIGTERM)",
        f"nats-2 healthy again; gateway 2 still reads {len(after)} record(s) of cluster-check",
    )


def stop_checks(report: Report, compose: Compose) -> None:
    started = time.monotonic()
    stopped = compose("stop", timeout=300)
    seconds = time.monotonic() - started
    codes = {
        f"{service_of(c)}:{c[:6]}": inspect(c, "{{.State.ExitCode}}") for c in compose.containers()
    }
    report.info("cluster: stop time", f"{seconds:.1f}s for {len(codes)} containers")
    report.check(
        stopped.returncode == 0 and set(codes.values()) == {"0"},
        "cluster: clean compose stop",
        ", ".join(f"{k}={v}" for k, v in sorted(codes.items())),
    )
