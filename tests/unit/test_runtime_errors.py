"""The runtime's exceptions form the one tree runtime/errors.py draws."""

from __future__ import annotations

import importlib
import re

from ..conftest import REPO

#: exceptions that never leave the module defining them (control flow inside the WASM
#: host: a guest's fault is turned into a WasmModuleError before any caller sees it)
INTERNAL = {"GuestFault", "HostTrap"}


def _runtime_exceptions() -> dict[str, type]:
    found: dict[str, type] = {}
    for path in sorted((REPO / "runtime").rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = "gadgetsmith." + ".".join(parts)
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional library (wasmtime) that is not installed
            continue
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == name:
                found[obj.__name__] = obj
    return found


def test_every_runtime_exception_is_in_the_drawn_tree() -> None:
    from gadgetsmith.runtime import errors

    classes = _runtime_exceptions()
    tree = (errors.__doc__ or "").split("\n\n")[2].splitlines()
    assert tree[0].split()[0] == "RuntimeGadgetError"
    parents = ["RuntimeGadgetError"]
    seen = {"RuntimeGadgetError"}
    for line in tree[1:]:
        m = re.match(r"^    ((?:[│ ]   )*)[├└]── ([A-Z]\w+)", line)
        if m is None:
            assert not line.strip().startswith(("├", "└")), line
            continue  # the description of the line above, continued
        depth, name = len(m.group(1)) // 4 + 1, m.group(2)
        assert name in classes, f"errors.py draws {name}, which no runtime module defines"
        parents[depth:] = [name]
        assert issubclass(classes[name], classes[parents[depth - 1]]), f"{name} is not a {parents[depth - 1]}"
        seen.add(name)
    missing = sorted(set(classes) - seen - INTERNAL)
    assert missing == [], f"not in runtime/errors.py's tree: {missing}"
    defined_elsewhere = sorted(n for n, c in classes.items()
                               if c.__module__ != errors.__name__ and n not in INTERNAL)
    assert defined_elsewhere == [], "runtime exceptions are defined in runtime/errors.py"


def test_no_runtime_exception_shadows_a_builtin() -> None:
    import builtins

    assert sorted(set(_runtime_exceptions()) & set(dir(builtins))) == []
