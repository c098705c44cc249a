"""``gadget check``: on which kernels an eBPF object loads, and why not.

For each kernel BTF, every program of the object is judged as libbpf and the verifier
would judge it, without loading anything:

- CO-RE relocations are resolved (:mod:`.core`). An unresolved one poisons its
  instruction, which fails the load only if the verifier can reach it; reachability is
  worked out here by following the program's jumps with the constants the relocations
  produce (``if (bpf_core_field_exists(...))`` guards whose field is missing skip their
  code, as the verifier's dead-code pruning does). Only constants in registers are
  followed, so a guard the verifier resolves through the stack or value ranges is taken
  as reachable (a possible false "does not load", never a false "loads").
- The program type (from the section name, libbpf's names) must be in the kernel's
  ``enum bpf_prog_type``; ``tp_btf/``, ``raw_tp/``, ``fentry/``, ``fexit/``, ``lsm/`` and
  ``iter/`` targets must be in its BTF.
- Helpers called from reachable code must be in its ``enum bpf_func_id``, map types in
  ``enum bpf_map_type``, kfuncs and ksyms (non-weak ``__ksym`` externs) in its BTF.

What BTF cannot show is not checked: which helpers a program type may call, verifier
limits, kprobe targets (kallsyms), tracepoints under tracefs, kernel config.
"""

from __future__ import annotations

import os
import platform
import struct
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from gadgetsmith.runtime.bpf.btf import LazyBtf
from gadgetsmith.runtime.bpf.btfgen import read_layer
from gadgetsmith.runtime.bpf.elf import Symbol
from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import Layout, LayoutError, UnknownReference, default_store_path
from gadgetsmith.runtime.oci.reference import InvalidReference
from gadgetsmith.toolchain.btfgen import archive, core
from gadgetsmith.toolchain.btfgen.minimize import default_jobs
from gadgetsmith.toolchain.errors import GadgetError, NotFoundError, UsageError

