"""The builder image: a Debian bookworm root filesystem made by mmdebstrap from Debian's
packages (clang-19, llvm-19, libbpf-dev, bpftool, wasi-libc, lld-19), this gadgetsmith's SDK
headers as a second layer, and an image config labelled with the package versions and the
gadgetsmith version.

Both layers are cached in ``~/.cache/gadgetsmith/builder`` under a key of their inputs
(suite, mirror, packages, mmdebstrap options, SOURCE_DATE_EPOCH; the SDK's bytes), so a
second `gadget builder create` downloads nothing. File times are SOURCE_DATE_EPOCH (a fixed
date when unset), so the same package versions and SDK give the same layers, the same
config and the same image ID; a newer Debian point release changes the versions (the
labels say which) and so the ID.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from gadgetsmith.toolchain import __version__, sdk
from gadgetsmith.toolchain.errors import GadgetError
from gadgetsmith.toolchain.fsutil import atomic_write, atomic_writer, locked, owned_tempdir

SUITE = "bookworm"
#: bookworm with its point-release updates and security fixes, as a Debian 12 host has them
MIRRORS = ("deb http://deb.debian.org/debian bookworm main",
           "deb http://deb.debian.org/debian bookworm-updates main",
           "deb http://deb.debian.org/debian-security bookworm-security main")
PACKAGES = ("clang-19", "llvm-19", "libbpf-dev", "bpftool", "wasi-libc", "lld-19",
            "libclang-rt-19-dev-wasm32")
#: mmdebstrap's options: no recommends, no documentation, man pages or translations, no
#: device nodes in the tarball (the engine gives the container its /dev)
MMDEBSTRAP_OPTIONS = (
    "--variant=essential", "--format=tar", "--skip=output/dev",
    "--aptopt=APT::Install-Recommends \"false\"",
    "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-exclude=/usr/share/info/*",
)
#: file and image times when SOURCE_DATE_EPOCH is unset (2024-01-01T00:00:00Z)
DEFAULT_EPOCH = 1704067200

#: where the image keeps the SDK and its compilers (the builder's argv names them)
IMAGE_SDK_ROOT = Path("/usr/share/gadgetsmith/sdk")
IMAGE_CLANG = "/usr/bin/clang-19"
IMAGE_STRIP = "/usr/bin/llvm-strip-19"

LABEL = "io.gadgetsmith.builder"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class BuilderImageError(GadgetError):
    """The builder image could not be made (mmdebstrap missing or failing)."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gadgetsmith" / "builder"


def epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else DEFAULT_EPOCH


def goarch() -> str:
    return _GOARCH.get(platform.machine().lower(), platform.machine().lower())


@dataclass(frozen=True)
class Layer:
    """An uncompressed layer tarball: its digest is also its diff ID."""

    path: Path
    digest: str
    size: int


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# -- the Debian layer ---------------------------------------------------------------------

def mmdebstrap_argv(out: Path) -> list[str]:
    return ["mmdebstrap", "--mode=auto", *MMDEBSTRAP_OPTIONS, f"--include={','.join(PACKAGES)}",
            SUITE, str(out), *MIRRORS]


def rootfs_key() -> str:
    inputs = json.dumps([SUITE, MIRRORS, PACKAGES, MMDEBSTRAP_OPTIONS, epoch(), goarch()])
    return hashlib.sha256(inputs.encode()).hexdigest()[:24]


def _dpkg_versions(status: bytes) -> dict[str, str]:
    """``Package: Version`` of every installed package in a dpkg status file."""
    out: dict[str, str] = {}
    for stanza in status.decode(errors="replace").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line
                      and not line.startswith(" "))
        if "Package" in fields and "Version" in fields and "installed" in fields.get("Status", ""):
            out[fields["Package"]] = fields["Version"]
    return out


class _Hashing(io.RawIOBase):
    """A reader that hashes what passes through it."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.h, self.size = f, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.f.read(len(b))
        n = len(data)
        b[:n] = data
        self.h.update(data)
        self.size += n
        return n


def _scan_rootfs(path: Path) -> tuple[str, int, dict[str, str]]:
    """Digest, size and package versions of a rootfs tarball, in one read."""
    with path.open("rb") as f:
        reader = _Hashing(f)
        status = b""
        with tarfile.open(fileobj=io.BufferedReader(reader), mode="r|") as tar:
            for member in tar:
                if member.name in ("./var/lib/dpkg/status", "var/lib/dpkg/status"):
                    extracted = tar.extractfile(member)
                    status = extracted.read() if extracted else b""
        while reader.read(1 << 20):
            pass
    return "sha256:" + reader.h.hexdigest(), reader.size, _dpkg_versions(status)


@dataclass(frozen=True)
class Rootfs:
    layer: Layer
    versions: dict[str, str]


def make_rootfs(refresh: bool = False, log: Callable[[str], None] | None = None) -> Rootfs:
    """The Debian layer, from the cache or made now by mmdebstrap (a few minutes)."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    key = rootfs_key()
    tar, meta = cache / f"rootfs-{key}.tar", cache / f"rootfs-{key}.json"
    with locked(cache / ".lock"):
        if refresh or not (tar.is_file() and meta.is_file()):
            _run_mmdebstrap(cache, tar, log)
            digest, size, versions = _scan_rootfs(tar)
            atomic_write(meta, json.dumps({"digest": digest, "size": size, "versions": versions},
                                          sort_keys=True).encode())
        info = json.loads(meta.read_text())
    return Rootfs(Layer(tar, info["digest"], info["size"]), info["versions"])


