"""The layout's rules hold: import contracts (pyproject.toml) and a serving install without torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Imports every services module with these made unimportable, as in a serving install without them.
SERVING_WITHOUT_TRAINING_STACK = textwrap.dedent("""
    import importlib, importlib.abc, pkgutil, sys

    ABSENT = {"torch", "transformers", "peft", "sklearn", "axolotl"}

    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ABSENT:
                raise ModuleNotFoundError(f"No module named {name!r} (absent in a serving install)")
            return None

    sys.meta_path.insert(0, Absent())
    import tandem.services
    failed = []
    for module in pkgutil.walk_packages(tandem.services.__path__, "tandem.services."):
        if module.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(module.name)
        except Exception as exc:
            failed.append(f"{module.name}: {type(exc).__name__}: {exc}")
    leaked = sorted(name for name in sys.modules if name.split(".")[0] in ABSENT)
    print("\\n".join(failed))
    print("imported", sum(1 for m in sys.modules if m.startswith("tandem.services")), "services modules")
    sys.exit(1 if failed or leaked else 0)
""")


def test_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, check=False,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 6 kept, 0 broken." in result.stdout, result.stdout


def test_every_services_module_imports_without_torch():
    result = subprocess.run([sys.executable, "-c", SERVING_WITHOUT_TRAINING_STACK], cwd=ROOT, capture_output=True, check=False,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    count = int(result.stdout.split("imported ")[1].split()[0])
    assert count >= 60, result.stdout  # the walk really reached the services, not an empty package
