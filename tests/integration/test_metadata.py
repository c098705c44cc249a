"""gadget.yaml: schema, `gadget validate` (with line marks), cross-check with the object,
generation from BTF and the round-trip `--update-metadata` merge."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from gadgetsmith.toolchain.metadata.validate import load_schema, validate_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..conftest import SAMPLES, TINY_PROGRAM, TINY_YAML, dump_yaml, load_yaml, run_gadget
from ..hypothesis_profile import TIMING_CHECKS

SAMPLE_DIRS = sorted(p for p in SAMPLES.iterdir() if (p / "gadget.yaml").is_file())


def diags(res) -> list[dict]:
    return res.json()["diagnostics"]


def only(report_or_list, severity: str = "error") -> list:
    items = report_or_list.diagnostics if hasattr(report_or_list, "diagnostics") else report_or_list
    return [d for d in items if (d.severity if hasattr(d, "severity") else d["severity"]) == severity]


# ---------------------------------------------------------------------------- schema
def test_schemas_are_valid_2020_12() -> None:
    from jsonschema import Draft202012Validator

    for name in ("gadget", "build"):
        schema = load_schema(name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("sample", SAMPLE_DIRS, ids=lambda p: p.name)
def test_samples_match_published_schema(sample: Path) -> None:
    from jsonschema import Draft202012Validator

    v = Draft202012Validator(load_schema("gadget"))
    assert list(v.iter_errors(load_yaml((sample / "gadget.yaml").read_text()))) == []
    bv = Draft202012Validator(load_schema("build"))
    for doc in ({}, {"ebpfsource": "program.bpf.c", "metadata": "gadget.yaml",
                     "wasm": "program.wasm", "cflags": ["-DX=1"]}):
        assert list(bv.iter_errors(doc)) == []
    assert list(bv.iter_errors({"ebpfsrc": "x.c"})) != []


def test_published_schema_accepts_unknown_keys_but_validate_warns() -> None:
    """Newer ig keys must not break editors or CI: unknown keys are warnings only."""
    from jsonschema import Draft202012Validator

    doc = "name: x\nfutureKey: 1\ndatasources:\n  ds:\n    newThing: true\n"
    assert list(Draft202012Validator(load_schema()).iter_errors(load_yaml(doc))) == []
    r = validate_bytes(doc)
    assert r.ok
    assert [(d.line, d.col) for d in r.warnings] == [(2, 1), (5, 5)]
    assert "futureKey: unknown key" in r.warnings[0].message


# ---------------------------------------------------------------------------- schema corpus
BROKEN = [
    # (name, content, line, col, needle)
    ("wrong type name", "name: 5\n", 1, 7, "name: expected a string, got a number (5)"),
    ("wrong type datasources", "name: x\ndatasources: [a, b]\n", 2, 14,
     "datasources: expected a mapping, got a list"),
    ("wrong type annotation map", "name: x\nannotations: hello\n", 2, 14,
     "annotations: expected a mapping, got a string"),
    ("wrong type columns.width",
     "name: x\ndatasources:\n  ds:\n    fields:\n      f:\n        annotations:\n"
     "          columns.width: wide\n", 7, 26, "columns.width: expected an integer"),
    ("missing name", "description: no name here\n", 1, 1, "missing required key 'name'"),
    ("missing param key",
     "name: x\nparams:\n  ebpf:\n    my_var:\n      description: no key\n", 4, 5,
     "params.ebpf.my_var: missing required key 'key'"),
    ("empty name", "name: ''\n", 1, 7, "name: must not be empty"),
    ("bad template", "name: x\ndatasources:\n  ds:\n    fields:\n      f:\n        annotations:\n"
     "          template: pidd\n", 7, 21, "'pidd' is not allowed"),
    ("bad param type", "name: x\nparams:\n  ebpf:\n    v:\n      key: v\n      type: integer\n",
     6, 13, "params.ebpf.v.type: 'integer' is not allowed"),
    ("bad datasource name", "name: x\ndatasources:\n  bad-name: {}\n", 3, 3,
     "'bad-name' is not a valid name"),
    ("yaml syntax error", "name: x\ndescription: a: b\n", 2, 15,
     "malformed YAML: mapping values are not allowed here"),
    ("yaml unclosed flow", "name: x\nannotations: {a: b\ndescription: y\n", 3, 12,
     "malformed YAML: while parsing a flow mapping"),
    ("duplicate key", "name: x\ndescription: a\nname: y\n", 3, 1, "duplicate key 'name'"),
    ("empty file", "", 1, 1, "gadget.yaml is empty"),
    ("only a comment", "# nothing\n", 1, 1, "gadget.yaml is empty"),
    ("not a mapping", "- a\n- b\n", 1, 1, "must be a mapping of keys"),
    ("tab indentation", "name: x\ndatasources:\n\tds: {}\n", 3, 1, "malformed YAML"),
]


@pytest.mark.parametrize("content, line, col, needle", [b[1:] for b in BROKEN],
                         ids=[b[0] for b in BROKEN])
def test_broken_yaml_corpus(tmp_path: Path, content: str, line: int, col: int, needle: str) -> None:
    f = tmp_path / "gadget.yaml"
    f.write_text(content)
    res = run_gadget("validate", str(f), check=False)
    assert res.returncode == 1, res
    assert "Traceback" not in res.stderr
    assert f"gadget.yaml:{line}:{col}: error: " in res.stdout, res
    assert needle in res.stdout, res
    assert res.stderr.strip().startswith("error: ") and "not valid" in res.stderr
    js = run_gadget("validate", str(f), "--format", "json", check=False)
    assert js.returncode == 1
    errs = only(diags(js))
    assert any(d["line"] == line and d["column"] == col and needle in d["message"] for d in errs), errs


@pytest.mark.parametrize("garbage", [
    b"\x00\x01\x02\xff\xfe garbage",
    bytes(range(256)),
    b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 40,
    b"name: x\n\xff\xfe bad utf8\n",
    b"\x89PNG\r\n\x1a\n",
])
def test_binary_garbage(tmp_path: Path, garbage: bytes) -> None:
    f = tmp_path / "gadget.yaml"
    f.write_bytes(garbage)
    res = run_gadget("validate", str(f), check=False)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res
    first = res.stdout.splitlines()[0]
    assert first.startswith(f"{f}:") or first.startswith("/"), res
    assert any(w in first for w in ("not a text file", "not valid UTF-8", "control character")), res
    if garbage.startswith(b"name: x\n"):
        assert ":2:1: error: not valid UTF-8" in first


def test_all_errors_at_once() -> None:
    doc = "name: 5\ndescription: [a]\nhomepageURL: {}\nparams:\n  ebpf:\n    v: {}\n"
    r = validate_bytes(doc)
    assert [(d.line, d.col) for d in r.errors] == [(1, 7), (2, 14), (3, 14), (6, 5)]
    assert r.summary() == "4 errors, 0 warnings"


def test_validate_ok_output(tmp_path: Path) -> None:
    f = tmp_path / "gadget.yaml"
    f.write_text("name: ok\n")
    res = run_gadget("validate", str(f))
    assert "OK (schema; 0 errors, 0 warnings)" in res.stdout
    assert run_gadget("validate", str(f), "--format", "json").json()["valid"] is True


def test_strict_turns_warnings_into_failure(tmp_path: Path) -> None:
    f = tmp_path / "gadget.yaml"
    f.write_text("name: ok\ndescrption: typo\n")
    assert run_gadget("validate", str(f)).returncode == 0
    res = run_gadget("validate", str(f), "--strict", check=False)
    assert res.returncode == 1
    assert "gadget.yaml:2:1: warning: descrption: unknown key, ignored by ig (did you mean " \
           "'description'?)" in res.stdout


def test_build_yaml_schema(tmp_path: Path) -> None:
    f = tmp_path / "build.yaml"
    f.write_text("ebpfsource: program.bpf.c\nwasm: module.py\nebpfsrc: x\n")
    res = run_gadget("validate", str(f), "--format", "json", check=False)
    assert res.returncode == 1
    d = {(x["line"], x["severity"]) for x in diags(res)}
    assert (2, "error") in d and (3, "warning") in d


_OPENED: list[str] = []  # files opened while a test records them (see _record_opens)
_HOOKED: list = []


def _record_opens(event: str, args: tuple) -> None:
    if event == "open" and _OPENED and isinstance(args[0], (str, Path)):
        _OPENED.append(os.path.realpath(args[0]))


def test_validate_reads_build_yaml_once(tmp_path: Path) -> None:
    """The build file is checked against its schema and then used: one read, so what is
    checked is what is used."""
    from gadgetsmith.toolchain.metadata.validate import validate_dir

    d = tmp_path / "g"
    d.mkdir()
    (d / "program.bpf.c").write_text(TINY_PROGRAM)
    (d / "gadget.yaml").write_text(TINY_YAML)
    bf = d / "build.yaml"
    bf.write_text("ebpfsource: program.bpf.c\ncflags: [-DX=1]\n")
    if _record_opens not in _HOOKED:  # audit hooks cannot be removed: add it once
        sys.addaudithook(_record_opens)
        _HOOKED.append(_record_opens)
    _OPENED[:] = ["<recording>"]
    try:
        report = validate_dir(d)
    finally:
        opened, _OPENED[:] = _OPENED[1:], []
    assert report.ok, report.diagnostics
    assert opened.count(os.path.realpath(bf)) == 1, opened
    assert opened.count(os.path.realpath(d / "gadget.yaml")) == 1, opened


def test_unknown_target() -> None:
    res = run_gadget("validate", "./no/such/dir", check=False)
    assert res.returncode == 1 and "no such gadget directory or file" in res.stderr


# ---------------------------------------------------------------------------- property test
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=20))
keys = st.one_of(st.sampled_from(["name", "description", "datasources", "fields", "annotations",
                                  "params", "ebpf", "key", "defaultValue", "type", "open",
                                  "fname", "targ_failed", "possibleValues", "columns.width",
                                  "template", "programs", "paramDefaults"]),
                 st.text(max_size=10))
docs = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)), max_leaves=30)


@pytest.fixture(scope="module")
def tiny_object(tmp_path_factory, clang_available) -> object:
    from gadgetsmith.toolchain.build.compile import compile_arches, find_toolchain
    from gadgetsmith.toolchain.metadata.objinfo import analyze

    d = tmp_path_factory.mktemp("tinyobj")
    (d / "program.bpf.c").write_text(TINY_PROGRAM)
    objs = compile_arches(d / "program.bpf.c", ["amd64"], d, find_toolchain(), cwd=d)
    return analyze(objs["amd64"].read_bytes())


@settings(max_examples=300, deadline=None,
          suppress_health_check=[*TIMING_CHECKS, HealthCheck.function_scoped_fixture])
@given(doc=docs)
def test_validate_never_raises_on_random_documents(doc, tiny_object) -> None:
    text = dump_yaml(doc)
    r = validate_bytes(text, obj=tiny_object)
    assert isinstance(r.ok, bool)
    for d in r.diagnostics:
        assert d.severity in ("error", "warning") and d.message
        assert d.line >= 0 and d.col >= 0


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_validate_never_raises_on_random_bytes(raw) -> None:
    r = validate_bytes(raw)
    assert isinstance(r.ok, bool)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    # every diagnostic points into the input: YAML also breaks lines at a lone CR (and the
    # parser at U+0085, U+2028, U+2029); one more line for an error at the very end
    lines = 1 + sum(text.count(b) for b in ("\n", "\r", "\x85", "\u2028", "\u2029"))
    for d in r.diagnostics:
        assert 1 <= d.line <= lines and d.col >= 1, (d, lines)


# ---------------------------------------------------------------------------- object corpus
def _gadget(tmp_path: Path, yaml_text: str, program: str = TINY_PROGRAM) -> Path:
    d = tmp_path / "g"
    d.mkdir(exist_ok=True)
    (d / "program.bpf.c").write_text(program)
    (d / "gadget.yaml").write_text(yaml_text)
    return d


@pytest.mark.usefixtures("clang_available")
@pytest.mark.parametrize("sample", SAMPLE_DIRS, ids=lambda p: p.name)
def test_every_sample_validates_clean(sample: Path) -> None:
    res = run_gadget("validate", str(sample), "--format", "json")
    out = res.json()
    assert out["valid"] and out["objectChecked"], out
    assert out["diagnostics"] == [], out


OBJECT_CASES = [
    # (name, old, new, line, col, needles)
    ("unknown data source", "  tiny:\n", "  tinny:\n", 9, 3,
     ["datasources.tinny: the object has no data source 'tinny'", "did you mean 'tiny'?"]),
    ("field typo", "      pid:\n", "      pdi:\n", 11, 7,
     ["datasources.tiny.fields.pdi: no field 'pdi' in struct event", "did you mean 'pid'?",
      "fields are: timestamp_raw, pid, error_raw"]),
    ("unknown param", "    only_failed:\n", "    only_faild:\n", 16, 5,
     ["params.ebpf.only_faild: the object has no GADGET_PARAM(only_faild)",
      "did you mean 'only_failed'?"]),
    ("param type mismatch", '      defaultValue: "false"\n',
     '      defaultValue: "false"\n      type: uint32\n', 19, 13,
     ["params.ebpf.only_failed.type: 'uint32' does not match the C type bool (bool)",
      "set type: bool"]),
    ("param default not a bool", '      defaultValue: "false"\n', '      defaultValue: "maybe"\n',
     18, 21, ["params.ebpf.only_failed.defaultValue: 'maybe' is not a boolean"]),
]


@pytest.mark.usefixtures("clang_available")
@pytest.mark.parametrize("old, new, line, col, needles", [c[1:] for c in OBJECT_CASES],
                         ids=[c[0] for c in OBJECT_CASES])
def test_object_corpus(tmp_path: Path, old: str, new: str, line: int, col: int,
                       needles: list[str]) -> None:
    assert old in TINY_YAML
    d = _gadget(tmp_path, TINY_YAML.replace(old, new))
    res = run_gadget("validate", str(d), "--strict", check=False)
    assert res.returncode == 1, res
    hit = [ln for ln in res.stdout.splitlines() if f"gadget.yaml:{line}:{col}: error: " in ln]
    assert hit, res
    for n in needles:
        assert n in hit[0], (n, hit[0])


@pytest.mark.usefixtures("clang_available")
def test_missing_data_source_and_undocumented_param(tmp_path: Path) -> None:
    prog = TINY_PROGRAM.replace("GADGET_PARAM(only_failed);",
                                "GADGET_PARAM(only_failed);\nconst volatile __u32 min_pid = 7;\n"
                                "GADGET_PARAM(min_pid);")
    text = TINY_YAML.replace("  tiny:\n", "  other:\n")
    res = run_gadget("validate", str(_gadget(tmp_path, text, prog)), "--format", "json",
                     "--strict", check=False)
    msgs = [(d["severity"], d["line"], d["message"]) for d in diags(res)]
    assert ("error", 8, "datasources: data source 'tiny' (GADGET_TRACER in the object) is "
            "missing: add 'tiny:' under datasources (gadget metadata generate prints it)") in msgs
    assert any(s == "warning" and "GADGET_PARAM(min_pid) is not described" in m
               for s, _, m in msgs), msgs


@pytest.mark.usefixtures("clang_available")
def test_default_value_differs_from_rodata(tmp_path: Path) -> None:
    prog = TINY_PROGRAM.replace("const volatile bool only_failed = false;",
                                "const volatile bool only_failed = true;")
    res = run_gadget("validate", str(_gadget(tmp_path, TINY_YAML, prog)), check=False)
    assert res.returncode == 0, res
    assert "gadget.yaml:18:21: warning: params.ebpf.only_failed.defaultValue: 'false' differs " \
           "from the C initial value true" in res.stdout


MAP_PROGRAMS = {
    "tracer on a hash map": (
        TINY_PROGRAM.replace("GADGET_TRACER(tiny, events, event);",
                             "struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4);"
                             " __type(key, __u32); __type(value, __u32); } h SEC(\".maps\");\n"
                             "GADGET_TRACER(tiny, h, event);"),
        "data source 'tiny' (GADGET_TRACER): tracer map 'h' is a hash map: tracers need a ring "
        "buffer or perf event array"),
    "map iterator on an LRU map with a scalar key": (
        TINY_PROGRAM.replace("GADGET_TRACER(tiny, events, event);",
                             "struct v { __u64 n; };\n"
                             "struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 4);"
                             " __type(key, __u32); __type(value, struct v); } h SEC(\".maps\");\n"
                             "GADGET_TRACER(tiny, events, event);\nGADGET_MAPITER(counts, h);"),
        "data source 'counts' (GADGET_MAPITER): map 'h' is a lru_hash map: map iterators need "
        "BPF_MAP_TYPE_HASH"),
}


@pytest.mark.usefixtures("clang_available")
@pytest.mark.parametrize("prog, needle", list(MAP_PROGRAMS.values()), ids=list(MAP_PROGRAMS))
def test_map_kinds(tmp_path: Path, prog: str, needle: str) -> None:
    res = run_gadget("validate", str(_gadget(tmp_path, TINY_YAML, prog)), check=False)
    assert res.returncode == 1, res
    assert needle in res.stdout, res
    if "LRU" in prog:
        assert "map 'h' key must be a struct" in res.stdout


# ---------------------------------------------------------------------------- build + image
@pytest.mark.usefixtures("clang_available")
def test_build_validates_by_default(tmp_path: Path, store: Path) -> None:
    # a param the object lacks: ig refuses that too (a field it lacks is only a warning)
    d = _gadget(tmp_path, TINY_YAML.replace("    only_failed:\n", "    only_faild:\n"))
    res = run_gadget("build", str(d), "-t", "bad:1", "--arch", "amd64", store=store, check=False)
    assert res.returncode == 2, res
    assert "gadget.yaml:16:5: error: params.ebpf.only_faild" in res.stderr
    err = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "--no-validate-metadata" in err[0]
    assert run_gadget("list", "--format", "json", store=store).json() == []
    run_gadget("build", str(d), "-t", "bad:1", "--arch", "amd64", "--no-validate-metadata",
               store=store)
    # the stored image is checked from its config blob and amd64 eBPF layer
    res = run_gadget("validate", "bad:1", "--format", "json", store=store, check=False)
    assert res.returncode == 1
    out = res.json()
    assert out["objectChecked"] and out["source"] == "bad:1"
    assert [(x["line"], x["column"]) for x in only(out["diagnostics"])] == [(16, 5)]


@pytest.mark.usefixtures("clang_available")
def test_validate_image_ok(tiny_gadget: Path, store: Path) -> None:
    run_gadget("build", str(tiny_gadget), "-t", "tiny:1", "--arch", "amd64", store=store)
    res = run_gadget("validate", "tiny:1", store=store)
    assert "tiny:1: OK (schema and compiled object; 0 errors, 0 warnings)" in res.stdout
    res = run_gadget("validate", "nothere:1", store=store, check=False)
    assert res.returncode == 1 and "unknown reference" in res.stderr


# ---------------------------------------------------------------------------- generation
PARAM_PROGRAM = TINY_PROGRAM.replace(
    "const volatile bool only_failed = false;",
    "const volatile bool only_failed = true;\nconst volatile __s32 threshold = -42;\n"
    "GADGET_PARAM(threshold);\nconst volatile char label[8] = \"abc\";\nGADGET_PARAM(label);")


@pytest.mark.usefixtures("clang_available")
def test_generate_from_btf(tmp_path: Path) -> None:
    d = _gadget(tmp_path, "name: x\n", PARAM_PROGRAM)
    (d / "gadget.yaml").unlink()
    res = run_gadget("metadata", "generate", str(d))
    doc = load_yaml(res.stdout)
    assert doc["name"] == "g"
    fields = doc["datasources"]["tiny"]["fields"]
    assert list(fields) == ["timestamp_raw", "pid", "error_raw"]
    assert fields["timestamp_raw"]["annotations"]["template"] == "timestamp"
    ebpf = doc["params"]["ebpf"]
    assert ebpf["only_failed"]["defaultValue"] == "true"  # from .rodata, not a guess
    assert ebpf["threshold"]["defaultValue"] == "-42"
    assert ebpf["label"]["defaultValue"] == "abc"
    assert "targ_pid" not in ebpf
    # what we generate validates (placeholders are warnings)
    (d / "gadget.yaml").write_text(res.stdout)
    out = run_gadget("validate", str(d), "--format", "json").json()
    assert out["errors"] == 0 and out["warnings"] > 0
    assert all("placeholder" in x["message"] for x in out["diagnostics"])


KINDS_PROGRAM = TINY_PROGRAM.replace(
    "GADGET_PARAM(only_failed);",
    "GADGET_PARAM(only_failed);\nconst volatile float ratio = 0.5;\nGADGET_PARAM(ratio);\n"
    "const volatile struct gadget_l3endpoint_t peer = {.addr_raw = {.v4 = 0x0100007f}, "
    ".version = 4};\nGADGET_PARAM(peer);")


@pytest.mark.usefixtures("clang_available")
def test_float_and_ip_params_are_typed_like_the_runtime(tmp_path: Path) -> None:
    """float and gadget_l3endpoint_t params: defaults read from .rodata, values checked as
    the runtime would encode them (it sets both kinds)."""
    d = _gadget(tmp_path, "name: x\n", KINDS_PROGRAM)
    (d / "gadget.yaml").unlink()
    ebpf = load_yaml(run_gadget("metadata", "generate", str(d)).stdout)["params"]["ebpf"]
    assert ebpf["ratio"]["defaultValue"] == "0.5"
    assert ebpf["peer"]["defaultValue"] == "127.0.0.1"
    good = TINY_YAML + textwrap.indent(textwrap.dedent("""\
        ratio:
          key: ratio
          type: float32
          defaultValue: "0.5"
          description: a ratio
        peer:
          key: peer
          type: ip
          defaultValue: "127.0.0.1"
          description: a peer
        """), "    ")
    (d / "gadget.yaml").write_text(good)
    out = run_gadget("validate", str(d), "--format", "json").json()
    assert out["objectChecked"] and out["diagnostics"] == [], out
    (d / "gadget.yaml").write_text(good.replace('"0.5"', '"half"')
                                   .replace('"127.0.0.1"', '"300.1.2.3"'))
    res = run_gadget("validate", str(d), check=False)
    assert res.returncode == 1, res
    assert "gadget.yaml:23:21: error: params.ebpf.ratio.defaultValue: 'half' is not a " \
           "number" in res.stdout, res
    assert "gadget.yaml:28:21: error: params.ebpf.peer.defaultValue: '300.1.2.3' is not an " \
           "IP address" in res.stdout, res


@pytest.mark.usefixtures("clang_available")
def test_param_the_runtime_cannot_set_is_an_error(tmp_path: Path) -> None:
    prog = TINY_PROGRAM.replace(
        "GADGET_PARAM(only_failed);",
        "GADGET_PARAM(only_failed);\nstruct cfg { __u32 a; };\n"
        "const volatile struct cfg cfg = {};\nGADGET_PARAM(cfg);")
    res = run_gadget("validate", str(_gadget(tmp_path, TINY_YAML, prog)), "--format", "json",
                     check=False)
    assert res.returncode == 1, res
    errs = [(d["file"], d["message"]) for d in only(diags(res))]
    assert [m for _, m in errs] == [
        "GADGET_PARAM(cfg): its C type struct cfg cannot be a param: use bool, an integer, a "
        "float, a char array or struct gadget_l3endpoint_t (an IP address)"], errs
    assert errs[0][0].endswith("program.bpf.c"), errs


AUTHOR_YAML = """\
# yaml-language-server: $schema=gadget.schema.json
# Written by hand: every comment and key below must survive an update.
name: tiny   # the name
description: A tiny test gadget
paramDefaults:
  operator.oci.ebpf.failed: "true"   # unknown to ig's struct, kept
