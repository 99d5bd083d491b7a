"""Semantic-cache benchmark: `python -m bench.semantic_cache [--embedders hashing minilm-static minilm-int8]`.

On the pair set of `pairs.py` (paraphrases, and hard negatives of eight classes), for every
embedder, with and without the verification stage (`tandem/services/cache/verify.py`), and for every
threshold: the hit rate on paraphrases and the false-hit rate on hard negatives. A pair is a hit
when the new prompt's cosine to the cached one reaches the threshold and (with guards) no guard
refuses the match.

Rules fixed before any result was seen:
- thresholds are chosen on the dev half (pairs split by source item, `Pair.split`): the threshold
  with the highest dev paraphrase hit rate whose dev false-hit rate, pooled over the negative
  classes, is at most the target (0.5%); ties go to the higher threshold;
- figures are reported on the held-out half at that threshold;
- the gates (issue #23): held-out false hits <= 0.5% (pooled), paraphrase hits >= 50%, and
  p50 latency added per lookup <= 2 ms on this machine (2 cores), timed through the served
  `SemanticIndex.lookup` (embedding + similarity + verification) on an index holding every
  held-out cached prompt, one thread.

Index-wide (added 2026-12-02, rule fixed before any held-out index-wide figure of the settings below
was computed): a busy cache holds many prompts, and a new prompt may be served *another* item's
answer. `index_wide` puts every cached prompt of a split in one index and looks every query up
through the served `SemanticIndex` (top 3 candidates, first that all guards pass): a hit on another
item's prompt, or on a changed variant of its own, is false; its own item's unmodified prompt (or
the very same text) is right. The setting is then chosen on dev index-wide:
- settings: match view (`prompt`: the whole prompt is embedded; `content`: its content words,
  `verify.content_text`) x the `differing` guard (off, or its `min_word_similarity` in
  0.2..0.8) x threshold (0.50..0.995); every other guard always on;
- eligible: the one-sided 95% Clopper-Pearson upper bound of the dev index-wide false-hit rate is
  <= 0.5% (a point estimate at the target would pass on dev and fail on held-out about half the
  time), and the dev pairwise false-hit rate is <= 0.5%;
- near-best: a dev index-wide paraphrase hit rate within one standard error of the best eligible
  one (sqrt(p(1-p)/n): differences smaller than that are noise of the dev sample);
- chosen among those: the fewest dev index-wide false hits, then the most paraphrase hits, then the
  higher threshold, the higher `min_word_similarity`, the `prompt` view;
- reported: that setting's held-out figures, index-wide and pairwise, once.
(The first version of this rule took the highest dev paraphrase hit rate among eligible settings;
on the dev sweep it picked a setting at the edge of the bound, 12 false hits for 3 more paraphrases
of 514 than one with 1 false hit; it was replaced by the rule above before any held-out figure of
these settings was computed.)
Wrappers and word order (added 2026-12-02, rule fixed before any figure of these settings was
computed): the settings above are also swept with the prompt's wrappers stripped or kept
(`strip_wrappers`: "Can you tell me ...", "Thanks!"; the `wrappers` setting), and with the `order`
guard (a role swap: the same content words in another order) on or off. `order` answers a false hit
measured outside the benchmark ("Who did Brutus kill?" served "Who killed Brutus?"), a kind of pair
the benchmark does not hold, so it cannot earn its place here: it is always on in the eligible
settings, and the sweep records what it costs on dev (the same settings with it off). Among
near-best settings, after the fewest false hits and the most paraphrase hits, wrappers stripped is
preferred (it is what makes framed questions outside the benchmark's items hit), then the rest of the
order above. The benchmark's paraphrase frames ("Can you tell me ...", "Thanks!") are among the
wrappers stripped, so its gain from stripping is partly by construction.
The sweep over settings replays the index's decision from each query's top-3 candidates (the same
argpartition/argsort as `SemanticIndex.lookup`); the chosen setting is then re-run through the real
`SemanticIndex` on both halves, and the JSON records that both agree. `--dev-only` skips every
held-out figure (for development).
The lexical tier (added 2026-12-02, rule fixed before any figure of the tier was computed, dev or
held-out): at the setting chosen above, a second tier (`tandem/services/cache/lexical.py`) serves a
candidate whose cosine is below the threshold but at or above the tier's own `lexical_threshold`
when every guard but `swap` and `differing` passes and WordNet accounts for the words that differ.
Swept on dev only: `lexical_threshold` in LEXICAL_THRESHOLDS x `lexical_senses` in LEXICAL_SENSES,
replayed index-wide as above (the same top-3 candidates). Eligible as above (one-sided 95% upper
bound of the dev index-wide false-hit rate <= 0.5%, dev pairwise false hits <= 0.5%); chosen among
the eligible: the most dev index-wide paraphrase hits, then the fewest dev false hits, then the
fewer senses, then the lower `lexical_threshold`. Shipped only if a setting is eligible; then
re-run through the real index on both halves (replay must agree), held-out figures computed once
and reported as they come out. `--lexical` runs this sweep.
(The first version of this rule broke ties towards the higher `lexical_threshold`, then the fewer
senses. On the dev sweep every band from 0.50 to 0.90 gave the same figures (75.1% paraphrase hits,
1 false hit at one sense), and it picked 0.90, which leaves out short questions whose one-word
rewording moves the content cosine further: the issue's own pairs sit at 0.83 and 0.84. Where dev
cannot tell bands apart the wider band is preferred, and fewer senses before it (fewer senses is what
dev did tell apart: 1 false hit at one sense, 3 at two or more). The rule was revised after the dev
sweep and before any held-out figure of the tier was computed; a full run started under the first
rule was stopped before it printed any figure.)

Writes bench/semantic_cache/results/semantic_cache.json and semantic_cache.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from bench.semantic_cache.pairs import NEGATIVE_CLASSES, Pair, build
from tandem.services.cache.embedders import build_embedder
from tandem.services.cache.lexical import clear_caches, lexical_match
from tandem.services.cache.semantic import VIEWS, WRAPPERS, LexicalTier, SemanticIndex
from tandem.services.cache.verify import GUARDS, Verifier, content_text, read, strip_wrappers, word_similarity

RESULTS = Path(__file__).parent / "results"
THRESHOLDS = [round(t, 3) for t in np.arange(0.50, 0.99, 0.01)] + [0.99, 0.995]
TARGET_FALSE_HITS, TARGET_HITS, TARGET_P50_MS = 0.005, 0.50, 2.0
WORD_SIMILARITIES = [None, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]  # None: the `differing` guard off
CANDIDATES = 3  # SemanticCacheSettings.candidates' default
BASE_GUARDS = [g for g in GUARDS if g not in ("differing", "order")]
LEXICAL_THRESHOLDS = [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99]
LEXICAL_SENSES = [1, 2, 3, 5, 99]


def guards_for(min_word_similarity: float | None, order: bool = True) -> list[str]:
    return [*BASE_GUARDS, *(["order"] if order else []), *([] if min_word_similarity is None else ["differing"])]


def core(text: str, wrappers: str) -> str:
    """What the index embeds and verifies (`SemanticIndex.core`)."""
    return strip_wrappers(text) if wrappers == "strip" else text


def upper_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper confidence bound of a rate of k in n."""
    from scipy.stats import beta
    return 1.0 if k >= n else float(beta.ppf(confidence, k + 1, n - k))


