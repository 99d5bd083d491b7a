"""What an artifact was trained on, carried from its data files to the artifact.

A manifest entry's `extra["trained_on"]` maps a dataset (a split-file name such as `gsm8k`) to the
split names and/or item ids the artifact saw (see tandem/eval/contamination.py). Data files made by
a recipe (curation's curated.jsonl, distill's sft.jsonl) carry their own record in the manifest
beside them; a recipe that trains on such files records the union, so the contamination guard
sees through every step of the chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tandem.common.manifest import MANIFEST_NAME, Manifest


def flatten(spec: Any) -> list[str]:
    """A `trained_on` value (split names or ids, or `{"ids": [...]}`) as one list of strings."""
    values = spec.get("ids", []) if isinstance(spec, dict) else spec
    return [str(v) for v in values]


def merge_trained_on(*records: dict[str, Any]) -> dict[str, list[str]]:
    """The union of several `trained_on` records: dataset -> sorted split names and ids."""
    merged: dict[str, set[str]] = {}
    for record in records:
        for dataset, spec in (record or {}).items():
            merged.setdefault(dataset, set()).update(flatten(spec))
    return {dataset: sorted(values) for dataset, values in sorted(merged.items())}


def file_trained_on(path: str | Path) -> dict[str, list[str]]:
    """The `trained_on` of the manifest entry (in the manifest beside `path`) that lists `path`;
    empty when no manifest lists it (a user's own file: nothing known)."""
    path = Path(path).resolve()
    manifest = path.parent / MANIFEST_NAME
    if not manifest.is_file():
        return {}
    root = manifest.parent
    records = [entry.extra.get("trained_on") or {} for entry in Manifest(root).read().artifacts.values()
               if any((root / f.path).resolve() == path for f in entry.files)]
    return merge_trained_on(*records)


def data_trained_on(paths: list[str | Path | None]) -> dict[str, list[str]]:
    """The union over data files (None entries are skipped)."""
    return merge_trained_on(*(file_trained_on(p) for p in paths if p is not None))
