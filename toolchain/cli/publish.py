"""`gadget publish`: build -> validate -> test -> sign -> push (toolchain/publish.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from gadgetsmith.toolchain.build.driver import ALL_ARCHES
from gadgetsmith.toolchain.cli.build import BtfgenOpt, BtfhubArchiveOpt, IgVersionOpt
from gadgetsmith.toolchain.cli.common import (
    AuthFileOpt,
    BuildFileOpt,
    CaFileOpt,
    InsecureOpt,
    Output,
    OutputOpt,
    PolicyOpt,
    StoreDirOpt,
    print_json,
    state,
    store_path,
)
from gadgetsmith.toolchain.cli.registry import remote_options
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.publish import (
    FAILED,
    RUNNING,
    SKIPPED,
    PublishFailed,
    PublishOptions,
    Step,
    publish,
)
from gadgetsmith.toolchain.registry.auth import Credentials
from gadgetsmith.toolchain.signing.keys import ENV_PASSWORD, passphrase_from_env
from gadgetsmith.toolchain.testing import report
from gadgetsmith.toolchain.testing.runner import CaseResult


def _arches(values: list[str] | None) -> list[str]:
    """``--arch amd64 --arch arm64`` or ``--arch amd64,arm64`` (what a CI input holds)."""
    out = [a.strip() for v in values or [] for a in v.split(",") if a.strip()]
    return out or list(ALL_ARCHES)


def _credentials(username: str | None, password_stdin: bool) -> Credentials | None:
    if password_stdin and not username:
        raise UsageError("--password-stdin needs --username (the registry user)")
    if not username:
        return None
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt(f"Password for {username}", hide_input=True, err=True)
    else:
        raise UsageError("--username needs the password on stdin: add --password-stdin")
    if not password:
        raise UsageError("--password-stdin: the password on stdin is empty")
    return Credentials(username, password)


def _take_passphrase() -> bytes | None:
    """The key's passphrase from GADGET_PASSWORD / COSIGN_PASSWORD, taken out of this
    process's environment: the commands the tests run (triggers, podman) do not inherit it."""
    passphrase = passphrase_from_env()
    for name in ENV_PASSWORD:
        os.environ.pop(name, None)
    return passphrase


def _on_step(step: Step) -> None:
    """A step's progress line on stderr."""
    if step.status == RUNNING:
        typer.echo(f"publish: {step.name} ...", err=True)
        return
    took = "" if step.status == SKIPPED else f" ({step.seconds:.1f} s)"
    # a failure's message is the error line printed last
    what = "" if step.status == FAILED else f": {step.message}"
    typer.echo(f"{step.name:<9} {step.status}{took}{what}", err=True)
    for w in step.detail.get("warnings", []):
        typer.echo(w, err=True)


def _on_case(result: CaseResult) -> None:
    typer.echo(report.format_result(result), err=True)


PublishArchOpt = Annotated[
    list[str] | None,
    typer.Option("--arch", help="Architectures to build (amd64, arm64; repeatable or "
                                "comma-separated; default both).", show_default=False),
]
StrictOpt = Annotated[
    bool, typer.Option("--strict", help="Validation fails on warnings too (gadget validate --strict).")
]
TestOpt = Annotated[
    bool, typer.Option("--test/--no-test", help="Run the gadget's tests (gadget test; needs root).")
]
SpecOpt = Annotated[
    list[Path] | None,
    typer.Option("--spec", help="Test spec to run (repeatable; default DIR/tests/*.test.yaml).",
                 show_default=False),
]
KeywordOpt = Annotated[
    str | None, typer.Option("-k", help="Only test cases whose name contains this text.")
]
JunitOpt = Annotated[
    Path | None, typer.Option("--junit", help="Write the tests' JUnit XML report to this file.")
]
KeyOpt = Annotated[
    Path | None,
    typer.Option("--key", help="Sign with this private key (cosign.key; passphrase from "
                               "GADGET_PASSWORD or COSIGN_PASSWORD). Without it: unsigned."),
]
RecursiveOpt = Annotated[
    bool, typer.Option("--recursive", help="Also sign each per-architecture manifest.")
]
PushOpt = Annotated[
    bool, typer.Option("--push/--no-push", help="Push at the end (--no-push: every step but that).")
]
UsernameOpt = Annotated[
    str | None,
    typer.Option("-u", "--username", help="Registry user for this run (not saved; else the "
                                          "auth file's credentials)."),
]
PasswordStdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the registry password or token from stdin.")
]


def publish_cmd(
    directory: Annotated[Path, typer.Argument(help="Gadget directory (program.bpf.c, gadget.yaml).")],
    image: Annotated[str, typer.Argument(help="Destination reference, host/repository[:tag].")],
    arch: PublishArchOpt = None,
    file: BuildFileOpt = None,
    ig_version: IgVersionOpt = None,
    btfgen: BtfgenOpt = False,
    btfhub_archive: BtfhubArchiveOpt = None,
    strict: StrictOpt = False,
    test: TestOpt = True,
    spec: SpecOpt = None,
    keyword: KeywordOpt = None,
    junit: JunitOpt = None,
    key: KeyOpt = None,
    recursive: RecursiveOpt = False,
    push: PushOpt = True,
    username: UsernameOpt = None,
    password_stdin: PasswordStdinOpt = False,
    authfile: AuthFileOpt = None,
    insecure_registries: InsecureOpt = None,
    ca_file: CaFileOpt = None,
    policy: PolicyOpt = None,
    fmt: OutputOpt = Output.columns,
    store: StoreDirOpt = None,
) -> None:
    """Build, validate, test, sign and push a gadget: the CI pipeline in one command.

    Stops at the first step that fails, and then nothing is pushed. Checked before the
    build: the destination against the policy (allowedPush; exit 3), the test specs, the
    signing key and its passphrase, and (when pushing) the registry and the credentials.
    Progress goes to stderr; stdout has the published reference, or with -o json
    one summary (every step, digests, tests, signature), also when a step fails. See
    README, 'CI'.

    Example: gadget publish my_gadget registry.corp:5000/obs/my_gadget:v1 --key cosign.key --junit report.xml

    Example: printf %s "$TOKEN" | sudo -E gadget publish . reg:5000/obs/t:v1 -u ci --password-stdin --key k

    Example: sudo gadget publish sample-gadgets/trace_open localhost:5000/trace_open:dev --no-push
    """
    opts = PublishOptions(
        arches=_arches(arch), build_file=file, ig_version=ig_version, btfgen=btfgen,
        btfhub_archive=btfhub_archive, store=store_path(store), strict=strict, test=test,
        specs=spec or [], keyword=keyword, junit=junit, key=key, passphrase=_take_passphrase(),
        recursive=recursive, push=push, remote=remote_options(authfile, insecure_registries, ca_file, policy),
        credentials=_credentials(username, password_stdin) if push else None,
    )
    if username and not push:
        typer.echo("warning: --username is not used with --no-push", err=True)
    _run(directory, image, opts, fmt)
    state.fast_exit = True


def _run(directory: Path, image: str, opts: PublishOptions, fmt: Output) -> None:
    """Publish, progress on stderr; the summary (also of a failed run) with -o json."""
    text = fmt is Output.columns
    try:
        result = publish(directory, image, opts, on_step=_on_step, on_case=_on_case)
    except PublishFailed as e:
        if not text:
            print_json(e.result.as_dict(), fmt)
        raise
    if text:
        verb = "Published" if result.pushed else "Built, not pushed:"
        typer.echo(f"{verb} {result.pinned}")
    else:
        print_json(result.as_dict(), fmt)
