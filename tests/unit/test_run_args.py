"""`gadget run`'s start-up reads its command line without click (cli/runargs.py): every
line it reads must be read as the typer command reads it, and every other line is left
to the typer command."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer
from gadgetsmith.toolchain.cli.app import app, load_command
from gadgetsmith.toolchain.cli.commands import BY_NAME
from gadgetsmith.toolchain.cli.runargs import RunArgs, parse

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
NOT_PLAIN = [
    ["list"], ["run"], ["run", "--host", "x"], ["run", "x", "--help"], ["run", "x", "-h"],
    ["--version"], ["-h", "run", "x"], ["run", "x", "--count", "0"], ["run", "x", "--count", "a"],
    ["run", "x", "--timeout", "-1"], ["run", "x", "--timeout", "nan"], ["run", "x", "-o", "JSON"],
    ["run", "x", "-ojson"], ["run", "x", "--host=true"], ["run", "x", "--filter"],
    ["run", "x", "--store", "-x"], ["run", "x", "--fields="], ["run", "x", "--", "--comm"],
    ["run", "x", "-z"], ["--store", "a", "--store", "b", "run", "x"], ["--bogus", "run", "x"],
    ["run", "x", "--no-verify=1"], ["run", "x", "--help=1"],
]


def _click(argv: list[str]) -> tuple[Path | None, RunArgs]:
    """The root's --store and run's options as the typer commands parse ``argv``."""
    root = typer.main.get_command(app)
    at = argv.index("run")
    with root.make_context("gadget", argv[:at + 1], resilient_parsing=True) as rctx:
        store = None if rctx.params["store"] is None else Path(rctx.params["store"])
    cmd = load_command(BY_NAME["run"])
    with cmd.make_context("run", list(argv[at + 1:])) as ctx:
        p = dict(ctx.params)
        p["param"] = list(p["param"] or [])
        p["output"] = getattr(p["output"], "value", p["output"])  # typer makes the enum later
        for k in ("store", "policy"):
            p[k] = None if p[k] is None else Path(p[k])
        p["extra"] = list(ctx.args)
        fields = {f.name for f in dataclasses.fields(RunArgs)}
        return store, RunArgs(**{k: v for k, v in p.items() if k in fields})


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_plain_run_lines_are_read_as_click_reads_them(argv: list[str]) -> None:
    got = parse(argv)
    assert got is not None
    assert got == _click(argv)


@pytest.mark.parametrize("argv", NOT_PLAIN, ids=" ".join)
def test_other_lines_go_to_the_typer_command(argv: list[str]) -> None:
    assert parse(argv) is None
