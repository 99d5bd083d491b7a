"""Contamination guard: never report a score on items an artifact was trained on.

Recipes record what they trained on in their manifest entry:
`extra["trained_on"] = {"<dataset>": ["train", "dev"]}` (split names) or explicit id lists
(`{"<dataset>": {"ids": [...]}}` or a plain list of ids). An item is contaminated when any
artifact trained on it; `tandem eval` refuses such items unless told to allow and flag them.
"""

from __future__ import annotations

from pathlib import Path

from tandem.common.manifest import Manifest
from tandem.eval.splits import SPLITS, split_ids


class ContaminationError(Exception):
    """Items to be evaluated were trained on by an artifact in the manifest."""


def trained_ids(artifacts: Path | None) -> dict[str, dict[str, set[str]]]:
    """dataset -> artifact name -> ids that artifact trained on."""
    result: dict[str, dict[str, set[str]]] = {}
    if artifacts is None:
        return result
    for name, entry in Manifest(artifacts).read().artifacts.items():
        for dataset, spec in (entry.extra.get("trained_on") or {}).items():
            ids: set[str] = set()
            values = spec.get("ids", []) if isinstance(spec, dict) else spec
            for value in values:
                ids |= split_ids(dataset, value) if value in SPLITS else {str(value)}
            result.setdefault(dataset, {})[name] = ids
    return result


def contaminated(
    dataset: str, item_ids: list[str], trained: dict[str, dict[str, set[str]]]
) -> dict[str, list[str]]:
    """item id -> names of the artifacts that trained on it, for the given items."""
    hits: dict[str, list[str]] = {}
    for artifact, ids in trained.get(dataset, {}).items():
        for item_id in item_ids:
            if item_id in ids:
                hits.setdefault(item_id, []).append(artifact)
    return hits
