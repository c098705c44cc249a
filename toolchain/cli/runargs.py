"""Plain command lines of `gadget run`, `list`, `inspect`, `push`, `pull` and `build` read
without typer or click, for their start-up (run's first event, the others' latency).

:func:`parse` understands the plain forms only: root options ``--store S``/``--debug``,
then the command, its argument (run's image, the others' reference; push's destination
too) and its own options after it, as ``--opt value``, ``--opt=value`` or ``-o value``;
for run, any other argument starting with ``--`` is the gadget's param, kept in order as
click keeps unknown options.
Whatever else the line holds (``--help``, an option before the argument, a value that is
missing, empty or would not convert, a path starting with ``-``, an option it does not
know, ``--``) gives None: the typer command parses that line, with its own errors and
help. tests/unit/test_run_args.py checks that both read the same lines the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gadgetsmith.toolchain.cli.commands import COMPLETE_VAR
from gadgetsmith.toolchain.cli.output import Output


@dataclass
class RunArgs:
    """`gadget run`'s options, as its typer command takes them (``extra``: the arguments
    it did not know, the gadget's params given as options)."""

    image: str
    param: list[str] = field(default_factory=list)
    filter_: str | None = None
    output: str = "columns"
    fields: str | None = None
    sort: str | None = None
    timeout: float | None = None
    count: int | None = None
    interval: float = 1.0
    host: bool = False
    containername: str | None = None
    runtimes: str | None = None
    k8s_namespace: str | None = None
    k8s_podname: str | None = None
    k8s_containername: str | None = None
    k8s_selector: str | None = None
    store: Path | None = None
    no_verify: bool = False
    policy: Path | None = None
    extra: list[str] = field(default_factory=list)


@dataclass
class ListArgs:
    """`gadget list`'s options."""

    fmt: Output = Output.columns
    no_trunc: bool = False
    store: Path | None = None


@dataclass
class InspectArgs:
    """`gadget inspect`'s argument and options."""

    image: str
    fmt: Output = Output.columns
    store: Path | None = None


@dataclass
class PushArgs:
    """`gadget push`'s arguments and options."""

    image: str
    dest: str | None = None
    no_signature: bool = False
    sign: bool = False
    key: Path | None = None
    recursive: bool = False
    authfile: Path | None = None
    insecure_registries: list[str] = field(default_factory=list)
    ca_file: Path | None = None
    policy: Path | None = None
    fmt: Output = Output.columns
    store: Path | None = None


@dataclass
class PullArgs:
    """`gadget pull`'s argument and options."""

    image: str
    no_signature: bool = False
    no_verify: bool = False
    authfile: Path | None = None
    insecure_registries: list[str] = field(default_factory=list)
    ca_file: Path | None = None
    policy: Path | None = None
    fmt: Output = Output.columns
    store: Path | None = None


@dataclass
class BuildArgs:
    """`gadget build`'s argument and the options a plain line may hold (the others, such
    as --btfgen, --builder or --update-metadata, go to the typer command)."""

    directory: Path
    tag: str | None = None
    arch: list[str] = field(default_factory=list)
    output_dir: Path | None = None
    file: Path | None = None
    no_store: bool = False
    no_cache: bool = False
    fmt: Output = Output.columns
    store: Path | None = None

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)


#: run's options that take a value: spelling -> RunArgs field
VALUES = {
    "--param": "param", "-p": "param", "--filter": "filter_", "-F": "filter_",
    "--output": "output", "-o": "output", "--fields": "fields", "--sort": "sort",
    "--timeout": "timeout", "--count": "count", "--map-fetch-interval": "interval",
    "--containername": "containername", "-c": "containername", "--runtimes": "runtimes",
    "--k8s-namespace": "k8s_namespace", "--k8s-podname": "k8s_podname",
    "--k8s-containername": "k8s_containername", "--k8s-selector": "k8s_selector",
    "--store": "store", "--policy": "policy",
}
#: run's flags
FLAGS = {"--host": "host", "--no-verify": "no_verify"}
MODES = ("columns", "json", "jsonpretty", "yaml")
_OUT = {"-o": "fmt", "--output": "fmt", "--store": "store"}
_REMOTE = {**_OUT, "--authfile": "authfile", "--insecure-registries": "insecure_registries",
           "--ca-file": "ca_file", "--policy": "policy"}
#: fields that are paths, and fields an option adds to (repeatable)
_PATHS = frozenset({"store", "policy", "authfile", "ca_file", "key", "output_dir", "file"})
_LISTS = frozenset({"param", "insecure_registries", "arch"})


