"""``{{ name }}`` templates in test specs.

A template is text with ``{{ name }}`` parts. Names are dotted: ``case.id``, ``spec.dir``,
``env.HOME``, ``trigger.pid``. A name can have several values (``trigger.pid`` when a
trigger started several processes), so rendering gives every candidate text; a matcher
holds when one of them fits.

Which names exist depends on the phase: what runs before the gadget (params, filter,
trigger commands) sees the :data:`SETUP` names, matchers see :data:`EXPECT` names too.
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gadgetsmith.toolchain.errors import FormatError

_PART = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

#: names known before the gadget starts (the case's container is started first)
SETUP = ("case.id", "case.name", "spec.dir", "trigger.container.name", "trigger.container.id",
         "trigger.container.pid", "trigger.container.mntns")
#: names known once trigger steps ran (one value per process the trigger started)
TRIGGER = ("trigger.pid", "trigger.comm", "trigger.uid", "trigger.gid")
EXPECT = SETUP + TRIGGER

Vars = Mapping[str, Sequence[str]]


class TemplateError(FormatError):
    """A template that does not parse, or names something unknown in its phase."""


@dataclass(frozen=True)
class Template:
    text: str
    #: literal text and names, alternating: text, name, text, name, ..., text
    parts: tuple[str, ...]
    #: the last rendering, (variables, escape, texts), replaced as a whole (threads may
    #: share a spec): a matcher renders once per change of the variables, not per event
    _last: tuple[Any, ...] | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        return self.parts[1::2]

    @property
    def is_literal(self) -> bool:
        return len(self.parts) == 1

    def render(self, variables: Vars, escape: Callable[[str], str] | None = None) -> list[str]:
        """Every text this template gives with ``variables`` (names with several values
        give one text per value). ``escape`` is applied to substituted values (re.escape
        for regular expressions). KeyError names a variable that has no value (yet)."""
        if self.is_literal:
            return [self.text]
        last = self._last
        if last is not None and last[0] is variables and last[1] is escape:
            return last[2]
        choices: list[Sequence[str]] = []
        for name in self.names:
            values = variables.get(name)
            if name.startswith("env.") and values is None:
                value = os.environ.get(name[4:])
                values = None if value is None else [value]
            if not values:
                raise KeyError(name)
            choices.append([escape(v) for v in values] if escape else values)
        out = []
        for combo in itertools.product(*choices):
            pieces = list(self.parts)
            pieces[1::2] = combo
            out.append("".join(pieces))
        texts = list(dict.fromkeys(out))
        if not any(n.startswith("env.") for n in self.names):
            object.__setattr__(self, "_last", (variables, escape, texts))
        return texts

    def render_one(self, variables: Vars) -> str:
        """The single text of a template whose names have one value each."""
        texts = self.render(variables)
        return texts[0]


def parse(text: str, allowed: Sequence[str]) -> Template:
    """Parse ``text``; TemplateError for an empty or unknown name (``env.X`` is always
    allowed) or a stray ``{{``."""
    parts: list[str] = []
    pos = 0
    for m in _PART.finditer(text):
        name = m.group(1)
        if not _NAME.match(name):
            raise TemplateError(f"{{{{ {name} }}}} is not a template name (e.g. {{{{ case.id }}}})")
        if name not in allowed and not name.startswith("env."):
            raise TemplateError(unknown_name(name, allowed))
        parts += [text[pos:m.start()], name]
        pos = m.end()
    rest = text[pos:]
    if "{{" in rest:
        raise TemplateError("unclosed '{{': write {{ name }}")
    parts.append(rest)
    return Template(text, tuple(parts))


def unknown_name(name: str, allowed: Sequence[str]) -> str:
    if name in TRIGGER and name not in allowed:
        return (f"{{{{ {name} }}}} is only known once the trigger ran: use it in expect, not "
                "in params, filter or trigger commands")
    close = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown template name {name!r}{hint}; known: {', '.join(allowed)}, env.NAME"