operator:
  ebpf:
    emitstats: true
datasources:
  tiny:
    annotations:
      cli.clear-screen-before: "false"
    fields:
      pid:
        annotations:
          description: Process ID   # pid comment
          x-team-note: keep me
      old_field:
        annotations: {description: gone from the struct}
  removed_ds: {}
params:
  ebpf:
    old_param: {key: old}   # author comment
  custom:
    mode:
      description: a custom param
      values:
        fast: {patch: {operator: {ebpf: {emitstats: false}}}}
"""


@pytest.mark.usefixtures("clang_available")
def test_update_metadata_round_trip(tmp_path: Path, store: Path) -> None:
    d = _gadget(tmp_path, AUTHOR_YAML, PARAM_PROGRAM)
    # the update is written, then validation fails on the param the object no longer has
    # (ig refuses that too) and warns about the data source (ig ignores it)
    res = run_gadget("build", str(d), "--update-metadata", "--arch", "amd64", "-t", "tiny:2",
                     store=store, check=False)
    assert res.returncode == 2, res
    assert "error: params.ebpf.old_param: the object has no GADGET_PARAM(old_param)" in res.stderr
    assert "warning: datasources.removed_ds: the object has no data source 'removed_ds'" \
        in res.stderr
    assert "# gadget: not in the compiled object" in (d / "gadget.yaml").read_text()
    (d / "gadget.yaml").write_text(AUTHOR_YAML)
    res = run_gadget("build", str(d), "--update-metadata", "--no-validate-metadata", "--arch",
                     "amd64", "-t", "tiny:2", store=store)
    text = (d / "gadget.yaml").read_text()
    # every line the author wrote is still there, except the ones we marked
    marked = {"      old_field:", "  removed_ds: {}", "    old_param: {key: old}"}
    for line in AUTHOR_YAML.splitlines():
        if line.strip() and not any(line.startswith(m) for m in marked):
            assert line in text, line
    assert "      old_field:  # gadget: not in the compiled object" in text
    assert "  removed_ds: {}  # gadget: not in the compiled object" in text
    assert "    old_param: {key: old}   # gadget: not in the compiled object; author comment" in text
    doc = load_yaml(text)
    assert doc["paramDefaults"] == {"operator.oci.ebpf.failed": "true"}
    assert doc["params"]["custom"]["mode"]["values"]["fast"]["patch"]
    assert set(doc["datasources"]["tiny"]["fields"]) == {"pid", "old_field", "timestamp_raw",
                                                         "error_raw"}
    assert doc["params"]["ebpf"]["threshold"] == {"key": "threshold", "defaultValue": "-42",
                                                  "description": "TODO: Fill parameter description"}
    assert "added datasources.tiny.fields.timestamp_raw" in res.stdout
    # the image carries the updated file verbatim
    cfg = run_gadget("inspect", "tiny:2", "--format", "json", store=store).json()
    assert cfg["metadata"]["params"]["ebpf"]["label"]["defaultValue"] == "abc"
    # a second update changes nothing; the file is not rewritten
    before = (d / "gadget.yaml").stat().st_mtime_ns
    res = run_gadget("metadata", "update", str(d))
    assert "up to date" in res.stdout
    assert (d / "gadget.yaml").stat().st_mtime_ns == before
    # a field that comes back loses its mark
    prog = PARAM_PROGRAM.replace("gadget_errno error_raw;", "gadget_errno error_raw;\n__u32 old_field;")
    (d / "program.bpf.c").write_text(prog)
    res = run_gadget("metadata", "update", str(d))
    assert "back in the object: datasources.tiny.fields.old_field" in res.stdout
    text2 = (d / "gadget.yaml").read_text()
    assert "      old_field:\n" in text2 and "  removed_ds: {}  # gadget" in text2


@pytest.mark.usefixtures("clang_available")
def test_build_update_metadata_leaves_an_up_to_date_file_alone(tmp_path: Path,
                                                                store: Path) -> None:
    d = _gadget(tmp_path, TINY_YAML)
    run_gadget("metadata", "update", str(d))  # adds the fields TINY_YAML leaves out
    f = d / "gadget.yaml"
    before = f.read_bytes()
    os.utime(f, ns=(1_000_000_000, 1_000_000_000))
    inode = f.stat().st_ino
    res = run_gadget("build", str(d), "--update-metadata", "--arch", "amd64", "-t", "tiny:3",
                     "--format", "json", store=store)
    assert res.json()["metadataUpdate"] == [], res
    assert f.read_bytes() == before
    st = f.stat()
    assert (st.st_mtime_ns, st.st_ino) == (1_000_000_000, inode), "the file was rewritten"
    assert [p.name for p in d.iterdir() if p.name.startswith(".tmp-")] == []
    cfg = run_gadget("inspect", "tiny:3", "--format", "json", store=store).json()
    assert cfg["metadata"] == load_yaml(before)


@pytest.mark.usefixtures("clang_available")
def test_update_creates_missing_file(tmp_path: Path) -> None:
    d = _gadget(tmp_path, "", TINY_PROGRAM)
    (d / "gadget.yaml").unlink()
    res = run_gadget("metadata", "update", str(d))
    assert "added everything (new file)" in res.stdout
    doc = load_yaml((d / "gadget.yaml").read_text())
    assert doc["name"] == "g" and "tiny" in doc["datasources"]
    leftovers = [p.name for p in d.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []


@pytest.mark.usefixtures("clang_available")
def test_update_refuses_broken_yaml(tmp_path: Path) -> None:
    d = _gadget(tmp_path, "name: [x\n")
    res = run_gadget("metadata", "update", str(d), check=False)
    assert res.returncode == 2 and "malformed YAML" in res.stderr
    assert (d / "gadget.yaml").read_text() == "name: [x\n"


def test_schema_command() -> None:
    out = json.loads(run_gadget("metadata", "schema").stdout)
    assert out["title"] == "gadget.yaml"
    p = run_gadget("metadata", "schema", "--build", "--path").stdout.strip()
    assert json.loads(Path(p).read_text())["title"] == "build.yaml"


def test_help_has_examples() -> None:
    for cmd in (["validate"], ["metadata", "generate"], ["metadata", "update"],
                ["metadata", "schema"]):
        assert "Example: gadget" in run_gadget(*cmd, "--help").stdout
    assert "--no-validate-metadata" in run_gadget("build", "--help").stdout
    assert textwrap.dedent("--update-metadata") in run_gadget("build", "--help").stdout


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    f = tmp_path / "gadget.yaml"
    f.write_text("\n".join(lines) + "\n")
    res = run_gadget("validate", str(f), check=False)
    assert res.returncode == 1 and "gadget.yaml:1:1: error: document has more than" in res.stdout


@pytest.mark.usefixtures("clang_available")
def test_directory_without_metadata(tmp_path: Path) -> None:
    d = _gadget(tmp_path, "")
    (d / "gadget.yaml").unlink()
    # ig builds and runs it with an empty config, and so does gadget build: a warning
    res = run_gadget("validate", str(d))
    assert "warning: no metadata file: ig builds and runs the gadget with an empty config" \
        in res.stdout
    res = run_gadget("validate", str(d), "--strict", check=False)
    assert res.returncode == 1
    assert "error: no metadata file" in res.stdout and "gadget metadata generate" in res.stdout
