"""IG's WASM API version 1 as this host provides it: the ``ig`` imports with their wasm
signatures (those IG's Go SDK ``wasmapi/go`` declares with ``go:wasmimport``, checked
against IG's host ``pkg/operators/wasm``) and the guest's exports.

Signature letters: ``i`` i32, ``I`` i64. Strings and buffers are one i64:
``len << 32 | ptr``.
"""

from __future__ import annotations

API_VERSION = 1
HOST_MODULE = "ig"
MEMORY_PAGES = 256                      # IG's cap: 16 MiB
MAX_HANDLES = 4 * 1024                  # IG's limit of open handles
DATA_ARRAY_FLAG = 1 << 31               # data handle = FLAG | index << 16 | array handle
MAX_ARRAY_INDEX = (1 << 15) - 1

# name -> (params, results)
IMPORTS: dict[str, tuple[str, str]] = {
    # log
    "gadgetLog": ("iI", ""),
    "gadgetShouldLog": ("i", "i"),
    # data sources
    "newDataSource": ("Ii", "i"),
    "getDataSource": ("I", "i"),
    "dataSourceSubscribe": ("iiiI", "i"),
    "dataSourceGetField": ("iI", "i"),
    "dataSourceAddField": ("iIi", "i"),
    "dataSourceNewPacketSingle": ("i", "i"),
    "dataSourceNewPacketArray": ("i", "i"),
    "dataSourceEmitAndRelease": ("ii", "i"),
    "dataSourceRelease": ("ii", "i"),
    "dataSourceUnreference": ("i", "i"),
    "dataSourceIsReferenced": ("i", "i"),
    # data arrays
    "dataArrayNew": ("i", "i"),
    "dataArrayAppend": ("ii", "i"),
    "dataArrayRelease": ("ii", "i"),
    "dataArrayLen": ("i", "i"),
    "dataArrayGet": ("ii", "i"),
    # fields
    "fieldGetScalar": ("iiii", "I"),
    "fieldGetBuffer": ("iiiI", "i"),
    "fieldSet": ("iiiI", "i"),
    "fieldAddTag": ("iI", "i"),
    # params and config
    "getParamValue": ("II", "i"),
    "setConfig": ("IIi", "i"),
    # eBPF maps
    "newMap": ("Iiiii", "i"),
    "getMap": ("I", "i"),
    "mapLookup": ("iII", "i"),
    "mapUpdate": ("iIII", "i"),
    "mapDelete": ("iI", "i"),
    "mapRelease": ("i", "i"),
    # handles
    "releaseHandle": ("i", "i"),
    # syscalls
    "getSyscallName": ("iI", "i"),
    "getSyscallID": ("I", "i"),
    "getSyscallDeclaration": ("II", "i"),
    # perf buffers
    "newPerfReader": ("iii", "i"),
    "perfReaderPause": ("i", "i"),
    "perfReaderResume": ("i", "i"),
    "perfReaderRead": ("iI", "i"),
    "perfReaderClose": ("i", "i"),
    # kallsyms, filtering
    "kallsymsSymbolExists": ("I", "i"),
    "shouldDiscardMntnsID": ("I", "i"),
}

LIFECYCLE = ("gadgetInit", "gadgetPreStart", "gadgetStart", "gadgetStop", "gadgetPostStop")
CALLBACK = "dataSourceCallback"          # (i64 cbID, i32 ds, i32 data) -> ()
VERSION = "gadgetAPIVersion"             # () -> i64

# getSyscallDeclaration's struct: name[32], nrParams u8, pad[3], 6 x {name[32], flags u32}
SYSCALL_NAME_LEN = 32
SYSCALL_MAX_PARAMS = 6
SYSCALL_PARAM_IS_POINTER = 1


def sig_text(params: str, results: str) -> str:
    t = {"i": "i32", "I": "i64"}
    return f"({', '.join(t[c] for c in params)}) -> ({', '.join(t[c] for c in results)})"
