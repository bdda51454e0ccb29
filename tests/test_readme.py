"""The README's Python blocks run, in order, in an empty folder; what their comments promise is printed;
its tables of primitives and ONNX operators match the code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT
from talon import ir

README = ROOT / "README.md"
MARK = "=== README block {} ==="

RUNNER = """
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for i, (line, code) in enumerate(blocks):
    print(MARK.format(i), flush=True)
    try:
        exec(compile(code, f"README.md block {i} (line {line})", "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
""".replace("MARK", repr(MARK))


def blocks(lang: str) -> list[tuple[int, str]]:
    """(first line number, code) of every fenced block of a language, in order."""
    found, current, start = [], None, 0
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if current is None and line.strip() == f"```{lang}":
            current, start = [], number + 1
        elif current is not None and line.strip() == "```":
            found.append((start, "\n".join(current) + "\n"))
            current = None
        elif current is not None:
            current.append(line)
    return found


def promised(code: str) -> list[str]:
    """Output lines promised by `print(...)  # expected` comments (a trailing '...' means a prefix)."""
    return [m.group(1).strip() for m in re.finditer(r"^\s*print\(.*\)\s+# (.+)$", code, re.M)]


def table_cells(marker: str) -> dict[str, list[str]]:
    """The rows (first cell -> comma-separated names of the second) of the table after an HTML comment marker."""
    lines = README.read_text().split(marker, 1)[1].splitlines()[1:]
    rows = {}
    for line in lines[2:]:  # after the header and its separator
        if not line.startswith("|"):
            break
        first, second = [c.strip() for c in line.strip("|").split("|")][:2]
        rows[first] = [name.strip() for name in second.split(",")]
    return rows


def test_readme_has_python_blocks():
    assert len(blocks("python")) >= 10


def test_python_blocks_run_in_order_and_print_what_they_promise(tmp_path):
    code = blocks("python")
    (tmp_path / "blocks.json").write_text(json.dumps(code))
    (tmp_path / "runner.py").write_text(RUNNER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "runner.py", "blocks.json"], cwd=tmp_path, capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    outputs = re.split(r"=== README block \d+ ===\n", result.stdout)[1:]
    assert len(outputs) == len(code)
    for (line, block), printed in zip(code, outputs):
        lines = [text.strip() for text in printed.splitlines()]
        for expected in promised(block):
            if expected.endswith("..."):
                ok = any(text.startswith(expected[:-3].rstrip()) for text in lines)
            else:
                ok = expected in lines
            assert ok, f"README block at line {line} promises {expected!r}; it printed:\n{printed}"


def test_quick_start_is_the_two_make_commands():
    quick = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    sh = [code for _, code in blocks("sh") if code in quick]
    commands = [line.split("#")[0].strip() for line in sh[0].splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert "examples/quickstart.py" in makefile and "torch==2.13.0" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_primitive_table_lists_every_registered_primitive():
    listed = [name for names in table_cells("<!-- primitives table").values() for name in names]
    assert sorted(listed) == ir.list_primitives()


def test_onnx_table_lists_the_importer_registry():
    import converters  # noqa: F401  (registers every importer)
    from converters.importers.registry import registered_ops

    supported: dict[str, list[str]] = {}
    for domain, op in registered_ops():
        supported.setdefault(domain or "ai.onnx", []).append(op)
    table = table_cells("<!-- onnx table")
    assert {domain: sorted(ops) for domain, ops in table.items()} == supported
