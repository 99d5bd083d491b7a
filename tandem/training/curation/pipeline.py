"""The curation run: read every input in order, prepare records in worker processes, remove
duplicates in the main process (the only stateful step), and write the outputs.

Outputs in `out_dir`: `curated.jsonl` (one chat record a line: id, source, lang, domain, messages),
`duplicates.jsonl` (each removed duplicate and the kept record it repeats), `stats.json`,
`report.md`, and a manifest entry `curated-data` listing them with the resolved config.
"""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import resource
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from tandem.common.manifest import Manifest, write_json
from tandem.common.recipe_config import ConfigError, dump_config
from tandem.training.curation.config import CurationConfig, InputSpec
from tandem.training.curation.dedup import ExactDeduplicator, NearDuplicateIndex
from tandem.training.curation.formats import RecordFormat, detect_format, get_format
from tandem.training.curation.prepare import (
    Dropped,
    Prepared,
    Preparer,
    WorkItem,
    init_worker,
    prepare_in_worker,
)
from tandem.training.curation.readers import BadRecord, RawRecord, container_of, iter_records, parse_raw
from tandem.training.curation.stats import CurationStats, FileStats, markdown_report

log = logging.getLogger(__name__)
DETECT_WITHIN = 100  # records read to find a file's format before giving up on it


def _detect(records: Iterator[RawRecord]) -> tuple[RecordFormat | None, list[RawRecord]]:
    """The format of the first recognisable record, and the records read to find it (to replay)."""
    head = []
    for raw in itertools.islice(records, DETECT_WITHIN):
        head.append(raw)
        parsed = parse_raw(raw)
        if not isinstance(parsed, BadRecord) and (fmt := detect_format(parsed)):
            return fmt, head
    return None, head


def _work_items(config: CurationConfig, stats: CurationStats) -> Iterator[WorkItem | Dropped]:
    ordinals: dict[str, itertools.count] = {}
    for spec in config.inputs:
        source = spec.source_name()
        counter = ordinals.setdefault(source, itertools.count())
        records = iter_records(spec.path)
        fmt, head = (get_format(spec.format), []) if spec.format else _detect(records)
        file_stats = FileStats(str(spec.path), source, fmt.name if fmt else None, container_of(spec.path))
        stats.files.append(file_stats)
        if fmt is None:
            log.warning(
                "%s: no record matches a known format (use --format); its records are skipped", spec.path
            )
        for raw in itertools.islice(itertools.chain(head, records), spec.limit):
            file_stats.records += 1
            stats.read[source] += 1
            if isinstance(raw, BadRecord):
                yield Dropped(source, f"bad_record:{raw.reason}")
            elif fmt is None:
                yield Dropped(source, "bad_record:unknown_format")
            else:
                yield WorkItem(source, fmt.name, f"{source}:{next(counter)}", raw)


def _batches(items: Iterator[WorkItem | Dropped], size: int) -> Iterator[list[WorkItem | Dropped]]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def _prepared(config: CurationConfig, stats: CurationStats) -> Iterator[list[Prepared | Dropped]]:
    """Prepared batches in input order; at most 2 batches per worker in flight, so memory stays bounded."""
    batches = _batches(_work_items(config, stats), config.batch_size)

    def split(batch: list[WorkItem | Dropped]) -> tuple[list[WorkItem], list[Dropped]]:
        return [b for b in batch if isinstance(b, WorkItem)], [b for b in batch if isinstance(b, Dropped)]

    if config.workers == 1:
        preparer = Preparer(config)
        for batch in batches:
            work, dropped = split(batch)
            yield [*dropped, *preparer.prepare(work)]
        return
    spawn = multiprocessing.get_context("spawn")  # no fork of a process that holds threads and open files
    with ProcessPoolExecutor(
        config.workers, mp_context=spawn, initializer=init_worker, initargs=(config,)
    ) as pool:
        inflight: deque[tuple[list[Dropped], Future]] = deque()
        for batch in batches:
            work, dropped = split(batch)
            inflight.append((dropped, pool.submit(prepare_in_worker, work)))
            if len(inflight) >= 2 * config.workers:
                dropped, future = inflight.popleft()
                yield [*dropped, *future.result()]
        while inflight:
            dropped, future = inflight.popleft()
            yield [*dropped, *future.result()]


