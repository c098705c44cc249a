"""`gadget btf import|list` (kernel BTF archives) and `gadget check` (kernel compatibility)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from gadgetsmith.toolchain.btfgen import check, kernelpkg
from gadgetsmith.toolchain.btfgen.archive import scan_archive
from gadgetsmith.toolchain.build.driver import ALL_ARCHES, compile_objects
from gadgetsmith.toolchain.cli.common import Output, OutputOpt, print_json, store_path
from gadgetsmith.toolchain.cli.output import KernelProgress, print_table, size_text
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.metadata import buildspec

btf_app = typer.Typer(
    name="btf",
    help="Kernel BTF archives in btfhub's layout, for 'gadget build --btfgen' and "
    "'gadget check'.\n\nExample: gadget btf import linux-image-6.1.0-47-cloud-amd64_*.deb "
    "--archive ~/btfhub-archive",
    no_args_is_help=True,
)


@btf_app.command("import")
def btf_import(
    files: Annotated[list[Path], typer.Argument(
        help="linux-image-*.deb packages (Debian's), or a raw BTF / vmlinux file "
             "such as /sys/kernel/btf/vmlinux.")],
    archive: Annotated[Path, typer.Option("--archive", "-a",
                                          help="The archive folder to write into (created).")],
    os_name: Annotated[str | None, typer.Option(
        "--os", help="ID/VERSION_ID of the distribution (default: read from the package; "
                     "this machine's for /sys/kernel/btf/vmlinux).")] = None,
    release: Annotated[str | None, typer.Option(
        "--release", help="The kernel release, uname -r (default: from the package).")] = None,
    plain: Annotated[bool, typer.Option(
        "--plain", help="Write RELEASE.btf files instead of btfhub's RELEASE.btf.tar.xz.")] = False,
    fmt: OutputOpt = Output.columns,
) -> None:
    """Turn kernel packages into a btfhub-layout archive (ID/VERSION_ID/ARCH/RELEASE).

    The BTF is taken from the package's boot/vmlinuz; the distribution and its version
    from the package's changelog, the architecture from its control file.

    Example: gadget btf import linux-image-6.1.0-47-cloud-amd64_*.deb --archive ~/btfhub-archive

    Example: gadget btf import /sys/kernel/btf/vmlinux --archive ./kernels
    """
    os_id = kernelpkg.parse_os(os_name) if os_name else None
    progress = None
    if fmt is Output.columns and sys.stderr.isatty() and len(files) > 1:
        progress = KernelProgress("import")
    try:
        done = kernelpkg.import_files(list(files), archive, os_id, release, compress=not plain,
                                      progress=progress)
    finally:
        if progress is not None:
            progress.close()
    if fmt.structured:
        print_json({"archive": str(archive), "imported": [d.as_dict() for d in done]}, fmt)
        return
    for d in done:
        typer.echo(f"{d.key}  {size_text(d.btf_size)} of BTF  <- {d.source.name}  ({d.path})")


@btf_app.command("list")
def btf_list(
    archive: Annotated[Path, typer.Argument(help="The archive folder.")],
    arch: Annotated[str | None, typer.Option("--arch", help="Only this architecture (amd64, arm64).")] = None,
    fmt: OutputOpt = Output.columns,
) -> None:
    """List the kernels of a btfhub-layout archive.

    Example: gadget btf list ~/btfhub-archive --arch arm64
    """
    if arch is not None and arch not in ("amd64", "arm64"):
        raise UsageError(f"--arch {arch}: use amd64 or arm64")
    entries = scan_archive(archive, {arch} if arch else None)
    rows = [e.as_dict() for e in entries]
    if fmt.structured:
        print_json(rows, fmt)
        return
    print_table(["ID", "VERSION_ID", "ARCH", "RELEASE", "SIZE", "FILE"],
                [[r["id"], r["versionId"], r["arch"], r["release"],
                  size_text(r["size"]) if r["size"] is not None else "?",
                  Path(str(r["path"])).name] for r in rows])
    typer.echo(f"{len(rows)} kernel{'s' if len(rows) != 1 else ''}", err=True)


def _target(what: str, arches: list[str] | None, store: Path | None) -> check.Target:
    """A gadget directory is compiled here (build sits above btfgen); an image or an object
    file is btfgen's to read."""
    path = Path(what)
    if not path.is_dir():
        return check.load_target(what, arches, store)
    spec = buildspec.load(path)
    if spec.ebpf_source is None:
        raise UsageError(f"{path}: the gadget has no eBPF program to check")
    return check.Target(str(path), compile_objects(spec, arches or list(ALL_ARCHES)))


