"""Test specs (``*.test.yaml``): load, check, and turn into cases.

Loading checks a file against ``schemas/gadget-test.schema.json`` and then what the
schema cannot say (one count per expectation, templates, regular expressions, unique case
names), and reports every problem at once as ``FILE:LINE:COL: error: ...`` like
``gadget validate``. What needs the gadget (field names, data sources, params, filters,
normalize entries) is checked by :func:`check_case` once the gadget is built, before any
case runs.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import gadgetsmith.toolchain.testing.templates as tpl
from gadgetsmith.schemas import schema_file
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.metadata.validate import display_path
from gadgetsmith.toolchain.metadata.yamldoc import Diagnostic, MarkedDoc, YamlSyntaxError, dotted, load_marked
from gadgetsmith.toolchain.testing import SUFFIX  # noqa: F401 - re-exported for callers
from gadgetsmith.toolchain.testing.matchers import (
    OPERATORS,
    Check,
    FieldMatcher,
    MatchError,
    compile_regex,
    number,
)
from gadgetsmith.toolchain.testing.normalize import GROUPS, Normalizer, resolve
from jsonschema import Draft202012Validator

DEFAULT_TIMEOUT = 10.0
DEFAULT_SETTLE = 1.0
DEFAULT_STEP_INTERVAL = 0.1
#: what marks a gadget directory (the default gadget of a spec is the nearest one above it)
GADGET_FILES = ("gadget.yaml", "build.yaml", "program.bpf.c")
CONTAINER_FIELD_PREFIXES = ("runtime.", "k8s.")


class SpecError(UsageError):
    """Problems in test specs (exit code 2); ``diagnostics`` holds every one."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        n = len(diagnostics)
        files = sorted({d.file for d in diagnostics})
        where = files[0] if len(files) == 1 else f"{len(files)} test specs"
        super().__init__(f"{where}: {n} error{'s' * (n != 1)} in the test spec{'s' * (len(files) > 1)}"
                         ": fix them and run again",
                         detail="\n".join(d.format() for d in diagnostics))
        self.diagnostics = diagnostics


# ---------------------------------------------------------------------------- model
@dataclass(frozen=True)
class GadgetSource:
    """What a spec tests: a gadget directory or an image reference."""

    kind: str  # "dir" | "ref"
    value: str  # absolute directory, or the reference as written

    @property
    def label(self) -> str:
        return Path(self.value).name if self.kind == "dir" else self.value


@dataclass
class Step:
    command: tuple[tpl.Template, ...]
    shell: bool  # command is one string for /bin/sh -c
    on: str  # "host" | "container"
    repeat: int = 1
    interval: float = DEFAULT_STEP_INTERVAL
    background: bool = False
    uid: int | None = None
    gid: int | None = None
    env: dict[str, tpl.Template] = field(default_factory=dict)
    cwd: tpl.Template | None = None

    def describe(self) -> str:
        if self.shell:
            return self.command[0].text
        return " ".join(json.dumps(t.text) if (" " in t.text or not t.text) else t.text
                        for t in self.command)


@dataclass
class ContainerSpec:
    image: str | None = None  # None: the busybox image
    command: tuple[tpl.Template, ...] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    network: str = "none"


@dataclass
class Expectation:
    kind: str  # "atLeast" | "exactly" | "none"
    count: int
    matchers: tuple[FieldMatcher, ...]
    path: tuple[Any, ...] = ()

    @property
    def waits_for_end(self) -> bool:
        """exactly/none are counted only once the trigger ended (and settle passed)."""
        return self.kind != "atLeast"

    def describe(self, what: str = "event") -> str:
        plural = f"{what}s" if what != "row" else "rows"
        if self.kind == "none":
            return f"no {what}"
        n = self.count
        word = what if n == 1 else plural
        return f"at least {n} {word}" if self.kind == "atLeast" else f"exactly {n} {word}"


