"""cosign, oras and crane as the judges of what gadgetsmith writes and reads (issue #23).

The tools are pinned in scripts/install-interop-tools.sh, which `make test` runs first: it
builds them once per machine into ~/.cache/gadgetsmith/go-bin/<tool>-<version>/<tool>
(GADGETSMITH_GO_BIN moves it); a missing tool skips, or fails under
GADGETSMITH_REQUIRE_PRIVILEGES=1 like every other missing capability.

Everything runs against one docker-registry per module (and xdist worker) with TLS (a CA
made for it) and htpasswd user ci/s3cret, each test in repositories of its own, so TLS
trust (SSL_CERT_FILE for the Go tools, --ca-file for gadget) and credentials (one
DOCKER_CONFIG/config.json for all four tools, written by `gadget login`) are exercised by
every test. cosign runs key-based, without Rekor/Fulcio: `--tlog-upload=false` to sign,
`--insecure-ignore-tlog=true` to verify, TUF_ROOT in a temporary directory (offline its TUF
fetch fails fast and only warns).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import GADGET, need_root, run_gadget, skip_or_fail
from ..registry_util import PASSWORD, USER, RegistryServer
from .test_registry import make_image

INSTALLER = Path(__file__).resolve().parents[2] / "scripts" / "install-interop-tools.sh"
#: (tool, major) -> version, from the installer's pins: one place says which versions are judged
PINS = {(m["tool"], m["ver"].split(".")[0]): m["ver"] for m in re.finditer(
    r'^  "(?P<tool>\w+) \S+ (?P<ver>v[0-9.]+)"$', INSTALLER.read_text(), re.M)}
GO_BIN = Path(os.environ.get("GADGETSMITH_GO_BIN",
                             Path.home() / ".cache" / "gadgetsmith" / "go-bin"))
KEY_PASSWORD = "correct horse"

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
COSIGN_OCI11_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"


def tool_path(name: str, major: str | None = None) -> str:
    version = PINS[(name, major)] if major else next(v for (t, _), v in PINS.items() if t == name)
    p = GO_BIN / f"{name}-{version}" / name
    if not os.access(p, os.X_OK):
        skip_or_fail(f"{p} is missing: run `make interop-tools` (go install, once per machine)")
    return str(p)


class Tools:
    """The three Go tools and gadget, sharing one DOCKER_CONFIG and trusting the test CA."""

    def __init__(self, shared: Shared, tmp: Path) -> None:
        self.reg = shared.reg
        self.tmp = tmp
        self.docker_config = shared.docker_config
        self.other_pub = shared.other_pub
        self.env = {
            "DOCKER_CONFIG": str(self.docker_config),
            "SSL_CERT_FILE": str(self.reg.ca_file),  # Go's crypto/x509 reads it; one CA
            "TUF_ROOT": str(shared.tuf),
            "COSIGN_PASSWORD": KEY_PASSWORD,
            "GADGET_PASSWORD": KEY_PASSWORD,
            "COSIGN_YES": "true",
        }

    def go(self, name: str, *args: str, check: bool = True, env: dict | None = None,
           cwd: Path | None = None, major: str | None = None) -> subprocess.CompletedProcess:
        full = {**os.environ, **self.env, **(env or {})}
        proc = subprocess.run([tool_path(name, major), *args], capture_output=True, text=True,
                              env=full, cwd=cwd or self.tmp, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"{name} {' '.join(args)}: rc={proc.returncode}\n"
                                 f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return proc

    def gadget(self, *args: str, store: Path, check: bool = True, env: dict | None = None):
        return run_gadget(*args, store=store, env={**self.env, **(env or {})}, check=check)

    def ca(self) -> list[str]:
        return ["--ca-file", str(self.reg.ca_file)]

    # -- cosign, key-based and offline
    def cosign_sign(self, key: Path, ref: str, *extra: str, check: bool = True,
                    major: str = "v2"):
        # v3 refuses --tlog-upload=false with its default signing config (TUF, online)
        v3 = ["--use-signing-config=false"] if major == "v3" else []
        return self.go("cosign", "sign", "--key", str(key), "--tlog-upload=false", "--yes",
                       *v3, *extra, ref, check=check, major=major)

    def cosign_verify(self, pub: Path, ref: str, *extra: str, check: bool = True,
                      major: str = "v2"):
        return self.go("cosign", "verify", "--key", str(pub), "--insecure-ignore-tlog=true",
                       "--output", "json", *extra, ref, check=check, major=major)

    def crane_json(self, *args: str):
        return json.loads(self.go("crane", *args).stdout)


@dataclass
class Shared:
    """What the tests of one module (one xdist worker) share: a registry with TLS and a
    password, the config.json `gadget login` wrote for it, a `gadget keygen` key pair.
    Each test uses repositories of its own."""

    reg: RegistryServer
    docker_config: Path
    tuf: Path
    keys: tuple[Path, Path]
    other_pub: Path  # a key that signed nothing


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[Shared]:
    base = tmp_path_factory.mktemp("interop")
    reg = RegistryServer(base / "registry", tls=True, users={USER: PASSWORD}).start()
    try:
        (base / "docker").mkdir()
        (base / "tuf").mkdir()
        env = {**os.environ, "DOCKER_CONFIG": str(base / "docker"), "GADGET_PASSWORD": KEY_PASSWORD}
        # gadget login writes the config.json the Go tools read (the credentials check itself)
        proc = subprocess.run([GADGET, "login", reg.host, "-u", USER, "--password-stdin",
                               "--ca-file", str(reg.ca_file)],
                              input=PASSWORD, capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        run_gadget("keygen", "--output-prefix", str(base / "gs"), env=env)
        run_gadget("keygen", "--output-prefix", str(base / "other"), env=env)
        yield Shared(reg, base / "docker", base / "tuf", (base / "gs.key", base / "gs.pub"),
                     base / "other.pub")
    finally:
        reg.stop()


@pytest.fixture
def tools(shared: Shared, tmp_path: Path) -> Tools:
    return Tools(shared, tmp_path)


@pytest.fixture
def gs_keys(shared: Shared) -> tuple[Path, Path]:
    """A key pair made by `gadget keygen`."""
    return shared.keys


@pytest.fixture
def cosign_keys(tools: Tools) -> tuple[Path, Path]:
    """A key pair made by `cosign generate-key-pair`."""
    tools.go("cosign", "generate-key-pair", "--output-key-prefix", "cs")
    return tools.tmp / "cs.key", tools.tmp / "cs.pub"


def pushed(tools: Tools, repo: str, *push_args: str, seed: bytes = b"x") -> tuple[str, str, Path]:
    """A synthetic two-arch gadget image pushed to ``repo:v1``: (ref, index digest, store)."""
    store = tools.tmp / f"store-{repo.replace('/', '-')}"
    ref = f"{tools.reg.host}/{repo}:v1"
    digest = make_image(store, ref, size=20_000, seed=seed)
    tools.gadget("push", ref, *push_args, *tools.ca(), store=store)
    return ref, digest, store


def per_arch(tools: Tools, ref: str) -> list[str]:
    return [m["digest"] for m in tools.crane_json("manifest", ref)["manifests"]]


def repo_of(ref: str) -> str:
    return ref.rsplit(":", 1)[0]


def sig_layers(tools: Tools, repo: str, digest: str) -> list[dict]:
    tag = f"{repo}:sha256-{digest.split(':', 1)[1]}.sig"
    return tools.crane_json("manifest", tag)["layers"]


# ================================================================ cosign reads gadget's signatures
def test_cosign_verifies_push_sign_recursive(tools: Tools, gs_keys) -> None:
    key, pub = gs_keys
    ref, digest, _ = pushed(tools, "obs/signed", "--sign", "--key", str(key), "--recursive")
    repo = repo_of(ref)
    for d in [digest, *per_arch(tools, ref)]:
        out = tools.cosign_verify(pub, f"{repo}@{d}")
        (claim,) = json.loads(out.stdout)
        assert claim["critical"]["image"]["docker-manifest-digest"] == d
        assert claim["critical"]["identity"]["docker-reference"] == repo
        assert claim["critical"]["type"] == "cosign container image signature"
        assert len(sig_layers(tools, repo, d)) == 1  # what ig accepts
    # by tag too (cosign resolves the tag to the index digest)
    assert json.loads(tools.cosign_verify(pub, ref).stdout)[0]["critical"]["image"][
        "docker-manifest-digest"] == digest
    # cosign v3 still reads the legacy .sig tag when it finds no bundle
    (claim,) = json.loads(tools.cosign_verify(pub, ref, major="v3").stdout)
    assert claim["critical"]["image"]["docker-manifest-digest"] == digest


def test_cosign_verifies_gadget_sign_with_cosign_made_key(tools: Tools, cosign_keys) -> None:
    key, pub = cosign_keys
    ref, digest, store = pushed(tools, "obs/cskey", "--no-signature")
    tools.gadget("sign", ref, "--key", str(key), "--recursive", "--remote", *tools.ca(), store=store)
    for d in [digest, *per_arch(tools, ref)]:
        tools.cosign_verify(pub, f"{repo_of(ref)}@{d}")
    tools.gadget("verify", ref, "--public-keys", str(pub), "--recursive", *tools.ca(),
                 store=tools.tmp / "fresh")


# ================================================================ gadget reads cosign's signatures
def test_cosign_sign_with_gadget_key_verifies_and_passes_policy(tools: Tools, gs_keys) -> None:
    key, pub = gs_keys
    ref, digest, _ = pushed(tools, "obs/cosigned", "--no-signature")
    repo = repo_of(ref)
    tools.cosign_sign(key, f"{repo}@{digest}", "--recursive")
    # cosign v2's default is still the legacy tag scheme, one layer per digest
    tags = tools.go("crane", "ls", repo).stdout.split()
    for d in [digest, *per_arch(tools, ref)]:
        assert f"sha256-{d.split(':', 1)[1]}.sig" in tags
        (layer,) = sig_layers(tools, repo, d)
        assert layer["mediaType"] == SIMPLESIGNING and SIG_ANNOTATION in layer["annotations"]
    # signing again with the same key adds nothing (cosign's duplicate detection)
    tools.cosign_sign(key, f"{repo}@{digest}")
    assert len(sig_layers(tools, repo, digest)) == 1

    tools.gadget("verify", ref, "--public-keys", str(pub), "--recursive", *tools.ca(),
                 store=tools.tmp / "v")
    policy = tools.tmp / "policy.yaml"
    policy.write_text(f"apiVersion: gadgetsmith/v1\nallowedGadgets:\n"
                      f"  - reference: {repo}\n    publicKeys: [{pub}]\n")
    s = tools.tmp / "pulled"
    tools.gadget("pull", ref, "--policy", str(policy), *tools.ca(), store=s)
    # and an unsigned image under the same policy is refused before anything is stored
    other, _, _ = pushed(tools, "obs/cosigned", "--no-signature", seed=b"y")  # moves v1
    res = tools.gadget("pull", other, "--policy", str(policy), *tools.ca(),
                       store=tools.tmp / "refused", check=False)
    assert res.returncode == 1 and "no signature found" in res.stderr


TRUSTED_ROOT = '{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}'


def key_policy(tools: Tools, name: str, reference: str, pub: Path, extra: str = "") -> Path:
    p = tools.tmp / name
    p.write_text(f"apiVersion: gadgetsmith/v1\nallowedGadgets:\n"
                 f"  - reference: {reference}\n    publicKeys: [{pub}]\n{extra}")
    return p


@pytest.mark.parametrize("major", ["v2", "v3"])
def test_cosign_bundle_is_verified(tools: Tools, gs_keys, major: str) -> None:
    """cosign's Sigstore bundle (v3's default, v2's --new-bundle-format): an OCI 1.1
    referrer, on Distribution (no referrers API) under the tag schema's sha256-<hex> index.
    gadget verifies its DSSE signature and in-toto subject like ig, remotely, on pull under
    a policy, and offline from the pulled store."""
    key, pub = gs_keys
    ref, digest, _ = pushed(tools, f"obs/nb{major}", "--no-signature")
    repo = repo_of(ref)
    tools.cosign_sign(key, f"{repo}@{digest}", *(["--new-bundle-format=true"] if major == "v2" else []),
                      major=major)
    idx = tools.crane_json("manifest", f"{repo}:sha256-{digest.split(':', 1)[1]}")
    (entry,) = idx["manifests"]
    m = tools.crane_json("manifest", f"{repo}@{entry['digest']}")
    assert m["artifactType"] == BUNDLE_TYPE and m["subject"]["digest"] == digest
    assert "sha256-" + digest.split(":", 1)[1] + ".sig" not in tools.go("crane", "ls", repo).stdout
    # cosign 2.6.5 puts its *config* media type in the index entry, 3.1.3 the bundle's: a
    # reader must look at each manifest's own artifactType (gadget does)
    assert entry["artifactType"] == ("application/vnd.oci.empty.v1+json" if major == "v2" else BUNDLE_TYPE)
    troot = tools.tmp / "trusted_root.json"
    troot.write_text(TRUSTED_ROOT)
    tools.cosign_verify(pub, f"{repo}@{digest}", "--trusted-root", str(troot), major=major)

    out = tools.gadget("verify", ref, "--public-keys", str(pub), "--remote", "--format", "json",
                       *tools.ca(), store=tools.tmp / "v").json()
    (v,) = out["verified"]
    assert v["format"] == "bundle" and v["digest"] == digest and v["signatureManifest"] == entry["digest"]
    # pull under a policy brings the referrers index along; verify works offline from it
    s = tools.tmp / "pulled"
    tools.gadget("pull", ref, "--policy", str(key_policy(tools, "p.yaml", repo, pub)), *tools.ca(), store=s)
    tools.gadget("verify", ref, "--public-keys", str(pub), "--offline", store=s)
    # another key: refused by both, gadget naming the bundle
    other = tools.other_pub
    assert tools.cosign_verify(other, f"{repo}@{digest}", "--trusted-root", str(troot),
                               major=major, check=False).returncode != 0
    bad = tools.gadget("verify", ref, "--public-keys", str(other), "--remote", *tools.ca(),
                       store=tools.tmp / "v2", check=False)
    assert bad.returncode == 1 and "bundle signature does not verify with the given key" in bad.stderr, bad
    assert len(bad.stderr.strip().splitlines()) == 1


def test_cosign_oci11_referrer_is_verified(tools: Tools, gs_keys) -> None:
    """cosign's experimental OCI 1.1 mode: the legacy simple-signing layer in a referrer
    manifest (artifactType application/vnd.dev.cosign.artifact.sig.v1+json)."""
    key, pub = gs_keys
    ref, digest, _ = pushed(tools, "obs/o11", "--no-signature")
    repo = repo_of(ref)
    tools.go("cosign", "sign", "--key", str(key), "--tlog-upload=false", "--yes",
             "--registry-referrers-mode=oci-1-1", f"{repo}@{digest}",
             env={"COSIGN_EXPERIMENTAL": "1"})
    idx = tools.crane_json("manifest", f"{repo}:sha256-{digest.split(':', 1)[1]}")
    assert idx["manifests"][0]["artifactType"] == COSIGN_OCI11_TYPE
    tools.go("cosign", "verify", "--key", str(pub), "--insecure-ignore-tlog=true",
             "--experimental-oci11", f"{repo}@{digest}", env={"COSIGN_EXPERIMENTAL": "1"})
    out = tools.gadget("verify", ref, "--public-keys", str(pub), "--format", "json", *tools.ca(),
                       store=tools.tmp / "v").json()
    (v,) = out["verified"]
    assert v["format"] == "oci11" and v["identity"] == repo
    s = tools.tmp / "pulled"
    tools.gadget("pull", ref, "--policy", str(key_policy(tools, "p.yaml", repo, pub)), *tools.ca(), store=s)
    tools.gadget("verify", ref, "--public-keys", str(pub), "--offline", store=s)


# ================================================================ tampering
def test_moved_tag_is_rejected_by_both(tools: Tools, gs_keys) -> None:
    key, pub = gs_keys
    ref, good, _ = pushed(tools, "obs/t", "--sign", "--key", str(key))
    repo = repo_of(ref)
    other, bad, _ = pushed(tools, "obs/other", "--no-signature", seed=b"evil")
    tools.go("crane", "copy", other, ref)  # v1 now names another index, no signature for it
    c = tools.cosign_verify(pub, ref, check=False)
    g = tools.gadget("verify", ref, "--public-keys", str(pub), *tools.ca(),
                     store=tools.tmp / "v1", check=False)
    assert c.returncode != 0 and "no signatures found" in c.stderr
    assert g.returncode == 1 and f"no signature found for {bad}" in g.stderr
    # and the old signature copied to the new digest's tag: digest claim mismatch for both
    tools.go("crane", "tag", f"{repo}:sha256-{good.split(':', 1)[1]}.sig",
             f"sha256-{bad.split(':', 1)[1]}.sig")
    c = tools.cosign_verify(pub, ref, check=False)
    g = tools.gadget("verify", ref, "--public-keys", str(pub), *tools.ca(),
                     store=tools.tmp / "v2", check=False)
    assert c.returncode != 0 and "invalid or missing digest in claim" in c.stderr
    assert g.returncode == 1 and f"signature is for digest {good}, not for {bad}" in g.stderr


def test_altered_layer_in_registry(tools: Tools, gs_keys) -> None:
    """A layer's bytes changed in the registry's storage behind the signature."""
    key, pub = gs_keys
    # its own content: the registry dedups blobs, and this test damages one
    ref, digest, _ = pushed(tools, "obs/layer", "--sign", "--key", str(key), "--recursive",
                            seed=b"damaged")
    amd64 = tools.crane_json("manifest", "--platform", "linux/amd64", ref)
    layer = amd64["layers"][0]["digest"]
    hexd = layer.split(":", 1)[1]
    data = tools.reg.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
    b = bytearray(data.read_bytes())
    b[-5] ^= 1
    data.write_bytes(bytes(b))
    g = tools.gadget("verify", ref, "--public-keys", str(pub), "--recursive", *tools.ca(),
                     store=tools.tmp / "v", check=False)
    assert g.returncode == 1 and "does not match its digest" in g.stderr
    p = tools.gadget("pull", ref, *tools.ca(), store=tools.tmp / "p", check=False)
    assert p.returncode == 1 and "nothing stored" in p.stderr
    # crane/oras refuse the blob when they download it ...
    assert tools.go("crane", "pull", "--format", "oci", ref, "out", check=False).returncode != 0
    # ... but cosign verify does not read layers: it checks the signed manifest digest only.
    # This is cosign's documented scope, not a gadget bug; recorded so nobody relies on it.
    assert tools.cosign_verify(pub, ref, check=False).returncode == 0


def test_identity_is_checked_by_gadget_not_by_cosign(tools: Tools, gs_keys) -> None:
    """A mirror made with `crane copy --all-tags` keeps signatures naming the source repo:
    cosign (and ig) accept them; gadget refuses unless told: --ignore-identity, or in the
    policy an entry's `identities` (the source repository) or `ignoreIdentity: true`."""
    key, pub = gs_keys
    ref, digest, _ = pushed(tools, "obs/src", "--sign", "--key", str(key))
    mirror_repo = f"{tools.reg.host}/mirror/src"
    mirror = f"{mirror_repo}:v1"
    tools.go("crane", "copy", "--all-tags", repo_of(ref), mirror_repo)
    assert tools.cosign_verify(pub, mirror, check=False).returncode == 0
    g = tools.gadget("verify", mirror, "--public-keys", str(pub), *tools.ca(),
                     store=tools.tmp / "v", check=False)
    assert g.returncode == 1 and "--ignore-identity" in g.stderr
    tools.gadget("verify", mirror, "--public-keys", str(pub), "--ignore-identity",
                 *tools.ca(), store=tools.tmp / "v2")
    strict = key_policy(tools, "strict.yaml", f"{tools.reg.host}/mirror/*", pub)
    res = tools.gadget("pull", mirror, "--policy", str(strict), *tools.ca(),
                       store=tools.tmp / "p0", check=False)
    assert res.returncode == 1 and "'identities'/'ignoreIdentity'" in res.stderr, res
    assert not (tools.tmp / "p0" / "index.json").exists() or "mirror" not in (
        tools.tmp / "p0" / "index.json").read_text()
    for name, extra in (("ids.yaml", f"    identities: [{repo_of(ref)}]\n"),
                        ("any.yaml", "    ignoreIdentity: true\n")):
        pol = key_policy(tools, name, f"{tools.reg.host}/mirror/*", pub, extra)
        s = tools.tmp / f"p-{name}"
        tools.gadget("pull", mirror, "--policy", str(pol), *tools.ca(), store=s)
    # import checks the staged images under the same policy
    tools.gadget("export", mirror, str(tools.tmp / "m.tar"), store=s)
    tools.gadget("import", str(tools.tmp / "m.tar"), "--policy", str(pol), store=tools.tmp / "i")
    assert tools.gadget("import", str(tools.tmp / "m.tar"), "--policy", str(strict),
                        store=tools.tmp / "i2", check=False).returncode == 1
    # identities naming another repository do not help
    wrong = key_policy(tools, "wrong.yaml", f"{tools.reg.host}/mirror/*", pub,
                       f"    identities: [{tools.reg.host}/elsewhere/src]\n")
    res = tools.gadget("pull", mirror, "--policy", str(wrong), *tools.ca(),
                       store=tools.tmp / "p1", check=False)
    assert res.returncode == 1 and "is not the repository" in res.stderr, res


