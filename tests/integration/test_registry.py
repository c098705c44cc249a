"""push / pull / copy / login against a real docker-registry on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.toolchain.oci.assemble import ArchContent, build_image
from gadgetsmith.toolchain.oci.store import open_store

from ..conftest import need_tool, run_gadget, skip_or_fail
from ..registry_util import (  # noqa: F401 - fixtures
    PASSWORD,
    USER,
    auth_registry,
    registry,
    registry_server,
    tls_registry,
)


def make_image(store: Path, ref: str, size: int = 4096, seed: bytes = b"x",
               meta: bytes | None = b"name: synthetic\n") -> str:
    """A gadget-shaped image (index, amd64+arm64, config, eBPF layer) without clang."""
    payload = (seed * (size // len(seed) + 1))[:size]
    content = {a: ArchContent(ebpf=payload + a.encode()) for a in ("amd64", "arm64")}
    img = build_image(meta, {"name": "synthetic"} if meta else None, content, "2026-11-23T00:00:00Z")
    from gadgetsmith.runtime.oci.reference import normalize

    open_store(store).add_image(img.blobs, img.index_descriptor, normalize(ref))
    return img.digest


def store_digest(store: Path, ref: str) -> str:
    from gadgetsmith.runtime.oci.reference import normalize

    for e in open_store(store).entries():
        if e.reference == normalize(ref):
            return e.digest
    raise AssertionError(f"{ref} not in store")


def blob_files(store: Path) -> set[str]:
    return {p.name for p in (store / "blobs" / "sha256").iterdir()}


def test_push_pull_round_trip_plain_http(registry, tmp_path: Path) -> None:
    src, dst = tmp_path / "a", tmp_path / "b"
    ref = f"{registry.host}/obs/trace_open:v1"
    digest = make_image(src, ref, size=300_000)
    out = run_gadget("push", ref, *registry.client_args(), "--format", "json", store=src).json()
    assert out["digest"] == digest and out["transferred"] == out["blobs"] == 3
    assert out["manifests"] == 3

    out = run_gadget("pull", ref, *registry.client_args(), "--format", "json", store=dst).json()
    assert out["digest"] == digest
    assert store_digest(dst, ref) == digest
    assert blob_files(dst) == blob_files(src)
    for f in blob_files(src):
        assert (src / "blobs/sha256" / f).read_bytes() == (dst / "blobs/sha256" / f).read_bytes()
    assert not list(dst.glob(".tmp-*"))
    # the pulled image's store entry has no annotations: CREATED comes from inside, as in ig
    (row,) = run_gadget("list", "--format", "json", store=dst).json()
    assert row["created"] == "2026-11-23T00:00:00Z", row

    # unchanged re-push moves no blob; re-pull moves nothing
    again = run_gadget("push", ref, *registry.client_args(), "--format", "json", store=src).json()
    assert again["transferred"] == 0 and again["skipped"] == 3
    again = run_gadget("pull", ref, *registry.client_args(), "--format", "json", store=dst).json()
    assert again["transferred"] == 0

    # text output and the image is usable locally
    res = run_gadget("inspect", ref, "--format", "json", store=dst).json()
    assert [m["platform"]["architecture"] for m in res["manifests"]] == ["amd64", "arm64"]


def test_loopback_registry_speaks_plain_http_without_insecure_registries(registry, tmp_path: Path) -> None:
    """Was: a loopback registry needed --insecure-registries like any other. Now, as docker
    does for localhost and 127.0.0.0/8, HTTPS is tried and a plain-HTTP answer is taken
    (a non-loopback name still needs the flag: tests/integration/test_transport.py)."""
    ref = f"{registry.host}/obs/x:v1"
    digest = make_image(tmp_path / "s", ref)
    res = run_gadget("push", ref, store=tmp_path / "s")
    assert res.stdout.startswith(f"Pushed {ref}@{digest}"), res
    other = f"localhost:{registry.port}/obs/x:v1"
    res = run_gadget("pull", other, store=tmp_path / "d")
    assert res.stdout.startswith(f"Pulled {other}@{digest}"), res


def test_insecure_registries_against_a_tls_registry_says_it_speaks_tls(tls_registry,
                                                                     tmp_path: Path) -> None:
    ref = f"{tls_registry.host}/obs/x:v1"
    make_image(tmp_path / "s", ref)
    res = run_gadget("push", ref, "--insecure-registries", tls_registry.host, store=tmp_path / "s",
                     check=False)
    assert res.returncode == 1, res
    assert res.stderr.splitlines()[0].startswith(
        f"error: {ref}: {tls_registry.host} speaks TLS (HTTPS) but was reached over plain HTTP"), res


def test_tls_with_generated_ca(tls_registry, tmp_path: Path) -> None:
    ref = f"{tls_registry.host}/team/g:v2"
    digest = make_image(tmp_path / "s", ref)
    res = run_gadget("push", ref, store=tmp_path / "s", check=False)
    assert res.returncode == 1 and "--ca-file" in res.stderr, res
    assert "certificate verify failed" in res.stderr and "SSLError" not in res.stderr, res.stderr
    run_gadget("push", ref, "--ca-file", str(tls_registry.ca_file), store=tmp_path / "s")
    run_gadget("pull", ref, "--ca-file", str(tls_registry.ca_file), store=tmp_path / "d")
    assert store_digest(tmp_path / "d", ref) == digest


def test_htpasswd_login_push_pull_logout(auth_registry, tmp_path: Path) -> None:
    authfile = tmp_path / "auth.json"
    ca = ["--ca-file", str(auth_registry.ca_file)]
    host = auth_registry.host
    ref = f"{host}/private/g:v1"
    make_image(tmp_path / "s", ref)

    res = run_gadget("push", ref, *ca, "--authfile", str(authfile), store=tmp_path / "s", check=False)
    assert res.returncode == 1 and "requires authentication" in res.stderr
    assert f"gadget login {host}" in res.stderr

    import subprocess

    from ..conftest import GADGET

    def login(pw: str) -> subprocess.CompletedProcess:
        return subprocess.run([GADGET, "login", host, "-u", USER, "--password-stdin", *ca,
                               "--authfile", str(authfile)], input=pw + "\n", capture_output=True,
                              text=True)

    bad = login("wrong")
    assert bad.returncode == 1 and "rejected the credentials" in bad.stderr
    assert not authfile.exists()
    ok = login(PASSWORD)
    assert ok.returncode == 0 and "Login Succeeded" in ok.stdout, ok.stderr
    doc = json.loads(authfile.read_text())
    assert host in doc["auths"] and oct(authfile.stat().st_mode & 0o777) == "0o600"

    run_gadget("push", ref, *ca, "--authfile", str(authfile), store=tmp_path / "s")
    # REGISTRY_AUTH_FILE is honoured too
    run_gadget("pull", ref, *ca, store=tmp_path / "d", env={"REGISTRY_AUTH_FILE": str(authfile)})
    # DOCKER_CONFIG/config.json
    dc = tmp_path / "dockercfg"
    dc.mkdir()
    (dc / "config.json").write_text(authfile.read_text())
    run_gadget("pull", ref, *ca, store=tmp_path / "d2",
               env={"DOCKER_CONFIG": str(dc), "REGISTRY_AUTH_FILE": ""})

    out = run_gadget("logout", host, "--authfile", str(authfile))
    assert "Removed" in out.stdout
    assert host not in json.loads(authfile.read_text()).get("auths", {})
    res = run_gadget("pull", ref, *ca, "--authfile", str(authfile), store=tmp_path / "d3", check=False)
    assert res.returncode == 1 and "requires authentication" in res.stderr


def test_wrong_password_in_authfile(auth_registry, tmp_path: Path) -> None:
    import base64

    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {auth_registry.host: {
        "auth": base64.b64encode(f"{USER}:nope".encode()).decode()}}}))
    ref = f"{auth_registry.host}/private/g:v1"
    make_image(tmp_path / "s", ref)
    res = run_gadget("push", ref, "--ca-file", str(auth_registry.ca_file), "--authfile", str(authfile),
                     store=tmp_path / "s", check=False)
    assert res.returncode == 1
    assert "rejected the credentials" in res.stderr and "Traceback" not in res.stderr


def test_credential_helper(auth_registry, tmp_path: Path) -> None:
    """credHelpers: a docker-credential-* program answers `get` with the secret."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-gstest"
    helper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = get ]; then read host; echo "$host" > {tmp_path}/asked; '
        f'echo \'{{"Username":"{USER}","Secret":"{PASSWORD}"}}\'; fi\n'
    )
    helper.chmod(0o755)
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"credHelpers": {auth_registry.host: "gstest"}}))
    ref = f"{auth_registry.host}/private/h:v1"
    make_image(tmp_path / "s", ref)
    run_gadget("push", ref, "--ca-file", str(auth_registry.ca_file), "--authfile", str(authfile),
               store=tmp_path / "s", env={"PATH": f"{bindir}:{os.environ['PATH']}"})
    assert (tmp_path / "asked").read_text().strip() == auth_registry.host


