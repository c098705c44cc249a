"""build.yaml: what to build from a gadget directory (same keys and defaults as ig)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.metadata.yamldoc import load_plain

DEFAULT_EBPF = "program.bpf.c"
DEFAULT_METADATA = "gadget.yaml"
KNOWN_KEYS = ("ebpfsource", "metadata", "wasm", "cflags")
#: what `wasm:` may name (see toolchain/build/wasm.py)
WASM_SUFFIXES = (".go", ".c", ".rs", ".wasm")


@dataclass
class BuildSpec:
    gadget_dir: Path
    build_file: Path | None
    ebpf_source: Path | None
    metadata: Path | None
    wasm: Path | None
    cflags: list[str] = field(default_factory=list)


def _inside(base: Path, rel: Any, key: str, origin: str) -> Path:
    if not isinstance(rel, str) or not rel.strip():
        raise UsageError(f"{origin}: '{key}' must be a non-empty path string")
    if rel.startswith("-") or "\0" in rel or "\n" in rel:
        raise UsageError(f"{origin}: '{key}' value {rel!r} is not a valid path")
    p = (base / rel).resolve()
    if p != base and base not in p.parents:
        raise UsageError(f"{origin}: '{key}' path {rel!r} points outside the gadget directory")
    return p


def _flow_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' if any(c in i for c in ' ,:[]{}#"\'') else i for i in items) + "]"


def load(gadget_dir: Path | str, build_file: Path | str | None = None,
         content: bytes | None = None) -> BuildSpec:
    """Read build.yaml (optional) and resolve every input path inside ``gadget_dir``.

    ``content``: the build file's bytes when the caller has read them already (``gadget
    validate`` checks them against the schema first), so the file is read once."""
    base = Path(gadget_dir)
    if not base.exists():
        raise UsageError(f"{base}: no such gadget directory")
    if not base.is_dir():
        raise UsageError(f"{base}: not a directory (give the gadget's directory)")
    base = base.resolve()
    bf = Path(build_file).resolve() if build_file is not None else base / "build.yaml"
    data: dict[str, Any] = {}
    if bf.exists():
        data = _read_build_file(bf, content)
    elif build_file is not None:
        raise UsageError(f"{bf}: build file not found")
    origin = str(bf) if bf.exists() else str(base)

    ebpf_path = _inside(base, data.get("ebpfsource", DEFAULT_EBPF), "ebpfsource", origin)
    ebpf = ebpf_path if ebpf_path.is_file() else None
    if ebpf is None and "ebpfsource" in data:
        raise UsageError(f"{origin}: ebpfsource {data['ebpfsource']!r} does not exist")
    meta_path = _inside(base, data.get("metadata", DEFAULT_METADATA), "metadata", origin)
    meta = meta_path if meta_path.is_file() else None
    if meta is None and "metadata" in data:
        raise UsageError(f"{origin}: metadata file {data['metadata']!r} does not exist")
    wasm = _wasm_input(base, data, origin)
    cflags = _cflags(data, origin)
    if ebpf is None and wasm is None and meta is None:
        # ig builds a gadget from any one of them: a gadget.yaml alone is an image whose
        # behaviour comes from ig's operators (bpfstats, top_process, top_cpu_throttle)
        raise UsageError(
            f"{base}: nothing to build: create {DEFAULT_EBPF} (or set 'ebpfsource' in "
            f"build.yaml), a {DEFAULT_METADATA}, or a 'wasm' module"
        )
    return BuildSpec(base, bf if bf.exists() else None, ebpf, meta, wasm, cflags)


def _read_build_file(bf: Path, content: bytes | None) -> dict[str, Any]:
    origin = str(bf)
    try:
        loaded = load_plain(content if content is not None else bf.read_bytes(), origin)
    except OSError as e:
        raise UsageError(f"{origin}: cannot read ({e.strerror})") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise UsageError(f"{origin}: must be a mapping with keys {', '.join(KNOWN_KEYS)}")
    unknown = [k for k in loaded if k not in KNOWN_KEYS]
    if unknown:
        raise UsageError(
            f"{origin}: unknown key {unknown[0]!r}: allowed keys are {', '.join(KNOWN_KEYS)}"
        )
    return loaded


def _wasm_input(base: Path, data: dict[str, Any], origin: str) -> Path | None:
    if data.get("wasm") is None:
        return None
    wasm = _inside(base, data["wasm"], "wasm", origin)
    if not wasm.is_file():
        raise UsageError(f"{origin}: wasm file {data['wasm']!r} does not exist")
    if wasm.suffix not in WASM_SUFFIXES:
        raise UsageError(
            f"{origin}: wasm {data['wasm']!r}: give a Go (.go), C (.c) or Rust (.rs) source "
            "or a prebuilt .wasm module"
        )
    return wasm


def _cflags(data: dict[str, Any], origin: str) -> list[str]:
    cflags = data.get("cflags") or []
    if isinstance(cflags, str):
        # splitting on spaces would silently change a quoted flag: one flag per item
        raise UsageError(f"{origin}: 'cflags' must be a list with one flag per item, not a "
                         f"string: write cflags: {_flow_list(cflags.split())}")
    if not isinstance(cflags, list) or not all(isinstance(c, str) for c in cflags):
        raise UsageError(f"{origin}: 'cflags' must be a list of strings")
    return list(cflags)
