"""pytest plugin (entry point ``pytest11``): test specs as pytest items, and a fixture.

``pytest sample-gadgets/`` collects every ``*.test.yaml`` file: each case is one item,
run and reported as ``gadget test`` does (the failure text is the same). Gadgets are
built once per session. Tests written in Python use the ``gadget_run`` fixture::

    def test_open(gadget_run, tmp_path):
        with gadget_run("sample-gadgets/trace_open", params={"failed": "true"}) as run:
            subprocess.run(["cat", str(tmp_path / "missing")])
            run.expect(match={"fname": str(tmp_path / "missing"), "error": "ENOENT"})

Importing this module is cheap: the runtime loads only when a case runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gadgetsmith.toolchain.testing.spec import SUFFIX


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIX):
        return SpecFile.from_parent(parent, path=file_path)
    return None


class CaseFailed(Exception):
    def __init__(self, result: Any) -> None:
        super().__init__(result.message)
        self.result = result


def _prepared(config: pytest.Config, source: Any) -> Any:
    """The session's PreparedGadget for ``source`` (built once), or the GadgetError."""
    from gadgetsmith.toolchain.errors import GadgetError
    from gadgetsmith.toolchain.testing.gadgets import prepare

    cache = config.stash.setdefault(_CACHE, {})
    if source not in cache:
        try:
            cache[source] = prepare(source)
        except GadgetError as e:
            cache[source] = e
    got = cache[source]
    if isinstance(got, GadgetError):
        raise got
    return got


_CACHE = pytest.StashKey[dict]()


def _repr_error(excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    from gadgetsmith.toolchain.errors import GadgetError
    from gadgetsmith.toolchain.testing.report import format_result

    e = excinfo.value
    if isinstance(e, CaseFailed):
        return format_result(e.result)
    if isinstance(e, GadgetError):
        return (f"{e.detail}\n" if e.detail else "") + f"error: {e.message}"
    return None


class SpecFile(pytest.File):
    def collect(self):
        from gadgetsmith.toolchain.testing.spec import load_spec

        spec = load_spec(self.path)
        for case in spec.cases:
            yield CaseItem.from_parent(self, name=case.name, case=case)

    def repr_failure(self, excinfo, style=None):  # noqa: ANN001 - pytest's signature
        return _repr_error(excinfo) or super().repr_failure(excinfo)


class CaseItem(pytest.Item):
    def __init__(self, *, case: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.case = case

    def runtest(self) -> None:
        from gadgetsmith.toolchain.errors import GadgetError
        from gadgetsmith.toolchain.testing.runner import SKIPPED, require_root, run_case
        from gadgetsmith.toolchain.testing.spec import SpecError, check_case

        case = self.case
        if case.skip:
            pytest.skip(case.skip)
        if case.spec.gadget is None:
            raise GadgetError(f"{case.spec.label}: no gadget to test: put the spec in the "
                              "gadget's tests/ directory or set 'gadget:'")
        gadget = _prepared(self.config, case.spec.gadget)
        problems = check_case(case, gadget)
        if problems:
            raise SpecError(problems)
        require_root()
        result = run_case(case, gadget)
        if result.status == SKIPPED:
            pytest.skip(result.message)
        if not result.ok:
            raise CaseFailed(result)

    def repr_failure(self, excinfo, style=None):  # noqa: ANN001 - pytest's signature
        return _repr_error(excinfo) or super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        label = self.case.spec.gadget.label if self.case.spec.gadget else "?"
        return self.path, max(self.case.line - 1, 0), f"{label}: {self.case.name}"


@pytest.fixture
def gadget_run(request: pytest.FixtureRequest):
    """``gadget_run(gadget, params=..., ...)``: a started run of ``gadget`` (a directory,
    relative to the test file or the current directory, or an image reference) to use as
    a context manager; ``run.expect(...)`` waits for events. Every run is closed when the
    test ends."""
    from gadgetsmith.toolchain.testing.live import LiveRun, source_for

    runs: list[LiveRun] = []

    def start(gadget: str, **options: Any) -> LiveRun:
        src = source_for(gadget, Path(str(request.path)).parent)
        run = LiveRun(_prepared(request.config, src), **options)
        runs.append(run)
        return run

    yield start
    for r in runs:
        r.close()
