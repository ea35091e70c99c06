"""deploy/k8s-cluster: MiniMQ scaled out on Kubernetes, checked offline.

What ``kubectl apply -k deploy/k8s-cluster`` would apply is rendered by the real kustomize
(``kubectl kustomize``), then:

- every object validates strictly against the Kubernetes schemas (``kubernetes-validate``);
- the NATS StatefulSet: 3 replicas started in parallel, a headless Service that publishes
  pods before they are ready, a claim per pod on the store, a PodDisruptionBudget keeping
  quorum, and a configuration that ``nats-server`` itself accepts, with
  ``sync_interval: always`` and a route to every pod;
- the gateway Deployment: 2 replicas whose ``MINIMQ_BACKEND`` names every NATS pod, probes on
  ``/healthz``, the Service ``broker`` selecting them, a command the real CLI honours;
- no single broker left, every pod non-root with requests, the token from the Secret.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from minimq.cli.nats_cluster import find_nats_server
from tests.test_docker import assert_cli_honours

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "deploy" / "k8s-cluster"
KUBERNETES_VERSION = "1.30.0"
NAMESPACE = "minimq"


@functools.cache
def rendered() -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, (
        "kubectl is missing (apt-get install kubectl): it renders the kustomization"
    )
    result = subprocess.run(
        [kubectl, "kustomize", str(OVERLAY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in rendered() if doc["kind"] == kind}


def workloads() -> list[dict[str, Any]]:
    return [d for d in rendered() if d["kind"] in ("StatefulSet", "Deployment", "DaemonSet")]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    return result


def labels(workload: dict[str, Any]) -> dict[str, str]:
    result: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return result


def selects(selector: dict[str, str], workload: dict[str, Any]) -> bool:
    return selector.items() <= labels(workload).items()


def nats_config() -> str:
    config: str = of_kind("ConfigMap")["nats-config"]["data"]["nats.conf"]
    return config


def test_every_object_validates_strictly_against_the_kubernetes_schema() -> None:
    assert rendered()
    for doc in rendered():
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_single_broker_is_swapped_for_nats_and_gateways() -> None:
    assert "broker" not in of_kind("StatefulSet")
    assert "broker-headless" not in of_kind("Service")
    assert set(of_kind("StatefulSet")) == {"nats"}
    assert {"gateway", "ui", "producer"} <= set(of_kind("Deployment"))
    for doc in rendered():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]


def test_the_nats_statefulset_has_three_parallel_replicas_a_claim_each_and_a_headless_service() -> (
    None
):
    nats = of_kind("StatefulSet")["nats"]
    spec = nats["spec"]
    assert spec["replicas"] == 3
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"]["type"] == "RollingUpdate"
    headless = of_kind("Service")[spec["serviceName"]]["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True
    assert selects(headless["selector"], nats)
    (claim,) = spec["volumeClaimTemplates"]
    (container,) = containers(nats)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"
    assert "store_dir: /data" in nats_config()
    assert container["command"] == ["nats-server"]
    assert container["args"] == ["-c", f"{mounts['config']}/nats.conf"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    # Liveness must not fail while quorum is lost, or every node would be restarted at once.
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz?js-enabled-only=true"
    pod_name = {e["name"]: e for e in container["env"]}["POD_NAME"]
    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_the_nats_config_fsyncs_every_write_and_routes_to_every_pod() -> None:
    nats = of_kind("StatefulSet")["nats"]
    config = nats_config()
    assert re.search(r"^\s*sync_interval: always$", config, flags=re.MULTILINE)
    assert "server_name: $POD_NAME" in config
    service = nats["spec"]["serviceName"]
    routes = re.findall(r"nats-route://([a-z0-9.-]+):6222", config)
    assert routes == [
        f"nats-{i}.{service}.{NAMESPACE}.svc.cluster.local" for i in range(nats["spec"]["replicas"])
    ]


def test_nats_server_accepts_the_config(tmp_path: Path) -> None:
    config = tmp_path / "nats.conf"
    config.write_text(nats_config())
    result = subprocess.run(
        [find_nats_server(), "-t", "-c", str(config)],
        env={**os.environ, "POD_NAME": "nats-0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_disruption_budgets_keep_a_nats_quorum_and_a_gateway() -> None:
    budgets = of_kind("PodDisruptionBudget")
    assert budgets["nats"]["spec"]["maxUnavailable"] == 1
    assert selects(
        budgets["nats"]["spec"]["selector"]["matchLabels"], of_kind("StatefulSet")["nats"]
    )
    assert budgets["gateway"]["spec"]["minAvailable"] == 1
    gateway = of_kind("Deployment")["gateway"]
    assert selects(budgets["gateway"]["spec"]["selector"]["matchLabels"], gateway)


def test_gateways_use_every_nats_pod_and_the_broker_service_selects_them() -> None:
    gateway = of_kind("Deployment")["gateway"]
    assert gateway["spec"]["replicas"] == 2
    (container,) = containers(gateway)
    env = {e["name"]: e.get("value") for e in container["env"]}
    nats = of_kind("StatefulSet")["nats"]
    service = nats["spec"]["serviceName"]
    assert env["MINIMQ_BACKEND"].split(",") == [
        f"nats://nats-{i}.{service}.{NAMESPACE}.svc.cluster.local:4222"
        for i in range(nats["spec"]["replicas"])
    ]
    assert env["MINIMQ_REPLICAS"] == "3"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    broker = of_kind("Service")["broker"]["spec"]
    assert selects(broker["selector"], gateway)
    assert not selects(broker["selector"], nats)
    names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in broker["ports"]} <= names


def test_only_gateways_and_nodes_reach_the_nats_client_port() -> None:
    policy = of_kind("NetworkPolicy")["nats"]["spec"]
    assert selects(policy["podSelector"]["matchLabels"], of_kind("StatefulSet")["nats"])
    client_from = [
        source["podSelector"]["matchLabels"]
        for rule in policy["ingress"]
        if {"port": "client"} in rule.get("ports", [])
        for source in rule.get("from", [])
    ]
    assert client_from == [
        {"app.kubernetes.io/name": "gateway"},
        {"app.kubernetes.io/name": "nats"},
    ]
    open_rules = [rule for rule in policy["ingress"] if "from" not in rule]
    assert all(rule["ports"] == [{"port": "monitor"}] for rule in open_rules)


@pytest.mark.parametrize("workload", workloads(), ids=lambda w: w["metadata"]["name"])
def test_every_pod_is_non_root_with_requests(workload: dict[str, Any]) -> None:
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in containers(workload):
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def minimq_workloads() -> list[dict[str, Any]]:
    return [w for w in workloads() if w["metadata"]["name"] != "nats"]


@pytest.mark.parametrize("workload", minimq_workloads(), ids=lambda w: w["metadata"]["name"])
def test_minimq_containers_take_the_token_from_the_secret_and_the_cli_honours_them(
    workload: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for container in containers(workload):
        env = {e["name"]: e for e in container["env"]}
        assert env["MINIMQ_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": "minimq-token",
            "key": "token",
        }
        environment = {
            e["name"]: e.get("value", f"sample-{e['name'].lower().replace('_', '-')}")
            for e in container["env"]
        }
        assert_cli_honours(list(container["args"]), environment, monkeypatch)
