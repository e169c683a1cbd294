"""Fuzz-style probes of every entry point with hostile or absurd input (docs/reliability.md,
"Untrusted input"): each must end in exit code 2 (or a DistposeError) with one line naming the
value or file, never a traceback, a crash, code execution, silent garbage, or a change to a
file the user did not name. Recordings, recovery and exports: test_hardening_takes.py."""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from distpose_app.cli import main as cli
from distpose_app.core import validate as v
from distpose_app.core.errors import DataFormatError, DistposeError, LensError, WeightsError
from distpose_app.data import bvh as B
from distpose_app.data.external import load_external
from distpose_app.lens.strings import parse_lens
from distpose_app.lifter import model as M
from distpose_app.live.capture import VideoFileSource, open_source

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTPOSE_DATA_DIR", str(tmp_path / "data"))


def _cli(capsys, *argv):
    """Run `distpose ARGV` in-process -> (exit code, stderr lines); never a traceback."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's errors: one line, exit 2
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err.strip().splitlines()


def _snapshot(folder: Path) -> dict:
    """{relative path: (size, mtime_ns, sha of the first MB)} of every file under folder."""
    import hashlib

    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            digest = hashlib.sha1(p.read_bytes()[: 1 << 20]).hexdigest()
            out[str(p.relative_to(folder))] = (p.stat().st_size, p.stat().st_mtime_ns, digest)
    return out


def _one_line_exit_2(code, err, *needles):
    assert code == 2 and len(err) == 1, err
    for needle in needles:
        assert needle in err[0], err


def _write_video(path, frames=12, size=(96, 64)):
    writer = cv2.VideoWriter(os.fsdecode(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 8 * i % 256, np.uint8))
    writer.release()
    return Path(os.fsdecode(path))


# ---------------------------------------------------------------------------------------------
# Numbers on the command line: refused while parsing, before any data or model loads
# ---------------------------------------------------------------------------------------------
NUMBER_PROBES = [
    (["evaluate", "--noise-px", "nan"], "--noise-px"),
    (["evaluate", "--noise-px", "-1"], "--noise-px"),
    (["evaluate", "--noise-px", "inf"], "--noise-px"),
    (["evaluate", "--drop-prob", "1.5"], "--drop-prob"),
    (["evaluate", "--adapt-seconds", "0"], "--adapt-seconds"),
    (["evaluate", "--adapt-seconds", "-5"], "--adapt-seconds"),
    (["evaluate", "--adapt-seconds", "nan"], "--adapt-seconds"),
    (["evaluate", "--adapt-seconds", "1e300"], "--adapt-seconds"),
    (["evaluate", "--fewshot-k", "-5"], "--fewshot-k"),
    (["evaluate", "--max-sequences", "-1"], "--max-sequences"),
    (["evaluate", "--threads", "-1"], "--threads"),
    (["evaluate", "--threads", "0"], "--threads"),
    (["train", "baseline", "--lr", "nan"], "--lr"),
    (["train", "baseline", "--lr", "-1"], "--lr"),
    (["train", "baseline", "--inner-lr", "inf"], "--inner-lr"),
    (["train", "baseline", "--dropout", "1.5"], "--dropout"),
    (["train", "baseline", "--noise-px", "nan"], "--noise-px"),
    (["train", "baseline", "--closeup", "nan"], "--closeup"),
    (["train", "baseline", "--seed", "-1"], "--seed"),
    (["train", "baseline", "--threads", "-1"], "--threads"),
    (["train", "baseline", "--steps", "0"], "--steps"),
    (["data", "build", "--seed", "-1"], "--seed"),
    (["data", "build", "--views", "0"], "--views"),
    (["data", "build", "--noise", "nan"], "--noise"),
    (["lens", "mild", "--hfov", "1e-300"], "--hfov"),
    (["lens", "mild", "--hfov", "nan"], "--hfov"),
    (["lens", "mild", "--size", "0x0"], "--size"),
    (["lens", "mild", "--size", "99999999x1"], "--size"),
    (["process", "x.avi", "--hfov", "1e-300"], "--hfov"),
    (["process", "x.avi", "--hfov", "180"], "--hfov"),
    (["process", "x.avi", "--frames", "0"], "--frames"),
    (["adapt-calibrate", "w.pt", "--buffers", "0"], "--buffers"),
    (["adapt-calibrate", "w.pt", "--noise-px", "nan"], "--noise-px"),
    (["bench", "--threads", "-1"], "--threads"),
]


@pytest.mark.parametrize(("argv", "option"), NUMBER_PROBES, ids=" ".join)
def test_absurd_numbers_are_refused_in_one_line(capsys, tmp_path, monkeypatch, argv, option):
    monkeypatch.chdir(tmp_path)  # nothing may be written, not even a default output
    code, err = _cli(capsys, *argv)
    _one_line_exit_2(code, err, option)
    assert list(tmp_path.iterdir()) == [tmp_path / "data"] or not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "spec",
    ["brown:1e300", "brown:1e30,1e30", "fisheye:1e200", "division:1e300", "brown:-1e4",
     "brown:nan", "brown:inf", "fisheye:1,1,1,1,1", "brown:" + "9" * 400],
)  # fmt: skip
def test_absurd_lens_strings(capsys, spec):
    with pytest.raises(LensError):
        parse_lens(spec, max_radius=None)
    code, err = _cli(capsys, "lens", spec)
    _one_line_exit_2(code, err)


def test_hfov_bounds_everywhere(capsys, tmp_path):
    from distpose_app.evaluation.protocol import parse_imaging
    from distpose_app.lens.models import Intrinsics

    with pytest.raises(LensError):
        Intrinsics.from_hfov(1e-300, 640, 480)
    with pytest.raises(LensError, match="hfov"):
        parse_imaging("none@hfov=1e-300")
    code, err = _cli(capsys, "evaluate", "--lens", "none@hfov=1e-300", "--json",
                     tmp_path / "e.json", "--cache", tmp_path)  # fmt: skip
    _one_line_exit_2(code, err, "hfov")
    assert not (tmp_path / "e.json").exists()


# ---------------------------------------------------------------------------------------------
# Paths on the command line
# ---------------------------------------------------------------------------------------------
def test_out_and_cache_pointing_to_files(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    before = _snapshot(tmp_path)
    for argv in (
        ["train", "baseline", "--out", afile],
        ["train", "baseline", "--out", afile / "sub"],
        ["train", "baseline", "--cache", afile],
        ["data", "build", "--cache", afile],
        ["evaluate", "--cache", afile, "--json", tmp_path / "e.json"],
        ["evaluate", "--json", tmp_path / "nofolder" / "e.json"],
        ["evaluate", "--json", tmp_path, "--cache", tmp_path],
        ["adapt-calibrate", afile, "--cache", afile],
        ["bench", "--json", tmp_path / "nofolder" / "b.json"],
    ):
        code, err = _cli(capsys, *argv)
        _one_line_exit_2(code, err)
    assert _snapshot(tmp_path) == before


def test_outputs_never_land_on_inputs(capsys, tmp_path, tiny_weights):
    weights = tmp_path / "w"
    weights.mkdir()
    shutil.copy(tiny_weights, weights / "augmented.pt")
    data = tmp_path / "set.npz"
    data.write_bytes(b"stand-in")
    before = _snapshot(tmp_path)
    for argv in (
        ["evaluate", "--data", data, "--json", weights / "augmented.pt", "--weights-dir", weights],
        ["evaluate", "--data", data, "--json", tmp_path / "r.json", "--plot", data],
        ["evaluate", "--json", tmp_path / "r.json", "--plot", tmp_path / "r.json"],
        ["evaluate", "--poses", "--json", tmp_path / "r.md"],
        ["data", "export", "--out", data, "--archive", data],
        ["train", "meta", "--init", data, "--export", data, "--archive", data],
    ):
        code, err = _cli(capsys, *argv, "--cache", tmp_path)
        _one_line_exit_2(code, err)
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------------------------------------
# Checkpoints: untrusted files, checked before anything is allocated or used
# ---------------------------------------------------------------------------------------------
class _Payload:
    """What a crafted pickle runs on loading: touching a marker file stands in for an attack."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _checkpoint(tmp_path, name, mutate):
    model = M.TemporalModel(filter_widths=(3, 3), channels=16, causal=True).eval()
    path = M.save_checkpoint(tmp_path / "good.pt", model)
    payload = torch.load(path, weights_only=True)
    mutate(payload)
    torch.save(payload, tmp_path / name)
    return tmp_path / name


