"""Atomic file writes, advisory locks, and temporary files a later command can clean up.

Temporary files and directories carry their owner in their name:
``<prefix><pid>.<start>-<random>``, where ``start`` is the process's start time
(``/proc/<pid>/stat``, clock ticks since boot), so a name outlives neither a killed
process nor a reused pid: :func:`owner_gone` tells a later command that the owner is
gone and the entry can be removed. Names without an owner (older versions) are stale
once they are :data:`STALE_SECONDS` old.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

#: age after which a temporary entry without an owner in its name counts as stale
STALE_SECONDS = 3600
_OWNER_RE = re.compile(r"(?<![0-9])([0-9]+)\.([0-9]+)-[A-Za-z0-9_]+$")


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: fields after the last ')'
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[19].decode() if len(fields) > 19 else None


_OWNER: str | None = None


def owner_tag() -> str:
    """``<pid>.<start>`` of this process, as temporary names carry it."""
    global _OWNER
    pid = os.getpid()
    if _OWNER is None or not _OWNER.startswith(f"{pid}."):
        _OWNER = f"{pid}.{_start_time(pid) or 0}"
    return _OWNER


#: what every temporary directory of the toolchain in the system's temp directory starts with
SYSTEM_TEMP_PREFIX = "gadget-"


def owner_gone(path: Path, require_owner: bool = False) -> bool:
    """Whether the temporary entry ``path`` is stale: the process its name records is gone
    (or is another process with the same pid), or, for a name without an owner, it is
    older than :data:`STALE_SECONDS` (never, with ``require_owner``)."""
    m = _OWNER_RE.search(path.name)
    if m is None:
        if require_owner:
            return False
        try:
            return time.time() - path.lstat().st_mtime > STALE_SECONDS
        except OSError:
            return False
    pid, start = int(m.group(1)), m.group(2)
    if pid == os.getpid():
        return start != owner_tag().split(".", 1)[1]
    return _start_time(pid) != start


def entry_size(path: Path) -> int:
    """Bytes a file, or a directory with everything in it, takes (symlinks not followed)."""
    try:
        st = path.lstat()
    except OSError:
        return 0
    if not path.is_dir() or path.is_symlink():
        return st.st_size
    total = 0
    for dirpath, _dirs, names in os.walk(path):
        for n in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, n)).st_size
    return total


def stale_entries(parent: Path, prefixes: Iterable[str], require_owner: bool = False) -> list[Path]:
    """Entries of ``parent`` named with one of ``prefixes`` whose owner is gone (see
    :func:`owner_gone`)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    pre = tuple(prefixes)
    return [parent / n for n in sorted(names)
            if n.startswith(pre) and owner_gone(parent / n, require_owner)]


def stale_system_temporaries() -> list[Path]:
    """Temporary directories of killed toolchain commands in the system's temp directory
    (only names that record their owner: other programs' ``gadget-*`` files are left)."""
    return stale_entries(Path(tempfile.gettempdir()), [SYSTEM_TEMP_PREFIX], require_owner=True)


def remove_entry(path: Path) -> None:
    """Remove a file or a directory tree; what is already gone, or cannot go, is skipped."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def owned_mkdtemp(prefix: str, parent: Path | str | None = None) -> Path:
    """A new directory ``<parent>/<prefix><pid>.<start>-<random>`` (see the module doc)."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_tag()}-", dir=parent))


@contextlib.contextmanager
def owned_tempdir(prefix: str, parent: Path | str | None = None) -> Iterator[Path]:
    """:func:`owned_mkdtemp`, removed when the block ends. Stale directories of killed
    commands with the same prefix in ``parent`` are removed first."""
    where = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    for p in stale_entries(where, [prefix], require_owner=parent is None):
        remove_entry(p)
    path = owned_mkdtemp(prefix, where)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


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

    The file is a ``.tmp-<pid>.<start>-*`` temp file in ``path``'s directory. On success it
    is flushed, fsynced, given ``mode`` and renamed over ``path``, then the directory is
    fsynced: a reader sees the old or the new content, never a partial file. On any
    exception (KeyboardInterrupt included) the temp file is removed and ``path`` is left as
    it was; a killed writer leaves at most a ``.tmp-*`` file, which the store ignores and
    the next writer removes (its owner is gone).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{owner_tag()}-", dir=path.parent)
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
