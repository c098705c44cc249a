"""BTF bundles for kernels without BTF (btfgen), and a kernel compatibility check.

- :mod:`.archive`  -- kernel BTF archives in btfhub's layout
  (``ID/VERSION_ID/ARCH/RELEASE.btf[.tar.xz]``): scan, read, write.
- :mod:`.kernelpkg` -- distribution kernel packages (Debian ``linux-image-*``) -> archive.
- :mod:`.minimize` -- ``bpftool gen min_core_btf`` over many kernels in parallel, cached.
- :mod:`.cache`    -- the minimisation cache, keyed by (kernel BTF, object, bpftool version).
- :mod:`.layer`    -- the image's btfgen layer (a reproducible tar.gz per architecture).
- :mod:`.core`     -- CO-RE relocations of an object resolved against a kernel's BTF.
- :mod:`.check`    -- ``gadget check``: on which kernels an object loads, and why not.
- :mod:`.buildstep` -- the btfgen layers of ``gadget build --btfgen``.

Errors are :class:`gadgetsmith.toolchain.errors.UsageError` (bad input: a broken archive
entry, a package that is not a kernel) or :class:`GadgetError` (a tool failed), each one
line that names the file.
"""

from __future__ import annotations

from gadgetsmith.toolchain.btfgen.archive import KernelEntry, scan_archive

__all__ = ["KernelEntry", "scan_archive"]
