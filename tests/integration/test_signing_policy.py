"""Verify by default: `gadget run` checks signatures the policy asks for before loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import SAMPLES, need_root, run_gadget
from ..signing_util import ENV, key_pair, make_image
from .test_bad_input import check_error

REF = "registry.example.com/obs/tiny:v1"


def _policy(tmp_path: Path, pub: Path, prefix: str = "registry.example.com/obs/*") -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(f"allowedGadgets:\n  - reference: {prefix}\n    publicKeys: [{pub}]\n"
                 "  - registry.example.com/*\n")
    return p


def test_run_refuses_unsigned_image_before_loading(tmp_path: Path, store: Path) -> None:
    _, pub = key_pair(tmp_path)
    make_image(store, REF)
    policy = _policy(tmp_path, pub)
    res = run_gadget("run", REF, "--host", "--timeout", "1", "--policy", str(policy), store=store,
                     check=False)
    check_error(res, "no signature found", REF)


def test_run_by_digest_cannot_sidestep_the_policy(tmp_path: Path, store: Path) -> None:
    _, pub = key_pair(tmp_path)
    digest = make_image(store, REF)
    res = run_gadget("run", digest, "--host", "--timeout", "1", "--policy", str(_policy(tmp_path, pub)),
                     store=store, check=False)
    check_error(res, "no signature found")


def test_run_wrong_signer_refused_and_no_verify_warns(tmp_path: Path, store: Path) -> None:
    key, _ = key_pair(tmp_path)
    _, trusted = key_pair(tmp_path, "trusted")
    make_image(store, REF)
    run_gadget("sign", REF, "--key", str(key), store=store, env=ENV)
    policy = _policy(tmp_path, trusted)
    res = run_gadget("run", REF, "--host", "--timeout", "1", "--policy", str(policy), store=store,
                     check=False)
    check_error(res, "signature does not verify", "policy.yaml key 1")
    skipped = run_gadget("run", REF, "--host", "--timeout", "1", "--policy", str(policy), "--no-verify",
                         store=store, check=False)
    assert "WARNING: signature verification DISABLED (--no-verify)" in skipped.stderr
    assert "UNVERIFIED" in skipped.stderr
    assert "signature" not in skipped.stderr.split("UNVERIFIED", 1)[1]  # got past the check


def test_no_keys_in_policy_means_no_check(tmp_path: Path, store: Path) -> None:
    _, pub = key_pair(tmp_path)
    make_image(store, REF)
    policy = _policy(tmp_path, pub, prefix="registry.example.com/other/*")
    res = run_gadget("run", REF, "--host", "--timeout", "1", "--policy", str(policy), store=store,
                     check=False)
    assert "no signature found" not in res.stderr and "WARNING" not in res.stderr
    # got past the policy into the loader: exactly what a policy without keys gives
    plain = tmp_path / "plain.yaml"
    plain.write_text("allowedGadgets:\n  - registry.example.com/*\n")
    same = run_gadget("run", REF, "--host", "--timeout", "1", "--policy", str(plain), store=store,
                      check=False)
    assert (res.returncode, res.stderr) == (same.returncode, same.stderr), (res, same)


@pytest.mark.usefixtures("clang_available")
def test_signed_gadget_runs_under_policy(tmp_path: Path, store: Path) -> None:
    need_root()
    key, pub = key_pair(tmp_path)
    ref = "registry.example.com/obs/snapshot_process:v1"
    run_gadget("build", str(SAMPLES / "snapshot_process"), "-t", ref, "--arch", "amd64", store=store)
    policy = _policy(tmp_path, pub)
    res = run_gadget("run", ref, "--host", "--policy", str(policy), store=store, check=False)
    check_error(res, "no signature found")
    run_gadget("sign", ref, "--key", str(key), store=store, env=ENV)
    ok = run_gadget("run", ref, "--host", "--fields", "comm,pid", "--policy", str(policy), store=store)
    assert ok.stdout.splitlines()[0].split() == ["COMM", "PID"]
    assert len(ok.stdout.splitlines()) > 5
