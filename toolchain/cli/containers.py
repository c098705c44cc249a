"""`gadget containers`: what the container collection sees on this host."""

from __future__ import annotations

import typer
from gadgetsmith.runtime.containers.collection import ContainerCollection, ContainerError
from gadgetsmith.toolchain.cli import options as opt
from gadgetsmith.toolchain.cli.common import Output, OutputOpt, print_json
from gadgetsmith.toolchain.cli.output import print_table
from gadgetsmith.toolchain.errors import GadgetError


def containers(
    runtimes: opt.Runtimes = None,
    containername: opt.ContainerName = None,
    k8s_namespace: opt.K8sNamespace = None,
    k8s_podname: opt.K8sPodName = None,
    k8s_containername: opt.K8sContainerName = None,
    k8s_selector: opt.K8sSelector = None,
    fmt: OutputOpt = Output.columns,
) -> None:
    """List the containers gadgets can see, with their namespaces.

    Example: gadget containers --runtimes podman -o json
    """
    try:
        sources = opt.container_sources(runtimes)
    except ContainerError as e:
        raise GadgetError(f"--runtimes: {e}") from None
    coll = ContainerCollection(sources)
    coll.refresh()
    _say_unanswered(coll, len(sources))
    sel = opt.container_selector(containername, k8s_namespace, k8s_podname, k8s_containername,
                                 k8s_selector)
    try:
        sel.validate()
    except ContainerError as e:
        raise GadgetError(str(e)) from None
    found = coll.select(sel)
    if fmt.structured:
        print_json([c.as_dict() for c in found], fmt)
        return
    print_table(
        ["RUNTIME", "NAME", "ID", "PID", "MNTNS", "IMAGE", "K8S.NAMESPACE", "K8S.POD"],
        [[c.runtime, c.name, c.id[:12], str(c.pid), str(c.mntns), c.image, c.k8s_namespace,
          c.k8s_pod_name] for c in found],
    )


def _say_unanswered(coll: ContainerCollection, sources: int) -> None:
    """A runtime that did not answer is not a runtime without containers: an error when
    none answered (exit 1), else a warning naming what the list lacks."""
    why = [f"{name}: {text}" for name, text in coll.unanswered.items()]
    if why and len(why) == sources:
        raise GadgetError("no container runtime answered, so no container can be listed ("
                          + "; ".join(why) + ")")
    for name, text in coll.unanswered.items():
        typer.echo(f"warning: {name} did not answer, its containers are not listed: {text}",
                   err=True)
    for err in coll.errors:
        if not any(err == text for text in coll.unanswered.values()):
            typer.echo(f"warning: {err}", err=True)
