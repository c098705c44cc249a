"""Conventions users bring from docker, ig and cosign, through the CLI as they call it
(issue 15): `gadget version`, shell completion."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

from gadgetsmith.toolchain import __version__
from gadgetsmith.toolchain.sdk import IG_VERSION

from .conftest import GADGET, run_gadget
from .test_registry import make_image


def test_version_names_client_ig_api_tools_and_kernel() -> None:
    res = run_gadget("version")
    assert res.returncode == 0 and res.stderr == ""
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in res.stdout.splitlines()}
    assert list(lines) == ["Client", "IG API", "clang", "bpftool", "libbpf", "Kernel", "Kernel BTF"]
    assert lines["Client"].startswith(__version__ + " ")
    assert lines["IG API"].startswith(IG_VERSION + " ")
    assert lines["clang"].startswith("19.") and "clang-19" in lines["clang"]
    assert lines["bpftool"].startswith("v") and "bpftool" in lines["bpftool"]
    assert lines["libbpf"].split()[0].count(".") == 1
    assert lines["Kernel"].startswith(platform.release())
    assert lines["Kernel BTF"].startswith("yes") and "/sys/kernel/btf/vmlinux" in lines["Kernel BTF"]


def test_version_json_and_a_missing_tool(tmp_path: Path) -> None:
    env = {"CLANG": str(tmp_path / "no-such-clang"), "BPFTOOL": str(tmp_path / "nobpftool")}
    res = run_gadget("version", "--format", "json", env=env)
    assert res.returncode == 0, res
    doc = res.json()
    assert doc["client"]["version"] == __version__
    assert doc["clang"]["version"] is None
    assert doc["clang"]["detail"].startswith(f"CLANG={tmp_path / 'no-such-clang'} is not an executable")
    assert doc["bpftool"]["version"] is None and "cannot run it" in doc["bpftool"]["detail"]
    text = run_gadget("version", env=env).stdout
    assert "clang:      not found  (CLANG=" in text


def _complete(words: list[str], store: Path | None = None) -> list[str]:
    """What bash offers after `gadget completion bash` is sourced, for the line ``words``
    (the last word is the one being completed)."""
    script = run_gadget("completion", "bash").stdout
    env = dict(os.environ, PATH=f"{Path(GADGET).parent}:{os.environ['PATH']}")
    if store is not None:
        env["GADGETSMITH_STORE"] = str(store)
    line = " ".join(json.dumps(w) for w in words)
    prog = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMPREPLY=();"
            ' _gadget_completion gadget; printf "%s\\n" "${COMPREPLY[@]}"')
    proc = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, env=env,
                          timeout=60, check=True)
    return [w for w in proc.stdout.splitlines() if w]


def test_bash_completion_of_commands_options_and_images(tmp_path: Path) -> None:
    assert _complete(["gadget", "vers"]) == ["version"]
    assert set(_complete(["gadget", "l"])) == {"list", "login", "logout"}  # not the hidden ls
    assert _complete(["gadget", "run", "--time"]) == ["--timeout"]
    assert _complete(["gadget", "completion", ""]) == ["bash", "zsh", "fish"]

    store = tmp_path / "s"
    make_image(store, "ghcr.io/inspektor-gadget/gadget/trace_x:v1")
    make_image(store, "reg.example.com/team/top_y:dev")
    assert _complete(["gadget", "run", "tr"], store) == ["trace_x:v1"]
    assert _complete(["gadget", "inspect", "reg"], store) == ["reg.example.com/team/top_y:dev"]


def test_zsh_and_fish_scripts_call_back_with_their_shell() -> None:
    zsh = run_gadget("completion", "zsh").stdout
    fish = run_gadget("completion", "fish").stdout
    assert zsh.startswith("#compdef gadget") and "_GADGET_COMPLETE=zsh_complete" in zsh
    assert "complete --no-files --command gadget" in fish and "fish_complete" in fish
    env = dict(os.environ, _GADGET_COMPLETE="zsh_complete", COMP_WORDS="gadget vers", COMP_CWORD="1")
    proc = subprocess.run([GADGET], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stdout.splitlines()[:2] == ["plain", "version"], proc


def test_completion_of_an_unknown_shell_is_a_usage_error() -> None:
    res = run_gadget("completion", "tcsh", check=False)
    assert res.returncode == 2
    assert res.stderr.startswith("error: Invalid value for 'SHELL:{bash|zsh|fish}': 'tcsh'")
