"""Run a DAG of stages with content-hashed caching and one manifest for the artifacts folder.

A stage's key (tandem/common/stage_cache.py, the mechanism the compression recipe uses) hashes
its resolved settings, the sha256 of every external file it reads, and the sha256 of every output
of the stages it depends on. So a rerun skips a stage whose key still matches and whose outputs
are still on disk unchanged; a changed config reruns that stage, and its dependants rerun only if
its outputs changed. Each stage is recorded in `<artifacts>/manifest.json` as `pipeline.<stage>`:
its outputs with sha256, its inputs (files and upstream outputs, with sha256), its settings,
figures, wall time, and `trained_on` (its own, plus everything upstream: a model derived from
data that saw an eval item has seen it too).
"""

from __future__ import annotations

import graphlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem.common.manifest import Manifest, ManifestError, sha256_file
from tandem.common.provenance import file_trained_on, merge_trained_on
from tandem.common.stage_cache import STAGE_FILE, cached_state, stage_key, store_state

log = logging.getLogger("tandem.pipeline")
ENTRY_PREFIX = "pipeline."
SKIPPED = {STAGE_FILE, ".manifest.lock"}  # bookkeeping in a listed folder, not outputs


class PipelineError(Exception):
    """A stage failed or the DAG is malformed; the message names the stage."""


@dataclass
class StageResult:
    outputs: list[Path]
    figures: dict[str, Any] = field(default_factory=dict)
    trained_on: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageContext:
    out: Path
    artifacts: Path
    upstream: dict[str, dict[str, Any]]


@dataclass
class Stage:
    name: str
    deps: tuple[str, ...]
    settings: dict[str, Any]
    run: Callable[[StageContext], StageResult]
    inputs: list[Path] = field(default_factory=list)


@dataclass
class StageRun:
    name: str
    status: str  # "ran" | "cached"
    seconds: float
    state: dict[str, Any]


def stage_dir(artifacts: Path, name: str) -> Path:
    return artifacts / "stages" / name


def order(stages: list[Stage]) -> list[Stage]:
    by_name = {s.name: s for s in stages}
    missing = sorted({d for s in stages for d in s.deps if d not in by_name})
    if missing:
        raise PipelineError(f"stages depend on stages that are not in the pipeline: {', '.join(missing)}")
    try:
        names = list(graphlib.TopologicalSorter({s.name: s.deps for s in stages}).static_order())
    except graphlib.CycleError as exc:
        raise PipelineError(f"stage dependencies form a cycle: {exc.args[1]}") from exc
    return [by_name[n] for n in names]


def _files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.is_file() and q.name not in SKIPPED)
        elif p.is_file():
            files.append(p)
        else:
            raise PipelineError(f"declared output {p} does not exist")
    return files


def _digests(paths: list[Path], root: Path) -> dict[str, str]:
    return {str(p.resolve().relative_to(root.resolve())): sha256_file(p) for p in _files(paths)}


def _intact(state: dict[str, Any], root: Path) -> bool:
    """Every output the state lists is still on disk with its sha256."""
    for rel, digest in state["outputs"].items():
        path = root / rel
        if not path.is_file() or sha256_file(path) != digest:
            return False
    return True


def listed_trained_on(artifacts: Path, files: list[Path]) -> dict[str, list[str]]:
    """The `trained_on` of the entries of the artifacts folder's manifest that list any of `files`: the
    router and the modifiers record theirs there, not beside their files (in `router/`, `modifiers/`)."""
    wanted = {p.resolve() for p in files}
    try:
        entries = Manifest(artifacts).entries()
    except ManifestError:
        return {}
    return merge_trained_on(*(e.extra.get("trained_on") or {} for name, e in entries.items()
                              if not name.startswith(ENTRY_PREFIX)
                              and any((artifacts / f.path).resolve() in wanted for f in e.files)))


def run_stage(stage: Stage, artifacts: Path, states: dict[str, dict[str, Any]]) -> StageRun:
    out = stage_dir(artifacts, stage.name)
    inputs = {str(p): sha256_file(p) for p in stage.inputs}
    upstream = {d: states[d]["outputs"] for d in stage.deps}
    key = stage_key({"stage": stage.name, "settings": stage.settings, "inputs": inputs, "upstream": upstream})
    state = cached_state(out, key)
    if state is not None and _intact(state, artifacts):
        log.info("stage %s: up to date (key %s), skipped", stage.name, key[:12])
        return StageRun(stage.name, "cached", 0.0, state)
    log.info("stage %s: running", stage.name)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        result = stage.run(StageContext(out, artifacts, {d: states[d] for d in stage.deps}))
    except PipelineError:
        raise
    except Exception as exc:
        raise PipelineError(f"stage {stage.name} failed: {type(exc).__name__}: {exc}") from exc
    seconds = time.monotonic() - started
    outputs = _digests(result.outputs, artifacts)
    files = _files(result.outputs)
    own = merge_trained_on(result.trained_on, *(file_trained_on(p) for p in files),
                           listed_trained_on(artifacts, files))
    trained_on = merge_trained_on(own, *(states[d]["trained_on"] for d in stage.deps))
    state = store_state(out, key, {"outputs": outputs, "inputs": inputs, "upstream": upstream,
                                   "figures": result.figures, "trained_on": trained_on, "seconds": seconds})
    log.info("stage %s: done in %.1f s", stage.name, seconds)
    return StageRun(stage.name, "ran", seconds, state)


def record(stage: Stage, run: StageRun, artifacts: Path) -> None:
    """The stage's manifest entry, rewritten only when its key changed (or it is missing)."""
    manifest = Manifest(artifacts)
    name = ENTRY_PREFIX + stage.name
    try:
        if manifest.entry(name).extra.get("key") == run.state["key"]:
            return
    except ManifestError:
        pass
    state = run.state
    manifest.record(name, "stage", [artifacts / rel for rel in state["outputs"]], config=stage.settings,
                    metrics=state["figures"], servable=False,
                    extra={"key": state["key"], "depends_on": list(stage.deps), "inputs": state["inputs"],
                           "upstream_outputs": state["upstream"], "trained_on": state["trained_on"],
                           "seconds": state["seconds"]})


def run_pipeline(stages: list[Stage], artifacts: Path) -> list[StageRun]:
    """Run every stage in dependency order; stops at the first failure (PipelineError)."""
    artifacts.mkdir(parents=True, exist_ok=True)
    states: dict[str, dict[str, Any]] = {}
    runs = []
    for stage in order(stages):
        run = run_stage(stage, artifacts, states)
        record(stage, run, artifacts)
        states[stage.name] = run.state
        runs.append(run)
    return runs
