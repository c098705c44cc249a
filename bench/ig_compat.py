#!/usr/bin/env python3
"""ig_compat: does a folder of Inspektor Gadget gadgets build, validate and run with gadgetsmith?

    .venv/bin/python bench/ig_compat.py DIR [DIR...] [--arch A] [--run attachable|all|none]
        [--timeout 3] [-p NAME:key=value] [--only a,b] [--jobs N] [--work KEEP]
        [--json OUT] [--markdown] [--ig /path/to/ig]
    .venv/bin/python bench/ig_compat.py --from-json OUT [--markdown]

DIR is one gadget folder or a folder of them (IG's gadgets/, whose ci/ sub-folder is
searched too; a gadget folder has a program.bpf.c, gadget.yaml or build.yaml). It is a
user's tool as much as the project's yardstick: point it at your fork of IG's gadgets.
For every gadget it

1. builds it for each architecture (``gadget build DIR --arch A --no-store``); when that
   fails it tries again with ``--no-validate-metadata`` (``ok*``: builds only without the
   gadget.yaml check);
2. validates it (``gadget validate DIR --format json``): errors and warnings;
3. reads the program sections of the amd64 object and says whether this kernel can attach
   them (kprobes are probed in tracefs, lsm in the kernel's LSM list; uprobes need their
   file and symbol on this host);
4. as root, stores an amd64 image and runs it (``gadget run REF --host --timeout T -o
   json``) while a trigger (cat, ls, a signal, a TCP connection, a DNS query, a mount ...)
   runs, and compares the printed fields with those gadget.yaml names (IG's gadget.yaml
   files list only the fields they annotate, so only missing ones count);
5. with ``--ig PATH``, exports the same image into ig's store and runs it there too
   (``ig run --verify-image=false --auto-mount-filesystems [--host]``, inside ``unshare
   --pid --fork --mount-proc`` where /proc/1/ns cannot be read) and records the fields only
   one of the two prints.

It prints one row per gadget with the failure causes its pattern table (CAUSE_PATTERNS)
recognises, then the totals and the gadgets per cause; ``--markdown`` prints the table in
Markdown (for bench/RESULTS.md). ``--json OUT`` keeps everything (error lines, sections,
missing fields, a sample event) and ``--from-json OUT`` prints the table again. Gadgets run
one at a time (the trigger and the kernel are shared); builds run ``--jobs`` at once.

Nothing here imports gadgetsmith: the ``gadget`` command is driven as a user would
(``--gadget`` picks which one; default: next to this Python, else on PATH).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML


def read_yaml(path: Path) -> Any:
    """A YAML file as gadget validate reads it (YAML 1.2), or None when it cannot be read."""
    try:
        return YAML(typ="safe", pure=True).load(path.read_text())
    except Exception:  # noqa: BLE001 - any unreadable file is just "no metadata" here
        return None

ARCHES = ("amd64", "arm64")

# -- program sections ---------------------------------------------------------------

def _kprobes_here() -> bool:
    return any(os.path.exists(f"{d}/kprobe_events")
               for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"))


def _bpf_lsm_here() -> bool:
    try:
        return "bpf" in Path("/sys/kernel/security/lsm").read_text().split(",")
    except OSError:
        return False


def section_kinds() -> list[tuple[str, str, str]]:
    """prefix -> (attachable here?, why), for this kernel. "yes": the kernel and
    gadgetsmith can; "no": this kernel cannot; "maybe": the kernel can but it needs something
    the runtime may lack (an interface, perf events, a cgroup, a sockmap)."""
    kp = ("yes", "kprobe") if _kprobes_here() else ("no", "kprobe: no CONFIG_KPROBES")
    kinds = [(prefix, verdict, why) for prefix, verdict, why in _SECTION_KINDS]
    out = []
    for prefix, verdict, why in kinds:
        if prefix in ("kprobe/", "kretprobe/", "kprobe.multi/", "ksyscall/", "kretsyscall/"):
            verdict, why = kp[0], why if kp[0] == "no" else why.split(":")[0]
        if prefix == "lsm/" and _bpf_lsm_here():
            verdict, why = "maybe", "lsm (bpf is in the LSM list; the load may still be refused)"
        out.append((prefix, verdict, why))
    return out


_SECTION_KINDS: list[tuple[str, str, str]] = [
    ("tracepoint/", "yes", "tracepoint"),
    ("tp/", "yes", "tracepoint"),
    ("raw_tracepoint/", "yes", "raw tracepoint"),
    ("raw_tp/", "yes", "raw tracepoint"),
    ("tp_btf/", "yes", "BTF tracepoint"),
    ("iter/bpf_map_elem", "no", "map-element iterator: load refused (EPERM) here, by ig too"),
    ("iter/", "yes", "iterator"),
    ("iter.s/", "yes", "sleepable iterator"),
    ("uprobe", "yes", "uprobe"),  # uprobe/, uprobe.s/, uprobe.multi/
    ("uretprobe", "yes", "uretprobe"),
    ("usdt/", "yes", "USDT"),
    ("socket", "yes", "socket filter"),  # socket, socket1
    ("kprobe/", "no", "kprobe: no CONFIG_KPROBES"),
    ("kretprobe/", "no", "kretprobe: no CONFIG_KPROBES"),
    ("kprobe.multi/", "no", "kprobe: no CONFIG_KPROBES"),
    ("ksyscall/", "no", "kprobe: no CONFIG_KPROBES"),
    ("kretsyscall/", "no", "kprobe: no CONFIG_KPROBES"),
    ("fentry/", "no", "fentry: load refused (EPERM)"),
    ("fexit/", "no", "fexit: load refused (EPERM)"),
    ("fmod_ret/", "no", "fmod_ret: load refused"),
    ("lsm/", "no", "lsm: load refused (EPERM)"),
    ("freplace/", "no", "freplace: needs trampolines"),
    ("classifier/", "maybe", "TC classifier (needs an interface)"),
    ("classifier", "maybe", "TC classifier (needs an interface)"),
    ("tc", "maybe", "TC (needs an interface)"),
    ("perf_event", "maybe", "perf event sampling (the kernel can: ig runs it)"),
    ("sockops", "maybe", "sockops (cgroup)"),
    ("sk_skb", "maybe", "sk_skb (sockmap)"),
    ("sk_msg", "maybe", "sk_msg (sockmap)"),
    ("cgroup", "maybe", "cgroup program"),
    ("xdp", "maybe", "XDP (IG rejects it)"),
]


SECTION_KINDS = section_kinds()


def classify_section(sec: str) -> tuple[str, str]:
    for prefix, verdict, why in SECTION_KINDS:
        if sec.startswith(prefix):
            return verdict, why
    return "maybe", "unknown section kind"


def elf_maps(path: Path) -> list[str]:
    """Names of the maps (symbols of the .maps section) of a BPF object."""
    return elf_program_sections(path, want_maps=True)  # type: ignore[return-value]


def elf_program_sections(path: Path, want_maps: bool = False) -> list[dict[str, Any]]:
    """Executable, non-empty sections of a little-endian ELF64 object, with the
    program (function) symbols defined in each (or, with want_maps, map names)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{path}: not a little-endian ELF64 object")
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    shdrs = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        name, typ, flags, _addr, offset, size, link, _info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, off)
        shdrs.append((name, typ, flags, offset, size, link, entsize))
    stroff = shdrs[e_shstrndx][3]

    def cstr(base: int, at: int) -> str:
        end = data.index(b"\0", base + at)
        return data[base + at:end].decode(errors="replace")

    names = [cstr(stroff, s[0]) for s in shdrs]
    funcs: dict[int, list[str]] = {}
    maps: list[str] = []
    for s in shdrs:
        if s[1] == 2:  # SHT_SYMTAB
            symstr = shdrs[s[5]][3]
            for j in range(s[4] // s[6]):
                st_name, st_info, _other, st_shndx, _v, _sz = struct.unpack_from(
                    "<IBBHQQ", data, s[3] + j * s[6])
                if st_info & 0xF == 2 and st_info >> 4 == 1:  # STT_FUNC, STB_GLOBAL
                    funcs.setdefault(st_shndx, []).append(cstr(symstr, st_name))
                elif st_shndx < len(names) and names[st_shndx] == ".maps" and st_info & 0xF == 1:
                    maps.append(cstr(symstr, st_name))
    if want_maps:
        return sorted(maps)  # type: ignore[return-value]
    out = []
    for idx, (s, nm) in enumerate(zip(shdrs, names, strict=True)):
        if s[1] == 1 and s[2] & 0x4 and s[4] > 0 and nm != ".text":  # PROGBITS, EXECINSTR
            verdict, why = classify_section(nm)
            out.append({"section": nm, "programs": sorted(funcs.get(idx, [])),
                        "attach": verdict, "kind": why})
    return out


# -- uprobe targets -----------------------------------------------------------------

_ldcache: dict[str, str] | None = None


def _ld_cache() -> dict[str, str]:
    global _ldcache
    if _ldcache is None:
        _ldcache = {}
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True,
                                 timeout=10).stdout
            want = {"x86_64": "x86-64", "aarch64": "AArch64"}.get(os.uname().machine, "")
            for line in out.splitlines():
                m = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
                if m and want in m.group(2):
                    _ldcache.setdefault(m.group(1), m.group(3))
    return _ldcache


