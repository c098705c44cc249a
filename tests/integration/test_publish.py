"""`gadget publish`: build -> validate -> test -> sign -> push against a real docker-registry
with TLS and htpasswd; every failure stops at its step with one clear line and nothing in
the registry."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import GADGET, SAMPLES, run_gadget
from ..registry_util import (  # noqa: F401 - fixtures
    PASSWORD,
    USER,
    RegistryServer,
    auth_registry,
    registry,
    registry_server,
)
from ..signing_util import key_pair

pytestmark = pytest.mark.usefixtures("root", "clang_available")

KEY_ENV = {"GADGET_PASSWORD": "correct horse"}  # signing_util.key_pair's passphrase

PASSING = """\
timeout: 10
cases:
  - name: a failed open reports ENOENT
    trigger:
      command: [cat, "/nonexistent-{{ case.id }}"]
      repeat: 3
    expect:
      match:
        proc.pid: "{{ trigger.pid }}"
        fname: "/nonexistent-{{ case.id }}"
        error: ENOENT
"""

FAILING = PASSING + """\
  - name: expects the wrong error
    timeout: 3
    trigger:
      command: [cat, "/nonexistent-{{ case.id }}"]
      repeat: 3
    expect:
      match:
        proc.pid: "{{ trigger.pid }}"
        error: EACCES
"""


def make_gadget(parent: Path, spec: str = PASSING, name: str = "trace_open") -> Path:
    """A copy of the trace_open sample whose tests/ holds ``spec`` (no container case)."""
    d = parent / name
    (d / "tests").mkdir(parents=True)
    for f in ("program.bpf.c", "gadget.yaml"):
        shutil.copy(SAMPLES / "trace_open" / f, d / f)
    (d / "tests" / "open.test.yaml").write_text(spec)
    return d


def publish(*args: str, stdin: str = "", env: dict | None = None,
            store: Path | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **KEY_ENV, **(env or {})}
    full.pop("GADGETSMITH_DEBUG", None)
    if store is not None:
        full["GADGETSMITH_STORE"] = str(store)
    return subprocess.run([GADGET, "publish", *args], input=stdin, capture_output=True, text=True,
                          env=full, timeout=300)


def pushed_repositories(reg: RegistryServer) -> list[str]:
    """What the registry's storage holds (empty when nothing was pushed)."""
    root = reg.storage / "docker" / "registry" / "v2" / "repositories"
    if not root.is_dir():
        return []
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("_manifests"))


def test_publish_builds_tests_signs_and_pushes(tmp_path: Path, auth_registry) -> None:  # noqa: F811
    reg = auth_registry
    key, pub = key_pair(tmp_path)
    gadget = make_gadget(tmp_path)
    ref = f"{reg.host}/obs/trace_open:v1"
    junit = tmp_path / "out" / "junit.xml"
    authfile = tmp_path / "auth.json"
    res = publish(str(gadget), ref, "--arch", "amd64", "--key", str(key), "-u", USER,
                  "--password-stdin", "--ca-file", str(reg.ca_file), "--authfile", str(authfile),
                  "--junit", str(junit), "-o", "json", stdin=PASSWORD + "\n",
                  store=tmp_path / "store")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["ok"] and summary["pushed"] and summary["failedStep"] is None
    digest = summary["digest"]
    assert summary["pinned"] == f"{ref}@{digest}"
    assert list(summary["architectures"]) == ["amd64"]
    assert summary["tests"] == {"cases": 1, "passed": 1, "failed": 0, "error": 0, "skipped": 0}
    assert summary["signatureTag"] == f"sha256-{digest.split(':', 1)[1]}.sig"
    assert [s["name"] for s in summary["steps"]] == ["preflight", "build", "validate", "test",
                                                     "sign", "push"]
    assert all(s["status"] == "ok" for s in summary["steps"]), summary["steps"]
    # progress on stderr, one line per step; the password appears nowhere
    for step in ("preflight", "build", "validate", "test", "sign", "push"):
        assert any(line.startswith(f"{step} ") and " ok " in line for line in res.stderr.splitlines()), \
            res.stderr
    assert PASSWORD not in res.stdout + res.stderr
    assert not authfile.exists()  # the run's credentials are not saved
    # JUnit report of the test step
    from junitparser import JUnitXml

    xml = JUnitXml.fromfile(str(junit))
    assert (xml.tests, xml.failures, xml.errors) == (1, 0, 0)

    # the registry has it, signed: verified from the registry with the public key
    assert pushed_repositories(reg) == ["obs/trace_open"]
    subprocess.run([GADGET, "login", reg.host, "-u", USER, "--password-stdin", "--ca-file",
                    str(reg.ca_file), "--authfile", str(authfile)], input=PASSWORD + "\n",
                   capture_output=True, text=True, check=True)
    ver = run_gadget("verify", ref, "--remote", "--public-keys", str(pub), "--ca-file",
                     str(reg.ca_file), "--authfile", str(authfile), "-o", "json",
                     store=tmp_path / "other").json()
    assert ver["source"] == "registry" and ver["digest"] == digest


