"""Why a program did not load, in the words a gadget author needs.

libbpf loads an object's programs one by one; when one is rejected it loads it again
with the verifier's log on (level 1) into the buffer of :class:`VerifierLog`, which the
object is opened with (one buffer for the whole object: the failing program's log is the
one it holds). :func:`explain` turns that log and libbpf's messages into a
:class:`~gadgetsmith.runtime.errors.ProgramError`: the program, its section, the errno,
the verifier's own reason and the last lines before it (``--debug`` prints the whole log).
A CO-RE relocation that matches nothing in this kernel's BTF says which one, and points
to ``gadget check``; a program type this kernel refuses says which feature is missing.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import re

from gadgetsmith.runtime.errors import ProgramError

#: bytes of verifier log kept (the kernel keeps the end of a longer log, since 6.4)
LOG_SIZE = 8 << 20
#: lines of the verifier log shown with the error
TAIL_LINES = 8

_INSN = re.compile(r"^\d+: \(")  # "417: (5d) if r7 != r1 goto pc+42"
_PROCESSED = re.compile(r"^processed \d+ insns")
_CORE = re.compile(r"failed to resolve CO-RE relocation (.*)$")
_FAILED_PROG = re.compile(r"prog '([^']+)': (?:BPF program load failed|failed to load)")
_RELO_NO_MATCH = re.compile(r"prog '([^']+)': relo #\d+: .*no matching targets found")

#: section kinds this kernel may refuse outright (EPERM before verifying), and what they need
_KERNEL_FEATURES = {
    "fentry": "fentry/fexit programs (BPF trampolines)",
    "fexit": "fentry/fexit programs (BPF trampolines)",
    "fmod_ret": "fmod_ret programs (BPF trampolines)",
    "lsm": "BPF LSM programs (BPF trampolines)",
    "iter/bpf_map_elem": "map-element iterators (iter/bpf_map_elem, IG's GADGET_ITER_TARGET_MAP)",
}


class VerifierLog:
    """A buffer the kernel writes a rejected program's verifier log into. The pages are
    anonymous memory: only what the kernel writes is ever backed."""

    def __init__(self, size: int = LOG_SIZE) -> None:
        self.size = size
        self._mem = mmap.mmap(-1, size)
        self._buf = ctypes.c_char.from_buffer(self._mem)

    @property
    def address(self) -> int:
        return ctypes.addressof(self._buf)

    def text(self) -> str:
        """The log the kernel wrote (empty when no program failed)."""
        end = self._mem.find(b"\0")
        return self._mem[: end if end >= 0 else self.size].decode("utf-8", "replace")

    def close(self) -> None:
        if self._mem is not None:
            del self._buf
            self._mem.close()
            self._mem = None  # type: ignore[assignment]


def failing_program(libbpf_log: str, programs: dict[str, str]) -> str | None:
    """The program libbpf says it could not load (or could not relocate)."""
    for pattern in (_FAILED_PROG, _RELO_NO_MATCH):
        for m in pattern.finditer(libbpf_log):
            if m.group(1) in programs:
                return m.group(1)
    return None


def _section_kind(section: str) -> str:
    if section.startswith("iter/bpf_map_elem"):
        return "iter/bpf_map_elem"
    return section.split("/", 1)[0].split(".", 1)[0]


def _reason(lines: list[str]) -> str:
    """The verifier's own words: the lines after the last instruction it printed and
    before its 'processed N insns' summary (e.g. 'invalid access to map value ...')."""
    end = next((i for i in range(len(lines) - 1, -1, -1) if _PROCESSED.match(lines[i])), len(lines))
    body = lines[:end]
    start = next((i + 1 for i in range(len(body) - 1, -1, -1) if _INSN.match(body[i])), 0)
    said = [line.strip() for line in body[start:] if line.strip() and not line.startswith(";")]
    # a state dump ("R1=ctx() R10=fp0") or the function header says nothing new
    said = [s for s in said if not re.match(r"^(\d+: )?(R\d+\w*=|func#\d+)", s)]
    return "; ".join(said[-3:])


def tail(lines: list[str], n: int = TAIL_LINES) -> list[str]:
    """The last ``n`` lines before the verifier's summary."""
    end = next((i for i in range(len(lines) - 1, -1, -1) if _PROCESSED.match(lines[i])), len(lines))
    return [line for line in lines[:end] if line.strip()][-n:]


def explain(err: int, libbpf_log: str, verifier_log: str, programs: dict[str, str]) -> ProgramError:
    """The error for an object whose load failed with ``err`` (an errno). ``programs``:
    program name -> section."""
    name = failing_program(libbpf_log, programs)
    lines = verifier_log.splitlines()
    code = errno.errorcode.get(err, str(err))
    core = next((m.group(1) for line in lines if (m := _CORE.search(line))), None)
    if name is None:
        last = next((line for line in reversed(libbpf_log.splitlines()) if line.strip()), "")
        return ProgramError("", "", err, f"loading the eBPF object failed: {code} {last}".strip(),
                            verifier_log)
    section = programs[name]
    head = f"program {name} ({section}) cannot be loaded"
    if core is not None:
        return ProgramError(
            name, section, err,
            f"{head}: CO-RE relocation {core} matches nothing in this kernel's BTF: "
            "'gadget check IMAGE --kernels /sys/kernel/btf/vmlinux' shows what each kernel lacks",
            verifier_log)
    too_large = any("program is too large" in line for line in lines)
    if too_large:
        code = "E2BIG"  # a log longer than the buffer turns the kernel's E2BIG into ENOSPC
    kind = _section_kind(section)
    refused = err == errno.EPERM and not any(_INSN.match(line) for line in lines)
    if refused and kind in _KERNEL_FEATURES:
        return ProgramError(name, section, err,
                            f"{head}: EPERM before the verifier read an instruction: this kernel "
                            f"does not allow {_KERNEL_FEATURES[kind]}",
                            verifier_log)
    if refused:
        return ProgramError(name, section, err,
                            f"{head}: EPERM: the kernel refused the program before verifying it "
                            "(run as root, with CAP_BPF and CAP_PERFMON)", verifier_log)
    reason = _reason(lines)
    text = f"{head}: {code}" + (f": {reason}" if reason else "")
    shown = tail(lines)
    if shown:
        text += "\n  verifier log, last lines (--debug prints all of it):\n" + "\n".join(
            f"    {line}" for line in shown)
    return ProgramError(name, section, err, text, verifier_log)


__all__ = ["LOG_SIZE", "VerifierLog", "explain", "failing_program", "tail"]
