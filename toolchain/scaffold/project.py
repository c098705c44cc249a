"""Generate a gadget project from the cookiecutter template in ``templates/gadget/``.

One cookiecutter template serves every kind: ``cookiecutter.json`` lists the kinds
(``template``), their one-line summaries (``_templates``) and the questions; the project
files include the kind's own pieces from ``templates/gadget/templates/<kind>/``. A file
that renders to nothing (the Go module of a C gadget) is not written.

The project is rendered into a temporary directory next to the target and then renamed
into place (a new target), or written file by file, each atomically, into an existing
one (``force``): an interrupted ``init`` leaves no half-written project.
"""

from __future__ import annotations

import json
import keyword
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import click
import yaml
from cookiecutter.exceptions import CookiecutterException
from cookiecutter.generate import generate_context, generate_files
from cookiecutter.prompt import prompt_for_config, render_variable
from cookiecutter.utils import create_env_with_context
from gadgetsmith.runtime.oci.reference import InvalidReference, parse
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.fsutil import atomic_write, fsync_dir, owned_tempdir

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
#: longer names make the program names clang emits unwieldy; IG's are at most 20
NAME_MAX = 48
#: C words a name cannot be (it names a data source struct and functions)
_C_WORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while bool true false".split())


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    summary: str


@dataclass
class InitResult:
    """What :func:`init_project` wrote."""

    path: Path
    template: str
    answers: dict[str, str]
    files: list[str] = field(default_factory=list)  # relative to ``path``, sorted


def template_dir() -> Path:
    """The cookiecutter template (``templates/gadget``: cookiecutter.json and the project)."""
    return Path(str(resources.files("gadgetsmith.templates"))) / "gadget"


def _config() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((template_dir() / "cookiecutter.json").read_text())
    return data


def list_templates() -> list[TemplateInfo]:
    """The kinds of gadget ``init`` writes, in the order ``--list`` shows them."""
    config = _config()
    return [TemplateInfo(k, config["_templates"][k]) for k in config["template"]]


def questions() -> list[str]:
    """The answers a project takes (``--set KEY=VALUE``, a config file, the prompts)."""
    return [k for k in _config() if not k.startswith("_")]


def _valid_repository(name: str) -> bool:
    try:
        parse(f"example.com/{name}", default_tag=False)
    except InvalidReference:
        return False
    return not name.startswith("_")


def check_name(name: str) -> None:
    """A gadget name is a C identifier (it names the data source and the programs) and a
    valid image repository component: lower case letters, digits and ``_``."""
    if not name:
        raise UsageError("gadget name is empty: give one, e.g. gadget init my_gadget")
    fix = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", name.lower())).strip("_")
    if not _NAME_RE.match(fix) or fix in _C_WORDS:
        fix = "my_gadget"
    if not _NAME_RE.match(name) or not _valid_repository(name):
        raise UsageError(
            f"gadget name {name!r} is not a C identifier in lower case (letters a-z, digits and "
            f"single _ between them), which gadget and image names need: try {fix!r}")
    if name in _C_WORDS or keyword.iskeyword(name):
        raise UsageError(f"gadget name {name!r} is a reserved word of C: choose another, e.g. "
                         f"{name}_gadget")
    if len(name) > NAME_MAX:
        raise UsageError(f"gadget name {name!r} is {len(name)} characters long: use at most "
                         f"{NAME_MAX}")


def check_image(image: str) -> None:
    """``image`` is a repository to push to (``host/path``), without tag or digest."""
    if not image or image != image.strip() or "/" not in image:
        raise UsageError(f"image {image!r}: give a repository with its registry, e.g. "
                         "ghcr.io/my-org/my_gadget")
    try:
        ref = parse(image, default_tag=False)
    except InvalidReference as e:
        raise UsageError(f"image {image!r} is not a valid image name ({e}): write "
                         "host/path, e.g. ghcr.io/my-org/my_gadget") from None
    if ref.tag or ref.digest:
        raise UsageError(f"image {image!r} has a tag or digest: give the repository only "
                         f"({ref.domain}/{ref.path}); the workflow adds the git tag")


