"""The shape of the package, read from its source: no import cycles, the runtime never
imports the toolchain, function-level imports stay few (laziness only around heavy
libraries, not to hide cycles) and no function is longer than MAX_FUNCTION_LINES."""

from __future__ import annotations

import ast
import importlib
import re
import textwrap
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from ..conftest import REPO

HALVES = ("toolchain", "runtime")

#: package-level edges that still close a cycle, each with the reason and who removes it
KNOWN_PACKAGE_EDGES: set[tuple[str, str]] = set()

#: function-level imports allowed per half (the count today: lower it when one goes, never
#: raise it). Each should be laziness around a heavy library (cryptography, jsonschema,
#: ruamel, rich, docker, libbpf); together the halves should stay under 20.
BUDGET = {"toolchain": 15, "runtime": 4}


def _modules() -> dict[str, Path]:
    mods = {}
    for half in HALVES:
        for p in sorted((REPO / half).rglob("*.py")):
            parts = list(p.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods["gadgetsmith." + ".".join(parts)] = p
    return mods


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, and whether it sits inside a function."""

    def visit(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_function
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from visit(child, inner)

    yield from visit(tree, False)


def _targets(node: ast.Import | ast.ImportFrom, mods: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        assert node.level == 0, "imports are absolute"
        base = node.module or ""
        names = [base] + [f"{base}.{a.name}" for a in node.names]
    return {n for n in names if n in mods}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for node, _ in _imports(ast.parse(path.read_text())):
            graph[name] |= _targets(node, mods) - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package(module: str) -> str:
    """``gadgetsmith.toolchain.registry`` for its modules; top-level modules stand alone."""
    return ".".join(module.split(".")[:3])


def test_no_module_imports_another_that_imports_it_back() -> None:
    assert _cycles(_graph()) == []


def test_sub_packages_form_no_cycle() -> None:
    packages: dict[str, set[str]] = defaultdict(set)
    for a, targets in _graph().items():
        for b in targets:
            if _package(a) != _package(b) and (a, b) not in KNOWN_PACKAGE_EDGES:
                packages[_package(a)].add(_package(b))
    assert _cycles(packages) == []


def test_known_package_edges_still_exist() -> None:
    """An edge that is gone comes off KNOWN_PACKAGE_EDGES."""
    graph = _graph()
    assert [e for e in KNOWN_PACKAGE_EDGES if e[1] not in graph.get(e[0], set())] == []


def test_runtime_never_imports_the_toolchain() -> None:
    wrong = [(a, b) for a, targets in _graph().items() if a.startswith("gadgetsmith.runtime")
             for b in targets if b.startswith("gadgetsmith.toolchain")]
    assert wrong == []


def function_level_imports(half: str) -> list[str]:
    out = []
    for name, path in _modules().items():
        if name.startswith(f"gadgetsmith.{half}"):
            for node, in_function in _imports(ast.parse(path.read_text())):
                if in_function:
                    what = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                    out.append(f"{path.relative_to(REPO)}:{node.lineno} {what}")
    return out


def test_function_level_imports_stay_few() -> None:
    for half, budget in BUDGET.items():
        found = function_level_imports(half)
        assert len(found) <= budget, (
            f"{len(found)} function-level imports in {half}/ (budget {budget}): import at the top "
            "of the module unless the import is a heavy library only some commands need\n"
            + "\n".join(found))


#: the longest a function (or method) may be, from its ``def`` line to its last line,
#: signature and docstring included
MAX_FUNCTION_LINES = 60

#: "path:qualified name" of functions allowed to be longer, each with the reason (keep it empty)
LONG_FUNCTIONS: dict[str, str] = {}


def _functions(node: ast.AST, prefix: str = "") -> Iterator[tuple[int, int, str]]:
    """(lines, first line, qualified name) of every function and method under ``node``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield (child.end_lineno or child.lineno) - child.lineno + 1, child.lineno, prefix + child.name
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def long_functions() -> dict[str, str]:
    """"path:qualified name" -> "N lines (path:line)" of the functions over the limit."""
    out = {}
    for path in _modules().values():
        rel = path.relative_to(REPO)
        for lines, first, name in _functions(ast.parse(path.read_text())):
            if lines > MAX_FUNCTION_LINES:
                out[f"{rel}:{name}"] = f"{lines} lines ({rel}:{first})"
    return out


def test_the_function_walk_sees_methods_and_nested_functions() -> None:
    tree = ast.parse("class A:\n    def m(self):\n        def inner():\n            pass\n"
                     "def f():\n    return 1\n")
    assert [(n, name) for n, _, name in _functions(tree)] == [(3, "A.m"), (2, "A.m.inner"), (2, "f")]


def test_no_function_is_longer_than_the_limit() -> None:
    found = {k: v for k, v in long_functions().items() if k not in LONG_FUNCTIONS}
    assert found == {}, (
        f"functions over {MAX_FUNCTION_LINES} lines: split them (a helper per step, a class "
        "for shared state, Annotated aliases for long typer signatures)\n"
        + "\n".join(f"{k}: {v}" for k, v in sorted(found.items())))


def test_long_function_allowances_are_still_needed() -> None:
    """An allowance whose function got shorter (or went) comes off LONG_FUNCTIONS."""
    long = long_functions()
    assert [k for k in LONG_FUNCTIONS if k not in long] == []


def _toolchain_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        if not name.startswith("gadgetsmith.toolchain"):
            continue
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == name:
                found[obj.__name__] = obj
    return found


def test_every_toolchain_exception_is_in_the_drawn_tree() -> None:
    from gadgetsmith.toolchain import errors

    classes = _toolchain_exceptions()
    assert "GadgetError" in classes
    drawn = textwrap.dedent((errors.__doc__ or "").split("::", 1)[1].split("\n\n")[1])
    parents: list[str] = []
    seen = set()
    for line in drawn.splitlines():
        m = re.match(r"^(\s*[│├└─ ]*)([A-Z]\w+)\s*(?:exit (\d+))?", line)
        assert m, line
        depth, name = len(m.group(1)) // 4, m.group(2)
        assert name in classes, f"errors.py draws {name}, which no toolchain module defines"
        cls = classes[name]
        parents[depth:] = [name]
        if depth:
            assert issubclass(cls, classes[parents[depth - 1]]), f"{name} is not a {parents[depth - 1]}"
        if m.group(3):
            assert cls.exit_code == int(m.group(3)), name  # type: ignore[attr-defined]
        seen.add(name)
    missing = sorted(set(classes) - seen)
    assert missing == [], f"not in toolchain/errors.py's tree: {missing}"
    for name, cls in classes.items():
        assert issubclass(cls, errors.GadgetError), f"{name} is not a GadgetError"
        assert cls.exit_code in (1, 2, 3, 130), name  # README's exit codes # type: ignore[attr-defined]


def test_no_private_names_across_modules() -> None:
    """``from m import _x`` and ``m._x`` are private to ``m`` (tests included)."""
    wrong = []
    for folder in (*HALVES, "tests", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            modules = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                        ("gadgetsmith", "tests"))):
                    for a in node.names:
                        if a.name.startswith("_") and not a.name.startswith("__"):
                            wrong.append(f"{path.relative_to(REPO)}:{node.lineno} imports {a.name}")
                        else:
                            modules.add(a.asname or a.name)
                elif isinstance(node, ast.Import):
                    modules |= {a.asname or a.name.split(".")[0] for a in node.names
                                if a.name.startswith("gadgetsmith")}
            for node in ast.walk(tree):
                if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                        and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
                        and node.value.id in modules):
                    wrong.append(f"{path.relative_to(REPO)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert wrong == []
