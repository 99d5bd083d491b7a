"""`tandem publish --out DIR [--repo OWNER/NAME]`: a Hugging Face Hub-ready folder of a build.

The folder holds what `tandem up --artifacts DIR` needs and nothing else: the GGUF base, the
modifier adapters, the router, the escalation models, the validation report when the pipeline
made one, a `manifest.json` listing exactly those files (each checked against the build's sha256
before it is copied), and a model card (`README.md`, written with huggingface_hub's ModelCard)
with the figures the manifest records and the intended use. `--repo` uploads the folder with
huggingface_hub (`create_repo` + `upload_folder`; the token comes from `--token`, `HF_TOKEN` or
`hf auth login`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from tandem.common.manifest import MANIFEST_NAME, ArtifactEntry, Manifest, ManifestData

PUBLISHED_KINDS = ("base", "modifier", "router", "escalation")
REPORT_ENTRY = "pipeline.validation"
DEFAULT_BASE_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
INTENDED_USE = ("Self-hosted chat and tool calling on CPUs or small GPUs: a router sends each request to the "
                "modifier of its domain, and hard requests are escalated to a frontier model you configure. The "
                "figures below were measured on this build; small benchmark samples carry wide intervals. Not "
                "for decisions about people, nor for medical, legal or financial advice.")


class PublishError(Exception):
    """The build cannot be published as it is; the message says what is missing."""


def published_entries(artifacts: Path) -> dict[str, ArtifactEntry]:
    """Entries a served copy needs (plus the validation report); refuses a build without a base."""
    entries = Manifest(artifacts).read().artifacts
    chosen = {n: e for n, e in entries.items() if e.kind in PUBLISHED_KINDS}
    if not any(e.kind == "base" for e in chosen.values()):
        raise PublishError(f"{artifacts / MANIFEST_NAME} lists no base model: build one first "
                           "(tandem pipeline, or tandem compress with publish.enabled=true)")
    if REPORT_ENTRY in entries:
        chosen[REPORT_ENTRY] = entries[REPORT_ENTRY]
    return chosen


def _figures(metrics: dict[str, Any], prefix: str = "", depth: int = 2) -> dict[str, Any]:
    """The scalar figures of an entry, nested ones (e.g. per domain) with dotted names, `depth`
    levels deep; lists and deeper tables stay in manifest.json."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, dict) and depth > 1:
            flat.update(_figures(value, f"{prefix}{key}.", depth - 1))
        elif isinstance(value, int | float | str | bool):
            flat[prefix + key] = value
    return flat


def _seen(spec: Any) -> str:
    """`train, dev` for split names, `N items` for id lists."""
    from tandem.common.provenance import flatten
    from tandem.eval.splits import SPLITS

    values = sorted(set(flatten(spec)))
    splits = [v for v in values if v in SPLITS]
    ids = len(values) - len(splits)
    return ", ".join([*splits, *([f"{ids} items"] if ids else [])])


def model_card(entries: dict[str, ArtifactEntry], name: str, base_id: str) -> str:
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(library_name="gguf", base_model=base_id, license="apache-2.0",
                         tags=["gguf", "lora", "llama.cpp", "tandem"], pipeline_tag="text-generation")
    served = sorted(n for n, e in entries.items() if e.kind == "modifier" and e.servable)
    refused = sorted(n for n, e in entries.items() if e.kind == "modifier" and not e.servable)
    summary = (f"A Tandem build: a compressed GGUF of `{base_id}` with per-domain LoRA modifiers, a domain "
               "router and escalation models, served behind one OpenAI-compatible endpoint.")
    servable = f"Servable modifiers: {', '.join(served) or 'none'}." + (
        f" Trained but refused by their gate (not served): {', '.join(refused)}." if refused else "")
    lines = [f"# {name}", "", summary, "", "## Intended use", "", INTENDED_USE, "",
             "```bash", "pip install tandem   # from the project's repository",
             "tandem up --artifacts .   # OpenAI API on http://127.0.0.1:8000/v1", "```", "", servable, "",
             "## Measured figures", "", "| artifact | kind | figure | value |", "|---|---|---|---:|"]
    for entry_name, entry in sorted(entries.items()):
        for figure, value in sorted(_figures(entry.metrics).items()):
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"| {entry_name} | {entry.kind} | {figure} | {shown} |")
    trained = {n: e.extra["trained_on"] for n, e in entries.items() if e.extra.get("trained_on")}
    lines += ["", "## Training data", "", ("Benchmark splits and items each artifact saw (`trained_on` in "
                                            "manifest.json); scores are only reported on items none of them saw."), ""]
    lines += [f"- `{n}`: " + ", ".join(f"{d} ({_seen(v)})" for d, v in t.items())
              for n, t in sorted(trained.items())] or ["- none recorded"]
    lines += ["", "## Files", "", "| file | bytes | sha256 |", "|---|---:|---|"]
    lines += [f"| {f.path} | {f.size} | `{f.sha256[:16]}…` |" for e in entries.values() for f in e.files]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n").content


def publish(artifacts: Path, out: Path, name: str, base_id: str = DEFAULT_BASE_ID) -> Path:
    """Write the Hub-ready folder `out` from the build in `artifacts`; returns `out`."""
    entries = published_entries(artifacts)
    manifest = Manifest(artifacts)
    out.mkdir(parents=True, exist_ok=True)
    for entry_name, entry in entries.items():
        for index, record in enumerate(entry.files):
            source = manifest.verified_path(entry_name, index)
            target = out / record.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    (out / MANIFEST_NAME).write_text(ManifestData(artifacts=entries).model_dump_json(indent=2))
    (out / "README.md").write_text(model_card(entries, name, base_id))
    return out


def upload(folder: Path, repo: str, token: str | None = None, endpoint: str | None = None,
           private: bool = True) -> str:
    """Create the model repo if needed and upload the folder in one commit; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo, folder_path=folder, repo_type="model",
                             commit_message=f"tandem publish: {folder.name}")
    return str(info.commit_url)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("publish", help="Write a Hugging Face Hub-ready folder of a build (and upload it).",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="The build (default artifacts).")
    p.add_argument("--out", type=Path, required=True, help="Folder to write (it is what gets uploaded).")
    p.add_argument("--name", default=None, help="Title of the model card (default: the --out folder's name).")
    p.add_argument("--base-model-id", default=DEFAULT_BASE_ID, help="Hub id of the base, for the card's metadata.")
    p.add_argument("--repo", default=None, help="Upload to this Hub model repo (OWNER/NAME).")
    p.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the stored login).")
    p.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT or huggingface.co).")
    p.add_argument("--public", action="store_true", help="Create the repo public (default private).")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from tandem.common.manifest import ManifestError

    try:
        folder = publish(args.artifacts, args.out, args.name or args.out.resolve().name, args.base_model_id)
    except (PublishError, ManifestError) as exc:
        print(f"tandem publish: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {folder} (serve it: tandem up --artifacts {folder})")
    if args.repo:
        print(f"uploaded: {upload(folder, args.repo, args.token, args.endpoint, private=not args.public)}")
    return 0
