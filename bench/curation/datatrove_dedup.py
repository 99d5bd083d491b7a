"""The same near-dedup on datatrove's executors: MinHash signatures, LSH buckets, clustering and
filtering as four stages of `LocalPipelineExecutor`. Swapping in its Slurm or Ray executor runs the
identical pipeline across machines; nothing here is specific to one host.

Settings match tandem's: word 3-grams, 16 bands x 8 rows (128 hashes). Datatrove removes every
band collision without checking the similarity estimate, and keeps one record per cluster.
English word splitting goes through spaCy's blank "en" tokenizer (no model download). Shingles are
hashed with datatrove's sha1 option: its default xxhash path passes `str` to xxhash, which xxhash 4.x
(pulled in here by `datasets`) rejects; datatrove's own extra pins xxhash<4.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def run_datatrove_dedup(texts_dir: Path, work: Path, workers: int) -> set[str]:
    """Ids datatrove removes as near duplicates."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    config = MinhashConfig(
        n_grams=3, num_buckets=16, hashes_per_bucket=8, hash_config=HashConfig(precision=64, hash_fc="sha1")
    )
    tasks = len(list(texts_dir.glob("*.jsonl")))

    def reader() -> JsonlReader:
        return JsonlReader(str(texts_dir), glob_pattern="*.jsonl", text_key="text", id_key="id")

    signatures = LocalPipelineExecutor(
        [reader(), MinhashDedupSignature(str(work / "signatures"), config=config, language="en")],
        tasks=tasks,
        workers=workers,
        logging_dir=str(work / "logs/signatures"),
    )
    buckets = LocalPipelineExecutor(
        [MinhashDedupBuckets(str(work / "signatures"), str(work / "buckets"), config=config)],
        tasks=config.num_buckets,
        workers=workers,
        logging_dir=str(work / "logs/buckets"),
        depends=signatures,
    )
    clusters = LocalPipelineExecutor(
        [MinhashDedupCluster(str(work / "buckets"), str(work / "remove_ids"), config=config)],
        tasks=1,
        logging_dir=str(work / "logs/clusters"),
        depends=buckets,
    )
    filtered = LocalPipelineExecutor(
        [
            reader(),
            MinhashDedupFilter(str(work / "remove_ids"), exclusion_writer=JsonlWriter(str(work / "removed"))),
            JsonlWriter(str(work / "kept")),
        ],
        tasks=tasks,
        workers=workers,
        logging_dir=str(work / "logs/filter"),
        depends=clusters,
    )
    filtered.run()
    removed = set()
    for path in sorted((work / "removed").glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as fh:
            removed.update(json.loads(line)["id"] for line in fh)
    return removed
