"""The read side of `gadget inspect`: an image of the store with its manifests, layers,
gadget.yaml and the params its eBPF object takes.

Apart from :mod:`.views` (`gadget list`) because it reads gadget.yaml (ruamel) and the
object (the runtime's object model, libbpf through ctypes), which listing needs neither of.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gadgetsmith.runtime.bpf.objmodel import GadgetObject
from gadgetsmith.runtime.errors import ObjectError
from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import LayoutError
from gadgetsmith.toolchain.metadata.yamldoc import YamlSyntaxError, load_marked
from gadgetsmith.toolchain.oci.store import Store, StoreError, open_store
from gadgetsmith.toolchain.oci.views import metadata_summary


def _layer_summary(desc: dict[str, Any]) -> dict[str, Any]:
    return {
        "mediaType": desc.get("mediaType"),
        "kind": mt.LAYER_NAMES.get(desc.get("mediaType", ""), "unknown"),
        "digest": desc.get("digest"),
        "size": desc.get("size"),
    }



def inspect_image(store_path: Path | None, text: str) -> dict[str, Any]:
    """What `gadget inspect` shows of an image of the store: references, index, per-arch
    manifests and layers, gadget.yaml with its data sources, and the params `gadget run`
    takes."""
    store = open_store(store_path)
    ref, desc = store.lookup(text)
    refs = [e.reference for e in store.images() if e.digest == desc["digest"]]
    info: dict[str, Any] = {
        "reference": str(ref) if ref else (refs[0] if refs else None),
        "references": refs,
        "digest": desc["digest"],
        "mediaType": desc.get("mediaType"),
        "size": desc.get("size"),
        "annotations": desc.get("annotations") or {},
    }
    try:
        top = store.read_json(desc["digest"])
    except (LayoutError, ValueError) as e:
        raise StoreError(f"{text}: cannot read image: {e}") from None
    info["annotations"] = {
        k: v for k, v in (top.get("annotations") or info["annotations"]).items() if k != mt.REF_NAME
    }
    manifests = []
    if desc.get("mediaType") == mt.INDEX or "manifests" in top:
        mdescs = top.get("manifests") or []
    else:
        mdescs = [dict(desc, platform={})]
    metadata_raw = None
    for md in mdescs:
        try:
            m = store.read_json(md["digest"])
        except (LayoutError, ValueError) as e:
            raise StoreError(f"{text}: manifest {md['digest']} unreadable: {e}") from None
        cfg = m.get("config") or {}
        entry = {
            "platform": md.get("platform") or {},
            "digest": md["digest"],
            "size": md.get("size"),
            "artifactType": m.get("artifactType"),
            "config": {"mediaType": cfg.get("mediaType"), "digest": cfg.get("digest"),
                       "size": cfg.get("size")},
            "layers": [_layer_summary(x) for x in m.get("layers") or []],
        }
        manifests.append(entry)
        if metadata_raw is None and cfg.get("mediaType") == mt.CONFIG and store.has_blob(cfg["digest"]):
            metadata_raw = store.read_blob(cfg["digest"]).decode("utf-8", "replace")
    info["manifests"] = manifests
    meta = None
    if metadata_raw is not None:
        try:
            meta = load_marked(metadata_raw).data
        except YamlSyntaxError:
            meta = None
    info["metadata"] = meta if isinstance(meta, dict) else None
    info.update(metadata_summary(info["metadata"]))
    run_params = _object_params(store, manifests, info["metadata"])
    if run_params is not None:
        info["params"] = run_params
    return info


#: what the params of <gadget/common.h>'s filters do (gadget.yaml seldom describes them)
_COMMON = {
    "pid": "Only events of this process ID (0: all)",
    "tid": "Only events of this thread ID (0: all)",
    "uid": "Only events of processes of this user ID (4294967295: all)",
    "gid": "Only events of processes of this group ID (4294967295: all)",
    "comm": "Only events of processes with this command name",
}


def _object_params(store: Store, manifests: list[dict[str, Any]],
                   meta: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The params `gadget run` takes, as it takes them: every settable GADGET_PARAM of the
    eBPF object (the common ones such as pid and comm too) with its flag name, type and
    .rodata default, then the WASM module's from gadget.yaml. None when no eBPF layer of
    the image is in the store or readable (gadget.yaml's params are shown then)."""
    layers = [layer["digest"] for m in manifests for layer in m["layers"] if layer["kind"] == "ebpf"]
    if not layers or not store.has_blob(layers[0]):
        return None
    try:
        obj = GadgetObject(store.read_blob(layers[0]), meta)
    except (ObjectError, LayoutError, StoreError):
        return None
    out = [{"operator": "ebpf", "name": p.var, "key": p.key, "type": p.type,
            "default": p.default or "", "description": p.description or _COMMON.get(p.key, "")}
           for p in sorted(obj.params.values(), key=lambda p: p.key) if p.settable]
    summary = {(p["operator"], p["key"]): p for p in metadata_summary(meta)["params"]}
    out += [dict(p, type="string") for (op, _), p in summary.items() if op == "wasm"]
    return out
