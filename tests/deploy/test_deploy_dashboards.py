"""Every Grafana query names only metrics that the services really export."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tandem.services.fallback.app import create_app as create_fallback
from tandem.services.fallback.settings import FallbackSettings
from tandem.services.router.app import create_app as create_router
from tandem.services.router.settings import RouterSettings
from tandem.services.worker.app import create_app as create_worker

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
METRIC = re.compile(r"\b(tandem_[a-z0-9_]+)\b")


def exported_names() -> set[str]:
    """Sample names (with _total/_bucket/... suffixes) from the registries the app factories build."""
    names: set[str] = set()
    apps = (create_router(RouterSettings()), create_worker(),
            create_fallback(FallbackSettings(upstream_base_url="http://127.0.0.1:9/v1")))
    for app in apps:
        for metric in app.state.metrics.registry.collect():
            names.add(metric.name)
            names.update(f"{metric.name}{suffix}" for suffix in ("_total", "_bucket", "_count", "_sum"))
    return names


def test_every_dashboard_query_uses_exported_metrics():
    exported = exported_names()
    assert "tandem_requests_total" in exported
    dashboards = list(DASHBOARDS.glob("*.json"))
    assert dashboards
    for path in dashboards:
        panels = json.loads(path.read_text())["panels"]
        assert panels
        for panel in panels:
            for target in panel["targets"]:
                used = set(METRIC.findall(target["expr"]))
                assert used, f"{path.name}: panel '{panel['title']}' queries no tandem metric"
                missing = used - exported
                assert not missing, f"{path.name}: panel '{panel['title']}' uses unexported {missing}"
