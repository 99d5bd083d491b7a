"""docker-compose.yml and k8s/ offline: Kubernetes manifests validate against the 1.30 and current
API schemas; every service's settings (compose env files, k8s ConfigMaps) are accepted by its
Settings class; only the router and Grafana publish ports; no secret sits on a command line;
Prometheus scrapes every service; Grafana's datasource and dashboards are provisioned by separate
files. The stack itself runs in test_compose_stack.py (`make compose-test`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tandem.services.fallback.settings import FallbackSettings
from tandem.services.router.settings import RouterSettings
from tandem.services.worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SETTINGS = {"tandem.services.router": RouterSettings, "tandem.services.base_model": WorkerSettings,
            "tandem.services.modifier_worker": WorkerSettings, "tandem.services.fallback": FallbackSettings}
PORTS = {"tandem.services.router": 8000, "tandem.services.base_model": 8101,
         "tandem.services.modifier_worker": 8102, "tandem.services.fallback": 8103}
SECRET_WORDS = ("KEY", "TOKEN", "PASSWORD", "SECRET")


def _k8s_documents() -> list[dict]:
    docs = []
    for path in sorted((ROOT / "k8s").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def _env_file(path: Path) -> dict[str, str]:
    """Compose's env-file format: KEY=VALUE per line, values literal, # comments."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


def _validate(module: str, env: dict[str, str], monkeypatch) -> None:
    with monkeypatch.context() as m:
        for key, value in env.items():
            m.setenv(key, value)
        SETTINGS[module]()


def _tandem_services() -> dict[str, dict]:
    return {name: s for name, s in COMPOSE["services"].items() if "-m" in (s.get("command") or [])}


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
@pytest.mark.parametrize("doc", _k8s_documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_k8s_manifest_is_valid(doc, version):
    kubernetes_validate.validate(doc, version, strict=True)


def test_compose_services_run_real_modules_with_settings_from_env_files(monkeypatch):
    services = _tandem_services()
    assert set(services) == {"router", "base_model", "modifier_worker", "fallback"}
    for name, service in services.items():
        command = service["command"]
        module = command[command.index("-m") + 1]
        assert importlib.util.find_spec(module) is not None, module
        assert int(command[command.index("--port") + 1]) == PORTS[module]
        assert "--settings" not in command, f"{name}: settings come from env files"
        env = {}
        for path in service["env_file"]:
            env.update(_env_file(ROOT / path))
        _validate(module, env, monkeypatch)


def test_only_the_router_and_grafana_publish_ports_and_workers_are_internal():
    published = {name for name, s in COMPOSE["services"].items() if s.get("ports")}
    assert published == {"router", "grafana"}
    assert COMPOSE["networks"]["internal"]["internal"] is True
    for name in ("base_model", "modifier_worker", "redis"):
        assert COMPOSE["services"][name]["networks"] == ["internal"], name
    assert "edge" not in COMPOSE["services"]["fallback"]["networks"]


def test_no_secret_on_a_command_line_or_in_an_env_file():
    for name, service in COMPOSE["services"].items():
        words = " ".join(service.get("command") or []).upper()
        assert not any(w in words for w in SECRET_WORDS), name
    for path in (ROOT / "deploy" / "compose").glob("*.env"):
        for key, value in _env_file(path).items():
            if any(w in key for w in SECRET_WORDS) and not key.endswith("_FILE"):
                assert value in ("", "[]"), f"{path.name}: {key} holds a secret; use a secret file"


def test_every_service_waits_for_healthy_dependencies_and_restarts():
    for name, service in COMPOSE["services"].items():
        assert service.get("restart") == "unless-stopped", name
        assert "healthcheck" in service or name == "grafana", name
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)


def test_prometheus_scrapes_every_tandem_service():
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "compose.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    expected = set()
    for name, service in _tandem_services().items():
        command = service["command"]
        expected.add(f"{name}:{command[command.index('--port') + 1]}")
    assert targets == expected


def test_grafana_datasource_and_dashboards_are_provisioned_by_separate_files():
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in COMPOSE["services"]["grafana"]["volumes"])
    sources = {target: source for source, target in mounts.items()}
    datasources = yaml.safe_load((ROOT / sources["/etc/grafana/provisioning/datasources/tandem.yaml"]).read_text())
    providers = yaml.safe_load((ROOT / sources["/etc/grafana/provisioning/dashboards/tandem.yaml"]).read_text())
    assert set(datasources) == {"apiVersion", "datasources"} and set(providers) == {"apiVersion", "providers"}
    assert providers["providers"][0]["options"]["path"] in sources.values() or \
        providers["providers"][0]["options"]["path"] in mounts.values()


def test_dockerfile_takes_its_base_image_as_a_build_argument():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert "ARG BASE_IMAGE=python:3.11-slim" in lines and "FROM ${BASE_IMAGE}" in lines


def test_k8s_configmaps_hold_settings_the_services_accept(monkeypatch):
    docs = _k8s_documents()
    config_maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    checked = 0
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            command = container.get("command") or []
            if "-m" not in command:
                continue
            module = command[command.index("-m") + 1]
            env = {}
            for source in container.get("envFrom", []):
                env.update(config_maps[source["configMapRef"]["name"]])
            _validate(module, env, monkeypatch)
            checked += 1
    assert checked == 4
