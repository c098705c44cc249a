"""Triggers: the commands a case runs to make the gadget report something.

A step runs on the host (``subprocess``, as the given uid/gid, in its own session so it
and its children can be killed together) or in the case's podman container
(``podman exec``). The pids of the processes a trigger starts are what
``{{ trigger.pid }}`` matches. On the host that is the child ``Popen`` started. In a
container the program is started through ``/bin/sh -c 'kill -STOP $$; exec "$@"'``: the
shell stops itself, the runner finds it in the container's pid namespace by a token in its
arguments, records its host pid and lets it go on, and ``exec`` keeps that pid for the
program.

The case container is started before the gadget (``podman run -d``, ``--network none``
by default, ``sleep 86400`` as its main process) and removed with ``podman rm -f -t 0``.
Without an image it runs a busybox image built once from the host's busybox-static.
podman reads its usual configuration (``CONTAINERS_CONF`` and containers.conf).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from gadgetsmith.toolchain.errors import GadgetError
from gadgetsmith.toolchain.fsutil import locked
from gadgetsmith.toolchain.testing.spec import ContainerSpec, Step
from gadgetsmith.toolchain.testing.templates import Template

BUSYBOX_REPO = "localhost/gadgetsmith/busybox"
#: the container's main process when the spec gives none
IDLE = ("sleep", "86400")
_WRAPPER = 'kill -STOP $$; exec "$@"'
OUTPUT_TAIL = 2000  # bytes of a step's output kept for the report


class TriggerError(GadgetError):
    """A trigger step could not run (no such program, podman failed, no /bin/sh ...)."""


def _comm(path: str) -> str:
    return os.path.basename(path)[:15]  # TASK_COMM_LEN - 1


# ---------------------------------------------------------------------------- podman
class Podman:
    def __init__(self) -> None:
        exe = shutil.which("podman")
        if exe is None:
            raise TriggerError("podman is not installed: container cases need it "
                               "(apt-get install podman runc)")
        self.exe = exe

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        try:
            proc = subprocess.run([self.exe, *args], capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise TriggerError(f"podman {args[0]} did not finish within {timeout:g} s") from None
        if check and proc.returncode != 0:
            err = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            raise TriggerError(f"podman {args[0]} failed: {err}")
        return proc

    def busybox_image(self) -> str:
        """A busybox image built from this host's static busybox (once; the tag is the
        binary's hash, so concurrent runs agree on it and nobody re-tags it)."""
        busybox = shutil.which("busybox") or "/bin/busybox"
        try:
            data = Path(busybox).read_bytes()
        except OSError:
            raise TriggerError("busybox is not installed: 'container: true' builds its image from "
                               "busybox-static (apt-get install busybox-static), or give "
                               "container.image") from None
        if _is_dynamic(data):
            raise TriggerError(f"{busybox} is dynamically linked: install busybox-static, or give "
                               "container.image")
        image = f"{BUSYBOX_REPO}:{hashlib.sha256(data).hexdigest()[:16]}"
        with locked(Path(tempfile.gettempdir()) / "gadgetsmith-busybox.lock"):
            if self.run("image", "exists", image, check=False).returncode == 0:
                return image
            with tempfile.TemporaryDirectory(prefix="gadget-busybox-") as tmp:
                root = Path(tmp) / "rootfs"
                for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "run"):
                    (root / d).mkdir(parents=True)
                (root / "tmp").chmod(0o1777)
                shutil.copy(busybox, root / "bin" / "busybox")
                applets = subprocess.run([busybox, "--list"], capture_output=True, text=True).stdout
                for a in applets.split():
                    if a != "busybox" and "/" not in a:
                        (root / "bin" / a).symlink_to("busybox")
                (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                                      "nobody:x:65534:65534:nobody:/:/bin/false\n")
                (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
                tar = Path(tmp) / "rootfs.tar"
                subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
                self.run("import", "--change", 'CMD ["/bin/sh"]', "--change", "ENV PATH=/bin",
                         str(tar), image)
        return image


def _is_dynamic(elf: bytes) -> bool:
    """Does an ELF64 file have a PT_INTERP program header (a dynamic loader)?"""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", elf, phoff + i * phentsize)
        if p_type == 3:
            return True
    return False


@dataclass
class CaseContainer:
    """The container a case starts before its gadget and removes at the end."""

    spec: ContainerSpec
    podman: Podman
    name: str = field(default_factory=lambda: f"gadget-test-{uuid.uuid4().hex[:12]}")
    id: str = ""
    pid: int = 0
    mntns: int = 0
    pidns: int = 0
    image: str = ""
    started: bool = False

    def start(self, variables: dict[str, list[str]]) -> None:
        self.image = self.spec.image or self.podman.busybox_image()
        command = [t.render(variables)[0] for t in self.spec.command] if self.spec.command else list(IDLE)
        args = ["run", "-d", "--name", self.name, "--network", self.spec.network,
                "--entrypoint", json.dumps(command)]
        for k, v in self.spec.labels.items():
            args += ["--label", f"{k}={v}"]
        self.started = True  # from here on, remove() must run
        try:
            self.podman.run(*args, self.image)
        except TriggerError as e:
            raise TriggerError(f"{e} (podman's configuration applies: containers.conf, "
                               "CONTAINERS_CONF; see README, 'Testing gadgets')") from None
        info = json.loads(self.podman.run("inspect", self.name).stdout or "[]")
        state = info[0].get("State", {}) if info else {}
        if not state.get("Running"):
            logs = self.podman.run("logs", self.name, check=False)
            tail = (logs.stdout + logs.stderr).strip().splitlines()[-1:] or ["no output"]
            raise TriggerError(f"container {self.name} ({self.image}) exited at once "
                               f"(status {state.get('ExitCode')}): {tail[0]}")
        self.id = info[0].get("Id", "")
        self.pid = int(state.get("Pid") or 0)
        try:
            self.mntns = os.stat(f"/proc/{self.pid}/ns/mnt").st_ino
            self.pidns = os.stat(f"/proc/{self.pid}/ns/pid").st_ino
        except OSError as e:
            raise TriggerError(f"container {self.name}: cannot read its namespaces: {e}") from None

    def variables(self) -> dict[str, list[str]]:
        return {"trigger.container.name": [self.name], "trigger.container.id": [self.id],
                "trigger.container.pid": [str(self.pid)], "trigger.container.mntns": [str(self.mntns)]}

    def remove(self) -> None:
        if self.started:
            self.podman.run("rm", "-f", "-t", "0", "--ignore", self.name, check=False)
            self.started = False


# ---------------------------------------------------------------------------- runs
@dataclass
class Run:
    """One run of a step: the process and what it printed."""

    step: Step
    argv: list[str]
    proc: subprocess.Popen
    output: IO[bytes]
    pid: int = 0  # the program's host pid (for a container step, found after start)
    comm: str = ""
    where: str = "host"
    returncode: int | None = None

    def describe(self) -> str:
        head = " ".join(self.argv) if not self.step.shell else self.argv[-1]
        state = ("running" if self.returncode is None else f"exited {self.returncode}"
                 if self.returncode >= 0 else f"killed by signal {-self.returncode}")
        where = "" if self.where == "host" else f" in {self.where}"
        text = f"$ {head}{where} (pid {self.pid or '?'}) {state}"
        self.output.seek(0, os.SEEK_END)
        size = self.output.tell()
        self.output.seek(max(0, size - OUTPUT_TAIL))
        out = self.output.read().decode("utf-8", "replace").strip()
        if out:
            text += "\n" + "\n".join("  " + line for line in out.splitlines()[-12:])
        return text


class Trigger:
    """Runs a case's steps in a thread; what it learns (pids, comms) bumps ``version``."""

    def __init__(self, steps: tuple[Step, ...], variables: dict[str, list[str]], cwd: Path,
                 container: CaseContainer | None = None, cancel: threading.Event | None = None,
                 ) -> None:
        self.steps = steps
        self.base = variables
        self.cwd = cwd
        self.container = container
        self.cancel = cancel or threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.runs: list[Run] = []
        self.pids: list[int] = []
        self.version = 0
        self.error: str | None = None
        self.finished = threading.Event()  # every foreground run ended (background ones started)
        self.finished_at: float | None = None
        self._thread: threading.Thread | None = None

    # -- what matchers see
    def variables(self) -> dict[str, list[str]]:
        with self._lock:
            out = dict(self.base)
            runs = [r for r in self.runs if r.pid]
            out["trigger.pid"] = [str(r.pid) for r in runs]
            out["trigger.comm"] = list(dict.fromkeys(r.comm for r in runs))
            out["trigger.uid"] = list(dict.fromkeys(str(r.step.uid if r.step.uid is not None
                                                        else os.getuid()) for r in runs))
            out["trigger.gid"] = list(dict.fromkeys(str(r.step.gid if r.step.gid is not None
                                                        else os.getgid()) for r in runs))
            return out

    @property
    def pid_set(self) -> set[int]:
        with self._lock:
            return set(self.pids)

    # -- lifecycle
    def start(self) -> Trigger:
        if not self.steps:
            return self
        self._thread = threading.Thread(target=self._main, name="gadget-test-trigger", daemon=True)
        self._thread.start()
        return self

    def _stopping(self) -> bool:
        return self._stop.is_set() or self.cancel.is_set()

    def _main(self) -> None:
        try:
            for step in self.steps:
                for i in range(step.repeat):
                    if self._stopping():
                        return
                    if i and self._wait(step.interval):
                        return
                    run = self._start(step)
                    if not step.background:
                        self._finish(run)
        except TriggerError as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - reported as the case's error, not lost in a thread
            self.error = f"trigger failed: {type(e).__name__}: {e}"
        finally:
            self.finished_at = time.monotonic()
            self.finished.set()

    def _wait(self, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while not self._stopping():
            left = end - time.monotonic()
            if left <= 0:
                return False
            self._stop.wait(min(left, 0.05))
        return True

    def _render(self, t: Template) -> str:
        try:
            return t.render(self.base)[0]
        except KeyError as e:
            raise TriggerError(f"{{{{ {e.args[0]} }}}} has no value (is the variable set?)") from None

    def _start(self, step: Step) -> Run:
        argv = [self._render(t) for t in step.command]
        if step.shell:
            argv = ["/bin/sh", "-c", argv[0]]
        env = {k: self._render(v) for k, v in step.env.items()}
        out = tempfile.TemporaryFile()
        if step.on == "container":
            run = self._start_in_container(step, argv, env, out)
        else:
            run = self._start_on_host(step, argv, env, out)
        with self._lock:
            self.runs.append(run)
            if run.pid:
                self.pids.append(run.pid)
            self.version += 1
        return run

    def _start_on_host(self, step: Step, argv: list[str], env: dict[str, str], out: IO[bytes]) -> Run:
        cwd = self.cwd / self._render(step.cwd) if step.cwd is not None else self.cwd
        kw: dict[str, Any] = {}
        if step.uid is not None or step.gid is not None:
            kw.update(user=step.uid, group=step.gid, extra_groups=[])
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw)
        except FileNotFoundError:
            what = argv[0] if (cwd.is_dir()) else f"working directory {cwd}"
            raise TriggerError(f"trigger {step.describe()!r}: {what}: no such file or directory"
                               ) from None
        except PermissionError as e:
            raise TriggerError(f"trigger {step.describe()!r}: {e.strerror}: {argv[0]}") from None
        comm = _comm(argv[0])
        with contextlib.suppress(OSError):
            comm = Path(f"/proc/{proc.pid}/comm").read_text().strip() or comm
        return Run(step, argv, proc, out, proc.pid, comm)

    def _start_in_container(self, step: Step, argv: list[str], env: dict[str, str],
                            out: IO[bytes]) -> Run:
        c = self.container
        assert c is not None
        token = f"gadget-trigger-{uuid.uuid4().hex}"
        args = [c.podman.exe, "exec"]
        if step.uid is not None or step.gid is not None:
            uid = step.uid if step.uid is not None else 0
            args += ["--user", f"{uid}:{step.gid if step.gid is not None else uid}"]
        for k, v in env.items():
            args += ["--env", f"{k}={v}"]
        if step.cwd is not None:
            args += ["--workdir", self._render(step.cwd)]
        args += [c.name, "/bin/sh", "-c", _WRAPPER, token, *argv]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        run = Run(step, argv, proc, out, 0, _comm(argv[0]), where=f"container {c.name}")
        deadline = time.monotonic() + 30
        while True:
            pid = _stopped_with(token, c.pidns)
            if pid:
                run.pid = pid
                os.kill(pid, signal.SIGCONT)
                return run
            if proc.poll() is not None:
                run.returncode = proc.returncode
                text = run.describe()
                if "/bin/sh" in text and ("not found" in text or "no such file" in text.lower()):
                    raise TriggerError(f"container {c.name}: the image {c.image} has no /bin/sh, "
                                       "which trigger steps need")
                raise TriggerError(f"podman exec in {c.name} failed: {text}")
            if time.monotonic() > deadline or self._stopping():
                self._kill(run)
                raise TriggerError(f"trigger {step.describe()!r}: the process did not start in "
                                   f"container {c.name} within 30 s")
            time.sleep(0.005)

    def _finish(self, run: Run) -> None:
        while run.proc.poll() is None:
            if self._stopping():
                return
            self._stop.wait(0.02)
        run.returncode = run.proc.returncode
        if run.where != "host" and run.returncode in (126, 127):
            raise TriggerError(f"trigger {run.step.describe()!r} could not run in {run.where}: "
                               f"{run.describe()}")

    def _kill(self, run: Run) -> None:
        if run.where != "host" and run.pid:
            with contextlib.suppress(OSError):
                os.kill(run.pid, signal.SIGKILL)
        if run.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(run.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.proc.wait(timeout=10)
        if run.returncode is None:
            run.returncode = run.proc.returncode

    def stop(self) -> None:
        """End the steps: nothing new starts, every process still running is killed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for run in list(self.runs):
            self._kill(run)

    def log(self) -> list[str]:
        return [r.describe() for r in self.runs]

    def close(self) -> None:
        for r in self.runs:
            with contextlib.suppress(OSError):
                r.output.close()


def _stopped_with(token: str, pidns: int) -> int:
    """The host pid of a stopped process in pid namespace ``pidns`` whose arguments hold
    ``token`` (0 when there is none yet)."""
    needle = token.encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                if needle not in f.read():
                    continue
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
            state = stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3]
            if state != b"T" or os.stat(f"/proc/{entry.name}/ns/pid").st_ino != pidns:
                continue
        except (OSError, ValueError):
            continue
        return int(entry.name)
    return 0