_ACTION_RE = re.compile(r"^(?:[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_./-]+)?@[A-Za-z0-9_./-]+"
                        r"|\./[A-Za-z0-9_./-]*)$")


def check_action(action: str) -> None:
    """``ci_action`` is what a workflow's ``uses:`` takes: OWNER/REPO[/PATH]@REF or ./PATH."""
    if not _ACTION_RE.match(action):
        raise UsageError(f"ci_action {action!r} is not an action reference: write OWNER/REPO@REF "
                         "(e.g. gadgetsmith/gadgetsmith@v1) or ./PATH")


def read_answers_file(path: Path) -> dict[str, str]:
    """Answers from a YAML file: a mapping of question to answer, or cookiecutter's user
    config (the answers under ``default_context:``)."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise UsageError(f"{path}: cannot read the answers file: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise UsageError(f"{path}{where}: not valid YAML: fix the file") from None
    if isinstance(data, dict) and isinstance(data.get("default_context"), dict):
        data = data["default_context"]
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of answers (name: my_gadget, template: "
                         "tracer, ...)")
    out = {}
    for k, v in data.items():
        if isinstance(v, dict | list) or v is None:
            raise UsageError(f"{path}: {k}: expected a single value")
        out[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
    _check_keys(out, str(path))
    return out


def _check_keys(answers: Mapping[str, str], where: str) -> None:
    known = questions()
    for k in answers:
        if k not in known:
            raise UsageError(f"{where}: unknown question {k!r}: the questions are "
                             f"{', '.join(known)}")


def _check_template(template: str) -> None:
    names = [t.name for t in list_templates()]
    if template not in names:
        raise UsageError(f"unknown template {template!r}: choose one of {', '.join(names)} "
                         "(gadget init --list)")


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def check_target(target: Path, force: bool) -> None:
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} exists and is not a directory: choose another path")
    if target.is_dir() and not _is_empty_dir(target) and not force:
        raise UsageError(f"{target} is not empty: choose a new directory, or add --force to "
                         "write the project's files into it (files of the same name are replaced)")


def _one_line(key: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise UsageError(f"{key}: the answer must be one line")


#: the check of each answer that has one (the prompt asks again when it fails)
_CHECKS: dict[str, Callable[[str], None]] = {
    "name": check_name, "image": check_image, "ci_action": check_action,
}


def _ask(config: dict[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """Ask the questions ``given`` does not answer on the terminal, in the order of
    cookiecutter.json, each default rendered from the answers before it; an answer that
    fails its check is asked again."""
    context = {"cookiecutter": dict(config)}
    env = create_env_with_context(context)
    prompts = config.get("__prompts__", {})
    answers: dict[str, Any] = {k: v for k, v in config.items() if k.startswith("_")}
    for key, raw in config.items():
        if key.startswith("_"):
            continue
        if key in given:
            answers[key] = given[key]
            continue
        text = prompts.get(key, key)
        if key == "template":
            kinds = list_templates()
            for i, t in enumerate(kinds, 1):
                click.echo(f"  {i}. {t.name:<9} {t.summary}", err=True)
            names = [t.name for t in kinds]

            def pick(value: str, names: list[str] = names) -> str:
                if value.isdigit() and 1 <= int(value) <= len(names):
                    return names[int(value) - 1]
                if value not in names:
                    raise click.UsageError(f"choose a number from 1 to {len(names)} or a name")
                return value

            answers[key] = click.prompt(text, default=names[0], value_proc=pick, err=True)
            continue
        default = render_variable(env, raw, answers)
        check = _CHECKS.get(key)

        def valid(value: str, key: str = key, check: Callable[[str], None] | None = check) -> str:
            try:
                _one_line(key, value)
                if check:
                    check(value)
            except UsageError as e:
                raise click.UsageError(e.message) from None
            return value

        answers[key] = click.prompt(text, default=default, value_proc=valid, err=True)
    return {k: str(v) for k, v in answers.items() if not k.startswith("_")}


def resolve_answers(
    target: Path,
    values: Mapping[str, str],
    *,
    interactive: bool = False,
) -> dict[str, str]:
    """Every answer: ``values`` over the template's defaults (``name`` defaults to the
    target directory's name); with ``interactive``, what ``values`` leaves open is asked
    on the terminal."""
    _check_keys(values, "--set")
    if "template" in values:
        _check_template(values["template"])
    config = _config()
    if interactive:
        given = dict(values)
        if "name" not in given:
            config = {**config, "name": target.resolve().name}
        extra = _ask(config, given)
    else:
        extra = {"name": target.resolve().name, **values}
        try:
            check_name(extra["name"])
        except UsageError as e:
            if "name" in values:
                raise
            raise UsageError(f"{e.message} (the name comes from the directory; to keep the "
                             "directory, give the name with --set name=...)") from None
    context = generate_context(context_file=str(template_dir() / "cookiecutter.json"),
                               extra_context=extra)
    try:
        answers = prompt_for_config(context, no_input=True)
    except CookiecutterException as e:
        raise UsageError(f"the answers do not fit the template: {e}") from None
    out = {k: str(v) for k, v in answers.items() if not k.startswith("_")}
    _check_template(out["template"])
    for key, value in out.items():
        _one_line(key, value)
        if key in _CHECKS:
            _CHECKS[key](value)
    return out


def _render(answers: Mapping[str, str], into: Path) -> Path:
    config = _config()
    context = {"cookiecutter": {**{k: v for k, v in config.items() if k.startswith("_")}, **answers}}
    try:
        project = Path(generate_files(repo_dir=str(template_dir()), context=context,
                                      output_dir=str(into), accept_hooks=False))
    except CookiecutterException as e:
        raise UsageError(f"the template does not render with these answers: {e}") from None
    for p in sorted(project.rglob("*"), reverse=True):  # files before their directories
        if p.is_file() and not p.read_text().strip():
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()
    return project


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _check_destinations(target: Path, files: list[str]) -> None:
    """Before anything is written into an existing directory: every file the project
    writes can go where it belongs (no directory in its place, no file where a directory
    of its path must be)."""
    for rel in files:
        dest = target / rel
        if dest.is_dir() and not dest.is_symlink():
            raise UsageError(f"{dest} is a directory, where the project writes a file: move it "
                             "away first")
        for parent in dest.relative_to(target).parents:
            p = target / parent
            if p != target and (p.is_symlink() or (p.exists() and not p.is_dir())):
                raise UsageError(f"{p} is not a directory, where the project writes {rel}: move "
                                 "it away first")


def init_project(
    target: Path | str,
    values: Mapping[str, str] | None = None,
    *,
    force: bool = False,
    interactive: bool = False,
) -> InitResult:
    """Write a new gadget project into ``target``.

    ``values`` answers the template's questions (:func:`questions`: ``name``, ``template``,
    ``description``, ``image``, ...); the rest take their defaults, or are asked on the
    terminal when ``interactive``. A non-empty ``target`` is refused unless ``force``.
    """
    target = Path(target)
    check_target(target, force)
    answers = resolve_answers(target, values or {}, interactive=interactive)
    parent = target.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{parent}: cannot create the directory: {e.strerror}") from None
    with owned_tempdir(".tmp-gadget-init-", parent) as tmp:
        project = _render(answers, tmp)
        files = _files(project)
        if not target.exists():
            for rel in files:
                with open(project / rel, "rb") as f:
                    os.fsync(f.fileno())
            os.rename(project, target)
            fsync_dir(parent)
        else:
            _check_destinations(target, files)
            for rel in files:
                dest = target / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = project / rel
                atomic_write(dest, src.read_bytes(), mode=src.stat().st_mode & 0o7777)
    return InitResult(path=target, template=answers["template"], answers=answers, files=files)
