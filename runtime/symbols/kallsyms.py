"""Kernel symbols from ``/proc/kallsyms``: an instruction pointer -> the function it is in.

As ig does, an address gets the name of the last symbol at or below it (no size check:
``[unknown]`` only below the first symbol); several names at one address give the one
listed last. Addresses are real only for root (otherwise the kernel shows zeros, and
every lookup is ``[unknown]``).
"""

from __future__ import annotations

from bisect import bisect_right

KALLSYMS = "/proc/kallsyms"
UNKNOWN = "[unknown]"


class KernelSymbols:
    """The symbols of ``path`` (read once, when made)."""

    def __init__(self, path: str = KALLSYMS) -> None:
        entries: list[tuple[int, int, str]] = []
        with open(path, "rb") as f:
            for i, line in enumerate(f):
                parts = line.split()
                if len(parts) < 3:
                    continue
                try:
                    addr = int(parts[0], 16)
                except ValueError:
                    continue
                if addr:
                    entries.append((addr, i, parts[2].decode("utf-8", "replace")))
        entries.sort()  # by address, then by the order listed
        self._addrs = [a for a, _i, _n in entries]
        self._names = [n for _a, _i, n in entries]

    def __len__(self) -> int:
        return len(self._addrs)

    def lookup(self, ip: int) -> str:
        """The name of the function ``ip`` is in, or ``[unknown]``."""
        i = bisect_right(self._addrs, ip)
        return self._names[i - 1] if i else UNKNOWN

    def format_stack(self, ips: list[int]) -> str:
        """ig's kernel stack text: every frame's name followed by ``"; "``, up to the
        first zero address."""
        out = []
        for ip in ips:
            if not ip:
                break
            out.append(self.lookup(ip) + "; ")
        return "".join(out)


__all__ = ["KALLSYMS", "UNKNOWN", "KernelSymbols"]
