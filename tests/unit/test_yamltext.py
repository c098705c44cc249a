"""`gadget run -o yaml` writes events with the runtime's own emitter (runtime/events/yamltext.py).
Its text must be what PyYAML's ``safe_dump(event, sort_keys=True)`` wrote before, for every
kind of value an event holds: compared here on hand-picked hard cases and on thousands of
generated events (while PyYAML is installed), and read back by ruamel as the same data."""

from __future__ import annotations

import copy
import io
import random

import pytest
from gadgetsmith.runtime.events import yamltext
from ruamel.yaml import YAML

yaml = pytest.importorskip("yaml")  # the reference; the runtime itself does not use it

HARD_TEXTS = [
    "", " ", "a", "yes", "No", "ON", "off", "true", "False", "null", "Null", "~", "=", "<<",
    "1", "-1", "+1", "007", "0x1F", "0b101", "1_000", "1.5", ".5", "1e3", "1.0e+3", "-.inf",
    ".NaN", "1:30", "190:20:30.15", "2026-12-01", "2026-12-01 10:00:00", "2026-12-01T10:00:00Z",
    "2026-12-01T23:54:00.123456789Z", "O_RDONLY|O_CLOEXEC", "----------", "-rw-r--r--", "-", "- a",
    "--- x", "...", "a: b", "a:b", "key:", ":x", "? q", "?x", "# c", "a #b", "a#b", "[x]", "{y}",
    "a,b", "&anchor", "*ref", "!tag", "%p", "@at", "`tick", "|", ">", "'single'", '"double"',
    "it's", "back\\slash", "tab\there", "line\nbreak", "two\n\nbreaks", "trail\n", "\nlead",
    " lead space", "trail space ", "a  b", "caf\u00e9", "\u2028sep", "nul\0", "\x07bell", "\ufeffbom",
    "\U0001f600 smile", "/usr/bin/cat", "C:\\path", "127.0.0.1:8080", "[::1]:53",
    "tcp_v4_connect; __sys_connect; ",
    " ".join(["word"] * 30), "x" * 130, ("long " * 40).strip(), ("it's quoted " * 12).strip(),
    ("line\n" * 5), ("a" * 70 + " " + "b" * 20 + " c"), "é" * 50 + " " + "é" * 50,
]
HARD_VALUES = [0, 1, -1, 2**63, -(2**63), 2**64 + 1, 0.0, -0.0, 1.5, 1e300, 1e-300, 3.0e16,
               float("inf"), float("-inf"), float("nan"), True, False, None, [], {}, [1, "a"],
               [[1, 2], []], [{"a": 1, "b": [2]}, {}]]


def ruamel_load(text: str) -> object:
    return YAML(typ="safe", pure=True).load(io.StringIO(text))


def same(v: object) -> None:
    assert yamltext.dump(v) == yaml.safe_dump(v, sort_keys=True), repr(v)


@pytest.mark.parametrize("text", HARD_TEXTS)
def test_a_text_as_value_key_and_list_item(text: str) -> None:
    same({"v": text})
    same({text: 1, "other": text})
    same({"list": [text, text]})
    same({"proc": {"comm": text, "parent": {"comm": text}}})


@pytest.mark.parametrize("value", HARD_VALUES, ids=repr)
def test_a_value(value: object) -> None:
    same({"v": value})
    same({"nested": {"list": [value, {"x": copy.deepcopy(value)}]}})  # no shared objects


def _text(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return rng.choice(HARD_TEXTS)
    alphabet = "abcXYZ019 _-:#,'\"\\/.|!&*?[]{}%@`\t\n\u00e9\u2028"
    n = rng.choice([1, 2, 5, 20, 90])
    return "".join(rng.choice(alphabet) for _ in range(n))


def _value(rng: random.Random, depth: int) -> object:
    r = rng.random()
    if depth < 3 and r < 0.12:
        return {_text(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if depth < 3 and r < 0.2:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if r < 0.55:
        return _text(rng)
    if r < 0.75:
        return rng.choice([rng.randint(-10, 10), rng.getrandbits(64), -rng.getrandbits(40)])
    if r < 0.85:
        return rng.choice([rng.random() * 10 ** rng.randint(-20, 20), -1.25, 100.0])
    return rng.choice(HARD_VALUES[15:18])


def test_generated_events_are_written_as_pyyaml_wrote_them() -> None:
    rng = random.Random(19)
    for _ in range(3000):
        ev = {_text(rng): _value(rng, 1) for _ in range(rng.randint(1, 8))}
        text = yamltext.dump(ev)
        assert text == yaml.safe_dump(ev, sort_keys=True), repr(ev)
        assert text.isascii()


def test_events_like_the_sample_gadgets_read_back_as_the_same_data() -> None:
    ev = {"error": "ENOENT", "fd": 0, "flags": "O_RDONLY|O_CLOEXEC", "flags_raw": 524288,
          "fname": "/etc/host name: x", "mode": "----------", "timestamp": "2026-12-01T23:54:00Z",
          "proc": {"comm": "cat", "creds": {"uid": 0, "gid": 0}, "pid": 4567,
                   "parent": {"comm": "bash", "pid": 1}},
          "kstack": "tcp_v4_connect; __sys_connect; ", "args": ["a", "", "yes"], "empty": {}}
    assert ruamel_load(yamltext.dump(ev)) == ev
    same(ev)
