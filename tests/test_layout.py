"""The package layout's rules: every module says its role in a docstring, none is over 700 lines
(counted as `wc -l` does) unless its docstring says why, no code refers to an issue number, and
at most 6 modules sit at the package's top level."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "distpose_app"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 700


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_modules_found():
    assert len(MODULES) > 50 and PACKAGE / "core" / "paths.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_has_a_docstring_and_a_reasonable_length(path):
    text = path.read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(text))
    assert docstring and docstring.strip(), f"{_name(path)} has no docstring saying its role"
    lines = text.count("\n")  # what `wc -l` counts
    if lines > MAX_LINES:
        assert f"{MAX_LINES} lines" in docstring, (
            f"{_name(path)} has {lines} lines: split it, or say in its docstring why it is "
            f"over {MAX_LINES} lines"
        )


def test_no_issue_numbers_in_code():
    pattern = re.compile(r"\bissues? #?\d+", re.IGNORECASE)
    sources = [*MODULES, *(REPO / "tests").rglob("*.py"), *(REPO / "scripts").rglob("*.py")]
    hits = [
        f"{_name(p)}:{n}"
        for p in sources
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line) and p != Path(__file__).resolve()
    ]
    assert not hits, f"issue numbers belong in the tracker, not the code: {hits}"


def test_few_top_level_modules():
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= 6, top