def rates(pairs: list[Pair], hits: np.ndarray) -> dict:
    """Paraphrase hit rate, pooled false-hit rate, and the false-hit rate of each negative class."""
    kinds = np.array([p.kind for p in pairs])
    positive = kinds == "paraphrase"
    out = {"paraphrase_hits": float(hits[positive].mean()), "false_hits": float(hits[~positive].mean()),
           "n_paraphrase": int(positive.sum()), "n_negative": int((~positive).sum())}
    out["false_hits_by_class"] = {k: float(hits[kinds == k].mean()) for k in NEGATIVE_CLASSES if (kinds == k).any()}
    return out


def choose_threshold(sims: np.ndarray, passed: np.ndarray, dev: list[Pair], dev_index: np.ndarray) -> float | None:
    best: tuple[float, float] | None = None
    for t in THRESHOLDS:
        r = rates(dev, (sims[dev_index] >= t) & passed[dev_index])
        if r["false_hits"] <= TARGET_FALSE_HITS and (best is None or r["paraphrase_hits"] >= best[1]):
            best = (t, r["paraphrase_hits"])
    return best[0] if best else None


def served_index(embedder, n: int, threshold: float, view: str = "prompt",
                 min_word_similarity: float | None = None, wrappers: str = "keep", order: bool = False,
                 lexical: tuple[float, int] | None = None) -> SemanticIndex:
    guards = guards_for(min_word_similarity, order)
    verifier = Verifier(guards, embed=embedder.embed, min_word_similarity=min_word_similarity or 0.0)
    tier = None if lexical is None else LexicalTier(guards, *lexical)
    return SemanticIndex(embedder, verifier, threshold, max_entries=n + 1, candidates=CANDIDATES, view=view,
                         wrappers=wrappers, lexical=tier)


