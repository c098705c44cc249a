"""The btfgen step of `gadget build --btfgen`: the archive's kernels, found before anything
compiles, then one minimised-BTF layer per architecture once the objects exist."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gadgetsmith.toolchain.btfgen import archive, cache, layer, minimize
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.oci.assemble import ArchContent


class BtfgenStep:
    """Kernels per architecture of a btfhub-layout archive (refused when it has none)."""

    def __init__(self, archive_dir: Path | str, arches: Sequence[str]) -> None:
        entries = archive.scan_archive(archive_dir, set(arches))
        if not entries:
            dirs = ", ".join(archive.BTFHUB_ARCH[a] for a in arches)
            raise UsageError(f"--btfhub-archive {archive_dir}: no kernel BTF for {dirs} in it "
                             "(expected ID/VERSION_ID/ARCH/RELEASE.btf.tar.xz or .btf files)")
        self.kernels: dict[str, list[archive.KernelEntry]] = {
            a: [e for e in entries if e.arch == a] for a in arches}

    def add_layers(self, content: dict[str, ArchContent], jobs: int | None = None,
                   progress: Callable[[int, int, Any], None] | None = None) -> dict[str, Any]:
        """Minimise every kernel against its architecture's object and set that arch's
        btfgen layer; returns the summary `gadget build` prints (and its warnings)."""
        mtime = layer.layer_mtime()
        todo = {a: ks for a, ks in self.kernels.items() if ks}
        objects = {a: ebpf for a in todo if (ebpf := content[a].ebpf) is not None}
        res = minimize.minimize(objects, {a: todo[a] for a in objects}, cache.BtfgenCache(), jobs,
                                progress)
        summary: dict[str, Any] = {"kernels": {}, "layerSizes": {}, "btfBytes": 0,
                                   "cached": res.cached, "seconds": round(res.seconds, 3),
                                   "jobs": res.jobs, "bpftool": res.bpftool, "warnings": []}
        for arch, ms in res.by_arch.items():
            data = layer.make_layer({m.entry.layer_name: m.data for m in ms}, mtime)
            content[arch].btfgen = data
            summary["kernels"][arch] = len(ms)
            summary["layerSizes"][arch] = len(data)
            summary["btfBytes"] += sum(len(m.data) for m in ms)
        for arch, ks in self.kernels.items():
            if not ks:
                summary["kernels"][arch] = 0
                summary["warnings"].append(
                    f"warning: the archive has no {archive.BTFHUB_ARCH[arch]} kernel: the {arch} "
                    "image has no btfgen layer")
        return summary
