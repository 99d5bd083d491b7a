"""Pack a model file as `.zst` and unpack it once into the cache, verified. No torch here.

Format: a zstd *skippable frame* holding a small JSON header (uncompressed sha256 and size),
followed by one ordinary zstd frame with a content checksum. The `zstd` command line tool
skips the header, so `zstd -d --long=31 model.gguf.zst` still works by hand; Tandem reads the
header to verify the unpacked bytes against the sha256 the packer saw.

Compression is multi-threaded with long-distance matching: GGUF files repeat long byte runs
(token tables, aligned padding) far apart, which a 128 MiB window finds.

`unpack_cached` writes into a temp file beside its final name and renames it only after the
sha256 matched, so a half-written or corrupt file is never left where a service would load it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import BinaryIO

import zstandard

from tandem.common.manifest import sha256_file
from tandem.common.model_files import cache_dir as default_cache_dir

HEADER_MAGIC = 0x184D2A5D  # one of zstd's skippable-frame magics (0x184D2A50..5F)
HEADER_FORMAT = "tandem-zst/1"
LONG_WINDOW_LOG = 27  # 128 MiB, zstd's `--long` default
MAX_WINDOW_LOG = 31
CHUNK = 1 << 20


class CompressedArtifactError(Exception):
    """A `.zst` artifact is corrupt, truncated, or was not packed by Tandem."""


def pack(src: str | Path, dst: str | Path, level: int = 19, threads: int = 0,
         long_distance: bool = True) -> Path:
    """Compress `src` to `dst`; `threads=0` uses one worker per CPU core. Returns `dst`."""
    src, dst = Path(src), Path(dst)
    size = src.stat().st_size
    digest = sha256_file(src)
    header = json.dumps({"format": HEADER_FORMAT, "sha256": digest, "size": size,
                         "name": src.name}).encode()
    params = zstandard.ZstdCompressionParameters.from_level(
        level, source_size=size, threads=threads or os.cpu_count() or 1, write_checksum=True,
        write_content_size=True, enable_ldm=long_distance,
        **({"window_log": LONG_WINDOW_LOG} if long_distance else {}))
    compressor = zstandard.ZstdCompressor(compression_params=params)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with _atomic_output(dst) as out, open(src, "rb") as inp:
        out.write(struct.pack("<II", HEADER_MAGIC, len(header)) + header)
        compressor.copy_stream(inp, out, size=size, read_size=CHUNK, write_size=CHUNK)
    return dst


def read_header(zst_path: str | Path) -> dict:
    """The header `pack` wrote: {"format", "sha256", "size", "name"}."""
    with open(zst_path, "rb") as fh:
        return _read_header(fh, Path(zst_path))


def unpack_cached(zst_path: str | Path, cache_dir: str | Path | None = None,
                  verify_cached: bool = False) -> Path:
    """The unpacked file for `zst_path`, unpacking and verifying it on first use.

    The cached copy is named after its sha256, so a changed archive never reuses a stale file.
    `verify_cached=True` re-hashes an existing cached copy instead of trusting its size.
    """
    zst_path = Path(zst_path)
    if not zst_path.is_file():
        raise CompressedArtifactError(f"{zst_path} does not exist")
    header = read_header(zst_path)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "unpacked"
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"{header['sha256'][:16]}-{header['name']}"
    with _file_lock(target.with_name(target.name + ".lock")):
        if target.is_file() and _cached_ok(target, header, verify_cached):
            return target
        _unpack(zst_path, target, header)
    return target


def _cached_ok(target: Path, header: dict, rehash: bool) -> bool:
    if target.stat().st_size != header["size"]:
        return False
    return not rehash or sha256_file(target) == header["sha256"]


def _unpack(zst_path: Path, target: Path, header: dict) -> None:
    decompressor = zstandard.ZstdDecompressor(max_window_size=1 << MAX_WINDOW_LOG)
    digest, written = hashlib.sha256(), 0
    with open(zst_path, "rb") as inp, _atomic_output(target) as out:
        _read_header(inp, zst_path)
        try:
            with decompressor.stream_reader(inp, read_size=CHUNK) as reader:
                while chunk := reader.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
        except zstandard.ZstdError as exc:
            raise CompressedArtifactError(f"{zst_path} is corrupt: zstd says {exc}") from exc
        if written != header["size"]:
            raise CompressedArtifactError(
                f"{zst_path} is truncated or corrupt: it unpacks to {written} bytes, "
                f"its header promises {header['size']}")
        if digest.hexdigest() != header["sha256"]:
            raise CompressedArtifactError(
                f"{zst_path} is corrupt: the unpacked sha256 {digest.hexdigest()[:16]}... "
                f"differs from the {header['sha256'][:16]}... recorded when it was packed")


def _read_header(fh: BinaryIO, path: Path) -> dict:
    prefix = fh.read(8)
    if len(prefix) < 8:
        raise CompressedArtifactError(f"{path} is empty or truncated (no Tandem zstd header)")
    magic, length = struct.unpack("<II", prefix)
    if magic != HEADER_MAGIC:
        raise CompressedArtifactError(
            f"{path} has no Tandem zstd header, so its sha256 cannot be verified: repack it with "
            "`tandem.common.zstd_pack.pack` (or `tandem compress`)")
    try:
        header = json.loads(fh.read(length))
        if header.get("format") != HEADER_FORMAT or not {"sha256", "size", "name"} <= header.keys():
            raise ValueError(f"unexpected header fields {sorted(header)}")
    except ValueError as exc:
        raise CompressedArtifactError(f"{path} has a corrupt Tandem zstd header: {exc}") from exc
    return header


@contextlib.contextmanager
def _atomic_output(dst: Path):
    """Yield a temp file beside `dst`; rename it onto `dst` only if the block succeeds."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _file_lock(path: Path):
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
