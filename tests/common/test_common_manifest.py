"""The artifact manifest: what it records, and the paths it accepts."""

from __future__ import annotations

import json

import pytest

from tandem.common.manifest import Manifest, ManifestError, sha256_file


def test_records_paths_relative_to_the_root_or_the_working_directory(tmp_path, monkeypatch):
    root = tmp_path / "artifacts"
    (root / "modifiers").mkdir(parents=True)
    adapter = root / "modifiers" / "code.gguf"
    adapter.write_bytes(b"GGUF adapter bytes")
    manifest = Manifest(root)
    by_root = manifest.record("a", "modifier", ["modifiers/code.gguf"])
    monkeypatch.chdir(tmp_path)
    by_cwd = manifest.record("b", "modifier", ["artifacts/modifiers/code.gguf"])  # what a CLI user types
    by_abs = manifest.record("c", "modifier", [adapter])
    assert by_root.files[0].path == by_cwd.files[0].path == by_abs.files[0].path == "modifiers/code.gguf"
    assert by_cwd.files[0].sha256 == sha256_file(adapter)
    stored = json.loads((root / "manifest.json").read_text())["artifacts"]
    assert set(stored) == {"a", "b", "c"}


def test_refuses_a_missing_file_and_leaves_the_manifest_as_it_was(tmp_path):
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "x.bin").write_bytes(b"x")
    manifest = Manifest(root)
    manifest.record("x", "base", ["x.bin"])
    before = (root / "manifest.json").read_text()
    with pytest.raises(ManifestError, match="does not exist"):
        manifest.record("y", "base", ["missing.bin"])
    assert (root / "manifest.json").read_text() == before
