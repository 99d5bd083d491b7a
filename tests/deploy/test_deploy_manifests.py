"""Kubernetes manifests validate against the API schema, and every service command in them and in
docker-compose.yml starts a real module with settings its Settings class accepts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tandem.services.router.settings import RouterSettings
from tandem.services.worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"tandem.services.router": RouterSettings, "tandem.services.base_model": WorkerSettings,
            "tandem.services.modifier_worker": WorkerSettings}


def _k8s_documents() -> list[dict]:
    docs = []
    for path in sorted((ROOT / "k8s").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def _commands() -> list[list[str]]:
    commands = []
    for doc in _k8s_documents():
        for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            if container.get("command"):
                commands.append(container["command"])
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands.extend(s["command"] for s in compose["services"].values() if isinstance(s.get("command"), list)
                    and "python" in s["command"][0])
    return commands


@pytest.mark.parametrize("doc", _k8s_documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_k8s_manifest_is_valid(doc):
    kubernetes_validate.validate(doc, "1.37.0", strict=True)


def test_service_commands_name_real_modules_with_valid_settings():
    commands = _commands()
    assert len(commands) >= 6
    for command in commands:
        module = command[command.index("-m") + 1]
        assert importlib.util.find_spec(module) is not None, module
        settings = json.loads(command[command.index("--settings") + 1])
        SETTINGS[module].model_validate(settings)