def resolve_probe_file(target: str) -> str | None:
    """An absolute path, or a short library name (libc, libssl) through the ld cache,
    or a program on PATH: what gadgetsmith (and ig) resolve."""
    if target.startswith("/"):
        return target if os.path.exists(target) else None
    for soname, path in sorted(_ld_cache().items()):
        if soname == target or soname.startswith(target + ".so"):
            return path
    return shutil.which(target)


def has_symbol(path: str, symbol: str) -> bool | None:
    nm = shutil.which("nm") or shutil.which("llvm-nm-19")
    if not nm:
        return None
    for flags in (["-D", "--defined-only"], ["--defined-only"]):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([nm, *flags, path], capture_output=True, text=True,
                                 timeout=20).stdout
            for line in out.splitlines():
                parts = line.split()
                if parts and parts[-1].split("@")[0] == symbol:
                    return True
    return False


def check_file_probe(sec: str) -> str | None:
    """None when the probe's file (and symbol) exist here, else why not."""
    kind, _, rest = sec.partition("/")
    if kind.startswith("usdt"):
        target = rest.split(":")[0] if not rest.startswith("/") else rest.rsplit(":", 2)[0]
        return None if resolve_probe_file(target) else f"no file {target}"
    if ":" not in rest:
        return f"section {sec} names no file:symbol"
    target, _, sym = rest.rpartition(":")
    sym = sym.split("+")[0]
    path = resolve_probe_file(target)
    if path is None:
        return f"no file {target} on this host"
    found = has_symbol(path, sym)
    if found is False:
        return f"no symbol {sym} in {path}"
    return None


# -- triggers -----------------------------------------------------------------------