@dataclass
class NormalizeSpec:
    mask: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    path: tuple[Any, ...] = ()

    def resolve(self, names: list[str]) -> Normalizer:
        masked = set().union(*(resolve(e, names) for e in self.mask)) if self.mask else set()
        dropped = set().union(*(resolve(e, names) for e in self.drop)) if self.drop else set()
        return Normalizer(frozenset(masked - dropped), frozenset(dropped),
                          {"mask": list(self.mask), "drop": list(self.drop)})


@dataclass
class Case:
    name: str
    index: int
    expectations: tuple[Expectation, ...]
    spec: Spec = field(repr=False)
    skip: str | None = None
    params: dict[str, tpl.Template] = field(default_factory=dict)
    datasource: str | None = None
    filter: tpl.Template | None = None
    host: bool | None = None
    selector: dict[str, str] | None = None
    container: ContainerSpec | None = None
    steps: tuple[Step, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    interval: float | None = None
    settle: float = DEFAULT_SETTLE
    normalize: NormalizeSpec = field(default_factory=NormalizeSpec)

    @property
    def path(self) -> tuple[Any, ...]:
        return ("cases", self.index)

    @property
    def line(self) -> int:
        return self.spec.mark(self.path + ("name",))[0]

    @property
    def needs_containers(self) -> bool:
        """Does the case need a container collection (container fields, selectors)?"""
        if self.container is not None or self.selector or self.host is False:
            return True
        fields = [m.field for e in self.expectations for m in e.matchers]
        fields += list(self.normalize.mask) + list(self.normalize.drop)
        return any(f.startswith(CONTAINER_FIELD_PREFIXES) or f == "@containers" for f in fields)


@dataclass
class Spec:
    path: Path
    label: str  # the path as shown in messages
    gadget: GadgetSource | None
    cases: list[Case] = field(default_factory=list)
    doc: MarkedDoc | None = field(default=None, repr=False)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def mark(self, path: tuple[Any, ...], prefer_key: bool = False) -> tuple[int, int]:
        if self.doc is None:
            return (0, 0)
        return self.doc.mark(path, prefer_key)

    def diagnostic(self, path: tuple[Any, ...], message: str, prefer_key: bool = True) -> Diagnostic:
        line, col = self.mark(path, prefer_key)
        return Diagnostic(self.label, line, col, "error", message, dotted(path))


# ---------------------------------------------------------------------------- schema
def schema_path() -> Path:
    return schema_file("gadget-test")


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_path().read_text()))


def _describe(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"a boolean ({'true' if v else 'false'})"
    if isinstance(v, (int, float)):
        return f"a number ({v:g})" if isinstance(v, float) else f"a number ({v})"
    if isinstance(v, str):
        return f"a string ({v!r})" if len(v) < 40 else "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string",
               "integer": "an integer", "number": "a number", "boolean": "true or false",
               "null": "nothing"}

_REQUIRED_HINTS = {
    "cases": "add 'cases:' with a list of test cases (see README, 'Testing gadgets')",
    "name": "add 'name: <what the case checks>'",
    "expect": "add 'expect:' with what the gadget must report, e.g. expect: {match: {proc.comm: cat}}",
    "command": "add 'command: [program, arg, ...]'",
}


def suggest(name: str, options: list[str]) -> str:
    m = difflib.get_close_matches(str(name), sorted(options), n=1, cutoff=0.6)
    return f" (did you mean {m[0]!r}?)" if m else ""


