"""Read a service's /metrics the way Prometheus does (its own text parser), for assertions."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def sample(url: str, name: str, **labels: str) -> float | None:
    """The value of sample `name` whose labels include `labels`, or None when there is none;
    several matches are summed."""
    found = None
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                found = (found or 0.0) + s.value
    return found


def label_values(url: str, name: str, label: str) -> set[str]:
    values = set()
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for s in family.samples:
            if s.name == name and label in s.labels:
                values.add(s.labels[label])
    return values
