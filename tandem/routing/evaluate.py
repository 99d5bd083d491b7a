"""Scoring a router: accuracy, per-domain precision/recall/F1, confusion matrix, ECE; the two
baselines (keywords, nearest centroid on the same embeddings); the Markdown/JSON/PNG report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tandem.common.calibration import expected_calibration_error
from tandem.common.manifest import write_json
from tandem.common.wire import ChatCompletionRequest
from tandem.routing.examples import RoutingExample
from tandem.routing.keywords import KeywordRouter


def classification_metrics(labels: np.ndarray, probs: np.ndarray, domains: list[str]) -> dict[str, Any]:
    predicted = probs.argmax(axis=1)
    confusion = np.zeros((len(domains), len(domains)), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    per_domain = {}
    for i, domain in enumerate(domains):
        tp = confusion[i, i]
        precision = tp / max(confusion[:, i].sum(), 1)
        recall = tp / max(confusion[i].sum(), 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        per_domain[domain] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                              "f1": round(float(f1), 4), "support": int(confusion[i].sum())}
    return {"n": len(labels), "accuracy": round(float((predicted == labels).mean()), 4),
            "per_domain": per_domain, "confusion": confusion.tolist()}


def ece(labels: np.ndarray, probs: np.ndarray) -> float:
    return round(expected_calibration_error(probs.max(axis=1), probs.argmax(axis=1) == labels), 4)


def keyword_probs(examples: list[RoutingExample], domains: list[str]) -> np.ndarray:
    router = KeywordRouter(domains=domains)
    rows = []
    for ex in examples:
        request = ChatCompletionRequest(model="auto", messages=ex.messages(), tools=ex.tools or None)
        probs = router.route(request).probabilities
        rows.append([probs.get(d, 0.0) for d in domains])
    return np.asarray(rows)


def centroid_probs(train_embeddings: np.ndarray, train_labels: np.ndarray, embeddings: np.ndarray,
                   n_classes: int, sharpness: float = 20.0) -> np.ndarray:
    """Semantic-router style: cosine to each domain's mean training embedding."""
    centroids = np.stack([train_embeddings[train_labels == c].mean(axis=0) for c in range(n_classes)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    scores = sharpness * embeddings @ centroids.T
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    return scores / scores.sum(axis=1, keepdims=True)


def confusion_png(results: dict[str, dict], domains: list[str], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.6 * len(results), 4.2))
    for ax, (title, metrics) in zip(np.atleast_1d(axes), results.items()):
        matrix = np.asarray(metrics["confusion"])
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (r, c), value in np.ndenumerate(matrix):
            ax.text(c, r, str(value), ha="center", va="center", color="white" if shares[r, c] > 0.5 else "black")
        ax.set_xticks(range(len(domains)), domains, rotation=30)
        ax.set_yticks(range(len(domains)), domains)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title} (acc {metrics['accuracy']:.3f})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _table(evaluations: dict[str, dict[str, dict]]) -> list[str]:
    sets = list(next(iter(evaluations.values())))
    lines = ["| router | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for router, by_set in evaluations.items():
        lines.append(f"| {router} | " + " | ".join(f"{by_set[s]['accuracy']:.4f}" for s in sets) + " |")
    return lines


LEGEND = ("`router` is what serving runs (first stage when sure, else the second stage); `second-stage` and "
          "`first-stage` are each stage alone; `embedding-only` (when present) is the second stage without "
          "token presence; baselines: `keywords` (tandem.routing.keywords) and `nearest-centroid` on the same "
          "int8 MiniLM embeddings.")
CALIBRATION_NOTE = ("Default-domain margin: subtracted from the catch-all domain's logit, chosen on the dev split "
                    "of the project templates. Temperature: fitted on all of dev after that. ECE with 15 bins.")


def _per_domain(router_eval: dict[str, dict]) -> list[str]:
    lines = ["## Per-domain (router)", ""]
    for set_name, metrics in router_eval.items():
        lines += [f"### {set_name} (n={metrics['n']})", "", "| domain | precision | recall | F1 | support |",
                  "|---|---|---|---|---|"]
        lines += [f"| {d} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
                  for d, m in metrics["per_domain"].items()]
        lines.append("")
    return lines


def _calibration(cal: dict[str, dict]) -> list[str]:
    lines = ["## Calibration (on dev)", "", CALIBRATION_NOTE, "",
             "| head | default margin | temperature | ECE dev before | ECE dev after | ECE test before | ECE test after |",
             "|---|---|---|---|---|---|---|"]
    for head, c in cal.items():
        lines.append(f"| {head} | {c['default_margin']:.2f} | {c['temperature']:.3f} | {c['ece_dev_before']:.4f} | "
                     f"{c['ece_dev_after']:.4f} | {c['ece_test_before']:.4f} | {c['ece_test_after']:.4f} |")
    return lines


def _latency(lat: dict[str, Any] | None) -> list[str]:
    if not lat:
        return []
    lines = ["", f"## Latency (in-process, {lat['threads']} ORT thread(s), load average: {lat['load']})", "",
             "| bucket (tokens) | p50 ms | p99 ms | CPU p50 ms | CPU p99 ms | first-stage share |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {b} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['cpu_p50_ms']:.2f} | {m['cpu_p99_ms']:.2f} | "
              f"{m['first_stage_share']:.2f} |" for b, m in lat["buckets"].items()]
    return [*lines, "", (f"Mix {lat['mix']}: p50 {lat['mix_p50_ms']:.2f} ms, p99 {lat['mix_p99_ms']:.2f} ms "
                         f"(CPU time: p50 {lat['mix_cpu_p50_ms']:.2f} ms, p99 {lat['mix_cpu_p99_ms']:.2f} ms).")]


def _mistakes(mistakes: list[dict]) -> list[str]:
    if not mistakes:
        return []
    lines = ["## Hand-written prompts the router gets wrong", "", "| true | predicted | conf | prompt |",
             "|---|---|---|---|"]
    for m in mistakes:
        prompt = m["prompt"][:90].replace("|", "/").replace("\n", " ")
        lines.append(f"| {m['true']} | {m['predicted']} | {m['confidence']:.2f} | {prompt} |")
    return lines


def markdown_report(report: dict[str, Any]) -> str:
    cascade = report["cascade"]
    lines = [f"# Domain router report ({report['name']})", "",
             (f"Domains: {', '.join(report['domains'])}. Inputs cut to {report['max_tokens']} tokens. "
              f"Encoder: {report['encoder']}. Artifact size: {report['size_mb']:.2f} MB."), "",
             "## Accuracy (same run, same splits)", "", *_table(report["evaluations"]), "", LEGEND, "",
             f"First stage answers alone at confidence >= {cascade['threshold']}: {cascade['coverage']}.", "",
             *_per_domain(report["evaluations"]["router"]), *_calibration(report["calibration"]),
             *_latency(report.get("latency")), "", "## Data (examples per split and domain)", "", "```",
             *[f"{s}: {c}" for s, c in report["counts"].items()], "```", "", "![confusion matrices](confusion.png)", "",
             *_mistakes(report.get("handwritten_mistakes", []))]
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, report: dict[str, Any], domains: list[str]) -> list[Path]:
    panels = {"router: test": report["evaluations"]["router"]["test"],
              "router: hand-written": report["evaluations"]["router"]["handwritten"],
              "keywords: hand-written": report["evaluations"]["keywords"]["handwritten"]}
    png = confusion_png(panels, domains, out_dir / "confusion.png")
    md = out_dir / "report.md"
    md.write_text(markdown_report(report))
    return [write_json(out_dir / "report.json", report), md, png]
