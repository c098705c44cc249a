"""README's shell examples run as written on a fresh clone (issue 15).

Every command line of README's plain code blocks is either run here, in README's order,
with a fresh HOME (so an empty store and caches) in a directory that has the clone's
``sample-gadgets/``, or listed in :data:`NOT_RUN` with the reason it cannot run on this
machine. A new example has to be one or the other: the first test fails for a line that
is neither. ``sudo`` is the command itself (the suite runs as root; this machine has no
sudo).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from ..conftest import GADGET, REPO, need_root
from ..podman_util import Podman

README = REPO / "README.md"

#: a line that is a command a reader types (not output, not a file listing)
COMMAND = re.compile(r"^(\$ )?(sudo )?(gadget|cd|make|skopeo|export|pytest|printf|ln|"
                     r"\.venv/bin/python)\b")

#: line prefix -> why it does not run here
NOT_RUN = {
    "make demo": "the Makefile's own targets (the suite runs inside 'make test')",
    "make test": "the Makefile's own targets (the suite runs inside 'make test')",
    "make setup": "the Makefile's own targets (the suite runs inside 'make test')",
    "make lint": "the Makefile's own targets (the suite runs inside 'make test')",
    "sudo ln -sf": "installs into /usr/local/bin (the test puts .venv/bin on PATH instead)",
    "gadget btf import linux-image-": "needs Debian kernel packages (tests/integration/test_btfgen.py "
                                      "imports real ones)",
    "gadget btf list ~/kernels": "the archive of the btf import above",
    "gadget build my_gadget --btfgen": "the archive of the btf import above",
    "gadget check my_gadget --kernels ~/kernels": "the archive of the btf import above",
    "gadget login registry.corp": "a registry named registry.corp (tests/integration/test_registry.py "
                                  "runs each against a local docker-registry)",
    "gadget push registry.corp": "a registry named registry.corp",
    "gadget pull registry.corp": "a registry named registry.corp",
    "gadget copy registry.corp": "a registry named registry.corp",
    "gadget push --policy policy.yaml": "a policy.yaml of the reader's (tests/integration/test_policy.py)",
    "sudo gadget test trace_open:dev --spec my.test.yaml": "my.test.yaml is the spec shown "
                                                           "under 'A spec'",
    "sudo gadget test my.test.yaml": "my.test.yaml is the spec shown under 'A spec'",
    "printf '%s' \"$REGISTRY_TOKEN\"": "gadget publish to a registry named registry.corp",
    ".venv/bin/python bench/": "benchmarks (bench/RESULTS.md)",
    "gadget builder create": "needs a container engine's socket (tests/integration/test_builder.py "
                             "runs the builder against podman's)",
    "gadget build sample-gadgets/trace_open --builder": "the builder image of 'gadget builder create'",
    "sudo .venv/bin/python bench/": "benchmarks that need an ig binary or IG's gadgets folder",
}


def blocks() -> list[tuple[int, list[str]]]:
    """README's plain (no language) code blocks that hold commands: (line, commands)."""
    out: list[tuple[int, list[str]]] = []
    lines = README.read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = lines[i].strip()
        if fence.startswith("```"):
            start, body = i + 1, []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            cmds = _commands(body) if fence == "```" else []  # ```c, ```yaml: no commands
            if cmds:
                out.append((start, cmds))
        i += 1
    return out


def _commands(body: list[str]) -> list[str]:
    """The command lines of a block: continuation lines joined, ``$ `` prompts dropped."""
    cmds: list[str] = []
    joined = ""
    for line in body:
        joined = f"{joined} {line.strip()}" if joined else line
        if joined.endswith("\\"):
            joined = joined[:-1].rstrip()
            continue
        if COMMAND.match(joined):
            cmds.append(joined.removeprefix("$ "))
        joined = ""
    return cmds


def _skipped(cmd: str) -> str | None:
    return next((why for prefix, why in NOT_RUN.items() if cmd.startswith(prefix)), None)


def test_every_example_runs_here_or_says_why_not() -> None:
    found = [cmd for _, cmds in blocks() for cmd in cmds]
    assert len(found) > 30, found
    # each NOT_RUN entry still names an example (one that is gone comes off the list)
    assert [p for p in NOT_RUN if not any(c.startswith(p) for c in found)] == []
    # the ones that run: gadget commands, and shell commands around them
    runs = [c for c in found if _skipped(c) is None]
    assert any(c.startswith("sudo gadget build sample-gadgets/snapshot_process") for c in runs)
    assert any(c.startswith("sudo gadget build sample-gadgets/top_syscall") for c in runs)


def _script(cmds: list[str]) -> str:
    lines = ["set -e", 'sudo() { "$@"; }']
    for cmd in cmds:
        why = _skipped(cmd)
        lines.append(f"# not run: {cmd} ({why})" if why else cmd)
    return "\n".join(lines) + "\n"


def test_readme_examples_run_as_written(tmp_path: Path, clang_available: None) -> None:
    """Each block in README's order, in one directory with a fresh HOME (an empty store):
    a later block uses what an earlier one built (trace_open:dev, my_gadget/)."""
    need_root("the README's examples load eBPF programs as root")
    (tmp_path / "sample-gadgets").symlink_to(REPO / "sample-gadgets")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GADGETSMITH_", "XDG_", "REGISTRY_AUTH", "DOCKER_CONFIG"))}
    env.update(HOME=str(home), PATH=f"{Path(GADGET).parent}:{env['PATH']}")
    # this machine's podman needs runc and explicit ulimits, as README's 'Testing gadgets' says
    (tmp_path / "podman").mkdir()
    env["CONTAINERS_CONF"] = Podman(tmp_path / "podman").env["CONTAINERS_CONF"]
    ran = 0
    for line, cmds in blocks():
        if all(_skipped(c) for c in cmds):
            continue
        script = _script(cmds)
        proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=1800)
        assert proc.returncode == 0, (f"README.md:{line}\n{script}\nstdout:\n"
                                      f"{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
        assert "Traceback" not in proc.stderr, (line, proc.stderr[-3000:])
        ran += sum(1 for c in cmds if not _skipped(c))
    assert ran >= 25