def test_no_credentials_over_plain_http_to_non_loopback(tmp_path: Path) -> None:
    """A plain-HTTP registry on a non-loopback address never receives the Authorization."""
    from gadgetsmith.toolchain.registry.api import RemoteOptions, connect

    seen: list[bytes] = []
    srv = socket.socket()
    srv.bind(("0.0.0.0", 0))
    srv.listen(5)
    port = srv.getsockname()[1]

    def serve() -> None:
        for _ in range(3):
            try:
                c, _ = srv.accept()
            except OSError:
                return
            data = c.recv(65536)
            seen.append(data)
            c.sendall(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\n"
                      b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    # a non-loopback address of this machine
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))
        ip = s.getsockname()[0]
    finally:
        s.close()
    if ip.startswith("127."):
        skip_or_fail("no non-loopback address on this machine")
    host = f"{ip}:{port}"
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {host: {"auth": "dXNlcjpzZWNyZXQ="}}}))
    client = connect(host, RemoteOptions(authfile=authfile, insecure_registries=[host], retries=0))
    from gadgetsmith.toolchain.registry.client import RegistryAuthError

    with pytest.raises(RegistryAuthError, match="never sent in clear text"):
        client.manifest_get("x/y", "v1")
    srv.close()
    assert seen and all(b"authorization" not in d.lower() for d in seen)


