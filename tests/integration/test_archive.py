"""gadget export / import: deterministic tars; hostile tars are refused, store untouched."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from gadgetsmith.toolchain.oci.store import open_store

from ..conftest import run_gadget
from .test_registry import make_image, store_digest


def snapshot(store: Path) -> tuple:
    if not store.exists():
        return ()
    files = sorted((p.relative_to(store).as_posix(), p.read_bytes()) for p in store.rglob("*")
                   if p.is_file() and p.name != "index.json.lock")
    return tuple(files)


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    s = tmp_path / "s"
    digests = {
        "reg.example.com/obs/trace_open:v1": make_image(s, "reg.example.com/obs/trace_open:v1"),
        "snapshot_process:v1": make_image(s, "snapshot_process:v1", seed=b"y", meta=None),
    }
    tar = tmp_path / "gadgets.tar"
    run_gadget("export", *digests, str(tar), store=s)
    return s, tar, digests


def test_export_is_deterministic_and_ig_shaped(exported, tmp_path: Path) -> None:
    s, tar, digests = exported
    first = tar.read_bytes()
    run_gadget("export", *digests, str(tar), store=s)
    assert tar.read_bytes() == first
    with tarfile.open(tar) as t:
        members = t.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) and names[-2:] == ["index.json", "oci-layout"]
    assert all(m.isreg() and m.mtime == 0 for m in members)
    with tarfile.open(tar) as t:
        index = json.loads(t.extractfile("index.json").read())
    refs = sorted(m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"])
    assert refs == ["ghcr.io/inspektor-gadget/gadget/snapshot_process:v1",
                    "reg.example.com/obs/trace_open:v1"]
    assert [m["digest"] for m in index["manifests"]] == sorted(m["digest"] for m in index["manifests"])


def test_import_round_trip(exported, tmp_path: Path) -> None:
    _, tar, digests = exported
    d = tmp_path / "d"
    out = run_gadget("import", str(tar), "--format", "json", store=d).json()
    assert sorted(out) == sorted(["ghcr.io/inspektor-gadget/gadget/snapshot_process:v1",
                                  "reg.example.com/obs/trace_open:v1"])
    for ref, digest in digests.items():
        assert store_digest(d, ref) == digest
    # the imported store exports to the same bytes
    again = tmp_path / "again.tar"
    run_gadget("export", *digests, str(again), store=d)
    assert again.read_bytes() == tar.read_bytes()


def _rewrite(src: Path, dst: Path, mutate) -> None:
    """Copy a tar member by member through ``mutate(tarinfo, data) -> list[(tarinfo, data)]``."""
    with tarfile.open(src) as t, tarfile.open(dst, "w", format=tarfile.GNU_FORMAT) as out:
        for m in t.getmembers():
            data = t.extractfile(m).read() if m.isreg() else b""
            for mi, md in mutate(m, data):
                mi.size = len(md) if mi.isreg() else 0
                out.addfile(mi, io.BytesIO(md) if mi.isreg() else None)


def _extra(name: str, **kw) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def _first_blob(m: tarfile.TarInfo) -> bool:
    return m.name.startswith("blobs/sha256/")


HOSTILE = {
    "absolute": lambda m, d: [(_extra("/etc/evil"), b"x"), (m, d)],
    "dotdot": lambda m, d: [(_extra("blobs/../../evil"), b"x"), (m, d)],
    "symlink": lambda m, d: [(m, d)] + ([(_extra("blobs/sha256/" + "0" * 64, type=tarfile.SYMTYPE,
                                                 linkname="/etc/passwd"), b"")]
                                        if m.name == "oci-layout" else []),
    "hardlink": lambda m, d: [(m, d)] + ([(_extra("blobs/sha256/" + "0" * 64, type=tarfile.LNKTYPE,
                                                  linkname="oci-layout"), b"")]
                                         if m.name == "oci-layout" else []),
    "device": lambda m, d: [(m, d)] + ([(_extra("blobs/sha256/" + "0" * 64, type=tarfile.CHRTYPE,
                                                devmajor=1, devminor=3), b"")]
                                       if m.name == "oci-layout" else []),
    "duplicate": lambda m, d: [(m, d), (m, d)] if m.name == "index.json" else [(m, d)],
    "digest-mismatch": lambda m, d: [(m, (d[:-1] + bytes([d[-1] ^ 1])) if _first_blob(m) else d)],
    "missing-blob": lambda m, d: [] if _first_blob(m) else [(m, d)],
    "unknown-member": lambda m, d: [(m, d), (_extra("notes.txt"), b"hi")] if m.name == "oci-layout"
    else [(m, d)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_leave_the_store_untouched(exported, tmp_path: Path, case: str) -> None:
    _, tar, _ = exported
    bad = tmp_path / f"{case}.tar"
    _rewrite(tar, bad, HOSTILE[case])
    d = tmp_path / "d"
    make_image(d, "already/here:v1", seed=b"z")
    before = snapshot(d)
    res = run_gadget("import", str(bad), store=d, check=False)
    assert res.returncode == 2, res
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    assert snapshot(d) == before
    assert not list(d.glob(".tmp-*"))
    assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()


def test_oversized_member_and_gzip_are_refused(exported, tmp_path: Path) -> None:
    _, tar, _ = exported
    d = tmp_path / "d"
    res = run_gadget("import", str(tar), store=d, check=False,
                     env={"GADGETSMITH_IMPORT_MAX_BYTES": "1000"})
    assert res.returncode == 2 and "over the limit" in res.stderr
    assert not any(p.is_file() for p in (d / "blobs" / "sha256").glob("*"))
    import gzip

    gz = tmp_path / "g.tar.gz"
    gz.write_bytes(gzip.compress(tar.read_bytes()))
    res = run_gadget("import", str(gz), store=d, check=False)
    assert res.returncode == 2 and "not a plain" in res.stderr


def test_import_respects_policy(exported, tmp_path: Path) -> None:
    _, tar, _ = exported
    pol = tmp_path / "p.yaml"
    pol.write_text("allowedGadgets: ['reg.example.com/obs/*']\n")
    d = tmp_path / "d"
    res = run_gadget("import", str(tar), "--policy", str(pol), store=d, check=False)
    assert res.returncode == 3 and "snapshot_process:v1" in res.stderr
    # the refusal names what was refused: importing (it said "running")
    assert res.stderr.splitlines()[0].startswith(f"error: {pol}: importing "), res
    assert open_store(d).entries() == []


def test_signature_tag_is_exported_and_imported(tmp_path: Path) -> None:
    from gadgetsmith.runtime.oci import mediatypes as mt
    from gadgetsmith.toolchain.oci.assemble import descriptor
    from gadgetsmith.toolchain.registry.api import signature_tag

    s = tmp_path / "s"
    ref = "reg.example.com/obs/signed:v1"
    digest = make_image(s, ref)
    layer_data = b'{"critical":{}}'
    man = json.dumps({"schemaVersion": 2, "mediaType": mt.MANIFEST,
                      "config": {"mediaType": mt.EMPTY, "digest": mt.EMPTY_DIGEST, "size": 2},
                      "layers": [descriptor("application/vnd.dev.cosign.simplesigning.v1+json",
                                             layer_data)]}).encode()
    st = open_store(s)
    with st.lock():
        for b in (layer_data, man, b"{}"):
            st.put_blob(b)
        st.set_tag(signature_tag(digest), descriptor(mt.MANIFEST, man))
    tar = tmp_path / "t.tar"
    run_gadget("export", ref, str(tar), store=s)
    out = run_gadget("import", str(tar), "--format", "json", store=tmp_path / "d").json()
    assert out == [ref]  # signature tags are not listed as images
    tags = {e.reference: e.digest for e in open_store(tmp_path / "d").entries()}
    assert tags[signature_tag(digest)] == "sha256:" + hashlib.sha256(man).hexdigest()


def test_import_removes_stale_staging_of_killed_imports(exported, tmp_path: Path) -> None:
    import os

    _, tar, digests = exported
    d = tmp_path / "d"
    open_store(d).init()
    stale, fresh = d / ".tmp-import-killed", d / ".tmp-import-running"
    for p in (stale, fresh):
        p.mkdir()
        (p / "blob").write_bytes(b"partial")
    os.utime(stale, (0, 0))
    run_gadget("import", str(tar), store=d)
    assert not stale.exists()
    assert fresh.is_dir()  # may belong to an import still running


def test_failed_export_leaves_no_partial_tar_and_no_temp_file(exported, tmp_path: Path) -> None:
    """A write that fails mid-tar (here: RLIMIT_FSIZE, as a full disk would) changes nothing."""
    import os
    import resource
    import subprocess

    from ..conftest import GADGET

    s, tar, digests = exported
    full_size = tar.stat().st_size
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "gadgets.tar"
    dest.write_bytes(b"previous export")
    limit = full_size // 2  # fails after some members are written, not before the first

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = dict(os.environ, GADGETSMITH_STORE=str(s))
    env.pop("GADGETSMITH_DEBUG", None)
    proc = subprocess.run([GADGET, "export", *digests, str(dest)], capture_output=True, text=True,
                          env=env, preexec_fn=small_files, timeout=120)
    assert proc.returncode == 1, proc
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot export to {dest}: File too large (nothing was written)"]
    assert dest.read_bytes() == b"previous export"
    assert sorted(p.name for p in out.iterdir()) == ["gadgets.tar"]
