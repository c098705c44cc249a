"""perf_event programs (``SEC("perf_event/NAME")``), attached as ig attaches them: one
sampling event per online CPU, described by gadget.yaml's ``programs.NAME``:

    programs:
      profiler:
        perf: {type: software, config: count_sw_cpu_clock, sampleType: sample_raw}
        sampler: {frequency: 49}

Like ig, only the software CPU clock with raw samples is known, and every key is needed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from dataclasses import dataclass
from typing import Any

from gadgetsmith.runtime.errors import PerfConfigError

PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_CPU_CLOCK = 0
PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3
ATTR_FREQ = 1 << 10  # perf_event_attr.freq: sample_freq is a frequency, not a period
PREFIX = "perf_event"

_TYPES = {"software": PERF_TYPE_SOFTWARE}
_CONFIGS = {"count_sw_cpu_clock": PERF_COUNT_SW_CPU_CLOCK}
_SAMPLE_TYPES = {"sample_raw": PERF_SAMPLE_RAW}
_SYSCALL = {"x86_64": 298, "aarch64": 241}  # __NR_perf_event_open

_libc = ctypes.CDLL(None, use_errno=True)


class PerfEventAttr(ctypes.Structure):
    """The first published struct perf_event_attr (PERF_ATTR_SIZE_VER0, 64 bytes)."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_freq", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
    ]


@dataclass(frozen=True)
class PerfEventConfig:
    type: int
    config: int
    sample_type: int
    frequency: int


def program_key(section: str) -> str:
    """The name under gadget.yaml's ``programs`` of a perf_event program's section."""
    return section[len(PREFIX) + 1:] if section.startswith(PREFIX + "/") else ""


def config_for(metadata: dict[str, Any], section: str) -> PerfEventConfig:
    """The event ``programs.NAME`` of ``metadata`` describes; PerfConfigError naming the
    key that is missing or unknown."""
    name = program_key(section)
    if not name:
        raise PerfConfigError(f"section {section!r}: perf_event programs need a name "
                              "(perf_event/NAME) to find programs.NAME in gadget.yaml")

    def get(path: str) -> str:
        node: Any = metadata.get("programs")
        for part in [name, *path.split(".")]:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None or str(node) == "":
            raise PerfConfigError(f"gadget.yaml: programs.{name}.{path} is not set (ig's "
                                  "perf_event programs need perf.type, perf.config, "
                                  "perf.sampleType and sampler.frequency)")
        return str(node)

    def known(path: str, table: dict[str, int]) -> int:
        text = get(path)
        if text not in table:
            raise PerfConfigError(f"gadget.yaml: programs.{name}.{path}: {text!r} is not "
                                  f"supported (ig knows {', '.join(table)})")
        return table[text]

    ptype = known("perf.type", _TYPES)
    config = known("perf.config", _CONFIGS)
    sample = known("perf.sampleType", _SAMPLE_TYPES)
    freq_text = get("sampler.frequency")
    try:
        freq = int(freq_text)
    except ValueError:
        raise PerfConfigError(f"gadget.yaml: programs.{name}.sampler.frequency: {freq_text!r} "
                              "is not a number") from None
    if freq <= 0:
        raise PerfConfigError(f"gadget.yaml: programs.{name}.sampler.frequency must be above 0")
    return PerfEventConfig(ptype, config, sample, freq)


def online_cpus(path: str = "/sys/devices/system/cpu/online") -> list[int]:
    """The online CPUs (``0-3,6``)."""
    try:
        text = open(path).read().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    out: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


def open_event(cfg: PerfEventConfig, cpu: int) -> int:
    """A sampling event on ``cpu`` for every process (its fd): OSError when refused."""
    nr = _SYSCALL.get(platform.machine())
    if nr is None:
        raise OSError(errno.ENOSYS, f"perf_event_open: unknown on {platform.machine()}")
    attr = PerfEventAttr(type=cfg.type, size=ctypes.sizeof(PerfEventAttr), config=cfg.config,
                         sample_freq=cfg.frequency, sample_type=cfg.sample_type, flags=ATTR_FREQ)
    fd = _libc.syscall(ctypes.c_long(nr), ctypes.byref(attr), ctypes.c_int(-1), ctypes.c_int(cpu),
                       ctypes.c_int(-1), ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"perf_event_open on CPU {cpu}: {os.strerror(err)}")
    return int(fd)


__all__ = ["PerfConfigError", "PerfEventConfig", "config_for", "online_cpus", "open_event",
           "program_key"]
