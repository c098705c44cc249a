"""Matchers: what one field of an event must be.

A :class:`FieldMatcher` is one ``field: matcher`` entry of an expectation: a plain value
(equality) or a mapping of operators that must all hold. Values may be templates; a
template with several values (``{{ trigger.pid }}`` after three runs) holds when any of
them does. Comparison rules:

- equality compares numbers as numbers and anything else as text, so ``fd: 3`` and
  ``fd: "3"`` are the same and ``proc.pid: "{{ trigger.pid }}"`` compares the pid;
  booleans are ``true``/``false``, lists and mappings compare as JSON;
- ``gt``/``ge``/``lt``/``le`` need a number (an integer string counts);
- ``regex``/``notRegex`` use Python's ``re.search`` on the value's text;
- ``present: true`` is IG's normalized sentinel: any value but 0, "", false or empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gadgetsmith.toolchain.errors import FormatError
from gadgetsmith.toolchain.testing.templates import Template, Vars

#: the operators of a matcher mapping, in the order they are shown
OPERATORS = ("eq", "ne", "regex", "notRegex", "gt", "ge", "lt", "le", "oneOf", "contains",
             "present")
_SYMBOL = {"eq": "==", "ne": "!=", "regex": "~", "notRegex": "!~", "gt": ">", "ge": ">=",
           "lt": "<", "le": "<="}
#: what a masked (normalized) field holds instead of a value that is set
MASKED = "<present>"


class MatchError(FormatError):
    """A matcher that cannot be evaluated (a template that renders no number, a bad
    regular expression after rendering)."""


def text(v: Any) -> str:
    """The text a value compares as."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (list, dict)):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    return str(v)


def number(v: Any) -> float | int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        s = v.strip()
        try:
            return int(s, 0)
        except ValueError:
            pass
        try:
            return float(s)
        except ValueError:
            return None
    return None


def is_set(v: Any) -> bool:
    """IG's normalizers: a value counts as present unless it is the zero value."""
    return not (v is None or v is False or v == 0 or v == "" or v == [] or v == {})


def equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(
            equal(a, e) for a, e in zip(actual, expected, strict=True))
    a, e = number(actual), number(expected)
    if a is not None and e is not None and not isinstance(actual, str) and not isinstance(
            expected, bool):
        return a == e
    return text(actual) == text(expected)


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def compile_regex(pattern: str) -> re.Pattern[str]:
    """re.compile, with MatchError naming the problem."""
    try:
        return _regex(pattern)
    except re.error as e:
        raise MatchError(f"bad regular expression {pattern!r}: {e}") from None


Predicate = Callable[[Any], bool]


def _equal_to(candidates: list[Any]) -> Predicate:
    """``lambda a: any(equal(a, c) for c in candidates)``, with the texts and numbers
    worked out once."""
    if any(isinstance(c, list) for c in candidates):
        return lambda a: any(equal(a, c) for c in candidates)
    texts = {text(c) for c in candidates}
    nums = {n for c in candidates if not isinstance(c, bool) and (n := number(c)) is not None}

    def eq(a: Any) -> bool:
        t = type(a)
        if t is str:
            return a in texts
        if (t is int or t is float) and a in nums:
            return True
        return text(a) in texts

    return eq


def _shown(v: Any) -> str:
    """A value as a report shows it: JSON, with numbers from templates ("123") bare."""
    if isinstance(v, str) and number(v) is not None and v.strip().lstrip("-").isdigit():
        return v
    return json.dumps(v, default=str, ensure_ascii=False)


@dataclass(frozen=True)
class Check:
    """One operator; ``value`` is a literal, a Template, or a list of them (oneOf)."""

    op: str
    value: Any

    @property
    def templated(self) -> bool:
        vals = self.value if isinstance(self.value, list) else [self.value]
        return any(isinstance(v, Template) and not v.is_literal for v in vals)

    def _values(self, v: Any, variables: Vars, escape: Any = None) -> list[Any]:
        if isinstance(v, Template):
            return v.render(variables, escape)
        return [v]

    def holds(self, actual: Any, variables: Vars) -> bool:
        return self.compile(variables)(actual)

    def compile(self, variables: Vars) -> Predicate:
        """A predicate on the field's value with the templates rendered now (matching
        runs once per event and expectation: rendering and parsing happen here, once).
        KeyError names a template variable without a value, MatchError a value that
        cannot be compared (a bound that is not a number)."""
        op = self.op
        if op == "present":
            want = bool(self.value)
            return lambda a: is_set(a) == want
        if op in ("regex", "notRegex"):
            pats = [compile_regex(p) for p in self._values(self.value, variables, re.escape)]
            want = op == "regex"
            return lambda a: any(p.search(a if type(a) is str else text(a)) for p in pats) == want
        items = self.value if op == "oneOf" else [self.value]
        candidates = [c for item in items for c in self._values(item, variables)]
        if op in ("eq", "ne", "oneOf"):
            eq = _equal_to(candidates)
            return (lambda a: not eq(a)) if op == "ne" else eq
        if op == "contains":
            texts = [text(c) for c in candidates]
            return lambda a: (any(equal(x, c) for x in a for c in candidates) if isinstance(a, list)
                              else any(t in text(a) for t in texts))
        bounds = []
        for c in candidates:
            b = number(c)
            if b is None:
                raise MatchError(f"{op}: {text(c)!r} is not a number")
            bounds.append(b)
        cmp = {"gt": lambda x, b: x > b, "ge": lambda x, b: x >= b, "lt": lambda x, b: x < b,
               "le": lambda x, b: x <= b}[op]

        def bounded(a: Any) -> bool:
            x = number(a)
            return x is not None and any(cmp(x, b) for b in bounds)

        return bounded

    def describe(self, variables: Vars | None = None) -> str:
        """``== 'cat'``, ``>= 50``, ``present``; templates rendered when ``variables``
        gives their values, else shown as written."""
        def show(v: Any) -> str:
            if isinstance(v, Template):
                if variables is not None:
                    try:
                        vals = v.render(variables)
                    except KeyError:
                        vals = None
                    if vals:
                        return " or ".join(_shown(x) for x in vals)
                return json.dumps(v.text)
            return _shown(v)

        if self.op == "present":
            return "present (any value but 0 or empty)" if self.value else "absent (0 or empty)"
        if self.op == "oneOf":
            return "one of " + ", ".join(show(v) for v in self.value)
        if self.op == "contains":
            return f"contains {show(self.value)}"
        return f"{_SYMBOL[self.op]} {show(self.value)}"


@dataclass(frozen=True)
class FieldMatcher:
    field: str
    checks: tuple[Check, ...]
    path: tuple[Any, ...] = ()  # where it is in the spec (for messages)

    @property
    def templated(self) -> bool:
        return any(c.templated for c in self.checks)

    @property
    def only_presence(self) -> bool:
        return all(c.op == "present" for c in self.checks)

    def holds(self, event: dict[str, Any], variables: Vars) -> bool:
        return self.compile(variables)(event)

    def compile(self, variables: Vars) -> Callable[[dict[str, Any]], bool]:
        """A predicate on events (see :meth:`Check.compile`)."""
        preds = [c.compile(variables) for c in self.checks]
        name = self.field
        if len(preds) == 1:
            p = preds[0]
            return lambda ev: p(ev.get(name))
        return lambda ev: all(p(ev.get(name)) for p in preds)

    def describe(self, variables: Vars | None = None) -> str:
        return " and ".join(c.describe(variables) for c in self.checks)