@dataclass(frozen=True)
class Plain:
    """What :func:`parse` reads of one command: its argument (the args' first field) or
    none, its options taking a value and its flags (spelling -> field); ``second``: the
    field of an optional second argument (push's destination); ``params``: the other
    ``--`` arguments are kept in ``extra`` (run's gadget params). ``target``: the
    ``module:function`` of this package that does the command's work, given the args."""

    make: Any
    argument: bool
    values: dict[str, str]
    flags: dict[str, str]
    params: bool
    target: str
    second: str = ""


COMMANDS = {
    "run": Plain(RunArgs, True, VALUES, FLAGS, True, "runcore:execute"),
    "list": Plain(ListArgs, False, _OUT, {"--no-trunc": "no_trunc"}, False, "plain:list_command"),
    "inspect": Plain(InspectArgs, True, _OUT, {}, False, "plaininspect:inspect_command"),
    "push": Plain(PushArgs, True, {**_REMOTE, "--key": "key"},
                  {"--no-signature": "no_signature", "--sign": "sign", "--recursive": "recursive"},
                  False, "plainregistry:push_command", second="dest"),
    "pull": Plain(PullArgs, True, _REMOTE, {"--no-signature": "no_signature",
                                             "--no-verify": "no_verify"},
                  False, "plainregistry:pull_command"),
    "build": Plain(BuildArgs, True, {**_OUT, "-t": "tag", "--tag": "tag", "--arch": "arch",
                                     "--output-dir": "output_dir", "-f": "file", "--file": "file"},
                   {"--no-store": "no_store", "--no-cache": "no_cache"}, False,
                   "plainbuild:build_command"),
}


def _convert(name: str, value: str) -> Any:
    """A value as the typer command converts it (and checks it); ValueError when it would
    refuse it, or the value is one :func:`parse` leaves to it."""
    if not value or (value.startswith("-") and name in _PATHS):
        raise ValueError(value)  # (click takes the next argument as the value, whatever it is)
    if name in ("timeout", "interval"):
        number = float(value)
        if not number > 0:  # also NaN
            raise ValueError(value)
        return number
    if name == "count":
        count = int(value)
        if count < 1:
            raise ValueError(value)
        return count
    if name in ("output", "fmt") and value not in MODES:
        raise ValueError(value)
    if name == "fmt":
        return Output(value)
    return Path(value) if name in _PATHS else value


def _root(argv: list[str]) -> tuple[Path | None, int]:
    """The root options' ``--store`` and where the command's name is."""
    store: Path | None = None
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg == "--debug":
            i += 1
        elif arg == "--store" and i + 1 < len(argv) and store is None:
            store, i = _convert("store", argv[i + 1]), i + 2
        elif arg.startswith("--store=") and store is None:
            store, i = _convert("store", arg.partition("=")[2]), i + 1
        else:
            raise ValueError(arg)
    return store, i


def _options(plain: Plain, args: Any, rest: list[str]) -> None:
    """The options after the argument into ``args`` (the last of a repeated one wins, as in
    click; run's --param adds up)."""
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in plain.flags and not eq:
            setattr(args, plain.flags[name], True)
        elif name in plain.values:
            if not eq:
                if not rest:
                    raise ValueError(arg)
                value = rest.pop(0)
            field = plain.values[name]
            if field in _LISTS:
                getattr(args, field).append(_convert(field, value))
            else:
                setattr(args, field, _convert(field, value))
        elif plain.params and arg.startswith("--") and arg != "--" and name not in (
                "--help", *plain.flags):
            args.extra.append(arg)  # a param of the gadget (click: an unknown option)
        elif plain.params and not arg.startswith("-"):
            args.extra.append(arg)  # (click: an extra argument; run refuses it)
        elif plain.second and not arg.startswith("-") and getattr(args, plain.second) is None:
            setattr(args, plain.second, arg)
        else:
            raise ValueError(arg)


def parse(argv: list[str]) -> tuple[Path | None, Plain, Any] | None:
    """``(the root's --store, the command, its args)`` of a plain `gadget run`, `list`,
    `inspect`, `push`, `pull` or `build` line; None for any other line (another command,
    --help, a form only click reads: see the module's doc)."""
    if os.environ.get(COMPLETE_VAR):
        return None  # a completion script asks for candidates
    try:
        store, at = _root(argv)
        plain = COMMANDS.get(argv[at]) if at < len(argv) else None
        if plain is None:
            return None
        rest = argv[at + 1:]
        if plain.argument:
            if not rest or rest[0].startswith("-"):
                return None
            args, rest = plain.make(rest[0]), rest[1:]
        else:
            args = plain.make()
        _options(plain, args, list(rest))
    except ValueError:  # a line only the typer command reads
        return None
    return store, plain, args


__all__ = ["COMMANDS", "FLAGS", "MODES", "VALUES", "BuildArgs", "InspectArgs", "ListArgs", "Plain",
           "PullArgs", "PushArgs", "RunArgs", "parse"]
