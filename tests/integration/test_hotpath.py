"""The generated fast paths (decoder, JSON lines) give exactly what the generic code gives."""

from __future__ import annotations

import io
import json
import random
import re
from typing import Any

import pytest

from ..conftest import SAMPLES, run_gadget

pytestmark = pytest.mark.usefixtures("clang_available")


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory):
    from gadgetsmith.runtime.gadget import load_image

    store = tmp_path_factory.mktemp("hot") / "store"
    out = {}
    for name in ("trace_open", "trace_exec", "trace_signal", "snapshot_process", "top_syscall"):
        run_gadget("build", str(SAMPLES / name), "-t", f"{name}:test", "--arch", "amd64",
                   store=store)
        out[name] = load_image(f"{name}:test", store)
    return out


def _decoders(data: bytes, meta: dict):
    from gadgetsmith.runtime.bpf.objmodel import GadgetObject
    from gadgetsmith.runtime.pipeline.model import datasources_of

    # the object stage's data sources only: nothing is loaded into the kernel
    return [ds.decoder for ds in datasources_of(GadgetObject(data, meta))]


@pytest.mark.parametrize("name", ["trace_open", "trace_exec", "trace_signal",
                                  "snapshot_process", "top_syscall"])
def test_generated_decoder_matches_the_generic_one(objects, name: str) -> None:
    rng = random.Random(name)
    for dec in _decoders(*objects[name]):
        assert dec._fast is not None
        for i in range(300):
            size = dec.size if i % 4 else rng.randint(0, dec.size)  # short records too
            raw = bytes(rng.getrandbits(8) for _ in range(size))
            fast, slow = dec.decode(raw), dec.decode_slow(raw)
            for k in [k for k in fast if k.startswith("timestamp") and not any(raw[:8])]:
                del fast[k], slow[k]  # a zero timestamp means "now"
            assert list(fast) == list(slow)
            assert fast == slow


def _ig_json(doc: Any) -> str:
    """The JSON module's text of ``doc`` as ig writes it: compact, keys sorted, floats
    with an integral value without a fraction (no other floats in these events)."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return re.sub(r'(?<=[:,\[])(-?\d+)\.0(?=[,}\]])', r"\1", text)


def test_json_lines_match_json_dumps_of_nest() -> None:
    from gadgetsmith.runtime.events.decode import Column, nest
    from gadgetsmith.runtime.events.output import Printer

    first = {"a": 1, "b.c": 'x\u00e9"\n', "b.d": [1, 2], "k8s.podLabels": {"z": "1", "a": "2"},
             "t": True, "f": 1.5, "g": 2.0, "n": None, "p%s": "q%d", "big": 2**64 - 1}
    # same keys, other value types: the template must not be trusted blindly
    later = dict(first, a="text", t=False, n=3, **{"b.c": None, "big": -1})
    out = io.StringIO()
    p = Printer("json", [Column(k) for k in first], out=out, autoflush=False)
    for ev in (first, later, first):
        p.event(ev)
    want = "".join(_ig_json(nest(e)) + "\n" for e in (first, later, first))
    assert out.getvalue() == want
    # a dict value changed in place is encoded again
    labels = {"app": "a"}
    out4 = io.StringIO()
    p4 = Printer("json", [Column("k8s.podLabels")], out=out4)
    p4.event({"k8s.podLabels": labels})
    labels["app"] = "b"
    p4.event({"k8s.podLabels": labels})
    assert out4.getvalue() == '{"k8s":{"podLabels":{"app":"a"}}}\n{"k8s":{"podLabels":{"app":"b"}}}\n'
    # same number of keys, other names: not the cached template
    other = {f"x{i}": i for i in range(len(first))}
    out3 = io.StringIO()
    p3 = Printer("json", [Column(k) for k in first], out=out3)
    for ev in (first, other, later):
        p3.event(ev)
    assert out3.getvalue() == "".join(_ig_json(nest(e)) + "\n"
                                      for e in (first, other, later))
    # a key both a value and a parent: nest() decides, and so does the printer
    clash = {"a": 1, "a.b": 2}
    out2 = io.StringIO()
    Printer("json", [Column(k) for k in clash], out=out2).event(clash)
    assert out2.getvalue() == _ig_json(nest(clash)) + "\n"


def test_spliced_enrichment_json_matches_merged_json() -> None:
    """Pre-rendered enrichment spliced into the JSON template gives the merged event's
    line, including when the template must fall back (key clashes, other value types)."""
    from gadgetsmith.runtime.containers.collection import Container
    from gadgetsmith.runtime.events.decode import Column, nest
    from gadgetsmith.runtime.events.enrichment import EMPTY, Enrichment, flatten
    from gadgetsmith.runtime.events.output import Printer

    c = Container(id="f" * 64, name='we"b\u00e9', runtime="podman", pid=77, image="x/y:1",
                  labels={"io.kubernetes.pod.name": "p%s", "io.kubernetes.pod.namespace": "n",
                          "io.kubernetes.container.name": "c", "z": "1", "a": "%d"})
    full = Enrichment(flatten(c.enrichment()))
    base = {"timestamp": "t", "proc.comm": "cat", "proc.pid": 3, "seq": 1, "error": "",
            "zz.top": [1, 2]}
    events = [
        (dict(base), full), (dict(base, seq=2), EMPTY), (dict(base, seq=3), full),
        (dict(base, seq="not an int"), full),           # the template's type check
        ({**base, "runtime.extra": 1}, full),           # a gadget field under runtime.*
        ({"k8s": "clash", "seq": 4}, EMPTY),
        ({"only": 1}, full), (dict(base, seq=5), full),
    ]
    out = io.StringIO()
    p = Printer("json", [Column(k) for k in base], out=out, autoflush=False)
    for ev, extra in events:
        p.event(dict(ev), extra)
    want = "".join(_ig_json(nest({**ev, **extra.fields})) + "\n"
                   for ev, extra in events)
    assert out.getvalue() == want


def test_jsonpretty_is_json_dumps_indent_2_with_go_floats() -> None:
    """-o jsonpretty: the json module's indent=2 text (keys sorted), floats as ig writes
    them (1500, not 1500.0)."""
    from gadgetsmith.runtime.events.decode import Column, nest
    from gadgetsmith.runtime.events.output import Printer

    ev = {"a": 1, "b.c": "x\u00e9", "b.d": [1, 2], "b.e": [], "t": True, "n": None, "f": 0.5,
          "w": 1500.0}
    out = io.StringIO()
    Printer("jsonpretty", [Column(k) for k in ev], out=out).event(dict(ev))
    assert out.getvalue() == json.dumps(nest(dict(ev, w=1500)), sort_keys=True, indent=2) + "\n"
