"""`gadget test`: specs, matchers, failure reports, JUnit/JSON, detaching, the pytest plugin.

Everything runs the real thing: the sample gadgets built with clang, loaded into this
kernel, triggered by real processes and podman containers; bpftool says what is attached.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ..conftest import REPO, SAMPLES, TINY_PROGRAM, TINY_YAML, load_yaml, need_tool, run_gadget
from ..podman_util import Podman
from ..registry_util import registry, registry_server  # noqa: F401 - fixtures

TRACE_OPEN = SAMPLES / "trace_open"


def write_spec(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def podman(tmp_path: Path):
    p = Podman(tmp_path)
    yield p
    p.cleanup()


# ---------------------------------------------------------------------------- matchers
def test_matchers_compare_like_the_readme_says() -> None:
    from gadgetsmith.toolchain.testing.spec import expectation_from

    def holds(match: dict, ev: dict, variables: dict | None = None) -> bool:
        exp = expectation_from({"match": match})
        return all(m.holds(ev, variables or {}) for m in exp.matchers)

    ev = {"fd": 3, "fname": "/etc/passwd", "error": "", "args": ["a", "b"], "ok": True,
          "proc.pid": 42, "ts": 0}
    assert holds({"fd": 3}, ev) and holds({"fd": "3"}, ev) and not holds({"fd": 4}, ev)
    assert holds({"fname": {"regex": "^/etc/"}}, ev) and not holds({"fname": {"regex": "^etc"}}, ev)
    assert holds({"fname": {"notRegex": "shadow"}}, ev)
    assert holds({"fd": {"ge": 3, "lt": 4}}, ev) and not holds({"fd": {"gt": 3}}, ev)
    assert holds({"fd": {"oneOf": [1, 2, 3]}}, ev) and not holds({"fd": {"oneOf": [1, 2]}}, ev)
    assert holds({"args": {"contains": "b"}}, ev) and holds({"fname": {"contains": "pass"}}, ev)
    assert holds({"fname": {"present": True}}, ev) and holds({"error": {"present": False}}, ev)
    assert holds({"ts": {"present": False}}, ev) and not holds({"ts": {"present": True}}, ev)
    assert holds({"ok": True}, ev) and holds({"error": ""}, ev) and holds({"fd": {"ne": 4}}, ev)
    # a template with several values holds when one of them does
    pids = {"trigger.pid": ["7", "42"]}
    assert holds({"proc.pid": "{{ trigger.pid }}"}, ev, pids)
    assert not holds({"proc.pid": "{{ trigger.pid }}"}, ev, {"trigger.pid": ["7"]})
    assert holds({"proc.pid": {"ge": "{{ trigger.pid }}"}}, ev, pids)
    # regex templates: substituted values are escaped
    assert not holds({"fname": {"regex": "^{{ trigger.comm }}$"}}, {"fname": "x"},
                     {"trigger.comm": ["."]})


def test_events_read_before_the_trigger_pid_is_known_still_count() -> None:
    """The reader may hand over a process's event before the trigger recorded its pid."""
    from gadgetsmith.toolchain.testing.runner import Tracker
    from gadgetsmith.toolchain.testing.spec import expectation_from

    exp = expectation_from({"match": {"proc.pid": "{{ trigger.pid }}", "error": "ENOENT"}})
    wrong = expectation_from({"match": {"proc.pid": "{{ trigger.pid }}", "fname": "/x",
                                        "error": "EACCES"}})
    t, w = Tracker(exp), Tracker(wrong)
    early = {"proc.pid": 5, "fname": "/x", "error": "ENOENT"}
    other = {"proc.pid": 9, "fname": "/y", "error": "EACCES"}
    for ev in (early, other):
        t.add(ev, {"trigger.pid": []}, set())
        w.add(ev, {"trigger.pid": []}, set())
    assert t.count == 0 and not t.satisfied
    known = {"trigger.pid": ["5"]}
    t.revise(known, {5})
    w.revise(known, {5})
    assert t.count == 1 and t.satisfied and t.examples == [early]
    ev, outcomes = w.closest(known)  # the trigger's own event is the closest, 2 of 3
    assert ev is early and [o.field for o in outcomes if not o.holds] == ["error"]


