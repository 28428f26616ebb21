"""Archives: a world compressed with zstd in a stream, hashed on the way, never held in memory."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

CHUNK = 1024 * 1024
# Level 3 is zstd's default: about gzip -6's ratio at several times its speed.
LEVEL = 3
SUFFIX = ".vcdbs.zst"


class _HashingWriter:
    """A file the compressor writes to, hashing and counting the compressed bytes."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self._handle.write(data)


@dataclass(frozen=True)
class Packed:
    world_bytes: int
    world_sha256: str
    archive_bytes: int
    sha256: str


def compress(source: Path, target: Path) -> Packed:
    """Compress `source` into `target` (fsynced), hashing both sides in the same pass."""
    world_hash = hashlib.sha256()
    world_size = 0
    with open(source, "rb") as src, open(target, "wb") as out:
        sink = _HashingWriter(out)
        compressor = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True)
        # zstandard's stub asks for a whole IO[bytes]; the writer only ever calls write().
        with compressor.stream_writer(sink, closefd=False) as writer:  # type: ignore[arg-type]
            while chunk := src.read(CHUNK):
                world_hash.update(chunk)
                world_size += len(chunk)
                writer.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return Packed(world_size, world_hash.hexdigest(), sink.size, sink.hash.hexdigest())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def decompress(archive: Path, target: Path) -> str:
    """Unpack `archive` into `target` (fsynced); the SHA-256 of what was written."""
    digest = hashlib.sha256()
    with open(archive, "rb") as src, open(target, "wb") as out:
        reader = zstandard.ZstdDecompressor().stream_reader(src)
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()