def time_lookups(embedder, pairs: list[Pair], threshold: float, sample: int, view: str = "prompt",
                 min_word_similarity: float | None = None, wrappers: str = "keep", order: bool = False,
                 lexical: tuple[float, int] | None = None) -> dict:
    """The served lookup on an index of every cached prompt (one context), timed per query. A hit on another
    pair's entry is counted apart: it is judged by no label."""
    index = served_index(embedder, len(pairs), threshold, view, min_word_similarity, wrappers, order, lexical)
    for i, pair in enumerate(pairs):
        index.add("bench", pair.cached, f"k{i}")
    if lexical is not None:
        clear_caches()  # WordNet's words read from scratch, as for the first lookups of a fresh router
    rng = np.random.default_rng(23)
    chosen = rng.choice(len(pairs), size=min(sample, len(pairs)), replace=False)
    wall, cpu, outcomes = [], [], Counter()
    for i in chosen:
        pair = pairs[int(i)]
        started, started_cpu = time.perf_counter(), time.process_time()
        found = index.lookup("bench", pair.query)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        if found.key is None:
            outcomes["miss"] += 1
        elif found.key == f"k{int(i)}":
            outcomes["paraphrase_hit" if pair.positive else "false_hit"] += 1
        else:  # another pair's cached prompt: the same source question often appears in several pairs
            outcomes["hit_on_other_entry_identical_text" if found.text == pair.query else "hit_on_other_entry"] += 1
    ms = lambda xs, q: float(np.percentile(xs, q) * 1000)
    return {"index_entries": len(index), "lookups": len(chosen), "wall_p50_ms": ms(wall, 50),
            "wall_p95_ms": ms(wall, 95), "cpu_p50_ms": ms(cpu, 50), "cpu_p95_ms": ms(cpu, 95),
            "outcomes": dict(outcomes)}


def originals(pairs: list[Pair]) -> dict[str, set[str]]:
    """Per source item, its unmodified prompt(s): the cached side of paraphrase pairs and of the single-edit
    negatives, the prompt without the constraint; none for translations (each side is its own question)."""
    out: dict[str, set[str]] = {}
    for p in pairs:
        if p.kind == "constraint":
            out.setdefault(p.item, set()).add(min(p.cached, p.query, key=len))
        elif p.kind != "language":
            out.setdefault(p.item, set()).add(p.cached)
    return out


def judge(pair: Pair, i: int, served: int | None, served_text: str, same: dict[str, set[str]]) -> str:
    """The outcome of query i served entry `served` (None: a miss), as a busy cache would see it."""
    if served is None:
        return "paraphrase_miss" if pair.positive else "negative_miss"
    if served_text == pair.query:  # the very same prompt cached by another pair: a right answer
        return "paraphrase_hit" if pair.positive else "negative_identical_prompt"
    if served == i:
        return "paraphrase_hit" if pair.positive else "negative_false_hit"
    if pair.positive and served_text in same.get(pair.item, ()):
        return "paraphrase_hit"
    return "paraphrase_wrong_entry" if pair.positive else "negative_false_hit"


def summarize(pairs: list[Pair], outcomes: Counter, false_classes: Counter | None = None) -> dict:
    n_pos = sum(p.positive for p in pairs)
    n_neg = len(pairs) - n_pos
    out = {"index_entries": len(pairs), "outcomes": dict(outcomes),
           "paraphrase_hits": outcomes["paraphrase_hit"] / n_pos,
           "paraphrase_wrong_entry": outcomes["paraphrase_wrong_entry"] / n_pos,
           "false_hits": outcomes["negative_false_hit"] / n_neg, "n_false_hits": outcomes["negative_false_hit"],
           "n_negative": n_neg, "n_paraphrase": n_pos,
           "false_hits_upper_95": upper_bound(outcomes["negative_false_hit"], n_neg)}
    if false_classes is not None:
        out["false_hits_by_class"] = dict(false_classes)
    return out


def index_wide(embedder, pairs: list[Pair], threshold: float, view: str = "prompt",
               min_word_similarity: float | None = None, examples: int = 0, wrappers: str = "keep",
               order: bool = False, lexical: tuple[float, int] | None = None) -> dict:
    """Every query against one index of every cached prompt of the split, as a busy cache would see it,
    through the served SemanticIndex: a query may now match another pair's entry. Served another item's
    prompt, or a changed variant of its own, is a false hit; its own item's unmodified prompt is a right
    answer for a paraphrase."""
    index = served_index(embedder, len(pairs), threshold, view, min_word_similarity, wrappers, order, lexical)
    for i, pair in enumerate(pairs):
        index.add("bench", pair.cached, f"k{i}")
    same = originals(pairs)
    outcomes, classes, wrong, tiers, lexical_hits = Counter(), Counter(), [], Counter(), []
    for i, pair in enumerate(pairs):
        found = index.lookup("bench", pair.query)
        outcome = judge(pair, i, None if found.key is None else int(found.key[1:]), found.text, same)
        outcomes[outcome] += 1
        if found.tier:
            tiers[f"{found.tier}:{outcome}"] += 1
        if found.tier == "lexical":
            lexical_hits.append({"kind": pair.kind, "outcome": outcome, "query": pair.query, "served": found.text,
                                 "similarity": round(found.similarity, 3)})
        if outcome in ("negative_false_hit", "paraphrase_wrong_entry"):
            classes[pair.kind] += 1
            wrong.append({"kind": pair.kind, "query": pair.query, "served": found.text,
                          "similarity": round(found.similarity, 3), "tier": found.tier})
    out = summarize(pairs, outcomes, classes)
    out["served_wrongly"] = wrong[:examples]
    if lexical is not None:
        out["by_tier"] = dict(tiers)
        out["lexical_tier_hits"] = lexical_hits[:examples]
    return out


