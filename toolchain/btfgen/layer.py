"""The btfgen layer: a reproducible tar.gz of minimised BTF files in btfhub's layout.

Entry names are ``ID/VERSION_ID/ARCH/RELEASE.btf`` with no ``./`` prefix (what ig's
runtime looks up), sorted, regular files only, owner 0:0, mode 0644, every mtime (and the
gzip header's) set to ``SOURCE_DATE_EPOCH`` or 0: the same inputs give the same digest.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Mapping

from gadgetsmith.runtime.bpf.btfgen import read_layer
from gadgetsmith.toolchain.errors import UsageError

__all__ = ["make_layer", "read_layer", "layer_mtime"]


def layer_mtime(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    sde = env.get("SOURCE_DATE_EPOCH")
    if not sde:
        return 0
    try:
        return int(sde)
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH={sde!r} is not an integer number of seconds") from None


def make_layer(files: Mapping[str, bytes], mtime: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tf.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), compresslevel=9, mtime=mtime)
