"""`gadget test`: run declarative gadget tests (*.test.yaml)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from gadgetsmith.toolchain.cli.common import (
    AuthFileOpt,
    CaFileOpt,
    InsecureOpt,
    NoVerifyOpt,
    Output,
    OutputOpt,
    PolicyOpt,
    StoreDirOpt,
    print_json,
    store_path,
)
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.registry.api import RemoteOptions
from gadgetsmith.toolchain.testing import plan as planning
from gadgetsmith.toolchain.testing import report
from gadgetsmith.toolchain.testing.runner import (
    CaseResult,
    Interrupted,
    Planned,
    require_root,
    run_planned,
)
from gadgetsmith.toolchain.testing.spec import GadgetSource, schema_path

TargetsArg = Annotated[
    list[str] | None,
    typer.Argument(help="Gadget directories (their tests/*.test.yaml), image references "
                        "(with --spec) or spec files.", show_default=False),
]
SpecOpt = Annotated[
    list[Path] | None,
    typer.Option("--spec", help="A test spec (repeatable); with TARGET, run against that gadget.",
                 show_default=False),
]
KeywordOpt = Annotated[str | None, typer.Option("-k", help="Only cases whose name contains this text.")]
JunitOpt = Annotated[
    Path | None, typer.Option("--junit", help="Also write a JUnit XML report to this file.")
]
JobsOpt = Annotated[
    int, typer.Option("--jobs", "-j", min=1,
                      help="Gadgets tested at the same time (the cases of one gadget always "
                           "run in order).")
]
ListOpt = Annotated[
    bool, typer.Option("--list", help="Check the specs and list their cases; run nothing.")
]
SchemaOpt = Annotated[
    bool, typer.Option("--schema", help="Print the JSON Schema of test specs and exit.")
]


def test(
    targets: TargetsArg = None,
    spec: SpecOpt = None,
    keyword: KeywordOpt = None,
    junit: JunitOpt = None,
    fmt: OutputOpt = Output.columns,
    jobs: JobsOpt = 1,
    list_: ListOpt = False,
    schema: SchemaOpt = False,
    store: StoreDirOpt = None,
    policy: PolicyOpt = None,
    no_verify: NoVerifyOpt = False,
    authfile: AuthFileOpt = None,
    insecure_registries: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """Run a gadget's declarative tests (*.test.yaml) and report like a test runner.

    Each case loads the gadget here (root), runs its trigger (commands on the host or in a
    podman container), collects events until its expectations hold or its time limit ends,
    and detaches everything. A failing case shows the expectation, how many events came and
    the closest one with the fields that differed. Exit 0 when every case passed, 1 when one
    failed, 2 for a bad spec (FILE:LINE:COL: error: ...). See README, 'Testing gadgets'.

    Example: sudo gadget test sample-gadgets/trace_open

    Example: sudo gadget test sample-gadgets/*/ --junit report.xml

    Example: sudo gadget test trace_open:dev --spec my.test.yaml
    """
    if schema:
        typer.echo(schema_path().read_text(), nl=False)
        return
    planned = planning.plan(planning.collect(targets or [], spec or []), keyword)
    if not planned:
        raise UsageError(f"no case name contains {keyword!r}" if keyword else "no cases to run")
    if list_:
        for p in planned:
            typer.echo(f"{p.case.spec.label}:{p.case.line}: {p.gadget_label}: {p.case.name}")
        return
    text = fmt is Output.columns

    def building(src: GadgetSource) -> None:
        if text:
            typer.echo(f"preparing {src.label} ...", err=True)
    remote = RemoteOptions(authfile=authfile, ca_file=ca_file,
                           insecure_registries=list(insecure_registries or []), policy_file=policy)
    planning.prepare_all(planned, on_prepare=building, store=store_path(store), policy=policy,
                         no_verify=no_verify, remote=remote)
    require_root()  # after the checks: a bad spec is found without root
    started = time.monotonic()
    results = _run(planned, jobs, junit, text)
    if junit is not None:
        report.write_junit(results, junit)
    _summarise(results, planned, fmt, time.monotonic() - started)


def _run(planned: list[Planned], jobs: int, junit: Path | None, text: bool) -> list[CaseResult]:
    """Run the cases, printing each result as it comes (text). SIGTERM ends the run like
    Ctrl-C: the running cases detach and remove their containers, the JUnit report gets
    what finished, and the command exits 130."""
    done: list[CaseResult] = []

    def show(result: CaseResult) -> None:
        done.append(result)
        if text:
            typer.echo(report.format_result(result))
            sys.stdout.flush()

    def terminate(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        return run_planned(planned, jobs=jobs, on_result=show)
    except KeyboardInterrupt:
        # the running case's finally blocks have detached its gadget and removed its container
        if junit is not None:
            report.write_junit(done, junit)
        raise Interrupted(f"interrupted after {len(done)} of {len(planned)} cases "
                          f"({report.summary(done)})") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _summarise(results: list[CaseResult], planned: list[Planned], fmt: Output,
               seconds: float) -> None:
    if fmt.structured:
        print_json(report.as_json(results), fmt)
    else:
        gadgets = len({p.key for p in planned})
        typer.echo(f"ran {len(results)} case{'s' * (len(results) != 1)} of {gadgets} "
                   f"gadget{'s' * (gadgets != 1)} in {seconds:.1f} s")
        typer.echo(report.summary(results))
    if any(not r.ok for r in results):
        raise typer.Exit(1)
