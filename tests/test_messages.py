"""Errors that say what happened: each through the CLI as a user meets it, checked by its
exit code and the first line it prints (issue 15)."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

from .conftest import GADGET, skip_or_fail
from .conftest import run_gadget as _run
from .test_registry import make_image

REF = "reg.example.com/obs/msg:v1"


def first(res) -> str:
    """The first line of stderr (errors) or, when there is none, of stdout."""
    lines = res.stderr.splitlines() or res.stdout.splitlines()
    return lines[0] if lines else ""


def expect(res, code: int, start: str, *more: str) -> None:
    assert res.returncode == code, res
    assert "Traceback" not in res.stderr, res
    line = first(res)
    assert line.startswith(start), (line, res)
    for m in more:
        assert m in line, (m, res)


def run(*args: str, store: Path | None = None, **kw):
    return _run(*args, store=store, check=False, **kw)


def _largest_blob(store: Path) -> Path:
    return max((store / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_export_of_a_blob_changed_on_disk_fails_and_writes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "s"
    make_image(store, REF)
    blob = _largest_blob(store)
    _flip_a_byte(blob)
    out = tmp_path / "out.tar"
    res = run("export", REF, str(out), store=store)
    expect(res, 1, f"error: cannot export: blob sha256:{blob.name} of the local store does not "
                   "match its digest", "build or pull it again")
    assert not out.exists() and list(tmp_path.glob(".tmp-*")) == []


def test_import_of_a_truncated_tar(tmp_path: Path) -> None:
    store = tmp_path / "s"
    make_image(store, REF, size=20_000)
    tar = tmp_path / "a.tar"
    run("export", REF, str(tar), store=store)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(tar.read_bytes()[:10_000])
    res = run("import", str(cut), store=tmp_path / "d")
    expect(res, 2, f"error: {cut}: the tar archive is truncated or damaged", "export it again")


def test_import_of_a_directory(tmp_path: Path) -> None:
    d = tmp_path / "layout"
    d.mkdir()
    res = run("import", str(d), store=tmp_path / "s")
    expect(res, 2, f"error: {d} is a directory: give the tar file that 'gadget export'")


def test_store_whose_index_is_not_json(tmp_path: Path) -> None:
    store = tmp_path / "s"
    make_image(store, REF)
    (store / "index.json").write_text("{bad")
    for cmd in (["list"], ["run", REF, "--host", "--timeout", "1"], ["inspect", REF]):
        res = run(*cmd, store=store)
        expect(res, 1, f"error: {store}/index.json: the store's index is not valid JSON",
               "restore it")


def test_run_of_an_image_whose_blob_was_changed_on_disk(tmp_path: Path) -> None:
    store = tmp_path / "s"
    make_image(store, REF)
    size = _largest_blob(store).stat().st_size
    for layer in (p for p in (store / "blobs" / "sha256").iterdir() if p.stat().st_size == size):
        _flip_a_byte(layer)  # the eBPF layers of both architectures
    res = run("run", REF, "--host", "--timeout", "1", store=store)
    expect(res, 1, "error: blob sha256:", f"in {store} is corrupt: its content does not "
                   "match its digest", "gadget rm REF")


def test_read_only_store(tmp_path: Path) -> None:
    """A store on a read-only mount (a bind mount in a private mount namespace)."""
    store = tmp_path / "s"
    make_image(store, REF)
    ro = tmp_path / "ro"
    ro.mkdir()
    if shutil.which("unshare") is None:
        skip_or_fail("unshare (util-linux) is needed for a read-only mount")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        skip_or_fail(f"cannot make a mount namespace: {probe.stderr.decode().strip()}")
    script = (f"mount --bind {store} {ro} && mount -o remount,bind,ro {ro} && "
              f"GADGETSMITH_STORE={ro} {GADGET} \"$@\"")
    for cmd in (["tag", REF, "reg.example.com/obs/other:v1"], ["rm", REF]):
        proc = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *cmd],
                              capture_output=True, text=True)
        assert proc.returncode == 1, proc
        line = proc.stderr.splitlines()[0]
        assert line.startswith(f"error: cannot write to the store {ro}: it is on a read-only "
                               "file system"), proc
        assert "--store DIR" in line and "Traceback" not in proc.stderr


def test_tar_cut_in_the_middle_of_a_member_header(tmp_path: Path) -> None:
    """Cut at a header boundary too: tarfile raises differently there."""
    store = tmp_path / "s"
    make_image(store, REF, size=20_000)
    tar = tmp_path / "a.tar"
    run("export", REF, str(tar), store=store)
    with tarfile.open(tar) as t:
        second = t.getmembers()[1].offset
    cut = tmp_path / "cut.tar"
    cut.write_bytes(tar.read_bytes()[:second + 100])
    res = run("import", str(cut), store=tmp_path / "d")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res
    assert first(res).startswith(f"error: {cut}: "), res
