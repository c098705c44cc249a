"""Inspektor Gadget's ``--filter`` syntax: ``field==v,field!=v,field~regex,...`` (AND).

Operators: ``==``/``=``, ``!=``, ``>=``, ``>``, ``<=``, ``<``, ``~`` (regex), ``!~``.
A backslash escapes a literal comma. Values are parsed by the field's type; a field that
holds a name derived from a number (``error``: an errno name, ``sig``: a signal name)
only takes names that exist, so a typo is an error instead of a filter that never matches.
An empty condition (``a==1,,b==2``, a lone ``,``) is an error too.
"""

from __future__ import annotations

import errno
import operator
import re
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gadgetsmith.runtime.errors import FilterError

_OPS = ("!~", "==", "!=", ">=", "<=", "=", ">", "<", "~")
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
    "<": operator.lt, "<=": operator.le,
}


def _errno_names() -> set[str]:
    return set(errno.errorcode.values())


def _signal_names() -> set[str]:
    return {s.name for s in signal.Signals}


#: kinds of fields whose values are names from a fixed set: (what they are, the names, examples)
NAMED_KINDS: dict[str, tuple[str, Callable[[], set[str]], str]] = {
    "errno": ("an errno name", _errno_names, "ENOENT, EACCES; '' for no error"),
    "signal": ("a signal name", _signal_names, "SIGKILL, SIGUSR1"),
}


@dataclass
class Rule:
    field: str
    op: str
    value: str

    def compile(self, kind: str) -> Callable[[dict[str, Any]], bool]:
        f, op, raw = self.field, self.op, self.value
        if kind in NAMED_KINDS:
            self._check_name(kind)
            kind = "string"
        if op in ("~", "!~"):
            if kind != "string":
                raise FilterError(f"filter {f}{op}{raw}: regular expressions need a string field")
            try:
                rx = re.compile(raw)
            except re.error as e:
                raise FilterError(f"filter {f}{op}{raw}: bad regular expression: {e}") from None
            neg = op == "!~"
            return lambda ev: (rx.search(str(ev.get(f, ""))) is None) == neg
        if kind == "bool":
            low = raw.lower()
            if low not in ("true", "false", "1", "0") or op not in ("==", "=", "!="):
                raise FilterError(f"filter {f}{op}{raw}: booleans support ==/!= true|false")
            want = low in ("true", "1")
            return (lambda ev: bool(ev.get(f)) == want) if op != "!=" else (
                lambda ev: bool(ev.get(f)) != want)
        if kind == "int":
            try:
                value: Any = int(raw, 0)
            except ValueError:
                raise FilterError(f"filter {f}{op}{raw}: {f} is a number, {raw!r} is not") from None
        elif kind == "float":
            try:
                value = float(raw)
            except ValueError:
                raise FilterError(f"filter {f}{op}{raw}: {f} is a number, {raw!r} is not") from None
        else:
            value = raw
        cmp = _COMPARE[op]
        return lambda ev: f in ev and bool(cmp(ev[f], value))


    def _check_name(self, kind: str) -> None:
        f, op, raw = self.field, self.op, self.value
        what, names, examples = NAMED_KINDS[kind]
        if op in ("~", "!~"):
            return
        if op not in ("==", "=", "!="):
            raise FilterError(f"filter {f}{op}{raw}: {f} holds {what}: use ==, != or ~")
        if raw and raw not in names():
            hint = f"; for the number use {f}_raw{op}{raw}" if raw.lstrip("-").isdigit() else ""
            raise FilterError(f"filter {f}{op}{raw}: {raw!r} is not {what} (e.g. {examples}){hint}")


def split_rules(expr: str) -> list[str]:
    parts, cur, i = [], "", 0
    while i < len(expr):
        c = expr[i]
        if c == "\\" and i + 1 < len(expr) and expr[i + 1] == ",":
            cur += ","
            i += 2
            continue
        if c == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(cur)
    return [x.strip() for x in parts]


def parse(expr: str) -> list[Rule]:
    rules = []
    for text in split_rules(expr):
        if not text:
            raise FilterError(f"filter {expr!r}: empty condition (a comma too many, or at the "
                              "start or end): write <field><op><value>[,<field><op><value>...]")
        m = re.match(r"^([A-Za-z0-9_.]+)\s*(" + "|".join(re.escape(o) for o in _OPS) + r")(.*)$", text)
        if not m:
            raise FilterError(f"filter {text!r}: expected <field><op><value> with op one of "
                              + " ".join(_OPS))
        rules.append(Rule(m.group(1), m.group(2), m.group(3)))
    return rules


def build(expr: str | None, field_kinds: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    """A predicate for ``expr``; unknown fields are an error naming the known ones."""
    if not expr:
        return lambda ev: True
    preds = []
    for rule in parse(expr):
        if rule.field not in field_kinds:
            close = [k for k in field_kinds if k.endswith(rule.field.rsplit(".", 1)[-1])]
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise FilterError(f"filter: unknown field {rule.field!r}{hint}")
        preds.append(rule.compile(field_kinds[rule.field]))
    return lambda ev: all(p(ev) for p in preds)


def kinds_from_sample(names: Iterable[str], sample: dict[str, Any]) -> dict[str, str]:
    out = {}
    for n in names:
        v = sample.get(n)
        out[n] = ("bool" if isinstance(v, bool) else "int" if isinstance(v, int)
                  else "float" if isinstance(v, float) else "string")
    return out
