"""Score base and candidate modifiers on every slice, on whatever machine has the cores, for `tandem build`.

    python -m tandem.training.modifiers.task_matrix --staging build/modifiers/staging-artifacts \\
        --out build/task-matrix.json --replicas 8 --slots 1 --threads 1

The staging folder is the one `tandem build` writes (the base GGUF plus each candidate adapter,
`stage_artifacts`). The same slices as the build's (`evaluation_plan`: each domain's task from
`configs/modifiers/<domain>.yaml`, the other modifiers on `--cross-domain-limit` items of it,
BFCL irrelevance for every model) are answered through `tandem up` stacks (the served path) and
scored by the evaluation harness. `tandem build --task-matrix <out>` then gates on this file; it
refuses it unless the adapter sha256s recorded here are the files it exported.

`--base-only` asks only `tandem-base`, on the slices the candidates would get; a staging folder with
no manifest is made holding the base alone. The base's answers do not depend on any adapter, so they
can be scored while the adapters still train, and a later run reuses them with `--base-from`.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from tandem.common.manifest import Manifest, sha256_file
from tandem.common.recipe_config import load_config
from tandem.training.modifiers.config import ModifierConfig
from tandem.training.modifiers.evaluation_plan import adapter_digests, evaluation_plan
from tandem.training.modifiers.task_eval import BASE_MODEL, score_matrix, serving_pool, stage_artifacts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tandem.training.modifiers.task_matrix", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--staging", type=Path, required=True, help="Staging artifacts folder (base + candidates).")
    parser.add_argument("--out", type=Path, required=True, help="Where the matrix JSON goes.")
    parser.add_argument("--config-dir", type=Path, default=Path("configs/modifiers"))
    parser.add_argument("--domains", default="code,reasoning,automation")
    parser.add_argument("--cost-domains", default="", help="Domains without a candidate whose task measures "
                        "the candidates' cost only (base + every candidate on --cross-domain-limit items).")
    parser.add_argument("--cross-domain-limit", type=int, default=100)
    parser.add_argument("--irrelevance-limit", type=int, default=120)
    parser.add_argument("--replicas", type=int, default=1, help="Independent `tandem up` stacks.")
    parser.add_argument("--slots", type=int, default=1, help="Slots per worker (1: every answer decoded alone).")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads per worker.")
    parser.add_argument("--base-from", type=Path, default=None,
                        help="An earlier matrix of the same slices and base: reuse its base answers, ask only the "
                        "candidates on the same items (the base GGUF's sha256 must match).")
    parser.add_argument("--first", default="", help="Slices to score first, e.g. irrelevance,reasoning (the "
                        "matrix file is rewritten after every slice).")
    parser.add_argument("--concurrency", type=int, default=1, help="Requests in flight per model and stack.")
    parser.add_argument("--base-only", action="store_true", help="Ask only tandem-base (no adapter needed); "
                        "the matrix feeds a later run's --base-from.")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every domain's recipe.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    configs = [load_config(ModifierConfig, args.config_dir / f"{d}.yaml", args.overrides)
               for d in args.domains.split(",") if d]
    if args.base_only and not (args.staging / "manifest.json").is_file():
        from tandem.common.model_files import resolve_model_path

        stage_artifacts(args.staging, resolve_model_path(configs[0].base_model), {})
    manifest = Manifest(args.staging)
    candidates = [] if args.base_only else configs
    adapters = {f"tandem-{c.domain}": args.staging / manifest.entry(c.domain).files[0].path for c in candidates}
    scales = {f"tandem-{c.domain}": manifest.entry(c.domain).lora_scale for c in candidates}  # as staged, as served
    guards = {f"tandem-{c.domain}": manifest.entry(c.domain).tool_fit_min_similarity for c in candidates}
    groundings = {f"tandem-{c.domain}": manifest.entry(c.domain).tool_args_min_grounding for c in candidates}
    cost_configs = [load_config(ModifierConfig, args.config_dir / f"{d}.yaml", args.overrides)
                    for d in args.cost_domains.split(",") if d]
    slices, plan, full = evaluation_plan(configs, adapters, args.cross_domain_limit, args.irrelevance_limit,
                                         cost_configs)
    if args.base_only:
        plan = {name: [BASE_MODEL] for name in plan}
    base_rows, base_from = None, None
    if args.base_from:
        earlier = json.loads(args.base_from.read_text())
        base_sha = manifest.entry("base").files[0].sha256
        if earlier.get("base_sha256", base_sha) != base_sha:  # matrices written before 2026-12-02 lack the field
            raise SystemExit(f"{args.base_from} was not scored on this base ({base_sha[:12]})")
        base_rows = {name: entry["items"]["tandem-base"] for name, entry in earlier["matrix"].items()
                     if name in slices and "tandem-base" in entry["items"]}
        base_from = {"path": str(args.base_from), "sha256": sha256_file(args.base_from), "slices": sorted(base_rows),
                     "base_sha256_recorded": "base_sha256" in earlier}
    order = [n for n in args.first.split(",") if n in slices] + [n for n in slices if n not in args.first.split(",")]
    started = time.monotonic()
    matrix: dict = {}

    def write(complete: bool) -> None:  # after every slice: a stopped run keeps the slices it finished
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "adapters_sha256": adapter_digests(adapters), "adapters_lora_scale": scales, "adapters_tool_fit": guards,
            "adapters_tool_grounding": groundings, "base_sha256": manifest.entry("base").files[0].sha256,
            "base_from": base_from, "matrix": matrix, "complete": complete,
            "settings": {"replicas": args.replicas, "slots": args.slots, "threads": args.threads,
                         "concurrency": args.concurrency, "cross_domain_limit": args.cross_domain_limit,
                         "irrelevance_limit": args.irrelevance_limit, "cost_domains": args.cost_domains,
                         "order": order, "sampling": "greedy (temperature 0, seed 0)"},
            "wall_s": time.monotonic() - started}))

    with serving_pool(args.staging, args.replicas, args.threads, args.slots) as urls:
        for name in order:
            matrix.update(score_matrix(urls, {name: slices[name]}, {name: plan[name]},
                                       configs[0].evaluation.confidence,
                                       cross_limit=args.cross_domain_limit or None, concurrency=args.concurrency,
                                       full_slices=full, base_rows=base_rows))
            write(complete=len(matrix) == len(order))
    for name, entry in matrix.items():
        print(name, {m: f"{s['score']:.3f} (n={s['n']})" for m, s in entry["models"].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
