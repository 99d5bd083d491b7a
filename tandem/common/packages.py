"""Files that ship inside installed PyPI packages (models, data), found without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def installed_package_dir(package: str) -> Path | None:
    """The folder of an installed package, or None; not imported (some import heavy dependencies)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
