#!/usr/bin/env python3
"""Differential runs against ig: the same image under `ig run` and `gadget run` (issue #23).

For each sample gadget and each gadget folder given, in a fresh local docker-registry
(plain HTTP, loopback only):

1. `gadget build`, `gadget sign` (a key made by `gadget keygen`) and `gadget push`; a
   second repository gets the same image by `gadget push --sign`;
2. `ig image pull` of it, `ig image verify --public-keys` with our key (must pass) and
   with another key (must fail), `ig image list/inspect -o json` of our own store layout;
3. `ig run` (signature verification on, with our key) and `gadget run --host`, each with
   the same trigger (a process opening a missing file, exec'ing a marker binary, sending a
   signal ...) started once the tool is attached, `-o json`;
4. the JSON events of the trigger compared field by field: the flattened field names,
   each field's JSON type, and the values of the fields that do not change from one run
   to the next (pids, times and the like are compared by type only).

ig runs in its own mount namespace (`unshare -m`): its store (/var/lib/ig/oci-store, fixed
in ig) is a bind mount of a temporary directory, so the machine's own ig store is never
touched; where /proc/1/ns cannot be read (here PID 1 belongs to the sandbox), this
script's /proc/PID/ns is bound over it, so ig's local manager finds the host's namespaces.

Prints a Markdown report (also written with --out); exits 1 when ig refused something or
a difference was found, 0 when everything agreed.

Usage (root, ig built outside the project):
    .venv/bin/python bench/ig_diff.py /path/to/ig [GADGET_DIR ...] [--out FILE] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
GADGET = str(Path(sys.executable).parent / "gadget")
PASSWORD = "ig-diff"
IG_STORE = "/var/lib/ig/oci-store"

#: fields whose values change from one run to the next: compared by JSON type only
VOLATILE_SUFFIXES = ("pid", "tid", "timestamp", "timestamp_raw", "ppid", "startedAt",
                     "containerStartedAt", "mntns_id", "netns_id", "start_time")
VOLATILE_EXACT = {"count", "fd"}


# ------------------------------------------------------------------------------ triggers
@dataclass
class Trigger:
    """What makes a gadget emit events, and how to tell the trigger's events apart."""

    describe: str
    run: Any  # callable(workdir) -> None, run repeatedly while the tool is attached
    match: Any  # callable(flat event) -> bool
    ig_args: list[str] = field(default_factory=list)
    gadget_args: list[str] = field(default_factory=list)
    duration: float = 4.0
    snapshot: bool = False  # an iterator: one batch, not a stream


def _marker_binary(work: Path, name: str) -> Path:
    p = work / name
    if not p.exists():
        shutil.copy("/bin/true", p)
    return p


def _exec_marker(work: Path) -> None:
    subprocess.run([str(_marker_binary(work, "igdiffexec")), "--igdiff"], check=False)


def _open_missing(work: Path) -> None:
    subprocess.run(["cat", "/nonexistent-igdiff"], stderr=subprocess.DEVNULL, check=False)


_SIGNALLED: set[int] = set()


def _signal_child(work: Path) -> None:
    p = subprocess.Popen(["sleep", "5"])
    _SIGNALLED.add(p.pid)
    time.sleep(0.05)
    os.kill(p.pid, 10)  # SIGUSR1: its default action ends the sleep
    p.wait()


_GETPID: set[int] = set()


def _getpid_child(work: Path) -> None:
    p = subprocess.Popen([sys.executable, "-c", "import os\nfor _ in range(3): os.getpid()"])
    _GETPID.add(p.pid)
    p.wait()


def _long_sleeper(work: Path) -> None:
    return None


def _activity(work: Path) -> None:
    """A bit of everything for a gadget without a known trigger: getpid, open, exec, kill."""
    subprocess.run([sys.executable, "-c", "import os\nfor _ in range(5): os.getpid()"], check=False)
    _open_missing(work)
    _signal_child(work)


