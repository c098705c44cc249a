"""`gadget version` and `gadget completion`: what this machine has, and shell completion."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import click
import typer
from click.shell_completion import get_completion_class
from gadgetsmith.toolchain.cli.commands import COMPLETE_VAR
from gadgetsmith.toolchain.cli.common import Output, OutputOpt, print_json
from gadgetsmith.toolchain.versions import collect

_LABELS = {"client": "Client", "ig-api": "IG API", "clang": "clang", "bpftool": "bpftool",
           "libbpf": "libbpf", "kernel": "Kernel", "kernel-btf": "Kernel BTF"}


def version(fmt: OutputOpt = Output.columns) -> None:
    """Show the versions of gadget, the IG API it follows, clang, bpftool, libbpf and the kernel.

    A part this machine lacks is shown as 'not found' with what to install; the exit code
    is 0 all the same (gadget --version prints only the client's).

    Example: gadget version -o json
    """
    parts = collect()
    if fmt.structured:
        print_json({p.name: p.to_json() for p in parts}, fmt)
        return
    width = max(len(v) for v in _LABELS.values()) + 1
    for p in parts:
        label = f"{_LABELS.get(p.name, p.name)}:"
        value = p.version if p.version is not None else "not found"
        typer.echo(f"{label:<{width}} {value}" + (f"  ({p.detail})" if p.detail else ""))


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def completion(
    shell: Annotated[Shell, typer.Argument(help="The shell to print the completion script for.")],
) -> None:
    """Print a shell completion script for bash, zsh or fish.

    Load it in the current shell with: source <(gadget completion bash)
    For every new shell: gadget completion bash > /etc/bash_completion.d/gadget (bash),
    gadget completion zsh > "${fpath[1]}/_gadget" (zsh),
    gadget completion fish > ~/.config/fish/completions/gadget.fish (fish).

    Example: source <(gadget completion bash)
    """
    cls = get_completion_class(shell.value)
    assert cls is not None  # click ships bash, zsh and fish
    typer.echo(cls(click.Group("gadget"), {}, "gadget", COMPLETE_VAR).source())