def _schema_problems(data: Any, add) -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    seen: set[tuple[Any, ...]] = set()
    for e in errors:
        path = tuple(e.absolute_path)
        where = dotted(path) if path else "the spec"
        kw = e.validator
        if kw == "additionalProperties":
            props = sorted((e.schema.get("properties") or {}).keys())
            for k in (e.instance or {}):
                if k in props:
                    continue
                if set(props) == set(OPERATORS):  # the matcher mapping
                    add(path + (k,), f"{dotted(path + (k,))}: unknown matcher {k!r}"
                        f"{suggest(k, props)}; matchers are: {', '.join(OPERATORS)}", True)
                else:
                    add(path + (k,), f"{dotted(path + (k,))}: unknown key{suggest(k, props)}; "
                        f"known keys: {', '.join(props)}", True)
            continue
        if path in seen:
            continue  # one message per place (a type error also fails its $ref's keywords)
        if kw == "type":
            types = e.validator_value if isinstance(e.validator_value, list) else [e.validator_value]
            words = " or ".join(str(_TYPE_WORDS.get(t, t)) for t in types)
            if not path:
                add(path, f"a test spec is a mapping with 'cases:', not {_describe(e.instance)}")
            else:
                add(path, f"{where}: expected {words}, got {_describe(e.instance)}")
        elif kw == "required":
            for r in e.validator_value:
                if r not in (e.instance or {}):
                    add(path, f"{where}: missing required key '{r}': "
                        f"{_REQUIRED_HINTS.get(r, f'add {r}:')}", True)
        elif kw in ("enum", "const"):
            opts = e.validator_value if kw == "enum" else [e.validator_value]
            shown = ", ".join(json.dumps(o) for o in opts)
            add(path, f"{where}: {json.dumps(e.instance)} is not allowed: use {shown}"
                f"{suggest(str(e.instance), [str(o) for o in opts])}")
        elif kw in ("minItems", "minLength", "minProperties"):
            add(path, f"{where}: must not be empty")
        elif kw == "minimum":
            add(path, f"{where}: must be at least {e.validator_value}, got {e.instance}")
        elif kw == "exclusiveMinimum":
            add(path, f"{where}: must be more than {e.validator_value}, got {e.instance}")
        else:
            add(path, f"{where}: {e.message}")
        seen.add(path)


