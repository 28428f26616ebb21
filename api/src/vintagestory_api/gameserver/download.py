"""Downloading a server tarball: streamed to disk, size-capped, time-boxed, md5 computed on the way.

Over the shared HTTP client (its connect and read timeouts apply to every read), with a
deadline over the whole download and a cap checked against the declared length first and then
against every chunk, so an oversized or endless body is cut off without being stored.
A body shorter than its declared length is a truncated download, not a smaller file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from vintagestory_api.kit.http import describe_http_error

from .errors import DownloadFailed, DownloadTooLarge

CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class DownloadLimits:
    max_bytes: int
    deadline: float


def rebase(url: str, base: str | None) -> str:
    """`url` with its scheme, host and port replaced by `base` (whose path goes in front)."""
    if not base:
        return url
    parts, new = urlsplit(url), urlsplit(base)
    path = new.path.rstrip("/") + parts.path
    return urlunsplit((new.scheme, new.netloc, path, parts.query, ""))


async def download(
    client: httpx.AsyncClient,
    url: str,
    target: Path,
    limits: DownloadLimits,
    progress: Callable[[int, int | None], None],
) -> str:
    """Store the body of `url` in `target`; its md5 (hex). `progress(done, total)` follows it.

    Raises DownloadFailed or DownloadTooLarge, leaving what was stored for the caller to remove.
    """
    try:
        async with asyncio.timeout(limits.deadline):
            return await _fetch(client, url, target, limits.max_bytes, progress)
    except TimeoutError:
        raise DownloadFailed(
            f"{url}: not complete within {limits.deadline:g} s (VS_INSTALL_DOWNLOAD_TIMEOUT)"
        ) from None


async def _fetch(
    client: httpx.AsyncClient,
    url: str,
    target: Path,
    max_bytes: int,
    progress: Callable[[int, int | None], None],
) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    try:
        async with client.stream("GET", url, headers={"Accept": "*/*"}) as response:
            if response.status_code >= 400:
                raise DownloadFailed(f"{url}: HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            total = int(declared) if declared.isdigit() else None
            if total is not None and total > max_bytes:
                raise DownloadTooLarge(f"{url} declares {total} bytes, {_over(max_bytes)}")
            done = 0
            progress(done, total)
            with target.open("wb") as file:
                try:
                    async for chunk in response.aiter_raw(CHUNK_BYTES):
                        done += len(chunk)
                        if done > max_bytes:
                            raise DownloadTooLarge(f"{url} sends {_over(max_bytes)}")
                        # Page-cache writes of a chunk are quick; the fsync below is not.
                        file.write(chunk)
                        digest.update(chunk)
                        progress(done, total)
                except httpx.RemoteProtocolError:
                    # The connection closed before the declared length (httpx checks it).
                    if total is None:
                        raise
                    # What arrived, also the part too short to have made a chunk.
                    done = min(response.num_bytes_downloaded, total - 1)
                await asyncio.to_thread(_flush, file.fileno())
            if total is not None and done < total:
                raise DownloadFailed(
                    f"{url}: truncated, {done} of {total} bytes received before the "
                    "connection closed"
                )
    except httpx.HTTPError as exc:
        raise DownloadFailed(f"{url}: {describe_http_error(exc)}") from None
    except OSError as exc:
        raise DownloadFailed(f"cannot store the download in {target}: {exc.strerror}") from None
    return digest.hexdigest()


def _flush(fd: int) -> None:
    os.fsync(fd)


def _over(max_bytes: int) -> str:
    return f"more than the {max_bytes} byte limit (VS_INSTALL_MAX_DOWNLOAD_BYTES)"
