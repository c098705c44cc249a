"""The build cache: an object compiled before is stored by content and served without clang.

Layout under ``$GADGETSMITH_BUILD_CACHE`` (default ``$XDG_CACHE_HOME/gadgetsmith/objects``,
``~/.cache/gadgetsmith/objects``; ``GADGETSMITH_BUILD_CACHE=off`` or ``--no-cache`` bypass
it, ``rm -rf`` the folder clears it)::

    v1/manifests/ab/<key>    what the object of <key> was compiled from, and its digest
    v1/objects/cd/<sha256>   the stripped object, named by its sha256
    v1/tools/ef/<identity>   clang's (and llvm-strip's) --version output, by the file's stat

``key`` hashes what is known before compiling: the clang and llvm-strip command lines
(output path left out; architecture, flags, SDK include paths and the PCH among them), the
compilers' paths and version strings, the source's bytes, the names of the headers under
the gadget directory (a new header can shadow one found later in the search path) and the
environment variables clang reads. The manifest adds what only the compile knows: every
file clang read (its ``-MD`` dependency list: the gadget's headers, the SDK's, libbpf's)
with its sha256, checked on each lookup, as ccache's direct mode does. A file whose stat
(device, inode, size, mtime, ctime) is the one recorded is not read again; any change
reads and hashes it. Nothing is stored when an input changed while clang ran or a source
uses ``__DATE__``/``__TIME__``.

Every file is written atomically (temp file in the same directory, fsync, rename), so
concurrent builds share the cache. A manifest carries the sha256 of its body and an object
is named by its own, so a damaged entry is detected and compiled again, never served.
Nothing is evicted: an entry is an object's size (tens of KB).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gadgetsmith.toolchain import sdk
from gadgetsmith.toolchain.fsutil import atomic_write

VERSION = "v1"
#: environment variables that change what clang reads or writes
CLANG_ENV = ("CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH",
             "CCC_OVERRIDE_OPTIONS", "COMPILER_PATH", "SOURCE_DATE_EPOCH")
_TIME_MACROS = re.compile(rb"__(?:DATE|TIME|TIMESTAMP)__")
_HEX64 = re.compile(r"[0-9a-f]{64}")
#: where headers are not searched for __DATE__ (system and SDK headers do not use it)
_SYSTEM_HEADERS = ("/usr/include/", "/usr/lib/", str(sdk.SDK_ROOT) + os.sep)
#: a file changed less than this before it was hashed is hashed again next time (its
#: timestamps may not tell a later write of the same size apart)
_SETTLE_NS = 2_000_000_000


def default_root() -> Path | None:
    """The cache folder, or None when ``GADGETSMITH_BUILD_CACHE`` turns it off."""
    env = os.environ.get("GADGETSMITH_BUILD_CACHE", "")
    if env.lower() in ("off", "0", "no", "false"):
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gadgetsmith" / "objects"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _h(parts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for p in parts:
        b = p.encode("utf-8", "surrogateescape")
        h.update(len(b).to_bytes(8, "big") + b)
    return h.hexdigest()


def _stat_of(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def parse_depfile(text: str, cwd: Path | None) -> list[str]:
    """The prerequisites of a make rule as clang -MD writes it, as absolute paths."""
    body = text.replace("\\\n", " ")
    _, _, deps = body.partition(": ")
    out: list[str] = []
    for tok in re.findall(r"(?:\\.|[^\s\\])+", deps):
        p = re.sub(r"\\(.)", r"\1", tok).replace("$$", "$")
        full = os.path.normpath(os.path.join(str(cwd), p)) if cwd is not None else os.path.abspath(p)
        if full not in out:
            out.append(full)
    return out


@dataclass
class Lookup:
    """One object's cache entry: ``key`` names it, ``started`` is when it was looked up (an
    input changed after that is not trusted for storing)."""

    key: str
    started_ns: int


class ObjectCache:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root) / VERSION
        self.hits = 0
        self.misses = 0

    @classmethod
    def default(cls) -> ObjectCache | None:
        root = default_root()
        return cls(root) if root is not None else None

    # -- the compilers ----------------------------------------------------------------------
    def tool_identity(self, path: str) -> str:
        """``path``, where it leads and what ``path --version`` prints, memoized by the stat
        of both (an upgrade or an edited wrapper script changes them)."""
        real = os.path.realpath(path)
        ident = _h(["tool", path, real, json.dumps([_stat_of(path), _stat_of(real)])])
        memo = self.root / "tools" / ident[:2] / ident
        try:
            return memo.read_text()
        except OSError:
            pass
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
            version = out.stdout + out.stderr
        except (OSError, subprocess.SubprocessError) as e:
            version = f"no version: {e}"
        text = f"{path}\n{real}\n{version}"
        self._write(memo, text.encode())
        return text

    # -- keys and entries -------------------------------------------------------------------
    def key(self, clang_argv: Sequence[str], strip_argv: Sequence[str], output: str,
            source: Path, cwd: Path | None) -> Lookup | None:
        """The entry's key, or None when the source cannot be read (clang will say why)."""
        started = time.time_ns()
        try:
            src = source.read_bytes()
        except OSError:
            return None
        parts = ["clang", *(("OUTPUT" if a == output else a) for a in clang_argv),
                 "strip", *(("OUTPUT" if a == output else a) for a in strip_argv),
                 self.tool_identity(clang_argv[0]), self.tool_identity(strip_argv[0]),
                 "cwd", str(cwd), "source", str(source), _sha(src),
                 "env", *(f"{k}={os.environ.get(k)}" for k in CLANG_ENV),
                 "headers", *_header_names(cwd)]
        return Lookup(_h(parts), started)

    def _manifest(self, key: str) -> Path:
        return self.root / "manifests" / key[:2] / key

    def _object(self, digest: str) -> Path:
        return self.root / "objects" / digest[:2] / digest

    def fetch(self, lookup: Lookup) -> bytes | None:
        """The stored object when every file it was compiled from is unchanged."""
        manifest = _read_manifest(self._manifest(lookup.key))
        if manifest is None or not _deps_unchanged(manifest["deps"]):  # (None: unreadable)
            self.misses += 1
            return None
        digest = manifest["object"]
        try:
            data = self._object(digest).read_bytes()
        except OSError:
            data = None
        if data is None or _sha(data) != digest:  # missing or damaged: compile again
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put(self, lookup: Lookup, deps: Sequence[str], obj: bytes) -> bool:
        """Store ``obj`` compiled from ``deps`` (what clang read). False when it must not be
        cached: an input changed after the lookup, or uses the time of the build."""
        entries: list[list[Any]] = []
        for path in deps:
            st = _stat_of(path)
            digest = _file_digest(path)
            if st is None or digest is None or max(st[3], st[4]) >= lookup.started_ns:
                return False  # gone, or written while clang ran: what did it read?
            if not path.startswith(_SYSTEM_HEADERS) and _uses_build_time(path):
                return False
            settled = max(st[3], st[4]) < time.time_ns() - _SETTLE_NS
            entries.append([path, digest, st if settled else None])
        odigest = _sha(obj)
        self._write(self._object(odigest), obj)
        body = json.dumps({"object": odigest, "deps": entries}, separators=(",", ":")).encode()
        self._write(self._manifest(lookup.key), _sha(body).encode() + b"\n" + body)
        return True

    def _write(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
        except OSError:
            pass  # a read-only or full cache: the build goes on without it


def _uses_build_time(path: str) -> bool:
    try:
        return _TIME_MACROS.search(Path(path).read_bytes()) is not None
    except OSError:
        return True


def _header_names(cwd: Path | None) -> list[str]:
    """The headers under the gadget directory, by relative path."""
    if cwd is None:
        return []
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(cwd):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = os.path.relpath(dirpath, cwd)
        out += [os.path.join(rel, f) for f in sorted(filenames) if f.endswith((".h", ".inc"))]
    return out


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    digest, _, body = raw.partition(b"\n")
    if _sha(body).encode() != digest:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not _HEX64.fullmatch(str(data.get("object"))):
        return None
    deps = data.get("deps")
    if not isinstance(deps, list) or not all(
            isinstance(d, list) and len(d) == 3 and isinstance(d[0], str) and isinstance(d[1], str)
            and (d[2] is None or isinstance(d[2], list)) for d in deps):
        return None
    return data


def _deps_unchanged(deps: list[Any]) -> bool:
    for path, digest, st in deps:
        if st is not None and _stat_of(path) == st:
            continue
        if _file_digest(path) != digest:
            return False
    return True