# ---------------------------------------------------------------------------- loading
class _Parser:
    """Turns checked data into the model, collecting problems with their places."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.problems: list[Diagnostic] = []
        self.used: list[tuple[tuple[Any, ...], tuple[str, ...]]] = []  # (path, names) of templates

    def error(self, path: tuple[Any, ...], message: str, prefer_key: bool = False) -> None:
        self.problems.append(self.spec.diagnostic(path, message, prefer_key))

    def template(self, value: Any, path: tuple[Any, ...], allowed: tuple[str, ...]) -> tpl.Template:
        text = value if isinstance(value, str) else (
            "true" if value is True else "false" if value is False else str(value))
        try:
            t = tpl.parse(text, allowed)
            if t.names:
                self.used.append((path, t.names))
            return t
        except tpl.TemplateError as e:
            self.error(path, f"{dotted(path)}: {e}")
            return tpl.Template(text, (text,))

    # -- cases
    def case(self, data: dict[str, Any], index: int, defaults: dict[str, Any]) -> Case:
        p: tuple[Any, ...] = ("cases", index)
        container = self.container(data.get("container"), p + ("container",))
        case = Case(name=data["name"], index=index, expectations=(), spec=self.spec,
                    skip=data.get("skip"), datasource=data.get("datasource"),
                    host=data.get("host"), selector=data.get("containers"),
                    container=container,
                    timeout=float(data.get("timeout", defaults.get("timeout", DEFAULT_TIMEOUT))),
                    interval=data.get("interval"), settle=float(data.get("settle", DEFAULT_SETTLE)))
        for k, v in (data.get("params") or {}).items():
            case.params[k] = self.template(v, p + ("params", k), tpl.SETUP)
        if "filter" in data:
            case.filter = self.template(data["filter"], p + ("filter",), tpl.SETUP)
        if case.selector and case.host:
            self.error(p + ("host",), f"{dotted(p)}: 'containers' selects container events, "
                       "'host: true' every process: keep one of them", True)
        norm = data.get("normalize", defaults.get("normalize"))
        npath = p + ("normalize",) if "normalize" in data else ("normalize",)
        case.normalize = self.normalize(norm, npath)
        steps = data.get("trigger")
        if steps is not None:
            items = steps if isinstance(steps, list) else [steps]
            base = p + ("trigger",)
            case.steps = tuple(self.step(s, base + (i,) if isinstance(steps, list) else base,
                                         container is not None)
                               for i, s in enumerate(items))
        exp = data["expect"]
        items = exp if isinstance(exp, list) else [exp]
        base = p + ("expect",)
        case.expectations = tuple(self.expectation(e, base + (i,) if isinstance(exp, list) else base)
                                  for i, e in enumerate(items))
        for where, names in self.used:
            if where[:2] != p:
                continue
            for n in names:
                if n in tpl.TRIGGER and not case.steps:
                    self.error(where, f"{dotted(where)}: {{{{ {n} }}}} needs a trigger, and the "
                               "case has none: add 'trigger:' or match something else")
                elif n.startswith("trigger.container.") and container is None:
                    self.error(where, f"{dotted(where)}: {{{{ {n} }}}} needs the case's container: "
                               "add 'container: true' (or container: {image: ...})")
        return case

    def container(self, data: Any, path: tuple[Any, ...]) -> ContainerSpec | None:
        if data is None or data is False:
            return None
        if data is True:
            return ContainerSpec()
        command = None
        if "command" in data:
            command = tuple(self.template(a, path + ("command", i), tpl.SETUP)
                            for i, a in enumerate(data["command"]))
        labels = {str(k): ("true" if v is True else "false" if v is False else str(v))
                  for k, v in (data.get("labels") or {}).items()}
        return ContainerSpec(data.get("image"), command, labels, data.get("network", "none"))

    def step(self, data: dict[str, Any], path: tuple[Any, ...], has_container: bool) -> Step:
        raw = data["command"]
        shell = isinstance(raw, str)
        argv = [raw] if shell else raw
        command = tuple(self.template(a, path + (("command",) if shell else ("command", i)),
                                      tpl.SETUP) for i, a in enumerate(argv))
        on = data.get("on", "container" if has_container else "host")
        if on == "container" and not has_container:
            self.error(path + ("on",), f"{dotted(path)}.on: 'container' needs a container: add "
                       "'container: true' (busybox) or 'container: {image: ...}' to the case")
        env = {str(k): self.template(v, path + ("env", k), tpl.SETUP)
               for k, v in (data.get("env") or {}).items()}
        cwd = self.template(data["cwd"], path + ("cwd",), tpl.SETUP) if "cwd" in data else None
        uid = data.get("uid")
        gid = data.get("gid", uid)
        return Step(command, shell, on, int(data.get("repeat", 1)),
                    float(data.get("interval", DEFAULT_STEP_INTERVAL)),
                    bool(data.get("background", False)), uid, gid, env, cwd)

    def expectation(self, data: dict[str, Any], path: tuple[Any, ...]) -> Expectation:
        kinds = [k for k in ("atLeast", "exactly", "none") if k in data]
        if len(kinds) > 1:
            self.error(path + (kinds[1],), f"{dotted(path)}: {' and '.join(kinds)} contradict: "
                       "keep one (or write two expectations)", True)
        kind = kinds[0] if kinds else "atLeast"
        count = 0 if kind == "none" else int(data.get(kind, 1))
        matchers = []
        for fname, m in (data.get("match") or {}).items():
            mp = path + ("match", fname)
            matchers.append(FieldMatcher(fname, self.checks(m, mp), mp))
        return Expectation(kind, count, tuple(matchers), path)

    def checks(self, m: Any, path: tuple[Any, ...]) -> tuple[Check, ...]:
        if not isinstance(m, dict):
            return (Check("eq", self.value(m, path)),)
        out = []
        for op in OPERATORS:
            if op not in m:
                continue
            v = m[op]
            op_path = path + (op,)
            if op == "present":
                out.append(Check(op, bool(v)))
            elif op == "oneOf":
                out.append(Check(op, [self.value(x, op_path + (i,)) for i, x in enumerate(v)]))
            elif op in ("regex", "notRegex"):
                t = self.template(v, op_path, tpl.EXPECT)
                if t.is_literal:
                    try:
                        compile_regex(t.text)
                    except MatchError as e:
                        self.error(op_path, f"{dotted(op_path)}: {e}")
                out.append(Check(op, t))
            elif op in ("gt", "ge", "lt", "le"):
                if isinstance(v, str):
                    t = self.template(v, op_path, tpl.EXPECT)
                    if t.is_literal and number(v) is None:
                        self.error(op_path, f"{dotted(op_path)}: {v!r} is not a number")
                    out.append(Check(op, t if not t.is_literal else number(v)))
                else:
                    out.append(Check(op, v))
            else:
                out.append(Check(op, self.value(v, op_path)))
        return tuple(out)

    def value(self, v: Any, path: tuple[Any, ...]) -> Any:
        """A literal to compare with; strings may be templates."""
        if isinstance(v, str):
            t = self.template(v, path, tpl.EXPECT)
            return v if t.is_literal else t
        return v

    def normalize(self, data: Any, path: tuple[Any, ...]) -> NormalizeSpec:
        if not data:
            return NormalizeSpec(path=path)
        for key in ("mask", "drop"):
            for i, entry in enumerate(data.get(key) or []):
                if entry.startswith("@") and entry not in GROUPS:
                    self.error(path + (key, i), f"{dotted(path + (key, i))}: unknown group "
                               f"{entry!r}{suggest(entry, list(GROUPS))}; groups are: "
                               f"{', '.join(GROUPS)}")
        return NormalizeSpec(tuple(data.get("mask") or ()), tuple(data.get("drop") or ()), path)


def default_gadget(spec_path: Path) -> GadgetSource | None:
    """The nearest directory at or above the spec's that holds a gadget."""
    d = spec_path.resolve().parent
    for candidate in (d, *d.parents):
        if any((candidate / f).is_file() for f in GADGET_FILES):
            return GadgetSource("dir", str(candidate))
    return None


