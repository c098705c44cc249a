"""Errors that say what happened: each through the CLI as a user meets it, checked by its
exit code and the first line it prints (issue 15)."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from ..conftest import GADGET, SAMPLES, TINY_PROGRAM, TINY_YAML, skip_or_fail
from ..conftest import run_gadget as _run
from ..registry_util import registry, registry_server  # noqa: F401 - fixtures
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


# ------------------------------------------------------------- bad input: exit 2, one line
@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A store with tiny:1 (a tracer) and snapshot_process:1 (an iterator), amd64 only."""
    from gadgetsmith.toolchain.build.compile import find_toolchain
    from gadgetsmith.toolchain.errors import GadgetError

    try:
        find_toolchain()
    except GadgetError as e:
        skip_or_fail(str(e))
    root = tmp_path_factory.mktemp("built")
    tiny = root / "tiny"
    tiny.mkdir()
    (tiny / "program.bpf.c").write_text(TINY_PROGRAM)
    (tiny / "gadget.yaml").write_text(TINY_YAML)
    store = root / "store"
    _run("build", str(tiny), "-t", "tiny:1", "--arch", "amd64", store=store)
    _run("build", str(SAMPLES / "snapshot_process"), "-t", "snapshot_process:1", "--arch", "amd64",
         store=store)
    return store


def test_cflags_as_a_string_is_refused(tiny_gadget: Path, store: Path) -> None:
    (tiny_gadget / "build.yaml").write_text('cflags: "-DX=1 -DY=2"\n')
    res = run("build", str(tiny_gadget), store=store)
    expect(res, 2, f"error: {tiny_gadget / 'build.yaml'}: 'cflags' must be a list with one flag "
                   "per item, not a string: write cflags: [-DX=1, -DY=2]")


@pytest.mark.usefixtures("root")
@pytest.mark.parametrize("expr, start", [
    (",", "error: filter ',': empty condition"),
    ("pid==1,,", "error: filter 'pid==1,,': empty condition"),
    (",pid==1", "error: filter ',pid==1': empty condition"),
    ("error==EBOGUS", "error: filter error==EBOGUS: 'EBOGUS' is not an errno name"),
    ("error==2", "error: filter error==2: '2' is not an errno name"),
    ("error>ENOENT", "error: filter error>ENOENT: error holds an errno name: use ==, != or ~"),
])
def test_filters_that_can_never_mean_anything(built: Path, expr: str, start: str) -> None:
    res = run("run", "tiny:1", "--host", "--timeout", "1", "--filter", expr, store=built)
    expect(res, 2, start)


@pytest.mark.usefixtures("root")
def test_filters_on_errno_names_still_work(built: Path) -> None:
    for expr in ("error==ENOENT", "error!=EACCES", "error==", "error~^E"):
        res = run("run", "tiny:1", "--host", "--timeout", "0.5", "--filter", expr, store=built)
        assert res.returncode == 0, (expr, res)


@pytest.mark.usefixtures("root")
@pytest.mark.parametrize("image, sort, start", [
    ("tiny:1", "pid", "error: --sort: the gadget's data sources (tiny) are tracers"),
    ("snapshot_process:1", "nosuch", "error: --sort: unknown field 'nosuch'; fields: comm"),
    ("snapshot_process:1", "-creds.nosuch", "error: --sort: unknown field 'creds.nosuch'"),
    ("snapshot_process:1", "pid,,comm", "error: --sort 'pid,,comm': empty field name"),
])
def test_sort_that_cannot_sort(built: Path, image: str, sort: str, start: str) -> None:
    res = run("run", image, "--host", "--timeout", "1", f"--sort={sort}", store=built)
    expect(res, 2, start)


@pytest.mark.parametrize("args, start", [
    (["--timeout", "-1"], "error: Invalid value for '--timeout': -1 is not a number of seconds above 0"),
    (["--timeout", "0"], "error: Invalid value for '--timeout': 0 is not a number of seconds above 0"),
    (["--count", "-1"], "error: Invalid value for '--count': -1 is not in the range x>=1"),
    (["--count", "0"], "error: Invalid value for '--count': 0 is not in the range x>=1"),
    (["--map-fetch-interval", "0"],
     "error: Invalid value for '--map-fetch-interval': 0 is not a number of seconds above 0"),
])
def test_run_limits_out_of_range(store: Path, args: list[str], start: str) -> None:
    res = run("run", "nothere:v1", "--host", *args, store=store)
    expect(res, 2, start, "(see 'gadget run --help')")


