"""The artifact manifest: `artifacts/manifest.json` lists every file a build produced.

Each entry records its files (path relative to the artifacts folder, sha256, size), the sha256 of
the base model it belongs to, the config that made it and the figures measured when it was made.
Services load only what the manifest lists and refuse an entry whose base does not match.
Writes are atomic (temp file + rename) under an exclusive file lock, so concurrent recipes
cannot corrupt it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


class ManifestError(Exception):
    """The manifest or an artifact it lists is missing, corrupt or does not fit the base."""


class FileRecord(BaseModel):
    path: str
    sha256: str
    size: int


class ArtifactEntry(BaseModel):
    kind: str = Field(description="base | modifier | router | escalation | compression | report | ...")
    files: list[FileRecord]
    base_sha256: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    servable: bool = True
    # modifiers only: the scale llama.cpp applies the LoRA at (1.0: as trained; below 1: part-way back
    # to the base). Left out of the JSON at 1.0, so manifests written before the field read the same.
    lora_scale: float = Field(1.0, gt=0.0, le=4.0, exclude_if=lambda v: v == 1.0)
    # modifiers only: the router's tool-fit guard (services/router/tool_guard.py) answers with the base
    # when a call's function sits under this cosine from the request. Left out of the JSON when unset.
    tool_fit_min_similarity: float | None = Field(None, ge=-1.0, le=1.0, exclude_if=lambda v: v is None)
    # modifiers only: ... and when a call takes less than this share of its argument values from the request.
    tool_args_min_grounding: float | None = Field(None, ge=0.0, le=1.0, exclude_if=lambda v: v is None)
    created: float = Field(default_factory=time.time)
    extra: dict[str, Any] = Field(default_factory=dict)


class ManifestData(BaseModel):
    schema_version: int = SCHEMA_VERSION
    artifacts: dict[str, ArtifactEntry] = Field(default_factory=dict)


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


class Manifest:
    """Read and update `<root>/manifest.json`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.path = self.root / MANIFEST_NAME

    def read(self) -> ManifestData:
        if not self.path.exists():
            return ManifestData()
        try:
            return ManifestData.model_validate_json(self.path.read_text())
        except ValueError as exc:
            raise ManifestError(f"{self.path} is not a valid Tandem manifest: {exc}") from exc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".manifest.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def record(self, name: str, kind: str, files: list[str | Path], *, base_sha256: str | None = None,
               config: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
               servable: bool = True, extra: dict[str, Any] | None = None,
               lora_scale: float = 1.0, tool_fit_min_similarity: float | None = None,
               tool_args_min_grounding: float | None = None) -> ArtifactEntry:
        """Hash `files` and add or replace entry `name`. A relative path is taken relative to the
        root, or else to the working directory (`artifacts/x` with root `artifacts`)."""
        records = []
        for f in files:
            p = Path(f)
            absolute = p if p.is_absolute() else self.root / p
            if not p.is_absolute() and not absolute.is_file() and p.is_file():
                absolute = p.resolve()
            if not absolute.is_file():
                raise ManifestError(f"cannot record {name}: {absolute} does not exist")
            records.append(FileRecord(path=str(absolute.resolve().relative_to(self.root.resolve())),
                                      sha256=sha256_file(absolute), size=absolute.stat().st_size))
        entry = ArtifactEntry(kind=kind, files=records, base_sha256=base_sha256, config=config or {},
                              metrics=metrics or {}, servable=servable, extra=extra or {}, lora_scale=lora_scale,
                              tool_fit_min_similarity=tool_fit_min_similarity,
                              tool_args_min_grounding=tool_args_min_grounding)
        with self._locked():
            data = self.read()
            data.artifacts[name] = entry
            tmp = self.path.with_suffix(".json.tmp")
            tmp.write_text(data.model_dump_json(indent=2))
            os.replace(tmp, self.path)
        return entry

    def put(self, name: str, entry: ArtifactEntry | None) -> None:
        """Set entry `name` to `entry` as it is (files not re-hashed), or remove it with None: how a
        rollback restores the entry a promotion replaced."""
        with self._locked():
            data = self.read()
            if entry is None:
                data.artifacts.pop(name, None)
            else:
                data.artifacts[name] = entry
            tmp = self.path.with_suffix(".json.tmp")
            tmp.write_text(data.model_dump_json(indent=2))
            os.replace(tmp, self.path)

    def entry(self, name: str) -> ArtifactEntry:
        data = self.read()
        if name not in data.artifacts:
            raise ManifestError(f"{self.path} lists no artifact named '{name}'")
        return data.artifacts[name]

    def entries(self, kind: str | None = None) -> dict[str, ArtifactEntry]:
        return {n: e for n, e in self.read().artifacts.items() if kind is None or e.kind == kind}

    def verified_path(self, name: str, index: int = 0) -> Path:
        """The path of an entry's file after checking its size and sha256."""
        return self.verified_file(name, self.entry(name).files[index])

    def verified_file(self, name: str, record: FileRecord) -> Path:
        """The path of `record` (a file of entry `name`, as the caller read it) after checking its size and
        sha256: several files checked against one reading of the entry, not one reading each."""
        path = self.root / record.path
        if not path.is_file():
            raise ManifestError(f"artifact '{name}': {path} is listed in the manifest but missing")
        if path.stat().st_size != record.size or sha256_file(path) != record.sha256:
            raise ManifestError(f"artifact '{name}': {path} does not match its sha256 in the manifest (corrupt?)")
        return path

    def check_base(self, name: str, base_sha256: str) -> None:
        entry = self.entry(name)
        if entry.base_sha256 and entry.base_sha256 != base_sha256:
            raise ManifestError(
                f"artifact '{name}' was built for base {entry.base_sha256[:12]}, but the served base is "
                f"{base_sha256[:12]}: rebuild it for this base or serve the base it was made for")


def write_json(path: str | Path, payload: Any) -> Path:
    """Write JSON atomically; used for the reports and resolved configs beside artifacts."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)
    return path
