"""What a compiled gadget object declares, for validation and metadata generation.

A thin layer over the runtime's object model (:mod:`gadgetsmith.runtime.objmodel`): the
data sources, fields, params and maps that ``gadget validate`` checks and ``gadget
metadata`` writes are exactly what ``gadget run`` loads and sets. What is added here is
toolchain-only: the annotation template of each special type, and a :class:`UsageError`
naming the object when it cannot be read.
"""

from __future__ import annotations

from gadgetsmith.runtime.bpf.objmodel import (
    MAP_TYPES,
    WELL_KNOWN_KEYS,
    DataSourceInfo,
    GadgetObject,
    MapInfo,
    ObjectError,
)
from gadgetsmith.runtime.bpf.objmodel import GadgetObject as ObjectInfo
from gadgetsmith.runtime.bpf.objmodel import Param as ParamInfo
from gadgetsmith.toolchain.errors import UsageError

#: special types -> IG annotation template applied by the runtime
TEMPLATES = {
    "gadget_timestamp": "timestamp", "gadget_bytes": "bytes", "gadget_duration": "duration",
    "gadget_comm": "comm", "gadget_pcomm": "pcomm", "gadget_pid": "pid", "gadget_ppid": "ppid",
    "gadget_tid": "tid", "gadget_ptid": "ptid", "gadget_uid": "uid", "gadget_gid": "gid",
    "gadget_mntns_id": "mntns_id", "gadget_netns_id": "netns_id", "gadget_syscall": "syscall",
    "gadget_user_stack": "user_stack", "gadget_l4endpoint_t": "l4endpoint",
}


def analyze(data: bytes, label: str = "object") -> ObjectInfo:
    """The object model of an eBPF ELF object, data sources analysed. Raises UsageError
    when it is not a usable object."""
    try:
        obj = GadgetObject(data)
        obj.datasources  # noqa: B018 - analyse now, so a broken object fails here
    except ObjectError as e:
        raise UsageError(f"{label}: not a usable eBPF object: {e.reason}") from None
    except (ValueError, LookupError) as e:
        raise UsageError(f"{label}: not a usable eBPF object: {e}") from None
    return obj


__all__ = ["MAP_TYPES", "TEMPLATES", "WELL_KNOWN_KEYS", "DataSourceInfo", "MapInfo",
           "ObjectInfo", "ParamInfo", "analyze"]