def test_text_output_and_no_push(tmp_path: Path) -> None:
    gadget = make_gadget(tmp_path)
    res = publish(str(gadget), "registry.invalid:5000/obs/trace_open:dev", "--arch", "amd64",
                  "--no-push", store=tmp_path / "store")
    assert res.returncode == 0, res.stderr
    out = res.stdout.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(
        "Built, not pushed: registry.invalid:5000/obs/trace_open:dev@sha256:"), res.stdout
    assert "sign      skipped: no signing key (--key)" in res.stderr
    assert "push      skipped: not asked for (--no-push)" in res.stderr
    # the image is in the local store under the destination's name
    listed = run_gadget("list", "-o", "json", store=tmp_path / "store").json()
    assert "registry.invalid:5000/obs/trace_open:dev" in json.dumps(listed)


def _fails(res: subprocess.CompletedProcess, code: int, step: str, *words: str) -> dict:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and f"(gadget publish stopped at {step}: nothing was pushed)" \
        in last, res.stderr
    for w in words:
        assert w in last, (w, last)
    summary = json.loads(res.stdout)
    assert not summary["ok"] and not summary["pushed"] and summary["failedStep"] == step
    after = [s for s in summary["steps"]][[s["name"] for s in summary["steps"]].index(step) + 1:]
    assert all(s["status"] == "not run" for s in after), summary["steps"]
    return summary


def test_a_failing_gadget_test_pushes_nothing(tmp_path: Path, auth_registry) -> None:  # noqa: F811
    reg = auth_registry
    key, _ = key_pair(tmp_path)
    gadget = make_gadget(tmp_path, FAILING)
    junit = tmp_path / "junit.xml"
    res = publish(str(gadget), f"{reg.host}/obs/trace_open:v1", "--arch", "amd64", "--key", str(key),
                  "-u", USER, "--password-stdin", "--ca-file", str(reg.ca_file), "--junit", str(junit),
                  "-o", "json", stdin=PASSWORD, store=tmp_path / "store")
    summary = _fails(res, 1, "test", "gadget test: 1 passed, 1 failed")
    assert summary["tests"]["failed"] == 1 and summary["digest"]
    assert "FAIL  " in res.stderr and "expects the wrong error" in res.stderr
    from junitparser import JUnitXml

    assert JUnitXml.fromfile(str(junit)).failures == 1  # the report is written on failure too
    assert pushed_repositories(reg) == []


def test_a_wrong_registry_password_stops_before_the_build(tmp_path: Path, auth_registry) -> None:  # noqa: F811
    reg = auth_registry
    gadget = make_gadget(tmp_path)
    res = publish(str(gadget), f"{reg.host}/obs/trace_open:v1", "--arch", "amd64", "-u", USER,
                  "--password-stdin", "--ca-file", str(reg.ca_file), "-o", "json",
                  stdin="not-the-password\n", store=tmp_path / "store")
    summary = _fails(res, 1, "preflight", "rejected the credentials of user 'ci'")
    assert summary["digest"] is None and "not-the-password" not in res.stdout + res.stderr
    assert pushed_repositories(reg) == []
    assert not (tmp_path / "store").exists()  # nothing was built

    # the same with a wrong password saved in the auth file
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {reg.host: {
        "auth": base64.b64encode(f"{USER}:nope".encode()).decode()}}}))
    res = publish(str(gadget), f"{reg.host}/obs/trace_open:v1", "--ca-file", str(reg.ca_file),
                  "--authfile", str(authfile), "-o", "json", store=tmp_path / "store")
    _fails(res, 1, "preflight", "rejected the credentials")


