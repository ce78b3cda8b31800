"""House rules of the rendered Kubernetes overlays (`kubectl kustomize`; the dev
overlay needs `scripts/dev-secrets` first, which scripts/check-deploy runs)."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache

import pytest
import yaml

import readme_vars

ROOT = readme_vars.ROOT
OVERLAYS = ("dev", "prod")
SUBGRAPHS = ("auth", "tasks", "files")
OURS = ("router", *SUBGRAPHS)


@cache
def rendered(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    command = [kubectl, "kustomize"] if kubectl else [shutil.which("kustomize") or "kustomize", "build"]
    out = subprocess.run(
        [*command, str(ROOT / "deploy/k8s/overlays" / overlay)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def of_kind(overlay: str, *kinds: str) -> list[dict]:
    return [doc for doc in rendered(overlay) if doc["kind"] in kinds]


def workloads(overlay: str) -> list[dict]:
    return of_kind(overlay, "Deployment", "StatefulSet")


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_probes_resources_and_a_locked_down_security_context(overlay):
    for workload in workloads(overlay):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in pod["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in container, f"{name}/{container['name']} has no {probe}"
            assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"], name
            assert container["resources"]["limits"]["memory"], name
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"], name
            if name != "rabbitmq":  # its entrypoint writes at start (see overlays/dev/backing.yaml)
                assert context["readOnlyRootFilesystem"] is True, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_our_services_probe_their_health_endpoints_and_spread_over_nodes(overlay):
    for workload in workloads(overlay):
        name = workload["metadata"]["name"]
        if name not in OURS:
            continue
        pod = workload["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live", name
        assert container["startupProbe"]["httpGet"]["path"] == "/health/live", name
        keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert {"kubernetes.io/hostname", "topology.kubernetes.io/zone"} <= keys, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_selects_pods_of_some_workload(overlay):
    pods = [w["spec"]["template"]["metadata"]["labels"] for w in workloads(overlay)]
    for service in of_kind(overlay, "Service"):
        selector = service["spec"].get("selector", {})
        assert any(selects(selector, labels) for labels in pods), f"Service {service['metadata']['name']} selects nothing"
        for port in service["spec"]["ports"]:
            assert port.get("targetPort"), service["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_subgraphs_and_postgres_accept_only_what_their_network_policy_lets_in(overlay):
    policies = of_kind(overlay, "NetworkPolicy")
    assert any(p["spec"]["podSelector"] == {} and p["spec"]["policyTypes"] == ["Ingress"] for p in policies), "no default deny"

    def allowed_peers(app: str) -> set[str]:
        peers: set[str] = set()
        for policy in policies:
            if not selects(policy["spec"]["podSelector"].get("matchLabels", {}), {"app.kubernetes.io/name": app}):
                continue
            for rule in policy["spec"].get("ingress", []):
                for peer in rule.get("from", []):
                    labels = peer.get("podSelector", {}).get("matchLabels", {})
                    namespace = peer.get("namespaceSelector", {}).get("matchLabels", {})
                    peers.add(labels.get("app.kubernetes.io/name") or "namespace:" + ",".join(namespace.values()))
        return peers

    for subgraph in SUBGRAPHS:
        peers = allowed_peers(subgraph)
        assert "router" in peers, subgraph
        # Besides the router: auth's JWKS for the other subgraphs, and Prometheus on the admin port.
        assert peers <= {"router", "tasks", "files", "namespace:monitoring"}, f"{subgraph}: {peers}"
    assert allowed_peers("postgres") == set(SUBGRAPHS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned_by_tag_never_latest(overlay):
    for workload in workloads(overlay):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag and tag and tag != "latest", f"{workload['metadata']['name']}: {image}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_router_and_subgraphs_have_a_disruption_budget_and_an_autoscaler(overlay):
    budgets = {p["metadata"]["name"]: p for p in of_kind(overlay, "PodDisruptionBudget")}
    scalers = {h["metadata"]["name"]: h for h in of_kind(overlay, "HorizontalPodAutoscaler")}
    for name in OURS:
        assert selects(budgets[name]["spec"]["selector"]["matchLabels"], {"app.kubernetes.io/name": name})
        assert scalers[name]["spec"]["scaleTargetRef"]["name"] == name
        assert scalers[name]["spec"]["minReplicas"] <= scalers[name]["spec"]["maxReplicas"]


def test_prod_runs_three_replicas_shares_rate_limits_and_runs_no_databases():
    deployments = {d["metadata"]["name"]: d for d in of_kind("prod", "Deployment")}
    for name in OURS:
        assert deployments[name]["spec"]["replicas"] >= 3, name
    assert not {"postgres", "redis", "rabbitmq"} & {w["metadata"]["name"] for w in workloads("prod")}
    router = next(c for c in of_kind("prod", "ConfigMap") if c["metadata"]["name"].startswith("router-config"))
    assert router["data"]["RATE_LIMIT_STORE"] == "redis"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_configured_variable_is_one_the_service_reads(overlay):
    sections = readme_vars.sections()
    configmaps = {c["metadata"]["name"]: c.get("data", {}) for c in of_kind(overlay, "ConfigMap")}
    for service in OURS:
        known = readme_vars.documented(service, sections)
        for map_name in ("taskgraph-common", f"{service}-config"):
            for variable in configmaps[map_name]:
                if variable in readme_vars.PENDING:
                    continue
                assert readme_vars.is_documented(variable, known), f"{overlay}: {map_name} sets {variable} for {service}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_files_named_in_settings_are_mounted(overlay):
    configmaps = {c["metadata"]["name"]: c.get("data", {}) for c in of_kind(overlay, "ConfigMap")}
    deployments = {d["metadata"]["name"]: d for d in of_kind(overlay, "Deployment")}
    for service in OURS:
        pod = deployments[service]["spec"]["template"]["spec"]
        projected = next(v for v in pod["volumes"] if v["name"] == "secrets")["projected"]["sources"]
        paths = {"/run/secrets/" + item["path"] for source in projected for item in source["secret"]["items"]}
        settings = {**configmaps["taskgraph-common"], **configmaps[f"{service}-config"]}
        for variable, value in settings.items():
            if variable.endswith("_FILE"):
                assert value in paths, f"{overlay}: {service} reads {value}, which no Secret projects"
