"""The project's structural rules, checked so that CI holds the line."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _contracts() -> dict:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return {c["type"]: c for c in config["tool"]["importlinter"]["contracts"]}


def _subpackages() -> set[str]:
    package = REPO / "distpose_app"
    return {p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()}


def test_every_non_gui_subpackage_is_under_the_no_qt_contract():
    contract = _contracts()["forbidden"]
    assert contract["forbidden_modules"] == ["PyQt5", "pyqtgraph"]
    covered = set(contract["source_modules"])
    expected = {f"distpose_app.{p}" for p in _subpackages() - {"gui"}}
    assert expected <= covered, f"add to the import-linter contract: {sorted(expected - covered)}"


def test_every_subpackage_has_a_layer():
    layers = _contracts()["layers"]["layers"]
    named = {name.strip() for layer in layers for name in layer.split("|")}
    assert _subpackages() == named


def test_few_modules_at_the_top_level():
    top = [p.name for p in (REPO / "distpose_app").glob("*.py")]
    assert len(top) <= 6, top


def test_required_top_level_layout():
    for name in ("distpose_app", "assets", "pretrained", "tests", "main.py", "setup.cfg",
                 "README.md"):  # fmt: skip
        assert (REPO / name).exists(), name