# section prefix -> BPF_PROG_TYPE_* (libbpf's section names); the longest prefix wins
PROG_TYPES: tuple[tuple[str, str], ...] = (
    ("socket", "SOCKET_FILTER"), ("sk_reuseport", "SK_REUSEPORT"),
    ("kprobe.multi/", "KPROBE"), ("kretprobe.multi/", "KPROBE"), ("uprobe.multi", "KPROBE"),
    ("uretprobe.multi", "KPROBE"), ("kprobe/", "KPROBE"), ("kretprobe/", "KPROBE"),
    ("uprobe", "KPROBE"), ("uretprobe", "KPROBE"), ("uprobe.s", "KPROBE"), ("uretprobe.s", "KPROBE"),
    ("ksyscall/", "KPROBE"), ("kretsyscall/", "KPROBE"), ("usdt", "KPROBE"),
    ("tc", "SCHED_CLS"), ("tcx/", "SCHED_CLS"), ("netkit/", "SCHED_CLS"),
    ("classifier", "SCHED_CLS"), ("action", "SCHED_ACT"),
    ("tracepoint/", "TRACEPOINT"), ("tp/", "TRACEPOINT"),
    ("raw_tracepoint/", "RAW_TRACEPOINT"), ("raw_tp/", "RAW_TRACEPOINT"),
    ("raw_tracepoint.w/", "RAW_TRACEPOINT_WRITABLE"), ("raw_tp.w/", "RAW_TRACEPOINT_WRITABLE"),
    ("tp_btf/", "TRACING"), ("fentry/", "TRACING"), ("fexit/", "TRACING"),
    ("fmod_ret/", "TRACING"), ("fentry.s/", "TRACING"), ("fexit.s/", "TRACING"),
    ("fmod_ret.s/", "TRACING"), ("iter/", "TRACING"), ("iter.s/", "TRACING"),
    ("freplace/", "EXT"), ("lsm/", "LSM"), ("lsm.s/", "LSM"), ("lsm_cgroup/", "LSM"),
    ("syscall", "SYSCALL"), ("xdp", "XDP"), ("xdp.frags", "XDP"), ("perf_event", "PERF_EVENT"),
    ("lwt_in", "LWT_IN"), ("lwt_out", "LWT_OUT"), ("lwt_xmit", "LWT_XMIT"),
    ("lwt_seg6local", "LWT_SEG6LOCAL"), ("sockops", "SOCK_OPS"), ("sk_skb", "SK_SKB"),
    ("sk_msg", "SK_MSG"), ("lirc_mode2", "LIRC_MODE2"), ("flow_dissector", "FLOW_DISSECTOR"),
    ("cgroup_skb/", "CGROUP_SKB"), ("cgroup/skb", "CGROUP_SKB"),
    ("cgroup/sock_create", "CGROUP_SOCK"), ("cgroup/sock_release", "CGROUP_SOCK"),
    ("cgroup/sock", "CGROUP_SOCK"), ("cgroup/post_bind4", "CGROUP_SOCK"),
    ("cgroup/post_bind6", "CGROUP_SOCK"), ("cgroup/dev", "CGROUP_DEVICE"),
    ("cgroup/bind4", "CGROUP_SOCK_ADDR"), ("cgroup/bind6", "CGROUP_SOCK_ADDR"),
    ("cgroup/connect4", "CGROUP_SOCK_ADDR"), ("cgroup/connect6", "CGROUP_SOCK_ADDR"),
    ("cgroup/connect_unix", "CGROUP_SOCK_ADDR"), ("cgroup/sendmsg4", "CGROUP_SOCK_ADDR"),
    ("cgroup/sendmsg6", "CGROUP_SOCK_ADDR"), ("cgroup/sendmsg_unix", "CGROUP_SOCK_ADDR"),
    ("cgroup/recvmsg4", "CGROUP_SOCK_ADDR"), ("cgroup/recvmsg6", "CGROUP_SOCK_ADDR"),
    ("cgroup/recvmsg_unix", "CGROUP_SOCK_ADDR"), ("cgroup/getpeername4", "CGROUP_SOCK_ADDR"),
    ("cgroup/getpeername6", "CGROUP_SOCK_ADDR"), ("cgroup/getsockname4", "CGROUP_SOCK_ADDR"),
    ("cgroup/getsockname6", "CGROUP_SOCK_ADDR"), ("cgroup/sysctl", "CGROUP_SYSCTL"),
    ("cgroup/getsockopt", "CGROUP_SOCKOPT"), ("cgroup/setsockopt", "CGROUP_SOCKOPT"),
    ("struct_ops", "STRUCT_OPS"), ("struct_ops.s", "STRUCT_OPS"), ("sk_lookup", "SK_LOOKUP"),
    ("netfilter", "NETFILTER"),
)
# section prefix -> (BTF name of the attach target, kind, what to call it)
ATTACH_TARGETS: tuple[tuple[str, str, str, str], ...] = (
    ("tp_btf/", "btf_trace_{}", "typedef", "BTF tracepoint"),
    ("raw_tp/", "btf_trace_{}", "typedef", "raw tracepoint"),
    ("raw_tracepoint/", "btf_trace_{}", "typedef", "raw tracepoint"),
    ("fentry/", "{}", "func", "function"), ("fexit/", "{}", "func", "function"),
    ("fmod_ret/", "{}", "func", "function"), ("fentry.s/", "{}", "func", "function"),
    ("fexit.s/", "{}", "func", "function"), ("fmod_ret.s/", "{}", "func", "function"),
    ("lsm/", "bpf_lsm_{}", "func", "LSM hook"), ("lsm.s/", "bpf_lsm_{}", "func", "LSM hook"),
    ("iter/", "bpf_iter_{}", "func", "iterator"), ("iter.s/", "bpf_iter_{}", "func", "iterator"),
)


def prog_type_of(section: str) -> str | None:
    best: tuple[int, str] | None = None
    for prefix, ptype in PROG_TYPES:
        if prefix.endswith("/") or prefix in ("socket", "uprobe", "uretprobe", "usdt", "xdp", "tc"):
            hit = section.startswith(prefix)
        else:
            hit = section == prefix or section.startswith(prefix + "/")
        if hit and (best is None or len(prefix) > best[0]):
            best = (len(prefix), ptype)
    return best[1] if best else None