class Replay:
    """The index's decision replayed for every setting of one split, one view and one wrappers choice:
    each query's top candidates (as `SemanticIndex.lookup` ranks them), whether the base guards and the
    `order` guard pass each, and the differing words' similarity; a setting then costs a pass over these
    arrays."""

    def __init__(self, embedder, pairs: list[Pair], vectors: dict[str, np.ndarray], verdicts: dict,
                 word_sims: dict, wrappers: str):
        self.pairs, self.same = pairs, originals(pairs)
        matrix = np.stack([vectors[p.cached] for p in pairs])
        self.candidates = []  # per query: [(entry index, similarity, base guards pass, order passes, word sim)]
        for p in pairs:
            sims = matrix @ vectors[p.query]
            top = np.argpartition(-sims, CANDIDATES)[:CANDIDATES] if len(sims) > CANDIDATES else np.arange(len(sims))
            row = []
            for j in top[np.argsort(-sims[top])]:
                key = (core(pairs[j].cached, wrappers), core(p.query, wrappers))
                if key not in verdicts:
                    a, b = _read(key[0]), _read(key[1])
                    verdicts[key] = (_base_verifier().refusal(a, b) is None, GUARDS["order"](a, b))
                    word_sims[key] = word_similarity(embedder.embed, a, b)
                row.append((int(j), float(sims[j]), *verdicts[key], word_sims[key], key))
            self.candidates.append(row)

    def run(self, threshold: float, min_word_similarity: float | None, order: bool = True,
            lexical: tuple[float, int] | None = None) -> dict:
        outcomes = Counter()
        floor = threshold if lexical is None else min(threshold, lexical[0])
        for i, (pair, row) in enumerate(zip(self.pairs, self.candidates)):
            served = None
            for j, sim, ok, order_ok, ws, key in row:
                if sim < floor:
                    break
                if sim >= threshold:
                    passes = ok and (order_ok or not order) and (
                        min_word_similarity is None or ws is None or ws >= min_word_similarity)
                else:
                    passes = lexical_verdict(key, lexical[1])
                if passes:
                    served = j
                    break
            outcomes[judge(pair, i, served, "" if served is None else self.pairs[served].cached, self.same)] += 1
        return summarize(self.pairs, outcomes)


_READINGS: dict = {}


def _read(text: str):
    if text not in _READINGS:
        _READINGS[text] = read(text)
    return _READINGS[text]


_BASE: list = []
_LEXICAL: dict = {}


def lexical_verdict(key: tuple[str, str], senses: int) -> bool:
    """The lexical tier's decision on (cached, query) texts (already wrapper-handled): every guard but `swap`
    and `differing` (`order` included) passes, and `lexical_match`."""
    if (key, senses) not in _LEXICAL:
        if not _BASE or len(_BASE) < 2:
            _base_verifier()
            _BASE.append(Verifier([g for g in BASE_GUARDS if g != "swap"] + ["order"]))
        a, b = _read(key[0]), _read(key[1])
        _LEXICAL[(key, senses)] = _BASE[1].refusal(a, b) is None and lexical_match(a, b, senses)
    return _LEXICAL[(key, senses)]


def _base_verifier() -> Verifier:
    if not _BASE:
        _BASE.append(Verifier(BASE_GUARDS))
    return _BASE[0]


def ok_for(passed: np.ndarray, order_ok: np.ndarray, word_sims: list, mws: float | None, order: bool) -> np.ndarray:
    """Per pair: do the guards of a setting pass (pairwise)? The base guards, `order` if on, `differing` at mws."""
    return passed & (order_ok | (not order)) & np.array([mws is None or ws is None or ws >= mws for ws in word_sims])


def choose_setting(sweep: list[dict]) -> dict | None:
    """The rule of the docstring, on dev figures only."""
    eligible = [s for s in sweep if s["order"] and s["dev_index_wide"]["false_hits_upper_95"] <= TARGET_FALSE_HITS
                and s["dev_pairwise"]["false_hits"] <= TARGET_FALSE_HITS]
    if not eligible:
        return None
    best = max(s["dev_index_wide"]["paraphrase_hits"] for s in eligible)
    n_positive = eligible[0]["dev_index_wide"]["n_paraphrase"]
    near = [s for s in eligible
            if s["dev_index_wide"]["paraphrase_hits"] >= best - (best * (1 - best) / n_positive) ** 0.5 - 1e-12]
    return max(near, key=lambda s: (-s["dev_index_wide"]["n_false_hits"], round(s["dev_index_wide"]["paraphrase_hits"], 9),
                                    s["wrappers"] == "strip", s["threshold"],
                                    -1.0 if s["min_word_similarity"] is None else s["min_word_similarity"],
                                    s["view"] == "prompt"))