def _run_mmdebstrap(cache: Path, dest: Path, log: Callable[[str], None] | None) -> None:
    if shutil.which("mmdebstrap") is None:
        raise BuilderImageError("mmdebstrap not found: install it with 'apt-get install mmdebstrap'")
    with owned_tempdir(".making-rootfs-", cache) as tmp:
        out = tmp / "rootfs.tar"
        argv = mmdebstrap_argv(out)
        if log:
            log(f"making the Debian {SUITE} root filesystem: {' '.join(argv)}")
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch()))
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("E:")]
            last = errors[-1] if errors else f"exit status {proc.returncode}"
            raise BuilderImageError(f"mmdebstrap failed: {last}", detail=proc.stderr.rstrip())
        os.replace(out, dest)


# -- the SDK layer ------------------------------------------------------------------------

def _sdk_files() -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for top in ("include", "compat"):
        for p in sorted((sdk.SDK_ROOT / top).rglob("*")):
            if p.is_file() and p.suffix == ".h":
                out.append((p.relative_to(sdk.SDK_ROOT).as_posix(), p))
    return sorted(out)


def sdk_digest() -> str:
    """Of this gadgetsmith's SDK headers (names and bytes): the label a builder's copy has."""
    h = hashlib.sha256()
    for rel, p in _sdk_files():
        h.update(rel.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return "sha256:" + h.hexdigest()


def _tar_entries(when: int) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    dirs: set[str] = set()
    for rel, p in _sdk_files():
        full = (IMAGE_SDK_ROOT / rel).as_posix().lstrip("/")
        parts = full.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                yield _info(d, tarfile.DIRTYPE, 0o755, 0, when), None
        data = p.read_bytes()
        yield _info(full, tarfile.REGTYPE, 0o644, len(data), when), data


def _info(name: str, kind: bytes, mode: int, size: int, when: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, when
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def make_sdk_layer() -> tuple[Layer, str]:
    """The SDK as a layer tarball (cached by its content and the epoch), and its digest label."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    label = sdk_digest()
    when = epoch()
    path = cache / f"sdk-{label.removeprefix('sha256:')[:24]}-{when}.tar"
    if not path.is_file():
        with atomic_writer(path) as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as t:
            for info, data in _tar_entries(when):
                t.addfile(info, io.BytesIO(data) if data is not None else None)
    return Layer(path, _sha256_file(path), path.stat().st_size), label


# -- the image ------------------------------------------------------------------------------

@dataclass
class BuilderImage:
    """What `gadget builder create` loads into the engine (and `gadget builder push` sends)."""

    reference: str
    layers: list[Layer]
    labels: dict[str, str]
    config: bytes = b""
    config_digest: str = ""
    created: int = field(default_factory=epoch)

    def __post_init__(self) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created))
        doc = {
            "architecture": goarch(), "os": "linux", "created": stamp,
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                       "Cmd": ["sleep", "infinity"], "WorkingDir": "/", "Labels": self.labels},
            "rootfs": {"type": "layers", "diff_ids": [la.digest for la in self.layers]},
            "history": [{"created": stamp, "created_by": " ".join(mmdebstrap_argv(Path("-")))},
                        {"created": stamp, "created_by": f"gadgetsmith {__version__} SDK headers"}],
        }
        self.config = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        self.config_digest = "sha256:" + hashlib.sha256(self.config).hexdigest()

    @property
    def id(self) -> str:
        return self.config_digest

    def manifest(self) -> bytes:
        """The OCI manifest a registry gets (uncompressed layers: their digests are the diff IDs)."""
        doc = {"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
               "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": self.config_digest,
                          "size": len(self.config)},
               "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": la.digest, "size": la.size}
                          for la in self.layers]}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def write_archive(self, out: BinaryIO) -> None:
        """A `docker save` archive (manifest.json, config, layer tarballs), for the engine's
        image load endpoint (Docker and podman both take it)."""
        hexid = self.config_digest.removeprefix("sha256:")
        names = [f"{la.digest.removeprefix('sha256:')}/layer.tar" for la in self.layers]
        manifest = json.dumps([{"Config": f"{hexid}.json", "RepoTags": [self.reference],
                                "Layers": names}]).encode()
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as t:
            t.addfile(_info(f"{hexid}.json", tarfile.REGTYPE, 0o644, len(self.config), self.created),
                      io.BytesIO(self.config))
            for name, la in zip(names, self.layers, strict=True):
                with la.path.open("rb") as f:
                    t.addfile(_info(name, tarfile.REGTYPE, 0o644, la.size, self.created), f)
            t.addfile(_info("manifest.json", tarfile.REGTYPE, 0o644, len(manifest), self.created),
                      io.BytesIO(manifest))


def labels(rootfs: Rootfs, sdk_label: str) -> dict[str, str]:
    out = {
        LABEL: "1",
        f"{LABEL}.version": __version__,
        f"{LABEL}.ig-version": sdk.IG_VERSION,
        f"{LABEL}.sdk.digest": sdk_label,
        f"{LABEL}.sdk.path": str(IMAGE_SDK_ROOT),
        f"{LABEL}.clang": IMAGE_CLANG,
        f"{LABEL}.llvm-strip": IMAGE_STRIP,
        f"{LABEL}.debian.suite": SUITE,
        "org.opencontainers.image.title": "gadgetsmith-builder",
        "org.opencontainers.image.version": __version__,
    }
    for name in PACKAGES:
        out[f"{LABEL}.package.{name}"] = rootfs.versions.get(name, "not installed")
    return out


def make_image(reference: str, refresh: bool = False,
               log: Callable[[str], None] | None = None) -> BuilderImage:
    """The builder image's layers and config (made or taken from the cache); nothing is
    loaded into an engine here."""
    rootfs = make_rootfs(refresh, log)
    sdk_layer, sdk_label = make_sdk_layer()
    return BuilderImage(reference, [rootfs.layer, sdk_layer], labels(rootfs, sdk_label))
