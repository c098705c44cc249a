"""A gadget run as a pipeline of named stages, in order (like IG's operators):

    source      where the gadget comes from: object bytes and gadget.yaml   source.py
    containers  the container collection, when containers are watched     containers.py
    object      the object model, the run's data sources and decoders       model.py
    params      --param values, checked before anything is loaded          params.py
    load        the object in the kernel; the container (mntns) filter     load.py
    readers     ring/perf buffers, iterator runs, map drains; lost records  readers.py
    attach      every program; uprobes in containers as they appear        attach.py
    decode      records -> flat events                                     decode.py
    formatters  ig's formatted fields: endpoints, kernel stacks            formatters.py
    ustack      user stacks: addresses, build ids, symbols                 ustack.py
    enrich      runtime.* / k8s.* fields, merged only when read            enrich.py
    processors  the caller's per-event hooks                               processors.py
    wasm        the gadget's WASM module: changes and adds fields, emits   wasmslot.py -> ../wasm/stage.py
                events of other data sources (before the filter, as in IG)
    filter      --filter                                                   filter.py
    sort        --sort, for snapshots and map-iterator rounds              sort.py

Then the consumer (``Gadget.run(on_batch=...)``: ``gadget run`` gives a
:class:`~gadgetsmith.runtime.events.output.Output`). :mod:`.stage` says what a stage
is, :mod:`.context` what stages share, :mod:`.pipeline` how batches flow, :mod:`.run`
the tracer / snapshot / top loops; ``gadgetsmith.runtime.gadget.Gadget`` composes them.
"""
