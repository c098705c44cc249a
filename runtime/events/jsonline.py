"""JSON lines straight from raw records: one function generated per record layout.

``gadget run -o json`` prints most batches as they were read: no stage looked at their
events (no ``--filter``, ``--fields``, WASM module, processors, endpoint or stack
formatters). For those, :func:`records_writer` generates, from the decoder's plan, one
function that turns each record into its JSON line in one step (one struct unpack, each
value written as the JSON printer writes it, keys nested and sorted, the container
enrichment spliced as its pre-rendered text) instead of decoding to a dict and encoding
that. The text is the one decode-then-print gives (tests/integration/test_hotpath.py
compares them for every sample gadget).
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from gadgetsmith.runtime.events import formatters as fmt
from gadgetsmith.runtime.events.decode import Decoder, Step, shortest_float32
from gadgetsmith.runtime.events.output import dumps, go_float, key_tree, template_text

if TYPE_CHECKING:
    from gadgetsmith.runtime.events.enrichment import Enrichment

#: ``(records, their enrichments or None) -> the JSON lines of the records``
Writer = Callable[[list[bytes], "list[Enrichment] | None"], str]
#: one key's (template placeholders, argument expression or one per placeholder)
Leaf = tuple[str, str | tuple[str, ...]]


class _JsonMemo(dict[Any, str]):
    """A value -> its JSON text through ``fn``, filled on first use; bounded."""

    def __init__(self, fn: Callable[[Any], str]) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, v: Any) -> str:
        out = self.fn(v)
        if len(self) >= 4096:
            self.clear()
        self[v] = out
        return out


def _text_json(raw: bytes) -> str:
    return encode_basestring_ascii(raw.split(b"\0", 1)[0].decode("utf-8", "replace"))


def _read_leaf(f: Any, code: str, at: int) -> Leaf:
    if f.kind == "float32":
        return "%s", f"_g(_f32(v[{at}]))"
    if code == "d":
        return "%s", f"_g(v[{at}])"
    if code == "?":
        return "%s", f"_bool[v[{at}]]"
    return "%s", f"str(v[{at}])"  # what %d writes, in half the time


def _leaves(k: int, st: Step, at: int, count: int, env: dict[str, Any]) -> dict[str, Leaf]:
    """The keys step ``k`` writes and each one's JSON (the decoder's ``_item``, encoded)."""
    kind, f = st[0], st[1]
    if kind == "read":
        return {f.name: _read_leaf(f, st[2], at)}
    if kind == "string" and f.size <= 64:
        env["_strs"] = _JsonMemo(_text_json)  # short strings (comm, names) repeat
        return {f.name: ("%s", f"_strs[v[{at}]]")}
    if kind == "string":
        return {f.name: ("%s", f"_text(v[{at}])")}
    if kind == "array":
        return {f.name: ("%s", f"_d(list(v[{at}:{at + count}]))")}
    if kind == "blob":
        return {f.name: ('"%s"', f"v[{at}].hex()")}
    if kind == "enum" and st[3] is None:
        bits, sep = [(nm, bit) for nm, bit in f.enum_values if bit], st[4]
        env[f"_j{k}"] = _JsonMemo(lambda x: encode_basestring_ascii(
            sep.join(nm for nm, bit in bits if x & bit == bit)))
        return {st[2]: ("%s", f"_j{k}[v[{at}]]")}
    if kind == "enum":
        values = st[3]
        env[f"_j{k}"] = _JsonMemo(lambda x: encode_basestring_ascii(values.get(x, "UNKNOWN")))
        return {st[2]: ("%s", f"_j{k}[v[{at}]]")}
    if kind == "derive":
        derive = st[3]
        env[f"_j{k}"] = _JsonMemo(lambda x: dumps(derive(x)))
        return {st[2]: ("%s", f"_j{k}[v[{at}]]")}
    # ts: the raw field is the wall clock w{k}; its text is the second's parts around the
    # nanoseconds (formatters.timestamp_string)
    out: dict[str, Leaf] = {f.name: ("%s", f"r{k}")}
    if st[2]:
        out[st[2]] = ('"%s.%s%s"', (f"p{k}[1]", f"n{k}", f"p{k}[2]"))
    return out


def _ts_lines(k: int, at: int, named: bool) -> list[str]:
    """The wall clock ``w``, its digits ``r``, and for the text the digits of its second
    ``s`` and nanoseconds ``n`` (the last nine) and the second's parts ``p``."""
    lines = [f"w{k} = v[{at}] + _boot if v[{at}] else _clock(_REALTIME)", f"r{k} = str(w{k})"]
    if named:
        lines += [f"s{k}, n{k} = (r{k}[:-9], r{k}[-9:]) if w{k} >= 1000000000 else ('0', '%09d' % w{k})",
                  f"p{k} = _tsc[0] if _tsc[0][0] == s{k} else _second(s{k})"]
    return lines


