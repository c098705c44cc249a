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


def test_owner_gone_tells_a_killed_or_reused_owner_from_a_running_one(tmp_path: Path) -> None:
    import os
    import subprocess

    from gadgetsmith.toolchain.fsutil import owned_mkdtemp, owner_gone, owner_tag

    mine = owned_mkdtemp(".tmp-pull-", tmp_path)
    assert mine.name.startswith(f".tmp-pull-{owner_tag()}-") and not owner_gone(mine)
    p = subprocess.Popen(["true"])
    p.wait()
    assert owner_gone(tmp_path / f".tmp-pull-{p.pid}.1-abc")
    # a running process whose start time is not the one recorded: the pid was reused
    assert owner_gone(tmp_path / f".tmp-pull-{os.getppid()}.1-abc")
    # no owner in the name: stale by age only (and never, where only owned names count)
    old = tmp_path / ".tmp-import-killed"
    old.mkdir()
    assert not owner_gone(old)
    os.utime(old, (0, 0))
    assert owner_gone(old) and not owner_gone(old, require_owner=True)