def _set_lens(value):
    def mutate(p):
        p["state_dict"]["input_lens"] = torch.tensor([value, 0.0, 0.0, 0.0, 0.0])

    return mutate


CHECKPOINT_PROBES = {
    "480 GB of channels": (lambda p: p["config"].update(channels=10**7), "channels"),
    "huge filters": (lambda p: p["config"].update(filter_widths=[243, 243, 243]), "receptive"),
    "many blocks": (lambda p: p["config"].update(filter_widths=[3] * 40), "filter_widths"),
    "unknown key": (lambda p: p["config"].update(run_this="rm -rf"), "unknown"),
    "bool channels": (lambda p: p["config"].update(channels=True), "channels"),
    "string dropout": (lambda p: p["config"].update(dropout="0.1"), "dropout"),
    "NaN weights": (lambda p: p["state_dict"]["shrink.weight"].fill_(float("nan")), "NaN"),
    "inf weights": (lambda p: p["state_dict"]["expand_conv.weight"].fill_(float("inf")), "NaN"),
    "NaN input lens": (_set_lens(float("nan")), "input_lens"),
    "1e30 input lens": (_set_lens(1e30), "input_lens"),
    "not a tensor": (lambda p: p["state_dict"].update(shrink_bias=[1, 2]), "not a tensor"),
    "extra weight": (lambda p: p["state_dict"].update(extra=torch.zeros(3)), "do not match"),
    "metadata list": (lambda p: p.update(metadata=[1, 2]), None),
}