def check_cmd(
    target: Annotated[str, typer.Argument(help="Image reference, gadget directory or .bpf.o file.")],
    kernels: Annotated[list[str] | None, typer.Option(
        "--kernels", "-k",
        help="Kernel BTF archive (btfhub layout) or a BTF file such as /sys/kernel/btf/vmlinux; "
             "repeatable. Default: the kernels of the image's btfgen layer (minimised BTF: "
             "only CO-RE relocations are checked).")] = None,
    arch: Annotated[list[str] | None, typer.Option(
        "--arch", help="Only this architecture (amd64, arm64); repeatable.")] = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Also list unresolved relocations the verifier never reaches.")] = False,
    fmt: OutputOpt = Output.columns,
    store: Annotated[Path | None, typer.Option("--store", help="Local OCI store directory.",
                                               show_default=False)] = None,
) -> int:
    """On which kernels does the gadget load, and why not (exit 1 when one fails).

    Resolves the object's CO-RE relocations against each kernel's BTF as libbpf would,
    follows which code the verifier reaches, and checks program types, attach targets,
    helpers, map types and kfuncs against what each kernel's BTF shows.

    Example: gadget check trace_open:dev --kernels ~/btfhub-archive

    Example: gadget check sample-gadgets/trace_open --kernels /sys/kernel/btf/vmlinux -o json
    """
    arches = list(dict.fromkeys(arch)) if arch else None
    for a in arches or []:
        if a not in ("amd64", "arm64"):
            raise UsageError(f"--arch {a}: use amd64 or arm64")
    tgt = _target(target, arches, store_path(store))
    sources = _kernel_sources(target, tgt, kernels)
    progress = KernelProgress("check") if fmt is Output.columns and sys.stderr.isatty() else None
    try:
        verdicts = check.run(tgt.objects, sources, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    failing = [v for v in verdicts if not v.loads]
    if fmt.structured:
        print_json({
            "target": tgt.label,
            "kernels": [v.as_dict() for v in verdicts],
            "summary": {"kernels": len(verdicts), "load": len(verdicts) - len(failing),
                        "fail": len(failing)},
        }, fmt)
    else:
        _print_verdicts(tgt.label, verdicts, verbose)
    return 1 if failing else 0


def _kernel_sources(target: str, tgt: check.Target,
                    kernels: list[str] | None) -> list[check.KernelSource]:
    """--kernels, else the kernels of the image's btfgen layer."""
    if kernels:
        sources = check.kernels_from(kernels, set(tgt.objects))
    elif tgt.btfgen_layers:
        sources = check.kernels_from_layers(tgt.btfgen_layers)
    else:
        raise UsageError(f"{target}: give kernels with --kernels ARCHIVE (a btfhub-layout folder, "
                         "see 'gadget btf import') or a BTF file such as /sys/kernel/btf/vmlinux")
    if not sources:
        raise UsageError(f"--kernels: no kernel for {', '.join(sorted(tgt.objects))} in "
                         f"{', '.join(kernels or [])}")
    return sources


def _print_verdicts(label: str, verdicts: list[check.Verdict], verbose: bool) -> None:
    rows: list[list[str]] = []
    for v in verdicts:
        result = "loads" if v.loads else ("unreadable BTF" if v.error else "does not load")
        rows.append([v.kernel, v.arch, result])
    print_table(["KERNEL", "ARCH", "RESULT"], rows)
    for v in verdicts:
        if v.error:
            typer.echo(f"\n{v.kernel}: {v.error}")
        elif v.problems or (verbose and (v.guarded or v.notes)):
            typer.echo(f"\n{v.kernel}:")
            for p in v.problems:
                typer.echo(f"  {p}")
            if verbose:
                for g in v.guarded + v.notes:
                    typer.echo(f"  note: {g}")
    n = len(verdicts)
    loads = sum(1 for v in verdicts if v.loads)
    typer.echo(f"\n{label}: loads on {loads} of {n} kernel{'s' if n != 1 else ''}")
