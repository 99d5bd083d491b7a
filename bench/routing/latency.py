"""Domain-router latency, in process, by prompt-length bucket and over the stated length mix.

    python -m bench.routing.latency [--config configs/routing/router.yaml] [--threads 1] [--per-bucket 300]

Loads the built router the way the service does (manifest + sha256), routes prompts of 16, 64,
256 and 512 tokens (hand-written and held-out test prompts joined to length), and prints one
table per mode: `cascade` (what serving runs) and `embedding` (second stage on every request).
Writes JSON to bench/results/routing_latency.json. Shared machines are noisy: the load average
is recorded with the numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tandem.common.manifest import write_json
from tandem.common.recipe_config import load_config
from tandem.services.routing.onnx_router import OnnxRouter
from tandem.training.routing.config import RouterRecipeConfig
from tandem.training.routing.dataset import build_examples, load_handwritten
from tandem.training.routing.latency import measure, prompt_pool


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/routing/router.yaml", help="Router recipe (default: %(default)s).")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: the artifact's).")
    parser.add_argument("--per-bucket", type=int, default=300, help="Requests timed per bucket.")
    parser.add_argument("--out", default="bench/results/routing_latency.json", help="JSON output path.")
    parser.add_argument("--handwritten-only", action="store_true",
                        help="Build prompts from the hand-written set only (no data packages needed).")
    args = parser.parse_args(argv)

    config = load_config(RouterRecipeConfig, args.config)
    test = [] if args.handwritten_only else [ex.text for ex in build_examples(config) if ex.split == "test"]
    texts = prompt_pool([ex.text for ex in load_handwritten(config.handwritten)], test)
    results = {}
    for mode, cascade in (("cascade", True), ("embedding", False)):
        router = OnnxRouter(config.artifacts_dir, config.domains, entry=config.name, threads=args.threads,
                            cascade=cascade)
        results[mode] = measure(router, texts, per_bucket=args.per_bucket)
        print(f"\n{mode} (threads={results[mode]['threads']}, load {results[mode]['load']})")
        print(f"{'tokens':>8} {'p50 ms':>8} {'p99 ms':>8} {'cpu p50':>8} {'cpu p99':>8} {'1st-stage':>10}")
        for bucket, m in results[mode]["buckets"].items():
            print(f"{bucket:>8} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f} {m['cpu_p50_ms']:>8.2f} {m['cpu_p99_ms']:>8.2f} "
                  f"{m['first_stage_share']:>10.2f}")
        r = results[mode]
        print(f"{'mix':>8} {r['mix_p50_ms']:>8.2f} {r['mix_p99_ms']:>8.2f} {r['mix_cpu_p50_ms']:>8.2f} "
              f"{r['mix_cpu_p99_ms']:>8.2f}   mix={json.dumps(r['mix'])}")
    write_json(Path(args.out), {"max_tokens": router.encoder.max_tokens, "results": results})
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