@pytest.mark.parametrize("case", list(CHECKPOINT_PROBES))
def test_crafted_checkpoints(tmp_path, capsys, case):
    mutate, message = CHECKPOINT_PROBES[case]
    path = _checkpoint(tmp_path, "bad.pt", mutate)
    if message is None:  # harmless oddity: loads, with the metadata ignored
        M.load_checkpoint(path)
        return
    with pytest.raises(WeightsError, match=message):
        M.load_checkpoint(path)
    video = _write_video(tmp_path / "clip.avi")
    code, err = _cli(capsys, "process", video, "--weights", path, "--quiet")
    _one_line_exit_2(code, err, "bad.pt")


def test_pickled_code_never_runs(tmp_path):
    """torch.load(weights_only=True) everywhere: a checkpoint, a resume file, a saved
    adaptation that carry a code-running pickle are refused and the code never runs."""
    from distpose_app.adapt.iso import load_saved_adaptation
    from distpose_app.training import loop

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": M.CHECKPOINT_FORMAT, "x": _Payload(marker)}, evil)
    with pytest.raises(WeightsError):
        M.load_checkpoint(evil)
    state, warning = load_saved_adaptation(evil, M.TemporalModel(channels=16))
    assert state is None and "unreadable" in warning
    model = M.TemporalModel(filter_widths=(3,), channels=8)
    sampler = type("S", (), {"rng": np.random.default_rng(0)})()
    with pytest.raises(DistposeError, match="cannot resume"):
        loop._load_resume(evil, model, torch.optim.Adam(model.parameters()), sampler)
    assert not marker.exists()


def test_resume_file_round_trips_with_weights_only(tmp_path):
    from distpose_app.training import loop

    model = M.TemporalModel(filter_widths=(3,), channels=8)
    opt = torch.optim.Adam(model.parameters(), amsgrad=True)
    model(torch.zeros(2, 3, 17, 2)).sum().backward()
    opt.step()
    sampler = type("S", (), {"rng": np.random.default_rng(5)})()
    sampler.rng.random(3)
    loop._save_resume(tmp_path / "last.pt", model, opt, 7, 0.05, 12.5, sampler)
    torch.load(tmp_path / "last.pt", weights_only=True)  # plain tensors and types only
    expected = sampler.rng.random(4)
    model2 = M.TemporalModel(filter_widths=(3,), channels=8)
    opt2 = torch.optim.Adam(model2.parameters(), amsgrad=True)
    sampler2 = type("S", (), {"rng": np.random.default_rng(0)})()
    assert loop._load_resume(tmp_path / "last.pt", model2, opt2, sampler2) == (7, 0.05, 12.5)
    np.testing.assert_array_equal(sampler2.rng.random(4), expected)
    assert torch.equal(model2.shrink.weight, model.shrink.weight)


