"""Allowlist policy: entry forms, tricky references, file loading and key lookup."""

from __future__ import annotations

from pathlib import Path

import pytest
from gadgetsmith.toolchain.errors import GadgetError
from gadgetsmith.toolchain.policy import (
    PULL,
    PUSH,
    RUN,
    Policy,
    PolicyDenied,
    PolicyError,
    load_policy,
    parse_entry,
    policy_from_dict,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64

ALLOW = [
    "reg.io/team/*",
    "reg.io:5000/mirror/*",
    "localhost:5000/x:v1",
    "ghcr.io/org/pinned@" + D1,
    "trace_exec:v1",  # short name: normalised to ghcr.io/inspektor-gadget/gadget/...
    "REG2.example.com/repo",  # repository: any tag; host case-insensitive
]


@pytest.fixture
def pol():
    return policy_from_dict({"allowedGadgets": ALLOW, "allowedPush": ["push.io/ci/*"]})


@pytest.mark.parametrize("ref", [
    "reg.io/team/a:v1",
    "reg.io/team/sub/b",
    "REG.IO/team/a:v1",               # DNS is case-insensitive
    "reg.io:5000/mirror/x:1",
    "localhost:5000/x:v1",
    "ghcr.io/org/pinned@" + D1,
    "ghcr.io/org/pinned:v3@" + D1,     # tag + pinned digest: content is the digest
    "trace_exec:v1",
    "ghcr.io/inspektor-gadget/gadget/trace_exec:v1",
    "reg2.example.com/repo:anything",
    "reg2.example.com/repo@" + D2,
])
def test_allowed(pol, ref: str) -> None:
    assert pol.check(PULL, ref) is not None


TRICKY = [
    "reg.io.evil.com/team/a:v1",        # prefix confusion on the host
    "reg.io.evil.com/reg.io/team/a:v1",
    "evil.com/reg.io/team/a:v1",
    "reg.io:5001/team/a:v1",             # same host, other port
    "reg.io:5000/team/a:v1",             # port not in the prefix
    "reg.io:50001/mirror/x:1",
    "reg.io/teamx/a:v1",                 # prefix must stop at the '/'
    "reg.io/tea/a:v1",
    "reg.io/Team/a:v1",                  # uppercase path does not parse
    "reg.io/team/../evil/a:v1",          # '..' in the path
    "reg.io/team/%2e%2e/evil:v1",
    "reg.io/team/./a:v1",
    "user@reg.io/team/a:v1",             # user@host
    "reg.io/team@evil.com/a:v1",
    "evil.com@reg.io/team/a:v1",
    "https://reg.io/team/a:v1",          # URL scheme
    "//reg.io/team/a:v1",
    "reg.іo/team/a:v1",                  # Cyrillic i
    "reg.io/teаm/a:v1",                  # Cyrillic a in the path
    "reg.io/team/a:vі",                  # Cyrillic tag
    "ｒeg.io/team/a:v1",                 # fullwidth r
    "reg.io\u200b/team/a:v1",            # zero-width space
    "reg.io /team/a:v1",
    "reg.io/team/a:v1\n",
    "localhost:5000/x:v2",               # exact tag only
    "localhost:5000/x",                  # -> :latest
    "localhost:5000/x:v1x",
    "localhost/x:v1",                    # no port
    "127.0.0.1:5000/x:v1",               # another spelling of the host is another registry
    "ghcr.io/org/pinned:v1",             # tag where only a digest is allowed
    "ghcr.io/org/pinned@" + D2,          # other digest
    "ghcr.io/org/pinned2@" + D1,         # same digest, other repository
    "trace_exec:v2",
    "trace_exec",
    "docker.io/inspektor-gadget/gadget/trace_exec:v1",
    "reg2.example.com/repo2:v1",
    "reg2.example.com/repo/sub:v1",
    "reg2.example.com.evil/repo:v1",
    "",
    "reg.io/team/",
    "reg.io/team/a:v1@sha256:zz",
]


@pytest.mark.parametrize("ref", TRICKY)
def test_tricky_references_never_slip_through(pol, ref: str) -> None:
    with pytest.raises(GadgetError):
        pol.check(PULL, ref)


def test_push_list_is_separate(pol) -> None:
    assert pol.check(PUSH, "push.io/ci/x:v1")
    with pytest.raises(PolicyDenied):
        pol.check(PUSH, "reg.io/team/a:v1")
    with pytest.raises(PolicyDenied):
        pol.check(PULL, "push.io/ci/x:v1")


def test_denial_names_an_entry_that_would_allow_it(pol) -> None:
    with pytest.raises(PolicyDenied) as ei:
        pol.check(PULL, "other.io/x/y:v2")
    msg = str(ei.value)
    assert "allowedGadgets" in msg and "'other.io/x/y:v2'" in msg and "other.io/x/*" in msg
    with pytest.raises(PolicyDenied) as ei:
        pol.check(PULL, "ghcr.io/org/pinned:v1")
    assert "ghcr.io/org/pinned@" + D1 in str(ei.value)


def test_run_of_local_image_may_use_its_known_digest(pol) -> None:
    assert pol.check(RUN, "ghcr.io/org/pinned:v1", digest=D1)
    with pytest.raises(PolicyDenied):
        pol.check(RUN, "ghcr.io/org/pinned:v1", digest=D2)


def test_no_policy_allows_everything_but_empty_list_allows_nothing() -> None:
    assert Policy().check(PULL, "any.io/x:v1") is None
    with pytest.raises(PolicyDenied):
        policy_from_dict({"allowedGadgets": []}).check(PULL, "any.io/x:v1")


def test_disallow_pulling() -> None:
    p = policy_from_dict({"disallowPulling": True})
    with pytest.raises(PolicyDenied, match="disallowPulling"):
        p.check(PULL, "any.io/x:v1")
    assert p.check(RUN, "any.io/x:v1") is None
    assert p.check(PUSH, "any.io/x:v1") is None


@pytest.mark.parametrize("entry, fragment", [
    ("reg.io*", "must name the registry"),
    ("reg*", "must name the registry"),
    ("*", "must name the registry"),
    ("myorg/*", "registry host"),
    ("reg.io/*/x", "only allowed once, at the end"),
    ("reg.io/Team/*", "can never match"),
    ("reg.іo/team/*", "non-ASCII"),
    ("reg.io/te am/*", "space"),
    ("reg.io/a/../b:v1", "invalid repository"),
    ("https://reg.io/a", "scheme"),
])
def test_bad_entries_are_rejected_at_load(entry: str, fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment):
        parse_entry(entry)


def test_load_from_file_env_and_keys(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "keys").mkdir()
    pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    (tmp_path / "keys" / "obs.pub").write_text(pem)
    pf = tmp_path / "policy.yaml"
    pf.write_text(
        "apiVersion: gadgetsmith/v1\n"
        "allowedGadgets:\n"
        "  - reference: reg.io/obs/*\n"
        "    publicKeys: [keys/obs.pub]\n"
        "  - reference: reg.io/obs/special:v1\n"
        "    publicKeys:\n"
        "      - |\n"
        "        -----BEGIN PUBLIC KEY-----\n"
        "        BBBB\n"
        "        -----END PUBLIC KEY-----\n"
        "  - reg.io/open/*\n"
        "insecureRegistries: [127.0.0.1:5000, Reg.Local]\n"
    )
    monkeypatch.setenv("GADGETSMITH_POLICY", str(pf))
    p = load_policy()
    assert p.path == pf
    assert p.required_keys("reg.io/obs/x:v1") == [pem]
    keys = p.required_keys("reg.io/obs/special:v1")
    assert keys[0] == pem and "BBBB" in keys[1]
    assert p.required_keys("reg.io/open/x:v1") == []
    assert p.is_insecure("127.0.0.1:5000") and p.is_insecure("reg.local")
    assert not p.is_insecure("127.0.0.1:5001")
    assert p.with_insecure(["a.io:1,b.io"]).is_insecure("b.io")


KEYED = 'allowedGadgets: [{reference: reg.io/x/*, publicKeys: ["-----BEGIN PUBLIC KEY-----"], '


@pytest.mark.parametrize("text, fragment", [
    ("allowedGadgets: reg.io/x\n", "allowedGadgets"),
    ("allowedGadget: []\n", "Additional properties"),
    ("allowedGadgets: [{publicKeys: [a]}]\n", "reference"),
    ("allowedGadgets: [{reference: reg.io/x/*, publicKeys: [nope.pub]}]\n", "nope.pub"),
    ("insecureRegistries: ['http://x.io']\n", "insecureRegistries"),
    ("allowedGadgets: [\n", "not valid YAML"),
    ("disallowPulling: yes please\n", "disallowPulling"),
    ("allowedGadgets: [{reference: reg.io/x/*, identities: [reg.io/src]}]\n",
     "only apply to signatures: add publicKeys"),
    (KEYED + "identities: [reg.io/src:v1]}]\n",
     r"identities\[0\]: 'reg.io/src:v1' names a tag or digest: give the repository only \(reg.io/src\)"),
    (KEYED + "identities: ['Reg..io/x']}]\n",
     r"identities\[0\]"),
    (KEYED + "ignoreIdentity: 1}]\n",
     "ignoreIdentity"),
])
def test_bad_policy_files(tmp_path: Path, text: str, fragment: str) -> None:
    pf = tmp_path / "p.yaml"
    pf.write_text(text)
    with pytest.raises(PolicyError, match=fragment) as ei:
        load_policy(pf)
    assert str(pf) in str(ei.value)


def test_missing_explicit_policy_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "nope.yaml")


