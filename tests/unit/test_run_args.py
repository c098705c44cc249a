"""`gadget run`, `list` and `inspect` read a plain command line without click
(cli/runargs.py): every line it reads must be read as the typer command reads it, and
every other line is left to the typer command."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer
from gadgetsmith.toolchain.cli.app import app, load_command
from gadgetsmith.toolchain.cli.commands import BY_NAME
from gadgetsmith.toolchain.cli.output import Output
from gadgetsmith.toolchain.cli.runargs import COMMANDS, parse

from ..conftest import entry_imports

PLAIN = [
    ["run", "trace_open:dev"],
    ["run", "trace_open:dev", "--host", "-o", "json", "--count", "1"],
    ["--store", "/tmp/s", "run", "x:1", "--timeout", "2.5", "--output=yaml", "--host"],
    ["--debug", "--store=/tmp/s", "run", "./dir", "-p", "a=1", "--param", "b=2", "-p", "c=="],
    ["run", "x", "--comm", "cat", "--failed", "--pid=7", "-F", "proc.comm==cat", "--fields", "a,b"],
    ["run", "x", "--fields", "ds1:a,b;ds2:c", "--sort", "-a,b", "--map-fetch-interval", "0.5"],
    ["run", "x", "-c", "web,!db", "--runtimes", "podman", "--k8s-namespace", "n",
     "--k8s-podname", "p", "--k8s-containername", "c", "--k8s-selector", "a=b,c=d"],
    ["run", "x", "--store", "s2", "--policy", "pol.yaml", "--no-verify", "--count", "3", "--count", "4"],
    ["run", "x", "-o", "columns", "-o", "jsonpretty", "--timeout=1e2", "--count=+5"],
    ["run", "x", "extra", "--flag"],          # refused by run itself, the same way
    ["run", "x", "--comm=--host", "--x", "=y"],
    ["run", "x", "--filter", "-x", "-p", "--a=b", "--sort", "-count"],  # click takes any next argument
]
PLAIN += [
    ["list"], ["list", "-o", "json"], ["--store", "/s", "list", "--no-trunc", "--output=yaml"],
    ["list", "--store", "a", "-o", "jsonpretty", "-o", "columns"],
    ["inspect", "x:1"], ["inspect", "x:1", "-o", "json", "--store", "/s"],
    ["--debug", "inspect", "sha256:abc", "--output", "yaml"],
    ["push", "x:1"], ["push", "x:1", "h:5000/r/x:1", "--insecure-registries", "h:5000", "-o", "json"],
    ["push", "x:1", "--sign", "--key", "k.key", "--recursive", "h/r:1", "--no-signature"],
    ["push", "x:1", "--authfile", "a.json", "--ca-file", "ca.pem", "--policy", "p.yaml",
     "--insecure-registries", "a:1", "--insecure-registries=b:2,c:3", "--store", "s"],
    ["pull", "h:5000/r/x:1"], ["pull", "h/r@sha256:ab", "--no-verify", "--no-signature", "-o", "yaml"],
    ["--store", "s", "pull", "h/r:1", "--insecure-registries", "h", "--authfile=a", "--ca-file", "c"],
]
PLAIN += [
    ["build", "sample-gadgets/trace_open"], ["build", "./g", "-t", "x:dev", "--arch", "amd64"],
    ["--store", "s", "build", "g", "--arch", "amd64", "--arch=arm64", "--no-cache", "-o", "json"],
    ["build", "g", "--tag=a:1", "--tag", "b:2", "--no-store", "--output-dir", "out", "-f", "b.yaml"],
    ["build", "g", "--file=b.yaml", "--store", "s2", "--output", "yaml"],
]
NOT_PLAIN = [
    ["build"], ["build", "-t", "x", "g"], ["build", "g", "--btfgen"], ["build", "g", "--builder"],
    ["build", "g", "--update-metadata"], ["build", "g", "--no-validate-metadata"],
    ["build", "g", "-o", "out"], ["build", "g", "--ig-version", "v1"], ["build", "g", "h"],
    ["build", "g", "--no-cache=1"], ["build", "g", "--arch"], ["build", "g", "--help"],
    ["list", "--format", "json"], ["list", "x"], ["list", "--comm", "x"], ["list", "-h"],
    ["list", "-o", "text"], ["inspect"], ["inspect", "-o", "json", "x"], ["inspect", "x", "y"],
    ["inspect", "x", "--no-trunc"], ["push", "a", "b", "c"], ["push", "--sign", "a"],
    ["pull", "a", "b"], ["pull", "a", "--key", "k"], ["push", "a", "--key", "-k"], ["copy", "a", "b"],
    ["tag", "a", "b"], ["run"], ["run", "--host", "x"],
    ["run", "x", "--help"], ["run", "x", "-h"],
    ["--version"], ["-h", "run", "x"], ["run", "x", "--count", "0"], ["run", "x", "--count", "a"],
    ["run", "x", "--timeout", "-1"], ["run", "x", "--timeout", "nan"], ["run", "x", "-o", "JSON"],
    ["run", "x", "-ojson"], ["run", "x", "--host=true"], ["run", "x", "--filter"],
    ["run", "x", "--store", "-x"], ["run", "x", "--fields="], ["run", "x", "--", "--comm"],
    ["run", "x", "-z"], ["--store", "a", "--store", "b", "run", "x"], ["--bogus", "run", "x"],
    ["run", "x", "--no-verify=1"], ["run", "x", "--help=1"],
]


def _click(argv: list[str]) -> tuple[Path | None, object]:
    """The root's --store and the command's options as the typer commands parse ``argv``."""
    root = typer.main.get_command(app)
    at = next(i for i, a in enumerate(argv) if a in COMMANDS)
    with root.make_context("gadget", argv[:at + 1], resilient_parsing=True) as rctx:
        store = None if rctx.params["store"] is None else Path(rctx.params["store"])
    cmd = load_command(BY_NAME[argv[at]])
    with cmd.make_context(argv[at], list(argv[at + 1:])) as ctx:
        p = dict(ctx.params)
        if argv[at] == "run":
            p["param"] = list(p["param"] or [])
            p["output"] = getattr(p["output"], "value", p["output"])  # typer makes the enum later
            p["extra"] = list(ctx.args)
        else:
            p["fmt"] = Output(p["fmt"])
        for k in ("insecure_registries", "arch"):
            if k in p:
                p[k] = list(p[k] or [])
        for k in ("store", "policy", "authfile", "ca_file", "key", "output_dir", "file"):
            if k in p:
                p[k] = None if p[k] is None else Path(p[k])
        make = COMMANDS[argv[at]].make
        fields = {f.name for f in dataclasses.fields(make)}
        return store, make(**{k: v for k, v in p.items() if k in fields})


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_plain_run_lines_are_read_as_click_reads_them(argv: list[str]) -> None:
    got = parse(argv)
    assert got is not None
    store, command, args = got
    assert command is COMMANDS[argv[next(i for i, a in enumerate(argv) if a in COMMANDS)]]
    assert (store, args) == _click(argv)


@pytest.mark.parametrize("argv", NOT_PLAIN, ids=" ".join)
def test_other_lines_go_to_the_typer_command(argv: list[str]) -> None:
    assert parse(argv) is None


def test_plain_list_imports_neither_typer_nor_click(tmp_path: Path) -> None:
    out, frameworks = entry_imports("--store", str(tmp_path / "store"), "list", "-o", "json")
    assert (out, frameworks) == (["[]"], "[]")  # no images; no typer


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_plain_reader_knows_every_option_of_the_typer_command(name: str) -> None:
    """An option added to a typer command and not to runargs: for run, the plain reader
    would take it for a gadget param; for the others, the line goes to typer (slower, still
    right). So run knows every option, and no plain reader knows one typer does not."""
    import click

    root = typer.main.get_command(app)
    cmd = root.get_command(click.Context(root), name)
    assert cmd is not None
    spelled = {o for p in cmd.params if isinstance(p, click.Option)
               for o in (*p.opts, *p.secondary_opts)} - {"--help", "-h"}
    plain = COMMANDS[name]
    known = set(plain.values) | set(plain.flags)
    assert known <= spelled, f"runargs reads {sorted(known - spelled)}, which `gadget {name}` lacks"
    if plain.params:
        assert spelled <= known, f"runargs would read {sorted(spelled - known)} as gadget params"