def test_no_unpickling_anywhere_in_the_code():
    """Every torch.load passes weights_only=True and every np.load allow_pickle=False; nothing
    imports pickle or uses torch.load's default."""
    offenders = []
    for path in sorted((REPO / "distpose_app").rglob("*.py")) + sorted(
        (REPO / "scripts").rglob("*.py")
    ):
        text = path.read_text()
        for match in re.finditer(r"\b(torch\.load|np\.load|numpy\.load)\(", text):
            call = text[match.start() : text.find(")", match.end()) + 1]
            line = text.count("\n", 0, match.start()) + 1
            if "torch" in match.group(1) and "weights_only=True" not in call:
                offenders.append(f"{path.name}:{line}: {call}")
            if (
                "load" in match.group(1)
                and "np" in match.group(1)
                and ("allow_pickle=False" not in call)
            ):
                offenders.append(f"{path.name}:{line}: {call}")
        if re.search(r"allow_pickle\s*=\s*True|weights_only\s*=\s*False|^import pickle", text,
                     re.M):  # fmt: skip
            offenders.append(f"{path.name}: pickle allowed")
    assert not offenders, offenders


# ---------------------------------------------------------------------------------------------
# Calibration files: OpenCV's parser crashes on some inputs, so each runs in a child process
# ---------------------------------------------------------------------------------------------
GOOD_YAML = """%YAML:1.0
---
image_width: 640
image_height: 480
camera_matrix: !!opencv-matrix
   rows: 3
   cols: 3
   dt: d
   data: [ 500., 0., 320., 0., 500., 240., 0., 0., 1. ]
distortion_coefficients: !!opencv-matrix
   rows: 1
   cols: 5
   dt: d
   data: [ -0.2, 0.05, 0., 0., 0. ]
"""
CALIBRATION_PROBES = {
    "mismatched rows": GOOD_YAML.replace("rows: 3\n   cols: 3", "rows: 4\n   cols: 3"),
    "text matrix": GOOD_YAML.replace("data: [ 500.", "data: [ abc"),
    "NaN width": GOOD_YAML.replace("image_width: 640", "image_width: .nan"),
    "inf width": GOOD_YAML.replace("image_width: 640", "image_width: .inf"),
    "huge int width": GOOD_YAML.replace("image_width: 640", "image_width: 9" + "9" * 30),
    "fractional width": GOOD_YAML.replace("image_width: 640", "image_width: 640.5"),
    "huge matrix": GOOD_YAML.replace("rows: 3\n   cols: 3", "rows: 100000000\n   cols: 1000000"),
    "negative rows": GOOD_YAML.replace("rows: 3\n   cols: 3", "rows: -3\n   cols: 3"),
    "bad dt": GOOD_YAML.replace("dt: d\n   data: [ 500.", "dt: zz\n   data: [ 500."),
    "huge coefficient": GOOD_YAML.replace("-0.2, 0.05", "-1e300, 0.05"),
    "huge focal": GOOD_YAML.replace("500., 0., 320.", "1e300, 0., 320."),
    "nested 100k flow": "%YAML:1.0\n---\na: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "nested 100k map": "%YAML:1.0\n---\na: " + "{b: " * 100_000 + "1" + "}" * 100_000 + "\n",
    "nested 100k XML": '<?xml version="1.0"?>\n<opencv_storage>'
    + "<a>" * 100_000
    + "</a>" * 100_000
    + "</opencv_storage>\n",
    "nested 100k JSON": '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
    "dash nesting": "%YAML:1.0\n---\na:\n" + "- " * 100_000 + "1\n",
    "binary": "\0\1\2 not text",
    "empty": "",
    "too large": "%YAML:1.0\n---\n" + "# padding\n" * 200_000,
}


