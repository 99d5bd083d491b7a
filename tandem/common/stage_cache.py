"""Content-hashed stage caching, shared by the compression recipe and `tandem pipeline`.

A stage's key is the sha256 of a JSON payload holding everything its result depends on: its own
resolved config and the keys or content hashes of what it reads. When a stage finishes it writes
`stage.json` (the key and its state: output paths, figures) into its output folder; a rerun
whose key matches reuses that state instead of running the stage, so a crash or a changed late
stage costs only the stages after it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tandem.common.manifest import write_json

STAGE_FILE = "stage.json"


def stage_key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def cached_state(out: Path, key: str) -> dict[str, Any] | None:
    """The state a previous run stored in `out` under the same key, else None."""
    done = out / STAGE_FILE
    if not done.is_file():
        return None
    state = json.loads(done.read_text())
    return state if state.get("key") == key else None


def store_state(out: Path, key: str, state: dict[str, Any]) -> dict[str, Any]:
    stored = {"key": key, **state}
    write_json(out / STAGE_FILE, stored)
    return stored
