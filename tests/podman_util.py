"""Real podman containers for tests: rootful podman + runc, image from busybox-static."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

from .conftest import need_root, need_tool, skip_or_fail

IMAGE = "localhost/gadgetsmith-busybox:test"


class Podman:
    def __init__(self, workdir: Path) -> None:
        self.podman = need_tool("podman")
        need_tool("runc")
        need_root("rootful podman needs root")
        busybox = shutil.which("busybox") or "/bin/busybox"
        if not Path(busybox).exists():
            skip_or_fail("busybox-static is not installed")
        self.workdir = workdir
        hard = subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout.strip()
        conf = workdir / "containers.conf"
        conf.write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={hard}:{hard}", "nproc=32768:32768"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
        )
        self.env = dict(os.environ, CONTAINERS_CONF=str(conf))
        self.names: list[str] = []
        if self.run("image", "exists", IMAGE, check=False).returncode != 0:
            rootfs = workdir / "rootfs"
            for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "run"):
                (rootfs / d).mkdir(parents=True, exist_ok=True)
            shutil.copy(busybox, rootfs / "bin" / "busybox")
            applets = subprocess.run([busybox, "--list"], capture_output=True, text=True).stdout
            for a in applets.split():
                if a != "busybox":
                    (rootfs / "bin" / a).symlink_to("busybox")
            (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
            (rootfs / "etc" / "group").write_text("root:x:0:\n")
            tar = workdir / "rootfs.tar"
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
            self.run("import", "--change", 'CMD ["/bin/sh"]', "--change", "ENV PATH=/bin",
                     str(tar), IMAGE)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([self.podman, *args], capture_output=True, text=True, env=self.env,
                              timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {proc.stderr}")
        return proc

    def start(self, *cmd: str, labels: dict[str, str] | None = None, name: str | None = None,
              network: str | None = None, image: str = IMAGE) -> str:
        """``network``: podman's --network (``none``, ``host``, ``container:NAME``)."""
        name = name or f"gs-test-{uuid.uuid4().hex[:8]}"
        args = ["run", "-d", "--name", name]
        if network:
            args += ["--network", network]
        for k, v in (labels or {}).items():
            args += ["--label", f"{k}={v}"]
        args += [image, *(cmd or ("sleep", "1000"))]
        self.run(*args)
        self.names.append(name)
        return name

    def inspect(self, name: str, fmt: str) -> str:
        return self.run("inspect", "-f", fmt, name).stdout.strip()

    def pid(self, name: str) -> int:
        """The host pid of the container's first process."""
        return int(self.inspect(name, "{{.State.Pid}}"))

    def import_rootfs(self, rootfs: Path, tag: str) -> str:
        """An image of ``rootfs`` (the directories a container needs are added); its name."""
        for d in ("proc", "sys", "dev", "tmp", "etc"):
            (rootfs / d).mkdir(parents=True, exist_ok=True)
        (rootfs / "tmp").chmod(0o1777)
        tar = rootfs.parent / f"{rootfs.name}.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
        # a name of its own: each pytest-xdist worker builds these images, and a worker that
        # re-imported (or removed) the other's tag under its running containers broke them
        image = f"localhost/gadgetsmith-{tag}-{os.urandom(4).hex()}:test"
        self.run("import", str(tar), image)
        return image

    def cleanup(self) -> None:
        if self.names:
            # --ignore: without it, one name already gone (a test removed it) makes podman
            # 4.3 remove none of the others, silently
            self.run("rm", "-f", "-t", "0", "--ignore", *self.names, check=False)
            listed = self.run("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()
            left = sorted(set(self.names) & set(listed))
            self.names.clear()
            assert not left, f"test containers left behind: {left}"
