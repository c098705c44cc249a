"""The gadget under test: built from its directory or read from an image, once per run.

A directory is compiled for this machine's architecture without the store, as
``gadget run DIR`` does (and refused as it is when the policy does not allow local
sources); an image reference is loaded from the local store as ``gadget run REF`` does
(allowlist and signature checks of the policy included), and pulled first when the store
does not have it. The data sources' field names come from
the same decoders the runtime uses, so a matcher is checked against exactly the keys the
events will have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from gadgetsmith.runtime.bpf.objmodel import GadgetObject
from gadgetsmith.runtime.errors import FilterError, ParamError, RuntimeGadgetError
from gadgetsmith.runtime.events import filter as filt
from gadgetsmith.runtime.events.decode import decoder_for
from gadgetsmith.runtime.events.enrichment import EMPTY_FIELDS
from gadgetsmith.runtime.wasm.probe import module_additions
from gadgetsmith.toolchain.errors import GadgetError, NotFoundError
from gadgetsmith.toolchain.policy import load_policy
from gadgetsmith.toolchain.registry.api import RemoteOptions, pull_image
from gadgetsmith.toolchain.run import load_for_run, resolve_source
from gadgetsmith.toolchain.signing.enforce import pull_check
from gadgetsmith.toolchain.testing.spec import GadgetSource


@dataclass
class DataSourceFields:
    name: str
    kind: str  # tracer | iterator | mapiter
    names: list[str]
    sample: dict[str, Any] = field(repr=False, default_factory=dict)
    enriched: bool = False  # has a mount or network namespace id: container fields
    #: fields holding errno/signal names (the decoder's value_kinds), for --filter checks
    value_kinds: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def noun(self) -> str:
        return {"tracer": "event", "iterator": "row", "mapiter": "row"}.get(self.kind, "event")

    def field_names(self, with_containers: bool) -> list[str]:
        if self.enriched and with_containers:
            return self.names + [n for n in EMPTY_FIELDS if n not in self.names]
        return list(self.names)

    def filter_problem(self, text: str, with_containers: bool) -> str | None:
        sample = dict(self.sample)
        if self.enriched and with_containers:
            sample.update(EMPTY_FIELDS)
        kinds = filt.kinds_from_sample(sample.keys(), sample)
        kinds.update(self.value_kinds)
        try:
            filt.build(text, kinds)
        except FilterError as e:
            return str(e)
        return None


@dataclass
class PreparedGadget:
    source: GadgetSource
    data: bytes = field(repr=False)
    metadata: dict[str, Any] = field(repr=False)
    datasources: dict[str, DataSourceFields] = field(default_factory=dict)
    obj: Any = field(default=None, repr=False)  # runtime GadgetObject (static model)
    #: an image's btfgen layer, on a kernel without BTF (None: the kernel's own BTF)
    btfgen_layer: bytes | None = field(default=None, repr=False)
    #: the gadget's WASM module (None: it has none)
    wasm: bytes | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        name = self.metadata.get("name") if isinstance(self.metadata, dict) else None
        return str(name) if self.source.kind == "dir" and name else self.source.label

    def datasource(self, name: str | None) -> DataSourceFields:
        if name is None:
            return next(iter(self.datasources.values()))
        return self.datasources[name]

    def param_problem(self, key: str, value: str | None) -> str | None:
        """Why ``key`` (a flag name or variable) cannot be set to ``value`` (None: only the
        key is checked), or None."""
        try:
            p = self.obj.param(key)
            if value is not None:
                p.encode(value)
        except ParamError as e:
            return str(e)
        return None


def load_source(source: GadgetSource, *, store: Path | None = None, policy: Any = None,
                no_verify: bool = False, remote: Any = None
                ) -> tuple[bytes, dict[str, Any], bytes | None, bytes | None]:
    """The eBPF object (this machine's arch), gadget.yaml, for an image on a kernel
    without BTF its btfgen layer, and the gadget's WASM module (or None)."""
    if policy is None or isinstance(policy, (str, Path)):
        policy = load_policy(policy)
    if source.kind == "dir":
        # the same choice (and policy rule on local sources) as `gadget run DIR`
        local = resolve_source(source.value, store, policy)
        data, metadata = local.load()
        return data, metadata, None, local.wasm_layer()
    try:
        return load_for_run(store, source.value, policy, no_verify)
    except NotFoundError as missing:
        try:
            pull_image(source.value, store_path=store, options=remote or RemoteOptions(),
                       verifier=partial(pull_check, no_verify=no_verify))
        except GadgetError as e:
            raise NotFoundError(f"{missing}; pulling it failed: {e}") from None
        return load_for_run(store, source.value, policy, no_verify)


def prepare(source: GadgetSource, **kw: Any) -> PreparedGadget:
    """Build or load ``source`` and read its data sources (GadgetError when it cannot)."""
    data, metadata, btfgen_layer, wasm = load_source(source, **kw)
    try:
        obj = GadgetObject(data, metadata)
        out = PreparedGadget(source, data, metadata, obj=obj, btfgen_layer=btfgen_layer, wasm=wasm)
        for name, info in obj.datasources.items():
            decoder = decoder_for(info)
            sample = decoder.decode(b"")
            for gone in info.removed:  # ig's formatters: an endpoint's addr replaces addr_raw
                sample.pop(gone, None)
            sample.update({added: "" for added in info.formatted.added})
            out.datasources[name] = DataSourceFields(name, info.kind, list(sample), sample,
                                                     info.enriched, dict(decoder.value_kinds))
        if wasm is not None:
            _add_module_fields(out, wasm, obj)
    except RuntimeGadgetError as e:
        raise GadgetError(f"{source.label}: {e}") from None
    if not out.datasources:
        raise GadgetError(f"{source.label}: the gadget declares no data source (GADGET_TRACER, "
                          "GADGET_ITER or GADGET_MAPITER)")
    return out


def _add_module_fields(gadget: PreparedGadget, wasm: bytes, obj: GadgetObject) -> None:
    """The fields the gadget's WASM module adds (its gadgetInit, run over the object's
    data sources) and the data sources it creates: what specs may match on too. A module
    that fails to initialise is the gadget's error."""
    additions = module_additions(wasm, obj)
    if additions.error:
        raise GadgetError(f"{gadget.source.label}: {additions.error}")
    for name, added in additions.fields.items():
        ds = gadget.datasources.get(name)
        if ds is not None:
            ds.names += [n for n in added if n not in ds.names]
            ds.sample.update(additions.zero.get(name, {}))
    for name, fields in additions.datasources.items():
        gadget.datasources[name] = DataSourceFields(name, "tracer", list(fields),
                                                    dict(additions.zero.get(name, {})), False)
