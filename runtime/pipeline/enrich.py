"""enrich: the container fields (``runtime.*``, ``k8s.*``) of each event.

Like ig, only data sources with a mount namespace id (``gadget_mntns_id``), or else a
network namespace id, get them. Per batch the stage reads the enrichment table once; per
event it costs one dict lookup. The fields are merged into the events only when a later
stage, or the consumer, reads them (see ``Pipeline.plan``); otherwise each event's
:class:`~gadgetsmith.runtime.events.enrichment.Enrichment` travels beside it in
``Batch.extras`` and the JSON printer splices its pre-rendered text.
"""

from __future__ import annotations

import os

from gadgetsmith.runtime.containers.collection import host_netns, namespace_inode
from gadgetsmith.runtime.events.decode import Column
from gadgetsmith.runtime.events.enrichment import EMPTY, EMPTY_FIELDS, EnrichmentTable
from gadgetsmith.runtime.pipeline.context import RunContext
from gadgetsmith.runtime.pipeline.stage import ENRICH, Batch, EventStage, Needs


class EnrichStage(EventStage):
    """Adds the container columns to the enriched data sources (``pre_start``), and
    looks each event's container up by its namespace id."""

    name = "enrich"
    priority = ENRICH

    def __init__(self) -> None:
        self.table: EnrichmentTable | None = None
        #: data source name -> (its namespace id field, looked up by network namespace?)
        self.keys: dict[str, tuple[str, bool]] = {}
        self.merge = True
        #: the host's namespace ids, by "looked up by network namespace?" (read when needed)
        self.host_ns: dict[bool, int] = {}

    def needs(self) -> Needs:
        return Needs(changes=True)

    def pre_start(self, ctx: RunContext) -> None:
        if ctx.containers is None:
            return
        for ds in ctx.datasources.values():
            dec = ds.decoder
            if dec is None:
                continue
            if dec.mntns_field:
                self.keys[ds.name] = (dec.mntns_field, False)
            elif dec.netns_field:
                self.keys[ds.name] = (dec.netns_field, True)
            else:
                continue
            # under --host the column would be empty for most events: JSON has the field
            # and --fields runtime.containerName,... shows it
            cols = [Column("runtime.containerName", alias="", hidden=ctx.host)]
            cols += [Column(n, hidden=True) for n in EMPTY_FIELDS if n != "runtime.containerName"]
            ds.columns[:0] = cols
        self.table = EnrichmentTable(ctx.containers)

    def plan(self, later_needs_enrichment: bool) -> None:
        self.merge = later_needs_enrichment

    def process(self, batch: Batch) -> list[Batch]:
        table = self.table
        key = self.keys.get(batch.datasource.name)
        if table is None or key is None:
            return [batch]  # no collection, or a data source without a namespace id
        field, by_netns = key
        if table.collection.scanning():
            self._wait_for_scan(table, batch, field, by_netns)
        # the table of the containers known now (rebuilt only when they changed)
        get = (table.current_netns() if by_netns else table.current()).get
        extras = [get(ns, EMPTY) for ns in batch.values(field)]
        if self.merge or batch.is_array:
            for ev, extra in zip(batch.events, extras, strict=True):
                ev.update(extra.plain)
        else:
            batch.extras = extras
        return [batch]

    def _wait_for_scan(self, table: EnrichmentTable, batch: Batch, field: str,
                       by_netns: bool) -> None:
        """While the collection takes its first snapshot (``--host``), events of the host's
        own namespace go on; one from another namespace waits for the snapshot, so a
        container's events have its fields as when the snapshot was taken first."""
        host = self.host_ns.get(by_netns)
        if host is None:
            host = self.host_ns[by_netns] = host_netns() if by_netns else (
                namespace_inode(1, "mnt") or namespace_inode(os.getpid(), "mnt"))
        if any(ns != host for ns in batch.values(field)):
            table.collection.wait_scanned()


__all__ = ["EnrichStage"]
