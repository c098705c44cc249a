from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from gadgetsmith.runtime.oci.reference import InvalidReference, normalize, parse
from hypothesis import assume, given
from hypothesis import strategies as st

from ..conftest import REPO


@pytest.mark.parametrize(
    "given_ref, expected",
    [
        ("trace_exec", "ghcr.io/inspektor-gadget/gadget/trace_exec:latest"),
        ("trace_exec:v0.35.0", "ghcr.io/inspektor-gadget/gadget/trace_exec:v0.35.0"),
        ("myorg/gadget/foo", "ghcr.io/myorg/gadget/foo:latest"),
        ("inspektor-gadget/ig:foobar", "ghcr.io/inspektor-gadget/ig:foobar"),
        ("ghcr.io/foo", "ghcr.io/inspektor-gadget/gadget/foo:latest"),
        ("localhost/x", "localhost/x:latest"),
        ("localhost:5000/x:v1", "localhost:5000/x:v1"),
        ("foobar.baz:443/a/b", "foobar.baz:443/a/b:latest"),
        ("registry.example.com/team/trace_open:v1", "registry.example.com/team/trace_open:v1"),
        (
            "127.0.0.1:5000/a@sha256:" + "a" * 64,
            "127.0.0.1:5000/a@sha256:" + "a" * 64,
        ),
    ],
)
def test_normalize_like_ig(given_ref: str, expected: str) -> None:
    assert normalize(given_ref) == expected


@pytest.mark.parametrize(
    "bad",
    ["", "https://ghcr.io/x", "Trace_Exec", "a/b:bad tag", "x@sha256:123", "a//b", "x:"],
)
def test_bad_references_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidReference):
        parse(bad)


def test_short_name_drops_official_prefix() -> None:
    assert parse("trace_open:dev").short_name() == "trace_open"
    assert parse("localhost:5000/x:v1").short_name() == "localhost:5000/x"


_component = st.from_regex(r"[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}", fullmatch=True)


@given(
    parts=st.lists(_component, min_size=1, max_size=3),
    tag=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)),
    domain=st.sampled_from(["", "localhost:5000/", "registry.example.com/", "10.0.0.1:443/"]),
)
def test_normalize_is_idempotent(parts: list[str], tag: str | None, domain: str) -> None:
    if not domain:
        # without an explicit registry, a first component with '.' or ':' is a domain
        assume("." not in parts[0] and ":" not in parts[0])
    text = domain + "/".join(parts) + (f":{tag}" if tag else "")
    once = normalize(text)
    assert normalize(once) == once
    ref = parse(once)
    assert ref.tag == (tag or "latest")


SLOW_PROPERTY = '''
import time
from hypothesis import given, settings, strategies as st
{load}

@settings(max_examples=15)
@given(st.integers().map(lambda n: (time.sleep(0.2), n)[1]))
def test_slow_to_generate(n):
    assert isinstance(n, int)
'''


def test_property_tests_survive_a_slow_machine(tmp_path: Path) -> None:
    """test_normalize_is_idempotent failed hypothesis' too_slow health check on the loaded
    machine: generating examples slowly is not a failure under this suite's profile (and
    still is without it, so the check below can fail). The control run loads hypothesis'
    own defaults: where hypothesis detects CI (CI, GITHUB_ACTIONS...) it loads its "ci"
    profile, which suppresses too_slow too."""
    for load, code in (("import tests.conftest  # as every test module of the suite", 0),
                       ('settings.load_profile("default")', 1)):
        f = tmp_path / f"test_slow_{code}.py"
        f.write_text(SLOW_PROPERTY.format(load=load))
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "--rootdir", str(tmp_path), str(f)], capture_output=True, text=True,
                              cwd=REPO, timeout=300)
        assert proc.returncode == code, proc.stdout[-2000:]
        assert ("too_slow" in proc.stdout) == (code == 1), proc.stdout[-2000:]
