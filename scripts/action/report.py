"""The report of action.yml's publish step: `gadget publish -o json`'s summary as the
step's outputs (GITHUB_OUTPUT) and a job summary (GITHUB_STEP_SUMMARY, Markdown).

Usage: report.py SUMMARY.json EXIT_CODE [JUNIT_FILE]

Outputs: digest, reference (host/repo:tag@sha256:...), signature-tag, pushed,
junit-file, summary-file. A failed publish gets an ``::error::`` annotation naming the
step; a summary file that is empty (gadget stopped before its first step, on bad
arguments) is reported as such. Standard library only: it runs with the venv's Python.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ICON = {"ok": "✅", "failed": "❌", "skipped": "⏭️", "not run": "—", "running": "⏹️"}


def cell(text: object) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def command_text(text: str) -> str:
    """A value in a workflow command (``::error::...``), escaped as the runner reads it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def outputs(summary: dict[str, Any], summary_file: str, junit: str) -> dict[str, str]:
    junit_path = str(Path(junit).resolve()) if junit and Path(junit).is_file() else ""
    return {
        "digest": summary.get("digest") or "",
        "reference": summary.get("pinned") or "",
        "signature-tag": summary.get("signatureTag") or "",
        "pushed": "true" if summary.get("pushed") else "false",
        "junit-file": junit_path,
        "summary-file": str(Path(summary_file).resolve()),
    }


def _tests_text(summary: dict[str, Any]) -> str:
    t = summary.get("tests")
    if not t:
        step = next((s for s in summary.get("steps", []) if s["name"] == "test"), {})
        return str(step.get("status", "not run"))
    text = f"{t['passed']} passed, {t['failed'] + t['error']} failed"
    return text + (f", {t['skipped']} skipped" if t.get("skipped") else "")


def markdown(summary: dict[str, Any]) -> str:
    ok = summary.get("ok")
    head = "published" if summary.get("pushed") else "built, not pushed" if ok else \
        f"failed at {summary.get('failedStep')}"
    lines = [f"### {ICON['ok' if ok else 'failed']} gadget publish `{cell(summary['reference'])}`: {head}",
             ""]
    sig_tags = summary.get("signatureTags") or []
    tests = _tests_text(summary)
    if summary.get("digest"):
        lines += ["| Image | Digest | Tests | Signature |", "|---|---|---|---|"]
        index_sig = f"`{summary['signatureTag']}`" if summary.get("signatureTag") else "unsigned"
        lines.append(f"| index | `{summary['digest']}` | {cell(tests)} | {index_sig} |")
        for arch, digest in (summary.get("architectures") or {}).items():
            tag = f"sha256-{digest.split(':', 1)[1]}.sig"
            sig = f"`{tag}`" if tag in sig_tags else "—"
            lines.append(f"| {cell(arch)} | `{digest}` | | {sig} |")
        lines.append("")
    lines += ["| Step | Status | Time | Details |", "|---|---|---|---|"]
    for s in summary.get("steps", []):
        took = "" if s["status"] in ("skipped", "not run") else f"{s['seconds']:.1f} s"
        lines.append(f"| {s['name']} | {ICON.get(s['status'], '')} {s['status']} | {took} | "
                     f"{cell(s.get('message', ''))} |")
    if summary.get("junit"):
        lines += ["", f"JUnit report: `{cell(summary['junit'])}`"]
    return "\n".join(lines) + "\n"


def write_outputs(path: str, values: dict[str, str]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for name, value in values.items():
            if "\n" in value or "\r" in value:
                raise SystemExit(f"report.py: output {name} has a line break: {value!r}")
            f.write(f"{name}={value}\n")


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    summary_file, rc = argv[0], int(argv[1])
    junit = argv[2] if len(argv) == 3 else ""
    try:
        text = Path(summary_file).read_text(encoding="utf-8")
    except OSError:
        text = ""
    out_path, md_path = os.environ.get("GITHUB_OUTPUT"), os.environ.get("GITHUB_STEP_SUMMARY")
    if not text.strip():
        msg = f"gadget publish stopped before its first step (exit {rc}): see its error in the log"
        print(f"::error title=gadget publish::{command_text(msg)}")
        if md_path:
            with open(md_path, "a", encoding="utf-8") as f:
                f.write(f"### {ICON['failed']} gadget publish: {cell(msg)}\n")
        return 0
    summary = json.loads(text)
    if out_path:
        write_outputs(out_path, outputs(summary, summary_file, junit))
    if md_path:
        with open(md_path, "a", encoding="utf-8") as f:
            f.write(markdown(summary))
    if not summary.get("ok"):
        msg = f"{summary.get('failedStep')}: {summary.get('error')}"
        print(f"::error title=gadget publish failed::{command_text(msg)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
