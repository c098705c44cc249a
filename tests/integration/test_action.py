"""action.yml, the composite GitHub Action, run here the way a runner runs it.

The runner's part is played by :class:`Runner`: it reads action.yml, gives every input its
value or default, evaluates the ``${{ }}`` expressions the action uses (``inputs.*``,
``steps.<id>.outputs.*``, ``runner.temp``; any other expression fails the test), and runs
each ``run:`` step with ``bash --noprofile --norc -eo pipefail FILE`` in the step's
``env:`` plus what a runner exports (GITHUB_ACTION_PATH, GITHUB_OUTPUT, a fresh file per
step, GITHUB_STEP_SUMMARY, RUNNER_TEMP, CI). Step outputs are read back from
GITHUB_OUTPUT, the action's outputs from ``outputs.*.value``. The install step runs for
real: the packages are installed here, and its venv is this checkout's .venv (an editable
install of the action's own source), so it installs nothing; that it is idempotent is
checked by running it twice.

The registry is docker-registry with TLS and htpasswd; the action's results are checked
there (the pushed image verifies with the public key, nothing pushed on failure)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..conftest import GADGET, REPO, load_yaml, run_gadget
from ..registry_util import (  # noqa: F401 - fixtures
    PASSWORD,
    USER,
    RegistryServer,
    auth_registry,
    registry,
    registry_server,
)
from ..signing_util import PASSWORD as KEY_PASSWORD
from ..signing_util import key_pair
from .test_interop_tools import tool_path
from .test_publish import FAILING, make_gadget, pushed_repositories

ACTION = REPO / "action.yml"
pytestmark = pytest.mark.usefixtures("root", "clang_available")
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class StepRun:
    id: str
    returncode: int
    log: str  # stdout + stderr, as the job log shows it
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class ActionRun:
    steps: list[StepRun]
    outputs: dict[str, str]
    summary: str  # GITHUB_STEP_SUMMARY

    @property
    def ok(self) -> bool:
        return all(s.returncode == 0 for s in self.steps)

    @property
    def log(self) -> str:
        return "\n".join(s.log for s in self.steps)


def read_outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT's two forms: ``name=value`` and ``name<<DELIM`` ... ``DELIM``."""
    out: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            end = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1:end])
            i = end + 1
            continue
        name, value = line.split("=", 1)
        out[name] = value
        i += 1
    return out


class Runner:
    def __init__(self, work: Path, inputs: dict[str, str], env: dict[str, str] | None = None,
                 action_path: Path = REPO, temp: Path | None = None) -> None:
        self.action_path = action_path
        self.action = load_yaml((action_path / "action.yml").read_text())
        self.work = work
        self.temp = temp or work / "runner-temp"
        self.temp.mkdir(parents=True, exist_ok=True)
        # the install step's venv: this checkout's editable install (nothing to install)
        venv = self.temp / "gadgetsmith-venv"
        if not venv.exists():
            venv.symlink_to(Path(sys.executable).parent.parent)
        self.summary = work / "step-summary.md"
        declared = self.action["inputs"]
        unknown = set(inputs) - set(declared)
        assert not unknown, f"not inputs of action.yml: {unknown}"
        self.inputs = {k: str(v.get("default", "")) for k, v in declared.items()}
        self.inputs.update(inputs)
        missing = [k for k, v in declared.items() if v.get("required") and not self.inputs[k]]
        assert not missing, missing
        self.step_outputs: dict[str, dict[str, str]] = {}
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("GITHUB_", "INPUT_", "GADGET"))}
        self.env.update(HOME=str(work / "home"), CI="true", GITHUB_ACTIONS="true",
                        GITHUB_ACTION_PATH=str(action_path), GITHUB_WORKSPACE=str(work),
                        RUNNER_TEMP=str(self.temp), GITHUB_STEP_SUMMARY=str(self.summary),
                        GADGETSMITH_STORE=str(work / "store"))
        self.env.update(env or {})

    def expr(self, text: str) -> str:
        def value(m: re.Match) -> str:
            e = m.group(1)
            if m2 := re.fullmatch(r"inputs\.([\w-]+)", e):
                return self.inputs[m2.group(1)]
            if m2 := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", e):
                return self.step_outputs.get(m2.group(1), {}).get(m2.group(2), "")
            if e == "runner.temp":
                return str(self.temp)
            if e == "github.action_path":
                return str(self.action_path)
            raise AssertionError(f"action.yml uses an expression this test does not evaluate: {e}")
        return EXPR.sub(value, str(text))

    def run_step(self, i: int, step: dict) -> StepRun:
        assert step.get("shell") == "bash", step  # composite run steps must name their shell
        assert not EXPR.search(step["run"]), f"an expression pasted into a script: {step['run']}"
        sid = step.get("id", f"step{i}")
        out_file = self.temp / f"output-{sid}"
        out_file.write_text("")
        script = self.temp / f"step-{sid}.sh"
        script.write_text(step["run"])
        env = dict(self.env, GITHUB_OUTPUT=str(out_file))
        env.update({k: self.expr(v) for k, v in (step.get("env") or {}).items()})
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                              env=env, cwd=self.work, capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL)
        res = StepRun(sid, proc.returncode, proc.stdout + proc.stderr, read_outputs(out_file))
        self.step_outputs[sid] = res.outputs
        return res

    def run(self) -> ActionRun:
        assert self.action["runs"]["using"] == "composite"
        steps: list[StepRun] = []
        for i, step in enumerate(self.action["runs"]["steps"]):
            steps.append(self.run_step(i, step))
            if steps[-1].returncode != 0:
                break  # a failed step fails the action; later steps do not run
        outputs = {k: self.expr(v["value"]) for k, v in self.action["outputs"].items()}
        summary = self.summary.read_text() if self.summary.exists() else ""
        return ActionRun(steps, outputs, summary)