# ================================================================ oras / crane read our images
def test_crane_and_oras_see_our_graph_byte_for_byte(tools: Tools) -> None:
    ref, digest, store = pushed(tools, "obs/graph")
    blobs = store / "blobs" / "sha256"
    assert tools.go("crane", "digest", ref).stdout.strip() == digest
    desc = json.loads(tools.go("oras", "manifest", "fetch", "--descriptor", ref).stdout)
    assert desc["digest"] == digest and desc["mediaType"] == "application/vnd.oci.image.index.v1+json"
    raw = tools.go("crane", "manifest", ref).stdout.encode()
    assert raw == (blobs / digest.split(":", 1)[1]).read_bytes()
    assert tools.go("oras", "manifest", "fetch", ref).stdout.encode() == raw
    index = json.loads(raw)
    assert "artifactType" not in index
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux"}]
    for m in index["manifests"]:
        mraw = tools.go("crane", "manifest", f"{repo_of(ref)}@{m['digest']}").stdout.encode()
        man = json.loads(mraw)
        assert "mediaType" not in man  # as ig writes it
        assert man["artifactType"] == "application/vnd.gadget.v1+binary"
        assert man["config"]["mediaType"] == "application/vnd.gadget.config.v1+yaml"
        assert [x["mediaType"] for x in man["layers"]] == ["application/vnd.gadget.ebpf.program.v1+binary"]
    # full pulls: every blob identical to the store's
    tools.go("crane", "pull", "--format", "oci", ref, "crane-layout")
    tools.go("oras", "copy", ref, "--to-oci-layout", "oras-layout:v1")
    ours = {p.name: p.read_bytes() for p in blobs.iterdir()}
    for lay in ("crane-layout", "oras-layout"):
        theirs = {p.name: p.read_bytes() for p in (tools.tmp / lay / "blobs/sha256").iterdir()}
        assert theirs == ours, lay
    assert tools.go("crane", "validate", "--remote", ref).returncode == 0


