"""WASM test helpers: modules built once per test run, and a real eBPF object whose maps
and perf buffer stand for a gadget's in the host tests.

Modules (tests/wasm/c/*.c, tests/wasm/go/*/) are built with the toolchain's own builders
into one folder per test run, shared by pytest-xdist's workers (a lock per module, keyed
by a hash of the sources), so each is built once however many tests use it. Go's module
and build caches are Go's own (~/.cache/go-build, GOMODCACHE): a rebuild takes a second.

Fixtures (import them into a test module): ``cmod(name, bad=None)`` and ``gomod(name)``
give a module's path; ``kernel`` loads tests/wasm/bpf/host_maps.bpf.c and gives its maps
(``counts``, ``outer``, ``events_perf``), a mount namespace filter map holding 777, and
``records(n...)`` to make the program write perf records ``rec-<n>``.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import need_root, need_tool, skip_or_fail

WASM = Path(__file__).resolve().parent / "wasm"
# bad.c variants that need linker flags (memory over the cap at start)
BAD_LDFLAGS = {"BIGMEM": ["-Wl,--initial-memory=17825792"]}


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
        h.update(b"\0")
    return h.hexdigest()[:16]


def _tree(d: Path) -> bytes:
    return b"".join(f.relative_to(d).as_posix().encode() + f.read_bytes()
                    for f in sorted(d.rglob("*")) if f.is_file())


@pytest.fixture(scope="session")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder per test run (xdist's workers share their parent's basetemp)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    d = root / "wasm-modules"
    d.mkdir(exist_ok=True)
    return d


def _once(out: Path, build) -> Path:
    """Build ``out`` unless another worker did; one builder at a time per module."""
    if out.exists():
        return out
    with open(out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.exists():
            tmp = out.with_name(f".{out.name}.{os.getpid()}")
            tmp.write_bytes(build())
            os.replace(tmp, out)
    return out


def build_c_module(src: Path, cflags: list[str]) -> bytes:
    """Our C module build, with extra flags the tests need (-D, linker flags)."""
    import subprocess

    from gadgetsmith.toolchain.build.wasm import c_argv, find_wasm_clang

    out = src.parent / f".{src.stem}.{os.getpid()}.wasm"
    argv = c_argv(find_wasm_clang(), src, out)
    argv[-1:-1] = cflags
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}:\n{proc.stderr}")
    data = out.read_bytes()
    out.unlink()
    return data


@pytest.fixture(scope="session")
def cmod(module_dir: Path):
    need_tool("clang-19")

    def get(name: str, bad: str | None = None) -> Path:
        src = WASM / "c" / f"{name}.c"
        flags = [f"-DBAD_{bad}", *BAD_LDFLAGS.get(bad, [])] if bad else []
        from gadgetsmith.toolchain import sdk

        key = _digest(src.read_bytes(), (sdk.INCLUDE_ROOT / "gadget" / "wasm.h").read_bytes(),
                      (WASM / "c" / "report.h").read_bytes(), " ".join(flags).encode())
        out = module_dir / f"c-{name}{'-' + bad if bad else ''}-{key}.wasm"
        return _once(out, lambda: build_c_module(src, flags))
    return get


@pytest.fixture(scope="session")
def gomod(module_dir: Path):
    from gadgetsmith.toolchain.build.wasm import WasmBuildError, build_go, find_go

    try:
        find_go()
    except WasmBuildError as e:
        skip_or_fail(str(e))

    def get(name: str, src: Path | None = None) -> Path:
        d = src or WASM / "go" / name
        out = module_dir / f"go-{name}-{_digest(_tree(d))}.wasm"
        return _once(out, lambda: build_go(d / "program.go", module_dir / f"{name}.wasm").data)
    return get


# -- a real eBPF object for the maps and perf host functions ------------------------------
class KernelObject:
    """tests/wasm/bpf/host_maps.bpf.c loaded and attached, for this process."""

    def __init__(self, obj_path: Path) -> None:
        from gadgetsmith.runtime.bpf import libbpf as L

        self.L = L
        lib = L.lib()
        self.obj, self._buf = L.open_mem(obj_path.read_bytes())
        self.maps = {L.map_name(m): m for m in L.iter_maps(self.obj)}
        ro = next(m for n, m in self.maps.items() if n.endswith(".rodata"))
        L.set_initial_value(ro, os.getpid().to_bytes(4, "little"))
        L.check_int(lib.bpf_object__load(self.obj), "loading host_maps.bpf.o")
        prog = next(L.iter_programs(self.obj))
        self.link = L.check_ptr(lib.bpf_program__attach(prog), "attaching host_maps.bpf.o")
        self.mntns_fd = L.map_create(1, "mntns_filter", 8, 4, 16)
        L.map_update(self.mntns_fd, (777).to_bytes(8, "little"), (1).to_bytes(4, "little"))

    def fd(self, name: str) -> int:
        return self.L.lib().bpf_map__fd(self.maps[name])

    def named(self) -> dict[str, int]:
        return {n: self.fd(n) for n in ("counts", "outer", "events_perf")}

    @staticmethod
    def records(*ns: int) -> None:
        """Make the program write ``rec-<n>`` for each n (getpgid(n) traces it)."""
        for n in ns:
            try:
                os.getpgid(n)
            except OSError:
                pass

    def lookup(self, name: str, key: bytes, size: int) -> bytes | None:
        return self.L.map_lookup(self.fd(name), key, size)

    def close(self) -> None:
        lib = self.L.lib()
        lib.bpf_link__destroy(self.link)
        lib.bpf_object__close(self.obj)
        os.close(self.mntns_fd)


@pytest.fixture(scope="session")
def kernel_object_file(module_dir: Path) -> Path:
    from gadgetsmith.runtime.bpf.loader import host_arch
    from gadgetsmith.toolchain.build.compile import compile_program, find_toolchain

    src = WASM / "bpf" / "host_maps.bpf.c"
    out = module_dir / f"host_maps-{_digest(src.read_bytes())}.bpf.o"

    def build() -> bytes:
        tmp = module_dir / f"host_maps.{os.getpid()}.o"
        compile_program(src, host_arch(), tmp, find_toolchain())
        data = tmp.read_bytes()
        tmp.unlink()
        return data
    return _once(out, build)


@pytest.fixture
def kernel(kernel_object_file: Path) -> Iterator[KernelObject]:
    need_root("the maps and perf host functions use real eBPF maps")
    k = KernelObject(kernel_object_file)
    try:
        yield k
    finally:
        k.close()


def providers(kernel: KernelObject | None = None, **kw):
    """Real providers: the kernel object's maps and mount namespace filter (777 is
    selected), perf readers, this machine's syscalls and kallsyms, params ``greeting``."""
    from gadgetsmith.runtime.wasm.bpfmaps import KernelMaps, KernelMntnsFilter, KernelPerf
    from gadgetsmith.runtime.wasm.providers import Providers

    args = dict(params={"greeting": "hello wasm"}, config={}, log_level=2)
    if kernel is not None:
        args.update(maps=KernelMaps(kernel.named()), perf=KernelPerf(),
                    mntns_filter=KernelMntnsFilter(kernel.mntns_fd))
    args.update(kw)
    return Providers(**args)


