"""The work of `gadget build`, without typer or click: its typer command (cli/build.py)
and the console script's plain lines (cli/entry.py, cli/runargs.py) call it; a plain
line is a build with the default checks, on this host, of the options BuildArgs holds."""

from __future__ import annotations

import sys

from gadgetsmith.toolchain.build.driver import ALL_ARCHES, BuildResult, build
from gadgetsmith.toolchain.cli.output import Output, btfgen_line, print_json
from gadgetsmith.toolchain.cli.runargs import BuildArgs
from gadgetsmith.toolchain.cli.state import store_path


def build_command(a: BuildArgs) -> None:
    """A plain `gadget build DIR` line."""
    report(build(a.directory, tag=a.tag, arches=a.arch or ALL_ARCHES, output_dir=a.output_dir,
                 store_path=store_path(a.store), no_store=a.no_store, build_file=a.file,
                 no_cache=a.no_cache), a.fmt)


def report(result: BuildResult, fmt: Output) -> None:
    """gadget.yaml's warnings on stderr, then the result: ``fmt``'s JSON/YAML or lines."""
    for w in result.metadata_warnings:
        print(w, file=sys.stderr, flush=True)
    if fmt.structured:
        print_json(result.as_dict(), fmt)
        return
    built = f"{result.reference}@{result.digest}" if result.reference else result.digest
    if not result.stored:
        lines = [f"Successfully built {built} (not stored)"]
    elif result.reference:
        lines = [f"Successfully built {built}"]
    else:  # as docker prints an untagged build: the digest, and how to name it
        lines = [f"Successfully built {built} (untagged: name it with 'gadget tag "
                 f"{result.digest.removeprefix('sha256:')[:12]} NAME', or build with -t NAME)"]
    lines += [f"  {a}: {p}" for a, p in result.objects.items()]
    lines += [f"  gadget.yaml: {line}" for line in result.metadata_update]
    if result.btfgen is not None:
        lines.append(f"  btfgen: {btfgen_line(result.btfgen)}")
    print("\n".join(lines), flush=True)