def test_run_checks_the_allowlist_before_loading(tmp_path: Path) -> None:
    from ..conftest import run_gadget
    from .test_registry import make_image

    s = tmp_path / "s"
    good = make_image(s, "reg.io/ok/g:v1")
    make_image(s, "reg.io/bad/g:v1", seed=b"b")
    pol = tmp_path / "p.yaml"
    pol.write_text("allowedGadgets: ['reg.io/ok/*']\n")
    res = run_gadget("run", "reg.io/bad/g:v1", "--policy", str(pol), "--host", store=s, check=False)
    assert res.returncode == 3 and "running reg.io/bad/g:v1 is not allowed" in res.stderr, res
    from gadgetsmith.toolchain.oci.store import open_store

    bad_digest = [e.digest for e in open_store(s).entries() if "bad" in e.reference][0]
    res = run_gadget("run", bad_digest, "--policy", str(pol), "--host", store=s, check=False)
    assert res.returncode == 3, res
    # the allowed image gets past the policy (this synthetic one then fails to load: not BPF)
    for text in ("reg.io/ok/g:v1", good):
        res = run_gadget("run", text, "--policy", str(pol), "--host", "--timeout", "1",
                         store=s, check=False)
        assert res.returncode != 3 and "not allowed" not in res.stderr, res