def test_oras_pull_to_files_refuses_ig_shaped_images(tools: Tools) -> None:
    """ig's annotations put org.opencontainers.image.title on the config descriptor and on
    every manifest descriptor: `oras pull` (files mode) stops with 'duplicate name'. ig's own
    images do the same; the OCI-layout copy above is the way to fetch everything."""
    ref, _, _ = pushed(tools, "obs/files")
    res = tools.go("oras", "pull", ref, check=False, cwd=tools.tmp)
    assert res.returncode != 0 and "duplicate name" in res.stderr


@pytest.mark.usefixtures("clang_available")
def test_copy_by_other_tool_pulls_and_runs(tools: Tools, tiny_gadget: Path) -> None:
    need_root("running a gadget needs root")
    s = tools.tmp / "s"
    ref = f"{tools.reg.host}/obs/tiny:v1"
    run_gadget("build", str(tiny_gadget), "-t", ref, "--arch", "amd64", store=s)
    tools.gadget("push", ref, *tools.ca(), store=s)
    for copier in ("crane", "oras"):
        mirror = f"{tools.reg.host}/{copier}-mirror/tiny:v1"
        tools.go(copier, "copy", ref, mirror)
        d = tools.tmp / f"d-{copier}"
        tools.gadget("pull", mirror, *tools.ca(), store=d)
        trigger = subprocess.Popen(["python3", "-c", "import os,time\nfor _ in range(30):\n"
                                    " os.getpid(); time.sleep(0.1)"])
        res = tools.gadget("run", mirror, "--host", "--timeout", "2", "-o", "json", store=d)
        trigger.wait()
        events = [json.loads(x) for x in res.stdout.splitlines() if x.strip()]
        assert events and "pid" in events[0], copier