def ensure_tracefs() -> None:
    """Syscall declarations come from tracefs: mount it when it is not (root)."""
    if os.path.isdir("/sys/kernel/tracing/events/syscalls"):
        return
    need_root("syscall declarations are read from tracefs")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"tracefs", b"/sys/kernel/tracing", b"tracefs", 0, None) != 0:
        skip_or_fail(f"cannot mount tracefs: {os.strerror(ctypes.get_errno())}")


# -- data sources most host tests share ---------------------------------------------------
def scalar_events():
    from gadgetsmith.runtime.wasm.model import DataSourceSpec, FieldSpec

    return DataSourceSpec("events", [
        FieldSpec("u8", "uint8"), FieldSpec("i8", "int8"), FieldSpec("u16", "uint16"),
        FieldSpec("i16", "int16"), FieldSpec("u32", "uint32"), FieldSpec("i32", "int32"),
        FieldSpec("u64", "uint64"), FieldSpec("i64", "int64"), FieldSpec("f32", "float32"),
        FieldSpec("f64", "float64"), FieldSpec("flag", "bool"),
        FieldSpec("proc.comm", "string", size=16), FieldSpec("blob", "bytes"),
        FieldSpec("Mixed.Case", "uint32"), FieldSpec("name", "string"),
    ])


def standard_datasources():
    from gadgetsmith.runtime.wasm.model import DataSourceSpec, DataSourceType, FieldSpec

    return [
        scalar_events(),
        DataSourceSpec("snap", [FieldSpec("n", "uint32")], DataSourceType.ARRAY),
        DataSourceSpec("hidden", [FieldSpec("x", "uint32")]),
    ]


def sample_event(**kw):
    ev = {"u8": 1, "i8": -2, "u16": 300, "i16": -400, "u32": 70000, "i32": -80000,
          "u64": 1 << 40, "i64": -(1 << 40), "f32": 1.5, "f64": 2.25, "flag": True,
          "proc.comm": "cat", "blob": b"\x01\x02\x03", "Mixed.Case": 41, "name": "alpha"}
    ev.update(kw)
    return ev


def reports(outputs) -> dict[str, tuple[int, str]]:
    """The test modules' "report" packets: check -> (value, text)."""
    return {ev["check"]: (ev["value"], ev["text"]) for name, ev in outputs if name == "report"}


@pytest.fixture
def count_calls():
    """Counts the host functions modules call while the test runs."""
    import collections

    from gadgetsmith.runtime.wasm import instance

    instance.CALL_COUNTS = collections.Counter()
    yield instance.CALL_COUNTS
    instance.CALL_COUNTS = None


def have_go() -> bool:
    return shutil.which("go") is not None