def test_normalize_masks_and_drops_like_ig_normalizers() -> None:
    from gadgetsmith.toolchain.testing.normalize import resolve
    from gadgetsmith.toolchain.testing.spec import NormalizeSpec

    names = ["proc.pid", "proc.tid", "proc.parent.pid", "proc.mntns_id", "timestamp",
             "timestamp_raw", "fd", "runtime.containerId", "tpid"]
    assert resolve("@pids", names) == {"proc.pid", "proc.tid", "proc.parent.pid"}
    assert resolve("@timestamps", names) == {"timestamp", "timestamp_raw"}
    assert resolve("proc.*", names) == {"proc.pid", "proc.tid", "proc.parent.pid", "proc.mntns_id"}
    norm = NormalizeSpec(mask=("@pids",), drop=("@timestamps",)).resolve(names)
    out = norm({"proc.pid": 12, "proc.tid": 0, "timestamp": "x", "fd": 3})
    assert out == {"proc.pid": "<present>", "proc.tid": 0, "fd": 3}


# ---------------------------------------------------------------------------- bad specs
def test_bad_specs_are_file_line_col_errors_and_exit_2(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "bad.test.yaml", f"""\
        gadget: {TRACE_OPEN}
        cases:
          - name: one
            trigger:
              comand: [cat, /x]
            expect:
              atleast: 2
              match:
                fd: {{gtt: 3}}
          - name: two
            expect:
              atLeast: 1
              none: true
              match:
                error: {{regex: "("}}
                proc.pid: "{{{{ trigger.pdi }}}}"
          - expect: {{}}
        """)
    res = run_gadget("test", str(spec), check=False)
    assert res.returncode == 2, res
    err = res.stderr
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if ": error: " in line]
    expected = [
        ("5:7", "cases[0].trigger.comand: unknown key (did you mean 'command'?)"),
        ("7:7", "cases[0].expect.atleast: unknown key (did you mean 'atLeast'?)"),
        ("9:14", "cases[0].expect.match.fd.gtt: unknown matcher 'gtt' (did you mean 'gt'?)"),
        ("13:7", "cases[1].expect: atLeast and none contradict"),
        ("15:24", "cases[1].expect.match.error.regex: bad regular expression '('"),
        ("16:19", "unknown template name 'trigger.pdi' (did you mean 'trigger.pid'?)"),
        ("17:5", "cases[2]: missing required key 'name'"),
    ]
    for pos, text in expected:
        assert any(line.startswith(f"{spec}:{pos}: error: ") and text in line for line in lines), (
            pos, text, err)
    assert err.strip().splitlines()[-1].startswith(f"error: {spec}: ")


def test_syntax_errors_and_empty_specs(tmp_path: Path) -> None:
    bad = tmp_path / "syntax.test.yaml"
    bad.write_text("cases:\n  - name: a\n    expect: {match: [\n")
    res = run_gadget("test", str(bad), check=False)
    assert res.returncode == 2 and f"{bad}:" in res.stderr and "malformed YAML" in res.stderr
    empty = tmp_path / "empty.test.yaml"
    empty.write_text("")
    res = run_gadget("test", str(empty), check=False)
    assert res.returncode == 2 and "the test spec is empty" in res.stderr
    lonely = write_spec(tmp_path / "lonely.test.yaml", "cases: [{name: a, expect: {}}]\n")
    res = run_gadget("test", str(lonely), check=False)
    assert res.returncode == 2 and "no gadget to test" in res.stderr
    res = run_gadget("test", str(tmp_path), check=False)
    assert res.returncode == 2 and "no tests/*.test.yaml" in res.stderr
    res = run_gadget("test", "trace_open:dev", check=False)
    assert res.returncode == 2 and "--spec FILE" in res.stderr