TRIGGERS: dict[str, Trigger] = {
    "trace_open": Trigger(
        "cat /nonexistent-igdiff (openat, ENOENT)", _open_missing,
        lambda e: e.get("proc.comm") == "cat" and e.get("fname") == "/nonexistent-igdiff"),
    "trace_exec": Trigger(
        "exec of a copy of /bin/true named igdiffexec", _exec_marker,
        lambda e: e.get("proc.comm") == "igdiffexec" or "igdiffexec" in str(e.get("args", ""))
        or "igdiffexec" in str(e.get("filename", "")) or "igdiffexec" in str(e.get("exepath", ""))),
    "trace_signal": Trigger(
        "SIGUSR1 sent to a sleep child", _signal_child,
        lambda e: e.get("sig") == "SIGUSR1" and e.get("tpid") in _SIGNALLED),
    "snapshot_process": Trigger(
        "one iteration; the sleeper 'igdiffsnap' must be listed", _long_sleeper,
        lambda e: e.get("proc.comm") == "igdiffsnap" or e.get("comm") == "igdiffsnap",
        snapshot=True),
    # FIELDS_PROGRAM of tests/integration/test_datasource_model.py (one event per getpid, every kind)
    "fields": Trigger(
        "getpid by a python child", _getpid_child, lambda e: e.get("proc.pid") in _GETPID),
    "top_syscall": Trigger(
        "cat /nonexistent-igdiff while the map is drained every second", _open_missing,
        lambda e: True, ig_args=["--map-fetch-interval", "1s"],
        gadget_args=["--map-fetch-interval", "1"]),
}
GENERIC = Trigger("none known: getpid, open, exec and kill meanwhile; names and types compared",
                  _activity, lambda e: True)