def test_a_destination_outside_the_policy_is_refused_before_the_build(tmp_path: Path) -> None:
    gadget = make_gadget(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text("allowedPush: ['registry.corp:5000/observability/*']\nallowLocalSources: true\n")
    res = publish(str(gadget), "registry.corp:5000/elsewhere/trace_open:v1", "--policy", str(policy),
                  "-o", "json", store=tmp_path / "store")
    _fails(res, 3, "preflight", "registry.corp:5000/elsewhere/trace_open:v1", str(policy))
    assert not (tmp_path / "store").exists()


def test_a_wrong_key_password_stops_before_the_build(tmp_path: Path, auth_registry) -> None:  # noqa: F811
    reg = auth_registry
    key, _ = key_pair(tmp_path)
    gadget = make_gadget(tmp_path)
    res = publish(str(gadget), f"{reg.host}/obs/trace_open:v1", "--key", str(key), "-u", USER,
                  "--password-stdin", "--ca-file", str(reg.ca_file), "-o", "json",
                  stdin=PASSWORD, env={"GADGET_PASSWORD": "wrong"}, store=tmp_path / "store")
    _fails(res, 2, "preflight", str(key))
    assert pushed_repositories(reg) == [] and not (tmp_path / "store").exists()


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    gadget = make_gadget(tmp_path)
    shutil.rmtree(gadget / "tests")
    res = publish(str(gadget), "registry.corp:5000/obs/t:v1", "--no-push", store=tmp_path / "s")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "no tests/*.test.yaml in this gadget" in res.stderr and "--no-test" in res.stderr
    res = publish(str(gadget), "registry.corp:5000/obs/t@sha256:" + "0" * 64, "--no-test", "--no-push")
    assert res.returncode == 2 and "give a tag, not a digest" in res.stderr, res.stderr
    res = publish(str(gadget), "registry.corp:5000/obs/t:v1", "--password-stdin")
    assert res.returncode == 2 and "--password-stdin needs --username" in res.stderr, res.stderr
    res = publish(str(tmp_path / "missing"), "registry.corp:5000/obs/t:v1", "--no-test", "--no-push")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert str(tmp_path / "missing") in res.stderr


def test_every_architecture_signed_recursively(tmp_path: Path, auth_registry) -> None:  # noqa: F811
    reg = auth_registry
    key, pub = key_pair(tmp_path)
    gadget = make_gadget(tmp_path)
    ref = f"{reg.host}/obs/multi:v2"
    res = publish(str(gadget), ref, "--no-test", "--key", str(key), "--recursive", "-u", USER,
                  "--password-stdin", "--ca-file", str(reg.ca_file), "-o", "json",
                  stdin=PASSWORD, store=tmp_path / "store")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert sorted(summary["architectures"]) == ["amd64", "arm64"]  # the default: both
    want = {f"sha256-{d.split(':', 1)[1]}.sig" for d in
            [summary["digest"], *summary["architectures"].values()]}
    assert set(summary["signatureTags"]) == want and summary["signatureTags"][0] == summary["signatureTag"]
    assert summary["tests"] is None
    assert next(s for s in summary["steps"] if s["name"] == "test")["status"] == "skipped"
    authfile = tmp_path / "auth.json"
    subprocess.run([GADGET, "login", reg.host, "-u", USER, "--password-stdin", "--ca-file",
                    str(reg.ca_file), "--authfile", str(authfile)], input=PASSWORD + "\n",
                   capture_output=True, text=True, check=True)
    ver = run_gadget("verify", ref, "--remote", "--recursive", "--public-keys", str(pub), "--ca-file",
                     str(reg.ca_file), "--authfile", str(authfile), "-o", "json",
                     store=tmp_path / "other").json()
    assert ver["digest"] == summary["digest"] and len(ver["verified"]) == 3


def test_publish_is_callable_from_python(tmp_path: Path) -> None:
    """The pipeline without the CLI: a PublishResult, or PublishFailed carrying it."""
    from gadgetsmith.toolchain.publish import PublishFailed, PublishOptions
    from gadgetsmith.toolchain.publish import publish as run_publish
    from gadgetsmith.toolchain.registry.api import RemoteOptions

    gadget = make_gadget(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text("allowedPush: ['registry.corp:5000/ok/*']\n")
    seen: list[tuple[str, str]] = []
    opts = PublishOptions(arches=["amd64"], test=False, push=False, store=tmp_path / "store",
                          remote=RemoteOptions(policy_file=policy))
    with pytest.raises(PublishFailed) as info:
        run_publish(gadget, "registry.corp:5000/no/g:v1", opts,
                    on_step=lambda s: seen.append((s.name, s.status)))
    assert info.value.exit_code == 3 and info.value.result.failed_step == "preflight"
    assert seen == [("preflight", "running"), ("preflight", "failed")]
    opts.remote = RemoteOptions(policy_file=policy)
    result = run_publish(gadget, "registry.corp:5000/ok/g:v1", opts)
    assert result.ok and not result.pushed and result.digest and result.pinned.endswith(result.digest)
    assert [s.status for s in result.steps.values()] == ["ok", "ok", "ok", "skipped", "skipped",
                                                         "skipped"]


def test_a_token_auth_registry_like_ghcr(tmp_path: Path, registry_server) -> None:  # noqa: F811
    """Bearer tokens (ghcr.io, Docker Hub, Harbor): the preflight's credential check and the
    push go through the token server, with the run's credentials."""
    from ..registry_util import TokenServer

    tok = TokenServer(tmp_path / "tok", {USER: PASSWORD})
    try:
        reg = registry_server(tls=True, token=tok)
        gadget = make_gadget(tmp_path)
        ref = f"{reg.host}/team/trace_open:v1"
        common = ["--arch", "amd64", "--no-test", "-u", USER, "--password-stdin", "--ca-file",
                  str(reg.ca_file), "-o", "json"]
        bad = publish(str(gadget), ref, *common, stdin="nope", store=tmp_path / "store")
        _fails(bad, 1, "preflight", "rejected the credentials of user 'ci'")
        assert pushed_repositories(reg) == []
        ok = publish(str(gadget), ref, *common, stdin=PASSWORD, store=tmp_path / "store")
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["pushed"] and pushed_repositories(reg) == ["team/trace_open"]
        assert any(u == USER and "repository:team/trace_open:pull,push" in sc for _, u, sc in tok.requests)
    finally:
        tok.close()


ENV_SPEC = """\
cases:
  - name: a trigger that records its environment
    trigger:
      command: [sh, -c, "env > ENVFILE; cat /nonexistent-{{ case.id }}"]
    expect:
      match:
        fname: "/nonexistent-{{ case.id }}"
        error: ENOENT
"""


def test_the_tests_do_not_inherit_the_key_passphrase(tmp_path: Path) -> None:
    key, _ = key_pair(tmp_path)
    envfile = tmp_path / "trigger-env"
    gadget = make_gadget(tmp_path, ENV_SPEC.replace("ENVFILE", str(envfile)))
    res = publish(str(gadget), "registry.corp:5000/obs/trace_open:v1", "--arch", "amd64",
                  "--key", str(key), "--no-push", store=tmp_path / "store",
                  env={"COSIGN_PASSWORD": "also secret", "PUBLISH_TEST_MARKER": "here"})
    assert res.returncode == 0, res.stderr
    assert "sign      ok" in res.stderr  # the key was read with the passphrase all the same
    seen = envfile.read_text()
    assert "PUBLISH_TEST_MARKER=here" in seen  # the trigger's environment, recorded
    assert "GADGET_PASSWORD" not in seen and "COSIGN_PASSWORD" not in seen
    assert KEY_ENV["GADGET_PASSWORD"] not in seen and "also secret" not in seen


def test_a_signature_the_registry_refuses_leaves_no_tag(tmp_path: Path, registry) -> None:  # noqa: F811
    """The tag is the last thing pushed: when the signature cannot be pushed the registry
    has no tag naming an unsigned image (the image's blobs and manifests, by digest, may
    be there; a push again completes it)."""
    from ..registry_util import FaultProxy

    refuse = {"on": True}

    def hook(method: str, path: str):
        if refuse["on"] and method == "PUT" and "/manifests/sha256-" in path:
            return 400
        return None

    proxy = FaultProxy(registry.host, hook)
    try:
        key, pub = key_pair(tmp_path)
        gadget = make_gadget(tmp_path)
        ref = f"{proxy.host}/obs/sigfail:v1"
        args = [str(gadget), ref, "--arch", "amd64", "--no-test", "--key", str(key),
                "--insecure-registries", proxy.host, "-o", "json"]
        res = publish(*args, store=tmp_path / "store")
        assert res.returncode == 1, res.stderr
        summary = json.loads(res.stdout)
        assert summary["failedStep"] == "push" and not summary["pushed"]
        assert "the push did not complete" in res.stderr.strip().splitlines()[-1]
        tags = registry.storage / "docker/registry/v2/repositories/obs/sigfail/_manifests/tags"
        assert not (tags / "v1").exists() and not any(tags.glob("sha256-*")) if tags.exists() else True
        refuse["on"] = False
        res = publish(*args, store=tmp_path / "store")
        assert res.returncode == 0, res.stderr
        summary = json.loads(res.stdout)
        assert (tags / "v1").is_dir() and (tags / f"sha256-{summary['digest'][7:]}.sig").is_dir()
        ver = run_gadget("verify", ref, "--remote", "--public-keys", str(pub), "--insecure-registries",
                         proxy.host, "-o", "json", store=tmp_path / "other").json()
        assert ver["digest"] == summary["digest"]
    finally:
        proxy.close()
