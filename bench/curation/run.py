"""Curation at scale: `python -m bench.curation.run [--records 640000]`.

Builds the corpus (bench/curation/corpus.py) once, runs the whole `tandem data curate` recipe on
it in a fresh process, and reports wall time, peak memory (RSS summed over the process and its
workers, sampled every 0.1 s) and dedup precision/recall against the planted copies. With
datatrove installed, runs the same near-dedup on datatrove's executors and scores it the same way.
Results: printed table + JSON (`--results`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import resource
import shutil
import time
from pathlib import Path

import psutil

from bench.curation.corpus import SHARDS, CorpusBuilder

THRESHOLD = 0.8


def _sample_tree(proc: psutil.Process, cpu_by_pid: dict[int, float]) -> int:
    """RSS summed over the process tree now; records each process's CPU seconds so far."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
            times = p.cpu_times()
            cpu_by_pid[p.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def measured(target, *args) -> dict:
    """Run target(*args) in a fresh interpreter: wall seconds, CPU seconds and peak RSS of its process tree.

    CPU seconds (user + system of the process and every worker) say what the work costs when the
    machine is shared; wall time alone mostly measures the other tenants' load. Reaped children are
    counted by getrusage; workers of a forkserver (datatrove's executor) are not reaped by us, so
    their CPU is sampled per process every 0.1 s as well, and the larger figure is reported."""
    ctx = multiprocessing.get_context("spawn")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = ctx.Process(target=target, args=args)
    child.start()
    peak, proc, loads, cpu_by_pid = 0, psutil.Process(child.pid), [], {}
    while child.is_alive():
        try:
            peak = max(peak, _sample_tree(proc, cpu_by_pid))
        except psutil.NoSuchProcess:
            break
        loads.append(os.getloadavg()[0])
        time.sleep(0.1)
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"{target.__name__} failed with exit code {child.exitcode}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = max(
        (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), sum(cpu_by_pid.values())
    )
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_mb": round(peak / 2**20, 1),
        "load_avg_1m_mean": round(sum(loads) / len(loads), 2) if loads else None,
    }


def _curate(corpus: str, out: str, workers: int) -> None:
    from tandem.training.curation.config import CurationConfig, InputSpec
    from tandem.training.curation.pipeline import curate

    curate(
        CurationConfig(
            inputs=[InputSpec(path=Path(corpus) / s) for s in SHARDS],
            out_dir=Path(out),
            workers=workers,
            progress=False,
        )
    )


def _datatrove(texts: str, work: str, workers: int) -> None:
    from bench.curation.datatrove_dedup import run_datatrove_dedup

    removed = run_datatrove_dedup(Path(texts), Path(work), workers)
    (Path(work) / "removed_ids.json").write_text(json.dumps(sorted(removed)))


