"""The wasm stage alone (no kernel: a data source with a decoder, batches of decoded
records), and the decoder's side of it: char arrays and bytes handed over raw, a
record's rest (IG's ebpf.rest.name)."""

from __future__ import annotations

import struct

from ..wasm_util import cmod, module_dir  # noqa: F401


def events_datasource():
    """A data source ``events`` (proc.comm char[16], proc.pid u32) as the object stage
    makes one."""
    from gadgetsmith.runtime.bpf.fields import Field
    from gadgetsmith.runtime.events.decode import Decoder
    from gadgetsmith.runtime.pipeline.context import DataSource

    fields = [Field("proc", 0, 20, "struct"), Field("proc.comm", 0, 16, "string", parent="proc"),
              Field("proc.pid", 16, 4, "uint32", parent="proc")]
    return DataSource("events", "tracer", Decoder(fields, 20), map_name="events")


def record(comm: bytes, pid: int) -> bytes:
    return comm.ljust(16, b"\0") + struct.pack("<I", pid)


def test_the_stage_changes_events_and_tells_the_pipeline(cmod):
    """The rename module reads proc.comm and proc.pid and adds label: after pre_start the
    label is a column and a field --filter may use, the module's char array is decoded
    raw for it (and shown as text after it), and the stage needs those fields."""
    from gadgetsmith.runtime.pipeline.context import RunContext
    from gadgetsmith.runtime.pipeline.stage import Batch
    from gadgetsmith.runtime.wasm.stage import WasmStage

    ds = events_datasource()
    ctx = RunContext(wasm=cmod("rename").read_bytes())
    ctx.add_datasource(ds)
    stage = WasmStage()
    try:
        stage.pre_start(ctx)
        stage.start(ctx)
        assert [c.name for c in ds.columns][-1] == "label" and ds.added == {"label": ""}
        assert ds.decoder.raw_fields == {"proc.comm"}
        assert stage.needs().fields == {"proc.comm", "proc.pid"} and not stage.needs().enrichment
        batch = Batch(ds, ds.decoder.decode_many([record(b"cat\0junk", 3), record(b"ls", 4)]))
        [out] = stage.process(batch)
        assert out.datasource is ds
        assert [(e["proc.comm"], e["label"]) for e in out.events] == [("cat", "Cat"), ("ls", "even")]
        stage.stop()
        assert stage.poll() == []
    finally:
        stage.close()


def test_without_a_module_the_stage_passes_batches_on():
    from gadgetsmith.runtime.pipeline.context import RunContext
    from gadgetsmith.runtime.pipeline.stage import Batch
    from gadgetsmith.runtime.wasm.stage import WasmStage

    ds = events_datasource()
    ctx = RunContext()
    ctx.add_datasource(ds)
    stage = WasmStage()
    stage.pre_start(ctx)
    batch = Batch(ds, [{"proc.comm": "x", "proc.pid": 1}])
    assert stage.process(batch) == [batch] and stage.describe() == "wasm"
    assert ds.decoder.raw_fields == frozenset()
    stage.close()


def test_a_records_rest():
    """ebpf.rest.name/ebpf.rest.len: the bytes after the struct, as many as the length
    field says, hex text (bytes when kept raw)."""
    from gadgetsmith.runtime.bpf.fields import Field
    from gadgetsmith.runtime.events.decode import Decoder

    dec = Decoder([Field("data_len", 0, 4, "uint32")], 4, rest=("data", "data_len"))
    assert dec.columns[-1].name == "data" and dec.columns[-1].hidden
    rec = struct.pack("<I", 3) + b"abcdef"
    assert dec.decode(rec) == {"data_len": 3, "data": "616263"}
    assert dec.decode_slow(rec) == {"data_len": 3, "data": "616263"}
    assert dec.decode(struct.pack("<I", 9) + b"ab")["data"] == "6162"   # what there is
    dec.keep_raw(["data"])
    assert dec.decode(rec)["data"] == b"abc"
    whole = Decoder([Field("n", 0, 4, "uint32")], 4, rest=("data", None))
    assert whole.decode(struct.pack("<I", 1) + b"xyz")["data"] == "78797a"


def test_char_arrays_and_bytes_kept_raw():
    from gadgetsmith.runtime.bpf.fields import Field
    from gadgetsmith.runtime.events.decode import Decoder

    fields = [Field("comm", 0, 16, "string"), Field("args", 16, 32, "string"),
              Field("blob", 48, 4, "bytes"), Field("n", 52, 4, "uint32")]
    dec = Decoder(fields, 56)
    rec = b"cat\0xx".ljust(16, b"\0") + b"a\0bc\0".ljust(32, b"\0") + b"\1\2\3\4" + struct.pack("<I", 7)
    assert dec.decode(rec) == {"comm": "cat", "args": "a", "blob": "01020304", "n": 7}
    dec.keep_raw(["args", "blob", "n", "nope"])     # only char arrays and bytes can be
    assert dec.raw_fields == {"args", "blob"}
    for ev in (dec.decode(rec), dec.decode_slow(rec)):
        assert ev == {"comm": "cat", "args": b"a\0bc".ljust(32, b"\0"), "blob": b"\1\2\3\4", "n": 7}
