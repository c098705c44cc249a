"""Atomic file writes and advisory locks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path | str, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, mode) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_writer(path: Path | str, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary file to stream into; it becomes ``path`` only if the block completes.

    The file is a ``.tmp-*`` temp file in ``path``'s directory. On success it is flushed,
    fsynced, given ``mode`` and renamed over ``path``, then the directory is fsynced: a
    reader sees the old or the new content, never a partial file. On any exception
    (KeyboardInterrupt included) the temp file is removed and ``path`` is left as it was;
    a killed writer leaves at most a ``.tmp-*`` file, which the store ignores and cleans up.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def locked(lock_path: Path | str, shared: bool = False) -> Iterator[None]:
    """Hold flock(2) on ``lock_path`` (the same lock ig/oras take on index.json.lock)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