# ---------------------------------------------------------------------------- static checks
def test_action_yml_passes_githubs_action_schema() -> None:
    exe = Path(sys.executable).parent / "check-jsonschema"
    res = subprocess.run([str(exe), "--builtin-schema", "vendor.github-actions", str(ACTION)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_workflows_pass_actionlint() -> None:
    workflows = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
    assert workflows
    exe = Path(sys.executable).parent / "check-jsonschema"
    res = subprocess.run([str(exe), "--builtin-schema", "vendor.github-workflows", *map(str, workflows)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run([tool_path("actionlint"), "-no-color", *map(str, workflows)],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr


def test_actionlint_is_a_real_judge(tmp_path: Path) -> None:
    """The same call finds what a broken workflow gets wrong (so the test above can fail)."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - uses: ./\n        with:\n          image: x\n"
                   "      - run: echo ${{ steps.nope.outputs.digest }}\n")
    res = subprocess.run([tool_path("actionlint"), "-no-color", str(bad)], capture_output=True,
                         text=True, cwd=tmp_path)
    assert res.returncode == 1 and "steps.nope" in res.stdout, res.stdout + res.stderr


def test_every_input_reaches_the_script_through_env() -> None:
    action = load_yaml(ACTION.read_text())
    publish = next(s for s in action["runs"]["steps"] if s.get("id") == "publish")
    used = {m.group(1) for v in publish["env"].values()
            for m in re.finditer(r"inputs\.([\w-]+)", str(v))}
    assert used == set(action["inputs"]), set(action["inputs"]) ^ used
    for name in ("registry-password", "signing-key", "signing-key-password"):
        assert name in used  # secrets: environment only (the scripts' text has no expression)
    readme = (REPO / "README.md").read_text()
    for name in action["inputs"]:
        assert f"| `{name}` |" in readme, f"README's CI input table lacks {name}"
    for name in action["outputs"]:
        assert f"`{name}`" in readme, f"README's CI section lacks output {name}"


# ---------------------------------------------------------------------------- the install step
def test_the_install_step_is_idempotent(tmp_path: Path) -> None:
    action = load_yaml(ACTION.read_text())
    install = action["runs"]["steps"][0]
    # a gadget with a WASM module in C: its packages are asked for too (installed here)
    wasm_c = REPO / "sample-gadgets" / "trace_dns_c"
    assert "wasm: wasm/program.c" in (wasm_c / "build.yaml").read_text()
    runner = Runner(tmp_path, {"image": "r.corp:5000/obs/x", "path": str(wasm_c)})
    for _ in range(2):
        res = runner.run_step(0, install)
        assert res.returncode == 0, res.log
        assert "apt-get" not in res.log and "pip install" not in res.log, res.log
        assert "is installed in" in res.log
        gadget = res.outputs["gadget"]
        assert Path(gadget).name == "gadget" and os.access(gadget, os.X_OK)
        ver = subprocess.run([gadget, "--version"], capture_output=True, text=True)
        assert ver.returncode == 0, ver.stderr


FAKE_APT = {
    # dpkg-query -W -f=FMT PKG: installed when PKG is a line of $APT_STATE
    "dpkg-query": 'grep -qx "${@: -1}" "$APT_STATE" && echo "install ok installed" || exit 1',
    # apt-cache policy PKG: a candidate unless PKG is in $APT_NONE
    "apt-cache": 'case " $APT_NONE " in *" $2 "*) echo "  Candidate: (none)" ;; '
                 '*) echo "  Candidate: 1.0" ;; esac',
    # apt-get update | apt-get install -y -qq --no-install-recommends PKG...
    "apt-get": 'echo "apt-get $*" >> "$APT_LOG"; [ "$1" = install ] && '
               'for p in "$@"; do case $p in -*|install) ;; *) echo "$p" >> "$APT_STATE" ;; esac; done; true',
}


def test_the_install_steps_packages_are_asked_for_once(tmp_path: Path) -> None:
    """install.sh's apt part against a stand-in dpkg/apt (PATH): what is missing is installed
    with one update, the SDK's clang-19 falls back to the default clang where the archive
    has none, a C WASM gadget adds its packages, and a second run asks for nothing."""
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    for name, body in FAKE_APT.items():
        (fake / name).write_text(f"#!/bin/bash\n{body}\n")
        (fake / name).chmod(0o755)
    state, log = tmp_path / "installed", tmp_path / "apt.log"
    state.write_text("libbpf1\npython3-venv\n")
    action = load_yaml(ACTION.read_text())
    install = action["runs"]["steps"][0]
    env = {"PATH": f"{fake}:{os.environ['PATH']}", "APT_STATE": str(state), "APT_LOG": str(log),
           "APT_NONE": "clang-19"}
    runner = Runner(tmp_path, {"image": "r.corp:5000/obs/x",
                               "path": str(REPO / "sample-gadgets" / "trace_dns_c")}, env=env)
    res = runner.run_step(0, install)
    assert res.returncode == 0, res.log
    calls = log.read_text().splitlines()
    assert calls == [
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends clang llvm-19 libbpf-dev bpftool",
        "apt-get install -y -qq --no-install-recommends lld-19 wasi-libc libclang-rt-19-dev-wasm32",
    ], calls
    assert "no clang-19 here: installing clang" in res.log
    assert "clang\n" in state.read_text() and "clang-19" not in state.read_text()
    log.write_text("")
    res = runner.run_step(0, install)
    assert res.returncode == 0 and log.read_text() == "", (res.log, log.read_text())
    # an eBPF-only gadget gets no WASM packages
    state.write_text("clang-19\nllvm-19\nlibbpf-dev\nlibbpf1\nbpftool\npython3-venv\n")
    runner = Runner(tmp_path, {"image": "r.corp:5000/obs/x",
                               "path": str(REPO / "sample-gadgets" / "trace_open")}, env=env)
    res = runner.run_step(0, install)
    assert res.returncode == 0 and log.read_text() == "", (res.log, log.read_text())


def test_the_signing_key_file_is_removed_when_the_job_is_cancelled(tmp_path: Path) -> None:
    """The publish step gets SIGTERM, as a cancelled job's processes do, while gadget runs:
    the key file is gone all the same (and it existed while gadget ran, readable by the
    owner only)."""
    key, _ = key_pair(tmp_path)
    fake = tmp_path / "fake-gadget"
    seen = tmp_path / "seen"
    # stands in for gadget: records the key file it was given, then waits to be stopped
    fake.write_text("#!/bin/bash\nwhile [ $# -gt 0 ]; do [ \"$1\" = --key ] && "
                    f"stat -c '%n %a' \"$2\" > {seen}; shift; done\nexec sleep 60\n")
    fake.chmod(0o755)
    action = load_yaml(ACTION.read_text())
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "publish")
    runner = Runner(tmp_path, {"image": "r.corp:5000/obs/x", "signing-key": key.read_text(),
                               "signing-key-password": KEY_PASSWORD, "test": "false"})
    runner.step_outputs["install"] = {"gadget": str(fake), "python": sys.executable}
    env = dict(runner.env, GITHUB_OUTPUT=str(tmp_path / "out"))
    env.update({k: runner.expr(v) for k, v in step["env"].items()})
    script = tmp_path / "publish-step.sh"
    script.write_text(step["run"])
    proc = subprocess.Popen(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while not seen.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    name, mode = seen.read_text().split()
    assert Path(name).parent.parent == runner.temp and mode == "600"
    assert Path(name).read_text().strip() == key.read_text().strip()
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode != 0, out
    assert not Path(name).exists() and _leftovers(runner) == [], out


def test_a_runner_that_is_not_root_runs_gadget_with_sudo_and_its_path(tmp_path: Path) -> None:
    """As GitHub's runner user: gadget publish runs under sudo when the tests run (eBPF needs
    root), with the job's PATH (sudo's secure_path would drop a setup-go's Go), and without
    sudo when they do not. sudo and gadget are stand-ins that record how they were called."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run the step as another user")
    base = Path(tempfile.mkdtemp(prefix="gadget-action-user-"))
    try:
        base.chmod(0o777)
        fake = base / "bin"
        fake.mkdir()
        (fake / "sudo").write_text('#!/bin/sh\necho "sudo $*" >> "$CALLS"\nshift\nexec "$@"\n')
        (fake / "gadget").write_text('#!/bin/sh\necho "gadget uid=$(id -u) PATH=$PATH" >> "$CALLS"\n'
                                     'case " $* " in *" --junit "*) : > gadget-test-report.xml ;; esac\n'
                                     'echo \'{"ok": true, "reference": "r", "steps": []}\'\n')
        for f in fake.iterdir():
            f.chmod(0o755)
        action = load_yaml(ACTION.read_text())
        step = next(s for s in action["runs"]["steps"] if s.get("id") == "publish")
        script = base / "publish-step.sh"
        script.write_text(step["run"])
        job_path = f"/opt/hostedtoolcache/go/1.25/x64/bin:{fake}:/usr/bin:/bin"
        for test, sudo in (("true", True), ("false", False)):
            calls = base / f"calls-{test}"
            (base / f"w-{test}").mkdir()
            runner = Runner(base / f"w-{test}", {"image": "r.corp:5000/obs/x", "test": test,
                                                 "sign": "false", "push": "false"},
                            temp=base / f"temp-{test}")
            runner.step_outputs["install"] = {"gadget": str(fake / "gadget"),
                                              "python": "/usr/bin/python3"}
            env = {k: v for k, v in runner.env.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
            env.update(PATH=job_path, CALLS=str(calls), HOME=str(base), GITHUB_OUTPUT=str(base / "out"))
            env.update({k: runner.expr(v) for k, v in step["env"].items()})
            for d in (runner.work, runner.temp):
                d.chmod(0o777)
            proc = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                                   "bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                                  env=env, cwd=base, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            lines = calls.read_text().splitlines()
            if sudo:
                assert lines[0].startswith(f"sudo -E env PATH={job_path} {fake / 'gadget'} publish "), lines
                assert lines[1] == f"gadget uid=65534 PATH={job_path}", lines
                # what root wrote is given back: the store and the JUnit report
                assert lines[2] == (f"sudo chown -R 65534:65534 -- {env['GADGETSMITH_STORE']} "
                                    "gadget-test-report.xml"), lines
            else:
                assert not any(x.startswith("sudo") for x in lines), lines
                assert lines == [f"gadget uid=65534 PATH={job_path}"], lines
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------------------- the whole action
def _inputs(reg: RegistryServer, gadget: Path, key: Path | None, **extra: str) -> dict[str, str]:
    inputs = {"path": str(gadget), "image": f"{reg.host}/obs/trace_open", "tag": "v1",
              "arches": "amd64", "registry-username": USER, "registry-password": PASSWORD,
              "ca-file": str(reg.ca_file), "junit-file": "reports/gadget-tests.xml"}
    if key is not None:
        inputs.update({"signing-key": key.read_text(), "signing-key-password": KEY_PASSWORD})
    inputs.update(extra)
    return inputs


def _no_secrets(run: ActionRun, *secrets: str) -> None:
    for s in secrets:
        assert s not in run.log and s not in run.summary
        assert not any(s in v for v in run.outputs.values())


def _leftovers(runner: Runner) -> list[str]:
    return sorted(p.name for p in runner.temp.glob("gadget-publish.*"))


def test_the_action_publishes_a_signed_tested_image(tmp_path: Path, auth_registry) -> None:  # noqa: F811
    reg = auth_registry
    key, pub = key_pair(tmp_path)
    gadget = make_gadget(tmp_path)
    runner = Runner(tmp_path, _inputs(reg, gadget, key))
    run = runner.run()
    assert run.ok, run.log
    out = run.outputs
    digest = out["digest"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), out
    assert out["reference"] == f"{reg.host}/obs/trace_open:v1@{digest}"
    assert out["signature-tag"] == f"sha256-{digest[7:]}.sig"
    assert out["pushed"] == "true"
    junit = Path(out["junit-file"])
    assert junit == tmp_path / "reports" / "gadget-tests.xml" and junit.is_file()
    assert json.loads(Path(out["summary-file"]).read_text())["digest"] == digest
    # the job summary: the image table and one row per step
    assert f"| index | `{digest}` | 1 passed, 0 failed | `{out['signature-tag']}` |" in run.summary, \
        run.summary
    assert re.search(r"\| amd64 \| `sha256:[0-9a-f]{64}` \|", run.summary), run.summary
    for step in ("preflight", "build", "validate", "test", "sign", "push"):
        assert re.search(rf"^\| {step} \| \S+ ok \|", run.summary, re.M), run.summary
    _no_secrets(run, PASSWORD, KEY_PASSWORD, key.read_text().splitlines()[1])
    assert _leftovers(runner) == []  # the key's temp directory is gone

    # in the registry, signed: verifies with the public key
    assert pushed_repositories(reg) == ["obs/trace_open"]
    authfile = tmp_path / "auth.json"
    subprocess.run([GADGET, "login", reg.host, "-u", USER, "--password-stdin", "--ca-file",
                    str(reg.ca_file), "--authfile", str(authfile)], input=PASSWORD + "\n",
                   capture_output=True, text=True, check=True)
    ver = run_gadget("verify", out["reference"], "--remote", "--public-keys", str(pub), "--ca-file",
                     str(reg.ca_file), "--authfile", str(authfile), "-o", "json",
                     store=tmp_path / "verify-store").json()
    assert ver["source"] == "registry" and ver["digest"] == digest


def _failed(run: ActionRun, runner: Runner, reg: RegistryServer, step: str, *words: str) -> str:
    assert not run.ok
    publish = run.steps[-1]
    assert publish.id == "publish", run.log
    errors = [line for line in publish.log.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, publish.log
    assert errors[0].startswith(f"::error title=gadget publish failed::{step}: "), errors
    for w in words:
        assert w in errors[0], (w, errors[0])
    assert "Traceback" not in publish.log
    assert run.outputs["pushed"] == "false"
    assert f"failed at {step}" in run.summary, run.summary
    assert pushed_repositories(reg) == []
    assert _leftovers(runner) == []
    return errors[0]


def test_a_failing_gadget_test_fails_the_action(tmp_path: Path, auth_registry) -> None:  # noqa: F811
    reg = auth_registry
    key, _ = key_pair(tmp_path)
    gadget = make_gadget(tmp_path, FAILING)
    runner = Runner(tmp_path, _inputs(reg, gadget, key))
    run = runner.run()
    assert run.steps[-1].returncode == 1
    _failed(run, runner, reg, "test", "1 passed, 1 failed")
    assert "FAIL  " in run.log and "expects the wrong error" in run.log
    # the JUnit report is there for the upload step, with the failure
    junit = Path(run.outputs["junit-file"])
    assert junit.is_file() and 'failures="1"' in junit.read_text()
    assert re.search(r"\| index \| `sha256:[0-9a-f]{64}` \| 1 passed, 1 failed \| unsigned \|",
                     run.summary), run.summary


def test_a_wrong_registry_password_fails_before_the_build(tmp_path: Path, auth_registry) -> None:  # noqa: F811
    reg = auth_registry
    gadget = make_gadget(tmp_path)
    runner = Runner(tmp_path, _inputs(reg, gadget, None, **{"registry-password": "guessed",
                                                            "sign": "false"}))
    run = runner.run()
    assert run.steps[-1].returncode == 1
    _failed(run, runner, reg, "preflight", "rejected the credentials of user 'ci'")
    assert run.outputs["digest"] == "" and not (tmp_path / "store").exists()
    _no_secrets(run, "guessed")


def test_a_destination_outside_the_policy_is_refused(tmp_path: Path, auth_registry) -> None:  # noqa: F811
    reg = auth_registry
    key, _ = key_pair(tmp_path)
    gadget = make_gadget(tmp_path)
    policy = tmp_path / ".gadget-policy.yaml"
    policy.write_text(f"allowedPush: ['{reg.host}/observability/*']\nallowLocalSources: true\n")
    runner = Runner(tmp_path, _inputs(reg, gadget, key, policy=str(policy)))
    run = runner.run()
    assert run.steps[-1].returncode == 3
    _failed(run, runner, reg, "preflight", "is not allowed", f"{reg.host}/obs/trace_open:v1")
    assert not (tmp_path / "store").exists()


def test_a_wrong_key_password_fails_before_the_build(tmp_path: Path, auth_registry) -> None:  # noqa: F811
    reg = auth_registry
    key, _ = key_pair(tmp_path)
    gadget = make_gadget(tmp_path)
    runner = Runner(tmp_path, _inputs(reg, gadget, key, **{"signing-key-password": "not it"}))
    run = runner.run()
    assert run.steps[-1].returncode == 2
    _failed(run, runner, reg, "preflight", "wrong passphrase")
    _no_secrets(run, PASSWORD, "not it")


def test_bad_inputs_are_one_clear_error(tmp_path: Path, auth_registry) -> None:  # noqa: F811
    reg = auth_registry
    gadget = make_gadget(tmp_path)
    # pushing with sign: true (the default) and no key: a secret the workflow cannot read
    runner = Runner(tmp_path, _inputs(reg, gadget, None))
    run = runner.run()
    assert run.steps[-1].returncode == 2, run.log
    assert "::error title=gadget publish::signing-key is empty" in run.log
    assert run.outputs["pushed"] == "false" and run.outputs["digest"] == ""
    assert pushed_repositories(reg) == []
    runner = Runner(tmp_path, _inputs(reg, gadget, None, sign="false", push="maybe"))
    run = runner.run()
    assert run.steps[-1].returncode == 2
    assert "::error title=gadget publish::input push: 'maybe' is neither true nor false" in run.log


def test_a_pull_request_build_tests_without_secrets(tmp_path: Path, auth_registry) -> None:  # noqa: F811
    """push: false with no secrets at all (a fork's pull request): built, tested, not pushed."""
    reg = auth_registry
    gadget = make_gadget(tmp_path)
    inputs = _inputs(reg, gadget, None, push="false", tag="12/merge")  # a PR's github.ref_name
    inputs.update({"registry-username": "", "registry-password": ""})
    runner = Runner(tmp_path, inputs)
    run = runner.run()
    assert run.ok, run.log
    assert run.outputs["pushed"] == "false" and run.outputs["signature-tag"] == ""
    assert run.outputs["reference"].startswith(f"{reg.host}/obs/trace_open:12-merge@sha256:")
    assert "::notice title=gadget publish::tag '12/merge' is not a valid image tag: using '12-merge'" \
        in run.log
    assert "built, not pushed" in run.summary and "no signing-key" in run.log
    assert pushed_repositories(reg) == []



# ---------------------------------------------------------------------------- the project's CI
def _job_expr(text: str, values: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
    def value(m: re.Match) -> str:
        e = m.group(1)
        if m2 := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", e):
            return steps.get(m2.group(1), {}).get(m2.group(2), "")
        assert e in values, f"ci.yml uses an expression this test does not evaluate: {e}"
        return values[e]
    return EXPR.sub(value, str(text))


def test_the_projects_ci_job_runs_the_action_on_a_sample(tmp_path: Path, registry) -> None:  # noqa: F811
    """ci.yml's ``action`` job, for one sample without container cases: its own steps run as
    a runner runs them, ``uses: ./`` through :class:`Runner`, the registry service played
    by a docker-registry here (ci.yml's localhost:5000 becomes its address)."""
    job = load_yaml((REPO / ".github" / "workflows" / "ci.yml").read_text()
                    .replace("localhost:5000", registry.host))["jobs"]["action"]
    assert "trace_signal" in job["strategy"]["matrix"]["gadget"]
    assert job["services"]["registry"]["image"].startswith("registry:")
    # the workspace: a checkout of this repository (its parts the job uses, linked)
    ws = tmp_path / "workspace"
    ws.mkdir()
    for part in ("action.yml", "pyproject.toml", "scripts", "toolchain", "sample-gadgets"):
        (ws / part).symlink_to(REPO / part)
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    (temp / "gadgetsmith-venv").symlink_to(Path(sys.executable).parent.parent)
    values = {"matrix.gadget": "trace_signal", "github.run_id": "4242",
              "github.workspace": str(ws), "runner.temp": str(temp)}
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "GADGET"))}
    base_env.update(HOME=str(tmp_path / "home"), CI="true", RUNNER_TEMP=str(temp),
                    GITHUB_WORKSPACE=str(ws), GADGETSMITH_STORE=str(tmp_path / "store"))
    steps: dict[str, dict[str, str]] = {}
    ran = []
    for i, step in enumerate(job["steps"]):
        sid = step.get("id", f"step{i}")
        if "run" in step:
            out = temp / f"output-{sid}"
            script = temp / f"step-{sid}.sh"
            script.write_text(_job_expr(step["run"], values, steps))
            env = dict(base_env, GITHUB_OUTPUT=str(out), GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"))
            env.update({k: _job_expr(v, values, steps) for k, v in (step.get("env") or {}).items()})
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                                  env=env, cwd=ws, capture_output=True, text=True, timeout=600,
                                  stdin=subprocess.DEVNULL)
            assert proc.returncode == 0, (sid, proc.stdout + proc.stderr)
            steps[sid] = read_outputs(out)
            ran.append(sid)
        elif step["uses"] == "./":
            inputs = {k: _job_expr(v, values, steps) for k, v in step["with"].items()}
            run = Runner(ws, inputs, action_path=ws, temp=temp,
                         env={"GADGETSMITH_STORE": str(tmp_path / "store")}).run()
            assert run.ok, run.log
            steps[sid] = run.outputs
            ran.append(sid)
    assert ran == ["key", "publish", "step3"], ran
    out = steps["publish"]
    assert out["pushed"] == "true" and out["signature-tag"], out
    assert out["reference"] == f"{registry.host}/samples/trace_signal:ci-4242@{out['digest']}"
    assert Path(out["junit-file"]) == ws / "reports" / "trace_signal.xml"
    assert pushed_repositories(registry) == ["samples/trace_signal"]


# ---------------------------------------------------------------------------- gadget init's workflow
def _workflow_expr(text: str, ctx: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
    """The expressions gadget init's workflow uses: a context value, ``startsWith(a, 'b')``,
    ``a == 'b'``, ``a != ''``, ``!cancelled()`` and ``&&``/``||`` of those."""
    def atom(e: str) -> str | bool:
        e = e.strip()
        if m := re.fullmatch(r"startsWith\(([\w.]+), '([^']*)'\)", e):
            return ctx[m.group(1)].startswith(m.group(2))
        if m := re.fullmatch(r"(.+?) (==|!=) '([^']*)'", e):
            left = atom(m.group(1))
            return (str(left) == m.group(3)) == (m.group(2) == "==")
        if e == "!cancelled()":
            return True
        if m := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", e):
            return steps.get(m.group(1), {}).get(m.group(2), "")
        if m := re.fullmatch(r"'([^']*)'", e):
            return m.group(1)
        assert e in ctx, f"gadget init's workflow uses an expression this test does not evaluate: {e}"
        return ctx[e]

    def value(m: re.Match) -> str:
        e = m.group(1)
        if m2 := re.fullmatch(r"(.+?) && '([^']*)' \|\| '([^']*)'", e):
            out: str | bool = m2.group(2) if atom(m2.group(1)) else m2.group(3)
        else:
            parts = [atom(p) for p in e.split(" && ")]
            out = all(parts) if len(parts) > 1 else parts[0]
        return ("true" if out else "false") if isinstance(out, bool) else out
    return EXPR.sub(value, str(text))


def _run_init_workflow(repo: Path, temp: Path, ctx: dict[str, str], env: dict[str, str]
                       ) -> tuple[dict[str, dict[str, str]], ActionRun, str]:
    wf = load_yaml((repo / ".github" / "workflows" / "gadget.yml").read_text())
    (job,) = wf["jobs"].values()
    steps: dict[str, dict[str, str]] = {}
    run: ActionRun | None = None
    summary = temp / "job-summary.md"
    for i, step in enumerate(job["steps"]):
        cond = step.get("if")
        if cond is not None and _workflow_expr(f"${{{{ {cond} }}}}" if "${{" not in str(cond) else cond,
                                               ctx, steps) != "true":
            continue
        uses = step.get("uses", "")
        if uses.startswith("gadgetsmith/"):  # this action, at the ref the workflow names
            inputs = {k: _workflow_expr(v, ctx, steps) for k, v in step["with"].items()}
            run = Runner(repo, inputs, env=env, temp=temp).run()
            steps[step["id"]] = run.outputs
        elif "run" in step:
            script = temp / f"wf-step{i}.sh"
            script.write_text(step["run"])
            step_env = dict(os.environ, GITHUB_STEP_SUMMARY=str(summary))
            step_env.update({k: _workflow_expr(v, ctx, steps) for k, v in (step.get("env") or {}).items()})
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                                  env=step_env, cwd=repo, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
    assert run is not None, "the workflow has no step that uses gadgetsmith's action"
    return steps, run, summary.read_text() if summary.exists() else ""


def test_a_gadget_init_repository_publishes_a_signed_tested_image_from_a_tag(
        tmp_path: Path, auth_registry) -> None:  # noqa: F811
    """Issue 18's 'done when': the repository `gadget init` makes, with only the workflow it
    writes, publishes from a tag (signed, tested, verified from the registry), and on a pull
    request builds and tests without secrets and pushes nothing."""
    from ..podman_util import Podman

    reg = auth_registry
    (tmp_path / "podman").mkdir()
    podman = Podman(tmp_path / "podman")
    key, pub = key_pair(tmp_path)
    repo = tmp_path / "my_gadget"
    run_gadget("init", str(repo), "--no-input", "--set", f"image={reg.host}/obs/my_gadget")
    workflow = repo / ".github" / "workflows" / "gadget.yml"
    lint = subprocess.run([tool_path("actionlint"), "-no-color", str(workflow)], capture_output=True,
                          text=True, cwd=repo)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # the runner machine: trusts the registry's CA, and podman's configuration of this host
    env = {"SSL_CERT_FILE": str(reg.ca_file), "CONTAINERS_CONF": podman.env["CONTAINERS_CONF"],
           "HOME": str(tmp_path / "home"), "GADGETSMITH_STORE": str(tmp_path / "store")}
    try:
        # a pull request: no secrets, nothing pushed
        pr = {"github.ref": "refs/pull/7/merge", "github.ref_name": "7/merge", "github.actor": "dev",
              "secrets.COSIGN_KEY": "", "secrets.COSIGN_PASSWORD": "", "secrets.GITHUB_TOKEN": ""}
        steps, run, _ = _run_init_workflow(repo, tmp_path / "temp-pr", pr, env)
        assert run.ok, run.log
        assert steps["publish"]["pushed"] == "false" and pushed_repositories(reg) == []
        assert "4 passed, 0 failed" in run.summary, run.summary
        # the tag v1.0.0
        tag = {"github.ref": "refs/tags/v1.0.0", "github.ref_name": "v1.0.0", "github.actor": USER,
               "secrets.COSIGN_KEY": key.read_text(), "secrets.COSIGN_PASSWORD": KEY_PASSWORD,
               "secrets.GITHUB_TOKEN": PASSWORD}
        steps, run, job_summary = _run_init_workflow(repo, tmp_path / "temp-tag", tag, env)
        assert run.ok, run.log
    finally:
        podman.cleanup()
    out = steps["publish"]
    assert out["pushed"] == "true" and out["signature-tag"] == f"sha256-{out['digest'][7:]}.sig"
    assert out["reference"] == f"{reg.host}/obs/my_gadget:v1.0.0@{out['digest']}"
    assert Path(out["junit-file"]).is_file()
    assert f"pushed {out['reference']}" in job_summary
    assert pushed_repositories(reg) == ["obs/my_gadget"]
    authfile = tmp_path / "auth.json"
    subprocess.run([GADGET, "login", reg.host, "-u", USER, "--password-stdin", "--ca-file",
                    str(reg.ca_file), "--authfile", str(authfile)], input=PASSWORD + "\n",
                   capture_output=True, text=True, check=True)
    ver = run_gadget("verify", out["reference"], "--remote", "--public-keys", str(pub), "--ca-file",
                     str(reg.ca_file), "--authfile", str(authfile), "-o", "json",
                     store=tmp_path / "verify-store").json()
    assert ver["digest"] == out["digest"]


def test_the_same_commit_builds_the_same_digest(tmp_path: Path) -> None:
    """The publish step sets SOURCE_DATE_EPOCH to the commit's time when the gadget is in a
    git checkout: two jobs on one commit build one digest, created at the commit's time."""
    gadget = make_gadget(tmp_path / "repo")
    git = ["git", "-C", str(gadget), "-c", "user.name=ci", "-c", "user.email=ci@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "gadget"], check=True,
                   env=dict(os.environ, GIT_COMMITTER_DATE="2026-05-04T03:02:01Z",
                            GIT_AUTHOR_DATE="2026-05-04T03:02:01Z"))
    digests = []
    for job in ("a", "b"):
        work = tmp_path / job
        work.mkdir()
        run = Runner(work, {"image": "r.corp:5000/obs/trace_open", "tag": "v1", "path": str(gadget),
                            "arches": "amd64", "test": "false", "push": "false", "sign": "false"},
                     env={"SOURCE_DATE_EPOCH": ""}).run()
        assert run.ok, run.log
        digests.append(run.outputs["digest"])
        summary = json.loads(Path(run.outputs["summary-file"]).read_text())
        assert summary["pushed"] is False
    assert digests[0] == digests[1] and digests[0].startswith("sha256:")
    listed = run_gadget("inspect", "r.corp:5000/obs/trace_open:v1", "-o", "json",
                        store=tmp_path / "b" / "store").stdout
    assert "2026-05-04T03:02:01Z" in listed
