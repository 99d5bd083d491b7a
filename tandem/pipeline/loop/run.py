"""One turn of the loop: production traffic -> failure clusters -> teacher rows -> retrained modifier
-> the strict gate against the version served now -> promotion by hot reload, rolled back when the
promoted version fails its live check.

`retrain` picks the parts: the modifier (below) and the domain router (router.py: feedback naming the right
domain -> rows checked against the router's real test and dev prompts -> heads refit on the served encoder
-> its own strict gate -> the same hot-reload promotion and rollback). The router part runs first, after
the export.

Steps of the modifier part (each writes into work_dir; a rerun with the same work_dir resumes):

1. export    the traffic log as failure-analysis rows (tandem traffic export), kept to `traffic.domains`
2. failures  failed requests clustered into named categories (tandem analyze failures)
3. distill   new tasks and answers per category from the teacher (tandem distill), budgeted; replies
             are cached, and what earlier runs paid counts against the budget
4. check     rows whose prompt repeats an item of any eval split (exact or MinHash near-duplicate) dropped
5. split     a share of the rows held out (by id hash) for the gate, never trained on
6. train     LoRA SFT on the served base (rows + replay sources), exported to a GGUF LoRA; cached by key
7. gate      candidate vs the version served now (or the bare base), by the modifiers' gate
             (servable_verdict): held-out loss must drop with a paired interval below zero, the
             held-out tasks must improve (one-sided exact McNemar p < alpha), no `elsewhere` slice may
             fall. Task answers come from a staging `tandem up`; a task with a checker (numeric,
             python) is checked, others are judged by the teacher against its reference answer.
8. promote   the candidate copied into artifacts_dir as modifiers/<domain>-<sha12>.gguf and recorded
             in the manifest; the running router told to reload; the held-out tasks asked live
             through it. A reload that does not serve the new version, a failed request or a live
             score below `min_live_score` restores the previous manifest entry and reloads again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Self

import httpx

from tandem.common.manifest import Manifest, sha256_file, write_json
from tandem.common.recipe_config import dump_config
from tandem.common.stage_cache import cached_state, stage_key, store_state
from tandem.pipeline.loop.admin import reload, reload_and_check
from tandem.pipeline.loop.config import LoopConfig
from tandem.pipeline.loop.router import run_router

log = logging.getLogger("tandem.pipeline.loop")
CANDIDATE, INCUMBENT = "tandem-candidate", "tandem-incumbent"


class LoopStopped(Exception):
    """Nothing to do this turn (too few failures or rows); not an error."""


def served_base(artifacts: Path) -> Path:
    """The base GGUF `tandem up --artifacts` serves: the manifest's base entry, else the embedded default."""
    from tandem.common.model_files import resolve_model_path

    manifest = Manifest(artifacts)
    bases = manifest.entries(kind="base") if manifest.path.is_file() else {}
    if bases:
        path = manifest.verified_path(next(iter(bases)))
        if path.suffix == ".zst":
            from tandem.common.zstd_pack import unpack_cached
            return unpack_cached(path)
        return path
    return resolve_model_path(None)


def incumbent(artifacts: Path, domain: str) -> tuple[Any, Path | None]:
    """(manifest entry, adapter path) of the domain's modifier served now; (None, None) if none."""
    manifest = Manifest(artifacts)
    if not manifest.path.is_file():
        return None, None
    entry = manifest.entries(kind="modifier").get(domain)
    if entry is None or not entry.servable:
        return entry, None
    return entry, manifest.verified_path(domain)


# ---- 1-5: data ---------------------------------------------------------------------------------------

