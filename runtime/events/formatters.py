"""Derived, human-readable values for Inspektor Gadget's special types."""

from __future__ import annotations

import datetime as _dt
import errno as _errno
import grp
import platform
import pwd
import re
import signal as _signal
import stat as _stat
import time
from functools import lru_cache

_OPEN_FLAGS = [
    ("O_CREAT", 0o100), ("O_EXCL", 0o200), ("O_NOCTTY", 0o400), ("O_TRUNC", 0o1000),
    ("O_APPEND", 0o2000), ("O_NONBLOCK", 0o4000), ("O_DSYNC", 0o10000), ("O_FASYNC", 0o20000),
    ("O_DIRECT", 0o40000), ("O_LARGEFILE", 0o100000), ("O_DIRECTORY", 0o200000),
    ("O_NOFOLLOW", 0o400000), ("O_NOATIME", 0o1000000), ("O_CLOEXEC", 0o2000000),
]


def boot_to_realtime_offset_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_REALTIME) - time.clock_gettime_ns(time.CLOCK_BOOTTIME)


_ts_cache: tuple[int, str, str] = (-1, "", "")  # second, "YYYY-MM-DDTHH:MM:SS", zone


def second_parts(secs: int) -> tuple[int, str, str]:
    """``(secs, "YYYY-MM-DDTHH:MM:SS", zone)`` of a wall-clock second: what a timestamp's
    text has around its nanoseconds (``zone``: ``Z`` or ``+01:00``)."""
    t = _dt.datetime.fromtimestamp(secs).astimezone()
    off = t.strftime("%z")
    return (secs, t.strftime("%Y-%m-%dT%H:%M:%S"),
            "Z" if off in ("+0000", "") else f"{off[:3]}:{off[3:]}")


def timestamp_string(wall_ns: int) -> str:
    global _ts_cache
    secs, ns = divmod(wall_ns, 1_000_000_000)
    cache = _ts_cache
    if cache[0] != secs:  # events come in bursts within one second: format it once
        cache = _ts_cache = second_parts(secs)
    return f"{cache[1]}.{ns:09d}{cache[2]}"


def errno_name(v: int) -> str:
    if v == 0:
        return ""
    return _errno.errorcode.get(v, f"error#{v}")


def signal_name(v: int) -> str:
    try:
        return _signal.Signals(v).name
    except ValueError:
        return f"signal#{v}"


def file_flags(v: int) -> str:
    acc = v & 3
    parts = [("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")[acc]]
    parts += [name for name, bit in _OPEN_FLAGS if v & bit]
    return "|".join(parts)


def file_mode(v: int) -> str:
    """Like Go's fs.FileMode(v).String(): permission bits only (no file-type translation)."""
    out = "-"
    for i, c in enumerate("rwxrwxrwx"):
        out += c if v & (1 << (8 - i)) else "-"
    if v & _stat.S_ISUID:
        out = out[:3] + ("s" if v & 0o100 else "S") + out[4:]
    return out


@lru_cache(maxsize=4096)
def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return ""


@lru_cache(maxsize=4096)
def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except (KeyError, OverflowError):
        return ""


@lru_cache(maxsize=1)
def _syscall_table() -> dict[int, str]:
    header = {
        "x86_64": "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
        "aarch64": "/usr/include/asm-generic/unistd.h",
    }.get(platform.machine(), "")
    table: dict[int, str] = {}
    try:
        text = open(header).read()
    except OSError:
        return table
    for m in re.finditer(r"#define\s+__NR_(\w+)\s+(\d+)\b", text):
        table.setdefault(int(m.group(2)), m.group(1))
    return table


def syscall_name(v: int) -> str:
    name = _syscall_table().get(v)
    return f"SYS_{name.upper()}" if name else "SYS_UNKNOWN"


def human_bytes(v: int) -> str:
    if v < 1000:
        return f"{v} B"
    size = float(v)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        size /= 1000
        if size < 1000 or unit == "PB":
            return f"{size:.1f} {unit}"
    return str(size)


def human_duration(ns: int) -> str:
    if ns < 1000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1000:.2f}µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.2f}ms"
    return f"{ns / 1e9:.3f}s"
