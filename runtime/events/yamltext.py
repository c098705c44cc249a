"""YAML text of an event, for ``-o yaml``: block style, keys sorted, ASCII only.

What an event holds (nested dicts of str keys; str, int, float, bool and None values;
lists) is written exactly as ``yaml.safe_dump(event, sort_keys=True)`` of PyYAML writes
it, which is what ``gadget run -o yaml`` printed before the runtime had no YAML library
of its own: the same choice of plain, single-quoted or double-quoted scalars (YAML 1.1's
implicit types decide which strings must be quoted), the same folding of long scalars
at 80 columns, ``{}``/``[]`` for empty collections, sequences in a mapping not indented.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

WIDTH = 80  # columns before a scalar is folded at a space
INDENT = 2

#: YAML 1.1 plain scalars that are not strings: such a string must be quoted (compiled on
#: first use: 6 ms that a run not printing YAML does not pay)
_IMPLICIT_SOURCE = r"""^(?:
      yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
    | [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    | \.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
    | [-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+
    | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
    | << | ~ | null | Null | NULL | = | ! | & | \*
    | [0-9]{4}-[0-9]{2}-[0-9]{2}
    | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?
      (?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?
    )$"""


@functools.cache
def _implicit() -> re.Pattern[str]:
    return re.compile(_IMPLICIT_SOURCE, re.X)

_BREAKS = "\n\x85\u2028\u2029"
_SPACES = "\0 \t\r" + _BREAKS
_ESCAPES = {"\0": "0", "\x07": "a", "\x08": "b", "\t": "t", "\n": "n", "\x0b": "v", "\x0c": "f",
            "\r": "r", "\x1b": "e", '"': '"', "\\": "\\", "\x85": "N", "\xa0": "_",
            "\u2028": "L", "\u2029": "P"}


#: a text that is a plain scalar in any context when it is not one of _implicit(): no
#: indicator first, no space, no character a plain scalar cannot hold, nothing to fold
_SIMPLE = re.compile(r"[A-Za-z0-9_/(][A-Za-z0-9_/.()|+=<>@$^-]*\Z")


def dump(data: Any) -> str:
    """One YAML document (no ``---``) ending in a newline."""
    e = _Emitter()
    e.node(data, None, context="root")
    e.indent(0)  # the document's end
    return "".join(e.out)


def _scalar_text(v: Any) -> tuple[str, bool]:
    """(text, whether it must not be a plain scalar unless it is a string) of a value."""
    if v is None:
        return "null", False
    if v is True or v is False:
        return ("true" if v else "false"), False
    if isinstance(v, int):
        return str(v), False
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan", False
        if math.isinf(v):
            return (".inf" if v > 0 else "-.inf"), False
        text = repr(v).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)
        return text, False
    text = str(v)
    return text, _implicit().match(text) is not None


class _Analysis:
    """Which scalar styles can hold a text (YAML's rules for block context)."""

    __slots__ = ("empty", "multiline", "plain", "single")

    def __init__(self, text: str) -> None:
        self.empty = not text
        block = breaks = special = False  # block: an indicator rules out a plain scalar
        lead_space = lead_break = trail_space = trail_break = False
        space_break = break_space = prev_space = prev_break = False
        if text.startswith(("---", "...")):
            block = True
        n = len(text)
        for i, ch in enumerate(text):
            before_ws = i == 0 or text[i - 1] in _SPACES
            after_ws = i + 1 >= n or text[i + 1] in _SPACES
            if i == 0:
                if ch in "#,[]{}&*!|>'\"%@`" or (ch == "-" and after_ws):
                    block = True
                elif ch in "?:":
                    block = block or after_ws
            else:
                if ch == ":":
                    block = block or after_ws
                if ch == "#" and before_ws:
                    block = True
            if ch in _BREAKS:
                breaks = True
            if not (ch == "\n" or " " <= ch <= "~"):
                special = True  # non-ASCII too: the output is ASCII
            if ch == " ":
                lead_space = lead_space or i == 0
                trail_space = trail_space or i == n - 1
                break_space = break_space or prev_break
                prev_space, prev_break = True, False
            elif ch in _BREAKS:
                lead_break = lead_break or i == 0
                trail_break = trail_break or i == n - 1
                space_break = space_break or prev_space
                prev_space, prev_break = False, True
            else:
                prev_space = prev_break = False
        plain = not (lead_space or lead_break or trail_space or trail_break or break_space
                     or space_break or special or breaks or block) and not self.empty
        self.multiline = breaks
        self.plain = plain
        self.single = not (break_space or space_break or special)


class _Emitter:
    """The state of the text written so far (column, whether it ends in whitespace or an
    indentation), as a YAML emitter keeps it."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.column = 0
        self.whitespace = True
        self.indention = True

    # -- primitives ----------------------------------------------------------------------
    def write(self, text: str) -> None:
        self.column += len(text)
        self.out.append(text)

    def line_break(self, text: str = "\n") -> None:
        self.whitespace = self.indention = True
        self.column = 0
        self.out.append(text)

    def indent(self, indent: int) -> None:
        if not self.indention or self.column > indent or (self.column == indent and not self.whitespace):
            self.line_break()
        if self.column < indent:
            self.whitespace = True
            self.write(" " * (indent - self.column))

    def indicator(self, text: str, need_space: bool, whitespace: bool = False,
                  indention: bool = False) -> None:
        self.write(text if self.whitespace or not need_space else " " + text)
        self.whitespace = whitespace
        self.indention = self.indention and indention

    # -- nodes ---------------------------------------------------------------------------
    def node(self, v: Any, indent: int | None, context: str) -> None:
        """``v`` in ``context``: root, key, value (of a mapping) or item (of a sequence);
        ``indent`` is the enclosing collection's."""
        if isinstance(v, dict) and v:
            self.mapping(v, indent)
        elif isinstance(v, list | tuple) and v:
            self.sequence(list(v), indent, indentless=context == "value" and not self.indention)
        elif isinstance(v, dict | list | tuple):
            self.indicator("{" if isinstance(v, dict) else "[", True, whitespace=True)
            self.indicator("}" if isinstance(v, dict) else "]", False)
        else:
            self.scalar(v, INDENT if indent is None else indent + INDENT, key=context == "key")

    def mapping(self, m: dict[Any, Any], outer: int | None) -> None:
        indent = 0 if outer is None else outer + INDENT
        for k in sorted(m):
            self.indent(indent)
            if type(k) is str and len(k) < 120 and _SIMPLE.match(k) and not _implicit().match(k):
                self.write(k if self.whitespace else " " + k)  # a plain simple key
                self.write(":")
                self.whitespace = self.indention = False
                self.node(m[k], indent, context="value")
                continue
            text = k if isinstance(k, str) else _scalar_text(k)[0]
            # a simple key is under 128 characters with its tag (``!!str``) counted
            if len(text) + len("!!str") < 128 and text and not _Analysis(text).multiline:
                self.node(k, indent, context="key")
                self.indicator(":", False)
            else:
                self.indicator("?", True, indention=True)
                self.node(k, indent, context="value")
                self.indent(indent)
                self.indicator(":", True, indention=True)
            self.node(m[k], indent, context="value")

    def sequence(self, items: list[Any], outer: int | None, indentless: bool) -> None:
        indent = 0 if outer is None else outer if indentless else outer + INDENT
        for item in items:
            self.indent(indent)
            self.indicator("-", True, indention=True)
            self.node(item, indent, context="item")

    def scalar(self, v: Any, indent: int, key: bool) -> None:
        if type(v) is str and len(v) < 120 and _SIMPLE.match(v) and not _implicit().match(v):
            self.write(v if self.whitespace else " " + v)  # most of an event's texts
            self.whitespace = self.indention = False
            return
        if type(v) is int:
            text = str(v)
            self.write(text if self.whitespace else " " + text)
            self.whitespace = self.indention = False
            return
        text, not_plain = _scalar_text(v)
        if not isinstance(v, str):
            not_plain = False  # its text is its type's own plain form
        a = _Analysis(text)
        split = not key
        if a.plain and not not_plain and not (key and (a.empty or a.multiline)):
            self.plain(text, indent, split)
        elif a.single and not (key and a.multiline):
            self.single_quoted(text, indent, split)
        else:
            self.double_quoted(text, indent, split)

    # -- scalar styles -------------------------------------------------------------------
    def plain(self, text: str, indent: int, split: bool) -> None:
        if not text:
            return
        if not self.whitespace:
            self.write(" ")
        self.whitespace = self.indention = False
        start = 0
        for end, ch in _ends(text):
            if start < end and text[start] == " ":  # a run of spaces ends here
                if ch != " ":
                    if start + 1 == end and self.column > WIDTH and split:
                        self.indent(indent)
                        self.whitespace = self.indention = False
                    else:
                        self.write(text[start:end])
                    start = end
            elif ch is None or ch == " ":
                self.write(text[start:end])
                start = end

    def single_quoted(self, text: str, indent: int, split: bool) -> None:
        self.indicator("'", True)
        start = 0
        for end, ch in _ends(text):
            run = text[start] if start < end else ""
            if run == " ":
                if ch != " ":
                    if start + 1 == end and self.column > WIDTH and split and start != 0 \
                            and end != len(text):
                        self.indent(indent)
                    else:
                        self.write(text[start:end])
                    start = end
            elif run and run in _BREAKS:
                if ch is None or ch not in _BREAKS:
                    if run == "\n":
                        self.line_break()
                    for br in text[start:end]:
                        self.line_break(br)
                    self.indent(indent)
                    start = end
            elif (ch is None or ch in " '" or ch in _BREAKS) and start < end:
                self.write(text[start:end])
                start = end
            if ch == "'":
                self.write("''")
                start = end + 1
        self.indicator("'", False)

    def double_quoted(self, text: str, indent: int, split: bool) -> None:
        self.indicator('"', True)
        start = 0
        n = len(text)
        for end, ch in _ends(text):
            if ch is None or ch in '"\\\x85\u2028\u2029\ufeff' or not " " <= ch <= "~":
                if start < end:
                    self.write(text[start:end])
                    start = end
                if ch is not None:
                    self.write(_escape(ch))
                    start = end + 1
            if 0 < end < n - 1 and (ch == " " or start >= end) \
                    and self.column + (end - start) > WIDTH and split:
                self.write(text[start:end] + "\\")
                start = max(start, end)
                self.indent(indent)
                self.whitespace = self.indention = False
                if text[start] == " ":
                    self.write("\\")
        self.indicator('"', False)


def _ends(text: str) -> list[tuple[int, str | None]]:
    """Each position of ``text`` with its character, then the end with None."""
    return [*enumerate(text), (len(text), None)]


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return "\\" + _ESCAPES[ch]
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


__all__ = ["dump"]