SHELL_TRIGGER = r"""
cat /etc/hostname >/dev/null
ls / >/dev/null
ls /nonexistent-ig-compat 2>/dev/null
sleep 5 & p=$!; kill -USR1 $p 2>/dev/null; kill $p 2>/dev/null
d=$(mktemp -d /tmp/igc.XXXXXX); ln -s /etc/hostname $d/l; ln /etc/hostname $d/h 2>/dev/null
echo x > $d/f; cat $d/f >/dev/null; sync
mount -t tmpfs igc $d 2>/dev/null && umount $d
rm -rf $d
exec 3>/dev/tcp/127.0.0.1/$IGC_PORT && echo hi >&3 && exec 3>&-
[ -n "$IGC_TLS_PORT" ] && echo hi | timeout 3 openssl s_client -quiet -connect 127.0.0.1:$IGC_TLS_PORT
"""

PY_NET = r"""
import os, socket, time
port = int(os.environ["IGC_PORT"])
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
for _ in range(3):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(q, ("127.0.0.1", 53)); s.close()
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=1); c.sendall(b"x" * 4096); c.close()
    except OSError:
        pass
    try:  # a TLS exchange with SNI (trace_sni, trace_ssl's handshakes; CPython's ssl calls
        import ssl  # SSL_write_ex/SSL_read_ex, which trace_ssl does not probe: s_client does)
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        tls = int(os.environ.get("IGC_TLS_PORT") or port)
        t = socket.create_connection(("127.0.0.1", tls), timeout=1)
        with ctx.wrap_socket(t, server_hostname="ig-compat.example.com") as w:
            w.sendall(b"hello"); w.recv(16)
    except Exception:
        pass
    u = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        u.bind(("::1", 0))
    except OSError:
        pass
    u.close()
    time.sleep(0.3)
"""


class Listener:
    """A TCP listener (and a bound UDP socket) so snapshot_socket and TCP tracers see
    something of ours; accepts and drains connections until closed."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        self.tls = TlsEcho.start()

    @property
    def env(self) -> dict[str, str]:
        return {"IGC_PORT": str(self.port),
                "IGC_TLS_PORT": str(self.tls.port) if self.tls is not None else ""}

    def _loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            with contextlib.suppress(OSError):
                c.settimeout(0.5)
                while c.recv(65536):
                    pass
            c.close()

    def close(self) -> None:
        self.stop = True
        self.thread.join(2)
        self.sock.close()
        self.udp.close()
        if self.tls is not None:
            self.tls.close()


class TlsEcho:
    """A TLS listener that completes handshakes and echoes a read (trace_ssl emits only
    for a handshake that succeeds, and for reads and writes), with a self-signed
    certificate made by the openssl command; None without it."""

    def __init__(self, ctx: ssl.SSLContext, tmp: str) -> None:
        self.ctx, self.tmp = ctx, tmp
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    @classmethod
    def start(cls) -> TlsEcho | None:
        tmp = tempfile.mkdtemp(prefix="igc-tls-")
        key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
        try:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out",
                            cert, "-days", "2", "-subj", "/CN=ig-compat.example.com"],
                           check=True, capture_output=True, timeout=30)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
        except (OSError, subprocess.SubprocessError, ssl.SSLError):
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        return cls(ctx, tmp)

    def _loop(self) -> None:
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            with contextlib.suppress(OSError), c:
                c.settimeout(2)
                with self.ctx.wrap_socket(c, server_side=True) as w:
                    w.sendall(w.recv(4096))

    def close(self) -> None:
        self.stop = True
        self.thread.join(2)
        self.sock.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_trigger(duration: float, listener: Listener, stop: threading.Event) -> None:
    env = dict(os.environ, **listener.env)
    deadline = time.monotonic() + duration
    time.sleep(min(1.0, duration / 3))
    while not stop.is_set() and time.monotonic() < deadline:
        procs = [subprocess.Popen(["bash", "-c", SHELL_TRIGGER], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                 subprocess.Popen([sys.executable, "-c", PY_NET], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)
            if p.poll() is None:
                p.kill()
        stop.wait(0.4)


TRIGGER_COMMS = {"cat", "ls", "sleep", "bash", "ln", "mount", "umount", "python3", "sync",
                 "rm", "mktemp", "kill", "openssl", "timeout"}

# -- helpers --------------------------------------------------------------------------


def gadget_files(d: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"ebpfsource": "program.bpf.c", "metadata": "gadget.yaml",
                            "wasm": None}
    by = d / "build.yaml"
    if by.exists():
        doc = read_yaml(by)
        if isinstance(doc, dict):
            info.update({k: v for k, v in doc.items() if k in info})
    info["has_ebpf"] = (d / info["ebpfsource"]).exists()
    info["has_metadata"] = (d / info["metadata"]).exists()
    info["has_go"] = (d / "go").is_dir()
    return info


def is_gadget_dir(d: Path) -> bool:
    return any((d / f).exists() for f in ("program.bpf.c", "gadget.yaml", "build.yaml"))


def discover(roots: list[Path]) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        if is_gadget_dir(root):
            found.append(root)
            continue
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            if is_gadget_dir(sub):
                found.append(sub)
            else:  # one more level: IG's gadgets/ci/*
                found.extend(sorted(p for p in sub.iterdir() if p.is_dir() and is_gadget_dir(p)))
    return found


def gadget_name(root_dirs: list[Path], d: Path) -> str:
    for r in root_dirs:
        with contextlib.suppress(ValueError):
            rel = d.relative_to(r)
            if str(rel) != ".":
                return str(rel)
    return d.name


def _json_skip(spec: Any) -> bool:
    ann = spec.get("annotations") if isinstance(spec, dict) else None
    return isinstance(ann, dict) and str(ann.get("json.skip", "")).lower() == "true"


def declared_fields(meta_path: Path) -> dict[str, list[str]]:
    doc = read_yaml(meta_path) if meta_path.exists() else None
    if not isinstance(doc, dict):
        return {}
    out: dict[str, list[str]] = {}
    dss = next((v for k, v in doc.items() if str(k).lower() == "datasources"), None) or {}
    if isinstance(dss, dict):
        for ds, body in dss.items():
            fields = (body or {}).get("fields") or {}
            # a field annotated json.skip is never in ig's JSON either
            out[str(ds)] = [str(f) for f, spec in fields.items() if not _json_skip(spec)] \
                if isinstance(fields, dict) else []
    return out


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v and k not in ("podLabels",):
                out.update(flatten(v, key))
            else:
                out[key] = v
    return out


def parse_json_lines(text: str) -> tuple[list[dict[str, Any]], int]:
    """Events from JSON output: one object per line, or one array per line (snapshots,
    map iterators). Returns (events, lines that were not JSON)."""
    events: list[dict[str, Any]] = []
    bad = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            v = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        events.extend(x for x in (v if isinstance(v, list) else [v]) if isinstance(x, dict))
    return events, bad


def empty(v: Any) -> bool:
    return v in (0, "", None, False, [], {}) or (isinstance(v, list) and not any(v))


DIAG_RE = re.compile(r":\d+:\d+: (error|warning): |^error: |^warning: ")


def first_error_lines(text: str, limit: int = 6) -> list[str]:
    """The error lines of a command's output (each once, in order), else its first lines."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    errs = list(dict.fromkeys(ln for ln in lines
                              if re.search(r"\berror\b|fatal|Error|failed|cannot", ln)))
    return (errs or lines)[:limit]


