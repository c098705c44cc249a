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


ALL_SAMPLES = sorted(p.name for p in SAMPLES.iterdir() if (p / "program.bpf.c").exists())


@pytest.fixture(scope="module")
def every_sample(tmp_path_factory: pytest.TempPathFactory):
    from gadgetsmith.runtime.gadget import load_image

    store = tmp_path_factory.mktemp("hot-all") / "store"
    out = {}
    for name in ALL_SAMPLES:
        run_gadget("build", str(SAMPLES / name), "-t", f"{name}:test", "--arch", "amd64",
                   store=store)
        out[name] = load_image(f"{name}:test", store)
    return out


def _records(size: int, rng: random.Random) -> list[bytes]:
    """Records of one process (a base record with a few bytes changed: the memoised
    objects hit), random ones, short ones, an all-zero one (a zero timestamp is "now")."""
    base = bytes(rng.getrandbits(8) for _ in range(size))
    out = []
    for i in range(400):
        if i % 5 == 0:
            out.append(bytes(rng.getrandbits(8) for _ in range(size)))
        elif i % 17 == 0:
            out.append(base[:rng.randint(0, size)])
        else:
            rec = bytearray(base)
            at = rng.randrange(size)
            rec[at:at + 4] = bytes(rng.getrandbits(8) for _ in range(4))
            out.append(bytes(rec[:size]))
    return out + [bytes(size)]


def _printed(mode: str, ds, records: list[bytes], extras, direct: bool) -> str:
    from gadgetsmith.runtime.pipeline.output import Output
    from gadgetsmith.runtime.pipeline.stage import Batch

    out = io.StringIO()
    output = Output(mode, [ds], out=out, direct=direct)
    for i in range(0, len(records), 64):
        batch = Batch.of_records(ds, records[i:i + 64])
        batch.extras = None if extras is None else extras[i:i + 64]
        output(batch)
    return out.getvalue()


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_json_lines_from_records_match_decode_then_print(every_sample, name: str,
                                                         monkeypatch) -> None:
    """Every data source of every sample gadget (its layout as a tracer's), in every
    output mode, with and without container fields: what `gadget run` prints from the
    records directly is what decoding them and printing the events prints, line by line
    and field by field; the JSON mode does take the direct path."""
    import time

    from gadgetsmith.runtime.containers.collection import Container
    from gadgetsmith.runtime.events.enrichment import EMPTY, Enrichment, flatten
    from gadgetsmith.runtime.events.jsonline import records_writer
    from gadgetsmith.runtime.events.output import MODES
    from gadgetsmith.runtime.pipeline.context import DataSource
    from gadgetsmith.runtime.pipeline.stage import Batch

    real_clock = time.clock_gettime_ns
    monkeypatch.setattr(time, "clock_gettime_ns", lambda clk: 1_700_000_000_123_456_789
                        if clk == time.CLOCK_REALTIME else real_clock(clk))
    c = Container(id="e" * 64, name='we"b\u00e9', runtime="podman", pid=7, image="x/y:1",
                  labels={"io.kubernetes.pod.name": "p", "z": "%d"})
    full = Enrichment(flatten(c.enrichment()))
    rng = random.Random(name)
    decoders = _decoders(*every_sample[name])
    assert decoders
    for dec in decoders:
        ds = DataSource("events", "tracer", dec)
        assert records_writer(dec) is not None, "the sample's layout takes the direct path"
        assert records_writer(dec, spliced=("k8s", "runtime")) is not None
        records = _records(dec.size, rng)
        if dec.mntns_field:
            want = [ev[dec.mntns_field] for ev in dec.decode_many(records)]
            assert Batch.of_records(ds, records).values(dec.mntns_field) == want
        for extras in (None, [full if i % 3 else EMPTY for i in range(len(records))]):
            for mode in MODES:
                direct = _printed(mode, ds, records, extras, direct=True)
                decoded = _printed(mode, ds, records, extras, direct=False)
                assert direct.splitlines() == decoded.splitlines(), (mode, extras is None)
            lines = _printed("json", ds, records, extras, direct=True).splitlines()
            assert len(lines) == len(records)
            decoded_lines = _printed("json", ds, records, extras, direct=False).splitlines()
            for line, ev in zip(lines, decoded_lines, strict=True):
                assert json.loads(line) == json.loads(ev)


def test_json_lines_from_records_of_every_value_kind(monkeypatch) -> None:
    """The direct JSON path over the kinds the sample gadgets lack: floats, bools,
    integer arrays, bytes, enums (named and bit sets), long strings, json.skip, a name
    with '%', a field under a container field's name (which the direct path leaves to
    decode-then-print)."""
    import struct

    from gadgetsmith.runtime.bpf.fields import Field
    from gadgetsmith.runtime.events.decode import Decoder
    from gadgetsmith.runtime.events.enrichment import EMPTY
    from gadgetsmith.runtime.events.jsonline import records_writer
    from gadgetsmith.runtime.pipeline.context import DataSource

    fields = [Field("f32", 0, 4, "float32"), Field("f64", 4, 8, "float64"),
              Field("ok", 12, 1, "bool"), Field("arr", 16, 8, "array", elem_kind="uint16", nelems=4),
              Field("blob", 24, 4, "bytes"),
              Field("state_raw", 28, 4, "enum", enum_name="state", elem_kind="uint32",
                    enum_values=[("ON", 1), ("OFF", 2)]),
              Field("bits_raw", 32, 4, "enum", enum_name="flag_set", elem_kind="uint32",
                    enum_values=[("A", 1), ("B", 2), ("C", 4)]),
              Field("p%s.x", 36, 4, "int32"), Field("path", 40, 100, "string"),
              Field("hidden", 140, 4, "uint32")]
    dec = Decoder(fields, 144, {"hidden": {"json.skip": "true"}})
    rng = random.Random(3)
    records = [struct.pack("<f", rng.choice([0.1, 1500.0, 1e-7, -2.5])) + bytes(
        rng.getrandbits(8) for _ in range(140)) for _ in range(200)]
    records += [r[:12] + b"\1" + r[13:40] + "/tmp/caf\u00e9\"\n".encode().ljust(100, b"\0") + r[140:]
                for r in records[:20]]
    ds = DataSource("events", "tracer", dec)
    assert records_writer(dec, frozenset({"hidden"})) is not None
    for extras in (None, [EMPTY] * len(records)):
        direct = _printed("json", ds, records, extras, direct=True)
        assert direct == _printed("json", ds, records, extras, direct=False)
        assert '"hidden"' not in direct and '"p%s":{"x"' in direct
    clash = Decoder([Field("k8s.node", 0, 4, "uint32")], 4)
    assert records_writer(clash, spliced=("k8s", "runtime")) is None
    assert records_writer(clash) is not None
