"""What the larger-encoder probe's encoder would cost a request: the base model (SmolLM2-135M Q4_1 through
llama.cpp) reading a prompt, against the served MiniLM int8 graph (ONNX Runtime), on one CPU thread.

    python -m bench.routing.base_encoder_cost [--runs 3] [--calls 20]

CPU time (process time) of one forward pass over 32 and 256 tokens (the served router reads up to 256,
head+tail); llama.cpp's is a prefill of the prompt (`Llama.eval`, one batch), the work an encoder built
on the base model would add to every routed request. Median and p99 over `--calls`, each model timed
`--runs` times in turn; the median run is reported. Writes bench/results/routing_base_encoder_cost.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from bench.routing.encoder_graphs import time_calls
from tandem.common.manifest import write_json
from tandem.common.model_files import embedded_model_path
from tandem.services.engine.llama_loader import load_llama
from tandem.services.routing.packaged_encoder import packaged_encoder_path

LENGTHS = (32, 256)


def time_prefills(llm, tokens: int, calls: int) -> list[float]:
    ids = np.random.default_rng(0).integers(1000, 40000, size=tokens).tolist()
    times = []
    for call in range(calls + 2):
        llm.reset()
        start = time.process_time()
        llm.eval(ids)
        if call >= 2:  # two warm-up calls
            times.append((time.process_time() - start) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--out", default="bench/results/routing_base_encoder_cost.json")
    args = parser.parse_args(argv)
    llm = load_llama(str(embedded_model_path()), n_ctx=512, n_batch=512, n_threads=1, n_threads_batch=1)
    runs: dict[str, dict[int, list[tuple[float, float]]]] = {m: {t: [] for t in LENGTHS} for m in ("minilm-int8", "smollm2-q4_1")}
    for _ in range(args.runs):
        for tokens in LENGTHS:
            for name, times in (("minilm-int8", time_calls(packaged_encoder_path(), tokens, args.calls)),
                                ("smollm2-q4_1", time_prefills(llm, tokens, args.calls))):
                runs[name][tokens].append((statistics.median(times), float(np.percentile(times, 99))))
    load = os.getloadavg()[0]
    results = {name: {str(t): {"p50_ms": statistics.median(r[0] for r in rs), "p99_ms": statistics.median(r[1] for r in rs),
                               "runs": rs} for t, rs in by_tokens.items()} for name, by_tokens in runs.items()}
    print(f"CPU ms per forward pass, 1 thread, median of {args.runs} runs of {args.calls} calls (load average {load:.2f})")
    print(f"{'encoder':>14} " + " ".join(f"{t:>4} tok p50 {t:>4} tok p99" for t in LENGTHS))
    for name, r in results.items():
        print(f"{name:>14} " + " ".join(f"{r[str(t)]['p50_ms']:>12.1f} {r[str(t)]['p99_ms']:>12.1f}" for t in LENGTHS))
    for t in LENGTHS:
        ratio = results["smollm2-q4_1"][str(t)]["p50_ms"] / results["minilm-int8"][str(t)]["p50_ms"]
        print(f"{t} tokens: SmolLM2 / MiniLM p50 = {ratio:.1f}x")
    write_json(Path(args.out), {"load_average": load, "runs": args.runs, "calls": args.calls, "results": results})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
