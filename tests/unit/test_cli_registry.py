"""The lazy command registry: the table, the help it prints, and what a command imports."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import click
import typer
import typer.main
from gadgetsmith.toolchain.cli.app import app
from gadgetsmith.toolchain.cli.commands import BY_NAME, COMMANDS

from ..conftest import run_gadget


def _first_paragraph(text: str) -> str:
    return " ".join(inspect.cleandoc(text).split("\n\n", 1)[0].split())


def _target(name: str) -> object:
    module, _, attr = BY_NAME[name].target.partition(":")
    return getattr(importlib.import_module(f"gadgetsmith.toolchain.cli.{module}"), attr)


def test_table_help_is_the_commands_own_first_paragraph() -> None:
    assert len(BY_NAME) == len(COMMANDS), "command names must be unique"
    for c in COMMANDS:
        obj = _target(c.name)
        if isinstance(obj, typer.Typer):
            doc = obj.info.help
        else:
            assert callable(obj), c.target
            doc = obj.__doc__
        assert isinstance(doc, str), f"{c.target} has no help"
        assert c.help == _first_paragraph(doc), f"{c.name}: the table's help differs from {c.target}'s"
    for c in COMMANDS:
        if c.hidden:  # an alias runs a listed command
            assert any(o.target == c.target and not o.hidden for o in COMMANDS), c.name


def _help_sections(group: click.Group, lazy: bool) -> str:
    ctx = click.Context(group, info_name="gadget")
    formatter = ctx.make_formatter()
    if lazy:
        group.format_commands(ctx, formatter)
    else:  # click's own listing, every command built from its module
        click.Group.format_commands(group, ctx, formatter)
    return formatter.getvalue()


def test_help_lists_the_same_as_the_built_commands() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    lazy = _help_sections(group, lazy=True)
    assert lazy == _help_sections(group, lazy=False)
    listed = [line.split()[0] for line in lazy.splitlines()[1:] if line.strip()]
    assert listed == [c.name for c in COMMANDS if not c.hidden]


def _imported_after(*argv: str) -> set[str]:
    code = (
        "import contextlib, io, sys\n"
        "from gadgetsmith.toolchain.cli.app import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        f"    main({list(argv)!r})\n"
        "print('\\n'.join(sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


HEAVY = ("cryptography", "nacl", "jsonschema", "ruamel.yaml", "yaml", "rich", "docker", "http.client")


def test_help_and_list_import_only_what_they_run(tmp_path) -> None:
    command_modules = {f"gadgetsmith.toolchain.cli.{c.target.split(':')[0]}" for c in COMMANDS}
    mods = _imported_after("--help")
    assert not command_modules & mods
    mods = _imported_after("--store", str(tmp_path / "store"), "list")
    assert command_modules & mods == {"gadgetsmith.toolchain.cli.images"}
    assert not [m for m in HEAVY if m in mods]


def test_no_command_prints_the_help() -> None:
    for group in ([], ["metadata"]):
        res = run_gadget(*group)
        assert res.returncode == 0 and res.stdout == run_gadget(*group, "--help").stdout
        assert "Commands:" in res.stdout