def test_gadget_reads_an_index_assembled_by_oras(tools: Tools) -> None:
    """Manifests written by `oras push` (mediaType present, title annotations on layers,
    oras's created annotation) under an index pushed with `oras manifest push`."""
    ref, _, store = pushed(tools, "obs/src2")
    repo = f"{tools.reg.host}/oras-made/g"
    idx = json.loads(tools.go("crane", "manifest", ref).stdout)
    entries = []
    for m in idx["manifests"]:
        arch = m["platform"]["architecture"]
        man = tools.crane_json("manifest", f"{repo_of(ref)}@{m['digest']}")
        cfg = store / "blobs/sha256" / man["config"]["digest"].split(":", 1)[1]
        obj = store / "blobs/sha256" / man["layers"][0]["digest"].split(":", 1)[1]
        (tools.tmp / "gadget.yaml").write_bytes(cfg.read_bytes())
        (tools.tmp / f"program-{arch}.o").write_bytes(obj.read_bytes())
        tools.go("oras", "push", "--artifact-type", "application/vnd.gadget.v1+binary",
                 "--config", "gadget.yaml:application/vnd.gadget.config.v1+yaml", f"{repo}:{arch}",
                 f"program-{arch}.o:application/vnd.gadget.ebpf.program.v1+binary")
        d = json.loads(tools.go("oras", "manifest", "fetch", "--descriptor", f"{repo}:{arch}").stdout)
        entries.append({**d, "platform": {"architecture": arch, "os": "linux"}})
    (tools.tmp / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": entries}))
    tools.go("oras", "manifest", "push", "--media-type", "application/vnd.oci.image.index.v1+json",
             f"{repo}:v1", "index.json")
    s = tools.tmp / "pulled"
    tools.gadget("pull", f"{repo}:v1", *tools.ca(), store=s)
    info = tools.gadget("inspect", f"{repo}:v1", "--format", "json", store=s).json()
    assert [m["platform"]["architecture"] for m in info["manifests"]] == ["amd64", "arm64"]


# ================================================================ credentials
def test_credentials_are_shared_both_ways(tools: Tools) -> None:
    ref, digest, store = pushed(tools, "obs/creds")
    # gadget login (fixture) -> crane and oras
    assert "v1" in tools.go("crane", "ls", repo_of(ref)).stdout.split()
    assert "v1" in tools.go("oras", "repo", "tags", repo_of(ref)).stdout.split()
    # without it they are refused: the config.json is what let them in
    empty = tools.tmp / "empty"
    empty.mkdir()
    assert tools.go("crane", "ls", repo_of(ref), check=False,
                    env={"DOCKER_CONFIG": str(empty)}).returncode != 0
    for login in (["oras", "login", tools.reg.host, "-u", USER, "-p", PASSWORD],
                  ["crane", "auth", "login", tools.reg.host, "-u", USER, "-p", PASSWORD]):
        cfg = tools.tmp / f"cfg-{login[0]}"
        cfg.mkdir()
        tools.go(*login, env={"DOCKER_CONFIG": str(cfg)})
        tools.gadget("push", ref, f"{tools.reg.host}/{login[0]}-login/g:v1", *tools.ca(),
                     store=store, env={"DOCKER_CONFIG": str(cfg)})
        tools.gadget("logout", tools.reg.host, store=store, env={"DOCKER_CONFIG": str(cfg)})
        assert tools.go("crane", "ls", f"{tools.reg.host}/{login[0]}-login/g", check=False,
                        env={"DOCKER_CONFIG": str(cfg)}).returncode != 0


def test_credential_helper_is_shared(tools: Tools) -> None:
    ref, _, store = pushed(tools, "obs/helper")
    bindir = tools.tmp / "bin"
    bindir.mkdir()
    log = tools.tmp / "helper.log"
    helper = bindir / "docker-credential-gstest"
    helper.write_text(
        "#!/bin/sh\n"
        f"echo \"$1\" >> {log}\n"
        "case \"$1\" in\n"
        f"  get) read host; echo '{{\"ServerURL\":\"'\"$host\"'\",\"Username\":\"{USER}\","
        f"\"Secret\":\"{PASSWORD}\"}}';;\n"
        "  *) cat >/dev/null;;\nesac\n")
    helper.chmod(0o755)
    cfg = tools.tmp / "cfg-helper"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"credHelpers": {tools.reg.host: "gstest"}}))
    env = {"DOCKER_CONFIG": str(cfg), "PATH": f"{bindir}:{os.environ['PATH']}"}
    tools.go("crane", "ls", repo_of(ref), env=env)
    tools.go("oras", "repo", "tags", repo_of(ref), env=env)
    tools.gadget("pull", ref, *tools.ca(), store=tools.tmp / "p", env=env)
    assert log.read_text().split().count("get") >= 3


