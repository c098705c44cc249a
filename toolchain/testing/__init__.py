"""`gadget test`: declarative gadget tests.

    spec.py       *.test.yaml -> Spec / Case / Expectation (schema, templates, matchers),
                  and check_case() against the built gadget's fields
    gadgets.py    the gadget under test: a directory built for this host, or an image
    triggers.py   trigger steps on the host or in the case's podman container
    runner.py     run_case(): load, trigger, collect until the expectations hold, detach
    report.py     failure text, JSON, JUnit XML
    pytest_plugin.py  *.test.yaml as pytest items, and the gadget_run fixture

From Python::

    from gadgetsmith.toolchain.testing import load_spec, prepare, run_case
    spec = load_spec("sample-gadgets/trace_open/tests/trace_open.test.yaml")
    gadget = prepare(spec.gadget)
    for case in spec.cases:
        print(run_case(case, gadget).status)
"""

from gadgetsmith.toolchain.testing.gadgets import PreparedGadget, prepare
from gadgetsmith.toolchain.testing.runner import CaseResult, Planned, run_case, run_planned
from gadgetsmith.toolchain.testing.spec import Case, Expectation, Spec, SpecError, check_case, load_spec

__all__ = ["Case", "CaseResult", "Expectation", "Planned", "PreparedGadget", "Spec", "SpecError",
           "check_case", "load_spec", "prepare", "run_case", "run_planned"]
