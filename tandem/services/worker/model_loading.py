"""Which base GGUF and which LoRA adapters a worker serves.

Precedence: an explicit `model_path`; else the manifest's `base` entry; else the embedded default.
Modifiers come from the manifest (kind "modifier", servable) and must have been trained on the
base being served (sha256 match); a mismatched or corrupt one is refused, with the reason kept for
/ready and the logs, while the others are served.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from tandem.common.manifest import Manifest, ManifestError, sha256_file
from tandem.common.model_files import resolve_model_path
from tandem.services.worker.settings import WorkerSettings

log = logging.getLogger(__name__)


@dataclass
class ServedModels:
    base_path: Path
    base_sha256: str
    adapters: dict[str, Path] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    adapter_sha256: dict[str, str] = field(default_factory=dict)
    adapter_scales: dict[str, float] = field(default_factory=dict)  # the manifest's lora_scale, if not 1.0

    def scale(self, model_name: str) -> float:
        return self.adapter_scales.get(model_name, 1.0)

    def adapter_key(self, model_name: str) -> str:
        """The adapter's sha256, plus its LoRA scale when that is not 1.0: what decides the answers."""
        scale = self.scale(model_name)
        digest = self.adapter_sha256[model_name]
        return digest if scale == 1.0 else f"{digest}x{scale:g}"

    def version(self, model_name: str) -> str:
        """What answers for `model_name`: the base's sha256 (and the adapter's), short. The router keys its
        cache by it, so an answer made by another base or adapter is never served."""
        base = self.base_sha256[:16]
        if model_name not in self.adapter_sha256:
            return base
        scale = self.scale(model_name)  # an adapter applied at another scale answers differently
        return f"{base}+{self.adapter_sha256[model_name][:16]}" + ("" if scale == 1.0 else f"x{scale:g}")


def _unpacked(path: Path) -> Path:
    if path.suffix == ".zst":
        from tandem.common.zstd_pack import unpack_cached
        return unpack_cached(path)
    return path


def resolve_served_models(settings: WorkerSettings) -> ServedModels:
    manifest = Manifest(settings.artifacts_dir) if settings.artifacts_dir else None
    if settings.model_path:
        base = resolve_model_path(settings.model_path)
    elif manifest and manifest.entries(kind="base"):
        name = next(iter(manifest.entries(kind="base")))
        base = manifest.verified_path(name)
    else:
        base = resolve_model_path(None)
    base = _unpacked(base)
    served = ServedModels(base_path=base, base_sha256=sha256_file(base))
    if manifest and settings.load_modifiers:
        for name, entry in manifest.entries(kind="modifier").items():
            model_name = f"tandem-{name}"
            if not entry.servable:
                served.refused[model_name] = "marked not servable in the manifest (did not beat the base)"
                continue
            try:
                manifest.check_base(name, served.base_sha256)
                served.adapters[model_name] = manifest.verified_path(name)
                if entry.lora_scale != 1.0:
                    served.adapter_scales[model_name] = entry.lora_scale
            except ManifestError as exc:
                served.refused[model_name] = str(exc)
                log.error("refusing modifier %s: %s", model_name, exc)
    for model_name, path in settings.adapters.items():
        p = Path(path)
        if not p.is_file():
            raise ManifestError(f"adapter {model_name}: {p} does not exist")
        served.adapters[model_name] = p
    served.adapter_sha256 = {name: sha256_file(path) for name, path in served.adapters.items()}
    return served
