"""The fast schema check (toolchain/metadata/fastschema.py): code fastjsonschema generated
once per schema, cached in ~/.cache/gadgetsmith/schemas. It may refuse more than jsonschema
(the document is then checked by jsonschema), never accept what jsonschema refuses; a valid
gadget.yaml is checked without importing jsonschema; a damaged cache entry is regenerated."""

from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gadgetsmith.toolchain.metadata import fastschema, validate
from gadgetsmith.toolchain.metadata.yamldoc import load_marked
from hypothesis import given, settings
from hypothesis import strategies as st

from ..conftest import REPO

SAMPLES = sorted((REPO / "sample-gadgets").glob("*/gadget.yaml"))
TEMPLATE_DOCS = sorted((REPO / "tests").rglob("gadget.yaml"))


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    validate.fast_check.cache_clear()
    yield tmp_path / "cache"
    validate.fast_check.cache_clear()


def _jsonschema_errors(data: Any, name: str = "gadget") -> list[Any]:
    return list(validate.schema_validator(name).iter_errors(data))


@functools.cache
def _docs() -> list[Any]:
    return [load_marked(p.read_bytes()).data for p in SAMPLES + TEMPLATE_DOCS]


def test_sample_gadgets_pass_the_fast_check_as_jsonschema_passes_them() -> None:
    assert SAMPLES
    for path in SAMPLES:
        data = load_marked(path.read_bytes()).data
        assert validate.schema_valid(data) == (not _jsonschema_errors(data)), path


# values a mutation puts anywhere in a document
VALUES = st.sampled_from([None, True, False, 0, -1, 7, 2**40, 1.5, "", "x", "1abc", "a.b",
                          "with space", "-flag", "0x10", [], {}, ["a"], [1, None], {"a": 1},
                          {"key": "k"}, {"name": "n"}, {"fields": None}, {"": 1}])
KEYS = st.sampled_from(["name", "key", "fields", "annotations", "datasources", "params", "ebpf",
                        "type", "defaultValue", "description", "unknownKey", "1bad", "a.b",
                        "DataSources", "possibleValues", "alias", "isMandatory"])


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], op: int, key: str, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    if not path:
        if op == 2 and isinstance(doc, dict):
            doc[key] = value
        return value if op == 0 else doc
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if op == 0:
        parent[last] = value
    elif op == 1 and isinstance(parent, dict):
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][key] = value
    elif isinstance(parent[last], list):
        parent[last].append(value)
    else:
        parent[last] = value
    return doc


@settings(max_examples=int(os.environ.get("SCHEMA_FAST_EXAMPLES", "300")), deadline=None)
@given(st.data())
def test_the_fast_check_accepts_nothing_jsonschema_refuses(data: st.DataObject) -> None:
    doc = data.draw(st.sampled_from(_docs()))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        doc = _mutate(doc, path, data.draw(st.integers(0, 2)), data.draw(KEYS), data.draw(VALUES))
    if validate.schema_valid(doc):
        assert _jsonschema_errors(doc) == [], doc


def test_mutations_are_refused_by_both() -> None:
    """The property above is not vacuous: documents both libraries refuse."""
    doc = load_marked((REPO / "sample-gadgets/trace_open/gadget.yaml").read_bytes()).data
    bad = [_mutate(doc, ("name",), 0, "", 7), _mutate(doc, ("datasources",), 0, "", []),
           _mutate(doc, (), 2, "unknownKey", 1), _mutate(doc, ("name",), 1, "", None)]
    for d in bad:
        assert not validate.schema_valid(d)
        assert _jsonschema_errors(d)


def test_build_yaml_schema_too() -> None:
    assert validate.schema_valid({"ebpfsource": "p.bpf.c", "cflags": ["-DX=1"]}, "build")
    assert not validate.schema_valid({"cflags": "-DX"}, "build")
    assert _jsonschema_errors({"cflags": "-DX"}, "build")


def test_a_damaged_cache_entry_is_regenerated(_own_cache: Path) -> None:
    doc = load_marked((REPO / "sample-gadgets/trace_open/gadget.yaml").read_bytes()).data
    assert validate.schema_valid(doc)
    (entry,) = (_own_cache / "gadgetsmith" / "schemas").glob("gadget-*.code")
    good = entry.read_bytes()
    # a flipped byte in the code, and code that would accept everything with a wrong digest
    for damaged in (good[:-10] + bytes([good[-10] ^ 1]) + good[-9:], good[:40] + b"x" * 64):
        entry.write_bytes(damaged)
        validate.fast_check.cache_clear()
        assert validate.schema_valid(doc)
        assert not validate.schema_valid({"name": 7})
        assert entry.read_bytes() == good


def test_a_valid_gadget_yaml_is_checked_without_jsonschema(_own_cache: Path) -> None:
    script = (
        "import sys\n"
        "from gadgetsmith.toolchain.metadata.validate import validate_bytes\n"
        "r = validate_bytes(open(sys.argv[1], 'rb').read())\n"
        "print(len(r.diagnostics), 'jsonschema' in sys.modules)\n"
    )
    env = dict(os.environ, XDG_CACHE_HOME=str(_own_cache))
    good = REPO / "sample-gadgets/trace_open/gadget.yaml"
    runs = [subprocess.run([sys.executable, "-c", script, str(good)], env=env, text=True,
                           capture_output=True, check=True).stdout.split() for _ in range(2)]
    assert runs[1] == ["0", "False"]  # the second run reads the cached code
    bad = _own_cache / "bad.yaml"
    bad.write_text("name: 7\n")
    out = subprocess.run([sys.executable, "-c", script, str(bad)], env=env, text=True,
                         capture_output=True, check=True).stdout.split()
    assert out == ["1", "True"]  # refused: jsonschema says why


def test_standalone_code_needs_no_fastjsonschema() -> None:
    src = fastschema.standalone("from fastjsonschema import JsonSchemaValueException\n"
                                "def v(data, custom_formats={}, name_prefix=None):\n"
                                "    if data != 1: raise JsonSchemaValueException('no', value=data)\n",
                                "v")
    assert "fastjsonschema" not in src
    class Refused(ValueError):
        def __init__(self, message: str, **details: Any) -> None:
            super().__init__(message)

    ns: dict[str, Any] = {"JsonSchemaValueException": Refused}
    exec(compile(src, "t", "exec"), ns)
    ns[fastschema.ENTRY](1)
    with pytest.raises(Refused):
        ns[fastschema.ENTRY](2)
