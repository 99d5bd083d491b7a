"""The per-record work that needs no shared state: parse, convert, normalize, filter, identify the
language, tag the domain, hash. It runs in worker processes on batches, in input order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rensa

from tandem.training.curation.config import CurationConfig
from tandem.training.curation.dedup import exact_digest, minhashes
from tandem.training.curation.domains import DomainTagger
from tandem.training.curation.formats import FormatError, get_format
from tandem.training.curation.langid import identify
from tandem.training.curation.normalize import dialogue_text, exact_key, normalize_messages, words
from tandem.training.curation.quality import quality_problem
from tandem.training.curation.readers import BadRecord, RawRecord, parse_raw


@dataclass
class WorkItem:
    source: str
    format: str
    record_id: str
    raw: RawRecord


@dataclass
class Dropped:
    source: str
    reason: str
    lang: str | None = None


@dataclass
class Prepared:
    source: str
    record: dict[str, Any]
    digest: bytes
    minhash: rensa.RMinHash | None


class Preparer:
    def __init__(self, config: CurationConfig):
        self.config = config
        self.tagger = DomainTagger(config.domain_rules, config.default_domain)
        self.keep_languages = set(config.language.keep)

    def prepare(self, batch: list[WorkItem]) -> list[Prepared | Dropped]:
        staged = [self._one(item) for item in batch]
        ready = [s for s in staged if not isinstance(s, Dropped)]
        if self.config.near_dedup.enabled:
            hashes = iter(minhashes([s[2] for s in ready], self.config.near_dedup, [s[3] for s in ready]))
        else:
            hashes = iter([None] * len(ready))
        out: list[Prepared | Dropped] = []
        for s in staged:
            if isinstance(s, Dropped):
                out.append(s)
            else:
                item, record, text, _ = s
                out.append(Prepared(item.source, record, exact_digest(exact_key(text)), next(hashes)))
        return out

    def _one(self, item: WorkItem) -> tuple[WorkItem, dict[str, Any], str, list[str]] | Dropped:
        parsed = parse_raw(item.raw)
        if isinstance(parsed, BadRecord):
            return Dropped(item.source, f"bad_record:{parsed.reason}")
        try:
            messages = normalize_messages(get_format(item.format).convert(parsed))
        except (FormatError, TypeError, AttributeError):  # wrong shapes inside a record of the right keys
            return Dropped(item.source, "bad_record:format_mismatch")
        text = dialogue_text(messages)
        problem = quality_problem(messages, text, self.config.quality)
        if problem:
            return Dropped(item.source, f"quality:{problem}")
        lang, score = identify(text, self.config.language.sample_chars)
        if self.keep_languages and (
            lang not in self.keep_languages or score < self.config.language.min_score
        ):
            return Dropped(item.source, "language", lang)
        tokens = words(text)
        record = {
            "id": item.record_id,
            "source": item.source,
            "lang": lang,
            "lang_score": round(score, 4),
            "domain": self.tagger.tag(text, tokens),
            "messages": messages,
        }
        return item, record, text, tokens


_worker: Preparer | None = None


def init_worker(config: CurationConfig) -> None:
    global _worker
    _worker = Preparer(config)


def prepare_in_worker(batch: list[WorkItem]) -> list[Prepared | Dropped]:
    assert _worker is not None, "init_worker was not called in this process"
    return _worker.prepare(batch)