@dataclass
class Result:
    name: str
    path: str
    files: dict[str, Any] = field(default_factory=dict)
    build: dict[str, str] = field(default_factory=dict)   # arch -> ok|ok*|FAIL|-
    build_errors: dict[str, list[str]] = field(default_factory=dict)
    build_warnings: list[str] = field(default_factory=list)
    validate_errors: list[str] = field(default_factory=list)
    validate_warnings: list[str] = field(default_factory=list)
    validate_rc: int | None = None
    validate_output: list[str] = field(default_factory=list)
    sections: list[dict[str, Any]] = field(default_factory=list)
    maps: list[str] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)
    attachable: str = "-"
    attach_notes: list[str] = field(default_factory=list)
    run: str = "-"
    run_detail: dict[str, Any] = field(default_factory=dict)


def sh(cmd: list[str], timeout: float, log: list[str] | None = None,
       input_: str | None = None) -> subprocess.CompletedProcess:
    if log is not None:
        log.append(shlex.join(cmd))
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              input=input_)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 124, e.stdout or "", (e.stderr or "") +
                                           f"\n(timed out after {timeout}s)")


# -- the phases ----------------------------------------------------------------------


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.gadget = args.gadget
        self.work = Path(args.work or tempfile.mkdtemp(prefix="ig-compat-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.cmdlog: list[str] = []
        self._lock = threading.Lock()

    def g(self, *a: str) -> list[str]:
        return [*self.gadget, "--store", str(self.args.store), *a]

    def log(self, cmd: list[str]) -> None:
        with self._lock:
            self.cmdlog.append(shlex.join(cmd))

    def static(self, r: Result) -> None:
        d = Path(r.path)
        r.files = gadget_files(d)
        out = self.work / r.name.replace("/", "_")
        for arch in self.args.arch:
            adir = out / arch
            adir.mkdir(parents=True, exist_ok=True)
            cmd = self.g("build", str(d), "--arch", arch, "--no-store", "--output-dir", str(adir))
            self.log(cmd)
            p = sh(cmd, 600)
            if p.returncode == 0:
                r.build[arch] = "ok"
                r.build_warnings = sorted(set(r.build_warnings) | {
                    ln for ln in p.stderr.splitlines() if ": warning: " in ln})
                continue
            errs = first_error_lines(p.stderr + p.stdout, 40)
            cmd2 = cmd + ["--no-validate-metadata"]
            self.log(cmd2)
            p2 = sh(cmd2, 600)
            if p2.returncode == 0:
                r.build[arch] = "ok*"
                r.build_errors[arch] = errs
            else:
                r.build[arch] = "FAIL"
                r.build_errors[arch] = first_error_lines(p2.stderr + p2.stdout, 40)
        cmd = self.g("validate", str(d), "--format", "json")
        self.log(cmd)
        p = sh(cmd, 600)
        r.validate_rc = p.returncode
        try:
            doc = json.loads(p.stdout)
            for dg in doc.get("diagnostics", []):
                line = f"{Path(dg.get('file') or '').name}:{dg.get('line')}:{dg.get('column')}: " \
                       f"{dg.get('severity')}: {dg.get('message')}"
                (r.validate_errors if dg.get("severity") == "error"
                 else r.validate_warnings).append(line)
        except (json.JSONDecodeError, AttributeError):
            # no JSON at all (gadget validate prints only clang's output when the
            # source does not compile): one error, the output kept aside
            r.validate_output = first_error_lines(p.stderr + p.stdout, 40)
            r.validate_errors = [f"no JSON from validate (exit {p.returncode}): "
                                 + (r.validate_output[0] if r.validate_output else "")]
        obj = out / "amd64" / "amd64.bpf.o"
        if obj.exists():
            try:
                r.sections = elf_program_sections(obj)
                r.maps = elf_maps(obj)
            except (OSError, ValueError) as e:
                r.attach_notes.append(str(e))
        self.judge_attach(r, d)

    def judge_attach(self, r: Result, d: Path) -> None:
        if not r.files.get("has_ebpf"):
            r.attachable = "n/a"
            r.attach_notes.append("no eBPF program (metadata/operator or WASM only)")
            return
        if not r.sections:
            r.attachable = "?" if r.build.get("amd64") == "FAIL" else "none"
            return
        disabled = set()
        meta = d / (r.files.get("metadata") or "gadget.yaml")
        doc = read_yaml(meta) if meta.exists() else None
        if isinstance(doc, dict) and isinstance(doc.get("programs"), dict):
            for prog, cfg in doc["programs"].items():
                if isinstance(cfg, dict) and cfg.get("attach_to") == "gadget_program_disabled":
                    disabled.add(prog)
        verdicts = []
        for s in r.sections:
            v = s["attach"]
            if v == "yes" and s["section"].split("/")[0].startswith(("uprobe", "uretprobe", "usdt")):
                why = check_file_probe(s["section"])
                if why:
                    v, s["kind"] = "no", f"{s['kind']}: {why}"
                    s["attach"] = v
            if set(s["programs"]) and set(s["programs"]) <= disabled:
                s["kind"] += " (disabled in gadget.yaml)"
                continue
            verdicts.append(v)
        if all(v == "yes" for v in verdicts):
            r.attachable = "yes"
        elif any(v == "yes" for v in verdicts) and not any(v == "no" for v in verdicts):
            r.attachable = "maybe"
        elif any(v == "yes" for v in verdicts):
            r.attachable = "partly"
        elif any(v == "maybe" for v in verdicts) and not any(v == "no" for v in verdicts):
            r.attachable = "maybe"
        else:
            r.attachable = "no"

    def run(self, r: Result) -> None:
        mode = self.args.run
        if mode == "none" or r.build.get("amd64") not in ("ok", "ok*") or not r.files.get(
                "has_ebpf"):
            r.run = "-"
            return
        if mode == "attachable" and r.attachable not in ("yes", "maybe"):
            r.run = "skipped"
            return
        if os.geteuid() != 0:
            r.run = "skipped (not root)"
            return
        ref = f"ig-compat.local/{r.name.replace('/', '-')}:baseline"
        cmd = self.g("build", r.path, "--arch", "amd64", "-t", ref)
        if r.build["amd64"] == "ok*":
            cmd.append("--no-validate-metadata")
        self.log(cmd)
        p = sh(cmd, 600)
        if p.returncode != 0:
            r.run = "build-for-run FAIL"
            r.run_detail["stderr"] = first_error_lines(p.stderr + p.stdout)
            return
        r.run_detail["ref"] = ref
        listener = Listener()
        stop = threading.Event()
        trig = threading.Thread(target=run_trigger, args=(self.args.timeout, listener, stop),
                                daemon=True)
        cmd = self.g("run", ref, "--host", "--timeout", str(self.args.timeout), "-o", "json",
                     *sum((["-p", kv] for kv in self.args.param_for(r.name)), []))
        self.log(cmd)
        t0 = time.monotonic()
        trig.start()
        p = sh(cmd, self.args.timeout + 60)
        stop.set()
        trig.join(10)
        listener.close()
        r.run_detail["seconds"] = round(time.monotonic() - t0, 1)
        r.run_detail["rc"] = p.returncode
        stderr = [ln for ln in p.stderr.splitlines() if ln.strip()]
        r.run_detail["stderr"] = stderr[:8]
        events, bad = parse_json_lines(p.stdout)
        r.run_detail["events"] = len(events)
        r.run_detail["unparsed_lines"] = bad
        if p.returncode != 0:
            msg = next((ln for ln in stderr if ln.startswith("error:")), stderr[-1] if stderr else
                       f"exit {p.returncode}")
            r.run_detail["error"] = msg
            if "cannot attach" in msg:
                r.run = "attach-fail"
            elif re.search(r"load|verifier|BPF program|Permission denied|E2BIG|Argument list",
                           msg, re.I):
                r.run = "load-fail"
            else:
                r.run = "error"
            return
        if not events:
            r.run = "no events"
            return
        self.judge_fields(r, events)

    def run_ig(self, r: Result) -> None:
        """Run the same image with ig (``--ig``) and the same trigger; record which
        fields each runtime prints that the other does not."""
        ref = r.run_detail.get("ref")
        if not self.args.ig or not ref:
            return
        tar = self.work / f"{r.name.replace('/', '_')}.tar"
        cmd = self.g("export", ref, str(tar))
        self.log(cmd)
        p = sh(cmd, 120)
        if p.returncode != 0:
            r.run_detail["ig"] = {"result": "export FAIL", "stderr": first_error_lines(p.stderr)}
            return
        cmd = [self.args.ig, "image", "import", str(tar)]
        self.log(cmd)
        p = sh(cmd, 120)
        if p.returncode != 0:
            r.run_detail["ig"] = {"result": "import FAIL", "stderr": first_error_lines(p.stderr)}
            return
        secs = max(1, int(round(self.args.timeout)))
        cmd = [*self.args.ig_wrap, self.args.ig, "run", ref, "--verify-image=false",
               "--auto-mount-filesystems", "--host", "--timeout", str(secs + 2), "-o", "json",
               *sum(([f"--{kv.split('=', 1)[0]}={kv.split('=', 1)[1]}"]
                     for kv in self.args.param_for(r.name)), [])]
        for _attempt in range(2):
            listener = Listener()
            stop = threading.Event()
            # ig needs a second or two more than gadgetsmith before the gadget runs
            trig = threading.Thread(target=run_trigger, args=(secs + 2, listener, stop),
                                    daemon=True)
            self.log(cmd)
            trig.start()
            p = sh(cmd, secs + 90)
            stop.set()
            trig.join(10)
            listener.close()
            if "unknown flag: --host" not in p.stderr:
                break
            # ig has --host only for gadgets that can filter by container (mntns map)
            cmd.remove("--host")
        events, _bad = parse_json_lines(p.stdout)
        stderr = [ln for ln in p.stderr.splitlines() if ln.strip() and "level=warning" not in ln]
        keys = sorted(set().union(*(flatten(e).keys() for e in events))) if events else []
        gs_keys = set(r.run_detail.get("keys") or [])
        info: dict[str, Any] = {"rc": p.returncode, "events": len(events),
                                "stderr": stderr[:8], "keys": keys}
        if p.returncode != 0:
            info["result"] = "error"
            info["error"] = next((ln for ln in stderr if ln.startswith("Error")),
                                 next((ln for ln in stderr if "rror" in ln),
                                      stderr[-1] if stderr else f"exit {p.returncode}"))
        else:
            info["result"] = f"{len(events)} ev" if events else "no events"
        if events and gs_keys:
            info["only_ig"] = sorted(set(keys) - gs_keys)
            info["only_gadgetsmith"] = sorted(gs_keys - set(keys))
            info["sample"] = events[0]
        r.run_detail["ig"] = info

    def judge_fields(self, r: Result, events: list[dict[str, Any]]) -> None:
        meta = Path(r.path) / (r.files.get("metadata") or "gadget.yaml")
        decl = declared_fields(meta)
        flat = [flatten(e) for e in events]
        seen: set[str] = set().union(*(f.keys() for f in flat))
        # the data source printed is the one whose declared fields overlap most
        best_ds, best = None, -1
        for ds, fl in decl.items():
            score = len(set(fl) & seen)
            if score > best:
                best_ds, best = ds, score
        declared = set(decl.get(best_ds, [])) if best_ds else set()
        prefixes = {k.rsplit(".", 1)[0] for k in seen if "." in k}
        missing = sorted(f for f in declared if f not in seen and f not in prefixes)
        extra = sorted(k for k in seen if k not in declared and not k.startswith(("k8s.", "runtime."))
                       and not any(k.startswith(f + ".") for f in declared))
        all_empty = sorted(k for k in seen if all(empty(f.get(k)) for f in flat)
                           and not k.startswith(("k8s.", "runtime.")))
        trigger = sum(1 for f in flat if f.get("proc.comm") in TRIGGER_COMMS
                      or f.get("comm") in TRIGGER_COMMS)
        implausible = []
        for f in flat:
            ts = f.get("timestamp_raw")
            if isinstance(ts, int) and ts and not 1.5e18 < ts < 2.5e18:
                implausible.append(f"timestamp_raw={ts}")
                break
        r.run_detail.update({
            "keys": sorted(seen),
            "datasource": best_ds, "datasources_declared": list(decl),
            "missing": missing, "extra": extra, "all_empty": all_empty,
            "trigger_events": trigger, "implausible": implausible,
            "sample": events[0] if events else None,
        })
        status = f"{len(events)} ev"
        if missing:
            status += f", {len(missing)} missing"
        if len(decl) > 1:
            status += f", {len(decl)} DS"
        r.run = status


# -- failure causes ---------------------------------------------------------------

# (where, pattern, cause): where is build, validate (errors only) or run; the cause may
# use the pattern's groups. Checked in order; every matching cause is listed once.
CAUSE_PATTERNS: list[tuple[str, str, str]] = [
    ("build", r"nothing to build|no eBPF source", "nothing to build (no program, metadata or wasm)"),
    ("build", r"building WASM from \.go", "WASM from Go source not built"),
    ("build", r"building WASM from \.rs", "WASM from Rust source not built"),
    ("build", r"fatal error: '([^']+)' file not found", "missing header <\\1>"),
    ("build", r"redefinition of 'BPF_K(RET)?PROBE'",
     "BPF_KPROBE undefined (SDK header lacks <bpf/bpf_tracing.h>)"),
    ("build", r"redefinition of 'BPF_U(RET)?PROBE'", "BPF_UPROBE/BPF_URETPROBE missing (libbpf>=1.2)"),
    ("build", r"___bpf_kprobe_args\d", "BPF_KPROBE with more than 5 args (libbpf>=1.2)"),
    ("build", r"compile failed", "compile error"),
    ("validate", r"the program does not compile", "validate: the program does not compile"),
    ("validate", r"no metadata file", "validate: no gadget.yaml is an error"),
    ("validate", r"expected a mapping, got nothing", "validate: empty (null) mapping is an error"),
    ("validate", r"no field '(\w+)' in struct", "validate: yaml field not in the struct"),
    ("validate", r"the object has no data source", "validate: yaml data source not in the object"),
    ("validate", r"\(GADGET_\w+ in the object\) is missing",
     "validate: object data source missing from yaml"),
    ("validate", r"give a prebuilt \.wasm", "validate: WASM source"),
    ("warning", r"dataSources: unknown key", "validate: 'dataSources' said to be ignored by ig"),
    ("warning", r"GADGET_PARAM\(ig_build_id_max_entries\)",
     "validate: SDK param ig_build_id_max_entries undescribed"),
    ("run", r"no kprobe support", "kernel: no kprobes"),
    ("run", r"does not allow fentry", "kernel: fentry/fexit/lsm refused"),
    ("run", r"does not allow BPF LSM programs", "kernel: fentry/fexit/lsm refused"),
    ("run", r"\(iter/bpf_map_elem\) cannot be loaded: EPERM", "kernel: iter/bpf_map_elem refused"),
    ("run", r"E2BIG", "verifier: program too large (E2BIG)"),
    ("run", r"\(classifier/[^)]*\) cannot be loaded: EINVAL", "runtime: TC classifier unsupported"),
    ("run", r"\(perf_event/[^)]*\) cannot be loaded: EINVAL", "runtime: perf_event unsupported"),
    ("run", r"\(program\d+\) cannot be loaded", "fake sections (inspect-only gadget)"),
    ("run", r"EACCES", "verifier: invalid access (EACCES)"),
    ("run", r"(no library or executable|no such file|no symbol \S+ in)",
     "runtime: missing uprobe target is an error"),
    ("run", r"declares no data source", "runtime: gadget without data source refused"),
    ("run", r"has no eBPF program for", "runtime: metadata-only image (an ig operator)"),
    ("run", r"no such tracepoint on this kernel", "kernel: tracepoint missing here"),
]


def classify(r: Result) -> list[str]:
    texts = {
        "build": [ln for arch, errs in r.build_errors.items() if r.build.get(arch) == "FAIL"
                  for ln in errs],
        "validate": r.validate_errors,
        "warning": r.validate_warnings,
        "run": [r.run_detail.get("error", "")],
    }
    out: list[str] = []
    for where, pat, cause in CAUSE_PATTERNS:
        for text in texts[where]:
            m = re.search(pat, text or "")
            if m:
                c = m.expand(cause) if "\\" in cause else cause
                if c not in out and not (c == "compile error" and any(
                        x.startswith(("missing header", "BPF_")) for x in out)):
                    out.append(c)
                break
    # an undefined wrapper macro shows up as "expected identifier" on the line using it
    if any(c.startswith("compile error") for c in out):
        for text in texts["build"]:
            m = re.match(r"([^:\s]+\.[ch]):(\d+):\d+: error: (expected identifier|unexpected type name)",
                         text)
            if not m:
                continue
            with contextlib.suppress(OSError, IndexError):
                src = (Path(r.path) / m.group(1)).read_text(errors="replace").splitlines()
                line = src[int(m.group(2)) - 1]
                for macro, cause in (("BPF_KPROBE", "BPF_KPROBE undefined (SDK header lacks "
                                      "<bpf/bpf_tracing.h>)"),
                                     ("BPF_KRETPROBE", "BPF_KPROBE undefined (SDK header lacks "
                                      "<bpf/bpf_tracing.h>)"),
                                     ("BPF_UPROBE", "BPF_UPROBE/BPF_URETPROBE missing (libbpf>=1.2)"),
                                     ("BPF_URETPROBE", "BPF_UPROBE/BPF_URETPROBE missing "
                                      "(libbpf>=1.2)")):
                    if macro + "(" in line and cause not in out:
                        out.append(cause)
        if any(c.startswith("BPF_") for c in out):
            out = [c for c in out if c != "compile error"]
    if "gadget_sockets" in r.maps and re.search(r"cannot be loaded: EINVAL",
                                                 r.run_detail.get("error", "")):
        out.append("runtime: no socket enricher (gadget_sockets, CO-RE on gadget_socket_value)")
    return out


# -- output -------------------------------------------------------------------------


def table(results: list[Result], arches: tuple[str, ...], markdown: bool = False) -> str:
    with_ig = any("ig" in r.run_detail for r in results)
    head = ["gadget", *arches, "validate E/W", "attach", "run"] + (
        ["ig run"] if with_ig else []) + ["causes"]
    rows = []
    for r in results:
        ig = r.run_detail.get("ig") or {}
        igcol = [ig.get("result", "-") + (f", {len(ig['only_ig'])} fields only ig"
                                            if ig.get("only_ig") else "")] if with_ig else []
        rows.append([r.name, *(r.build.get(a, "-") for a in arches),
                     f"{len(r.validate_errors)}/{len(r.validate_warnings)}",
                     r.attachable, r.run, *igcol, "; ".join(r.causes)])
    if markdown:
        def cell(x: Any) -> str:
            return str(x).replace("|", "\\|") or " "
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in rows]
    return "\n".join(lines)


def totals(results: list[Result], arches: tuple[str, ...]) -> dict[str, Any]:
    n = len(results)
    t: dict[str, Any] = {"gadgets": n}
    for a in arches:
        t[f"build_{a}_ok"] = sum(r.build.get(a) == "ok" for r in results)
        t[f"build_{a}_ok_without_validation"] = sum(r.build.get(a) == "ok*" for r in results)
        t[f"build_{a}_fail"] = sum(r.build.get(a) == "FAIL" for r in results)
    t["validate_clean"] = sum(not r.validate_errors for r in results)
    t["validate_with_errors"] = sum(bool(r.validate_errors) for r in results)
    t["validate_errors"] = sum(len(r.validate_errors) for r in results)
    t["validate_warnings"] = sum(len(r.validate_warnings) for r in results)
    for v in ("yes", "maybe", "partly", "no", "n/a", "?", "none"):
        t[f"attachable_{v}"] = sum(r.attachable == v for r in results)
    t["run_with_events"] = sum(r.run.endswith("ev") or " ev," in r.run for r in results)
    t["run_fields_complete"] = sum((r.run.endswith("ev") or " ev," in r.run)
                                   and not r.run_detail.get("missing") for r in results)
    t["run_no_events"] = sum(r.run == "no events" for r in results)
    t["run_failed"] = sum(r.run in ("error", "load-fail", "attach-fail", "build-for-run FAIL")
                          for r in results)
    return t


def cause_totals(results: list[Result]) -> list[tuple[str, int, list[str]]]:
    by: dict[str, list[str]] = {}
    for r in results:
        for c in r.causes:
            by.setdefault(c, []).append(r.name)
    return sorted(((c, len(n), n) for c, n in by.items()), key=lambda x: (-x[1], x[0]))


def report(results: list[Result], arches: tuple[str, ...], out: Any,
           markdown: bool = False) -> dict[str, Any]:
    print(table(results, arches, markdown), file=out)
    t = totals(results, arches)
    print(file=out)
    print("totals: " + ", ".join(f"{k}={v}" for k, v in t.items()), file=out)
    print(file=out)
    print("causes:", file=out)
    for c, n, names in cause_totals(results):
        print(f"  {n:3d}  {c}: {', '.join(names)}", file=out)
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="*", type=Path, help="gadget folder(s) or folders of gadgets")
    ap.add_argument("--from-json", type=Path, default=None,
                    help="print the table of an earlier --json file again (nothing is run)")
    ap.add_argument("--gadget", default=None,
                    help="the gadget command (default: next to this Python, else PATH)")
    ap.add_argument("--store", type=Path, default=None,
                    help="store for the images that are run (default: a temporary one)")
    ap.add_argument("--arch", action="append", choices=ARCHES, default=None)
    ap.add_argument("--run", choices=("attachable", "all", "none"), default="attachable",
                    help="which gadgets to run (all: also those that cannot attach, to see "
                         "whether they load)")
    ap.add_argument("--timeout", type=float, default=3.0, help="seconds per gadget run")
    ap.add_argument("-p", "--param", action="append", default=[],
                    help="NAME:key=value, a --param for one gadget (repeatable)")
    ap.add_argument("--ig", default=None,
                    help="an ig binary: run every image gadgetsmith ran with ig too and "
                         "compare the printed fields (as root)")
    ap.add_argument("--ig-wrap", default=None,
                    help="command line put before ig (default: 'unshare --pid --fork "
                         "--mount-proc' when /proc/1/ns is not readable, as in sandboxes)")
    ap.add_argument("--only", default=None, help="comma-separated gadget names")
    ap.add_argument("--jobs", type=int, default=1, help="gadgets built at once")
    ap.add_argument("--work", default=None, help="keep objects and logs here")
    ap.add_argument("--json", type=Path, default=None, help="write all results here")
    ap.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    args = ap.parse_args(argv)
    args.arch = tuple(args.arch or ARCHES)
    if args.gadget is None:
        near = Path(sys.executable).with_name("gadget")
        args.gadget = str(near) if near.exists() else (shutil.which("gadget") or "gadget")
    args.gadget = shlex.split(args.gadget)
    per: dict[str, list[str]] = {}
    for spec in args.param:
        nm, _, kv = spec.partition(":")
        per.setdefault(nm, []).append(kv)
    args.param_for = lambda name: per.get(name, [])
    if args.ig_wrap is None:
        try:
            os.stat("/proc/1/ns/mnt")
            args.ig_wrap = []
        except OSError:  # ig's operators stat /proc/1/ns/*: give it its own pid namespace
            args.ig_wrap = ["unshare", "--pid", "--fork", "--mount-proc"]
    else:
        args.ig_wrap = shlex.split(args.ig_wrap)
    tmp_store = None
    if args.store is None:
        tmp_store = tempfile.mkdtemp(prefix="ig-compat-store-")
        args.store = Path(tmp_store)

    if args.from_json:
        doc = json.loads(args.from_json.read_text())
        results = [Result(**r) for r in doc["results"]]
        for r in results:
            obj = Path(args.work or "") / r.name.replace("/", "_") / "amd64" / "amd64.bpf.o"
            if not r.maps and args.work and obj.exists():
                r.maps = elf_maps(obj)
            r.causes = classify(r)
        report(results, args.arch, None, args.markdown)
        return 0
    if not args.dirs:
        ap.error("give a gadget folder (or --from-json)")
    roots = [d.resolve() for d in args.dirs]
    dirs = discover(roots)
    names = set(args.only.split(",")) if args.only else None
    results = [Result(gadget_name(roots, d), str(d)) for d in dirs]
    if names:
        results = [r for r in results if r.name in names or Path(r.path).name in names]
    if not results:
        print("error: no gadget folders (program.bpf.c, gadget.yaml or build.yaml) found",
              file=sys.stderr)
        return 2
    h = Harness(args)
    print(f"{len(results)} gadgets; objects and logs in {h.work}", file=sys.stderr)

    def static(r: Result) -> Result:
        h.static(r)
        print(f"  built {r.name}: {' '.join(f'{a}={r.build.get(a)}' for a in args.arch)}"
              f" validate {len(r.validate_errors)}E/{len(r.validate_warnings)}W"
              f" attach={r.attachable}", file=sys.stderr)
        return r

    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as ex:
        list(ex.map(static, results))
    for r in results:  # runs one at a time: the trigger and the kernel are shared
        h.run(r)
        if r.run != "-":
            print(f"  ran {r.name}: {r.run}", file=sys.stderr)
        h.run_ig(r)
        if "ig" in r.run_detail:
            print(f"  ig ran {r.name}: {r.run_detail['ig'].get('result')}", file=sys.stderr)

    for r in results:
        r.causes = classify(r)
    t = report(results, args.arch, None, args.markdown)
    if args.json:
        args.json.write_text(json.dumps({"totals": t, "commands": h.cmdlog,
                                         "results": [asdict(r) for r in results]},
                                        indent=1, default=str) + "\n")
    if tmp_store:
        shutil.rmtree(tmp_store, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
