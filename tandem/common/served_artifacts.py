"""Which artifacts folder is served when none is named: the user's build, else the bundled default.

`tandem up` and `tandem eval` resolve it the same way, so the contamination guard of an evaluation
reads the `trained_on` of exactly what a default `tandem up` serves:

1. the configured folder (default `./artifacts`) when it holds a `manifest.json` (a user's build);
2. else the default bundle shipped inside the package, `tandem/default_artifacts/` (the modifiers
   that passed their gate and the trained router, made by `tandem build`), when `use_bundle` is on;
3. else nothing: the embedded base alone, routed by keywords.
"""

from __future__ import annotations

from pathlib import Path

from tandem.common.manifest import MANIFEST_NAME

BUNDLED_ARTIFACTS = Path(__file__).resolve().parents[1] / "default_artifacts"


def served_artifacts_dir(configured: str | Path | None = "artifacts", use_bundle: bool = True) -> Path | None:
    if configured and (Path(configured) / MANIFEST_NAME).is_file():
        return Path(configured)
    if use_bundle and (BUNDLED_ARTIFACTS / MANIFEST_NAME).is_file():
        return BUNDLED_ARTIFACTS
    return None