# ================================================================ disagreements found (xfail)
def test_push_sign_to_two_destinations_gives_one_signature_each(tools: Tools, gs_keys) -> None:
    """The local .sig keeps a layer per name signed; each destination gets its own only
    (ig accepts exactly one layer), and cosign and ig-style identity checks pass there."""
    key, pub = gs_keys
    s = tools.tmp / "s"
    local = "obs/two:v1"
    digest = make_image(s, local)
    before = (s / "index.json").read_bytes()
    for dest in ("staging/two:v1", "prod/two:v1"):
        out = tools.gadget("push", local, f"{tools.reg.host}/{dest}", "--sign", "--key", str(key),
                           "--recursive", *tools.ca(), store=s)
        assert "ig only accepts" not in out.stderr, out
    # the signatures were made for the pushes: the local store did not change (so its
    # .sig cannot pile up one layer per destination, which ig reading the store refuses)
    assert (s / "index.json").read_bytes() == before
    # a plain push (no --sign) to staging again leaves staging's signature alone
    tools.gadget("push", local, f"{tools.reg.host}/staging/two:v1", *tools.ca(), store=s)
    for repo in ("staging/two", "prod/two"):
        full = f"{tools.reg.host}/{repo}"
        for d in [digest, *per_arch(tools, f"{full}:v1")]:
            assert len(sig_layers(tools, full, d)) == 1
        (layer,) = sig_layers(tools, full, digest)
        payload = json.loads(tools.go("crane", "blob", f"{full}@{layer['digest']}").stdout)
        assert payload["critical"]["identity"]["docker-reference"] == full
        tools.cosign_verify(pub, f"{full}:v1")
        # per-arch signatures and their identities too (gadget checks docker-reference)
        tools.gadget("verify", f"{full}:v1", "--public-keys", str(pub), "--recursive", "--remote",
                     *tools.ca(), store=tools.tmp / "v")


