"""`gadget run`: load a gadget into this kernel and print its events.

The typer command: its options, help and completion; the work is cli/runcore.py's (which
`gadget run` with plain options reaches without typer, see cli/entry.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from gadgetsmith.toolchain.cli import options as opt
from gadgetsmith.toolchain.cli.common import Output as OutputFormat
from gadgetsmith.toolchain.cli.images import complete_image
from gadgetsmith.toolchain.cli.runargs import RunArgs
from gadgetsmith.toolchain.cli.runcore import execute

Image = Annotated[str, typer.Argument(
    help="Image reference, a gadget source directory or a .o file.", autocompletion=complete_image)]
Params = Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value (repeatable).")]
Filter = Annotated[str | None, typer.Option("--filter", "-F", help="e.g. 'proc.comm==cat,error!=0'.")]
OutputMode = Annotated[OutputFormat, typer.Option(
    "-o", "--output", help="columns (text for people), json (one event a line), jsonpretty or yaml.")]
Fields = Annotated[str | None, typer.Option(
    "--fields", help="Comma-separated columns to show (per data source: 'ds1:a,b;ds2:c').")]
Sort = Annotated[str | None, typer.Option("--sort", help="Sort snapshots/top: f1,-f2.")]
def _positive(value: float | None) -> float | None:
    if value is not None and not value > 0:  # (also NaN)
        raise typer.BadParameter(f"{value:g} is not a number of seconds above 0")
    return value


Timeout = Annotated[float | None, typer.Option(
    "--timeout", callback=_positive, help="Stop after this many seconds.")]
Count = Annotated[int | None, typer.Option("--count", min=1, help="Stop after N events.")]
Interval = Annotated[float, typer.Option(
    "--map-fetch-interval", callback=_positive, help="Seconds between top refreshes.")]
Host = Annotated[bool, typer.Option("--host", help="Show host and container events (no container filter).")]
Store = Annotated[Path | None, typer.Option("--store", help="Local OCI store.")]
NoVerify = Annotated[bool, typer.Option(
    "--no-verify", help="Skip the signature check the policy asks for (warns loudly).")]
PolicyFile = Annotated[Path | None, typer.Option(
    "--policy", help="Policy file (allowlist, required signing keys).")]


def run(ctx: typer.Context, image: Image, param: Params = None, filter_: Filter = None,
        output: OutputMode = OutputFormat.columns, fields: Fields = None, sort: Sort = None,
        timeout: Timeout = None, count: Count = None, interval: Interval = 1.0, host: Host = False,
        containername: opt.ContainerName = None, runtimes: opt.Runtimes = None,
        k8s_namespace: opt.K8sNamespace = None, k8s_podname: opt.K8sPodName = None,
        k8s_containername: opt.K8sContainerName = None, k8s_selector: opt.K8sSelector = None,
        store: Store = None, no_verify: NoVerify = False, policy: PolicyFile = None) -> None:
    """Run a gadget here: load, attach, decode and print its events.

    The gadget's params are options too, after the image, as ig takes them: --failed
    (a bool param: true), --failed=false, --comm cat (the same as -p failed=true -p comm=cat;
    'gadget inspect IMAGE' lists them).

    Example: gadget run trace_open:dev --host --failed --filter 'proc.comm==cat' -o json --timeout 5
    """
    execute(RunArgs(image, list(param or []), filter_, output.value, fields, sort, timeout, count,
                    interval, host, containername, runtimes, k8s_namespace, k8s_podname,
                    k8s_containername, k8s_selector, store, no_verify, policy, list(ctx.args)))