def test_pull_unknown_tag_and_repo(registry, tmp_path: Path) -> None:
    res = run_gadget("pull", f"{registry.host}/nope/x:v9", *registry.client_args(),
                     store=tmp_path / "d", check=False)
    assert res.returncode == 1 and "not found" in res.stderr and "nope/x:v9" in res.stderr


def test_policy_refuses_before_any_network_io(tmp_path: Path) -> None:
    """The registry address is a listening socket that counts connections: none arrive."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.settimeout(0.5)
    host = f"127.0.0.1:{srv.getsockname()[1]}"
    pol = tmp_path / "policy.yaml"
    pol.write_text(f"allowedGadgets: ['{host}/good/*']\nallowedPush: ['{host}/good/*']\n")
    make_image(tmp_path / "s", f"{host}/evil/x:v1")
    for args in (["push", f"{host}/evil/x:v1"], ["pull", f"{host}/evil/x:v1"],
                 ["copy", f"{host}/good/x:v1", f"{host}/evil/x:v1"],
                 ["copy", f"{host}/evil/x:v1", f"{host}/good/x:v1"]):
        res = run_gadget(*args, "--policy", str(pol), "--insecure-registries", host,
                         store=tmp_path / "s", check=False)
        assert res.returncode == 3, res
        assert "not allowed" in res.stderr and "/evil/x:v1" in res.stderr
    with pytest.raises(socket.timeout):
        srv.accept()
    srv.close()
    res = run_gadget("pull", "evil.example.com/x:v1", "--policy", str(pol), store=tmp_path / "s",
                     check=False)
    assert res.returncode == 3 and "'evil.example.com/x:v1'" in res.stderr


def test_copy_between_registries_and_mount(registry, registry_server, tmp_path: Path) -> None:
    other = registry_server()
    ref = f"{registry.host}/obs/g:v1"
    digest = make_image(tmp_path / "s", ref, size=100_000)
    run_gadget("push", ref, *registry.client_args(), store=tmp_path / "s")
    args = ["--insecure-registries", f"{registry.host},{other.host}", "--format", "json"]
    out = run_gadget("copy", ref, f"{other.host}/mirror/g:v1", *args).json()
    assert out["digest"] == digest and out["transferred"] == 3
    # same registry, other repository: blobs are mounted, not uploaded
    out = run_gadget("copy", ref, f"{registry.host}/mirror/g:v1", *args).json()
    assert out["mounted"] == 3 and out["transferred"] == 0
    for host in (other.host, registry.host):
        run_gadget("pull", f"{host}/mirror/g:v1", *args, store=tmp_path / host.replace(":", "_"))
        assert store_digest(tmp_path / host.replace(":", "_"), f"{host}/mirror/g:v1") == digest


def test_signature_tag_travels_and_is_hidden_from_list(registry, tmp_path: Path) -> None:
    from gadgetsmith.toolchain.oci.assemble import descriptor
    from gadgetsmith.toolchain.registry.api import signature_tag

    s = tmp_path / "s"
    ref = f"{registry.host}/obs/signed:v1"
    digest = make_image(s, ref)
    # a cosign-shaped signature manifest stored under the bare sha256-<hex>.sig tag
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": digest}}}).encode()
    layer = descriptor("application/vnd.dev.cosign.simplesigning.v1+json", payload,
                        {"dev.cosignproject.cosign/signature": "MEUC"})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.MANIFEST,
                           "config": {"mediaType": mt.EMPTY, "digest": mt.EMPTY_DIGEST, "size": 2},
                           "layers": [layer]}).encode()
    st = open_store(s)
    mdesc = descriptor(mt.MANIFEST, manifest)
    with st.lock():
        for b in (payload, manifest, b"{}"):
            st.put_blob(b)
        st.set_tag(signature_tag(digest), mdesc)
    listed = run_gadget("list", "--format", "json", store=s).json()
    assert [r["reference"] for r in listed] == [ref]

    out = run_gadget("push", ref, *registry.client_args(), "--format", "json", store=s).json()
    assert out["signature"] == signature_tag(digest)
    d = tmp_path / "d"
    out = run_gadget("pull", ref, *registry.client_args(), "--format", "json", store=d).json()
    assert out["signature"] == signature_tag(digest)
    tags = {e.reference: e.digest for e in open_store(d).entries()}
    assert tags[signature_tag(digest)] == mdesc["digest"]
    assert open_store(d).read_blob(mdesc["digest"]) == manifest


def test_registry_check_reports_tag_fallback(registry, tmp_path: Path) -> None:
    from gadgetsmith.toolchain.registry.api import RemoteOptions, connect, supports_referrers

    out = run_gadget("registry-check", registry.host, *registry.client_args(), "--format", "json").json()
    assert out["mediaTypes"] is True
    # docker-registry 2.8 has no OCI 1.1 referrers API: tag scheme with a message
    assert out["referrers"] is False and out["signatureScheme"] == "tag"
    assert any("sha256-<hex>.sig" in m for m in out["messages"])
    client = connect(registry.host, RemoteOptions(insecure_registries=[registry.host]))
    assert supports_referrers(client, "any/repo") is False
    text = run_gadget("registry-check", registry.host, *registry.client_args(), "--no-write")
    assert "tag scheme" in text.stdout


def test_bearer_token_flow(registry_server, tmp_path: Path) -> None:
    """docker-registry with `auth: token`: our client gets scoped JWTs from a token server."""
    import subprocess

    from ..conftest import GADGET
    from ..registry_util import TokenServer

    tok = TokenServer(tmp_path / "tok", {USER: PASSWORD}, refresh_tokens={"rt-123": USER})
    try:
        reg = registry_server(tls=True, token=tok)
        ca = ["--ca-file", str(reg.ca_file)]
        authfile = tmp_path / "auth.json"
        bad = subprocess.run([GADGET, "login", reg.host, "-u", USER, "--password-stdin", *ca,
                              "--authfile", str(authfile)], input="nope\n", capture_output=True, text=True)
        assert bad.returncode == 1 and "rejected the credentials" in bad.stderr, bad.stderr
        ok = subprocess.run([GADGET, "login", reg.host, "-u", USER, "--password-stdin", *ca,
                             "--authfile", str(authfile)], input=PASSWORD + "\n", capture_output=True,
                            text=True)
        assert ok.returncode == 0, ok.stderr

        ref = f"{reg.host}/team/tok:v1"
        digest = make_image(tmp_path / "s", ref)
        # another image already in the registry, so the push can mount from it (needs pull
        # on the source repository and push on the target: two scopes)
        run_gadget("push", ref, f"{reg.host}/team/other:v1", *ca, "--authfile", str(authfile),
                   store=tmp_path / "s")
        out = run_gadget("push", ref, *ca, "--authfile", str(authfile), "--format", "json",
                         store=tmp_path / "s").json()
        assert out["digest"] == digest
        scopes = {s for _, _, sc in tok.requests for s in sc}
        assert "repository:team/tok:pull,push" in scopes

        # an identity token (OAuth2 refresh token) instead of a password
        idfile = tmp_path / "id.json"
        idfile.write_text(json.dumps({"auths": {reg.host: {"identitytoken": "rt-123"}}}))
        run_gadget("pull", ref, *ca, "--authfile", str(idfile), store=tmp_path / "d")
        assert store_digest(tmp_path / "d", ref) == digest
        assert any(m == "POST" and u == USER for m, u, _ in tok.requests)

        # no credentials: the token server refuses, the error says to log in
        res = run_gadget("pull", ref, *ca, "--authfile", str(tmp_path / "none.json"),
                         store=tmp_path / "e", check=False)
        assert res.returncode == 1 and f"gadget login {reg.host}" in res.stderr, res
    finally:
        tok.close()


def test_progress_only_on_a_tty(registry, tmp_path: Path) -> None:
    import shlex
    import subprocess

    from ..conftest import GADGET

    need_tool("script")
    s = tmp_path / "s"
    ref = f"{registry.host}/obs/tty:v1"
    make_image(s, ref, size=3_000_000)
    piped = run_gadget("push", ref, *registry.client_args(), store=s)
    assert piped.stderr == "" and "\x1b[" not in piped.stdout
    cmd = " ".join(shlex.quote(a) for a in [GADGET, "push", ref, f"{registry.host}/obs/tty2:v1",
                                            *registry.client_args()])
    tty = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                         env={**os.environ, "GADGETSMITH_STORE": str(s), "COLUMNS": "100"}, timeout=120)
    assert tty.returncode == 0, tty
    assert "\x1b[?25l" in tty.stdout and "MB" in tty.stdout and "Pushed" in tty.stdout  # rich bar


# ---------------------------------------------------------------------------- docker.io endpoint
@pytest.mark.parametrize(("name", "endpoint"), [
    ("docker.io", "registry-1.docker.io"),
    ("index.docker.io", "registry-1.docker.io"),
    ("DOCKER.IO", "registry-1.docker.io"),
    ("registry-1.docker.io", "registry-1.docker.io"),
    ("ghcr.io", "ghcr.io"),
    ("docker.io.evil.com", "docker.io.evil.com"),
    ("127.0.0.1:5000", "127.0.0.1:5000"),
])
def test_docker_io_api_endpoint(name: str, endpoint: str) -> None:
    from gadgetsmith.toolchain.registry.api import RemoteOptions, connect
    from gadgetsmith.toolchain.registry.client import api_endpoint

    assert api_endpoint(name) == endpoint
    client = connect(name, RemoteOptions())
    assert client.host == name  # messages and auth-file keys keep the registry's name
    assert client.url("/v2/x/manifests/v1") == f"https://{endpoint}/v2/x/manifests/v1"


def test_docker_io_reference_name_is_kept() -> None:
    from gadgetsmith.runtime.oci.reference import normalize
    from gadgetsmith.toolchain.policy import parse_reference

    assert normalize("docker.io/library/busybox:v1") == "docker.io/library/busybox:v1"
    assert parse_reference("docker.io/obs/x:v1").domain == "docker.io"


def test_endpoint_mapping_is_used_for_every_request(registry, tmp_path: Path, monkeypatch) -> None:
    """Requests for a mapped name go to its endpoint; the stored reference keeps the name
    (docker.io itself needs the internet, so the table points a name at the test registry)."""
    from gadgetsmith.toolchain.registry import client as client_mod
    from gadgetsmith.toolchain.registry.api import RemoteOptions, pull_image, push_image

    monkeypatch.setitem(client_mod.API_ENDPOINTS, "hub.example", registry.host)
    src, dst = tmp_path / "a", tmp_path / "b"
    digest = make_image(src, "hub.example/obs/x:v1")
    opts = RemoteOptions(insecure_registries=["hub.example"])
    assert push_image("hub.example/obs/x:v1", store_path=src, options=opts).digest == digest
    pull_image("hub.example/obs/x:v1", store_path=dst, options=opts)
    assert store_digest(dst, "hub.example/obs/x:v1") == digest
    # it really is in the test registry, under the repository path
    check = run_gadget("pull", f"{registry.host}/obs/x:v1", *registry.client_args(), "--format", "json",
                       store=tmp_path / "c").json()
    assert check["digest"] == digest