def test_calibration_files_never_crash(tmp_path):
    names = {}
    for i, (case, text) in enumerate(CALIBRATION_PROBES.items()):
        path = tmp_path / f"cal{i}.yml"
        path.write_text(text)
        names[case] = str(path)
    (tmp_path / "good.yml").write_text(GOOD_YAML)
    names["good"] = str(tmp_path / "good.yml")
    code = (
        "import json, sys\n"
        "from distpose_app.core.errors import DistposeError\n"
        "from distpose_app.lens.calibration import load_opencv_calibration\n"
        "out = {}\n"
        "for case, path in json.loads(sys.argv[1]).items():\n"
        "    try:\n"
        "        k, lens = load_opencv_calibration(path); out[case] = 'ok ' + lens.spec()\n"
        "    except DistposeError as exc:\n"
        "        out[case] = 'refused ' + str(exc)\n"
        "print(json.dumps(out))\n"
    )
    run = subprocess.run([sys.executable, "-c", code, json.dumps(names)], capture_output=True,
                         text=True, env=ENV, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]  # a segfault is -11
    results = json.loads(run.stdout)
    assert results.pop("good").startswith("ok brown")
    for case, result in results.items():
        assert result.startswith("refused "), (case, result)
        assert "\n" not in result and "cal" in result, (case, result)


def test_calibration_file_with_non_utf8_name(tmp_path):
    from distpose_app.lens.calibration import load_opencv_calibration

    path = Path(os.fsdecode(bytes(tmp_path) + b"/cal\xff.yml"))
    path.write_text(GOOD_YAML)
    intrinsics, lens = load_opencv_calibration(path)  # read as bytes: OpenCV never sees the name
    assert intrinsics.width == 640 and lens.spec().startswith("brown")