def export_rows(config: LoopConfig, work: Path) -> tuple[Path, dict]:
    from tandem.training.traffic.cli import export

    raw = work / "traffic_rows_all.jsonl"
    counts = export(config.traffic.logs, raw, config.traffic.label, config.traffic.since)
    out, kept = work / "traffic_rows.jsonl", 0
    with open(raw, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for line in src:
            row = json.loads(line)
            domain = row["suite"].removeprefix("traffic/")
            if config.traffic.domains is None or domain in config.traffic.domains:
                dst.write(line)
                kept += 1
    return out, {**dict(counts), "kept_for_domains": kept}


def eval_prompts(config: LoopConfig) -> list[str]:
    """The prompt text of every item of the checked suites and splits."""
    from tandem.eval.datasets import SUITES, load_items
    from tandem.eval.splits import SplitError
    from tandem.training.failures.rows import prompt_text

    texts = []
    for suite in config.check.suites or list(SUITES):
        for split in config.check.splits:
            try:
                items = load_items(suite, split=split)
            except (SplitError, KeyError, FileNotFoundError, ValueError) as exc:  # no such split: nothing to leak
                log.info("check: %s/%s skipped (%s)", suite, split, exc)
                continue
            texts += [prompt_text(item.messages) for item in items]
    return texts


def check_rows(config: LoopConfig, rows: list[dict], work: Path) -> tuple[list[dict], dict]:
    """Drop rows whose user prompt repeats an eval item; cached by the rows and the checked suites."""
    from tandem.training.distill.dedup import TaskDeduplicator

    key = stage_key({"rows": [r["id"] for r in rows], "check": dump_config(config.check)})
    out = work / "check"
    state = cached_state(out, key)
    if state is None:
        started = time.monotonic()
        references = eval_prompts(config)
        dedup = TaskDeduplicator(config.check.dedup)
        dedup.add_reference(references)
        verdicts = {}
        for row in rows:
            prompt = next(m["content"] for m in row["messages"] if m["role"] == "user")
            verdicts[row["id"]] = dedup.duplicate_reason(prompt)
        state = store_state(out, key, {"verdicts": verdicts, "eval_items": len(references),
                                       "seconds": round(time.monotonic() - started, 1)})
    kept = [r for r in rows if not state["verdicts"].get(r["id"])]
    dropped = {rid: why for rid, why in state["verdicts"].items() if why}
    return kept, {"eval_items_checked": state["eval_items"], "dropped": dropped, "kept": len(kept)}


def split_rows(rows: list[dict], share: float) -> tuple[list[dict], list[dict]]:
    """(train, held out) by id hash: a row stays on its side when more rows arrive."""
    def held(row: dict) -> bool:
        return int(hashlib.sha256(f"loop-heldout:{row['id']}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share
    return [r for r in rows if not held(r)], [r for r in rows if held(r)]


# ---- 6: train ---------------------------------------------------------------------------------------

def train(config: LoopConfig, base_gguf: Path, train_rows: list[dict], work: Path) -> tuple[Path, Path, dict]:
    """(candidate GGUF LoRA, base HF folder, SFT metrics); reused when nothing it depends on changed."""
    from tandem.training.lora_export import export_lora_gguf
    from tandem.training.modifiers.data import build_rows
    from tandem.training.modifiers.tool_prompt import render_messages
    from tandem.training.sft import run_sft

    replay = [{"id": r.id, "messages": render_messages(r.messages, r.tools)}
              for r in build_rows(config.replay_sources, "train", config.replay_limit_per_source)] \
        if config.replay_sources else []
    rows = [{"id": r["id"], "messages": r["messages"]} for r in train_rows] + replay
    sft = config.sft.model_copy(update={"base_model": str(base_gguf)})
    out = work / "candidate"
    key = stage_key({"sft": dump_config(sft), "base_sha256": sha256_file(base_gguf),
                     "rows": hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()})
    state = cached_state(out, key)
    adapter = out / f"{config.domain}.gguf"
    if state is not None and adapter.is_file() and sha256_file(adapter) == state["sha256"]:
        log.info("train: candidate up to date (key %s), reused", key[:12])
        return adapter, Path(state["base_hf_dir"]), state["metrics"]
    result = run_sft(sft, rows, [])
    export_lora_gguf(result.adapter_dir, result.base_hf_dir, adapter)
    if result.base_gguf_sha256 is None:
        raise ValueError("the base has no GGUF sha256: serving could not check the adapter's base")
    state = store_state(out, key, {"sha256": sha256_file(adapter), "base_hf_dir": str(result.base_hf_dir),
                                   "metrics": {**result.metrics, "train_rows": len(train_rows),
                                               "replay_rows": len(replay)}})
    return adapter, Path(state["base_hf_dir"]), state["metrics"]


# ---- 7: gate ----------------------------------------------------------------------------------------

JUDGE_SYSTEM = "You grade answers of an assistant against a reference answer. Reply with one word: yes or no."


def judge_messages(task: str, reference: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": f"Task:\n{task}\n\nReference answer:\n{reference}\n\nAnswer to grade:\n"
             f"{answer}\n\nDoes the answer to grade do what the task asks as well as the reference answer does, "
             "in the same form? Reply with one word: yes or no."}]


def parse_verdict(reply: str) -> float | None:
    words = reply.strip().lower().split()
    word = words[0].strip(".,!:;\"'") if words else ""
    return 1.0 if word == "yes" else 0.0 if word == "no" else None


async def ask(client: httpx.AsyncClient, url: str, model: str, task: str, max_tokens: int,
              headers: dict[str, str] | None = None) -> tuple[int, str]:
    response = await client.post(f"{url}/chat/completions", headers=headers, json={
        "model": model, "messages": [{"role": "user", "content": task}], "max_tokens": max_tokens,
        "temperature": 0.0})
    if response.status_code != 200:
        return response.status_code, response.text[:300]
    return 200, response.json()["choices"][0]["message"]["content"] or ""


class Grader:
    """Scores answers to held-out rows: by the row's checker, else by the teacher as judge (cached and
    counted against the loop's budget like every teacher request)."""

    def __init__(self, config: LoopConfig, cache_path: Path):
        self.config, self.cache_path = config, cache_path
        self.unparsed = 0
        self.budget_stopped: str | None = None

    async def __aenter__(self) -> Self:
        from tandem.training.distill.budget import Budget
        from tandem.training.distill.cache import ResponseCache
        from tandem.training.distill.pipeline import teacher_price
        from tandem.training.distill.teacher import Teacher

        distill = self.config.distill
        teacher = distill.teacher.model_copy(update={"model": self.config.gate.judge_model or distill.teacher.model,
                                                     "max_tokens": 8})
        self.cache = ResponseCache(self.cache_path)
        price_of = self._distill_config(teacher)
        self.budget = Budget.resumed(teacher_price(price_of), distill.budget.max_usd, distill.budget.max_tokens,
                                     *self.cache.paid_tokens())
        self.teacher = Teacher(teacher, self.cache, self.budget)
        return self

    def _distill_config(self, teacher):
        from tandem.training.distill.config import DistillConfig
        return DistillConfig(failures=Path("unused"), teacher=teacher, budget=self.config.distill.budget)

    async def __aexit__(self, *exc) -> None:
        await self.teacher.close()
        self.cache.close()

    async def score(self, row: dict, answer: str) -> float:
        from tandem.eval.math_answers import extract_number, numbers_match
        from tandem.training.distill.checks import check_python

        task = row["messages"][0]["content"]
        reference = row["messages"][-1]["content"]
        if row.get("check") == "numeric":
            gold = extract_number(reference)
            return float(gold is not None and numbers_match(extract_number(answer), gold))
        if row.get("check") == "python":
            return float(await check_python(task, answer) is None)
        from tandem.training.distill.budget import BudgetExhausted

        try:
            reply = await self.teacher.complete(judge_messages(task, reference, answer), 0.0, "judge")
        except BudgetExhausted as exc:
            self.budget_stopped = str(exc)
            return 0.0
        verdict = parse_verdict(reply)
        if verdict is None:
            self.unparsed += 1
            return 0.0
        return verdict


async def answer_all(url: str, model: str, rows: list[dict], max_tokens: int, timeout_s: float,
                     headers: dict[str, str] | None = None, concurrency: int = 2) -> list[tuple[int, str]]:
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=timeout_s, headers={"authorization": "Bearer tandem"}) as client:
        async def one(row: dict) -> tuple[int, str]:
            async with semaphore:
                return await ask(client, url, model, row["messages"][0]["content"], max_tokens, headers)
        return list(await asyncio.gather(*(one(r) for r in rows)))


async def grade_all(grader: Grader, rows: list[dict], answers: list[tuple[int, str]]) -> list[float]:
    return list(await asyncio.gather(*(grader.score(r, a) if status == 200 else _zero()
                                       for r, (status, a) in zip(rows, answers, strict=True))))


async def _zero() -> float:
    return 0.0


def gate(config: LoopConfig, base_gguf: Path, base_hf: Path, candidate: Path, current: Path | None,
         heldout: list[dict], work: Path) -> dict[str, Any]:
    from tandem.training.modifiers.gate import paired_difference, score_summary, servable_verdict
    from tandem.training.modifiers.heldout import heldout_losses
    from tandem.training.modifiers.task_eval import BASE_MODEL, score_matrix, serving, stage_artifacts

    g = config.gate
    key = stage_key({"candidate": sha256_file(candidate), "current": sha256_file(current) if current else None,
                     "base": sha256_file(base_gguf), "heldout": heldout,
                     "gate": {k: v for k, v in dump_config(g).items() if k != "heldout_threads"}})  # speed only
    out = work / "gate"
    state = cached_state(out, key)
    if state is not None:
        log.info("gate: verdict up to date (key %s), reused", key[:12])
        return state
    losses = heldout_losses(base_gguf, candidate, base_hf, heldout, g.heldout_max_seq_len, g.heldout_threads,
                            reference_adapter=current)
    # staged under names of their own: the served file and the candidate may share a file name
    inputs = work / "staging-inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    adapters = {}
    for model, path in ((CANDIDATE, candidate), (INCUMBENT, current)):
        if path is not None:
            adapters[model] = inputs / f"{model.removeprefix('tandem-')}.gguf"
            shutil.copy2(path, adapters[model])
    reference = INCUMBENT if current else BASE_MODEL
    stage_artifacts(work / "staging", base_gguf, adapters)
    with serving(work / "staging", slots=1) as url:
        answers = {m: asyncio.run(answer_all(url, m, heldout, g.max_tokens, config.promote.timeout_s))
                   for m in (reference, CANDIDATE)}
        elsewhere = score_matrix(url, g.elsewhere, {name: [reference, CANDIDATE] for name in g.elsewhere},
                                 g.confidence) if g.elsewhere else {}

    async def grade() -> tuple[dict[str, list[float]], int]:
        async with Grader(config, work / "teacher.sqlite") as grader:
            scores = {m: await grade_all(grader, heldout, a) for m, a in answers.items()}
            if grader.budget_stopped:
                raise LoopStopped(f"the teacher budget ran out while judging ({grader.budget_stopped}): no verdict")
            return scores, grader.unparsed
    scores, unparsed = asyncio.run(grade())
    task = {"base": score_summary(scores[reference], g.confidence),
            "modifier": score_summary(scores[CANDIDATE], g.confidence),
            "difference": paired_difference(scores[reference], scores[CANDIDATE], g.confidence)}
    falls = {name: paired_difference([r["score"] for r in s["items"][reference]],
                                     [r["score"] for r in s["items"][CANDIDATE]], g.confidence)
             for name, s in elsewhere.items()}
    servable, reason = servable_verdict(losses, task, g.min_loss_drop, g.alpha, falls)
    log.info("gate: %s (%s)", "PASS" if servable else "FAIL", reason)
    return store_state(out, key, {
        "servable": servable, "reason": reason, "reference": "served adapter" if current else "base",
        "heldout": {k: {m: v for m, v in d.items() if m not in ("row_nll", "row_tokens")} for k, d in losses.items()
                    if k != "key"},
        "task": task, "elsewhere": falls, "judge_unparsed": unparsed,
        "answers": {m: [a for _, a in rows] for m, rows in answers.items()}, "scores": scores})


# ---- 8: promote -------------------------------------------------------------------------------------

def serves(versions: dict[str, str], model: str, adapter_sha: str | None) -> bool:
    """Whether the reloaded router lists `model` at that adapter (None: does not list it)."""
    if adapter_sha is None:
        return model not in versions
    return versions.get(model, "").endswith(f"+{adapter_sha[:16]}")


def promote(config: LoopConfig, candidate: Path, base_gguf: Path, verdict: dict, heldout: list[dict],
            trained_on: dict, run_info: dict) -> dict[str, Any]:
    artifacts, domain, p = config.artifacts_dir, config.domain, config.promote
    manifest = Manifest(artifacts)
    previous = manifest.entries().get(domain)
    digest = sha256_file(candidate)
    target = artifacts / "modifiers" / f"{domain}-{digest[:12]}.gguf"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file():
        shutil.copy2(candidate, target)
    base_sha = sha256_file(base_gguf)
    manifest.record(domain, "modifier", [target], base_sha256=base_sha, config=dump_config(config),
                    metrics={"gate": {k: verdict[k] for k in ("reason", "heldout", "task", "elsewhere")}},
                    servable=True, extra={"trained_on": trained_on, "servable": True, "reason": verdict["reason"],
                                          "loop": run_info,
                                          "replaces": previous.files[0].sha256 if previous else None})
    result: dict[str, Any] = {"promoted": True, "adapter": str(target.relative_to(artifacts)), "sha256": digest,
                              "previous_sha256": previous.files[0].sha256 if previous else None}
    if p.router_url is None:
        result["reloaded"] = False
        return result
    model = f"tandem-{domain}"
    failure = reload_and_check(
        p.router_url, p.timeout_s, result,
        lambda reloaded: None if serves(reloaded["versions"], model, digest) else
        f"the reloaded stack does not serve {model} at {digest[:16]}: {reloaded['versions']}",
        lambda: live_check(config, verdict, heldout))
    if failure is None:
        return result
    log.error("promotion failed its check (%s): rolling back", failure)
    manifest.put(domain, previous)
    back = reload(p.router_url, p.timeout_s)
    restored = serves(back["versions"], model, previous.files[0].sha256 if previous and previous.servable else None)
    return {**result, "promoted": False, "rolled_back": True, "why": failure, "restored": restored,
            "versions_after_rollback": back["versions"]}


def live_check(config: LoopConfig, verdict: dict, heldout: list[dict]) -> dict[str, Any]:
    """The held-out tasks asked through the running router (uncached, unlogged), graded as in the gate."""
    p = config.promote
    rows = heldout[: p.check_items] if p.check_items else heldout
    url = p.router_url.rstrip("/") + "/v1"
    headers = {"cache-control": "no-store", "x-tandem-no-log": "1"}
    answers = asyncio.run(answer_all(url, f"tandem-{config.domain}", rows, config.gate.max_tokens, p.timeout_s,
                                     headers))

    async def grade() -> tuple[list[float], str | None]:
        async with Grader(config, config.work_dir / "teacher.sqlite") as grader:
            return await grade_all(grader, rows, answers), grader.budget_stopped
    scores, budget_stopped = asyncio.run(grade())
    failed = [status for status, _ in answers if status != 200]
    score = sum(scores) / len(scores)
    gate_score = sum(verdict["scores"][CANDIDATE][: len(rows)]) / len(rows)
    floor = p.min_live_score if p.min_live_score is not None else gate_score - p.tolerance
    why = (f"{len(failed)} live requests failed ({failed})" if failed else
           f"the teacher budget ran out while judging the live answers ({budget_stopped})" if budget_stopped else
           f"live score {score:.3f} < {floor:.3f}" if score < floor else None)
    return {"passed": why is None, "why": why, "score": score, "gate_score": gate_score, "floor": floor,
            "items": len(rows)}


# ---- the turn ---------------------------------------------------------------------------------------

def run_loop(config: LoopConfig) -> dict[str, Any]:
    from tandem.training.distill.config import DistillConfig
    from tandem.training.distill.pipeline import distill
    from tandem.training.failures.analyze import analyze
    from tandem.training.failures.config import FailureAnalysisConfig
    from tandem.training.failures.rows import load_failures
    from tandem.training.modifiers.data import trained_on as replay_trained_on

    started = time.monotonic()
    work = config.work_dir
    work.mkdir(parents=True, exist_ok=True)
    write_json(work / "config.json", dump_config(config))
    report: dict[str, Any] = {"name": config.name, "domain": config.domain, "retrain": config.retrain,
                              "started": time.time()}
    timings: dict[str, float] = {}
    begun: dict[str, float] = {}

    def step(name: str):
        begun[name] = time.monotonic()
        log.info("loop %s: %s", config.name, name)

    def done(name: str):
        timings[name] = round(time.monotonic() - begun[name], 1)

    try:
        step("export")
        rows_path, report["traffic"] = export_rows(config, work)
        done("export")

        if "router" in config.retrain:  # first: cheap, and independent of the modifier's failures and teacher
            step("router")
            report["router"] = run_router(config, work, work / "traffic_rows_all.jsonl")
            done("router")

        if "modifier" in config.retrain:
            step("failures")
            f = config.failures
            failures_config = FailureAnalysisConfig(results=[rows_path], out_dir=work / "failures", pass_score=f.pass_score,
                                                    embed_text=f.embed_text, k_min=f.k_min, k_max=f.k_max,
                                                    top_terms=f.top_terms, examples=f.examples)
            found = load_failures([rows_path], f.pass_score)
            if len(found.rows) < f.min_failures:
                raise LoopStopped(f"{len(found.rows)} failed requests in the traffic (min_failures {f.min_failures})")
            failures = analyze(failures_config)
            report["failures"] = {"failures": failures["failures"], "evaluated": failures["evaluated"],
                                  "categories": [{"name": c["name"], "size": c["size"]} for c in failures["categories"]]}
            done("failures")

            step("distill")
            d = config.distill
            distill_config = DistillConfig(
                failures=work / "failures" / "failures.json", out_dir=work / "distill", teacher=d.teacher, budget=d.budget,
                tasks_per_category=d.tasks_per_category, tasks_per_request=d.tasks_per_request,
                examples_per_request=d.examples_per_request, training_data=d.training_data, dedup=d.dedup,
                check_answers=d.check_answers, cache=work / "teacher.sqlite")
            stats = asyncio.run(distill(distill_config))
            report["distill"] = {k: v for k, v in stats.items() if k != "per_category"}
            done("distill")

            step("check")
            rows = [json.loads(line) for line in (work / "distill" / "sft.jsonl").read_text().splitlines() if line]
            rows, report["check"] = check_rows(config, rows, work)
            done("check")

            train_rows, heldout = split_rows(rows, config.gate.heldout_share)
            report["rows"] = {"train": len(train_rows), "heldout": len(heldout)}
            if len(heldout) < config.gate.min_heldout or not train_rows:
                raise LoopStopped(f"{len(train_rows)} train and {len(heldout)} held-out rows "
                                  f"(gate.min_heldout {config.gate.min_heldout}): ask the teacher for more")

            step("train")
            base_gguf = served_base(config.artifacts_dir)
            candidate, base_hf, report["train"] = train(config, base_gguf, train_rows, work)
            done("train")

            step("gate")
            _, current = incumbent(config.artifacts_dir, config.domain)
            verdict = gate(config, base_gguf, base_hf, candidate, current, heldout, work)
            report["gate"] = {k: v for k, v in verdict.items() if k not in ("answers", "key")}
            done("gate")

            if verdict["servable"] and config.promote.enabled:
                step("promote")
                trained = {**replay_trained_on(config.replay_sources),
                           **(json.loads((work / "distill" / "manifest.json").read_text())["artifacts"]["distilled-data"]
                              ["extra"].get("trained_on") or {})}
                report["promotion"] = promote(config, candidate, base_gguf, verdict, heldout, trained,
                                              {"name": config.name, "work_dir": str(work), "at": time.time(),
                                               "traffic_rows": report["traffic"].get("kept_for_domains")})
                done("promote")
            else:
                report["promotion"] = {"promoted": False, "why": "the candidate did not pass the gate" if
                                       config.promote.enabled else "promote.enabled is false"}
            report["status"] = "promoted" if report["promotion"]["promoted"] else \
                "rolled_back" if report["promotion"].get("rolled_back") else "not_promoted"
    except LoopStopped as exc:
        report["status"], report["why"] = "stopped", str(exc)
        log.warning("loop %s stopped: %s", config.name, exc)
    parts = {}
    if "modifier" in config.retrain:
        parts["modifier"] = report["status"]
    if "router" in config.retrain and "router" in report:
        parts["router"] = report["router"]["status"]
    report["parts"] = parts
    report["status"] = combined_status(list(parts.values()))
    report["timings_s"] = timings
    report["seconds"] = round(time.monotonic() - started, 1)
    write_json(work / "report.json", report)
    history = config.artifacts_dir / "reports" / "loop" / f"{config.name}-{int(report['started'])}.json"
    write_json(history, report)
    return report


def combined_status(statuses: list[str]) -> str:
    """A turn's status over its parts: the worst of rolled_back, not_promoted, then promoted, else stopped."""
    for status in ("rolled_back", "not_promoted", "promoted"):
        if status in statuses:
            return status
    return "stopped"


def internal_token_present() -> bool:
    return bool(os.environ.get("TANDEM_INTERNAL_TOKEN") or os.environ.get("TANDEM_INTERNAL_TOKEN_FILE"))
