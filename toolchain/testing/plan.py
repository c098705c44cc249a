"""From command-line targets to planned cases: which specs, which gadget each runs against.

``gadget test DIR`` runs ``DIR/tests/*.test.yaml`` against DIR; ``gadget test REF --spec
F`` runs F against an image; ``gadget test F.test.yaml`` (or ``--spec F`` alone) runs F
against the gadget it names or sits in. Every spec is loaded and every gadget built
before any case runs, so a bad spec (exit 2) never leaves half a run behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gadgetsmith.toolchain.errors import GadgetError, UsageError
from gadgetsmith.toolchain.metadata.yamldoc import Diagnostic
from gadgetsmith.toolchain.policy import PolicyDenied
from gadgetsmith.toolchain.testing import SUFFIX
from gadgetsmith.toolchain.testing.gadgets import PreparedGadget, prepare
from gadgetsmith.toolchain.testing.runner import Planned
from gadgetsmith.toolchain.testing.spec import GadgetSource, Spec, SpecError, check_case, load_spec

TESTS_DIR = "tests"


def _is_pathlike(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~")) or text in (".", "..") or (
        "/" in text and os.path.isdir(text.split("/", 1)[0]))


def collect(targets: Sequence[str], specs: Sequence[Path | str]) -> list[tuple[Spec, GadgetSource | None]]:
    """(spec, gadget that replaces the spec's own or None) for every spec to run."""
    jobs: list[tuple[Path, GadgetSource | None]] = []
    extra = [Path(s) for s in specs]
    for s in extra:
        if not s.is_file():
            raise UsageError(f"--spec {s}: no such file")
    for t in targets:
        if t.endswith(SUFFIX) and os.path.isfile(t):
            jobs.append((Path(t), None))
        elif os.path.isdir(t):
            found = extra or sorted((Path(t) / TESTS_DIR).glob(f"*{SUFFIX}"))
            if not found:
                raise UsageError(f"{t}: no {TESTS_DIR}/*{SUFFIX} in this gadget: write one (see "
                                 "README, 'Testing gadgets') or give --spec FILE")
            src = GadgetSource("dir", str(Path(t).resolve()))
            jobs += [(f, src) for f in found]
        elif _is_pathlike(t) or t.endswith(SUFFIX):
            raise UsageError(f"{t}: no such gadget directory or test spec")
        else:
            if not extra:
                raise UsageError(f"{t}: an image needs the specs to run against it: "
                                 f"gadget test {t} --spec FILE{SUFFIX}")
            jobs += [(f, GadgetSource("ref", t)) for f in extra]
    if not targets:
        if not extra:
            raise UsageError("nothing to test: give a gadget directory, a spec file, or "
                             "--spec FILE (see 'gadget test --help')")
        jobs += [(f, None) for f in extra]
    loaded: dict[Path, Spec] = {}
    problems: list[Diagnostic] = []
    out: list[tuple[Spec, GadgetSource | None]] = []
    for path, source in jobs:
        key = path.resolve()
        if key not in loaded:
            try:
                loaded[key] = load_spec(path)
            except SpecError as e:
                problems += e.diagnostics
                continue
        spec = loaded[key]
        if source is None and spec.gadget is None:
            problems.append(spec.diagnostic((), "no gadget to test: put the spec in the gadget's "
                                            f"{TESTS_DIR}/ directory, set 'gadget:', or run "
                                            f"gadget test GADGET --spec {spec.label}"))
            continue
        out.append((spec, source))
    if problems:
        raise SpecError(problems)
    return out


def plan(pairs: list[tuple[Spec, GadgetSource | None]], keyword: str | None = None) -> list[Planned]:
    planned = []
    for spec, src in pairs:
        source = src or spec.gadget
        assert source is not None
        for case in spec.cases:
            if keyword and keyword.lower() not in case.name.lower():
                continue
            planned.append(Planned(case, None, gadget_label=source.label, key=source))
    return planned


def prepare_all(planned: list[Planned], *, on_prepare: Callable[[GadgetSource], None] | None = None,
                **load: Any) -> None:
    """Build or load each gadget once, then check every case against it (SpecError lists
    every mismatch). A gadget that does not build leaves its cases with ``prepare_error``."""
    cache: dict[GadgetSource, PreparedGadget | str] = {}
    problems: list[Diagnostic] = []
    for p in planned:
        src = p.key
        if src not in cache:
            if on_prepare is not None:
                on_prepare(src)
            try:
                cache[src] = prepare(src, **load)
            except PolicyDenied:
                raise  # the policy refuses the run as a whole (exit 3), not a case
            except GadgetError as e:
                cache[src] = e.message + (f"\n{e.detail}" if e.detail else "")
        got = cache[src]
        if isinstance(got, str):
            p.prepare_error = f"{src.label}: cannot build or load the gadget: {got}"
            continue
        p.gadget = got
        p.gadget_label = got.label
        problems += check_case(p.case, got)
    if problems:
        raise SpecError(problems)
