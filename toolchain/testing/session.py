"""What the pytest plugin drives: one session's prepared gadgets, cases and live runs.

The plugin imports this module on first use only (it pulls in the runtime, libbpf and
jsonschema), so pytest runs that collect no test spec do not pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gadgetsmith.toolchain.errors import GadgetError
from gadgetsmith.toolchain.testing.gadgets import PreparedGadget, prepare
from gadgetsmith.toolchain.testing.live import LiveRun, source_for
from gadgetsmith.toolchain.testing.report import format_result
from gadgetsmith.toolchain.testing.runner import CaseResult, require_root, run_case
from gadgetsmith.toolchain.testing.spec import Case, GadgetSource, Spec, SpecError, check_case, load_spec


class CaseFailed(GadgetError):
    """A case that failed or could not run; ``result`` holds why."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.message)
        self.result = result


class Session:
    def __init__(self) -> None:
        self._gadgets: dict[GadgetSource, PreparedGadget | GadgetError] = {}

    def load(self, path: Path) -> Spec:
        return load_spec(path)

    def gadget(self, source: GadgetSource) -> PreparedGadget:
        """Built or loaded once per session (a failure too is remembered and re-raised)."""
        if source not in self._gadgets:
            try:
                self._gadgets[source] = prepare(source)
            except GadgetError as e:
                self._gadgets[source] = e
        got = self._gadgets[source]
        if isinstance(got, GadgetError):
            raise got
        return got

    def run(self, case: Case) -> CaseResult:
        """Check the case against its gadget (SpecError), run it; CaseFailed unless it
        passed or was skipped."""
        if case.spec.gadget is None:
            raise GadgetError(f"{case.spec.label}: no gadget to test: put the spec in the "
                              "gadget's tests/ directory or set 'gadget:'")
        gadget = self.gadget(case.spec.gadget)
        problems = check_case(case, gadget)
        if problems:
            raise SpecError(problems)
        require_root()
        result = run_case(case, gadget)
        if not result.ok:
            raise CaseFailed(result)
        return result

    def live(self, gadget: str, base: Path, **options: Any) -> LiveRun:
        return LiveRun(self.gadget(source_for(gadget, base)), **options)

    @staticmethod
    def describe(error: BaseException) -> str | None:
        """The text pytest shows for one of our errors (None: pytest's own report)."""
        if isinstance(error, CaseFailed):
            return format_result(error.result)
        if isinstance(error, GadgetError):
            return (f"{error.detail}\n" if error.detail else "") + f"error: {error.message}"
        return None