@dataclass
class Problem:
    kind: str  # relocation, program type, attach target, helper, map type, kfunc, ksym
    message: str
    program: str | None = None
    section: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "program": self.program, "section": self.section,
                "message": self.message}

    def __str__(self) -> str:
        where = f"{self.program} ({self.section}): " if self.program else ""
        return f"{where}{self.message}"


@dataclass
class Verdict:
    kernel: str  # ID/VERSION_ID/ARCH/RELEASE, or a file's label
    arch: str
    problems: list[Problem] = field(default_factory=list)
    #: unresolved relocations the verifier cannot reach (guarded), for information
    guarded: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the kernel's BTF could not be read
    #: helper ids / map types this kernel lacks, named by finish() once every kernel is read
    missing_helpers: dict[int, list[str]] = field(default_factory=dict)
    missing_maps: dict[int, list[str]] = field(default_factory=dict)

    def finish(self, names: Mapping[str, Mapping[int, str]]) -> None:
        """Turn the missing helpers and map types into problems, named from ``names``."""
        for hid, progs in sorted(self.missing_helpers.items()):
            name = names.get("bpf_func_id", {}).get(hid)
            label = name.replace("BPF_FUNC_", "bpf_") + "()" if name else f"helper #{hid}"
            self.problems.append(Problem("helper", f"this kernel has no {label} helper "
                                                   f"(called by {', '.join(progs)})"))
        for map_type, maps in sorted(self.missing_maps.items()):
            name = names.get("bpf_map_type", {}).get(map_type) or f"map type #{map_type}"
            self.problems.append(Problem("map type", f"this kernel has no {name} maps "
                                                     f"(map {', '.join(maps)})"))
        self.missing_helpers, self.missing_maps = {}, {}

    @property
    def loads(self) -> bool:
        return not self.problems and self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "arch": self.arch, "loads": self.loads,
                "problems": [p.as_dict() for p in self.problems], "guarded": self.guarded,
                "notes": self.notes, "error": self.error}


# -- the object ------------------------------------------------------------------------
@dataclass
class _Program:
    name: str
    section: str
    start: int  # instruction index in the section
    end: int


@dataclass
class ObjectFacts:
    """What the check needs from one object, read once for all kernels."""

    cobj: core.CoreObject
    programs: list[_Program]
    code: dict[str, bytes]  # section -> instructions
    relocs: dict[str, dict[int, Symbol]]  # section -> byte offset -> symbol (ELF relocations)
    map_types: dict[str, int]  # map name -> BPF_MAP_TYPE_* value
    externs: list[tuple[str, str, bool]]  # (name, "func"|"var", weak)


