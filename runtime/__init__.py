"""gadgetsmith runtime: from gadget artifacts to events.

``from gadgetsmith.runtime import Gadget`` is resolved lazily so that importing the
package (e.g. for references or the store) does not load ctypes/libbpf.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "Gadget":
        from gadgetsmith.runtime.gadget import Gadget

        return Gadget
    raise AttributeError(name)
