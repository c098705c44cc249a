"""Container collection against real podman containers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from gadgetsmith.runtime.containers import (
    Container,
    ContainerCollection,
    ContainerSelector,
    PodmanSource,
)

from .conftest import run_gadget
from .podman_util import Podman


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory):
    p = Podman(tmp_path_factory.mktemp("podman"))
    yield p
    p.cleanup()


def test_discovers_podman_containers_with_namespaces(podman: Podman) -> None:
    name = podman.start(labels={
        "io.kubernetes.pod.name": "cart-7d9",
        "io.kubernetes.pod.namespace": "shop",
        "io.kubernetes.container.name": "cart",
        "app": "cart",
    })
    pid = int(podman.inspect(name, "{{.State.Pid}}"))
    cid = podman.inspect(name, "{{.Id}}")
    coll = ContainerCollection([PodmanSource(env=podman.env)])
    coll.refresh()
    found = {c.name: c for c in coll.containers()}
    assert name in found, coll.errors
    c = found[name]
    assert c.id == cid and c.pid == pid and c.runtime == "podman"
    assert c.mntns == os.stat(f"/proc/{pid}/ns/mnt").st_ino
    assert c.netns == os.stat(f"/proc/{pid}/ns/net").st_ino
    assert c.mntns != os.stat("/proc/self/ns/mnt").st_ino
    assert "gadgetsmith-busybox" in c.image
    assert (c.k8s_namespace, c.k8s_pod_name, c.k8s_container_name) == ("shop", "cart-7d9", "cart")
    assert coll.by_mntns(c.mntns) is c
    enr = c.enrichment()
    assert enr["runtime"]["containerName"] == name
    assert enr["k8s"]["podLabels"] == {"app": "cart"}


def test_follows_containers_started_and_stopped(podman: Podman) -> None:
    src = PodmanSource(env=podman.env)
    added: list[Container] = []
    removed: list[Container] = []
    with ContainerCollection([src], rescan_interval=0.5) as coll:
        coll.on_add.append(added.append)
        coll.on_remove.append(removed.append)
        name = podman.start()
        assert coll.wait_for(lambda: any(c.name == name for c in added), timeout=15)
        podman.run("rm", "-f", "-t", "0", name)
        assert coll.wait_for(lambda: any(c.name == name for c in removed), timeout=15)
        assert all(c.name != name for c in coll.containers())


@pytest.mark.parametrize(
    "spec, expected",
    [
        (ContainerSelector(), {"web", "db", "cart"}),
        (ContainerSelector(containername="web"), {"web"}),
        (ContainerSelector(containername="web,db"), {"web", "db"}),
        (ContainerSelector(containername="!web"), {"db", "cart"}),
        (ContainerSelector(k8s_namespace="shop"), {"cart"}),
        (ContainerSelector(k8s_namespace="shop", k8s_podname="other"), set()),
        (ContainerSelector(runtimes="docker"), set()),
    ],
)
def test_selectors(spec: ContainerSelector, expected: set[str]) -> None:
    cs = [
        Container("1", "web", "podman", 1),
        Container("2", "db", "podman", 2),
        Container("3", "cart", "podman", 3, labels={"io.kubernetes.pod.namespace": "shop",
                                                   "io.kubernetes.pod.name": "cart-1"}),
    ]
    assert {c.name for c in cs if spec.matches(c)} == expected


def test_gadget_containers_command(podman: Podman, tmp_path: Path) -> None:
    name = podman.start()
    res = run_gadget("containers", "--runtimes", "podman", "--format", "json",
                     env={"CONTAINERS_CONF": podman.env["CONTAINERS_CONF"]})
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert name in rows and rows[name]["mntns"] > 0
    res = run_gadget("containers", "-c", name, env={"CONTAINERS_CONF": podman.env["CONTAINERS_CONF"]})
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["RUNTIME", "NAME", "ID"] and len(lines) == 2
    res = run_gadget("containers", "--runtimes", "cri-o", check=False)
    assert res.returncode == 1 and "unknown container runtime" in res.stderr


def test_docker_api_source_via_podman_service(podman: Podman, tmp_path: Path) -> None:
    """The Docker-compatible API (here served by `podman system service`) through the SDK."""
    import subprocess
    import time

    from gadgetsmith.runtime.containers import DockerApiSource

    sock = tmp_path / "podman.sock"
    svc = subprocess.Popen([podman.podman, "system", "service", "--time=0", f"unix://{sock}"],
                           env=podman.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        name = podman.start()
        src = DockerApiSource(str(sock), runtime_name="podman-api")
        assert src.available()
        found = {c.name: c for c in src.list()}
        assert name in found
        pid = int(podman.inspect(name, "{{.State.Pid}}"))
        assert found[name].pid == pid
        assert found[name].mntns == os.stat(f"/proc/{pid}/ns/mnt").st_ino
    finally:
        svc.terminate()
        svc.wait(timeout=10)
