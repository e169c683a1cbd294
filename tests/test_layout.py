"""The project's structural rules, checked so that CI holds the line."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_non_gui_module_is_under_the_no_qt_contract():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    contract = config["tool"]["importlinter"]["contracts"][0]
    assert contract["forbidden_modules"] == ["PyQt5", "pyqtgraph"]
    covered = set(contract["source_modules"])
    package = REPO / "distpose_app"
    modules = {f"distpose_app.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    modules |= {f"distpose_app.{p.name}" for p in package.iterdir()
                if p.is_dir() and (p / "__init__.py").exists() and p.name != "gui"}  # fmt: skip
    assert modules <= covered, f"add to the import-linter contract: {sorted(modules - covered)}"


def test_required_top_level_layout():
    for name in ("distpose_app", "assets", "pretrained", "tests", "main.py", "setup.cfg",
                 "README.md"):  # fmt: skip
        assert (REPO / name).exists(), name