PEM = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"


def test_signature_identities_for_mirrors() -> None:
    """Per entry: the image's own repository, plus `identities`; None (any) with
    `ignoreIdentity`. Entries that do not match the image add nothing."""
    p = policy_from_dict({"allowedGadgets": [
        {"reference": "mirror.io/obs/*", "publicKeys": [PEM],
         "identities": ["src.io/obs/trace_open", "docker.io/library/x"]},
        {"reference": "any.io/obs/*", "publicKeys": [PEM], "ignoreIdentity": True},
        {"reference": "src.io/obs/*", "publicKeys": [PEM]},
    ]})
    assert p.signature_identities("mirror.io/obs/trace_open:v1") == {
        "mirror.io/obs/trace_open", "src.io/obs/trace_open", "docker.io/library/x"}
    assert p.signature_identities("any.io/obs/trace_open:v1") is None
    assert p.signature_identities("src.io/obs/trace_open:v1") == {"src.io/obs/trace_open"}


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "{}\n", "---\n"])
def test_empty_policy_file_is_an_error_not_allow_all(tmp_path: Path, text: str) -> None:
    """An empty policy failed open (everything allowed); now it is a usage error."""
    from ..conftest import run_gadget

    pf = tmp_path / "p.yaml"
    pf.write_text(text)
    res = run_gadget("pull", "reg.io/x/y:v1", "--policy", str(pf), store=tmp_path / "s", check=False)
    assert res.returncode == 2, res
    assert res.stderr.splitlines()[0].startswith(f"error: {pf}: the policy is empty"), res