@pytest.mark.parametrize("cmd", [
    ["run", " trace_open:v1", "--host"], ["inspect", "trace_open:v1 "], ["pull", "reg.io/x/y:v1 "],
    ["tag", "trace_open:v1", " trace_open:v2"],
])
def test_references_with_leading_or_trailing_spaces(store: Path, cmd: list[str]) -> None:
    make_image(store, "trace_open:v1")
    res = run(*cmd, store=store)
    expect(res, 2, "error: reference '", "has leading or trailing spaces: remove them")


@pytest.mark.parametrize("dest", ["127.0.0.1:5000", "localhost:5000", "registry.corp:5000"])
def test_push_destination_that_is_only_a_registry(store: Path, dest: str) -> None:
    make_image(store, REF)
    res = run("push", REF, dest, store=store)
    expect(res, 2, f"error: destination '{dest}' names a registry but no repository: write "
                   f"{dest}/REPOSITORY[:TAG]")
    res = run("tag", REF, dest, store=store)
    expect(res, 2, f"error: tag '{dest}' names a registry but no repository")


def test_run_of_a_file_that_is_not_an_ebpf_object(store: Path, tmp_path: Path) -> None:
    res = run("run", "/etc/passwd", store=store)
    expect(res, 2, "error: /etc/passwd is a file but not an eBPF object (not ELF)")
    res = run("run", str(tmp_path / "missing"), store=store)
    expect(res, 2, f"error: {tmp_path / 'missing'}: no such file or directory")


def test_sign_of_a_mistyped_local_name_does_not_ask_ghcr(store: Path, tmp_path: Path) -> None:
    import time

    from ..signing_util import ENV, key_pair

    key, _ = key_pair(tmp_path)
    t0 = time.monotonic()
    res = run("sign", "nosuch:v1", "--key", str(key), store=store,
              env={**ENV, "HTTPS_PROXY": "http://127.0.0.1:9"})
    expect(res, 1, "error: 'nosuch:v1' is not in the local store (see 'gadget list')",
           "give its full name")
    assert time.monotonic() - t0 < 30


def test_login_no_verify_does_not_say_login_succeeded(tmp_path: Path) -> None:
    authfile = tmp_path / "auth.json"
    proc = subprocess.run([GADGET, "login", "reg.example.com", "-u", "ci", "--password-stdin",
                           "--no-verify", "--authfile", str(authfile)],
                          input="token\n", capture_output=True, text=True)
    assert proc.returncode == 0, proc
    assert proc.stdout.splitlines()[0] == (
        f"Credentials saved for reg.example.com in {authfile}, not checked (--no-verify)"), proc
    assert "Login Succeeded" not in proc.stdout


def test_untagged_build_names_its_digest_and_how_to_tag_it(tiny_gadget: Path, store: Path) -> None:
    """Was: 'Successfully built @sha256:...' and no row in gadget list."""
    res = run("build", str(tiny_gadget), "--arch", "amd64", store=store)
    digest = res.stdout.split()[2]
    short = digest.removeprefix("sha256:")[:12]
    expect(res, 0, f"Successfully built {digest} (untagged: name it with 'gadget tag {short} "
                   "NAME', or build with -t NAME)")
    assert digest.startswith("sha256:") and len(digest) == 71
    rows = run("list", store=store).stdout.splitlines()
    assert rows[1].split()[:3] == ["<none>", "<none>", short], rows
    expect(run("tag", short, "tiny:named", store=store), 0, "Tagged ")
    assert run("list", store=store).stdout.splitlines()[1].split()[:2] == ["tiny", "named"]


def test_pull_by_digest_prints_the_digest_once(registry, tmp_path: Path) -> None:
    """Was: 'Pulled host/repo@sha256:X@sha256:X'."""
    ref = f"{registry.host}/obs/bydigest:v1"
    digest = make_image(tmp_path / "s", ref)
    _run("push", ref, store=tmp_path / "s")
    pinned = f"{registry.host}/obs/bydigest@{digest}"
    res = run("pull", pinned, store=tmp_path / "d")
    expect(res, 0, f"Pulled {pinned}: ")
    assert res.stdout.count("@sha256:") == 1, res
