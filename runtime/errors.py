"""The runtime's exceptions: one tree, rooted at :class:`RuntimeGadgetError`.

``str()`` of every one of them is the line shown to the user. A caller that catches the
root catches everything the runtime raises on purpose; the builtin second bases keep
older ``except ValueError`` / ``except OSError`` / ``except LookupError`` callers working.

    RuntimeGadgetError                 a gadget could not be loaded, attached or run
    ├── ParamError                     a --param value does not fit the gadget's param
    ├── FilterError                    a --filter expression is malformed or names an unknown field
    ├── SortError                      --sort names an unknown field, or only tracers are there
    ├── FormatError (ValueError)       bytes that do not parse as what they should be
    │   ├── ElfError                   not an ELF64 little-endian object
    │   └── BtfError                   no usable .BTF section
    ├── ObjectError                    the eBPF object cannot be read (wraps a FormatError)
    ├── LibbpfError (OSError)          a libbpf call failed: errno, message, libbpf's log
    ├── ProgramError                   a program cannot be loaded or attached: which, why
    ├── PerfConfigError (ValueError)   gadget.yaml does not describe a perf_event program's event
    ├── BtfgenError                    no BTF for this kernel: none of its own, none in the image
    ├── NotInRoot                      a probe's file is not in that (container's) filesystem
    ├── ContainerError                 a container runtime could not be queried
    │   └── SelectorError              a container selection that can never match what was meant
    ├── ImageError                     the local store cannot give the image
    │   ├── LayoutError                the store is not an OCI layout, a blob is missing or corrupt
    │   ├── UnknownReference (LookupError)  no image of that name (str() is the name)
    │   └── InvalidReference (ValueError)   a reference that does not parse
    └── WasmError                      the WASM host cannot run modules (wasmtime missing or unusable)
        └── WasmModuleError            a module failed: not a module, an import or export the
                                       API lacks, wrong API version, a trap, memory over the
                                       cap, a lifecycle call returning an error
"""

from __future__ import annotations

import errno as _errno
import os


class RuntimeGadgetError(Exception):
    """A gadget could not be loaded, attached or run; str() is the message for the user."""


class ParamError(RuntimeGadgetError):
    """A parameter value does not fit the gadget's parameter."""


class FilterError(RuntimeGadgetError):
    """A --filter expression is malformed or names an unknown field."""


class SortError(RuntimeGadgetError):
    """A --sort spec names a field no array data source has, or the gadget has only tracers
    (whose events are printed as they come, never sorted)."""


class FormatError(RuntimeGadgetError, ValueError):
    """Bytes that do not parse as the ELF file or BTF data they should be."""


class ElfError(FormatError):
    """Not an ELF64 little-endian file, or a truncated one."""


class BtfError(FormatError):
    """No .BTF section, or one that does not parse."""


class ObjectError(RuntimeGadgetError):
    """The bytes are not a usable eBPF object; ``reason`` says why, without advice."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the gadget's eBPF object cannot be read: {reason} "
                         "(rebuild it with 'gadget build')")
        self.reason = reason


class LibbpfError(RuntimeGadgetError, OSError):
    """A libbpf call failed: ``what`` was being done, ``err`` the errno, ``log`` what
    libbpf printed meanwhile (the verifier's output, for a load)."""

    def __init__(self, what: str, err: int, log: str = "") -> None:
        self.what = what
        self.err = abs(err)
        self.log = log
        name = _errno.errorcode.get(self.err, f"errno {self.err}")
        super().__init__(self.err, f"{what}: {name} ({os.strerror(self.err)})")


class PerfConfigError(RuntimeGadgetError, ValueError):
    """gadget.yaml does not describe the perf event of a perf_event program (its
    ``programs.NAME`` type, config or sampler)."""


class ProgramError(RuntimeGadgetError):
    """A program of the gadget cannot be loaded or attached. ``program`` and ``section``
    name it ("" when libbpf did not say which one failed), ``err`` is the errno, and
    ``verifier_log`` the verifier's whole log for a rejected program ("" otherwise)."""

    def __init__(self, program: str, section: str, err: int, message: str,
                 verifier_log: str = "") -> None:
        super().__init__(message)
        self.program = program
        self.section = section
        self.err = err
        self.verifier_log = verifier_log


class BtfgenError(RuntimeGadgetError):
    """The kernel has no BTF and the image's btfgen layer has no entry for it (or none)."""


class NotInRoot(RuntimeGadgetError):
    """The target does not exist in that filesystem (no file, or no such library)."""


class ContainerError(RuntimeGadgetError):
    """A container runtime could not be queried."""


class SelectorError(ContainerError):
    """Container selection that can never mean what the user wants (bad syntax, an
    unknown runtime name, selectors together with --host): a usage error."""


class ImageError(RuntimeGadgetError):
    """The local store cannot give the image that was asked for."""


class LayoutError(ImageError):
    """The directory is not a usable OCI layout, or a blob is missing or corrupt."""


class UnknownReference(ImageError, LookupError):
    """No image with this reference exists in the store (str() is the reference)."""


class InvalidReference(ImageError, ValueError):
    """An image reference that cannot be parsed."""


class WasmError(RuntimeGadgetError):
    """The WASM host cannot run modules; ``str()`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class WasmModuleError(WasmError):
    """A gadget's WASM module failed. ``module`` is its name, ``call`` the export or step
    (``load``, ``gadgetInit``, ``dataSourceCallback for 'exec'``), ``detail`` what happened:
    ``wasm module program.wasm: gadgetStart: returned 1 (an error)``."""

    def __init__(self, module: str, call: str, detail: str) -> None:
        self.module = module
        self.call = call
        self.detail = " ".join(detail.split())
        super().__init__(f"wasm module {module}: {call + ': ' if call else ''}{self.detail}")


__all__ = ["BtfError", "BtfgenError", "ContainerError", "ElfError", "FilterError", "FormatError",
           "ImageError", "InvalidReference", "LayoutError", "LibbpfError", "NotInRoot", "ObjectError",
           "ParamError", "PerfConfigError", "ProgramError", "RuntimeGadgetError", "SelectorError",
           "UnknownReference", "WasmError", "WasmModuleError"]
