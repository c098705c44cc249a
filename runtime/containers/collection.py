"""Container collection: which containers run here, and their namespaces.

A gadget's events carry kernel identifiers (mount / network namespace inodes). This module
maps them to containers: it discovers containers from the runtimes present (podman through
its CLI, Docker-compatible engines through their API socket), reads each container's
namespaces from /proc/<pid>/ns, derives Kubernetes metadata from the usual
``io.kubernetes.*`` labels, and keeps following containers that start and stop.

The same selectors that choose containers for enrichment fill the in-kernel mount
namespace filter (``gadget_mntns_filter_map``) in the runtime.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from gadgetsmith.runtime.errors import ContainerError, SelectorError

K8S_POD_NAME = "io.kubernetes.pod.name"
K8S_NAMESPACE = "io.kubernetes.pod.namespace"
K8S_CONTAINER_NAME = "io.kubernetes.container.name"
K8S_POD_UID = "io.kubernetes.pod.uid"


@dataclass
class Container:
    id: str
    name: str
    runtime: str
    pid: int
    image: str = ""
    image_digest: str = ""
    started_at: str = ""
    mntns: int = 0
    netns: int = 0
    cgroup_path: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def k8s_namespace(self) -> str:
        return self.labels.get(K8S_NAMESPACE, "")

    @property
    def k8s_pod_name(self) -> str:
        return self.labels.get(K8S_POD_NAME, "")

    @property
    def k8s_container_name(self) -> str:
        return self.labels.get(K8S_CONTAINER_NAME, "")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["k8s"] = {
            "namespace": self.k8s_namespace,
            "podName": self.k8s_pod_name,
            "containerName": self.k8s_container_name,
        }
        return d

    @property
    def pod_labels(self) -> dict[str, str]:
        """The pod's own labels (a Kubernetes container's, without io.kubernetes.*)."""
        if not self.k8s_pod_name:
            return {}
        return {k: v for k, v in self.labels.items() if not k.startswith("io.kubernetes.")}

    def enrichment(self) -> dict[str, Any]:
        """Fields IG adds to events: ``runtime.*`` and ``k8s.*``, with ig's names and JSON
        types: ``containerStartedAt`` in ns since the epoch (0 unknown), ``podLabels`` one
        ``k=v,k2=v2`` string (sorted here; ig's order is Go's map order), ``hostnetwork``,
        and ``node``/``owner`` (from the Kubernetes API in ig: empty here)."""
        return {
            "runtime": {
                "containerName": self.name,
                "runtimeName": self.runtime,
                "containerId": self.id,
                "containerPid": self.pid,
                "containerImageName": self.image,
                "containerImageDigest": self.image_digest,
                "containerStartedAt": started_at_ns(self.started_at),
            },
            "k8s": {
                "namespace": self.k8s_namespace,
                "podName": self.k8s_pod_name,
                "containerName": self.k8s_container_name,
                "podLabels": ",".join(f"{k}={v}" for k, v in sorted(self.pod_labels.items())),
                "hostnetwork": bool(self.netns) and self.netns == host_netns(),
                "node": "",
                "owner": {"kind": "", "name": ""},
            },
        }


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?\d*"
                      r"\s*(Z|[+-]\d\d:?\d\d)?")


def started_at_ns(text: str | int | None) -> int:
    """A runtime's start/creation time as ns since the epoch, as ig prints it: RFC 3339
    text (docker, podman; any fraction and offset), or an integer (CRI: ns, or s); 0 when
    unknown or unreadable."""
    if isinstance(text, int):
        return text if text > 10**12 else text * 10**9
    t = (text or "").strip()
    if t.isdigit():
        return started_at_ns(int(t))
    m = _RFC3339.match(t)
    if not m or t.startswith("0001-01-01"):
        return 0
    day, clock, frac, off = m.groups()
    off = (off or "Z").replace("Z", "+00:00")
    if len(off) == 5:
        off = off[:3] + ":" + off[3:]
    try:
        whole = dt.datetime.fromisoformat(f"{day}T{clock}{off}")
    except ValueError:
        return 0
    return int(whole.timestamp()) * 10**9 + int((frac or "0").ljust(9, "0"))


def namespace_inode(pid: int, ns: str) -> int:
    """Inode of /proc/<pid>/ns/<ns> (0 if the process is gone or unreadable)."""
    try:
        return os.stat(f"/proc/{pid}/ns/{ns}").st_ino
    except OSError:
        return 0


def host_netns() -> int:
    """The host's network namespace: that of PID 1, or (when PID 1's is unreadable, as in
    some sandboxes) this process's own, which a --network host container shares too."""
    return namespace_inode(1, "net") or namespace_inode(os.getpid(), "net")


