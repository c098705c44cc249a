"""`gadget init`: a new gadget project from a template (logic in toolchain.scaffold)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from gadgetsmith.toolchain.cli.common import Output, OutputOpt, print_json
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.scaffold import (
    InitResult,
    init_project,
    list_templates,
    questions,
    read_answers_file,
)


def _parse_set(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. --set "
                             f"description='Trace ...' (keys: {', '.join(questions())})")
        out[key.strip()] = value
    return out


def _next_steps(result: InitResult) -> list[str]:
    where = str(result.path)
    steps = [] if result.path.resolve() == Path.cwd() else [f"cd {shlex.quote(where)}"]
    steps += ["gadget build .", "gadget validate --strict .", "sudo gadget test ."]
    steps.append("sudo gadget run . --host" + (" --sort=-bytes"
                                                if result.template == "top" else ""))
    return steps


def init(
    directory: Annotated[
        Path | None,
        typer.Argument(help="The new project's directory; its name is the gadget's name unless "
                            "--set name=... says otherwise.", show_default=False),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option("--template", "-t", help="The kind of gadget (gadget init --list; default "
                                              "tracer).", show_default=False),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Answer a question: KEY=VALUE (repeatable; name, description, "
                                   "image, url, ci_action).", show_default=False),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="A YAML file of answers (KEY: VALUE, or cookiecutter's "
                                      "default_context:); --set wins.", show_default=False),
    ] = None,
    no_input: Annotated[
        bool, typer.Option("--no-input", help="Ask nothing: defaults for what is not answered.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty directory (files of the same "
                                           "name are replaced, others kept).")
    ] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the templates and exit.")] = False,
    fmt: OutputOpt = Output.columns,
) -> None:
    """Create a gadget project: program, gadget.yaml, tests and a CI workflow, from a template.

    The project builds, validates with no warning and passes its own tests as generated.
    On a terminal the questions are asked (defaults in brackets); --no-input, --set and
    --config answer them without one. A non-empty directory is refused without --force.

    Example: gadget init --list

    Example: gadget init my_gadget

    Example: gadget init lookups -t uprobe --no-input --set image=ghcr.io/acme/lookups
    """
    if list_:
        _print_templates(fmt)
        return
    if directory is None:
        raise UsageError("give the new project's directory, e.g. gadget init my_gadget (or "
                         "--list to see the templates)")
    values = read_answers_file(config) if config else {}
    values.update(_parse_set(set_ or []))
    if template is not None:
        values["template"] = template
    interactive = not no_input and sys.stdin.isatty() and sys.stdout.isatty()
    result = init_project(directory, values, force=force, interactive=interactive)
    _print_created(result, fmt)


def _print_templates(fmt: Output) -> None:
    templates = list_templates()
    if fmt.structured:
        print_json([{"name": t.name, "summary": t.summary} for t in templates], fmt)
        return
    width = max(len(t.name) for t in templates)
    for t in templates:
        typer.echo(f"{t.name:<{width}}  {t.summary}")


def _print_created(result: InitResult, fmt: Output) -> None:
    if fmt.structured:
        print_json({"path": str(result.path), "template": result.template,
                    "answers": result.answers, "files": result.files, "next": _next_steps(result)}, fmt)
        return
    typer.echo(f"Created {result.path}/: a {result.template} gadget named {result.answers['name']} "
               f"({len(result.files)} files)")
    typer.echo("Next:")
    for step in _next_steps(result):
        typer.echo(f"  {step}")
