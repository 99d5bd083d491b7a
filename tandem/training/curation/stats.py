"""What a curation run counted, as `stats.json` and a short Markdown report."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FileStats:
    path: str
    source: str
    format: str | None
    container: str
    records: int = 0


@dataclass
class CurationStats:
    files: list[FileStats] = field(default_factory=list)
    read: Counter = field(default_factory=Counter)  # source -> records read
    kept: Counter = field(default_factory=Counter)  # source -> records written
    dropped: defaultdict = field(default_factory=lambda: defaultdict(Counter))  # source -> reason -> n
    languages_seen: Counter = field(default_factory=Counter)  # language of records that passed quality
    languages_kept: Counter = field(default_factory=Counter)
    domains: Counter = field(default_factory=Counter)
    near_dedup_input: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0  # the main process (dedup state lives here)
    peak_worker_rss_mb: float = 0.0  # the largest worker process, 0 without workers

    def drop(self, source: str, reason: str) -> None:
        self.dropped[source][reason] += 1

    def to_dict(self) -> dict[str, Any]:
        reasons: Counter = Counter()
        for per_source in self.dropped.values():
            reasons.update(per_source)
        read, kept = sum(self.read.values()), sum(self.kept.values())
        identified = sum(self.languages_seen.values())
        exact, near = reasons.get("exact_duplicate", 0), reasons.get("near_duplicate", 0)
        return {
            "records_read": read,
            "records_kept": kept,
            "drop_reasons": dict(reasons.most_common()),
            "bad_records": sum(n for r, n in reasons.items() if r.startswith("bad_record")),
            "exact_duplicates_removed": exact,
            "near_duplicates_removed": near,
            "duplicate_rate": (exact + near) / (exact + near + kept) if kept else 0.0,
            "near_duplicate_rate": near / self.near_dedup_input if self.near_dedup_input else 0.0,
            "english_share": self.languages_seen.get("en", 0) / identified if identified else 0.0,
            "per_source": {
                s: {"read": self.read[s], "kept": self.kept[s], "dropped": dict(self.dropped[s])}
                for s in self.read
            },
            "per_language_identified": dict(self.languages_seen.most_common()),
            "per_language_kept": dict(self.languages_kept.most_common()),
            "per_domain": dict(self.domains.most_common()),
            "files": [vars(f) for f in self.files],
            "seconds": round(self.seconds, 2),
            "records_per_second": round(read / self.seconds, 1) if self.seconds else None,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "peak_worker_rss_mb": round(self.peak_worker_rss_mb, 1),
        }


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def markdown_report(stats: dict[str, Any]) -> str:
    read = stats["records_read"] or 1
    lines = [
        "# Curation report",
        "",
        f"Read {stats['records_read']:,} records, kept {stats['records_kept']:,} "
        f"({stats['records_kept'] / read:.1%}) in {stats['seconds']} s (peak RSS {stats['peak_rss_mb']} MB).",
        f"Exact duplicates removed: {stats['exact_duplicates_removed']:,}; near duplicates removed: "
        f"{stats['near_duplicates_removed']:,} ({stats['near_duplicate_rate']:.2%} of records that reached "
        f"near-dedup). English share of identified records: {stats['english_share']:.2%}. "
        f"Bad records: {stats['bad_records']:,}.",
        "",
        "## Sources",
        "",
        *_table(
            ("source", "read", "kept", "top drop reasons"),
            [
                (
                    s,
                    v["read"],
                    v["kept"],
                    ", ".join(f"{r} {n}" for r, n in sorted(v["dropped"].items(), key=lambda x: -x[1])[:3]),
                )
                for s, v in stats["per_source"].items()
            ],
        ),
        "",
        "## Drop reasons",
        "",
        *_table(("reason", "records"), list(stats["drop_reasons"].items())),
        "",
        "## Domains (kept)",
        "",
        *_table(("domain", "records"), list(stats["per_domain"].items())),
        "",
        "## Languages (identified, top 10)",
        "",
        *_table(("language", "records"), list(stats["per_language_identified"].items())[:10]),
        "",
        "## Files",
        "",
        *_table(
            ("path", "source", "format", "container", "records"),
            [(f["path"], f["source"], f["format"], f["container"], f["records"]) for f in stats["files"]],
        ),
    ]
    return "\n".join(lines) + "\n"