def test_import_of_an_oras_layout_tar(tools: Tools) -> None:
    """oras leaves an empty ingest/ directory in its layouts (ig's store too); ig's import
    skips directory entries, and so does gadget's. A file inside it is still refused."""
    ref, digest, _ = pushed(tools, "obs/layout")
    tools.go("oras", "copy", ref, "--to-oci-layout", "lay:v1")
    assert (tools.tmp / "lay" / "ingest").is_dir()
    tar = tools.tmp / "lay.tar"
    with tarfile.open(tar, "w") as t:
        t.add(tools.tmp / "lay", arcname=".")
    out = tools.gadget("import", str(tar), store=tools.tmp / "imp")
    assert "Imported" in out.stdout
    listed = tools.gadget("list", "--format", "json", store=tools.tmp / "imp").json()
    assert [e["digest"] for e in listed] == [digest]
    (tools.tmp / "lay" / "ingest" / "partial").write_bytes(b"x")
    with tarfile.open(tar, "w") as t:
        t.add(tools.tmp / "lay", arcname=".")
    bad = tools.gadget("import", str(tar), store=tools.tmp / "imp2", check=False)
    assert bad.returncode == 2 and "unexpected member './ingest/partial'" in bad.stderr, bad


def test_gadget_made_signature_manifest_is_cosign_shaped(tools: Tools, gs_keys) -> None:
    """Field for field what cosign 2.x writes: the payload bytes, and the config (whose
    `created` is Go's zero time in cosign's) byte for byte."""
    key, _ = gs_keys
    ref, digest, _ = pushed(tools, "obs/shape", "--sign", "--key", str(key))
    repo = repo_of(ref)
    sig_tag = f"{repo}:sha256-{digest.split(':', 1)[1]}.sig"
    m = tools.crane_json("manifest", sig_tag)
    ours = tools.go("crane", "blob", f"{repo}@{m['config']['digest']}").stdout
    # cosign's config for its own signature of another image: the same bytes once its
    # payload digest (the only diff_id) is ours; `created` is Go's zero time in both
    other, odigest, _ = pushed(tools, "obs/shape2", "--no-signature")
    tools.cosign_sign(key, f"{repo_of(other)}@{odigest}")
    cm = tools.crane_json("manifest", f"{repo_of(other)}:sha256-{odigest.split(':', 1)[1]}.sig")
    theirs = tools.go("crane", "blob", f"{repo_of(other)}@{cm['config']['digest']}").stdout
    assert '"created":"0001-01-01T00:00:00Z"' in theirs
    assert ours == theirs.replace(cm["layers"][0]["digest"], m["layers"][0]["digest"])
    assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert m["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    (layer,) = m["layers"]
    payload = tools.go("crane", "blob", f"{repo}@{layer['digest']}").stdout
    assert json.loads(payload) == {
        "critical": {"identity": {"docker-reference": repo},
                     "image": {"docker-manifest-digest": digest},
                     "type": "cosign container image signature"},
        "optional": None}
    # byte order as cosign's Go structs: critical{identity,image,type}, optional
    assert payload.startswith('{"critical":{"identity":{"docker-reference":')
    assert payload.endswith('"type":"cosign container image signature"},"optional":null}')
    base64.b64decode(layer["annotations"][SIG_ANNOTATION], validate=True)


def test_gadget_referrer_signature_is_seen_by_oras_and_cosign(tools: Tools, gs_keys) -> None:
    """`gadget sign --remote --referrers` on a registry without the referrers API lists the
    referrer in the tag schema's sha256-<hex> index, where oras and cosign look for it."""
    key, pub = gs_keys
    ref, digest, _ = pushed(tools, "obs/ref11", "--no-signature")
    res = tools.gadget("sign", ref, "--key", str(key), "--remote", "--referrers", *tools.ca(),
                       store=tools.tmp / "none")
    assert "referrers tag schema" in res.stderr, res
    found = json.loads(tools.go("oras", "discover", "--format", "json", ref).stdout)
    kinds = [m.get("artifactType") for m in found.get("referrers") or found.get("manifests") or []]
    assert COSIGN_OCI11_TYPE in kinds, found
    tools.go("cosign", "verify", "--key", str(pub), "--insecure-ignore-tlog=true",
             "--experimental-oci11", f"{repo_of(ref)}@{digest}", env={"COSIGN_EXPERIMENTAL": "1"})
    # signing again lists it once more only if it is a new manifest (ECDSA: it is)
    tools.gadget("sign", ref, "--key", str(key), "--remote", "--referrers", "--replace", *tools.ca(),
                 store=tools.tmp / "none")
    idx = tools.crane_json("manifest", f"{repo_of(ref)}:sha256-{digest.split(':', 1)[1]}")
    assert len(idx["manifests"]) == 2 and len({m["digest"] for m in idx["manifests"]}) == 2