@pytest.mark.usefixtures("clang_available")
def test_a_wrong_field_names_the_field_and_the_gadgets_fields(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "fields.test.yaml", f"""\
        gadget: {TRACE_OPEN}
        cases:
          - name: typo
            params: {{nope: 1}}
            normalize: {{mask: [proc.pid]}}
            expect:
              match:
                fnam: /etc/passwd
                proc.pid: 3
          - name: container fields need no selector but a known data source
            datasource: opens
            expect: {{}}
        """)
    res = run_gadget("test", str(spec), check=False)
    assert res.returncode == 2, res
    err = res.stderr
    assert (f"{spec}:8:9: error: cases[0].expect.match.fnam: no field 'fnam' in data source 'open' "
            "of trace_open (did you mean 'fname'?); its fields are: timestamp_raw, timestamp, "
            "proc.comm, proc.pid") in err
    assert f"{spec}:9:9: error: cases[0].expect.match.proc.pid: 'proc.pid' is masked" in err
    assert f"{spec}:4:14: error: cases[0].params.nope: unknown param 'nope'" in err
    assert ("cases[1].datasource: trace_open has no data source 'opens' (did you mean 'open'?)"
            in err)
    assert "Traceback" not in err


def test_the_schema_is_published_and_accepts_every_sample_spec() -> None:
    import jsonschema

    res = run_gadget("test", "--schema")
    schema = json.loads(res.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == json.loads((REPO / "schemas" / "gadget-test.schema.json").read_text())
    specs = sorted(SAMPLES.glob("*/tests/*.test.yaml"))
    assert {p.parent.parent.name for p in specs} == {p.name for p in SAMPLES.iterdir() if p.is_dir()}
    for p in specs:
        jsonschema.validate(load_yaml(p.read_text()), schema)
    # every property has a description, for completion in editors
    def walk(node, where):
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                assert "description" in sub, f"{where}.{name} has no description"
            for k, v in node.items():
                walk(v, f"{where}.{k}")
    walk(schema, "schema")


# ---------------------------------------------------------------------------- running
@pytest.mark.usefixtures("clang_available", "root")
def test_every_sample_gadget_passes_its_specs(tmp_path: Path, podman: Podman) -> None:
    """What `make test` runs: gadget test over all sample gadgets, one JUnit report."""
    listed = run_gadget("test", *[str(d) for d in sorted(SAMPLES.iterdir())], "--list").stdout
    report = tmp_path / "samples.xml"
    res = run_gadget("test", *[str(d) for d in sorted(SAMPLES.iterdir())], "--junit", str(report),
                     "-j", "2",
                     env={"CONTAINERS_CONF": podman.env["CONTAINERS_CONF"]}, check=False)
    assert res.returncode == 0, res
    n = len(listed.splitlines())
    assert f"{n} passed, 0 failed" in res.stdout
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites" and int(root.get("tests")) == n
    assert int(root.get("failures")) == 0 and int(root.get("errors")) == 0


FAILING = """\
    gadget: {gadget}
    cases:
      - name: passes
        trigger:
          command: [cat, "/nonexistent-{{{{ case.id }}}}"]
          repeat: 3  # one event lost on a busy machine does not fail it
        expect:
          match:
            proc.pid: "{{{{ trigger.pid }}}}"
            error: ENOENT
      - name: wrong error
        timeout: 4  # it waits all of it: enough for a cat on a loaded machine
        trigger:
          command: [cat, "/nonexistent-{{{{ case.id }}}}"]
          repeat: 3
        expect:
          match:
            proc.pid: "{{{{ trigger.pid }}}}"
            fname: "/nonexistent-{{{{ case.id }}}}"
            error: EACCES
      - name: no such program
        trigger:
          command: [/nonexistent/program]
        expect: {{}}
      - name: later
        skip: not written yet
        expect: {{}}
    """


@pytest.mark.usefixtures("clang_available", "root")
def test_a_failing_case_shows_the_closest_event_and_what_differed(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "failing.test.yaml", FAILING.format(gadget=TRACE_OPEN))
    report = tmp_path / "junit.xml"
    res = run_gadget("test", str(spec), "--junit", str(report), check=False)
    assert res.returncode == 1, res
    out = res.stdout
    assert "PASS  trace_open: passes" in out
    block = out[out.index("FAIL  trace_open: wrong error"):out.index("ERROR trace_open")]
    assert f"({spec}:11, " in block, block
    assert "expected at least 1 event from open matching:" in block, block
    assert 'fname == "/nonexistent-' in block and 'error == "EACCES"' in block, block
    assert "got 0 matching of " in block, block
    assert "closest event (2 of 3 matchers hold); differing:" in block, block
    assert 'error: expected == "EACCES", got "ENOENT"' in block, block
    assert "$ cat /nonexistent-" in block and "exited 1" in block and "No such file" in block, block
    assert "error: trigger '/nonexistent/program': /nonexistent/program: no such file" in out
    assert "SKIP  trace_open: later" in out and "[not written yet]" in out
    last = out.strip().splitlines()[-1]
    assert last == "1 passed, 2 failed, 1 skipped (1 of the failures is an error)", out

    # JUnit: parses (stdlib and junitparser) and counts right
    from junitparser import JUnitXml

    xml = JUnitXml.fromfile(str(report))
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (4, 1, 1, 1)
    suite = next(iter(xml))
    cases = {tc.name: tc for tc in suite}
    assert set(cases) == {"passes", "wrong error", "no such program", "later"}
    assert all(tc.classname == "trace_open" for tc in cases.values())
    assert cases["passes"].is_passed and cases["wrong error"].is_failure
    assert cases["no such program"].is_error and cases["later"].is_skipped
    failure = cases["wrong error"].result[0]
    assert failure.message.startswith("expected at least 1 event matching, got 0")
    assert 'error: expected == "EACCES", got "ENOENT"' in failure.text
    root = ET.parse(report).getroot()
    tc = root.find(".//testcase[@name='wrong error']")
    assert tc.get("file") == str(spec) and tc.get("line") == "11"

    # JSON: the same statuses and the same diff as data
    data = run_gadget("test", str(spec), "--format", "json", check=False).json()
    assert data["summary"] == {**data["summary"], "cases": 4, "passed": 1, "failed": 1, "error": 1,
                               "skipped": 1}
    by = {r["case"]: r for r in data["results"]}
    assert {k: v["status"] for k, v in by.items()} == {
        "passes": "passed", "wrong error": "failed", "no such program": "error", "later": "skipped"}
    closest = by["wrong error"]["expectations"][0]["closest"]
    assert {f["field"]: (f["holds"], f["got"]) for f in closest["fields"]}["error"] == (False, "ENOENT")


def _prog_ids(bpftool: str, name: str) -> set[int]:
    out = subprocess.run([bpftool, "-j", "prog", "show"], capture_output=True, text=True).stdout
    return {p["id"] for p in json.loads(out or "[]") if p.get("name") == name}


def _link_prog_ids(bpftool: str) -> set[int]:
    out = subprocess.run([bpftool, "-j", "link", "show"], capture_output=True, text=True).stdout
    return {link.get("prog_id") for link in json.loads(out or "[]")}


def _unique_gadget(tmp_path: Path) -> tuple[Path, str]:
    """A tiny gadget whose program has a name no other test uses."""
    name = f"gst_{uuid.uuid4().hex[:8]}"
    d = tmp_path / "tiny"
    d.mkdir()
    (d / "program.bpf.c").write_text(TINY_PROGRAM.replace("tiny_enter", name))
    (d / "gadget.yaml").write_text(TINY_YAML)
    return d, name


@pytest.mark.usefixtures("clang_available", "root")
def test_a_case_that_times_out_leaves_nothing_attached(tmp_path: Path) -> None:
    from gadgetsmith.toolchain.testing.gadgets import prepare
    from gadgetsmith.toolchain.testing.runner import run_case
    from gadgetsmith.toolchain.testing.spec import check_case, load_spec

    bpftool = need_tool("bpftool")
    gdir, name = _unique_gadget(tmp_path)
    spec = load_spec(write_spec(gdir / "never.test.yaml", """\
        cases:
          - name: never holds
            timeout: 1.5
            trigger: {command: [python3, -c, "import os; os.getpid()"], repeat: 3}
            expect: {match: {pid: -1}}
        """))
    gadget = prepare(spec.gadget)
    assert check_case(spec.cases[0], gadget) == []
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(_prog_ids(bpftool, name))
            time.sleep(0.1)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        result = run_case(spec.cases[0], gadget)
    finally:
        done.set()
        t.join()
    assert result.status == "failed" and result.collected_for >= 1.5, result
    assert result.events >= 3  # the trigger's getpid() calls came, none matched
    assert seen, "the program was never attached while the case ran"
    # this process is still alive: nothing may be left attached or loaded
    assert _prog_ids(bpftool, name) == set()
    assert not (seen & _link_prog_ids(bpftool))


@pytest.mark.usefixtures("clang_available", "root")
def test_sigterm_detaches_and_removes_the_case_container(tmp_path: Path, podman: Podman) -> None:
    bpftool = need_tool("bpftool")
    gdir, name = _unique_gadget(tmp_path)
    label = f"gs-test-run={uuid.uuid4().hex}"
    write_spec(gdir / "w.test.yaml", f"""\
        cases:
          - name: waits for ever
            timeout: 120
            host: true  # the tiny gadget has no mount namespace filter
            container: {{labels: {{{label.replace('=', ': ')}}}}}
            trigger: {{command: [sleep, "100"]}}
            expect: {{match: {{pid: -1}}}}
        """)
    env = dict(os.environ, CONTAINERS_CONF=podman.env["CONTAINERS_CONF"])
    env.pop("GADGETSMITH_DEBUG", None)
    gadget_bin = str(Path(sys.executable).parent / "gadget")
    proc = subprocess.Popen([gadget_bin, "test", str(gdir / "w.test.yaml")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _prog_ids(bpftool, name):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the gadget was never attached"
            time.sleep(0.1)
        listed = podman.run("ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}").stdout
        assert listed.strip(), "the case's container is not running"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, (out, err)
    assert _prog_ids(bpftool, name) == set()
    left = podman.run("ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}").stdout
    assert not left.strip(), f"container left behind: {left}"


@pytest.mark.usefixtures("clang_available", "root")
def test_an_image_from_the_store_and_from_a_registry(tmp_path: Path, registry) -> None:  # noqa: F811
    spec = SAMPLES / "trace_open" / "tests" / "trace_open.test.yaml"
    src = tmp_path / "src"
    run_gadget("build", str(TRACE_OPEN), "-t", "trace_open:gtest", "--arch", "amd64", store=src)
    res = run_gadget("test", "trace_open:gtest", "--spec", str(spec), "-k", "failed open",
                     store=src, check=False)
    assert res.returncode == 0 and "PASS  trace_open:gtest: a failed open" in res.stdout, res
    ref = f"{registry.host}/gtest/trace_open:v1"
    run_gadget("tag", "trace_open:gtest", ref, store=src)
    run_gadget("push", ref, *registry.client_args(), store=src)
    empty = tmp_path / "empty"
    res = run_gadget("test", ref, "--spec", str(spec), "-k", "failed open", *registry.client_args(),
                     store=empty, check=False)
    assert res.returncode == 0 and f"PASS  {ref}: a failed open" in res.stdout, res
    missing = f"{registry.host}/gtest/missing:v1"
    res = run_gadget("test", missing, "--spec", str(spec), *registry.client_args(), store=empty,
                     check=False)
    assert res.returncode == 1, res
    assert f"ERROR {missing}: a failed open" in res.stdout
    assert "cannot build or load the gadget" in res.stdout and "pulling it failed" in res.stdout


# ---------------------------------------------------------------------------- pytest plugin
def _pytest(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full = dict(os.environ, **(env or {}))
    full.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-rA", *args], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.usefixtures("clang_available", "root")
def test_pytest_collects_and_reports_the_same_cases(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "failing.test.yaml", FAILING.format(gadget=TRACE_OPEN))
    collected = _pytest("--collect-only", "-q", str(spec), cwd=tmp_path)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    assert ids == [f"failing.test.yaml::{n}" for n in
                   ("passes", "wrong error", "no such program", "later")]
    res = _pytest(str(spec), "--junitxml", str(tmp_path / "pytest.xml"), cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    out = res.stdout
    assert "PASSED failing.test.yaml::passes" in out
    assert "FAILED failing.test.yaml::wrong error" in out
    assert "FAILED failing.test.yaml::no such program" in out
    assert "SKIPPED" in out and "not written yet" in out
    # the failure text is gadget test's
    assert 'error: expected == "EACCES", got "ENOENT"' in out
    assert "closest event (2 of 3 matchers hold)" in out
    assert "1 passed" in out and "2 failed" in out and "1 skipped" in out
    data = run_gadget("test", str(spec), "--format", "json", check=False).json()
    statuses = {r["case"]: r["status"] for r in data["results"]}
    root = ET.parse(tmp_path / "pytest.xml").getroot()
    from_pytest = {}
    for tc in root.iter("testcase"):
        kind = next((c.tag for c in tc if c.tag in ("failure", "error", "skipped")), "passed")
        from_pytest[tc.get("name")] = kind
    assert from_pytest == {"passes": "passed", "wrong error": "failure",
                           "no such program": "failure", "later": "skipped"}
    assert statuses == {"passes": "passed", "wrong error": "failed", "no such program": "error",
                        "later": "skipped"}


@pytest.mark.usefixtures("clang_available", "root")
def test_the_gadget_run_fixture(tmp_path: Path) -> None:
    (tmp_path / "test_with_fixture.py").write_text(textwrap.dedent(f"""\
        import subprocess
        import uuid

        TRACE_OPEN = {str(TRACE_OPEN)!r}

        def test_opens(gadget_run):
            missing = f"/nonexistent-{{uuid.uuid4().hex}}"
            with gadget_run(TRACE_OPEN, params={{"failed": True}}) as run:
                p = subprocess.run(["cat", missing, "/etc/hostname"], capture_output=True)
                assert p.returncode == 1
                run.expect(match={{"fname": missing, "error": "ENOENT", "proc.comm": "cat"}})
                run.expect(match={{"fname": "/etc/hostname", "proc.comm": "cat"}}, none=True,
                           settle=0.2)
                assert all(e["error"] for e in run.events)

        def test_snapshot(gadget_run):
            child = subprocess.Popen(["sleep", "30"])
            try:
                with gadget_run({str(SAMPLES / "snapshot_process")!r}) as run:
                    run.expect(match={{"pid": child.pid, "comm": "sleep"}})
            finally:
                child.kill()

        def test_fails_with_the_report(gadget_run):
            with gadget_run(TRACE_OPEN) as run:
                run.expect(match={{"fname": "/never-opened-by-anyone"}}, timeout=1)
        """))
    res = _pytest(str(tmp_path / "test_with_fixture.py"), cwd=tmp_path)
    out = res.stdout
    assert res.returncode == 1, out + res.stderr
    assert "PASSED test_with_fixture.py::test_opens" in out
    assert "PASSED test_with_fixture.py::test_snapshot" in out
    assert "FAILED test_with_fixture.py::test_fails_with_the_report" in out
    assert "AssertionError: trace_open: expected at least 1 event from open matching:" in out
    assert 'fname == "/never-opened-by-anyone"' in out and "closest event" in out