# ------------------------------------------------------------------------------ helpers
def sh(argv: list[str], *, env: dict | None = None, timeout: float = 300, check: bool = True,
       input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: rc={proc.returncode}\n{proc.stderr[-3000:]}")
    return proc


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(doc, dict) and doc:
        for k, v in doc.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    out[prefix[:-1]] = doc
    return out


def jtype(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def volatile(key: str) -> bool:
    last = key.rsplit(".", 1)[-1]
    return last in VOLATILE_EXACT or any(last.endswith(s) for s in VOLATILE_SUFFIXES)


def parse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{") and not line.startswith("["):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        for ev in doc if isinstance(doc, list) else [doc]:
            if isinstance(ev, dict):
                events.append(flatten(ev))
    return events


class IgSandbox:
    """ig in private mount + PID namespaces with its store bound to ``store``."""

    def __init__(self, ig: str, store: Path) -> None:
        self.ig = ig
        self.store = store
        store.mkdir(parents=True, exist_ok=True)

    def argv(self, *args: str) -> list[str]:
        # ig takes PID 1's namespaces for the host's; where /proc/1/ns cannot be read (a
        # sandbox's PID 1), this process's namespaces stand in for them
        pid1 = (f"ls /proc/1/ns/mnt >/dev/null 2>&1 || mount --bind /proc/{os.getpid()}/ns "
                "/proc/1/ns || exit 1; ")
        inner = pid1 + f'mount --bind "$0" {IG_STORE} && exec "$@"'
        return ["unshare", "-m", "sh", "-c", inner, str(self.store), self.ig, *args]

    def run(self, *args: str, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
        return sh(self.argv(*args), timeout=timeout, check=check)


def run_with_trigger(argv: list[str], trig: Trigger, work: Path, settle: float,
                     env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """Start ``argv``, wait ``settle`` s for it to attach, run the trigger for
    trig.duration s, and collect its output (the tool's own --timeout ends it)."""
    stop = threading.Event()

    def loop() -> None:
        time.sleep(settle)
        end = time.monotonic() + trig.duration
        while not stop.is_set() and time.monotonic() < end:
            trig.run(work)
            time.sleep(0.3)

    t0 = time.monotonic()
    th = threading.Thread(target=loop, daemon=True)
    th.start()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    stop.set()
    th.join()
    return proc, time.monotonic() - t0


# ------------------------------------------------------------------------------ comparison
@dataclass
class Diff:
    name: str
    ig_events: int = 0
    our_events: int = 0
    only_ig: list[str] = field(default_factory=list)
    only_ours: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.only_ig or self.only_ours or self.types or self.values
                    or not self.ig_events or not self.our_events)


def compare(name: str, ig: list[dict], ours: list[dict], compare_values: bool) -> Diff:
    d = Diff(name, len(ig), len(ours))
    if not ig or not ours:
        return d
    ig_keys = set().union(*ig)
    our_keys = set().union(*ours)
    d.only_ig = sorted(ig_keys - our_keys)
    d.only_ours = sorted(our_keys - ig_keys)
    for k in sorted(ig_keys & our_keys):
        it = {jtype(e[k]) for e in ig if k in e}
        ot = {jtype(e[k]) for e in ours if k in e}
        if it != ot:
            d.types.append(f"`{k}`: ig {'/'.join(sorted(it))}, gadget {'/'.join(sorted(ot))}")
    if compare_values:
        stable = sorted(k for k in ig_keys & our_keys if not volatile(k))
        for k in stable:
            iv = {json.dumps(e.get(k), sort_keys=True) for e in ig}
            ov = {json.dumps(e.get(k), sort_keys=True) for e in ours}
            if iv != ov:
                d.values.append(f"`{k}`: ig {sorted(iv)[:3]}, gadget {sorted(ov)[:3]}")
    return d


# ------------------------------------------------------------------------------ main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ig", help="path to the ig binary (built outside the project)")
    ap.add_argument("dirs", nargs="*", help="more gadget folders (default: sample-gadgets/*)")
    ap.add_argument("--out", help="also write the report to this file")
    ap.add_argument("--only", action="append", help="only these gadget names")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("error: ig_diff.py runs eBPF gadgets: run it as root", file=sys.stderr)
        return 2
    ig = str(Path(a.ig).resolve())
    if not os.access(ig, os.X_OK):
        print(f"error: {a.ig}: not an executable ig binary", file=sys.stderr)
        return 2
    dirs = sorted(p for p in (REPO / "sample-gadgets").iterdir() if (p / "gadget.yaml").exists())
    dirs += [Path(x).resolve() for x in a.dirs]
    if a.only:
        dirs = [d for d in dirs if d.name in a.only]

    from tests.registry_util import RegistryServer

    work = Path(tempfile.mkdtemp(prefix="ig-diff-"))
    reg = RegistryServer(work / "registry").start()
    lines: list[str] = []
    failed = False
    try:
        env = {**os.environ, "GADGETSMITH_STORE": str(work / "store"), "GADGET_PASSWORD": PASSWORD}
        sh([GADGET, "keygen", "--output-prefix", str(work / "ours")], env=env)
        sh([GADGET, "keygen", "--output-prefix", str(work / "other")], env=env)
        pub = (work / "ours.pub").read_text()
        other_pub = (work / "other.pub").read_text()
        version = sh([ig, "version"], check=False).stdout.strip()
        lines += [f"ig {version}; gadgetsmith at {_head()}; kernel {os.uname().release}", ""]
        box = IgSandbox(ig, work / "ig-store")
        diffs: list[Diff] = []
        accepted: list[str] = []
        for d in dirs:
            name = d.name
            ref = f"{reg.host}/ig-diff/{name}:v1"
            trig = TRIGGERS.get(name, GENERIC)
            sh([GADGET, "build", str(d), "-t", ref], env=env, timeout=600)
            # signed in the store (what export and ig reading the store see), pushed with it
            sh([GADGET, "sign", ref, "--key", str(work / "ours.key")], env=env)
            sh([GADGET, "push", ref, "--insecure-registries", reg.host], env=env)
            pull = box.run("image", "pull", ref, "--insecure-registries", reg.host)
            ok_pull = pull.returncode == 0
            v_ok = box.run("image", "verify", ref, f"--public-keys={pub}")
            v_bad = box.run("image", "verify", ref, f"--public-keys={other_pub}")
            accepted.append(
                f"| {name} | {'yes' if ok_pull else 'NO: ' + _last(pull.stderr)} | "
                f"{'yes' if v_ok.returncode == 0 else 'NO: ' + _last(v_ok.stderr)} | "
                f"{'refused' if v_bad.returncode != 0 else 'ACCEPTED'} |")
            failed |= not ok_pull or v_ok.returncode != 0 or v_bad.returncode == 0

            sleeper = None
            if trig.snapshot:
                sleeper = subprocess.Popen([_sleeper(work, "igdiffsnap"), "60"])
            try:
                ig_timeout = "3" if trig.snapshot else str(int(trig.duration + 4))
                ig_argv = ["run", ref, f"--public-keys={pub}", "--insecure-registries", reg.host,
                           "--host", "-o", "json", "--timeout", ig_timeout, *trig.ig_args]
                ig_proc, _ = run_with_trigger(box.argv(*ig_argv), trig, work, settle=2.5)
                if "unknown flag: --host" in ig_proc.stderr:
                    # ig has --host only for gadgets with container fields
                    ig_argv.remove("--host")
                    ig_proc, _ = run_with_trigger(box.argv(*ig_argv), trig, work, settle=2.5)
                our_proc, _ = run_with_trigger(
                    [GADGET, "run", ref, "--host", "-o", "json", "--timeout", ig_timeout,
                     *trig.gadget_args], trig, work, settle=2.0, env=env)
            finally:
                if sleeper is not None:
                    sleeper.kill()
                    sleeper.wait()
            ig_ev = [e for e in parse_events(ig_proc.stdout) if trig.match(e)]
            our_ev = [e for e in parse_events(our_proc.stdout) if trig.match(e)]
            diff = compare(name, ig_ev, our_ev, compare_values=trig is not GENERIC and name != "top_syscall")
            diff.notes.append(f"trigger: {trig.describe}")
            if ig_proc.returncode != 0 or not ig_ev:
                diff.notes.append(f"ig rc={ig_proc.returncode}: {_last(ig_proc.stderr)}")
            if our_proc.returncode != 0 or not our_ev:
                diff.notes.append(f"gadget rc={our_proc.returncode}: {_last(our_proc.stderr)}")
            diffs.append(diff)
            failed |= diff.differs

        extra: list[str] = []
        if dirs:
            # a second destination pushed with --sign: ig accepts exactly one signature layer
            first = f"{reg.host}/ig-diff/{dirs[0].name}:v1"
            second = f"{reg.host}/ig-diff-second/{dirs[0].name}:v1"
            sh([GADGET, "push", first, second, "--insecure-registries", reg.host, "--sign", "--key",
                str(work / "ours.key")], env=env)
            box.run("image", "pull", second, "--insecure-registries", reg.host)
            v2 = box.run("image", "verify", second, f"--public-keys={pub}")
            said = "verified" if v2.returncode == 0 else "REFUSED: " + _last(v2.stderr)
            extra.append(f"- `push --sign` of the same image to a second repository, then "
                         f"`ig image verify` there: {said}")
            failed |= v2.returncode != 0
            # gadget export -> ig image import (into a fresh ig store)
            tar = work / "export.tar"
            refs = [f"{reg.host}/ig-diff/{d.name}:v1" for d in dirs]
            sh([GADGET, "export", *refs, str(tar)], env=env)
            imp_box = IgSandbox(ig, work / "ig-import")
            imp = imp_box.run("image", "import", str(tar))
            listed_imp = imp_box.run("image", "list", "-o", "json")
            n = len(json.loads(listed_imp.stdout or "[]")) if listed_imp.returncode == 0 else 0
            v3 = imp_box.run("image", "verify", refs[0], f"--public-keys={pub}")
            said = "verified" if v3.returncode == 0 else "REFUSED: " + _last(v3.stderr)
            extra.append(f"- `gadget export` of {len(refs)} images -> `ig image import`: "
                         f"rc={imp.returncode}, ig lists {n}; `ig image verify` of the imported "
                         f"{dirs[0].name}: {said}")
            failed |= imp.returncode != 0 or n != len(refs) or v3.returncode != 0

        # ig reading our store layout directly (the bind mount is our gadget store)
        ours_box = IgSandbox(ig, work / "store")
        listed = ours_box.run("image", "list", "-o", "json")
        ours_list = json.loads(sh([GADGET, "list", "--format", "json"], env=env).stdout)
        lines += ["## What ig accepts", "",
                  "| gadget | `ig image pull` | `ig image verify` (our key) | other key |",
                  "|---|---|---|---|", *accepted, "", *extra, ""]
        lines += ["## `ig image list -o json` of gadget's store", ""]
        if listed.returncode == 0:
            theirs = json.loads(listed.stdout or "[]")
            want = {(e["reference"], e["digest"]) for e in ours_list}
            got = {(f"{x.get('Repository')}:{x.get('Tag')}", x.get("Digest")) for x in theirs}
            no_created = sorted(f"{x.get('Repository')}:{x.get('Tag')}" for x in theirs
                                if not x.get("Created"))
            lines.append(f"ig lists {len(theirs)} image(s), gadget {len(ours_list)}; "
                         f"missing in ig: {sorted(want - got) or 'none'}; "
                         f"without a CREATED time in ig: {no_created or 'none'}")
            failed |= bool(want - got) or bool(no_created)
            first = f"{reg.host}/ig-diff/{dirs[0].name}:v1" if dirs else None
            if first:
                ins = ours_box.run("image", "inspect", first, f"--public-keys={pub}", "-o", "json")
                lines.append(f"`ig image inspect {dirs[0].name}` of our store: rc={ins.returncode}"
                             + (f" ({_last(ins.stderr)})" if ins.returncode else
                                f", keys {sorted(json.loads(ins.stdout or '{}'))}"))
                failed |= ins.returncode != 0
        else:
            lines.append(f"ig image list failed: {_last(listed.stderr)}")
            failed = True
        lines += ["", "## Events: `ig run` vs `gadget run --host`, field by field", ""]
        for diff in diffs:
            lines.append(f"### {diff.name}: {diff.ig_events} ig / {diff.our_events} gadget events"
                         + ("" if diff.differs else ": identical"))
            for n in diff.notes:
                lines.append(f"- {n}")
            if diff.only_ig:
                lines.append(f"- only ig: {', '.join(f'`{k}`' for k in diff.only_ig)}")
            if diff.only_ours:
                lines.append(f"- only gadget: {', '.join(f'`{k}`' for k in diff.only_ours)}")
            for t in diff.types:
                lines.append(f"- type: {t}")
            for v in diff.values:
                lines.append(f"- value: {v}")
            lines.append("")
    finally:
        reg.stop()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    report = "\n".join(lines)
    print(report)
    if a.out:
        Path(a.out).write_text(report + "\n")
    return 1 if failed else 0


def _sleeper(work: Path, name: str) -> str:
    p = work / name
    if not p.exists():
        shutil.copy(shutil.which("sleep") or "/bin/sleep", p)
    return str(p)


def _last(text: str) -> str:
    lines = [x for x in (text or "").strip().splitlines() if x.strip()]
    return lines[-1][:300] if lines else "(no output)"


def _head() -> str:
    try:
        return sh(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]).stdout.strip()
    except (RuntimeError, OSError):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
