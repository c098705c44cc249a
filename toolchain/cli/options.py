"""Container selection: the options `gadget run` and `gadget containers` share."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from gadgetsmith.runtime.containers.collection import ContainerSelector, default_sources

# container selection: `gadget run` and `gadget containers`
Runtimes = Annotated[
    str | None,
    typer.Option("--runtimes",
                 help="Comma-separated container runtimes to use (podman, docker, containerd, "
                      "cri-o)."),
]
ContainerName = Annotated[
    str | None, typer.Option("--containername", "-c", help="Containers by name (a,b,!c).")
]
K8sNamespace = Annotated[str | None, typer.Option("--k8s-namespace")]
K8sPodName = Annotated[str | None, typer.Option("--k8s-podname")]
K8sContainerName = Annotated[str | None, typer.Option("--k8s-containername")]
K8sSelector = Annotated[str | None, typer.Option("--k8s-selector", help="Pod labels: key=value,...")]


def container_selector(containername: str | None, k8s_namespace: str | None,
                       k8s_podname: str | None, k8s_containername: str | None,
                       k8s_selector: str | None, runtimes: str | None = None) -> ContainerSelector:
    """The ContainerSelector for the options above (not yet validated)."""
    return ContainerSelector(containername or "", k8s_namespace or "", k8s_podname or "",
                             k8s_containername or "", runtimes or "", k8s_selector or "")


def container_sources(runtimes: str | None) -> list[Any]:
    """Container sources for ``--runtimes`` (default: every runtime on this host); warns on
    stderr for each requested runtime this host does not have. Raises ContainerError for
    an unknown runtime name."""
    unavailable: list[str] = []
    sources = default_sources(runtimes.split(",") if runtimes else None, unavailable)
    for why in unavailable:
        typer.echo(f"warning: {why}", err=True)
    return sources
