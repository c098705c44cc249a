"""fsutil.atomic_writer: the target changes only when the whole stream was written."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from gadgetsmith.toolchain.fsutil import atomic_write, atomic_writer


def test_atomic_writer_replaces_the_file_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_writer(target, mode=0o600) as f:
        f.write(b"new ")
        f.write(b"content")
        assert target.read_bytes() == b"old"  # nothing visible until the block ends
    assert target.read_bytes() == b"new content"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_atomic_writer_removes_the_temp_file_when_interrupted(tmp_path: Path, exc) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(type(exc)):
        with atomic_writer(target) as f:
            f.write(b"partial")
            raise exc
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_write_creates_with_mode(tmp_path: Path) -> None:
    target = tmp_path / "new.json"
    atomic_write(target, b"{}")
    assert target.read_bytes() == b"{}"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
