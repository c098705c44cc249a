"""An image's gadget.yaml (config blob) as the runtime reads it: parsed with ruamel (YAML
1.2, as the toolchain reads it), once per blob: the next run answers from a cache named
after the blob's digest, which never needs the blob or a YAML parser again."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
from gadgetsmith.runtime.errors import LayoutError, RuntimeGadgetError
from gadgetsmith.runtime.oci.config import cache_dir, read_config
from gadgetsmith.runtime.pipeline.source import load_image
from gadgetsmith.toolchain.oci.assemble import ArchContent, build_image
from gadgetsmith.toolchain.oci.store import open_store

from tests.signing_util import make_image

DIGEST = "sha256:" + "ab" * 32
GADGET_YAML = b"""\
name: trace_x
description: "a: quoted"
datasources:
  open:
    fields:
      fname: {annotations: {columns.width: 32, description: file}}
params:
  ebpf:
    failed: {key: failed, defaultValue: "false", description: yes}
"""


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


class Blobs:
    """A store's read_blob that counts its calls."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads = 0

    def __call__(self, digest: str) -> bytes:
        self.reads += 1
        return self.data


def test_parsed_once_then_read_from_the_cache() -> None:
    blobs = Blobs(GADGET_YAML)
    first = read_config(DIGEST, blobs)
    assert first["params"]["ebpf"]["failed"] == {"key": "failed", "defaultValue": "false",
                                                 "description": "yes"}  # YAML 1.2: a string
    assert first["datasources"]["open"]["fields"]["fname"]["annotations"]["columns.width"] == 32
    assert read_config(DIGEST, blobs) == first
    assert blobs.reads == 1  # the second time, neither the blob nor a parser was needed
    assert [p.name for p in cache_dir().iterdir()] == ["ab" * 32 + ".v1.json"]  # no temp left


def test_a_document_json_cannot_hold_is_parsed_every_time() -> None:
    blobs = Blobs(b"name: x\ncreated: 2026-12-01\n1: one\n")
    for _ in range(2):
        doc = read_config(DIGEST, blobs)
        assert doc == {"name": "x", "created": datetime.date(2026, 12, 1), 1: "one"}
    assert blobs.reads == 2


def test_an_unwritable_cache_only_costs_parsing(_own_cache: Path) -> None:
    _own_cache.parent.mkdir(exist_ok=True)
    _own_cache.write_text("a file where the cache directory would be")
    blobs = Blobs(GADGET_YAML)
    assert read_config(DIGEST, blobs) == read_config(DIGEST, blobs)
    assert blobs.reads == 2


def test_a_damaged_cache_entry_is_parsed_again() -> None:
    blobs = Blobs(GADGET_YAML)
    good = read_config(DIGEST, blobs)
    (cache_dir() / ("ab" * 32 + ".v1.json")).write_text('{"truncated": ')
    assert read_config(DIGEST, blobs) == good
    assert blobs.reads == 2


@pytest.mark.parametrize("text, why", [(b"a: [1\n", "is not valid YAML"),
                                       (b"- a list\n", "is not a mapping")])
def test_a_config_that_is_not_gadget_yaml(text: bytes, why: str) -> None:
    with pytest.raises(LayoutError, match=why):
        read_config(DIGEST, Blobs(text))


def test_a_stored_image_run_twice_has_the_same_metadata(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_image(store, "localhost/tiny:1")
    first = load_image("localhost/tiny:1", store)
    assert first[1] == {"name": "tiny-a", "description": "test image a"}
    assert load_image("localhost/tiny:1", store) == first
    assert len(list(cache_dir().iterdir())) == 1


def test_a_bad_config_names_the_image(tmp_path: Path) -> None:
    store = tmp_path / "store"
    content = {"amd64": ArchContent(ebpf=b"\x7fELF amd64"), "arm64": ArchContent(ebpf=b"\x7fELF arm64")}
    img = build_image(b"name: [unclosed\n", {"name": "bad"}, content, "2026-12-01T00:00:00Z")
    open_store(store).add_image(img.blobs, img.index_descriptor, "localhost/bad:1")
    with pytest.raises(RuntimeGadgetError,
                       match=r"^localhost/bad:1: the image's gadget.yaml .* not valid YAML"):
        load_image("localhost/bad:1", store)


def test_a_run_of_a_cached_image_imports_no_yaml_library(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_image(store, "localhost/tiny:1")
    code = ("import sys; from gadgetsmith.runtime.pipeline.source import load_image; "
            f"load_image('localhost/tiny:1', {str(store)!r}); "
            "print(sorted(m for m in sys.modules if 'yaml' in m))")
    env = dict(os.environ)
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           check=True).stdout.strip() for _ in range(2)]
    assert "ruamel.yaml" in runs[0]  # the first run parses
    assert runs[1] == "[]"
