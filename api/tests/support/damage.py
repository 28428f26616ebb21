"""Ways a file the service reads can be damaged on a real host, made so that they fail for root.

The tests run as root, for whom permission bits mean nothing; each kind here fails to read for
any user: a directory where the file should be, a FIFO (whose plain open would block forever),
or bytes that are not UTF-8. Unreadable-by-permission is made in a subprocess that has lost the
capability to override file modes (`without_permission_override`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import subprocess
import sys
from pathlib import Path

KINDS = ("directory", "fifo", "invalid_utf8")

# The bytes of a file that is not text at all; a cleaned-up crash dump, a binary copied over it.
INVALID_UTF8 = b'{"a": "\xff\xfe\x80"}\n'


def damage(path: Path, kind: str) -> None:
    """Put a broken `kind` in place of `path` (replacing a file that is there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() or path.is_symlink():
        path.unlink()
    if kind == "directory":
        path.mkdir()
        # Not empty, so that nothing can rename a file over it either.
        (path / "left-here").write_text("x")
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "invalid_utf8":
        path.write_bytes(INVALID_UTF8)
    else:
        raise ValueError(kind)


def release_fifo(path: Path) -> None:
    """Give a reader blocked on the FIFO at `path` its end of file (no-op when none is)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


def without_permission_override() -> None:
    """`preexec_fn` for a subprocess that must obey file modes although it runs as root.

    Dropping CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set before `exec`
    leaves root without them in the new program, so a mode-000 file or a mode-555 directory
    fails with EACCES exactly as it does for a service user. For a non-root user nothing is
    needed and nothing is done.
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"prctl(PR_CAPBSET_DROP): {errno.errorcode.get(code, code)}")


def permission_modes_enforceable(scratch: Path) -> bool:
    """Whether a subprocess started with `without_permission_override` is refused a mode-000
    file; False where the capability cannot be dropped (then such a test is skipped)."""
    probe = scratch / "mode-000-probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        result = subprocess.run(
            [sys.executable, "-c", f"open({str(probe)!r}).read()"],
            preexec_fn=without_permission_override,
            capture_output=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        probe.unlink()
    return result.returncode != 0 and b"PermissionError" in result.stderr
