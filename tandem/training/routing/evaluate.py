"""Scoring a router: accuracy with its 95% interval (Wilson), per-domain precision/recall/F1,
confusion matrix, ECE; the two baselines (keywords, nearest centroid on the same embeddings);
the Markdown/JSON/PNG report, which leads with the hand-labelled real-prompt test set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tandem.common.calibration import expected_calibration_error
from tandem.common.manifest import write_json
from tandem.common.wire import ChatCompletionRequest
from tandem.services.routing.keywords import KeywordRouter
from tandem.training.routing.examples import RoutingExample


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
            "accuracy_ci95": accuracy_interval(int((predicted == labels).sum()), len(labels)),
            "per_domain": per_domain, "confusion": confusion.tolist()}


def accuracy_interval(correct: int, n: int) -> list[float]:
    """95% Wilson score interval of an accuracy of correct/n."""
    from scipy.stats import binomtest

    if n == 0:
        return [0.0, 1.0]
    interval = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [round(float(interval.low), 4), round(float(interval.high), 4)]


def ece(labels: np.ndarray, probs: np.ndarray) -> float:
    return round(expected_calibration_error(probs.max(axis=1), probs.argmax(axis=1) == labels), 4)


def nll(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    return round(float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)).mean()), 4)


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
          "token presence; baselines: `keywords` (tandem.services.routing.keywords) and `nearest-centroid` on the same "
          "int8 MiniLM embeddings.")
CALIBRATION_NOTE = ("Default-domain margin: subtracted from the catch-all domain's logit, then a temperature; both "
                    "fitted on the calibration rows (`calibrate_on`: the real-prompt dev rows that do not train, or "
                    "the templates' and benchmarks' dev splits). ECE with 15 bins.")


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
    sets = [k.removeprefix("ece_").removesuffix("_before") for k in cal["second-stage"]
            if k.startswith("ece_") and k.endswith("_before")]
    lines = ["## Calibration", "", CALIBRATION_NOTE, "",
             "| head | default margin | temperature | " + " | ".join(f"ECE {s} before -> after" for s in sets) + " |",
             "|---|---|---|" + "---|" * len(sets)]
    for head in ("second-stage", "first-stage"):
        c = cal[head]
        lines.append(f"| {head} | {c['default_margin']:.2f} | {c['temperature']:.3f} | " + " | ".join(
            f"{c[f'ece_{s}_before']:.4f} -> {c[f'ece_{s}_after']:.4f}" for s in sets) + " |")
    router = cal["router"]
    return [*lines, "", "Served router (cascade) ECE: " + ", ".join(f"{k.removeprefix('ece_')} {v:.4f}"
                                                                    for k, v in router.items()) + "."]


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


def _headline(report: dict[str, Any]) -> list[str]:
    real = report["evaluations"]["router"].get("real_test")
    if real is None:
        return []
    low, high = real["accuracy_ci95"]
    domains = report["domains"]
    ece = report["calibration"]["router"].get("ece_real_test", float("nan"))
    lines = ["## Headline: hand-labelled real prompts (test)", "",
             (f"Router accuracy {real['accuracy']:.4f} (95% Wilson interval {low:.4f}-{high:.4f}), n={real['n']}; "
              f"ECE {ece:.4f}."), "",
             "| true (rows) / predicted (columns) | " + " | ".join(domains) + " |", "|---|" + "---|" * len(domains)]
    lines += [f"| {d} | " + " | ".join(str(v) for v in row) + " |" for d, row in zip(domains, real["confusion"])]
    return [*lines, ""]


def _mistakes(mistakes: list[dict], title: str) -> list[str]:
    if not mistakes:
        return []
    lines = [f"## {title}", "", "| true | predicted | conf | prompt |", "|---|---|---|---|"]
    for m in mistakes:
        prompt = m["prompt"][:90].replace("|", "/").replace("\n", " ")
        lines.append(f"| {m['true']} | {m['predicted']} | {m['confidence']:.2f} | {prompt} |")
    return lines


def markdown_report(report: dict[str, Any]) -> str:
    cascade = report["cascade"]
    lines = [f"# Domain router report ({report['name']})", "",
             (f"Domains: {', '.join(report['domains'])}. Inputs cut to {report['max_tokens']} tokens "
              f"({report['truncation']}). Encoder: {report['encoder']}. Artifact size: {report['size_mb']:.2f} MB. "
              f"Real dev rows training: share {report['real_dev_train_share']}; calibrated on "
              f"{report['calibrate_on']}."), "", *_headline(report),
             "## Accuracy (same run, same splits)", "", *_table(report["evaluations"]), "", LEGEND, "",
             f"First stage answers alone at confidence >= {cascade['threshold']}: {cascade['coverage']}.", "",
             *_per_domain(report["evaluations"]["router"]), *_calibration(report["calibration"]),
             *_latency(report.get("latency")), "", "## Data (examples per split and domain)", "", "```",
             *[f"{s}: {c}" for s, c in report["counts"].items()], "```", "",
             f"Public/template rows dropped as near-duplicates of held-out prompts: {report['near_duplicates_dropped']}.",
             "", "![confusion matrices](confusion.png)", "",
             *_mistakes(report.get("real_test_mistakes", []), "Real test prompts the router gets wrong"), "",
             *_mistakes(report.get("handwritten_mistakes", []), "Hand-written prompts the router gets wrong")]
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, report: dict[str, Any], domains: list[str]) -> list[Path]:
    router = report["evaluations"]["router"]
    panels = {f"router: {name}": router[key] for name, key in
              (("real test", "real_test"), ("test", "test"), ("hand-written", "handwritten")) if key in router}
    png = confusion_png(panels, domains, out_dir / "confusion.png")
    md = out_dir / "report.md"
    md.write_text(markdown_report(report))
    return [write_json(out_dir / "report.json", report), md, png]