def read_facts(data: bytes) -> ObjectFacts:
    cobj = core.read_object(data)
    elf = cobj.elf
    programs: list[_Program] = []
    code: dict[str, bytes] = {}
    relocs: dict[str, dict[int, Symbol]] = {}
    for sym in elf.symbols:
        if sym.type != 2 or not sym.name or not 0 < sym.section_index < len(elf.sections):
            continue
        sec = elf.sections[sym.section_index]
        if sec.name not in code:
            code[sec.name] = sec.data
            relocs[sec.name] = elf.relocations(sec.name)
        if sec.name != ".text" and not sec.name.startswith("."):
            n = (sym.size or (sec.size - sym.value)) // 8
            programs.append(_Program(sym.name, sec.name, sym.value // 8, sym.value // 8 + n))
    if ".text" in (s.name for s in elf.sections) and ".text" not in code:
        code[".text"] = elf.section(".text").data  # type: ignore[union-attr]
        relocs[".text"] = elf.relocations(".text")
    programs.sort(key=lambda p: (p.section, p.start))
    return ObjectFacts(cobj, programs, code, relocs, _map_types(cobj), _externs(cobj))


def _map_types(cobj: core.CoreObject) -> dict[str, int]:
    """BTF-defined maps (``SEC(".maps")``): their ``type`` member is ``int (*type)[N]``."""
    btf = cobj.btf
    out: dict[str, int] = {}
    sec = btf.datasec(".maps")
    if sec is None:
        return out
    for v in sec.vars:
        var = btf.types[v.type]
        st = btf.resolve(var.type)
        if st.kind not in ("struct", "union"):
            continue
        for m in st.members:
            if m.name == "type":
                ptr = btf.resolve(m.type)
                if ptr.kind == "ptr":
                    arr = btf.resolve(ptr.type)
                    if arr.kind == "array":
                        out[var.name] = arr.nelems
    return out


def _externs(cobj: core.CoreObject) -> list[tuple[str, str, bool]]:
    """``__ksym`` externs: functions (kfuncs) and variables of the ``.ksyms`` section."""
    btf = cobj.btf
    weak = {s.name for s in cobj.elf.symbols if s.bind == 2 and s.section_index == 0}
    out: list[tuple[str, str, bool]] = []
    sec = btf.datasec(".ksyms")
    if sec is None:
        return out
    for v in sec.vars:
        t = btf.types[v.type]
        if t.kind == "func":
            out.append((t.name, "func", t.name in weak))
        elif t.kind == "var":
            out.append((t.name, "var", t.name in weak))
    return out


# -- reachability ----------------------------------------------------------------------
_MASK64 = (1 << 64) - 1


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _cond(op: int, a: int, b: int, bits: int) -> bool | None:
    mask = (1 << bits) - 1
    ua, ub = a & mask, b & mask
    sa, sb = _signed(a, bits), _signed(b, bits)
    table: dict[int, Callable[[], bool]] = {
        0x10: lambda: ua == ub, 0x50: lambda: ua != ub, 0x20: lambda: ua > ub,
        0x30: lambda: ua >= ub, 0xA0: lambda: ua < ub, 0xB0: lambda: ua <= ub,
        0x40: lambda: bool(ua & ub), 0x60: lambda: sa > sb, 0x70: lambda: sa >= sb,
        0xC0: lambda: sa < sb, 0xD0: lambda: sa <= sb,
    }
    fn = table.get(op)
    return fn() if fn else None


_ALU: dict[int, Callable[[int, int], int | None]] = {
    0x00: lambda a, b: a + b, 0x10: lambda a, b: a - b, 0x20: lambda a, b: a * b,
    0x40: lambda a, b: a | b, 0x50: lambda a, b: a & b, 0x60: lambda a, b: a << (b & 63),
    0x70: lambda a, b: (a & _MASK64) >> (b & 63), 0xA0: lambda a, b: a ^ b,
}

Regs = tuple[int | None, ...]
_UNKNOWN: Regs = (None,) * 11


@dataclass
class Reach:
    """Instructions (section, index) the verifier can reach, and what they call."""

    insns: set[tuple[str, int]] = field(default_factory=set)
    helpers: dict[int, set[str]] = field(default_factory=dict)  # helper id -> programs
    kfuncs: dict[str, set[str]] = field(default_factory=dict)


def reachable(facts: ObjectFacts, prog: _Program, values: Mapping[tuple[str, int], int | None],
              reach: Reach) -> None:
    """Walk ``prog`` (and the subprograms it calls) with relocated constants.

    ``values``: (section, byte offset) -> the relocated value of that instruction's
    immediate, or None for a poisoned one.
    """
    states: dict[tuple[str, int], Regs] = {}
    work: list[tuple[str, int, Regs]] = [(prog.section, prog.start, _UNKNOWN)]
    budget = 200_000
    while work and budget:
        budget -= 1
        sec, pc, regs = work.pop()
        code = facts.code.get(sec)
        if code is None or pc < 0 or pc * 8 + 8 > len(code):
            continue
        key = (sec, pc)
        old = states.get(key)
        if old is not None:
            merged = tuple(a if a == b else None for a, b in zip(old, regs, strict=True))
            if merged == old:
                continue
            regs = merged
        states[key] = regs
        reach.insns.add(key)
        relo_val = values.get((sec, pc * 8), "none")
        if relo_val is None:
            continue  # poisoned: the verifier stops here ("invalid func unknown#195896080")
        op, rr, off, imm = struct.unpack_from("<BBhi", code, pc * 8)
        relocated = relo_val != "none"
        insn = _Insn(sec, pc, op, rr, off, int(relo_val) if relocated else imm,
                     relocated)
        for npc, nregs in _step(facts, prog, code, insn, list(regs), reach, work):
            work.append((sec, npc, tuple(nregs)))


class _Insn(NamedTuple):
    sec: str
    pc: int
    code: int
    regs: int  # dst in the low nibble, src in the high one
    off: int
    imm: int
    relocated: bool = False  # imm is a CO-RE relocation's value

    @property
    def dst(self) -> int:
        return self.regs & 0x0F

    @property
    def src(self) -> int:
        return self.regs >> 4


def _step(facts: ObjectFacts, prog: _Program, code: bytes, insn: _Insn, regs: list[int | None],
          reach: Reach, work: list[tuple[str, int, Regs]]) -> list[tuple[int, list[int | None]]]:
    """What one instruction does to the registers, and where the walk goes next."""
    cls = insn.code & 0x07
    dst, src = insn.dst, insn.src
    if cls == 0:  # LD
        return _load(code, insn, regs)
    if cls == 1:  # LDX
        if dst < 11:
            regs[dst] = None
    elif cls == 3 and (insn.code & 0xE0) == 0xC0:  # atomics may write src or r0
        if src < 11:
            regs[src] = None
        regs[0] = None
    elif cls in (4, 7):  # ALU, ALU64
        _alu(insn, regs, 64 if cls == 7 else 32)
    elif cls in (5, 6):  # JMP, JMP32
        return _jump(facts, prog, insn, regs, reach, work)
    return [(insn.pc + 1, regs)]


def _load(code: bytes, insn: _Insn, regs: list[int | None]) -> list[tuple[int, list[int | None]]]:
    pc, dst, imm = insn.pc, insn.dst, insn.imm
    if insn.code == 0x18:  # ld_imm64: two slots
        if dst < 11:
            if insn.src == 0 and pc * 8 + 16 <= len(code):
                hi = struct.unpack_from("<i", code, pc * 8 + 12)[0]
                regs[dst] = imm if insn.relocated else (imm & 0xFFFFFFFF) | (hi << 32)
            else:
                regs[dst] = None
        return [(pc + 2, regs)]
    for r in range(6):  # legacy packet loads
        regs[r] = None
    return [(pc + 1, regs)]


def _alu(insn: _Insn, regs: list[int | None], bits: int) -> None:
    op, dst, src = insn.code & 0xF0, insn.dst, insn.src
    operand = insn.imm if not insn.code & 0x08 else (regs[src] if src < 11 else None)
    if dst < 11:
        current = regs[dst]
        if op == 0xB0:  # mov
            v = operand
        elif op in _ALU and current is not None and operand is not None:
            v = _ALU[op](current, operand)
        else:
            v = None
        regs[dst] = None if v is None else (v & ((1 << bits) - 1))


def _jump(facts: ObjectFacts, prog: _Program, insn: _Insn, regs: list[int | None], reach: Reach,
          work: list[tuple[str, int, Regs]]) -> list[tuple[int, list[int | None]]]:
    op, pc, jmp32 = insn.code & 0xF0, insn.pc, (insn.code & 0x07) == 6
    if op == 0x00:  # ja
        return [(pc + (insn.imm if jmp32 else insn.off) + 1, regs)]
    if op == 0x80:  # call
        _call(facts, prog, insn.sec, pc, insn.src, insn.imm, reach, work)
        for r in range(6):
            regs[r] = None
        return [(pc + 1, regs)]
    if op == 0x90:  # exit
        return []
    a = regs[insn.dst] if insn.dst < 11 else None
    b = insn.imm if not insn.code & 0x08 else (regs[insn.src] if insn.src < 11 else None)
    taken = _cond(op, a, b, 32 if jmp32 else 64) if a is not None and b is not None else None
    target = pc + insn.off + 1
    if taken is True:
        return [(target, regs)]
    if taken is False:
        return [(pc + 1, regs)]
    return [(pc + 1, regs), (target, list(regs))]


def _call(facts: ObjectFacts, prog: _Program, sec: str, pc: int, src: int, imm: int,
          reach: Reach, work: list[tuple[str, int, Regs]]) -> None:
    if src == 0:
        reach.helpers.setdefault(imm, set()).add(prog.name)
        return
    sym = facts.relocs.get(sec, {}).get(pc * 8)
    if src == 2:  # kfunc
        if sym is not None:
            reach.kfuncs.setdefault(sym.name, set()).add(prog.name)
        return
    if src == 1:  # bpf-to-bpf call
        if sym is not None and 0 < sym.section_index < len(facts.cobj.elf.sections):
            tsec = facts.cobj.elf.sections[sym.section_index].name
            target = sym.value // 8 + imm + 1
        else:
            tsec, target = sec, pc + imm + 1
        work.append((tsec, target, _UNKNOWN))


# -- one kernel ------------------------------------------------------------------------
def _enum_values(kb: Any, name: str) -> dict[int, str]:
    """Value -> enumerator of a kernel enum, without the ``__MAX_*`` end markers."""
    out: dict[int, str] = {}
    for t in kb.find_all(name):
        if t.kind in core.ENUMS:
            for n, v in t.values:
                if not n.startswith("__") and not n.startswith("MAX_"):
                    out.setdefault(v, n)
    return out


def check_kernel(facts: ObjectFacts, kb: Any, kernel: str, arch: str) -> Verdict:
    """Judge the object against one kernel BTF (:class:`LazyBtf` or :class:`Btf`).

    Missing helpers and map types are kept by number until :meth:`Verdict.finish`
    names them (a kernel that lacks one cannot name it)."""
    verdict = Verdict(kernel, arch)
    reach = _check_relocations(facts, kb, verdict)
    prog_types = _enum_values(kb, "bpf_prog_type")
    if not prog_types:
        # a minimised BTF (an image's btfgen entry) has only what the relocations use
        verdict.notes.append("a minimised BTF: only CO-RE relocations were checked")
        return verdict
    _check_programs(facts, kb, set(prog_types.values()), verdict)
    funcs = _enum_values(kb, "bpf_func_id")
    if funcs:
        for hid in sorted(reach.helpers):
            if hid not in funcs:
                verdict.missing_helpers[hid] = sorted(reach.helpers[hid])
    mtypes = _enum_values(kb, "bpf_map_type")
    if mtypes:
        for mname, mt in sorted(facts.map_types.items()):
            if mt not in mtypes:
                verdict.missing_maps.setdefault(mt, []).append(mname)
    for name, kind, weak in facts.externs:
        if weak:
            continue
        if kind == "func" and name not in reach.kfuncs:
            continue  # a kfunc only the unreachable code calls
        if not any(t.kind == kind for t in kb.find_all(name)):
            what = "kfunc" if kind == "func" else "ksym"
            verdict.problems.append(Problem(what, f"no {what} {name} in this kernel"))
    return verdict


def _check_relocations(facts: ObjectFacts, kb: Any, verdict: Verdict) -> Reach:
    """Resolve every CO-RE relocation against ``kb``; a failed one in reachable code is a
    problem of its program, in unreachable code a guarded note. Returns what the programs
    reach with the relocated values."""
    cobj = facts.cobj
    values: dict[tuple[str, int], int | None] = {}
    failed: dict[tuple[str, int], core.Resolution] = {}
    for relo in cobj.relos:
        res = core.resolve(cobj, relo, kb)
        values[(relo.section, relo.insn_off)] = res.value if res.ok else None
        if not res.ok:
            failed[(relo.section, relo.insn_off // 8)] = res
    reach = Reach()
    for prog in facts.programs:
        mine = Reach()
        reachable(facts, prog, values, mine)
        for key, res in sorted(failed.items()):
            if key in mine.insns:
                verdict.problems.append(Problem("relocation", res.message(), prog.name, prog.section))
        reach.insns |= mine.insns
        for hid, progs in mine.helpers.items():
            reach.helpers.setdefault(hid, set()).update(progs)
        for kf, progs in mine.kfuncs.items():
            reach.kfuncs.setdefault(kf, set()).update(progs)
    reported = {p.message for p in verdict.problems}
    for key, res in sorted(failed.items()):
        if key not in reach.insns and res.message() not in reported:
            verdict.guarded.append(f"{res.message()} (in code the verifier does not reach)")
            reported.add(res.message())
    _dedupe(verdict)
    return reach


def _check_programs(facts: ObjectFacts, kb: Any, type_names: set[str], verdict: Verdict) -> None:
    """Each program's type and attach target exist in this kernel."""
    for prog in facts.programs:
        ptype = prog_type_of(prog.section)
        if ptype and f"BPF_PROG_TYPE_{ptype}" not in type_names:
            verdict.problems.append(Problem(
                "program type", f"this kernel has no BPF_PROG_TYPE_{ptype} programs",
                prog.name, prog.section))
            continue
        for prefix, pattern, kind, what in ATTACH_TARGETS:
            if prog.section.startswith(prefix):
                target = prog.section[len(prefix):]
                if target and not any(t.kind == kind for t in kb.find_all(pattern.format(target))):
                    verdict.problems.append(Problem(
                        "attach target", f"no {what} {target} in this kernel", prog.name, prog.section))
                break


def _dedupe(v: Verdict) -> None:
    seen: set[tuple[str, str | None]] = set()
    out = []
    for p in v.problems:
        k = (p.message, p.program)
        if k not in seen:
            seen.add(k)
            out.append(p)
    v.problems = out


def name_tables(kbs: Iterable[Any]) -> dict[str, dict[int, str]]:
    """Names of helpers and map types, merged over kernels (for the ones a kernel lacks)."""
    out: dict[str, dict[int, str]] = {"bpf_func_id": {}, "bpf_map_type": {}}
    for kb in kbs:
        for enum in out:
            for v, n in _enum_values(kb, enum).items():
                out[enum].setdefault(v, n)
    return out


# -- many kernels --------------------------------------------------------------------------
@dataclass
class KernelSource:
    """A kernel to check: a label, its architecture and how to get its BTF bytes."""

    label: str
    arch: str
    load: Callable[[], bytes]
    path: str | None = None


def _given(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def kernels_from(paths: Iterable[str], arches: set[str]) -> list[KernelSource]:
    """``--kernels`` values: archive folders (btfhub layout) or single BTF files
    (``/sys/kernel/btf/vmlinux``; a raw BTF or a btfhub ``.btf.tar.xz``)."""
    out: list[KernelSource] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for e in archive.scan_archive(path, arches):
                out.append(KernelSource(e.key, e.arch or "?", partial(archive.read_btf, e),
                                        str(e.path)))
            continue
        if not path.exists():
            raise UsageError(f"--kernels {p}: no such file or directory")
        data = archive.read_btf(path)
        arch = archive.btf_arch(data)
        if arch is None:
            raise UsageError(f"--kernels {p}: cannot tell the kernel's architecture from its BTF")
        if arch not in arches:
            continue
        label = (f"this machine ({platform.release()})"
                 if os.path.realpath(path) == "/sys/kernel/btf/vmlinux" else str(path))
        out.append(KernelSource(label, arch, _given(data), str(path)))
    return out


def kernels_from_layers(layers: Mapping[str, bytes]) -> list[KernelSource]:
    """The minimised kernels an image's btfgen layers carry (arch -> layer bytes)."""
    out: list[KernelSource] = []
    for arch, layer in sorted(layers.items()):
        for name, data in sorted(read_layer(layer).items()):
            out.append(KernelSource(name.removesuffix(".btf"), arch, _given(data)))
    return out


def run(objects: Mapping[str, bytes], kernels: list[KernelSource], jobs: int | None = None,
        progress: Callable[[int, int, Any], None] | None = None) -> list[Verdict]:
    """Check ``objects[arch]`` against every kernel of that arch, a few at a time."""
    facts = {a: read_facts(d) for a, d in objects.items()}
    names: dict[str, dict[int, str]] = {"bpf_func_id": {}, "bpf_map_type": {}}

    def one(k: KernelSource) -> tuple[Verdict, dict[str, dict[int, str]]]:
        try:
            kb = LazyBtf(k.load())
        except (GadgetError, ValueError) as e:
            v = Verdict(k.label, k.arch)
            v.error = str(e)
            return v, {}
        return check_kernel(facts[k.arch], kb, k.label, k.arch), name_tables([kb])

    todo = [k for k in kernels if k.arch in facts]
    verdicts: list[Verdict] = []
    with ThreadPoolExecutor(max_workers=jobs or default_jobs()) as pool:
        for i, (v, n) in enumerate(pool.map(one, todo)):
            verdicts.append(v)
            for enum, vals in n.items():
                for val, nm in vals.items():
                    names[enum].setdefault(val, nm)
            if progress is not None:
                progress(i + 1, len(todo), v.kernel)
    if any(v.missing_helpers or v.missing_maps for v in verdicts):
        _host_names(names)
    for v in verdicts:
        v.finish(names)
    return verdicts


def _host_names(names: dict[str, dict[int, str]]) -> None:
    """Names from this machine's kernel BTF too, for helpers no checked kernel has."""
    try:
        with open("/sys/kernel/btf/vmlinux", "rb") as f:
            kb = LazyBtf(f.read())
    except (OSError, ValueError):
        return
    for enum, vals in name_tables([kb]).items():
        for val, nm in vals.items():
            names[enum].setdefault(val, nm)


# -- what to check ---------------------------------------------------------------------
@dataclass
class Target:
    label: str
    objects: dict[str, bytes]  # arch -> eBPF object
    btfgen_layers: dict[str, bytes] = field(default_factory=dict)  # arch -> layer


def load_target(what: str, arches: list[str] | None, store: Any = None) -> Target:
    """``IMAGE`` (the local store) or an object file. A gadget directory is compiled by the
    caller (:func:`gadgetsmith.toolchain.build.driver.compile_objects`, as `gadget check`
    does): build sits above btfgen."""
    path = Path(what)
    if path.is_file() and (what.endswith(".o") or path.read_bytes()[:4] == b"\x7fELF"):
        from gadgetsmith.runtime.bpf.loader import host_arch

        if arches and len(arches) > 1:
            raise UsageError(f"{what}: an object file is one architecture: give one --arch")
        return Target(str(path), {(arches or [host_arch()])[0]: path.read_bytes()})
    return _from_store(what, arches, store)


def _from_store(ref: str, arches: list[str] | None, store: Any) -> Target:
    layout = Layout(Path(store) if store else default_store_path())
    try:
        layout.check()
        _ref, desc = layout.resolve(ref)
        index = layout.read_json(desc["digest"]) if desc.get("mediaType") == mt.INDEX else None
        if index is None:
            raise UsageError(f"{ref}: not an image index")
        target = Target(ref, {})
        for m in index.get("manifests") or []:
            arch = (m.get("platform") or {}).get("architecture")
            if not arch or arch in target.objects or (arches and arch not in arches):
                continue
            manifest = layout.read_json(m["digest"])
            for layer in manifest.get("layers") or []:
                if layer.get("mediaType") == mt.EBPF:
                    target.objects[arch] = layout.read_blob(layer["digest"])
                elif layer.get("mediaType") == mt.BTFGEN:
                    target.btfgen_layers[arch] = layout.read_blob(layer["digest"])
    except UnknownReference:
        raise NotFoundError(f"{ref}: no such gadget directory, object file or image "
                            "(see 'gadget list')") from None
    except (LayoutError, InvalidReference) as e:
        raise UsageError(f"{ref}: {e}") from None
    if not target.objects:
        raise UsageError(f"{ref}: the image has no eBPF program"
                         + (f" for {', '.join(arches)}" if arches else ""))
    return target
