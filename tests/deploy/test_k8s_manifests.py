"""The Kubernetes manifests in deploy/k8s, checked offline.

- every document validates, strictly (no unknown fields), against the
  Kubernetes OpenAPI schemas bundled by ``kubernetes-validate``;
- the shape the docs promise: the broker a StatefulSet with a claim and a
  ``/healthz`` readiness probe, the UI and the simulated producers
  Deployments, the host-metric producers a DaemonSet on the node's /proc;
  Services that select pods that exist; requests, a non-root security
  context and the token from the Secret in every container;
- every command and environment variable is one the real CLI honours.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.test_docker import assert_cli_honours

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"


def documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def applied() -> list[dict[str, Any]]:
    """What ``kubectl apply -k deploy/k8s`` applies (the kustomization's resources)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in documents(name)]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in applied() if doc["kind"] == kind}


def workloads() -> list[dict[str, Any]]:
    return [doc for doc in applied() if doc["kind"] in ("StatefulSet", "Deployment", "DaemonSet")]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    return result


MANIFESTS = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("name", MANIFESTS)
def test_every_document_validates_strictly_against_the_kubernetes_schema(name: str) -> None:
    for doc in documents(name):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_rejects_a_broken_manifest() -> None:
    broker = copy.deepcopy(of_kind("StatefulSet")["broker"])
    broker["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broker, KUBERNETES_VERSION, strict=True)
    broker = copy.deepcopy(of_kind("StatefulSet")["broker"])
    containers(broker)[0]["readinesProbe"] = {"httpGet": {"path": "/healthz"}}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broker, KUBERNETES_VERSION, strict=True)


def test_kustomization_applies_every_manifest_but_the_example_secret() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(set(MANIFESTS) - {"secret.example.yaml"})
    assert documents("secret.example.yaml")[0]["metadata"]["name"] == "minimq-token"


def test_everything_is_in_the_minimq_namespace() -> None:
    assert "minimq" in of_kind("Namespace")
    for doc in applied():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "minimq", doc["metadata"]["name"]


def test_broker_is_a_statefulset_with_a_claim_and_a_healthz_readiness_probe() -> None:
    broker = of_kind("StatefulSet")["broker"]
    assert broker["spec"]["replicas"] == 1  # one writer per data directory
    (claim,) = broker["spec"]["volumeClaimTemplates"]
    (container,) = containers(broker)
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in container["volumeMounts"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert broker["spec"]["serviceName"] in of_kind("Service")
    assert of_kind("Service")[broker["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"


def test_ui_and_simulated_producers_are_deployments_and_host_producers_a_daemonset() -> None:
    deployments = of_kind("Deployment")
    assert containers(deployments["ui"])[0]["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployments["producer"]["spec"]["replicas"] > 1
    host = of_kind("DaemonSet")["host-metrics"]
    (container,) = containers(host)
    assert container["args"] == ["producer", "--source", "host"]
    env = {e["name"]: e for e in container["env"]}
    assert env["HOST_MODE"]["value"] == "true"
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    mount = {m["name"]: m for m in container["volumeMounts"]}["host-proc"]
    assert mount["mountPath"] == "/host_proc" and mount["readOnly"] is True
    volumes = {v["name"]: v for v in host["spec"]["template"]["spec"]["volumes"]}
    assert volumes["host-proc"]["hostPath"]["path"] == "/proc"


def test_every_service_selects_the_pods_of_a_workload_and_a_named_port() -> None:
    for name, service in of_kind("Service").items():
        selector = service["spec"]["selector"]
        targets = [
            w
            for w in workloads()
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert targets, f"Service {name} selects no pods"
        port_names = {p["name"] for c in containers(targets[0]) for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names, name


@pytest.mark.parametrize("workload", workloads(), ids=lambda w: w["metadata"]["name"])
def test_every_container_is_non_root_with_requests_and_the_token_from_the_secret(
    workload: dict[str, Any],
) -> None:
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert workload["spec"]["selector"]["matchLabels"].items() <= (
        workload["spec"]["template"]["metadata"]["labels"].items()
    )
    for container in containers(workload):
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        env = {e["name"]: e for e in container["env"]}
        assert env["MINIMQ_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": "minimq-token",
            "key": "token",
        }


@pytest.mark.parametrize("workload", workloads(), ids=lambda w: w["metadata"]["name"])
def test_commands_and_environment_exist_in_the_cli(
    workload: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for container in containers(workload):
        # Values from the cluster (fieldRef, secretKeyRef) get a sample that fits.
        environment = {
            e["name"]: e.get("value", f"sample-{e['name'].lower().replace('_', '-')}")
            for e in container["env"]
        }
        assert_cli_honours(list(container["args"]), environment, monkeypatch)
