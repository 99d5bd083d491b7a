"""Stream records from JSONL, JSON arrays and Parquet files (optionally gzip-compressed).

The container is detected from the file's bytes, not its name: many ".json" files are JSONL.
Records come out one at a time, so memory stays bounded whatever the file size. Unreadable
records come out as `BadRecord` so the caller counts them; a truncated JSON array (ShareGPT's
published file is one) yields every complete record before it, then one `BadRecord`.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import ijson

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class BadRecord:
    reason: str
    detail: str = ""


# A raw JSONL line (parsed later, in a worker), a parsed record, or a bad record.
RawRecord = str | dict[str, Any] | BadRecord


def container_of(path: Path) -> str:
    """'parquet', 'json' (one array) or 'jsonl', from the first bytes of the (decompressed) file."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == PARQUET_MAGIC:
        return "parquet"
    with _open_binary(path) as fh:
        while chunk := fh.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return "json" if stripped[:1] == b"[" else "jsonl"
    return "jsonl"


def _open_binary(path: Path) -> IO[bytes]:
    with open(path, "rb") as fh:
        compressed = fh.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def iter_records(path: str | Path) -> Iterator[RawRecord]:
    path = Path(path)
    readers = {"parquet": _iter_parquet, "json": _iter_json_array, "jsonl": _iter_jsonl}
    yield from readers[container_of(path)](path)


def _iter_jsonl(path: Path) -> Iterator[RawRecord]:
    with _open_binary(path) as raw:
        for line in io.TextIOWrapper(raw, encoding="utf-8", errors="replace"):
            line = line.strip()
            if line:
                yield line


def _iter_json_array(path: Path) -> Iterator[RawRecord]:
    with _open_binary(path) as fh:
        try:
            yield from ijson.items(fh, "item", use_float=True)
        except ijson.IncompleteJSONError as exc:
            yield BadRecord("truncated_file", f"{path.name}: {exc}")
        except ijson.JSONError as exc:
            yield BadRecord("json_error", f"{path.name}: {exc}")


def _iter_parquet(path: Path) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        yield from batch.to_pylist()


def parse_raw(raw: RawRecord) -> dict[str, Any] | BadRecord:
    """A record as a dict, or the reason it is not one."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            return BadRecord("json_error", str(exc))
    if isinstance(raw, BadRecord):
        return raw
    if not isinstance(raw, dict):
        return BadRecord("not_an_object", type(raw).__name__)
    return raw
