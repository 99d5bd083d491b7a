"""Contamination guard: never report a score on items an artifact was trained on.

Recipes record what they trained on in their manifest entry:
`extra["trained_on"] = {"<dataset>": ["train", "dev"]}` (split names) or explicit id lists
(`{"<dataset>": {"ids": [...]}}` or a plain list of ids). An item is contaminated when any
artifact trained on it; `tandem eval` refuses such items unless told to allow and flag them.
"""

from __future__ import annotations

from pathlib import Path

from tandem.common.manifest import MANIFEST_NAME, Manifest
from tandem.eval.splits import SPLITS, SplitError, split_ids


class ContaminationError(Exception):
    """Items to be evaluated were trained on by an artifact in the manifest."""


def manifests(artifacts: Path) -> list[Manifest]:
    """The artifacts folder's manifest and every nested one (a recipe's own output folder, e.g. the
    SFT runner's or curation's, keeps a manifest of its own), outermost first."""
    found = sorted(artifacts.rglob(MANIFEST_NAME), key=lambda p: (len(p.parts), str(p)))
    return [Manifest(p.parent) for p in found]


def trained_ids(artifacts: Path | None) -> dict[str, dict[str, set[str]]]:
    """dataset -> artifact name -> ids that artifact trained on. A nested manifest's entries are
    named by their folder, e.g. `training/base:adapter`."""
    result: dict[str, dict[str, set[str]]] = {}
    if artifacts is None:
        return result
    for manifest in manifests(Path(artifacts)):
        prefix = "" if manifest.root == Path(artifacts) else f"{manifest.root.relative_to(artifacts)}:"
        for name, entry in manifest.read().artifacts.items():
            _add(result, prefix + name, entry.extra.get("trained_on") or {})
    return result


def _add(result: dict[str, dict[str, set[str]]], name: str, trained_on: dict) -> None:
    for dataset, spec in trained_on.items():
        ids: set[str] = set()
        values = spec.get("ids", []) if isinstance(spec, dict) else spec
        try:
            for value in values:
                ids |= split_ids(dataset, value) if value in SPLITS else {str(value)}
        except SplitError:
            continue  # no split file: not a dataset `tandem eval` scores (e.g. the router's template rows)
        result.setdefault(dataset, {})[name] = ids


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