# ---------------------------------------------------------------------------------------------
# BVH files and mocap archives
# ---------------------------------------------------------------------------------------------
TINY_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 10 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0333333
0 90 0 0 0 0 0 0 0
1 90 0 10 0 0 5 0 0
"""


def _tar(path, members):
    """A .tar.xz with `members` {name: bytes}."""
    with tarfile.open(path, "w:xz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: t.replace("1 90 0 10", "nan 90 0 10"), "NaN"),
        (lambda t: t.replace("1 90 0 10", "1e308 90 0 10"), "beyond"),
        (lambda t: t.replace("1 90 0 10", "-inf 90 0 10"), "infinite"),
        (lambda t: t.replace("OFFSET 0 10 0\n    CHANNELS", "OFFSET 0 1e300 0\n    CHANNELS"),
         "OFFSET"),
        (lambda t: t.replace("Frame Time: 0.0333333", "Frame Time: 1e300"), "Frame Time"),
        (lambda t: t.replace("Frame Time: 0.0333333", "Frame Time: 1e-300"), "Frame Time"),
        (lambda t: t.replace("Frame Time: 0.0333333", "Frame Time: nan"), "Frame Time"),
        (lambda t: t.replace("Frames: 2", "Frames: 99999999999999999999"), "mismatch"),
    ],
)  # fmt: skip
def test_bvh_values_refused(tmp_path, mangle, message):
    path = tmp_path / "take.bvh"
    path.write_text(mangle(TINY_BVH))
    with pytest.raises(DataFormatError, match=message) as info:
        B.read_bvh(path)
    assert "take.bvh" in str(info.value) and "\n" not in str(info.value)


def test_bvh_byte_order_mark_and_legacy_encoding(tmp_path):
    path = tmp_path / "bom.bvh"
    path.write_bytes(b"\xef\xbb\xbf" + TINY_BVH.encode())
    assert B.read_bvh(path).num_frames == 2
    assert B.parse_bvh("\ufeff" + TINY_BVH).num_frames == 2
    latin = TINY_BVH.replace("Chest", "Poitrine\xe9").encode("latin-1")
    assert B.parse_bvh_bytes(latin, "latin.bvh").names[1] == "Poitrine\xe9"


def test_bvh_text_is_never_a_path(tmp_path):
    """A member whose text is a path names a file only by accident: it is parsed as BVH text
    (and refused), never opened. read_bvh refuses text outright."""
    secret = tmp_path / "other.bvh"
    secret.write_text(TINY_BVH)
    archive = _tar(tmp_path / "a.tar.xz", {"take.bvh": str(secret).encode(),
                                            "shadow.bvh": b"/etc/shadow"})  # fmt: skip
    from distpose_app.data.mocap import iter_bandai_bvh

    with pytest.raises(DataFormatError, match="take.bvh") as info:
        list(iter_bandai_bvh(archive))
    assert "HIERARCHY" in str(info.value) or "MOTION" in str(info.value)
    with pytest.raises(TypeError, match="parse_bvh"):
        B.read_bvh(TINY_BVH)
    with pytest.raises(DataFormatError):
        B.parse_bvh(str(secret))


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"readme.txt": b"hello"}, "no .bvh file"),
        ({}, "no .bvh file"),
        ({"x.bvh": bytes(range(256)) * 10}, "binary"),
        ({"y.bvh": b"\x00\x01" * 100, "ok.bvh": TINY_BVH.encode()}, "y.bvh: binary"),
        ({"z.bvh": b"\xef\xbb\xbf" + TINY_BVH.encode().replace(b"90", b"nan")}, "NaN"),
    ],
)
def test_archive_members(tmp_path, members, message):
    from distpose_app.data.mocap import iter_bandai_archive, iter_bandai_bvh

    archive = _tar(tmp_path / "a.tar.xz", members)
    for reader in (lambda: list(iter_bandai_bvh(archive)),
                   lambda: list(iter_bandai_archive(archive, progress=False))):  # fmt: skip
        with pytest.raises(DataFormatError, match=message) as info:
            reader()
        assert "a.tar.xz" in str(info.value) and "\n" not in str(info.value)


def test_archive_with_a_bom_member_reads(tmp_path):
    from distpose_app.data.mocap import iter_bandai_bvh

    archive = _tar(tmp_path / "a.tar.xz", {"d/take.bvh": b"\xef\xbb\xbf" + TINY_BVH.encode()})
    ((name, bvh),) = list(iter_bandai_bvh(archive))
    assert name == "d/take.bvh" and bvh.num_frames == 2


# ---------------------------------------------------------------------------------------------
# External .npz data
# ---------------------------------------------------------------------------------------------
def _external(path, **changes):
    rng = np.random.default_rng(0)
    arrays = {
        "positions_3d": rng.normal(0, 0.3, (40, 17, 3)) + [0, 0, 3.0],
        "sequence": np.repeat([0, 1], 20),
        "fps": np.float64(30.0),
        "intrinsics": np.array([[500.0, 500, 320, 240]] * 2),
        "image_size": np.array([[640, 480]] * 2),
    }
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


def test_external_data_probes(tmp_path, capsys, tiny_weights):
    npy = tmp_path / "renamed.npz"
    np.save(tmp_path / "one.npy", np.zeros((4, 17, 3)))
    (tmp_path / "one.npy").rename(npy)
    near = np.random.default_rng(0).normal(0, 0.3, (40, 17, 3)) + [0, 0, 3.0]
    near[5, 3, 2] = 1e-12
    cases = {
        npy: "not an .npz",
        _external(tmp_path / "fps.npz", fps=np.float64(1e-300)): "frame rate",
        _external(tmp_path / "fps2.npz", fps=np.float64(1e300)): "frame rate",
        _external(tmp_path / "near.npz", positions_3d=near): "closer than",
        _external(tmp_path / "obj.npz", names=np.array([{"a": 1}, None], dtype=object)):
            "not a readable",
    }  # fmt: skip
    weights = tmp_path / "w"
    weights.mkdir()
    shutil.copy(tiny_weights, weights / "augmented.pt")
    for path, message in cases.items():
        with pytest.raises(DataFormatError, match=message):
            load_external(path)
        code, err = _cli(capsys, "evaluate", "--data", path, "--methods", "augmented",
                         "--weights-dir", weights, "--json", tmp_path / "r.json",
                         "--cache", tmp_path)  # fmt: skip
        _one_line_exit_2(code, err, path.name, message)
    assert not (tmp_path / "r.json").exists()
    load_external(_external(tmp_path / "fine.npz"))  # the same file without the fault loads


# ---------------------------------------------------------------------------------------------
# Video file names: OpenCV only ever sees a name it can take
# ---------------------------------------------------------------------------------------------
def test_non_utf8_video_name_is_read_without_a_crash(tmp_path):
    raw = bytes(tmp_path) + b"/clip\xff\xfe.avi"
    path = _write_video(Path(os.fsdecode(bytes(tmp_path) + b"/plain.avi")))
    os.rename(path, raw)
    source = open_source(os.fsdecode(raw))
    source.open()
    frames = 0
    while source.read() is not None:
        frames += 1
    source.close()
    assert frames == 12 and source._fd is None
    with pytest.raises(DistposeError, match="UTF-8"):
        v.opencv_path(os.fsdecode(raw))


def test_non_utf8_video_name_through_process_in_a_child(tmp_path, tiny_weights):
    """The reported crash (exit 139 inside cv2.VideoCapture): a child process, so that a
    regression fails this test instead of killing the test run."""
    raw = bytes(tmp_path) + b"/clip\xff.avi"
    os.rename(_write_video(tmp_path / "plain.avi"), raw)
    run = subprocess.run(
        [sys.executable, "-m", "distpose_app.cli.main", "process", os.fsdecode(raw),
         "--weights", tiny_weights, "--csv", str(tmp_path / "out.csv"), "--quiet",
         "--device", "cpu"],
        capture_output=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 13


def test_leading_spaces_in_names_are_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_video(tmp_path / "  spaced.avi")
    source = open_source("  spaced.avi")
    assert isinstance(source, VideoFileSource) and source.path.name == "  spaced.avi"
    source.open()
    source.close()
    assert open_source(" 0 ").__class__.__name__ == "CameraSource"


def test_fifo_and_folder_as_video(tmp_path, capsys):
    fifo = tmp_path / "clip.avi"
    os.mkfifo(fifo)
    code, err = _cli(capsys, "process", fifo, "--quiet")  # must not block on open
    _one_line_exit_2(code, err, "clip.avi")
    code, err = _cli(capsys, "process", tmp_path, "--quiet")
    _one_line_exit_2(code, err)
    code, err = _cli(capsys, "process", "9" * 20, "--frames", "3", "--quiet")  # a camera index
    _one_line_exit_2(code, err, "camera index")


def test_app_refuses_an_empty_video_before_any_window(tmp_path, capsys):
    from distpose_app.gui.app import main

    (tmp_path / "empty.avi").write_bytes(b"")
    (tmp_path / "junk.avi").write_bytes(b"junk" * 100)
    assert main(["--source", str(tmp_path / "empty.avi"), "--frames", "5"]) == 2
    assert main(["--source", str(tmp_path / "junk.avi"), "--frames", "5"]) == 2
    assert main(["--frames", "-3"]) == 2
    assert main(["--frames", "nan"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and "empty" in err[0] and "junk.avi" in err[1], err
    assert "Traceback" not in "".join(err)


def test_number_checks_reject_nan_everywhere():
    for bad in (math.nan, math.inf, -math.inf, "x", None):
        with pytest.raises(DistposeError):
            v.check_number("value", bad)
    assert v.check_number("n", 3, low=1, integer=True) == 3
    with pytest.raises(DistposeError, match="whole"):
        v.check_number("n", 2.5, integer=True)


def test_residual_subjects_without_detections_are_refused_before_any_loading(capsys, tmp_path):
    """`--noise-residual-subjects S1,S6` on a file with detections of S1 and S5 only: one line
    naming S6 and the subjects that have detections, before the noise fit and the data load."""
    from h36m_fake import make_model, write_synthetic_h36m

    h36m = write_synthetic_h36m(tmp_path / "h.npz", make_model(), frames=200, sequences=1,
                                subjects=(1, 5), detected=(1, 5))  # fmt: skip
    code, err = _cli(capsys, "train", "augmented", "--h36m", h36m, "--noise-residuals", "0.25",
                     "--noise-residual-subjects", "S1,S6", "--out", tmp_path / "run")  # fmt: skip
    _one_line_exit_2(code, err, "no detections of S6", "detections of S1, S5")
    assert not (tmp_path / "run").exists()