def cgroup_path(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    for line in lines:  # prefer the unified hierarchy, else the first v1 line
        if line.startswith("0::"):
            return line[3:]
    return lines[0].split(":", 2)[2] if lines else ""


def _fill_namespaces(c: Container) -> Container:
    if c.pid > 0:
        c.mntns = namespace_inode(c.pid, "mnt")
        c.netns = namespace_inode(c.pid, "net")
        c.cgroup_path = cgroup_path(c.pid)
    return c


# ---------------------------------------------------------------------------- sources
class PodmanSource:
    """Rootful podman, through its CLI (works with or without the API service)."""

    name = "podman"

    def __init__(self, podman: str | None = None, env: dict[str, str] | None = None) -> None:
        self.podman = podman or shutil.which("podman")
        self.env = env
        self._events_proc: subprocess.Popen[str] | None = None

    def available(self) -> bool:
        return self.podman is not None

    def why_unavailable(self) -> str:
        return "podman: the podman command is not installed"

    def _run(self, *args: str, timeout: float = 30) -> str:
        assert self.podman
        return _run([self.podman, *args], f"podman {args[0]}", timeout=timeout, env=self.env)

    def list(self) -> list[Container]:
        out = self._run("ps", "--format", "json", "--no-trunc")
        rows = json.loads(out or "[]") or []
        ids = [r["Id"] for r in rows if r.get("Id")]
        if not ids:
            return []
        try:
            details = {d["Id"]: d for d in json.loads(self._run("inspect", "--type", "container", *ids))}
            gone: set[str] = set()
        except ContainerError:
            # one container removed between ps and inspect fails the whole inspect (and the
            # refresh would drop every container): ask for each one, skip those gone
            details = {}
            for cid in ids:
                try:
                    details.update({d["Id"]: d for d in json.loads(
                        self._run("inspect", "--type", "container", cid))})
                except ContainerError as e:
                    if "no such" not in str(e).lower():  # not gone: podman did not answer
                        raise
            gone = set(ids) - set(details)
        result = []
        for r in rows:
            if r.get("Id") in gone:
                continue
            d = details.get(r.get("Id"), {})
            state = d.get("State") or {}
            pid = int(state.get("Pid") or r.get("Pid") or 0)
            if pid <= 0:
                continue
            names = r.get("Names") or [d.get("Name", "")]
            labels = (d.get("Config") or {}).get("Labels") or r.get("Labels") or {}
            result.append(_fill_namespaces(Container(
                id=r["Id"],
                name=names[0] if names else "",
                runtime="podman",
                pid=pid,
                image=d.get("ImageName") or r.get("Image", ""),
                image_digest=d.get("ImageDigest", "") or "",
                started_at=str(state.get("StartedAt") or ""),
                labels={str(k): str(v) for k, v in labels.items()},
            )))
        return result

    def events(self, stop: threading.Event, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(action, container_id)`` for start/died/remove events until stopped."""
        assert self.podman
        proc = subprocess.Popen(
            [self.podman, "events", "--format", "json", "--filter", "type=container"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env,
        )
        self._events_proc = proc
        try:
            assert proc.stdout
            while not stop.is_set():
                line = proc.stdout.readline()
                if not line:
                    break
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                status = ev.get("Status") or ev.get("status") or ""
                cid = ev.get("ID") or ev.get("id") or ""
                if status in ("start", "died", "remove", "stop", "cleanup") and cid:
                    callback(status, cid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()

    def stop_events(self) -> None:
        proc = self._events_proc
        if proc is not None and proc.poll() is None:
            proc.terminate()


class DockerApiSource:
    """A Docker-compatible engine API socket (Docker, or `podman system service`)."""

    name = "docker"

    def __init__(self, socket_path: str = "/var/run/docker.sock", runtime_name: str = "docker"):
        self.socket_path = socket_path
        self.runtime_name = runtime_name

    def available(self) -> bool:
        return _is_socket(self.socket_path)

    def why_unavailable(self) -> str:
        return f"{self.runtime_name}: no API socket at {self.socket_path}"

    def list(self) -> list[Container]:
        try:
            import docker  # the docker SDK (optional dependency)
        except ImportError as e:
            raise ContainerError("the docker SDK is not installed: pip install docker") from e
        try:
            client = docker.DockerClient(base_url=f"unix://{self.socket_path}", timeout=10)
            items = client.api.containers()
            result = []
            for item in items:
                d = client.api.inspect_container(item["Id"])
                pid = int((d.get("State") or {}).get("Pid") or 0)
                if pid <= 0:
                    continue
                cfg = d.get("Config") or {}
                result.append(_fill_namespaces(Container(
                    id=d["Id"],
                    name=(d.get("Name") or "").lstrip("/"),
                    runtime=self.runtime_name,
                    pid=pid,
                    image=cfg.get("Image", ""),
                    image_digest=d.get("Image", ""),
                    started_at=str((d.get("State") or {}).get("StartedAt") or ""),
                    labels={str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()},
                )))
            client.close()
            return result
        except Exception as e:  # noqa: BLE001 - any API failure is "runtime unavailable"
            raise ContainerError(f"{self.runtime_name} API at {self.socket_path}: {e}") from None


def _run(argv: list[str], what: str, failed: str | None = None, timeout: float = 30,
         env: dict[str, str] | None = None) -> str:
    """A runtime CLI's stdout; ContainerError naming ``what`` (``failed`` for a non-zero
    exit, default ``what``) when it cannot run or fails."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise ContainerError(f"{what} did not answer within {timeout:g} s") from None
    except OSError as e:
        raise ContainerError(f"{what}: {e}") from None
    if proc.returncode != 0:
        raise ContainerError(f"{failed or what} failed: {proc.stderr.strip()[:300]}")
    return proc.stdout


def _run_json(argv: list[str], what: str, timeout: float = 30) -> Any:
    out = _run(argv, what, timeout=timeout)
    try:
        return json.loads(out or "null")
    except ValueError as e:
        raise ContainerError(f"{what}: unreadable output ({e})") from None


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


class ContainerdSource:
    """containerd through its `ctr` CLI, every namespace (Kubernetes uses k8s.io).

    containerd has no container names: the Kubernetes container name label is used when
    present, else the container id. Not exercised by the test suite (no containerd on the
    CI machines); it is only used when `ctr` and the socket exist.
    """

    name = "containerd"

    def __init__(self, address: str = "/run/containerd/containerd.sock",
                 ctr: str | None = None) -> None:
        self.address = address
        self.ctr = ctr or shutil.which("ctr")

    def available(self) -> bool:
        return self.ctr is not None and _is_socket(self.address)

    def why_unavailable(self) -> str:
        if self.ctr is None:
            return "containerd: the ctr command is not installed"
        return f"containerd: no socket at {self.address}"

    def _ctr(self, *args: str) -> str:
        assert self.ctr
        return _run([self.ctr, "--address", self.address, *args], f"ctr {args[0]}",
                    failed=f"ctr {' '.join(args[:3])}")

    def list(self) -> list[Container]:
        result = []
        for ns in self._ctr("namespaces", "list", "-q").split():
            tasks = {}
            for line in self._ctr("-n", ns, "tasks", "list").splitlines()[1:]:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "RUNNING" and parts[1].isdigit():
                    tasks[parts[0]] = int(parts[1])
            for cid, pid in tasks.items():
                try:
                    info = json.loads(self._ctr("-n", ns, "containers", "info", cid) or "{}")
                except ValueError:
                    info = {}
                labels = {str(k): str(v) for k, v in (info.get("Labels") or {}).items()}
                result.append(_fill_namespaces(Container(
                    id=cid, name=labels.get(K8S_CONTAINER_NAME) or cid, runtime="containerd",
                    pid=pid, image=str(info.get("Image") or ""),
                    started_at=str(info.get("CreatedAt") or ""), labels=labels)))
        return result


class CrioSource:
    """CRI-O through `crictl` on its CRI socket. Not exercised by the test suite (no
    CRI-O on the CI machines); only used when `crictl` and the socket exist."""

    name = "cri-o"

    def __init__(self, socket_path: str = "/var/run/crio/crio.sock",
                 crictl: str | None = None) -> None:
        self.socket_path = socket_path
        self.crictl = crictl or shutil.which("crictl")

    def available(self) -> bool:
        return self.crictl is not None and _is_socket(self.socket_path)

    def why_unavailable(self) -> str:
        if self.crictl is None:
            return "cri-o: the crictl command is not installed"
        return f"cri-o: no socket at {self.socket_path}"

    def list(self) -> list[Container]:
        assert self.crictl
        base = [self.crictl, "--runtime-endpoint", f"unix://{self.socket_path}"]
        listing = _run_json([*base, "ps", "-o", "json"], "crictl ps") or {}
        result = []
        for c in listing.get("containers") or []:
            cid = c.get("id") or ""
            if not cid or c.get("state") not in (None, "CONTAINER_RUNNING"):
                continue
            detail = _run_json([*base, "inspect", "-o", "json", cid], "crictl inspect") or {}
            pid = int((detail.get("info") or {}).get("pid") or 0)
            if pid <= 0:
                continue
            labels = {str(k): str(v) for k, v in (c.get("labels") or {}).items()}
            result.append(_fill_namespaces(Container(
                id=cid, name=(c.get("metadata") or {}).get("name") or cid, runtime="cri-o",
                pid=pid, image=(c.get("image") or {}).get("image") or "",
                image_digest=c.get("imageRef") or "", started_at=str(c.get("createdAt") or ""),
                labels=labels)))
        return result


RUNTIMES = ("podman", "docker", "containerd", "cri-o")


def _check_runtimes(names: set[str], prefix: str = "") -> None:
    unknown = names - set(RUNTIMES)
    if unknown:
        raise SelectorError(f"{prefix}unknown container runtime {sorted(unknown)[0]!r}: "
                             f"use {', '.join(RUNTIMES)}")


def default_sources(runtimes: Iterable[str] | None = None,
                    unavailable: list[str] | None = None) -> list[Any]:
    """Sources for the requested runtimes (default: every runtime found on this host).
    Requested runtimes that are not present here are skipped; with ``unavailable`` (a
    list) the reasons are appended to it."""
    wanted = {r.strip() for r in runtimes if r.strip()} if runtimes else set(RUNTIMES)
    _check_runtimes(wanted)
    candidates = {"podman": PodmanSource, "docker": DockerApiSource,
                  "containerd": ContainerdSource, "cri-o": CrioSource}
    sources: list[Any] = []
    for name in RUNTIMES:
        if name not in wanted:
            continue
        src = candidates[name]()
        if src.available():
            sources.append(src)
        elif unavailable is not None and runtimes:
            unavailable.append(src.why_unavailable())
    return sources


# ---------------------------------------------------------------------------- selection
@dataclass
class ContainerSelector:
    """IG-style selection: comma lists, a leading ``!`` excludes. Empty = everything."""

    containername: str = ""
    k8s_namespace: str = ""
    k8s_podname: str = ""
    k8s_containername: str = ""
    runtimes: str = ""
    k8s_selector: str = ""  # key=value,key2=value2: every label must match

    @staticmethod
    def _match(spec: str, value: str) -> bool:
        if not spec:
            return True
        items = [s.strip() for s in spec.split(",") if s.strip()]
        includes = [s for s in items if not s.startswith("!")]
        excludes = [s[1:] for s in items if s.startswith("!")]
        if value in excludes:
            return False
        return not includes or value in includes

    def matches(self, c: Container) -> bool:
        return (
            self._match(self.containername, c.name)
            and self._match(self.k8s_namespace, c.k8s_namespace)
            and self._match(self.k8s_podname, c.k8s_pod_name)
            and self._match(self.k8s_containername, c.k8s_container_name)
            and self._match(self.runtimes, c.runtime)
            and self._labels_match(c)
        )

    def validate(self) -> None:
        """Reject selector text that can never mean what the user wants."""
        for item in (s.strip() for s in self.k8s_selector.split(",")):
            if item and ("=" not in item or not item.split("=", 1)[0].strip()):
                raise SelectorError(
                    f"--k8s-selector {self.k8s_selector!r}: expected key=value[,key=value...]")
        if self.runtimes:
            _check_runtimes({r.strip() for r in self.runtimes.split(",") if r.strip()},
                            "--runtimes: ")

    def _labels_match(self, c: Container) -> bool:
        for item in (s.strip() for s in self.k8s_selector.split(",")):
            if not item:
                continue
            key, _, value = item.partition("=")
            if c.labels.get(key.strip()) != value.strip():
                return False
        return True

    def is_empty(self) -> bool:
        return not any((self.containername, self.k8s_namespace, self.k8s_podname,
                        self.k8s_containername, self.runtimes, self.k8s_selector))


# ---------------------------------------------------------------------------- collection
class ContainerCollection:
    """The containers running now, kept current while a gadget runs.

    ``on_add`` / ``on_remove`` subscribers (e.g. the runtime's mount-namespace filter map)
    are called from a background thread. Lookups are by mount or network namespace inode.
    """

    def __init__(self, sources: list[Any] | None = None,
                 rescan_interval: float | None = None) -> None:
        """``rescan_interval``: seconds between full rescans; by default 30 s when every
        source streams events (the rescan is only a safety net there), else 5 s."""
        self.sources = default_sources() if sources is None else sources
        if rescan_interval is None:
            streaming = bool(self.sources) and all(hasattr(s, "events") for s in self.sources)
            rescan_interval = 30.0 if streaming else 5.0
        self.rescan_interval = rescan_interval
        self._by_id: dict[str, Container] = {}
        self._by_mntns: dict[int, Container] = {}  # replaced whole: lock-free lookups
        # netns -> the containers in it (several: a pod, podman --network container:X);
        # never the host's network namespace (that of PID 1), which --network host shares
        self._by_netns: dict[int, tuple[Container, ...]] = {}
        self.generation = 0  # bumped (after both maps are replaced) when either changes
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()  # one refresh() at a time (rescans, events)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.on_add: list[Callable[[Container], None]] = []
        self.on_remove: list[Callable[[Container], None]] = []
        self.errors: list[str] = []
        #: runtime name -> why it did not answer the last scan (its containers are those of
        #: the scan before, none on the first)
        self.unanswered: dict[str, str] = {}
        self._listed: dict[int, list[Container]] = {}  # source index -> its last listing
        self._first: threading.Event | None = None  # the first scan of start(background=True)

    # snapshot ---------------------------------------------------------------------
    def refresh(self) -> None:
        """Scan every source and apply what changed (subscribers called). Scans run one at
        a time: an older scan finishing after a newer one would undo what it saw."""
        with self._scan_lock:
            self._refresh()

    def _refresh(self) -> None:
        found: dict[str, Container] = {}
        unanswered: dict[str, str] = {}
        for i, src in enumerate(self.sources):
            try:
                self._listed[i] = src.list()
            except ContainerError as e:
                # a runtime that did not answer this time keeps what it listed before: a
                # `podman ps` slow on a loaded machine is not every container stopping
                self.errors.append(str(e))
                unanswered[getattr(src, "name", type(src).__name__)] = str(e)
            for c in self._listed.get(i, []):
                found[c.id] = c
        self.unanswered = unanswered
        with self._lock:
            added = [c for cid, c in found.items() if cid not in self._by_id]
            removed = [c for cid, c in self._by_id.items() if cid not in found]
            self._by_id = found
            by_mntns = {c.mntns: c for c in found.values() if c.mntns}
            host = host_netns()
            grouped: dict[int, list[Container]] = {}
            for c in sorted(found.values(), key=lambda c: c.id):
                if c.netns and c.netns != host:
                    grouped.setdefault(c.netns, []).append(c)
            by_netns = {n: tuple(cs) for n, cs in grouped.items()}
            if by_mntns != self._by_mntns or by_netns != self._by_netns:
                self._by_mntns = by_mntns
                self._by_netns = by_netns
                self.generation += 1
        for c in added:
            for cb in self.on_add:
                cb(c)
        for c in removed:
            for cb in self.on_remove:
                cb(c)

    def containers(self) -> list[Container]:
        with self._lock:
            return sorted(self._by_id.values(), key=lambda c: (c.runtime, c.name))

    def by_mntns(self, mntns: int) -> Container | None:
        return self._by_mntns.get(mntns) if mntns else None

    def by_netns(self, netns: int) -> Container | None:
        """The first container (by id) in that network namespace; None for the host's."""
        cs = self._by_netns.get(netns) if netns else None
        return cs[0] if cs else None

    def namespaces(self) -> tuple[int, dict[int, Container], dict[int, tuple[Container, ...]]]:
        """``(generation, mntns -> container, netns -> containers)`` as of now. Both maps are
        replaced whole when containers change (never modified), so they need no lock; the
        generation is read first, so maps newer than it only cause one more rebuild."""
        gen = self.generation
        return gen, self._by_mntns, self._by_netns

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop` (its threads follow changes)."""
        return bool(self._threads)

    def select(self, selector: ContainerSelector) -> list[Container]:
        return [c for c in self.containers() if selector.matches(c)]

    # following --------------------------------------------------------------------
    def start(self, background: bool = False) -> None:
        """Take a first snapshot and follow changes (events where available, plus rescans).
        ``background``: the first snapshot is taken by the rescan thread, so start()
        returns at once (see :meth:`scanning` and :meth:`wait_scanned`)."""
        if background:
            self._first = threading.Event()
        else:
            self.refresh()
        t = threading.Thread(target=self._rescan_loop, args=(background,),
                             name="containers-rescan", daemon=True)
        t.start()
        self._threads.append(t)
        for src in self.sources:
            if hasattr(src, "events"):
                t = threading.Thread(target=self._events_loop, args=(src,),
                                     name=f"containers-events-{src.name}", daemon=True)
                t.start()
                self._threads.append(t)

    def scanning(self) -> bool:
        """True while the first snapshot of ``start(background=True)`` is being taken."""
        return self._first is not None and not self._first.is_set()

    def wait_scanned(self, timeout: float = 10.0) -> bool:
        """Wait until the first snapshot of ``start(background=True)`` is taken (False:
        not within ``timeout``)."""
        return self._first is None or self._first.wait(timeout)

    def _rescan_loop(self, first: bool = False) -> None:
        if first and self._first is not None:
            try:
                self.refresh()
            finally:
                self._first.set()
        while not self._stop.wait(self.rescan_interval):
            self.refresh()

    def _events_loop(self, src: Any) -> None:
        try:
            src.events(self._stop, lambda action, cid: self.refresh())
        except (ContainerError, OSError) as e:
            self.errors.append(str(e))

    def stop(self) -> None:
        self._stop.set()
        for src in self.sources:
            if hasattr(src, "stop_events"):
                src.stop_events()
        for t in self._threads:
            t.join(timeout=6)
        self._threads.clear()

    def __enter__(self) -> ContainerCollection:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()


__all__ = ["K8S_CONTAINER_NAME", "K8S_NAMESPACE", "K8S_POD_NAME", "K8S_POD_UID", "RUNTIMES", "Container",
           "ContainerCollection", "ContainerError", "ContainerSelector", "ContainerdSource",
           "CrioSource", "DockerApiSource", "PodmanSource", "SelectorError", "cgroup_path",
           "default_sources", "host_netns", "namespace_inode"]
