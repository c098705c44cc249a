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
    for err in coll.errors:
        typer.echo(f"warning: {err}", err=True)
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