def _gadget_source(value: str, spec_dir: Path) -> GadgetSource | None:
    d = (spec_dir / value)
    if d.is_dir():
        return GadgetSource("dir", str(d.resolve()))
    if value.startswith(("/", "./", "../", "~")) or value in (".", ".."):
        return None
    return GadgetSource("ref", value)


def load_spec(path: Path | str, data: bytes | None = None) -> Spec:
    """Load and check one spec file; SpecError lists every problem."""
    path = Path(path)
    spec = Spec(path=path, label=display_path(path), gadget=None)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise UsageError(f"{spec.label}: cannot read the test spec ({e.strerror})") from None
    try:
        doc = load_marked(data)
    except YamlSyntaxError as e:
        raise SpecError([Diagnostic(spec.label, e.line, e.col, "error",
                                    e.message.replace("gadget.yaml", "a test spec"))]) from None
    spec.doc = doc
    parser = _Parser(spec)
    for p, problem in doc.problems:
        parser.error(p, f"{dotted(p) or 'the spec'}: {problem}", True)
    if doc.data is None:
        parser.error((), "the test spec is empty: it needs 'cases:' (see README, 'Testing gadgets')")
        raise SpecError(parser.problems)
    _schema_problems(doc.data, parser.error)
    top = doc.data
    if not isinstance(top, dict) or not isinstance(top.get("cases"), list) or any(
            d.path.split("[")[0].split(".")[0] == "normalize" for d in parser.problems):
        raise SpecError(_sorted(parser.problems))
    # cases without schema errors are checked further, so one run reports (nearly) all
    broken = {d.path[len("cases["):].split("]")[0] for d in parser.problems
              if d.path.startswith("cases[")}
    if "gadget" in top:
        spec.gadget = _gadget_source(top["gadget"], spec.directory)
        if spec.gadget is None:
            parser.error(("gadget",), f"gadget: {top['gadget']!r}: no such directory (relative "
                         f"paths start at {display_path(spec.directory)})")
    else:
        spec.gadget = default_gadget(path)
    defaults = {k: top[k] for k in ("timeout", "normalize") if k in top}
    names: dict[str, int] = {}
    for i, c in enumerate(top["cases"]):
        if str(i) in broken:
            continue
        case = parser.case(c, i, defaults)
        if case.name in names:
            parser.error(("cases", i, "name"), f"cases[{i}].name: {case.name!r} is also the name "
                         f"of cases[{names[case.name]}]: names must be unique")
        names.setdefault(case.name, i)
        spec.cases.append(case)
    if parser.problems:
        raise SpecError(_sorted(parser.problems))
    return spec