class _Object:
    """A nested object of the line whose values all come from one byte range of the
    record (``proc``: a process's comm, pids, creds ...): its JSON text is memoised by
    those bytes (events of one process repeat them)."""

    __slots__ = ("lo", "hi", "tree")

    def __init__(self, tree: dict[str, Any], lo: int, hi: int) -> None:
        self.tree, self.lo, self.hi = tree, lo, hi


def _span(node: Any, ranges: dict[str, tuple[int, int] | None]) -> tuple[int, int] | None:
    """The byte range the values under ``node`` are read from; None when one is not read
    from the record alone (a timestamp: the wall clock)."""
    if not isinstance(node, dict):
        return ranges.get(node)
    spans = [_span(v, ranges) for v in node.values()]
    if not spans or any(sp is None for sp in spans):
        return None
    return min(sp[0] for sp in spans if sp), max(sp[1] for sp in spans if sp)


def _memoise(tree: dict[str, Any], ranges: dict[str, tuple[int, int] | None]) -> dict[str, Any]:
    """``tree`` with each nested object of two or more values that :func:`_span` finds
    a range for made an :class:`_Object` (the outermost one)."""
    out: dict[str, Any] = {}
    for name, node in tree.items():
        span = _span(node, ranges) if isinstance(node, dict) and len(node) > 1 else None
        if span is not None:
            out[name] = _Object(node, *span)
        else:
            out[name] = _memoise(node, ranges) if isinstance(node, dict) else node
    return out


def records_writer(decoder: Decoder, skip: frozenset[str] = frozenset(),
                   spliced: tuple[str, ...] = ()) -> Writer | None:
    """The generated writer of ``decoder``'s records as JSON lines, without the fields
    ``skip`` (``json.skip``), with each name of ``spliced`` (``"k8s"``, ``"runtime"``)
    taken from each record's ``Enrichment.json``; None when the decoder has no plan for
    it (overlapping fields, bytes kept raw for a WASM module, a record rest) or a field
    lives under a spliced name."""
    plan = decoder.plan()
    if plan is None or decoder.raw_fields or decoder.rest is not None:
        return None
    form, index, steps = plan
    env: dict[str, Any] = {
        "_full": struct.Struct(form).unpack_from, "_g": go_float, "_f32": shortest_float32,
        "_bool": {False: "false", True: "true"}, "_text": _text_json, "_d": dumps,
        "_boot": decoder.boot_offset, "_clock": time.clock_gettime_ns,
        "_REALTIME": time.CLOCK_REALTIME, "_tsc": [("", "", "")]}
    env["_second"] = _second(env["_tsc"])
    leaves, ranges, writers = _leaves_of(steps, index, env)
    if set(leaves) != set(decoder.decode(bytes(decoder.size))):
        return None  # a plan this writer does not know: decode, then print
    tree = key_tree(tuple(name for name in leaves if name not in skip),
                    {name: name for name in spliced})
    if tree is None:
        return None
    tree = _memoise(tree, ranges)
    # the line itself unpacks only the fields outside the memoised objects
    fields = {steps[writers[name]][1].name for name in _top_leaves(tree, spliced)}
    fields |= {st[1].name for st in steps if st[0] == "ts"}
    top_form, top_index = _layout(steps, fields)
    env["_unpack"] = struct.Struct(top_form).unpack_from
    top, _, _ = _leaves_of([st for st in steps if st[1].name in fields], top_index, env)
    pre = [line for k, st in enumerate(steps) if st[0] == "ts"
           for line in _ts_lines(k, top_index[st[1].name][0], bool(st[2]))]
    text, args = _template(tree, top, leaves, spliced, pre, env)
    env["_t"] = text + "\n"
    return _compile(env, decoder.size, pre, args, bool(spliced))


def _leaves_of(steps: list[Step], index: dict[str, tuple[int, int]], env: dict[str, Any],
               ) -> tuple[dict[str, Leaf], dict[str, tuple[int, int] | None], dict[str, int]]:
    """Each key's leaf (``v`` unpacked with ``index``), the byte range its value is read
    from (None: not from the record alone) and the step that writes it."""
    leaves: dict[str, Leaf] = {}
    ranges: dict[str, tuple[int, int] | None] = {}
    writers: dict[str, int] = {}
    for st in steps:
        k = _step_number(st, env)
        at, count = index.get(st[1].name, (0, 0))
        new = _leaves(k, st, at, count, env)
        leaves.update(new)
        f = st[1]
        for name in new:
            ranges[name] = None if st[0] == "ts" else (f.offset, f.offset + f.size)
            writers[name] = k
    return leaves, ranges, writers


