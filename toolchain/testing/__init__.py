"""`gadget test`: declarative gadget tests.

    spec.py       *.test.yaml -> Spec / Case / Expectation (schema, templates, matchers),
                  and check_case() against the built gadget's fields
    gadgets.py    the gadget under test: a directory built for this host, or an image
    triggers.py   trigger steps on the host or in the case's podman container
    runner.py     run_case(): load, trigger, collect until the expectations hold, detach
    report.py     failure text, JSON, JUnit XML
    plan.py       command-line targets -> planned cases (`gadget test`)
    live.py       a run driven from Python code (the gadget_run fixture)
    session.py    what the pytest plugin drives: gadgets prepared once, cases, live runs
    pytest_plugin.py  *.test.yaml as pytest items, and the gadget_run fixture

This package module imports nothing: the pytest plugin is loaded by every pytest run of
an environment that has gadgetsmith, and the runtime (libbpf) and jsonschema load only
when a spec is collected or a fixture used. From Python::

    from gadgetsmith.toolchain.testing.gadgets import prepare
    from gadgetsmith.toolchain.testing.runner import run_case
    from gadgetsmith.toolchain.testing.spec import load_spec

    spec = load_spec("sample-gadgets/trace_open/tests/trace_open.test.yaml")
    gadget = prepare(spec.gadget)
    for case in spec.cases:
        print(run_case(case, gadget).status)
"""

#: how test spec files are named
SUFFIX = ".test.yaml"
