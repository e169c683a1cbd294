"""`pip install .` into a fresh virtual environment, then the two programs from another folder:
the wheel must carry the shipped weights (package data) and find its user folders without the
checkout. Nothing is downloaded: the wheel is built without build isolation and installed with
--no-deps --no-index; the new environment sees this interpreter's packages through a .pth file."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# Build products and local state that must not leak into the wheel.
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".cache", "build", "dist", "*.egg-info", "runs", "out", "__pycache__",
    ".pytest_cache", ".ruff_cache", ".mypy_cache",
)  # fmt: skip


def _run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 600):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{cmd[:3]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python of a fresh venv holding the built wheel, its bin folder)."""
    for module in ("pip", "setuptools", "venv"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not available to build and install the wheel")
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=IGNORE)
    # A PYTHONPATH holding the checkout would make pip see the package as installed already.
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", str(tmp / "wheels"), str(src)], cwd=tmp, env=clean)  # fmt: skip
    wheel = next((tmp / "wheels").glob("distpose-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp, env=clean)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([str(python), "-c", purelib], cwd=tmp, env=clean).stdout.strip())
    parent = sysconfig.get_paths()["purelib"]
    (site / "_distpose_test_parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          "--no-index", str(wheel)], cwd=tmp, env=clean)  # fmt: skip
    return python, venv / "bin"


def _env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DISTPOSE_CACHE")}
    env["DISTPOSE_APP_DATA"] = str(tmp / "appdata")  # never the user's folders
    env["XDG_CACHE_HOME"] = str(tmp / "xdg-cache")
    return env


@pytest.mark.slow
def test_wheel_is_self_contained_and_dependencies_are_declared(installed, tmp_path):
    python, _ = installed
    # The declared ranges accept the pinned environment the tests run on.
    _run([sys.executable, "-m", "pip", "--python", str(python), "check"], cwd=tmp_path)
    probe = (
        "import json, distpose_app, distpose_app.core.paths as p, distpose_app.lifter.model as m;"
        "print(json.dumps([distpose_app.__file__, str(p.PRETRAINED_DIR), str(p.CACHE_DIR),"
        " m.available_pretrained()]))"
    )
    out = _run([str(python), "-c", probe], cwd=tmp_path, env=_env(tmp_path)).stdout
    package, pretrained, cache, shipped = json.loads(out)
    venv = python.parent.parent
    assert Path(package).is_relative_to(venv) and not Path(package).is_relative_to(REPO)
    assert Path(pretrained) == Path(package).parent / "pretrained"
    assert {"meta", "augmented", "baseline"} <= set(shipped)
    assert (Path(pretrained) / "LICENSE.md").is_file()
    assert Path(cache) == tmp_path / "xdg-cache" / "distpose"  # not beside site-packages


@pytest.mark.slow
def test_installed_process_runs_from_another_folder(installed, tmp_path):
    _, bin_dir = installed
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (96, 64))
    for _ in range(9):
        writer.write(np.full((64, 96, 3), 40, np.uint8))
    writer.release()
    _run([str(bin_dir / "distpose"), "process", "clip.avi", "--csv", "take.csv", "--device", "cpu",
          "--quiet"], cwd=tmp_path, env=_env(tmp_path))  # fmt: skip
    assert len((tmp_path / "take.csv").read_text().splitlines()) == 1 + 9  # header + a row a frame
    sidecar = json.loads((tmp_path / "take.csv.json").read_text())
    assert sidecar["model"]["name"] == "meta"  # the shipped live model, from the package data


@pytest.mark.slow
@pytest.mark.gui
def test_installed_app_takes_a_screenshot_from_another_folder(installed, tmp_path):
    _, bin_dir = installed
    if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        pytest.skip("no display (pytest-xvfb provides one)")
    _run([str(bin_dir / "distpose-app"), "--source", "demo", "--frames", "30", "--screenshot",
          "shot.png"], cwd=tmp_path, env=_env(tmp_path))  # fmt: skip
    image = cv2.imread(str(tmp_path / "shot.png"))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 200
    assert image.std() > 5  # a drawn window, not a blank image
