"""The container engine, reached with the docker SDK: ``DOCKER_HOST``, Docker's socket, or
podman's Docker-compatible socket (``podman system service``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, ImageNotFound, NotFound
from gadgetsmith.runtime.oci.reference import InvalidReference, parse
from gadgetsmith.toolchain.builder import DEFAULT_IMAGE, PullPolicy
from gadgetsmith.toolchain.builder.image import LABEL, BuilderImage, cache_dir
from gadgetsmith.toolchain.errors import GadgetError, NotFoundError, UsageError
from gadgetsmith.toolchain.fsutil import owned_tempdir, owner_gone, owner_tag
from gadgetsmith.toolchain.registry.auth import AuthStore

#: how long one API call may take (an image load or pull of ~600 MB included)
API_TIMEOUT = 900
#: the Docker Engine API version asked for (Docker 20.10, podman 4): a fixed one, since
#: asking the engine (GET /version) costs podman a quarter of a second
API_VERSION = "1.41"


_BACKGROUND = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-info")


class EngineError(GadgetError):
    """No container engine answers, or it refused a request."""


class BuilderImageNotFound(NotFoundError):
    """The builder image is not in the engine (and the pull policy does not fetch it)."""


def socket_candidates(env: Mapping[str, str]) -> list[str]:
    """Where to look for an engine, in order: DOCKER_HOST alone when it is set."""
    if env.get("DOCKER_HOST"):
        return [env["DOCKER_HOST"]]
    runtime_dir = env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    paths = ["/var/run/docker.sock", "/run/podman/podman.sock", f"{runtime_dir}/podman/podman.sock",
             f"{runtime_dir}/docker.sock"]
    return [f"unix://{p}" for p in paths if os.path.exists(p)]


def _api_error(e: Exception) -> str:
    explanation = getattr(e, "explanation", None)
    text = str(explanation or e).strip().splitlines()
    return text[0] if text else type(e).__name__


class Engine:
    """One engine connection."""

    def __init__(self, client: Any, url: str) -> None:
        self.client = client
        self.url = url
        self._info: dict[str, Any] | None = None
        self._info_job: Future[Any] | None = None

    @classmethod
    def connect(cls, env: Mapping[str, str] | None = None) -> Engine:
        env = os.environ if env is None else env
        tried = socket_candidates(env)
        for url in tried:
            try:
                client = docker.DockerClient(base_url=url, version=API_VERSION, timeout=API_TIMEOUT)
                client.ping()
                engine = cls(client, url)
                # podman takes ~0.15 s to answer /info: ask now, while the build gets going
                engine._info_job = _BACKGROUND.submit(engine._call, client.info)
                return engine
            except (DockerException, OSError) as e:  # requests' errors are OSErrors
                last = f"{url}: {_api_error(e)}"
        where = f" ({last})" if tried else " (DOCKER_HOST is unset and no Docker or podman socket exists)"
        raise EngineError(
            f"no container engine answers{where}: start Docker or podman's socket ('podman system "
            "service --time=0 unix:///run/podman/podman.sock' and DOCKER_HOST=unix:///run/podman/"
            "podman.sock), or build with the host's clang (--local)")

    @property
    def info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = self._info_job.result() if self._info_job else self._call(self.client.info)
        assert self._info is not None
        return self._info

    @property
    def rootless(self) -> bool:
        """A rootless engine (Docker's or podman's): root in its containers is the caller."""
        options = self.info.get("SecurityOptions") or []
        return any("name=rootless" in str(o) for o in options)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (NotFound, ImageNotFound):
            raise
        except (DockerException, OSError) as e:
            raise EngineError(f"container engine at {self.url}: {_api_error(e)}") from None

    def image(self, ref: str) -> Any | None:
        try:
            return self._call(self.client.images.get, ref)
        except (NotFound, ImageNotFound):
            return None

    def load(self, archive: Path) -> None:
        with archive.open("rb") as f:
            self._call(self.client.images.load, f)

    def pull(self, ref: str, auth: AuthStore | None = None) -> Any:
        try:
            parsed = parse(ref)
        except InvalidReference as e:
            raise UsageError(f"--builder-image: {e}") from None
        creds = (auth or AuthStore()).get(parsed.domain)
        auth_config = {"username": creds.username, "password": creds.password} if creds else None
        tag = parsed.digest or parsed.tag or "latest"
        # the low-level call: the image API reports a failed pull inside the progress stream
        # (with a 200), which images.pull() would not look at
        stream = self._call(self.client.api.pull, f"{parsed.domain}/{parsed.repository}", tag=tag,
                            stream=True, decode=True, auth_config=auth_config)
        for event in self._call(list, stream):
            if isinstance(event, dict) and event.get("error"):
                message = str(event["error"]).strip().splitlines()[0]
                if "manifest unknown" in message or "not found" in message:
                    raise BuilderImageNotFound(f"builder image {ref}: not found in its registry "
                                               f"({message}): check the name, or push it there "
                                               "with 'gadget builder push'")
                raise EngineError(f"builder image {ref}: the engine could not pull it: {message}")
        found = self.image(ref)
        if found is None:
            raise BuilderImageNotFound(f"builder image {ref}: the engine pulled it but does not have it")
        return found

    def ensure_image(self, ref: str, policy: PullPolicy) -> Any:
        """The builder image, pulled as ``policy`` says (docker's --pull values)."""
        found = self.image(ref) if policy != "always" else None
        if found is not None:
            return found
        if policy == "never" or (policy == "missing" and ref == DEFAULT_IMAGE):
            hint = ("make it with 'gadget builder create'" if ref == DEFAULT_IMAGE else
                    "pull it (--builder-image-pull missing), or make it with 'gadget builder create "
                    f"-t {ref}'")
            raise BuilderImageNotFound(f"builder image {ref}: not in the container engine: {hint}")
        return self.pull(ref)

    def remove_stale_containers(self) -> None:
        """Builder containers whose gadget process is gone (killed before it removed them).
        Only those made from this boot and pid namespace: a pid means nothing elsewhere (a
        CI job in another container may share the engine)."""
        here = owner_labels()
        try:
            found = self.client.containers.list(all=True, filters={"label": f"{LABEL}.owner"})
        except (DockerException, OSError):
            return
        for c in found:
            labels = c.labels or {}
            if any(labels.get(k) != here[k] for k in (f"{LABEL}.boot", f"{LABEL}.pidns")):
                continue
            owner = labels.get(f"{LABEL}.owner", "")
            if owner and owner_gone(Path(f"builder-{owner}-x"), require_owner=True):
                remove_container(c)


def owner_labels() -> dict[str, str]:
    """Which `gadget` process a builder container belongs to: its ``pid.start``, this
    boot and this pid namespace."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pidns = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        boot = pidns = ""
    return {f"{LABEL}.owner": owner_tag(), f"{LABEL}.boot": boot, f"{LABEL}.pidns": pidns}


def remove_container(container: Any) -> None:
    """Remove (builder containers stop with SIGKILL); one that is already gone is fine."""
    try:
        container.remove(force=True, v=True)
        return
    except (DockerException, OSError):
        pass
    for step in (container.kill, lambda: container.remove(force=True, v=True)):
        try:
            step()
        except (DockerException, OSError):
            pass


def install(engine: Engine, image: BuilderImage, log: Callable[[str], None] | None = None) -> bool:
    """Load ``image`` into the engine unless it has it under that name and ID already;
    True when it was loaded."""
    have = engine.image(image.reference)
    if have is not None and have.id == image.id:
        return False
    if log:
        log(f"loading {image.reference} ({sum(la.size for la in image.layers) >> 20} MB) into {engine.url}")
    cache = cache_dir()
    with owned_tempdir(".load-", cache) as tmp:
        archive = tmp / "image.tar"
        with archive.open("wb") as f:
            image.write_archive(f)
        engine.load(archive)
    have = engine.image(image.reference)
    if have is None or have.id != image.id:
        got = have.id if have is not None else "nothing"
        raise EngineError(f"container engine at {engine.url}: loading {image.reference} gave {got}, "
                          f"not {image.id}")
    return True