def choose_lexical(sweep: list[dict]) -> dict | None:
    """The lexical tier's rule of the docstring, on dev figures only."""
    eligible = [s for s in sweep if s["dev_index_wide"]["false_hits_upper_95"] <= TARGET_FALSE_HITS
                and s["dev_pairwise"]["false_hits"] <= TARGET_FALSE_HITS]
    if not eligible:
        return None
    return max(eligible, key=lambda s: (round(s["dev_index_wide"]["paraphrase_hits"], 9),
                                        -s["dev_index_wide"]["n_false_hits"], -s["lexical_senses"],
                                        -s["lexical_threshold"]))


def lexical_tier(args, name, embedder, chosen, curves, latency, sweeps, best, pairs, dev, held, dev_index, held_index,
                 readings, sims, ok, dev_replay, held_replay) -> None:
    """The lexical tier on top of the chosen setting: swept on dev, chosen by the rule, then held-out once."""
    view, w, mws, t = best["view"], best["wrappers"], best["min_word_similarity"], best["threshold"]
    started = time.perf_counter()
    lex_ok = {n: np.array([lexical_verdict((core(p.cached, w), core(p.query, w)), n) for p in pairs])
              for n in LEXICAL_SENSES}
    print(f"  lexical verdicts of {len(pairs)} pairs x {len(LEXICAL_SENSES)} in {time.perf_counter() - started:.1f}s")
    sweep = []
    for n in LEXICAL_SENSES:
        for lt in LEXICAL_THRESHOLDS:
            hits = ((sims >= t) & ok) | ((sims >= lt) & (sims < t) & lex_ok[n])
            sweep.append({"lexical_threshold": lt, "lexical_senses": n,
                          "dev_pairwise": rates(dev, hits[dev_index]),
                          "dev_index_wide": dev_replay.run(t, mws, True, (lt, n))})
    sweeps[f"{name} + lexical"] = [{k: s[k] for k in ("lexical_threshold", "lexical_senses")}
                                   | {"dev_pairwise": {k: s["dev_pairwise"][k] for k in ("paraphrase_hits", "false_hits")},
                                      "dev_index_wide": {k: s["dev_index_wide"][k] for k in
                                                         ("paraphrase_hits", "false_hits", "n_false_hits",
                                                          "false_hits_upper_95")}}
                                   for s in sweep]
    for s in sweep:
        d = s["dev_index_wide"]
        print(f"    lexical {s['lexical_threshold']:.2f} senses {s['lexical_senses']:>2}: dev index-wide "
              f"{d['paraphrase_hits']:.4f} para, {d['n_false_hits']} false (ub {d['false_hits_upper_95']:.4f}); "
              f"pairwise false {s['dev_pairwise']['false_hits']:.4f}")
    pick = choose_lexical(sweep)
    label = f"{name} + guards + lexical"
    if pick is None:
        chosen[label] = {"lexical_threshold": None}
        print(f"  {label}: no setting is eligible on dev")
        return
    tier = (pick["lexical_threshold"], pick["lexical_senses"])
    hits = ((sims >= t) & ok) | ((sims >= tier[0]) & (sims < t) & lex_ok[tier[1]])
    splits = [("dev", dev, dev_index)] + ([] if args.dev_only else [("heldout", held, held_index)])
    chosen[label] = {"threshold": t, "view": view, "wrappers": w, "order": True, "min_word_similarity": mws,
                     "lexical_threshold": tier[0], "lexical_senses": tier[1],
                     **{split: rates(ps, hits[ix]) for split, ps, ix in splits}}
    curves[label] = []  # the tier's cosine band swept at the chosen senses (dev chose; held-out reported)
    for lt in LEXICAL_THRESHOLDS:
        h = ((sims >= t) & ok) | ((sims >= lt) & (sims < t) & lex_ok[tier[1]])
        point = {"threshold": lt, **{split: rates(ps, h[ix]) for split, ps, ix in splits},
                 "dev_index_wide": dev_replay.run(t, mws, True, (lt, tier[1]))}
        if held_replay is not None:
            point["heldout_index_wide"] = held_replay.run(t, mws, True, (lt, tier[1]))
        curves[label].append(point)
    chosen[label]["index_wide"] = {split: index_wide(embedder, ps, t, view, mws, examples=80, wrappers=w, order=True,
                                                     lexical=tier)
                                   for split, ps, _ in splits}
    replayed = {"dev": pick["dev_index_wide"], **({"heldout": held_replay.run(t, mws, True, tier)}
                                                  if held_replay else {})}
    chosen[label]["replay_agrees"] = all(replayed[s]["outcomes"] == chosen[label]["index_wide"][s]["outcomes"]
                                         for s in replayed)
    kinds = np.array([p.kind for p in pairs])
    chosen[label]["lexical_accept_rates"] = {kind: float(lex_ok[tier[1]][kinds == kind].mean())
                                             for kind in ("paraphrase", *NEGATIVE_CLASSES)}
    summary = {"lexical_threshold": tier[0], "lexical_senses": tier[1], "replay_agrees": chosen[label]["replay_agrees"]}
    for split, iw in chosen[label]["index_wide"].items():
        summary[f"{split}_index_wide"] = {k: iw[k] for k in ("paraphrase_hits", "false_hits", "n_false_hits",
                                                              "false_hits_upper_95", "false_hits_by_class", "by_tier")}
        summary[f"{split}_pairwise"] = {k: chosen[label][split][k] for k in ("paraphrase_hits", "false_hits")}
    print(f"  {label}:", json.dumps(summary, default=str))
    latency[f"{name} + lexical"] = time_lookups(embedder, dev if args.dev_only else held, t, args.latency_lookups,
                                                view, mws, w, True, tier)
    print(f"  latency ({label}):", latency[f"{name} + lexical"])