def _step_number(st: Step, env: dict[str, Any]) -> int:
    """A step's number, the same in every pass (its memos' names in ``env``)."""
    numbers: dict[int, int] = env.setdefault("_steps", {})
    return numbers.setdefault(id(st), len(numbers))


def _top_leaves(tree: dict[str, Any], spliced: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for node in tree.values():
        if isinstance(node, dict):
            out += _top_leaves(node, spliced)
        elif isinstance(node, str) and node not in spliced:
            out.append(node)
    return out


def _layout(steps: list[Step], fields: set[str]) -> tuple[str, dict[str, tuple[int, int]]]:
    """A struct format reading only ``fields`` (in offset order; the plan's own reads do
    not overlap), and where each one's values are in its result."""
    reads = sorted((st[1].offset, st[1].name, st[2]) for st in steps
                   if st[0] in ("read", "string", "array", "blob") and st[1].name in fields)
    parts, pos, index, n = ["<"], 0, {}, 0
    for off, name, code in reads:
        if off > pos:
            parts.append(f"{off - pos}x")
        parts.append(code)
        size = struct.calcsize("<" + code)
        count = len(struct.unpack("<" + code, bytes(size)))
        index[name], n, pos = (n, count), n + count, off + size
    return "".join(parts), index


def _template(tree: dict[str, Any], top: dict[str, Leaf], full: dict[str, Leaf],
              spliced: tuple[str, ...], pre: list[str], env: dict[str, Any],
              ) -> tuple[str, list[str]]:
    """The line's template and its arguments (``top``'s leaves); each memoised object's
    text is looked up by lines added to ``pre``, and made on a miss from the whole
    record unpacked (``full``'s leaves, by a generated ``_a<n>(v)``)."""
    args: list[str] = []

    def leaf(name: Any) -> str:
        if isinstance(name, _Object):
            n = env["_objects"] = env.get("_objects", 0) + 1
            env[f"_o{n}"] = {}
            sub, sub_args = _template(name.tree, full, full, (), pre, env)
            env[f"_ot{n}"] = sub
            exec(f"def _a{n}(v):\n    return ({', '.join(sub_args)},)\n", env)
            pre.extend([f"k{n} = raw[{name.lo}:{name.hi}]",
                        f"o{n} = _o{n}.get(k{n})",
                        f"if o{n} is None:",
                        f"    if len(_o{n}) >= 4096:",
                        f"        _o{n}.clear()",
                        f"    o{n} = _o{n}[k{n}] = _ot{n} % _a{n}(_full(raw))"])
            args.append(f"o{n}")
            return "%s"
        if name in spliced:
            args.append(f"x[{name!r}]")
            return "%s"
        placeholder, arg = top[name]
        args.extend(arg if isinstance(arg, tuple) else (arg,))
        return placeholder

    return template_text(tree, leaf), args


def _second(cache: list[tuple[str, str, str]]) -> Callable[[str], tuple[str, str, str]]:
    """The parts of the second whose digits are given, kept in ``cache``."""

    def second(digits: str) -> tuple[str, str, str]:
        _, date, zone = fmt.second_parts(int(digits))
        cache[0] = (digits, date, zone)
        return cache[0]

    return second


def _pieces(template: str, args: list[str]) -> list[str]:
    """The template's literal text and its arguments in order, as expressions."""
    out: list[str] = []
    text, it = "", iter(args)
    for token in re.split(r"(%%|%s)", template):
        if token == "%s":
            out += [repr(text), next(it)] if text else [next(it)]
            text = ""
        else:
            text += "%" if token == "%%" else token
    return out + [repr(text)] if text else out


def _compile(env: dict[str, Any], size: int, pre: list[str], args: list[str],
             spliced: bool) -> Writer:
    """The writer: each record's pieces (every argument is text) added to one list, joined
    once per batch (a %-formatted line per record, then the join, copies all twice)."""
    loop = ("for raw, e in zip(records, extras, strict=True):\n        x = e.json"
            if spliced else "for raw in records:")
    src = "\n".join([
        "def write(records, extras):",
        "    out = []",
        "    add = out.extend",
        f"    {loop}",
        f"        if len(raw) < {size}:",
        f"            raw = raw + bytes({size} - len(raw))",
        "        v = _unpack(raw)",
        *(f"        {line}" for line in pre),
        f"        add(({', '.join(_pieces(env['_t'], args))},))",
        "    return ''.join(out)",
    ])
    exec(compile(src, "<json lines writer>", "exec"), env)
    writer: Writer = env["write"]
    return writer


__all__ = ["Writer", "records_writer"]
