"""pytest plugin (entry point ``pytest11``): test specs as pytest items, and a fixture.

``pytest sample-gadgets/`` collects every ``*.test.yaml`` file: each case is one item,
run and reported as ``gadget test`` does (the failure text is the same). Gadgets are
built once per session. Tests written in Python use the ``gadget_run`` fixture::

    def test_open(gadget_run, tmp_path):
        with gadget_run("sample-gadgets/trace_open", params={"failed": "true"}) as run:
            subprocess.run(["cat", str(tmp_path / "missing")])
            run.expect(match={"fname": str(tmp_path / "missing"), "error": "ENOENT"})

Every pytest run of the environment imports this module, so it imports only pytest: the
session (runtime, libbpf, jsonschema) loads when a spec is collected or the fixture used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gadgetsmith.toolchain.testing import SUFFIX

_SESSION = pytest.StashKey[Any]()


def _session(config: pytest.Config) -> Any:
    """The run's :class:`~gadgetsmith.toolchain.testing.session.Session`."""
    if _SESSION not in config.stash:
        from gadgetsmith.toolchain.testing.session import Session  # heavy: on first use only

        config.stash[_SESSION] = Session()
    return config.stash[_SESSION]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIX):
        return SpecFile.from_parent(parent, path=file_path)
    return None


class SpecFile(pytest.File):
    def collect(self):
        spec = _session(self.config).load(self.path)
        for case in spec.cases:
            yield CaseItem.from_parent(self, name=case.name, case=case)

    def repr_failure(self, excinfo, style=None):  # noqa: ANN001 - pytest's signature
        return _session(self.config).describe(excinfo.value) or super().repr_failure(excinfo)


class CaseItem(pytest.Item):
    def __init__(self, *, case: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.case = case

    def runtest(self) -> None:
        if self.case.skip:
            pytest.skip(self.case.skip)
        _session(self.config).run(self.case)

    def repr_failure(self, excinfo, style=None):  # noqa: ANN001 - pytest's signature
        return _session(self.config).describe(excinfo.value) or super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        label = self.case.spec.gadget.label if self.case.spec.gadget else "?"
        return self.path, max(self.case.line - 1, 0), f"{label}: {self.case.name}"


@pytest.fixture
def gadget_run(request: pytest.FixtureRequest):
    """``gadget_run(gadget, params=..., ...)``: a run of ``gadget`` (a directory, relative
    to the test file or the current directory, or an image reference) to use as a context
    manager; ``run.expect(...)`` waits for events. Every run is closed when the test ends."""
    session = _session(request.config)
    runs: list[Any] = []

    def start(gadget: str, **options: Any) -> Any:
        run = session.live(gadget, Path(str(request.path)).parent, **options)
        runs.append(run)
        return run

    yield start
    for r in runs:
        r.close()
