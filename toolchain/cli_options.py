"""Command-line options shared by several commands (typer and the stdlib only)."""

from __future__ import annotations

from typing import Annotated

import typer

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
