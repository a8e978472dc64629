"""Compose and Kubernetes manifests: they parse, point at files that exist,
set only settings riskwatch knows, and wire ports, probes and volumes to
what the processes actually serve."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.ops import COMPOSE_FILE, KUBERNETES_DIR, PROMETHEUS_DIR, REPO
from riskwatch.settings import KNOWN_ENVIRONMENT, Settings

DEFAULTS = Settings()
COMPOSE_DIR = COMPOSE_FILE.parent


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def kubernetes_documents() -> list[dict]:
    documents = []
    for path in sorted(KUBERNETES_DIR.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


def kubernetes(kind: str, name: str) -> dict:
    (found,) = [d for d in kubernetes_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def container(deployment: dict) -> dict:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def k8s_env(deployment: dict) -> dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deployment).get("env", [])}


# --- Compose ---------------------------------------------------------------


def test_compose_has_the_whole_stack():
    services = compose()["services"]
    assert {"kafka", "worker", "api", "prometheus", "alertmanager", "grafana"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] >= 2


def test_compose_bind_mounts_and_build_files_exist():
    document = compose()
    for name, service in document["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source} does not exist"
        build = service.get("build")
        if build:
            context = (COMPOSE_DIR / build["context"]).resolve()
            assert context == REPO
            assert (context / build["dockerfile"]).is_file()


def test_the_image_copies_only_files_that_exist():
    dockerfile = (COMPOSE_DIR / "Dockerfile").read_text().splitlines()
    for line in dockerfile:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"Dockerfile: COPY {source}: not in the repository"


def test_compose_sets_only_known_riskwatch_settings():
    for name, service in compose()["services"].items():
        for variable in service.get("environment", {}) or {}:
            if variable.startswith("RISKWATCH_"):
                assert variable in KNOWN_ENVIRONMENT, f"{name}: {variable} is not a riskwatch setting"


def test_prometheus_scrapes_the_compose_services_on_their_ports():
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    services = compose()["services"]
    worker_sd = jobs["riskwatch-worker"]["dns_sd_configs"][0]
    assert worker_sd["names"] == ["worker"]
    assert str(worker_sd["port"]) == services["worker"]["environment"]["RISKWATCH_WEB_PORT"]
    (api_target,) = jobs["riskwatch-api"]["static_configs"][0]["targets"]
    host, port = api_target.split(":")
    assert host == "api" and port == services["api"]["environment"]["RISKWATCH_API_PORT"]
    (alertmanager,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanager.split(":")[0] in services
    mounts = dict(v.split(":")[:2] for v in services["prometheus"]["volumes"])
    assert mounts["../prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["../prometheus/rules"] == "/etc/prometheus/" + config["rule_files"][0].split("/")[0]


def test_workers_reach_kafka_and_alertmanager_by_service_name():
    services = compose()["services"]
    env = services["worker"]["environment"]
    assert env["RISKWATCH_BROKER"].split(":")[0] == "kafka"
    assert env["RISKWATCH_ALERTMANAGER"].split("//")[1].split(":")[0] == "alertmanager"
    assert "kafka" in services["worker"]["depends_on"]


def _alertmanager_config_path() -> Path:
    alertmanager = compose()["services"]["alertmanager"]
    (config_flag,) = [c for c in alertmanager["command"] if c.startswith("--config.file=")]
    config = Path(config_flag.split("=", 1)[1])
    for volume in alertmanager["volumes"]:
        source, target = volume.split(":")[:2]
        if config.is_relative_to(target):
            return COMPOSE_DIR / source / config.relative_to(target)
    raise AssertionError(f"{config} is not mounted into the alertmanager service")


def test_compose_alertmanager_config_is_valid():
    assert shutil.which("amtool"), "amtool is missing: scripts/install-services.sh installs Debian's prometheus-alertmanager"
    result = subprocess.run(["amtool", "check-config", str(_alertmanager_config_path())],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_routes_every_service_alert_severity(all_rules):
    """A severity no route matches falls to the default receiver: a page nobody gets paged for."""
    config = yaml.safe_load(_alertmanager_config_path().read_text())
    matchers = {m for route in config["route"].get("routes", []) for m in route.get("matchers", [])}
    for severity in {rule["labels"]["severity"] for rule in all_rules if "alert" in rule}:
        assert f'severity="{severity}"' in matchers, f"no Alertmanager route for severity={severity}"


def test_worker_partitions_match_the_topics_kafka_creates():
    services = compose()["services"]
    command = services["worker"]["command"]
    partitions = int(command[command.index("--partitions") + 1])
    assert partitions == int(services["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"])
    assert services["worker"]["deploy"]["replicas"] <= partitions


# --- Kubernetes ------------------------------------------------------------


def test_kubernetes_manifests_parse_and_are_all_in_the_kustomization():
    kustomization = yaml.safe_load((KUBERNETES_DIR / "kustomization.yaml").read_text())
    shipped = {p.name for p in KUBERNETES_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == shipped
    kinds = {(d["kind"], d["metadata"]["name"]) for d in kubernetes_documents()}
    assert {("Deployment", "riskwatch-worker"), ("Deployment", "riskwatch-api"),
            ("Service", "riskwatch-worker"), ("Service", "riskwatch-api")} <= kinds


def test_rules_configmaps_carry_every_rule_file():
    kustomization = yaml.safe_load((KUBERNETES_DIR / "kustomization.yaml").read_text())
    generators = {g["name"]: g["files"] for g in kustomization["configMapGenerator"]}
    listed = {(KUBERNETES_DIR / f).resolve() for f in generators["riskwatch-rules"]}
    rule_files = {p.resolve() for p in (REPO / "rules").glob("*.y*ml")}
    assert listed == rule_files, f"add to deploy/kubernetes/kustomization.yaml: {sorted(p.name for p in rule_files - listed)}; " \
                                 f"remove: {sorted(p.name for p in listed - rule_files)}"
    prometheus_rules = {(KUBERNETES_DIR / f).resolve() for f in generators["riskwatch-prometheus-rules"]}
    assert prometheus_rules == {p.resolve() for p in (PROMETHEUS_DIR / "rules").glob("*.yml")}


def test_kubernetes_sets_only_known_riskwatch_settings():
    for document in kubernetes_documents():
        if document["kind"] != "Deployment":
            continue
        for variable in k8s_env(document):
            if variable.startswith("RISKWATCH_"):
                assert variable in KNOWN_ENVIRONMENT, f"{document['metadata']['name']}: {variable}"


def _port(container_spec: dict, name_or_number) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    (port,) = [p["containerPort"] for p in container_spec["ports"] if p["name"] == name_or_number]
    return port


def test_worker_deployment_has_replicas_state_volume_rules_and_health_probes():
    deployment = kubernetes("Deployment", "riskwatch-worker")
    spec = container(deployment)
    env = k8s_env(deployment)
    assert spec["args"][:2] == ["riskwatch", "worker"]
    # More replicas than partitions would only add idle pods.
    assert 2 <= deployment["spec"]["replicas"] <= int(spec["args"][spec["args"].index("--partitions") + 1])
    web_port = int(env.get("RISKWATCH_WEB_PORT", DEFAULTS.web_port))
    assert _port(spec, spec["livenessProbe"]["httpGet"]["port"]) == web_port
    assert spec["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert _port(spec, spec["readinessProbe"]["httpGet"]["port"]) == web_port
    mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert env["RISKWATCH_STATE_DIR"] in mounts, "the state directory is not a volume"
    rules_volume = volumes[mounts[env["RISKWATCH_RULES"]]]
    assert rules_volume["configMap"]["name"] == "riskwatch-rules"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == web_port


def test_api_deployment_probes_health_and_records_actions_where_the_workers_read_them():
    deployment = kubernetes("Deployment", "riskwatch-api")
    spec = container(deployment)
    env = k8s_env(deployment)
    port = int(env.get("RISKWATCH_API_PORT", DEFAULTS.api_port))
    assert spec["args"][spec["args"].index("--port") + 1] == str(port)
    for probe in ("livenessProbe", "readinessProbe"):
        assert spec[probe]["httpGet"]["path"] == "/healthz"
        assert _port(spec, spec[probe]["httpGet"]["port"]) == port
    # Actions on the Kafka topics the workers fold; a local store would be lost with the pod.
    assert env["RISKWATCH_WORKFLOW_LOG"] == "kafka"
    worker_args = container(kubernetes("Deployment", "riskwatch-worker"))["args"]
    assert env["RISKWATCH_PARTITIONS"] == worker_args[worker_args.index("--partitions") + 1]
    assert "secretKeyRef" in env["RISKWATCH_API_TOKENS"], "API tokens must come from a Secret"


@pytest.mark.parametrize("name", ["riskwatch-worker", "riskwatch-api"])
def test_every_container_requests_cpu_and_memory(name):
    requests = container(kubernetes("Deployment", name))["resources"]["requests"]
    assert requests.get("cpu") and requests.get("memory")


@pytest.mark.parametrize("name", ["riskwatch-worker", "riskwatch-api"])
def test_services_select_their_pods_and_expose_the_probed_port(name):
    service = kubernetes("Service", name)
    deployment = kubernetes("Deployment", name)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"] for p in container(deployment)["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_kustomize_renders_the_manifests_with_the_rules():
    assert shutil.which("kubectl"), "kubectl is missing: scripts/install-services.sh installs Debian's kubernetes-client"
    result = subprocess.run(
        ["kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(KUBERNETES_DIR)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rendered = list(yaml.safe_load_all(result.stdout))
    rules = [d for d in rendered if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("riskwatch-rules-")]
    assert len(rules) == 1
    assert set(rules[0]["data"]) == {p.name for p in Path(REPO / "rules").glob("*.y*ml")}
    (worker,) = [d for d in rendered if d["kind"] == "Deployment" and d["metadata"]["name"] == "riskwatch-worker"]
    # The hashed name is substituted into the volume, so a rule change rolls the workers.
    volumes = {v["name"]: v for v in worker["spec"]["template"]["spec"]["volumes"]}
    assert volumes["rules"]["configMap"]["name"] == rules[0]["metadata"]["name"]


@pytest.mark.parametrize("service, path", [("worker", "/readyz"), ("api", "/healthz")])
def test_compose_healthchecks_ask_the_health_endpoint_on_the_configured_port(service, path):
    spec = compose()["services"][service]
    port = spec["environment"]["RISKWATCH_WEB_PORT" if service == "worker" else "RISKWATCH_API_PORT"]
    assert f"http://127.0.0.1:{port}{path}" in " ".join(spec["healthcheck"]["test"])
