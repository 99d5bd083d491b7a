"""The compression recipe: setup -> run -> save.

    source -> prune -> recover -> awq -> gguf_f16 -> quantize -> zstd -> calibrate

Each stage reads the previous stage's output folder, writes its own (`<work>/<nn>-<stage>/`) and
a `stage.json` with its figures and a key: the hash of its config and of every config before it.
A rerun skips each stage whose key still matches, so a crash or a changed late stage costs only
the stages after it. Every stage is measured the same way: size on disk, bits per weight, zero
fraction of the block weights, perplexity on the same held-out token windows and ARC-Easy
accuracy on the same test items (transformers for HF folders, llama.cpp for GGUF files).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from tandem.common.manifest import Manifest, sha256_file, write_json
from tandem.common.recipe_config import dump_config
from tandem.common.stage_cache import cached_state, stage_key, store_state
from tandem.compression import report as report_mod
from tandem.compression import sizing
from tandem.compression.config import CompressConfig
from tandem.compression.report import StageResult

log = logging.getLogger(__name__)


class CompressionError(Exception):
    """The recipe cannot run as configured; the message says what to change."""


class CompressionRecipe:
    def __init__(self, config: CompressConfig):
        self.config = config
        self.work = config.stage_dir
        self.reports = config.artifacts_dir / "reports" / "compression" / config.run_name
        self.results: list[StageResult] = []
        self.calibration: dict | None = None

    # ---------------------------------------------------------------- setup
    def setup(self) -> None:
        """Check tools and inputs before heavy work; tokenize the shared data once."""
        from tandem.compression.llama_tools import build_tools, find_tool

        cfg = self.config
        torch_threads = cfg.threads or os.cpu_count() or 1
        problems = []
        if cfg.gguf.build_tools and not (find_tool("llama-quantize") and find_tool("llama-imatrix")):
            build_tools()
        self.use_imatrix = cfg.gguf.imatrix == "required" or (cfg.gguf.imatrix == "auto" and find_tool("llama-imatrix")
                                                        and find_tool("llama-quantize"))
        if cfg.gguf.imatrix == "required" and not (find_tool("llama-imatrix") and find_tool("llama-quantize")):
            problems.append("gguf.imatrix=required needs llama-imatrix and llama-quantize: set gguf.build_tools=true")
        if problems:
            raise CompressionError("cannot run the compression recipe:\n  " + "\n  ".join(problems))

        import torch

        from tandem.compression import hf_io
        from tandem.compression.task_eval import arc_easy_items
        from tandem.compression.text_data import load_texts, token_windows

        torch.set_num_threads(torch_threads)
        torch.manual_seed(cfg.seed)
        self.work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        self.source_dir = self._source_dir()
        self.source_seconds = time.perf_counter() - started
        self.tokenizer = hf_io.load_tokenizer(self.source_dir)
        self.bos_id = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None \
            else self.tokenizer.eos_token_id
        d = cfg.data
        self.calib_texts = load_texts(d.calibration)
        self.calib_windows = token_windows(self.tokenizer, self.calib_texts, d.seq_len,
                                           d.seq_len * d.calibration_samples)
        self.heldout_windows = token_windows(self.tokenizer, load_texts(d.heldout), d.seq_len, d.heldout_tokens)
        self.arc_test = arc_easy_items("test", cfg.eval.arc_items)
        self.arc_dev = arc_easy_items("dev", cfg.eval.calibration_dev_items)

    def _source_dir(self) -> Path:
        from tandem.common.model_files import resolve_model_path

        model = self.config.source.model
        if model != "embedded" and Path(model).is_dir():
            return Path(model)
        from tandem.compression.gguf_to_hf import dequantize_gguf_to_hf

        return dequantize_gguf_to_hf(resolve_model_path(model), self.work / "00-source")

    # ------------------------------------------------------------------ run
    def run(self) -> list[StageResult]:
        cfg = self.config
        stages = [("source", True, self._source), ("prune", cfg.prune.enabled, self._prune),
                  ("recover", cfg.recovery.enabled, self._recover), ("awq", cfg.awq.enabled, self._awq),
                  ("gguf_f16", True, self._gguf_f16), ("quantize", True, self._quantize),
                  ("zstd", cfg.zstd.enabled, self._zstd), ("calibrate", cfg.calibration.enabled, self._calibrate)]
        key = stage_key({"source": cfg.source.model, "data": dump_config(cfg.data), "eval": dump_config(cfg.eval),
                          "seed": cfg.seed})
        self.current: Path = self.source_dir
        for index, (name, enabled, step) in enumerate(stages):
            if not enabled:
                continue
            key = stage_key({"previous": key, "stage": name, "config": self._stage_config(name)})
            out = self.work / f"{index:02d}-{name}"
            state = cached_state(out, key)
            if state is not None:
                log.info("stage %s: up to date, reusing %s", name, out)
            else:
                log.info("stage %s: running", name)
                if out.exists() and name != "source":
                    shutil.rmtree(out)
                out.mkdir(parents=True, exist_ok=True)
                result, output = step(out)
                state = store_state(out, key, {"output": str(output), "result": result.model_dump()})
            self.current = Path(state["output"])
            self.results.append(StageResult.model_validate(state["result"]))
            if name == "calibrate":
                self.calibration = state["result"]["extra"]["calibration"]
        return self.results

    def _stage_config(self, name: str) -> dict:
        section = {"prune": "prune", "recover": "recovery", "awq": "awq", "quantize": "gguf", "gguf_f16": "gguf",
                   "zstd": "zstd", "calibrate": "calibration"}.get(name)
        return dump_config(getattr(self.config, section)) if section else {}

    # --------------------------------------------------------------- stages
    def _source(self, out: Path):
        from tandem.compression import hf_io

        model = hf_io.load_model(self.current)
        return self._hf_result("source", model, self.current, self.source_seconds), self.current

    def _prune(self, out: Path):
        from tandem.compression import hf_io
        from tandem.compression.prune import prune

        model, keys = hf_io.load_model(self.current), hf_io.own_keys(self.current)
        started = time.perf_counter()
        prune(model, self.tokenizer, self.calib_windows, self.config.prune)
        hf_io.save_dense(model, self.tokenizer, keys, self.current, out)
        seconds = time.perf_counter() - started
        p = self.config.prune
        return self._hf_result("prune", hf_io.load_model(out), out, seconds,
                               note=f"{p.method} {p.structure} {p.sparsity:.0%}"), out

    def _recover(self, out: Path):
        from tandem.compression import hf_io
        from tandem.compression.recovery import recover

        model, keys = hf_io.load_model(self.current), hf_io.own_keys(self.current)
        started = time.perf_counter()
        merged, figures = recover(model, self.calib_windows, self.config.recovery, self.config.seed)
        hf_io.save_dense(merged, self.tokenizer, keys, self.current, out)
        seconds = time.perf_counter() - started
        return self._hf_result("recover", hf_io.load_model(out), out, seconds, extra=figures,
                               note=f"LoRA r={self.config.recovery.rank}, {self.config.recovery.steps} steps, "
                                    "mask re-applied after merge"), out

    def _awq(self, out: Path):
        from tandem.compression import hf_io
        from tandem.compression.awq import apply_awq, load_packed, save_packed

        model, keys = hf_io.load_model(self.current), hf_io.own_keys(self.current)
        started = time.perf_counter()
        apply_awq(model, self.tokenizer, self.calib_windows, self.config.awq)
        dense = hf_io.save_dense(model, self.tokenizer, keys, self.current, out / "hf")
        seconds = time.perf_counter() - started
        extra: dict = {}
        if self.config.awq.export_packed:
            packed = save_packed(model, self.tokenizer, out / "packed-w4a16")
            packed_result = self._hf_result("awq_packed", load_packed(packed), packed, 0.0)
            extra["packed"] = packed_result.model_dump()
        return self._hf_result("awq", hf_io.load_model(dense), dense, seconds, extra=extra,
                               note="AWQ scales folded into float weights (what GGUF quantizes); the packed "
                                    f"{self.config.awq.scheme} checkpoint for vLLM is in extra.packed"), dense

    def _gguf_f16(self, out: Path):
        from tandem.compression.gguf_export import convert_hf

        started = time.perf_counter()
        path = convert_hf(self.current, out / f"model-{self.config.gguf.outtype}.gguf", self.config.gguf.outtype)
        return self._gguf_result("gguf_f16", path, time.perf_counter() - started), path

    def _quantize(self, out: Path):
        from tandem.compression.gguf_export import compute_imatrix, quantize

        g, threads = self.config.gguf, self.config.threads or os.cpu_count() or 1
        started = time.perf_counter()
        imatrix = None
        if self.use_imatrix:
            imatrix = compute_imatrix(self.current, "\n\n".join(self.calib_texts), out / "imatrix.gguf",
                                      self.config.data.seq_len, g.imatrix_chunks, threads)
        path = out / f"model-{g.quant_type}.gguf"
        quantizer = quantize(self.current, path, g.quant_type, threads, imatrix)
        note = f"{g.quant_type} by {quantizer}" + (" with importance matrix" if imatrix else ", no importance matrix")
        return self._gguf_result("quantize", path, time.perf_counter() - started, note=note,
                                 extra={"quantizer": quantizer, "imatrix": bool(imatrix)}), path

    def _zstd(self, out: Path):
        from tandem.common.zstd_pack import pack, unpack_cached

        z = self.config.zstd
        started = time.perf_counter()
        packed = pack(self.current, out / f"{self.current.name}.zst", z.level, z.threads, z.long_distance)
        seconds = time.perf_counter() - started
        unpacked = unpack_cached(packed, cache_dir=out / "verify")
        if sha256_file(unpacked) != sha256_file(self.current):
            raise CompressionError(f"{packed} does not unpack to the bytes of {self.current}")
        shutil.rmtree(out / "verify")
        previous = self.results[-1]
        ratio = packed.stat().st_size / self.current.stat().st_size
        return previous.model_copy(update={
            "name": "zstd", "path": str(packed), "size_bytes": packed.stat().st_size, "seconds": seconds,
            "bits_per_weight": packed.stat().st_size * 8 / previous.n_params,
            "extra": {"ratio": ratio, "note": f"zstd -{z.level} --long: {ratio:.3f} of the GGUF; unpacks to the "
                      "identical bytes (sha256 checked), so quality figures are the quantize stage's"}}), packed

    def _calibrate(self, out: Path):
        from tandem.common.answer_confidence import fit_choice_temperature
        from tandem.common.zstd_pack import unpack_cached
        from tandem.compression.scoring import GGUFScorer
        from tandem.compression.task_eval import score_items

        gguf_path = unpack_cached(self.current) if self.current.suffix == ".zst" else self.current
        started = time.perf_counter()
        scorer = GGUFScorer(gguf_path, threads=self.config.threads)
        dev_logits, dev_gold = score_items(scorer, self.tokenizer, self.arc_dev, desc="ARC-Easy dev")
        scorer.close()
        test = np.load(self._logits_file("quantize"))
        result = fit_choice_temperature(dev_logits, dev_gold, test["logits"], test["gold"],
                                        self.config.calibration.n_bins)
        write_json(out / "answer_confidence.json", {"method": "temperature scaling of ARC-Easy option "
                   "log-likelihoods", "model": str(self.current), **result.model_dump()})
        previous = self.results[-1]
        return previous.model_copy(update={
            "name": "calibrate", "seconds": time.perf_counter() - started,
            "extra": {"calibration": result.model_dump(), "file": str(out / "answer_confidence.json"),
                      "note": f"temperature {result.temperature:.3f}: ECE {result.ece_before:.3f} -> "
                              f"{result.ece_after:.3f} on {result.n_test} test items"}}), self.current

    # ------------------------------------------------------------ measuring
    def _logits_file(self, name: str) -> Path:
        return self.work / "logits" / f"{name}.npz"

    def _score(self, name: str, scorer, engine: str) -> tuple[float, float]:
        from tandem.compression.scoring import perplexity
        from tandem.compression.task_eval import accuracy, score_items

        ppl = perplexity(scorer, self.heldout_windows, self.bos_id, desc=f"{name} perplexity")
        logits, gold = score_items(scorer, self.tokenizer, self.arc_test, desc=f"{name} ARC-Easy")
        path = self._logits_file(name)
        path.parent.mkdir(exist_ok=True)
        np.savez(path, logits=logits, gold=gold)
        log.info("%s (%s): perplexity %.3f, ARC-Easy %.3f", name, engine, ppl, accuracy(logits, gold))
        return ppl, accuracy(logits, gold)

    def _hf_result(self, name: str, model, path: Path, seconds: float, note: str = "",
                   extra: dict | None = None) -> StageResult:
        from tandem.compression import hf_io
        from tandem.compression.scoring import HFScorer

        n_params, size = hf_io.n_params(model), hf_io.weights_size(path)
        ppl, acc = self._score(name, HFScorer(model), "transformers")
        return StageResult(name=name, engine="transformers", path=str(path), size_bytes=size,
                           bits_per_weight=size * 8 / n_params, n_params=n_params,
                           sparsity_linear=hf_io.sparsity(model)["sparsity_linear"], perplexity=ppl,
                           arc_easy_accuracy=acc, seconds=seconds, extra={**(extra or {}), "note": note})

    def _gguf_result(self, name: str, path: Path, seconds: float, note: str = "",
                     extra: dict | None = None) -> StageResult:
        from tandem.compression.gguf_export import gguf_stats
        from tandem.compression.scoring import GGUFScorer

        stats = gguf_stats(path)
        scorer = GGUFScorer(path, threads=self.config.threads)
        ppl, acc = self._score(name, scorer, "llama.cpp")
        scorer.close()
        return StageResult(name=name, engine="llama.cpp", path=str(path), size_bytes=path.stat().st_size,
                           bits_per_weight=stats["bits_per_weight"], n_params=int(stats["n_params"]),
                           sparsity_linear=stats["sparsity_linear"], perplexity=ppl, arc_easy_accuracy=acc,
                           seconds=seconds, extra={**(extra or {}), "note": note})

    # ----------------------------------------------------------------- save
    def save(self) -> dict[str, Path]:
        """Report (JSON, Markdown, PNG), resolved config, published base, manifest entries."""
        cfg = self.config
        self.reports.mkdir(parents=True, exist_ok=True)
        final = self.results[-1]
        quantized = next(r for r in self.results if r.name == "quantize")
        zstd = next((r for r in self.results if r.name == "zstd"), None)
        measured_seconds = {r.name: r.seconds for r in self.results if r.name not in ("source", "calibrate")}
        context = {
            "run_name": cfg.run_name, "heldout": cfg.data.heldout, "arc_items": len(self.arc_test),
            "heldout_tokens": sum(len(w) for w in self.heldout_windows), "calibration": self.calibration,
            "sizing": sizing.size_table({cfg.gguf.quant_type: quantized.bits_per_weight},
                                        zstd.extra["ratio"] if zstd else None,
                                        sizing.nearest_base(quantized.n_params)),
            "plan_gap": sizing.plan_gap(),
            "cost_estimate": sizing.cost_estimate(measured_seconds, quantized.n_params),
            "config": dump_config(cfg)}
        paths = {"json": report_mod.write_json_report(self.reports / "report.json", self.results, context),
                 "markdown": self.reports / "report.md", "png": report_mod.plot(self.reports / "size_vs_quality.png",
                                                                                 self.results),
                 "config": write_json(self.reports / "config.json", dump_config(cfg))}
        paths["markdown"].write_text(report_mod.markdown(self.results, context))
        manifest = Manifest(cfg.artifacts_dir)
        figures = {k: final.model_dump()[k] for k in report_mod.REQUIRED_FIGURES}
        if cfg.publish.enabled:
            published = cfg.artifacts_dir / cfg.publish.path
            if Path(final.path).suffix != ".zst" and published.suffix == ".zst":
                published = published.with_suffix("")  # zstd stage off: publish the plain GGUF
            published.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(final.path, published)
            gguf_sha = sha256_file(quantized.path)
            manifest.record(cfg.publish.name, "base", [published.resolve()], base_sha256=gguf_sha, config=dump_config(cfg),
                            metrics=figures, extra={"gguf_sha256": gguf_sha, "answer_confidence": self.calibration,
                                                    "report": str(paths["json"])})
            paths["base"] = published
        report_files = [paths[k].resolve() for k in ("json", "markdown", "png", "config")]
        manifest.record(f"compression-report-{cfg.run_name}", "report", report_files,
                        config=dump_config(cfg), metrics=figures, servable=False)
        return paths

