"""The generated fast paths (decoder, JSON lines) give exactly what the generic code gives."""

from __future__ import annotations

import io
import json
import random

import pytest

from .conftest import SAMPLES, run_gadget

pytestmark = pytest.mark.usefixtures("clang_available")


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory):
    from gadgetsmith.runtime.api import load_image

    store = tmp_path_factory.mktemp("hot") / "store"
    out = {}
    for name in ("trace_open", "trace_exec", "trace_signal", "snapshot_process", "top_syscall"):
        run_gadget("build", str(SAMPLES / name), "-t", f"{name}:test", "--arch", "amd64",
                   store=store)
        out[name] = load_image(f"{name}:test", store)
    return out


def _decoders(data: bytes, meta: dict):
    from gadgetsmith.runtime.api import Gadget
    from gadgetsmith.runtime.loader import GadgetObject

    g = Gadget.__new__(Gadget)  # data sources only: nothing is loaded into the kernel
    g.object, g.metadata = GadgetObject(data, meta), meta
    return [ds.decoder for ds in g._datasources()]


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


def test_json_lines_match_json_dumps_of_nest() -> None:
    from gadgetsmith.runtime.decode import Column, nest
    from gadgetsmith.runtime.output import Printer

    first = {"a": 1, "b.c": 'x\u00e9"\n', "b.d": [1, 2], "k8s.podLabels": {"z": "1", "a": "2"},
             "t": True, "f": 1.5, "n": None, "p%s": "q%d", "big": 2**64 - 1}
    # same keys, other value types: the template must not be trusted blindly
    later = dict(first, a="text", t=False, n=3, **{"b.c": None, "big": -1})
    out = io.StringIO()
    p = Printer("json", [Column(k) for k in first], out=out, autoflush=False)
    for ev in (first, later, first):
        p.event(ev)
    want = "".join(json.dumps(nest(e), sort_keys=True) + "\n" for e in (first, later, first))
    assert out.getvalue() == want
    # a dict value changed in place is encoded again
    labels = {"app": "a"}
    out4 = io.StringIO()
    p4 = Printer("json", [Column("k8s.podLabels")], out=out4)
    p4.event({"k8s.podLabels": labels})
    labels["app"] = "b"
    p4.event({"k8s.podLabels": labels})
    assert out4.getvalue() == '{"k8s": {"podLabels": {"app": "a"}}}\n{"k8s": {"podLabels": {"app": "b"}}}\n'
    # same number of keys, other names: not the cached template
    other = {f"x{i}": i for i in range(len(first))}
    out3 = io.StringIO()
    p3 = Printer("json", [Column(k) for k in first], out=out3)
    for ev in (first, other, later):
        p3.event(ev)
    assert out3.getvalue() == "".join(json.dumps(nest(e), sort_keys=True) + "\n"
                                      for e in (first, other, later))
    # a key both a value and a parent: nest() decides, and so does the printer
    clash = {"a": 1, "a.b": 2}
    out2 = io.StringIO()
    Printer("json", [Column(k) for k in clash], out=out2).event(clash)
    assert out2.getvalue() == json.dumps(nest(clash), sort_keys=True) + "\n"