def datatrove_input(corpus: Path, folder: Path, records: int, parts: int = 4) -> set[str]:
    """The corpus's first `records` texts (originals always precede their copies), in `parts` files."""
    folder.mkdir(parents=True)
    lines = []
    for path in sorted((corpus / "texts").glob("*.jsonl")):
        with open(path) as fh:
            lines.extend(itertools.islice(fh, records - len(lines)))
    size = -(-len(lines) // parts)
    for part in range(parts):
        (folder / f"{part:02d}.jsonl").write_text("".join(lines[part * size : (part + 1) * size]))
    return {json.loads(line)["id"] for line in lines}


def score(removed: set[str], present: set[str], copies: list[dict]) -> dict:
    """Precision/recall of removed ids vs planted copies with Jaccard >= THRESHOLD (exact copies too)."""
    truth = {c["id"] for c in copies if c["jaccard"] >= THRESHOLD and c["id"] in present}
    misses = {c["id"] for c in copies if c["kind"] == "miss"}
    hits = len(removed & truth)
    return {
        "removed": len(removed),
        "planted_duplicates": len(truth),
        "true_positives": hits,
        "precision": round(hits / len(removed), 4) if removed else None,
        "recall": round(hits / len(truth), 4) if truth else None,
        "near_misses_removed": len(removed & misses),
    }


def _read_ids(path: Path, key: str = "id") -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=640_000)
    parser.add_argument(
        "--work", default="/tmp/tandem-curation-bench", help="Corpus and outputs (GBs at 640K)."
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--engines",
        default="tandem,datatrove",
        help="Which runs; results of a partial rerun are merged into an existing --results file.",
    )
    parser.add_argument(
        "--datatrove-records",
        type=int,
        default=10_000,
        help="Datatrove's signature step costs ~1000x tandem's per record here (spaCy "
        "tokens, sha1 per shingle in Python), so it runs on the corpus's first N records.",
    )
    parser.add_argument("--results", default="bench/curation/results.json")
    args = parser.parse_args()

    work = Path(args.work)
    corpus = work / f"corpus-{args.records}-{args.seed}"
    if not (corpus / "truth.json").is_file():
        from bench.curation.pools import build_pools

        started = time.perf_counter()
        CorpusBuilder(build_pools(), args.records, args.seed).write(corpus)
        print(f"built corpus in {time.perf_counter() - started:.0f} s: {corpus}")
    truth = json.loads((corpus / "truth.json").read_text())
    load = os.getloadavg()
    engines = set(args.engines.split(","))
    previous = Path(args.results)
    results = json.loads(previous.read_text()) if previous.is_file() else {}
    if results.get("records") != args.records:
        results = {}
    results.update(
        {
            "records": args.records,
            "workers": args.workers,
            "cpus": os.cpu_count(),
            "planted": truth["planted"],
        }
    )
    if "tandem" in engines:
        results["load_avg_before_tandem"] = [round(x, 2) for x in load]
        results["tandem"] = run_tandem(corpus, work, args.workers, truth)
        results["load_avg_after_tandem"] = [round(x, 2) for x in os.getloadavg()]
    if "datatrove" in engines:
        results["datatrove"] = run_datatrove(corpus, work, args.workers, args.datatrove_records, truth)

    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


def run_tandem(corpus: Path, work: Path, workers: int, truth: dict) -> dict:
    out = work / "tandem-out"
    shutil.rmtree(out, ignore_errors=True)
    run = measured(_curate, str(corpus), str(out), workers)
    stats = json.loads((out / "stats.json").read_text())
    dups = _read_ids(out / "duplicates.jsonl")
    present = {r["id"] for r in dups} | {r["id"] for r in _read_ids(out / "curated.jsonl")}
    return {
        **run,
        "records_kept": stats["records_kept"],
        "drop_reasons": stats["drop_reasons"],
        "near_duplicate_rate": stats["near_duplicate_rate"],
        "english_share": stats["english_share"],
        **score({r["id"] for r in dups}, present, truth["copies"]),
    }


def run_datatrove(corpus: Path, work: Path, workers: int, records: int, truth: dict) -> dict:
    dt_work = work / "datatrove-out"
    shutil.rmtree(dt_work, ignore_errors=True)
    subset = datatrove_input(corpus, dt_work / "input", records)
    run = measured(_datatrove, str(dt_work / "input"), str(dt_work / "run"), workers)
    removed = set(json.loads((dt_work / "run" / "removed_ids.json").read_text()))
    return {
        **run,
        "records": len(subset),
        "scope": "near-dedup only (no parsing, language ID or filters)",
        **score(removed, subset, truth["copies"]),
    }


def table(results: dict) -> str:
    rows = [
        (
            "engine",
            "records",
            "wall s",
            "CPU s",
            "peak RSS MB",
            "removed",
            "precision",
            "recall",
            "near-misses removed",
        )
    ]
    for name in ("tandem", "datatrove"):
        if name in results:
            r = results[name]
            rows.append(
                (
                    name,
                    r.get("records", results["records"]),
                    r["wall_s"],
                    r["cpu_s"],
                    r["peak_rss_mb"],
                    r["removed"],
                    r["precision"],
                    r["recall"],
                    r["near_misses_removed"],
                )
            )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    loads = ", ".join(
        f"{n} {results[n]['load_avg_1m_mean']}" for n in ("tandem", "datatrove") if n in results
    )
    header = (
        f"{results['records']:,}-record corpus, {results['workers']} workers, {results['cpus']} CPUs; "
        f"mean 1-minute load average during each run: {loads}"
    )
    return header + "\n" + "\n".join(lines)


if __name__ == "__main__":
    main()