def curate(config: CurationConfig) -> dict:
    """Run the recipe; returns the stats written to `stats.json`."""
    if not config.inputs:
        raise ConfigError("no inputs: pass data files or list them under `inputs:` in the recipe")
    for spec in config.inputs:
        if not spec.path.is_file():
            raise FileNotFoundError(f"input {spec.path} does not exist")
        if spec.format:
            get_format(spec.format)  # fail before any work on an unknown --format
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stats = CurationStats()
    exact = ExactDeduplicator() if config.exact_dedup else None
    near = NearDuplicateIndex(config.near_dedup) if config.near_dedup.enabled else None
    kept_ids: list[str] = []
    near_owner: list[int] = []  # near-index key -> position in kept_ids
    started = time.perf_counter()
    with (
        open(out / "curated.jsonl", "w") as curated,
        open(out / "duplicates.jsonl", "w") as duplicates,
        tqdm(desc="curate", unit="rec", disable=None if config.progress else True) as bar,
    ):
        for batch in _prepared(config, stats):
            bar.update(len(batch))
            for item in batch:
                if isinstance(item, Dropped):
                    stats.drop(item.source, item.reason)
                    if item.lang:
                        stats.languages_seen[item.lang] += 1
                    continue
                record = item.record
                stats.languages_seen[record["lang"]] += 1
                owner = exact.owner_of(item.digest) if exact is not None else None
                if owner is not None:
                    stats.drop(item.source, "exact_duplicate")
                    duplicates.write(_duplicate_line(record["id"], "exact", kept_ids[owner], 1.0))
                    continue
                if near is not None and item.minhash is not None:
                    stats.near_dedup_input += 1
                    match = near.add(item.minhash)
                    if match is not None:
                        stats.drop(item.source, "near_duplicate")
                        kept_id = kept_ids[near_owner[match[0]]]
                        duplicates.write(_duplicate_line(record["id"], "near", kept_id, match[1]))
                        continue
                    near_owner.append(len(kept_ids))
                if exact is not None:
                    exact.add(item.digest, len(kept_ids))
                kept_ids.append(record["id"])
                stats.kept[item.source] += 1
                stats.languages_kept[record["lang"]] += 1
                stats.domains[record["domain"]] += 1
                curated.write(json.dumps(record, ensure_ascii=False) + "\n")
    stats.seconds = time.perf_counter() - started
    stats.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stats.peak_worker_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return _write_outputs(config, stats, out)


def _duplicate_line(record_id: str, kind: str, kept_id: str, similarity: float) -> str:
    return (
        json.dumps(
            {"id": record_id, "kind": kind, "duplicate_of": kept_id, "similarity": round(similarity, 4)}
        )
        + "\n"
    )


def _write_outputs(config: CurationConfig, stats: CurationStats, out: Path) -> dict:
    summary = stats.to_dict()
    write_json(out / "stats.json", summary)
    (out / "report.md").write_text(markdown_report(summary))
    metrics = {
        k: summary[k]
        for k in (
            "records_read",
            "records_kept",
            "exact_duplicates_removed",
            "near_duplicates_removed",
            "near_duplicate_rate",
            "english_share",
            "bad_records",
            "seconds",
        )
    }
    Manifest(out).record(
        "curated-data",
        "dataset",
        ["curated.jsonl", "duplicates.jsonl", "stats.json", "report.md"],
        config=dump_config(config),
        metrics=metrics,
        servable=False,
    )
    return summary


def inputs_from_args(paths: list[str], fmt: str | None) -> list[InputSpec]:
    """CLI inputs: `PATH` or `PATH::FORMAT` (per-file override); `fmt` applies to the rest."""
    specs = []
    for arg in paths:
        path, _, own = arg.partition("::")
        specs.append(InputSpec(path=Path(path), format=own or fmt))
    return specs