def plot(curves: dict, chosen: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for name, curve in curves.items():
        if "heldout" not in curve[0]:
            continue
        ts = [c["threshold"] for c in curve]
        line, = axes[0].plot([c["heldout"]["false_hits"] * 100 for c in curve],
                             [c["heldout"]["paraphrase_hits"] * 100 for c in curve], label=f"{name}, pairwise")
        axes[1].plot(ts, [c["heldout"]["paraphrase_hits"] * 100 for c in curve], color=line.get_color(), label=name)
        axes[1].plot(ts, [c["heldout"]["false_hits"] * 100 for c in curve], color=line.get_color(), linestyle=":")
        if "heldout_index_wide" in curve[0]:
            axes[0].plot([c["heldout_index_wide"]["false_hits"] * 100 for c in curve],
                         [c["heldout_index_wide"]["paraphrase_hits"] * 100 for c in curve], color=line.get_color(),
                         linestyle="--", label=f"{name}, index-wide")
        c = chosen.get(name, {})
        if c.get("threshold") is not None and "heldout" in c:
            h = c.get("index_wide", {}).get("heldout") or c["heldout"]
            axes[0].scatter([h["false_hits"] * 100], [h["paraphrase_hits"] * 100], color=line.get_color(), zorder=3)
    axes[0].axvline(TARGET_FALSE_HITS * 100, color="grey", linestyle="--")
    axes[0].axhline(TARGET_HITS * 100, color="grey", linestyle="--")
    axes[0].set_xscale("symlog", linthresh=0.5)
    axes[0].set_xlim(left=0)
    axes[0].set(xlabel="false hits on hard negatives, % (held-out)", ylabel="paraphrase hits, % (held-out)",
                title="Held-out, each point a threshold (dashed: index-wide);\ndots: the setting chosen on dev, "
                      "index-wide")
    axes[1].set(xlabel="cosine threshold", ylabel="%", title="Pairwise: paraphrase hits (solid), false hits (dotted)")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedders", nargs="+", default=["hashing", "minilm-static", "minilm-int8"])
    parser.add_argument("--artifacts", default=None, help="artifacts folder, for the `onnx` embedder")
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--latency-lookups", type=int, default=400)
    parser.add_argument("--dev-only", action="store_true", help="choose on dev, compute no held-out figure")
    parser.add_argument("--lexical", action="store_true", help="also sweep the lexical tier on the chosen setting")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    threadpool_limits(1)  # one BLAS thread, as the served lookup should run on a 2-core router

    pairs = build(per_class=args.per_class)
    dev_index = np.array([i for i, p in enumerate(pairs) if p.split == "dev"])
    held_index = np.array([i for i, p in enumerate(pairs) if p.split == "heldout"])
    dev, held = [pairs[i] for i in dev_index], [pairs[i] for i in held_index]
    print(f"{len(pairs)} pairs: {dict(Counter(p.kind for p in pairs))}; dev {len(dev)}, held-out {len(held)}")
    splits = [("dev", dev, dev_index)] + ([] if args.dev_only else [("heldout", held, held_index)])

    started = time.perf_counter()
    for p in pairs:  # timed: both prompts read from scratch and the base guards run
        _base_verifier().refusal(read(p.cached), read(p.query))
    guard_s = time.perf_counter() - started
    readings = {w: [(_read(core(p.cached, w)), _read(core(p.query, w))) for p in pairs] for w in WRAPPERS}
    passed = {w: np.array([_base_verifier().refusal(a, b) is None for a, b in readings[w]]) for w in WRAPPERS}
    order_ok = {w: np.array([GUARDS["order"](a, b) for a, b in readings[w]]) for w in WRAPPERS}
    kinds = np.array([p.kind for p in pairs])
    guard_table = {w: {name: {kind: float(1 - np.mean([GUARDS[name](a, b) for (a, b), k in zip(readings[w], kinds)
                                                       if k == kind]))
                              for kind in ("paraphrase", *NEGATIVE_CLASSES)}
                       for name in [*BASE_GUARDS, "order"]} for w in WRAPPERS}
    every = np.ones(len(pairs), dtype=bool)
    texts = sorted({t for p in pairs for t in (p.cached, p.query)})
    variants = [(view, w) for view in VIEWS for w in WRAPPERS]

    curves, chosen, latency, sweeps = {}, {}, {}, {}
    for name in args.embedders:
        embedder = build_embedder(name, args.artifacts)
        started = time.perf_counter()
        vectors = {(view, w): {t: embedder.embed(core(t, w) if view == "prompt" else
                                                 content_text(_read(core(t, w))) or core(t, w)) for t in texts}
                   for view, w in variants}
        sims = {v: np.array([float(vs[p.cached] @ vs[p.query]) for p in pairs]) for v, vs in vectors.items()}
        word_sims = {w: [word_similarity(embedder.embed, a, b) for a, b in readings[w]] for w in WRAPPERS}
        print(f"{name}: {len(texts)} texts embedded in {len(variants)} variants in {time.perf_counter() - started:.1f}s")

        # Without guards (the whole prompt embedded as written): pairwise, the threshold chosen as before.
        raw = sims[("prompt", "keep")]
        curves[name] = [{"threshold": t, **{split: rates(ps, raw[ix] >= t) for split, ps, ix in splits}}
                        for t in THRESHOLDS]
        t = choose_threshold(raw, every, dev, dev_index)
        chosen[name] = {"threshold": t, **({split: rates(ps, raw[ix] >= t) for split, ps, ix in splits}
                                           if t is not None else {})}

        # With the guards: every setting on dev, pairwise and index-wide (replayed).
        verdicts, pair_word_sims = {}, {}
        replays = {(view, w): Replay(embedder, dev, vectors[(view, w)], verdicts, pair_word_sims, w)
                   for view, w in variants}
        sweep = []
        for view, w in variants:
            for order in (True, False):
                for mws in WORD_SIMILARITIES:
                    ok = ok_for(passed[w], order_ok[w], word_sims[w], mws, order)
                    for t in THRESHOLDS:
                        sweep.append({"view": view, "wrappers": w, "order": order, "min_word_similarity": mws,
                                      "threshold": t,
                                      "dev_pairwise": rates(dev, (sims[(view, w)][dev_index] >= t) & ok[dev_index]),
                                      "dev_index_wide": replays[(view, w)].run(t, mws, order)})
        best = choose_setting(sweep)
        sweeps[name] = [{k: s[k] for k in ("view", "wrappers", "order", "min_word_similarity", "threshold")}
                        | {"dev_pairwise": {k: s["dev_pairwise"][k] for k in ("paraphrase_hits", "false_hits")},
                           "dev_index_wide": {k: s["dev_index_wide"][k] for k in
                                              ("paraphrase_hits", "false_hits", "n_false_hits", "false_hits_upper_95")}}
                        for s in sweep]
        label = f"{name} + guards"
        if best is None:
            chosen[label] = {"threshold": None}
            print(f"  {label}: no setting is eligible on dev")
            latency[name] = time_lookups(embedder, held if not args.dev_only else dev, 0.99, args.latency_lookups)
            continue
        view, w, mws, t = best["view"], best["wrappers"], best["min_word_similarity"], best["threshold"]
        ok = ok_for(passed[w], order_ok[w], word_sims[w], mws, True)
        held_replay = None if args.dev_only else Replay(embedder, held, vectors[(view, w)], verdicts, pair_word_sims, w)
        curves[label] = []
        for tt in THRESHOLDS:
            point = {"threshold": tt,
                     **{split: rates(ps, (sims[(view, w)][ix] >= tt) & ok[ix]) for split, ps, ix in splits},
                     "dev_index_wide": replays[(view, w)].run(tt, mws)}
            if held_replay is not None:
                point["heldout_index_wide"] = held_replay.run(tt, mws)
            curves[label].append(point)
        chosen[label] = {"threshold": t, "view": view, "wrappers": w, "order": True, "min_word_similarity": mws,
                         **{split: rates(ps, (sims[(view, w)][ix] >= t) & ok[ix]) for split, ps, ix in splits}}
        if not args.dev_only:
            chosen[label]["heldout_paraphrase_hits_by_source"] = {
                source: float(np.mean([(sims[(view, w)][i] >= t) and ok[i] for i in held_index
                                       if pairs[i].positive and pairs[i].source.split("/")[0] == source]))
                for source in sorted({p.source.split("/")[0] for p in held if p.positive})}
        # The chosen setting through the served index, on each half; the replay must agree with it.
        chosen[label]["index_wide"] = {split: index_wide(embedder, ps, t, view, mws, examples=60, wrappers=w,
                                                         order=True)
                                       for split, ps, _ in splits}
        replayed = {"dev": best["dev_index_wide"], **({"heldout": held_replay.run(t, mws)} if held_replay else {})}
        chosen[label]["replay_agrees"] = all(replayed[s]["outcomes"] == chosen[label]["index_wide"][s]["outcomes"]
                                             for s in replayed)
        differing = np.array([mws is None or ws is None or ws >= mws for ws in word_sims[w]])
        chosen[label]["differing_refusal_rates"] = {
            kind: float(1 - differing[kinds == kind].mean()) for kind in ("paraphrase", *NEGATIVE_CLASSES)}
        summary = {k: chosen[label][k] for k in ("threshold", "view", "wrappers", "min_word_similarity",
                                                  "replay_agrees")}
        for split in chosen[label]["index_wide"]:
            iw = chosen[label]["index_wide"][split]
            summary[f"{split}_index_wide"] = {k: iw[k] for k in ("paraphrase_hits", "false_hits", "n_false_hits",
                                                                  "false_hits_upper_95", "false_hits_by_class")}
        print(f"  {label}:", json.dumps(summary, default=str))
        latency[name] = time_lookups(embedder, dev if args.dev_only else held, t, args.latency_lookups, view, mws,
                                     w, True)
        print(f"  latency ({label}):", latency[name])
        if args.lexical:
            lexical_tier(args, name, embedder, chosen, curves, latency, sweeps, best, pairs, dev, held, dev_index, held_index,
                         readings[w], sims[(view, w)], ok, replays[(view, w)], held_replay)

    verdicts_out = {}
    for name in args.embedders:
        c = chosen[f"{name} + guards"]
        iw = c.get("index_wide", {}).get("heldout")
        verdicts_out[f"{name} + guards"] = None if iw is None else {
            "index_wide_false_hits<=0.5%": iw["false_hits"] <= TARGET_FALSE_HITS,
            "pairwise_false_hits<=0.5%": c["heldout"]["false_hits"] <= TARGET_FALSE_HITS,
            "index_wide_paraphrase_hits>=50%": iw["paraphrase_hits"] >= TARGET_HITS,
            "pairwise_paraphrase_hits>=50%": c["heldout"]["paraphrase_hits"] >= TARGET_HITS,
            "p50_added<=2ms": latency[name]["wall_p50_ms"] <= TARGET_P50_MS}
        c = chosen.get(f"{name} + guards + lexical", {})
        iw = c.get("index_wide", {}).get("heldout")
        if iw is not None:
            verdicts_out[f"{name} + guards + lexical"] = {
                "index_wide_false_hits<=0.5%": iw["false_hits"] <= TARGET_FALSE_HITS,
                "pairwise_false_hits<=0.5%": c["heldout"]["false_hits"] <= TARGET_FALSE_HITS,
                "index_wide_paraphrase_hits>=50%": iw["paraphrase_hits"] >= TARGET_HITS,
                "pairwise_paraphrase_hits>=50%": c["heldout"]["paraphrase_hits"] >= TARGET_HITS,
                "p50_added<=2ms": latency[f"{name} + lexical"]["wall_p50_ms"] <= TARGET_P50_MS}
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"command": "python -m bench.semantic_cache --embedders " + " ".join(args.embedders)
                         + (" --dev-only" if args.dev_only else "") + (" --lexical" if args.lexical else ""),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_average": os.getloadavg()},
              "pairs": {"total": len(pairs), "by_class": dict(Counter(p.kind for p in pairs)),
                        "by_split": dict(Counter(p.split for p in pairs)),
                        "paraphrase_sources": dict(Counter(p.source for p in pairs if p.positive))},
              "targets": {"false_hits": TARGET_FALSE_HITS, "paraphrase_hits": TARGET_HITS,
                          "p50_added_ms": TARGET_P50_MS},
              "guard_refusal_rates": guard_table, "guards_ms_per_pair": guard_s / len(pairs) * 1000,
              "chosen": chosen, "latency": latency, "verdicts": verdicts_out, "curves": curves,
              "dev_sweep": sweeps}
    name = "semantic_cache_dev.json" if args.dev_only else "semantic_cache.json"
    (args.out / name).write_text(json.dumps(report, indent=1))
    if not args.dev_only:
        plot(curves, chosen, args.out / "semantic_cache.png")
    print(json.dumps(verdicts_out, indent=1))
    print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
