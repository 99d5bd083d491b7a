"""zstd packing: the sha256 round-trips, the cache is reused, corrupt archives are refused."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest

from tandem.common.zstd_pack import CompressedArtifactError, pack, read_header, unpack_cached


@pytest.fixture
def model_file(tmp_path):
    # Compressible and not: a repeated block far apart (long-distance matching) plus random bytes.
    block = os.urandom(64 * 1024)
    path = tmp_path / "model.gguf"
    path.write_bytes(block + os.urandom(256 * 1024) + block * 4)
    return path


def test_round_trip_restores_exact_bytes(model_file, tmp_path):
    packed = pack(model_file, tmp_path / "out" / "model.gguf.zst", level=3)
    assert packed.stat().st_size < model_file.stat().st_size
    header = read_header(packed)
    original = hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert header["sha256"] == original and header["size"] == model_file.stat().st_size
    unpacked = unpack_cached(packed, cache_dir=tmp_path / "cache")
    assert hashlib.sha256(unpacked.read_bytes()).hexdigest() == original
    assert unpacked.name.endswith("model.gguf")


def test_cached_copy_is_reused(model_file, tmp_path):
    packed = pack(model_file, tmp_path / "model.gguf.zst", level=3)
    first = unpack_cached(packed, cache_dir=tmp_path / "cache")
    mtime = first.stat().st_mtime_ns
    second = unpack_cached(packed, cache_dir=tmp_path / "cache", verify_cached=True)
    assert second == first and second.stat().st_mtime_ns == mtime


def test_damaged_cached_copy_is_replaced(model_file, tmp_path):
    packed = pack(model_file, tmp_path / "model.gguf.zst", level=3)
    cached = unpack_cached(packed, cache_dir=tmp_path / "cache")
    cached.write_bytes(b"x" * cached.stat().st_size)
    again = unpack_cached(packed, cache_dir=tmp_path / "cache", verify_cached=True)
    assert again.read_bytes() == model_file.read_bytes()


def _leftovers(cache):
    return [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] if cache.exists() else []


def test_truncated_archive_is_refused_and_leaves_no_file(model_file, tmp_path):
    packed = pack(model_file, tmp_path / "model.gguf.zst", level=3)
    data = packed.read_bytes()
    packed.write_bytes(data[: len(data) // 2])
    with pytest.raises(CompressedArtifactError, match="truncated|corrupt"):
        unpack_cached(packed, cache_dir=tmp_path / "cache")
    assert _leftovers(tmp_path / "cache") == []


def test_flipped_byte_is_refused(model_file, tmp_path):
    packed = pack(model_file, tmp_path / "model.gguf.zst", level=3)
    data = bytearray(packed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    packed.write_bytes(bytes(data))
    with pytest.raises(CompressedArtifactError, match="corrupt"):
        unpack_cached(packed, cache_dir=tmp_path / "cache")
    assert _leftovers(tmp_path / "cache") == []


def test_archive_without_header_is_refused(model_file, tmp_path):
    import zstandard

    plain = tmp_path / "plain.gguf.zst"
    plain.write_bytes(zstandard.ZstdCompressor().compress(model_file.read_bytes()))
    with pytest.raises(CompressedArtifactError, match="no Tandem zstd header"):
        unpack_cached(plain, cache_dir=tmp_path / "cache")


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd command line tool not installed")
def test_zstd_cli_reads_the_archive(model_file, tmp_path):
    packed = pack(model_file, tmp_path / "model.gguf.zst", level=3)
    out = tmp_path / "cli.gguf"
    subprocess.run(["zstd", "-q", "-d", "--long=31", str(packed), "-o", str(out)], check=True)
    assert out.read_bytes() == model_file.read_bytes()
