"""`gadget run`: load a gadget into this kernel and print its events."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from gadgetsmith.toolchain.cli import options as opt
from gadgetsmith.toolchain.cli.common import state, store_path


class _Out(str, Enum):
    columns = "columns"
    json = "json"
    jsonpretty = "jsonpretty"
    yaml = "yaml"


def run(
    image: Annotated[
        str, typer.Argument(help="Image reference, a gadget source directory or a .o file.")
    ],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="key=value (repeatable).")
    ] = None,
    filter_: Annotated[
        str | None, typer.Option("--filter", "-F", help="e.g. 'proc.comm==cat,error!=0'.")
    ] = None,
    output: Annotated[_Out, typer.Option("--output", "-o", help="Output mode.")] = _Out.columns,
    fields: Annotated[
        str | None, typer.Option("--fields", help="Comma-separated columns to show.")
    ] = None,
    sort: Annotated[str | None, typer.Option("--sort", help="Sort snapshots/top: f1,-f2.")] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Stop after this many seconds.")
    ] = None,
    count: Annotated[int | None, typer.Option("--count", help="Stop after N events.")] = None,
    interval: Annotated[
        float, typer.Option("--map-fetch-interval", help="Seconds between top refreshes.")
    ] = 1.0,
    host: Annotated[
        bool, typer.Option("--host", help="Show host and container events (no container filter).")
    ] = False,
    containername: opt.ContainerName = None,
    runtimes: opt.Runtimes = None,
    k8s_namespace: opt.K8sNamespace = None,
    k8s_podname: opt.K8sPodName = None,
    k8s_containername: opt.K8sContainerName = None,
    k8s_selector: opt.K8sSelector = None,
    store: Annotated[Path | None, typer.Option("--store", help="Local OCI store.")] = None,
    no_verify: Annotated[
        bool,
        typer.Option("--no-verify", help="Skip the signature check the policy asks for (warns loudly)."),
    ] = False,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy file (allowlist, required signing keys).")
    ] = None,
) -> None:
    """Run a gadget here: load, attach, decode and print its events.

    Example: gadget run trace_open:dev --host --filter 'proc.comm==cat' -o json --timeout 5
    """
    import time

    from gadgetsmith.runtime.errors import RuntimeGadgetError
    from gadgetsmith.toolchain.errors import GadgetError, UsageError

    params: dict[str, str] = {}
    for p in param or []:
        if "=" not in p:
            raise UsageError(f"--param {p!r}: expected key=value")
        k, v = p.split("=", 1)
        params[k.strip()] = v
    src: str | bytes = image
    metadata = None
    btfgen_layer = None
    if Path(image).is_dir():
        from gadgetsmith.toolchain.build.driver import build_for_host

        src, metadata = build_for_host(image)
    elif image.endswith(".o") and Path(image).is_file():
        src = Path(image).read_bytes()  # a local eBPF object: not an image, no policy applies
    else:
        from gadgetsmith.toolchain.oci.views import load_for_run
        from gadgetsmith.toolchain.policy import load_policy

        src, metadata, btfgen_layer = load_for_run(store_path(store), image, load_policy(policy),
                                                   no_verify)
    from gadgetsmith.runtime.containers.collection import ContainerCollection, ContainerError
    from gadgetsmith.runtime.events.output import Printer, sort_events
    from gadgetsmith.runtime.gadget import Gadget

    selector = opt.container_selector(containername, k8s_namespace, k8s_podname, k8s_containername,
                                      k8s_selector, runtimes)
    if host and not selector.is_empty():
        raise UsageError("--host shows every process: drop the container selectors or --host")
    try:
        selector.validate()
        sources = opt.container_sources(runtimes)
    except ContainerError as e:
        raise UsageError(str(e)) from None
    if not sources and not host:
        typer.echo("warning: no container runtime found (podman, docker): no container events "
                   "will match; use --host to trace host processes", err=True)
    collection = ContainerCollection(sources)

    def lost(n: int, ds: str) -> None:
        typer.echo(f"warning: {n} records lost by {ds} (the reader fell behind the kernel)",
                   err=True)

    def warn(text: str) -> None:
        typer.echo(f"warning: {text}", err=True)

    def debug(text: str) -> None:
        typer.echo(f"debug: {text}", err=True)

    try:
        g = Gadget(src, params=params, store=store_path(store), metadata=metadata,
                   filter=filter_, host=host, selector=selector, containers=collection,
                   on_lost=lost, on_warning=warn, on_debug=debug if state.debug else None,
                   btfgen_layer=btfgen_layer)
    except RuntimeGadgetError as e:
        collection.stop()
        raise GadgetError(str(e)) from None
    import signal

    # Ctrl-C / SIGTERM end the run like --timeout does: the loops see g.stopped, then
    # links, readers and maps are closed in order (no exception inside libbpf callbacks)
    previous = {sig: signal.signal(sig, lambda *_: g.stop())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ds = g.datasources[0]
        try:
            printer = Printer(output.value, ds.decoder.columns,
                              [f.strip() for f in fields.split(",")] if fields else None,
                              autoflush=False)
        except ValueError as e:
            raise UsageError(str(e)) from None
        try:
            if ds.kind == "tracer":
                if output is _Out.columns:
                    printer.header()
                for ev, extra in g.event_pairs(timeout=timeout, count=count,
                                               on_idle=printer.flush):
                    printer.event(ev, extra)
                printer.flush()
            elif ds.kind == "iterator":
                printer.batch(sort_events(g.snapshot(), sort))
            else:
                deadline = None if timeout is None else time.monotonic() + timeout
                rounds = 0
                while True:
                    wait = interval if deadline is None else min(interval,
                                                                 max(0.0, deadline - time.monotonic()))
                    if g.wait_stopped(wait):
                        break
                    printer.batch(sort_events(g.drain(), sort))
                    rounds += 1
                    if (count is not None and rounds >= count) or (
                            deadline is not None and time.monotonic() >= deadline):
                        break
        except KeyboardInterrupt:
            pass
        except RuntimeGadgetError as e:
            raise GadgetError(str(e)) from None
    finally:
        g.close()
        collection.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if g.lost_samples:
            typer.echo(f"warning: {g.lost_samples} records lost in total", err=True)