def _sorted(problems: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(problems, key=lambda d: (d.line, d.col))


def expectation_from(data: dict[str, Any], label: str = "expect") -> Expectation:
    """An expectation from Python data (the pytest fixture's ``run.expect(...)``):
    checked against the schema like a spec's; SpecError when it is wrong."""
    spec = Spec(path=Path(label), label=label, gadget=None)
    parser = _Parser(spec)
    wrapped = {"cases": [{"name": label, "expect": data}]}
    _schema_problems(wrapped, lambda p, m, *_: parser.error(p[3:], m.replace("cases[0].expect", label)))
    if parser.problems:
        raise SpecError(parser.problems)
    exp = parser.expectation(data, (label,))
    if parser.problems:
        raise SpecError(parser.problems)
    return exp


# ---------------------------------------------------------------------------- gadget checks
def check_case(case: Case, gadget: Any) -> list[Diagnostic]:
    """What the spec says against what the gadget has (a :class:`~.gadgets.PreparedGadget`):
    data source, fields in matchers and normalize, params, filter. Diagnostics, [] = fine."""
    spec = case.spec
    out: list[Diagnostic] = []
    p = case.path

    def err(path: tuple[Any, ...], msg: str) -> None:
        out.append(spec.diagnostic(path, msg))

    names = list(gadget.datasources)
    if case.datasource is not None and case.datasource not in gadget.datasources:
        err(p + ("datasource",), f"{dotted(p)}.datasource: {gadget.label} has no data source "
            f"{case.datasource!r}{suggest(case.datasource, names)}; it has: {', '.join(names)}")
        return out
    ds = gadget.datasource(case.datasource)
    fields = ds.field_names(case.needs_containers)
    for key, tmpl in case.params.items():
        problem = gadget.param_problem(key, None if tmpl.names else tmpl.text)
        if problem:
            err(p + ("params", key), f"{dotted(p + ('params', key))}: {problem}")
    if case.filter is not None and not case.filter.names:
        problem = ds.filter_problem(case.filter.text, case.needs_containers)
        if problem:
            problem = problem[len("filter: "):] if problem.startswith("filter: ") else problem
            err(p + ("filter",), f"{dotted(p)}.filter: {problem}")
    norm = case.normalize.resolve(fields)
    for key in ("mask", "drop"):
        for i, entry in enumerate(getattr(case.normalize, key)):
            if not resolve(entry, fields):
                err(case.normalize.path + (key, i),
                    f"{dotted(case.normalize.path + (key, i))}: {entry!r} names no field of data "
                    f"source {ds.name!r}{suggest(entry, fields)}; its fields are: {', '.join(fields)}")
    for exp in case.expectations:
        for m in exp.matchers:
            where = dotted(m.path)
            if m.field not in fields:
                extra = ""
                if m.field.startswith(CONTAINER_FIELD_PREFIXES) and not ds.enriched:
                    extra = (f" (container fields come only with a mount or network namespace "
                             f"id, and data source {ds.name!r} has neither)")
                err(m.path, f"{where}: no field {m.field!r} in data source {ds.name!r} of "
                    f"{gadget.label}{extra}{suggest(m.field, fields)}; its fields are: "
                    f"{', '.join(fields)}")
            elif m.field in norm.dropped:
                err(m.path, f"{where}: {m.field!r} is dropped by normalize: remove the matcher "
                    "or the drop entry")
            elif m.field in norm.masked and not m.only_presence:
                err(m.path, f"{where}: {m.field!r} is masked by normalize, so only 'present' can "
                    "match it: use {present: true}, or take it out of mask")
    return out