def _tiny_object(tiny_gadget: Path, tmp_path: Path) -> Path:
    from gadgetsmith.toolchain.build.driver import build_for_host

    obj = tmp_path / "tiny.o"
    obj.write_bytes(build_for_host(tiny_gadget)[0])
    return obj


@pytest.mark.usefixtures("clang_available")
def test_local_sources_follow_the_policy(tmp_path: Path, tiny_gadget: Path) -> None:
    """`gadget run DIR` and `FILE.o` ignored the policy; under one that restricts what runs
    (allowedGadgets) they are refused before anything is built, naming the rule."""
    from ..conftest import run_gadget

    obj = _tiny_object(tiny_gadget, tmp_path)
    pol = tmp_path / "p.yaml"
    pol.write_text("allowedGadgets: ['reg.io/ok/*']\n")
    cases = [(str(tiny_gadget), "the gadget source directory"), (str(obj), "the eBPF object file")]
    for source, what in cases:
        res = run_gadget("run", source, "--policy", str(pol), "--host", "--timeout", "1",
                         store=tmp_path / "s", check=False)
        assert res.returncode == 3, res
        first = res.stderr.splitlines()[0]
        assert first.startswith(f"error: {pol}: running {what} {source} is not allowed"), res
        assert "allowLocalSources: true" in first, res
    # the system default policy (here through GADGETSMITH_POLICY) applies the same way
    res = run_gadget("run", str(tiny_gadget), "--host", "--timeout", "1", store=tmp_path / "s",
                     env={"GADGETSMITH_POLICY": str(pol)}, check=False)
    assert res.returncode == 3 and "allowLocalSources" in res.stderr, res
    # allowLocalSources: false refuses even without an allowlist
    pol.write_text("allowLocalSources: false\n")
    res = run_gadget("run", str(obj), "--policy", str(pol), "--host", "--timeout", "1",
                     store=tmp_path / "s", check=False)
    assert res.returncode == 3 and "(allowLocalSources: false)" in res.stderr, res


@pytest.mark.usefixtures("clang_available", "root")
def test_local_sources_run_when_the_policy_allows_them(tmp_path: Path, tiny_gadget: Path) -> None:
    from ..conftest import run_gadget

    obj = _tiny_object(tiny_gadget, tmp_path)
    pol = tmp_path / "p.yaml"
    pol.write_text("allowedGadgets: ['reg.io/ok/*']\nallowLocalSources: true\n")
    for source in (str(tiny_gadget), str(obj)):
        res = run_gadget("run", source, "--policy", str(pol), "--host", "--timeout", "1",
                         store=tmp_path / "s", check=False)
        assert res.returncode == 0, res
    # a policy that does not restrict running (no allowedGadgets) leaves them alone
    pol.write_text("allowedPush: ['reg.io/ok/*']\n")
    res = run_gadget("run", str(obj), "--policy", str(pol), "--host", "--timeout", "1",
                     store=tmp_path / "s", check=False)
    assert res.returncode == 0, res


@pytest.mark.usefixtures("clang_available")
def test_gadget_test_of_a_directory_follows_the_policy(tmp_path: Path, tiny_gadget: Path) -> None:
    """gadget test chooses its source where gadget run does, so the rule applies there too."""
    from ..conftest import run_gadget

    (tiny_gadget / "tests").mkdir()
    (tiny_gadget / "tests" / "tiny.test.yaml").write_text(
        "cases:\n  - name: getpid\n    trigger: {command: ['true']}\n    expect: {match: {pid: 1}}\n")
    pol = tmp_path / "p.yaml"
    pol.write_text("allowedGadgets: ['reg.io/ok/*']\n")
    res = run_gadget("test", str(tiny_gadget), "--policy", str(pol), store=tmp_path / "s",
                     check=False)
    assert res.returncode == 3, res
    assert "running the gadget source directory" in res.stderr, res
