"""The toolchain against what `ig image build` accepts (issue 14, points 3, 4 and 8), with
gadgets of our own: metadata-only images, validation as strict as ig by default (and
today's checks with --strict), JSON from validate when the source does not compile, and
the builder-version annotation ig looks for."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from gadgetsmith.toolchain import sdk

from ..conftest import run_gadget

HERE = Path(__file__).resolve().parent.parent  # tests/
LENIENT = HERE / "c" / "igvalidate"
IG_BUILDER = "io.inspektor-gadget.builder.version"
pytestmark = pytest.mark.usefixtures("clang_available")

METADATA_ONLY = """\
name: proc stats
description: implemented by an operator of ig, no eBPF program
datasources:
  processes:
    fields:
      comm:
        annotations:
          description: command
      cpuUsage:
        annotations:
          description: CPU use in percent
"""


def _manifests(store: Path, ref: str) -> tuple[dict, list[dict]]:
    out = run_gadget("inspect", ref, "--format", "json", store=store).json()
    return out, out["manifests"]


def test_metadata_only_gadget_builds_like_ig(tmp_path: Path, store: Path) -> None:
    """A folder with only gadget.yaml (ig's bpfstats, top_process, top_cpu_throttle) is an
    image with the yaml as config and no layers, for both arches; validate agrees."""
    d = tmp_path / "procstats"
    d.mkdir()
    (d / "gadget.yaml").write_text(METADATA_ONLY)
    res = run_gadget("build", str(d), "-t", "procstats:1", "--format", "json", store=store)
    assert res.json()["architectures"] == ["amd64", "arm64"]
    info, manifests = _manifests(store, "procstats:1")
    assert info["annotations"][IG_BUILDER] == sdk.IG_VERSION
    for m in manifests:
        assert m["layers"] == [], m
        assert m["config"]["mediaType"] == "application/vnd.gadget.config.v1+yaml"
    val = run_gadget("validate", str(d), "--format", "json").json()
    assert val["valid"] and val["diagnostics"] == []
    (d / "gadget.yaml").unlink()
    res = run_gadget("build", str(d), "--no-store", check=False)
    assert res.returncode == 2
    assert "nothing to build: create program.bpf.c" in res.stderr and "Traceback" not in res.stderr


def test_builder_version_is_written_on_every_build(tiny_gadget: Path, store: Path) -> None:
    """ig warns "Builder version not found in the gadget image" without it: every build
    names the release the SDK follows, or --ig-version's, also without a gadget.yaml."""
    run_gadget("build", str(tiny_gadget), "-t", "tiny:1", "--arch", "amd64", store=store)
    run_gadget("build", str(tiny_gadget), "-t", "tiny:2", "--arch", "amd64", "--ig-version",
               "v0.99.0", store=store)
    (tiny_gadget / "gadget.yaml").unlink()
    run_gadget("build", str(tiny_gadget), "-t", "tiny:3", "--arch", "amd64", store=store)
    seen = {}
    for tag in ("tiny:1", "tiny:2", "tiny:3"):
        info, manifests = _manifests(store, tag)
        blobs = store / "blobs" / "sha256"
        per_arch = {json.loads((blobs / m["digest"].split(":")[1]).read_bytes())
                    .get("annotations", {}).get(IG_BUILDER) for m in manifests}
        seen[tag] = (info["annotations"].get(IG_BUILDER), per_arch)
    assert seen == {"tiny:1": (sdk.IG_VERSION, {sdk.IG_VERSION}),
                    "tiny:2": ("v0.99.0", {"v0.99.0"}),
                    "tiny:3": (sdk.IG_VERSION, {sdk.IG_VERSION})}


def _diags(res) -> list[tuple[str, int, str]]:
    return [(d["severity"], d["line"], d["message"]) for d in res.json()["diagnostics"]]


def test_validation_is_as_strict_as_ig_by_default(tmp_path: Path) -> None:
    """What ig builds and runs is a warning: a field the struct lacks, a data source only
    one side has, `fields:` left null. Names ig derives (kstack from kstack_raw, ustack.*,
    an endpoint's addr/endpoint) and the SDK's ig_build_id_max_entries say nothing.
    --strict makes each an error again; the build agrees with the default."""
    res = run_gadget("validate", str(LENIENT), "--format", "json")
    got = _diags(res)
    assert all(sev == "warning" for sev, _, _ in got), got
    text = "\n".join(m for _, _, m in got)
    assert "fields.not_a_field: no field 'not_a_field' in struct event" in text
    assert "datasources.made_by_nobody: the object has no data source" in text
    assert "made_by_nobody.fields: empty (null)" in text
    assert "data source 'others' (GADGET_TRACER in the object) is missing" in text
    for quiet in ("kstack", "ustack.symbols", "addr.addr", "addr.endpoint",
                  "ig_build_id_max_entries"):
        assert f"{quiet}:" not in text and f"({quiet})" not in text, (quiet, text)
    assert len(got) == 4, got

    strict = run_gadget("validate", str(LENIENT), "--format", "json", "--strict", check=False)
    assert strict.returncode == 1
    errors = {m.split(":")[0] for sev, _, m in _diags(strict) if sev == "error"}
    assert {"datasources.calls.fields.not_a_field", "datasources.made_by_nobody",
            "datasources.made_by_nobody.fields", "datasources"} <= errors, errors
    # the runtime's formatters stage prints kstack (from kstack_raw) as ig does: not even
    # --strict calls it missing
    assert "datasources.calls.fields.kstack" not in errors, errors

    out = run_gadget("build", str(LENIENT), "--no-store", "--arch", "amd64")
    assert "warning: datasources.calls.fields.not_a_field" in out.stderr


def test_datasources_key_in_any_case(tmp_path: Path) -> None:
    """ig reads gadget.yaml case-insensitively: `dataSources:` is `datasources:`, so it is
    neither 'ignored by ig' nor a reason to say the data sources are undescribed."""
    d = tmp_path / "g"
    shutil.copytree(LENIENT, d)
    text = (d / "gadget.yaml").read_text()
    text = text.replace("datasources:", "dataSources:").replace("\n    fields:", "\n    Fields:")
    (d / "gadget.yaml").write_text(text)
    got = _diags(run_gadget("validate", str(d), "--format", "json"))
    msgs = "\n".join(m for _, _, m in got)
    assert "unknown key" not in msgs and "no 'datasources' section" not in msgs, msgs
    assert "fields.not_a_field: no field 'not_a_field'" in msgs  # still checked, in that case


def test_validate_json_when_the_source_does_not_compile(tmp_path: Path) -> None:
    d = tmp_path / "broken"
    shutil.copytree(LENIENT, d)
    src = d / "program.bpf.c"
    src.write_text(src.read_text().replace("e->kstack_raw = ", "e->kstack_raw = nonsense + "))
    res = run_gadget("validate", str(d), "--format", "json", check=False)
    assert res.returncode == 1
    out = json.loads(res.stdout)
    errors = [x for x in out["diagnostics"] if x["severity"] == "error"]
    assert len(errors) == 1, out
    e = errors[0]
    assert e["file"].endswith("program.bpf.c") and e["line"] > 0 and e["column"] > 0
    assert "use of undeclared identifier 'nonsense'" in e["message"]
    # the yaml checks that need no object still ran
    assert any("empty (null)" in x["message"] for x in out["diagnostics"])


def test_ig_compat_tool_reports_a_folder(tmp_path: Path, tiny_gadget: Path) -> None:
    """bench/ig_compat.py over a folder of gadgets (a user's fork of IG's gadgets/): one
    row per gadget, the totals, and a cause for what fails."""
    import subprocess
    import sys

    root = tmp_path / "gadgets"
    root.mkdir()
    shutil.copytree(tiny_gadget, root / "tiny")
    (root / "opstats").mkdir()
    (root / "opstats" / "gadget.yaml").write_text(METADATA_ONLY)
    broken = root / "ci" / "broken"
    broken.mkdir(parents=True)
    (broken / "program.bpf.c").write_text("#include <gadget/not_a_header.h>\n")
    out = tmp_path / "r.json"
    res = subprocess.run([sys.executable, str(HERE.parent / "bench" / "ig_compat.py"), str(root),
                          "--run", "none", "--json", str(out), "--markdown"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    rows = {ln.split("|")[1].strip(): ln for ln in res.stdout.splitlines()
            if ln.startswith("| ") and not ln.startswith("| gadget")}
    assert set(rows) == {"tiny", "opstats", "ci/broken"}, res.stdout
    assert "| ok | ok | 0/0 |" in rows["tiny"] and "| ok | ok | 0/0 | n/a |" in rows["opstats"]
    assert "FAIL | FAIL" in rows["ci/broken"]
    assert "missing header <gadget/not_a_header.h>" in rows["ci/broken"]
    totals = json.loads(out.read_text())["totals"]
    assert (totals["gadgets"], totals["build_amd64_ok"], totals["build_arm64_fail"]) == (3, 2, 1)
