"""A tiny end-to-end run: build synthetic views of procedural sequences, train each mode for a
few steps, then run the evaluation protocol on them. Seconds, not minutes."""

import json

import numpy as np
import pytest
import torch
from poses import Sequence, walking

from distpose_app.core.errors import DistposeError
from distpose_app.data.synthetic import build_synthetic
from distpose_app.evaluation import protocol as ev
from distpose_app.lifter.model import load_checkpoint
from distpose_app.training.loop import TrainConfig, train
from distpose_app.training.windows import WindowSampler


@pytest.fixture(scope="module")
def tiny_sets():
    seqs = [Sequence(f"dataset-2_walk_normal_{i:03d}", walking(120, i)) for i in range(6)]
    data = build_synthetic(seqs, None, views_per_sequence=1, seed=0, progress=False)
    return data


def test_window_sampler_batches(tiny_sets):
    rng = np.random.default_rng(0)
    s = WindowSampler(tiny_sets.positions_3d, tiny_sets.sequence, tiny_sets.intrinsics,
                      tiny_sets.image_size, 20, rng)  # fmt: skip
    starts = s.random_starts(8)
    x, y = s.make_batch(starts, None, noise_px=0.0, flip=False)
    assert x.shape == (8, 20, 17, 2) and y.shape == (8, 20, 17, 3)
    assert torch.all(y[..., 0, :] == 0)  # root-relative
    assert x.abs().max() < 1.5  # normalised screen coordinates
    # Masking: whole groups NaN over a window, on a share of windows near the configured rate.
    from distpose_app.data.masking import MaskConfig

    xm, _ = s.make_batch(s.random_starts(400), None, 0.0, False, masking=MaskConfig())
    unseen = torch.isnan(xm).any(-1)
    assert torch.equal(torch.isnan(xm[..., 0]), torch.isnan(xm[..., 1]))
    assert 0.1 < unseen[:, :, 2].all(1).float().mean() < 0.4  # right knee: legs + lower body
    assert unseen.float().mean() < 0.15
    # A window never crosses a sequence boundary.
    seq = tiny_sets.sequence
    assert all(seq[a] == seq[a + 19] for a in s.starts)


def test_train_each_mode_then_evaluate(tiny_sets, tmp_path):
    torch.set_num_threads(1)
    common = dict(filter_widths=(3, 3), channels=16, steps=6, batch_windows=8, chunk_frames=4,
                  val_every=3)  # fmt: skip
    base = train(TrainConfig(mode="baseline", **common), tiny_sets, tiny_sets, tmp_path / "b",
                 progress=False)  # fmt: skip
    aug = train(TrainConfig(mode="augmented", **common), tiny_sets, tiny_sets, tmp_path / "a",
                progress=False)  # fmt: skip
    meta_cfg = TrainConfig(mode="meta", init=str(aug), tasks_per_batch=2, **common)
    meta = train(meta_cfg, tiny_sets, tiny_sets, tmp_path / "m", progress=False)
    for path in (base, aug, meta):
        assert path.is_file()
    assert (tmp_path / "m" / "log.jsonl").read_text().count("val_mpjpe_mm") == 2
    models = {name: load_checkpoint(p)[0].eval() for name, p in
              (("baseline", base), ("augmented", aug), ("meta", meta))}  # fmt: skip
    _, meta_info = load_checkpoint(meta)
    assert meta_info["adaptation"]["inner_params"] == "bn"

    ext = tiny_sets.to_external()
    rows = ev.evaluate(models, ext, ("none", "strong"), adapt_seconds=3.0, fewshot_k=10)
    assert {r["method"] for r in rows} == set(ev.METHODS)
    assert len(rows) == 2 * len(ev.METHODS)
    for r in rows:
        assert np.isfinite([r["mpjpe_mm"], r["p_mpjpe_mm"], r["n_mpjpe_mm"]]).all()
        assert r["p_mpjpe_mm"] <= r["mpjpe_mm"] + 1e-6
        assert r["frames"] == sum(len(range(*sl.indices(len(ext.sequence))))
                                  for sl in tiny_sets.sequence_slices()[0::2])  # fmt: skip
    # Without a lens the oracle is the baseline itself.
    none = {r["method"]: r["mpjpe_mm"] for r in rows if r["lens"] == "none"}
    assert none["oracle"] == pytest.approx(none["baseline"])
    table = ev.markdown_table(rows)
    assert table.count("\n") == 3 and "strong" in table


def test_train_resumes(tiny_sets, tmp_path):
    torch.set_num_threads(1)
    cfg = dict(mode="baseline", filter_widths=(3,), channels=8, batch_windows=4, chunk_frames=2,
               val_every=2)  # fmt: skip
    train(TrainConfig(steps=2, **cfg), tiny_sets, tiny_sets, tmp_path, progress=False)
    train(TrainConfig(steps=4, **cfg), tiny_sets, tiny_sets, tmp_path, progress=False)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [2, 4]


def test_resample_round_trip():
    x = np.sin(np.linspace(0, 3, 50))[:, None]
    y = ev.resample(x, 25.0, 30.0)
    assert len(y) == 59
    assert ev.resample(x, 30.0, 30.0) is x


def test_gap_closed_share():
    rows = [
        {"lens": "x", "method": "augmented", "mpjpe_mm": 60.0},
        {"lens": "x", "method": "oracle", "mpjpe_mm": 50.0},
        {"lens": "x", "method": "meta", "mpjpe_mm": 55.0},
        {"lens": "x", "method": "meta+iso", "mpjpe_mm": 53.0},
        {"lens": "x", "method": "augmented+iso", "mpjpe_mm": 62.0},
        {"lens": "y", "method": "augmented", "mpjpe_mm": 50.2},  # no gap to close
        {"lens": "y", "method": "oracle", "mpjpe_mm": 50.0},
        {"lens": "y", "method": "meta+iso", "mpjpe_mm": 49.0},
    ]
    got = {(g["lens"], g["method"]): g["gap_closed"] for g in ev.gap_closed(rows)}
    # Each adaptation is credited against its own model: meta 55 -> 53 closes 2 of the 10 mm.
    assert got == {
        ("x", "meta+iso"): pytest.approx(0.2),
        ("x", "augmented+iso"): pytest.approx(-0.2),
    }


def test_out_lenses_are_outside_the_sampler_and_in_lenses_inside():
    from distpose_app.data.lens_sampler import LensSampler
    from distpose_app.lens.strings import parse_lens

    sampler = LensSampler()
    assert all(sampler.contains(parse_lens(t)) for t in ev.LENS_SETS["in"])
    # An "out" entry is a lens beyond the sampler or an imaging change it never draws (@pp, @hfov).
    for text in ev.LENS_SETS["out"]:
        imaging = ev.parse_imaging(text)
        assert imaging.modified or not sampler.contains(imaging.lens), text


def test_noise_changes_the_input_but_not_the_frames(tiny_sets):
    models = {"baseline": load_checkpoint_free_model()}
    ext = tiny_sets.to_external()
    clean = ev.evaluate_lens(models, ext, "none", ("baseline",))
    noisy = ev.evaluate_lens(models, ext, "none", ("baseline",), noise_px=5.0)
    assert clean[0]["frames"] == noisy[0]["frames"]
    assert noisy[0]["mpjpe_mm"] != pytest.approx(clean[0]["mpjpe_mm"], abs=1e-6)


def load_checkpoint_free_model():
    from distpose_app.lifter.model import TemporalModel

    torch.manual_seed(0)
    return TemporalModel(filter_widths=(3, 3), channels=16, causal=True).eval()


def test_second_order_maml_differs_from_first_order(tiny_sets, tmp_path):
    """Second order back-propagates through the inner step (create_graph); with a large inner
    learning rate its outer gradient, and so the weights after one step, differ from FOMAML's."""
    torch.set_num_threads(1)
    common = dict(filter_widths=(3, 3), channels=16, batch_windows=8, chunk_frames=4)
    init = train(TrainConfig(mode="augmented", steps=2, val_every=2, **common), tiny_sets,
                 tiny_sets, tmp_path / "init", progress=False)  # fmt: skip
    weights = {}
    for name, order in (("first", False), ("again", False), ("second", True)):
        cfg = TrainConfig(mode="meta", init=str(init), steps=1, val_every=1, tasks_per_batch=2,
                          inner_lr=1.0, second_order=order, **common)  # fmt: skip
        out = train(cfg, tiny_sets, tiny_sets, tmp_path / name, progress=False)
        weights[name] = load_checkpoint(out.parent / "final.pt")[0].state_dict()

    def diff(a, b):
        return max(float((weights[a][k] - weights[b][k]).abs().max()) for k in weights[a])

    assert diff("first", "again") == 0.0  # the same run twice: identical
    assert 0.0 < diff("first", "second") < 1.0  # only the order of the gradient differs


def test_closeup_view_aims_between_chest_and_head_from_desk_distance():
    from distpose_app.training.windows import CLOSEUP_DISTANCE_M, closeup_view

    rng = np.random.default_rng(0)
    cam = walking(30, 0)[:, :, [0, 1, 2]] * np.array([1.0, -1.0, 1.0]) + [0.4, 0.3, 3.0]
    aims = []
    for _ in range(40):
        out = closeup_view(cam, rng)
        chest = out[:, [8, 9]].reshape(-1, 3).mean(0)
        head = out[:, 10].mean(0)
        # The optical axis passes between chest and head (up to the +-5 cm aim jitter): the
        # point of the chest-head segment nearest the axis is near it, 0.4-1.1 m away.
        u = np.linspace(0.0, 1.0, 101)[:, None]
        segment = chest + u * (head - chest)
        nearest = segment[np.argmin(np.hypot(segment[:, 0], segment[:, 1]))]
        assert np.hypot(nearest[0], nearest[1]) < 0.2
        assert CLOSEUP_DISTANCE_M[0] - 0.25 < nearest[2] < CLOSEUP_DISTANCE_M[1] + 0.25
        aims.append(np.hypot(chest[0], chest[1]) < np.hypot(head[0], head[1]))
        # A rigid move: bone lengths and root-relative distances are kept.
        lengths = np.linalg.norm(cam - cam[:, :1], axis=-1)
        np.testing.assert_allclose(np.linalg.norm(out - out[:, :1], axis=-1), lengths, atol=1e-9)
    assert any(aims) and not all(aims)  # aimed nearer the chest in some, the head in others


def test_closeup_windows_lose_the_legs_but_keep_the_shoulders(tiny_sets):
    s = WindowSampler(tiny_sets.positions_3d, tiny_sets.sequence, tiny_sets.intrinsics,
                      tiny_sets.image_size, 20, np.random.default_rng(0))  # fmt: skip
    starts = s.random_starts(64)
    x, y = s.make_batch(starts, None, 0.0, False, closeup=1.0)
    unseen = torch.isnan(x).any(-1).float().mean((0, 1))
    assert unseen[[3, 6]].min() > 0.5  # ankles mostly out of the image
    assert unseen[[11, 14]].max() < 0.2  # shoulders mostly in
    assert torch.isfinite(y).all() and torch.all(y[..., 0, :] == 0)
    x_full, _ = s.make_batch(starts, None, 0.0, False, closeup=0.0)
    assert torch.isfinite(x_full).all()  # ordinary views keep every joint in frame


def test_meta_with_a_lens_inner_loop_trains_and_only_the_weights_move(tiny_sets, tmp_path):
    torch.set_num_threads(1)
    common = dict(filter_widths=(3, 3), channels=16, steps=3, batch_windows=8, chunk_frames=4,
                  val_every=3)  # fmt: skip
    aug = train(TrainConfig(mode="augmented", **common), tiny_sets, tiny_sets, tmp_path / "a",
                progress=False)  # fmt: skip
    cfg = TrainConfig(mode="meta", init=str(aug), tasks_per_batch=2, inner_params="lens", **common)
    meta = train(cfg, tiny_sets, tiny_sets, tmp_path / "m", progress=False)
    before, after = load_checkpoint(aug)[0], load_checkpoint(meta)[0]
    assert load_checkpoint(meta)[1]["adaptation"]["inner_params"] == "lens"
    assert not after.input_lens.any()  # the lens is fitted per task, never stored
    assert any(not torch.equal(p, q) for p, q in zip(before.parameters(), after.parameters()))


def test_k1_grid_search_finds_the_lens_that_explains_the_2d():
    from distpose_app.adapt.lens_fit import k1_grid_search

    class Oracle(torch.nn.Module):
        """A 'lifter' that returns the true poses: the objective is then the lens alone."""

        receptive_field = 1
        lookahead_frames = 0

        def forward(self, x):
            return truth[: x.shape[0]]

    rng = np.random.default_rng(0)
    pose = walking(8, 0)[:, :, [0, 1, 2]] * np.array([1.0, -1.0, 1.0])
    cam = pose + np.array([0.3, 0.2, 2.5]) + rng.normal(0, 0.01, (8, 1, 3))
    truth_np = cam - cam[:, :1]
    xy = cam[..., :2] / cam[..., 2:3] * 1.2  # focal 1.2 in screen units
    r2 = (xy**2).sum(-1, keepdims=True)
    distorted = xy / (1 + 0.3 * r2)  # undone by k1 = +0.3 to first order
    windows = torch.tensor(distorted, dtype=torch.float32)[:, None]  # (8 windows, 1 frame)
    truth = torch.tensor(truth_np, dtype=torch.float32)[:, None].repeat(11, 1, 1, 1)
    k1, objective = k1_grid_search(Oracle(), windows, np.linspace(-0.5, 0.5, 11), focal=1.2)
    assert k1 == pytest.approx(0.3, abs=0.11) and objective.shape == (11,)


def test_augmented_can_continue_a_trained_model(tiny_sets, tmp_path):
    cfg = dict(filter_widths=(3,), channels=16, chunk_frames=4, batch_windows=8, val_every=2)
    first = train(TrainConfig(mode="augmented", steps=2, **cfg), tiny_sets, tiny_sets,
                  tmp_path / "a", progress=False)  # fmt: skip
    start, _ = load_checkpoint(first)
    cont = train(TrainConfig(mode="augmented", steps=1, lr=1e-12, init=str(first), **cfg),
                 tiny_sets, tiny_sets, tmp_path / "b", progress=False)  # fmt: skip
    after, meta = load_checkpoint(cont)
    assert meta["train_config"]["init"] == str(first)
    for (name, a), b in zip(start.state_dict().items(), after.state_dict().values()):
        if "running" not in name and "num_batches" not in name:  # batch norm statistics move
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_detector_noise_and_bodies_reach_the_batch(tiny_sets):
    from distpose_app.data.detector_noise import DetectorNoiseSampler

    s = WindowSampler(tiny_sets.positions_3d, tiny_sets.sequence, tiny_sets.intrinsics,
                      tiny_sets.image_size, 12, np.random.default_rng(0))  # fmt: skip
    starts = s.random_starts(64)
    clean, y0 = s.make_batch(starts, None, 0.0, False, rng=np.random.default_rng(1))
    noise = DetectorNoiseSampler(_synthetic_noise_model(), scale=1.0, bias="none")
    noisy, y1 = s.make_batch(starts, None, 0.0, False, rng=np.random.default_rng(1), noise=noise)
    torch.testing.assert_close(y0, y1)  # targets untouched by 2D noise
    assert float((noisy - clean).abs().mean()) > 1e-4
    _, y2 = s.make_batch(starts, None, 0.0, False, rng=np.random.default_rng(1), bodies=1.0)
    assert not torch.allclose(y0, y2)  # other bodies, other 3D targets


def _synthetic_noise_model() -> dict:
    from distpose_app.data.detector_noise import DetectorNoise

    return DetectorNoise(
        bias_m=np.full((17, 2), 0.01), sigma_m=np.full((17, 2), 0.02),
        outlier_prob=np.full(17, 0.05), outlier_sigma_m=np.full(17, 0.1),
        outlier_burst_frames=np.full(17, 3.0), ar_slow=np.full(17, 0.95),
        ar_fast=np.full(17, 0.5), slow_share=np.full(17, 0.5), swap_rate=np.full(6, 0.02),
        swap_burst_frames=np.full(6, 3.0),
    ).to_dict()  # fmt: skip


def test_bone_length_loss_sees_a_shortened_forearm_that_mpjpe_weighs_little():
    from distpose_app.core.skeleton import BONES
    from distpose_app.lifter import losses

    target = torch.as_tensor(walking(8, 0), dtype=torch.float32)[None]  # (1, 8, 17, 3) metres
    assert losses.bone_length_loss(target, target).item() == 0.0
    # The left wrist pulled halfway to its elbow: only the forearm's length changes.
    short = target.clone()
    short[..., 13, :] = target[..., 12, :] + 0.5 * (target[..., 13, :] - target[..., 12, :])
    forearm = torch.linalg.vector_norm(target[..., 13, :] - target[..., 12, :], dim=-1).mean()
    expected = 0.5 * forearm / len(BONES)
    assert losses.bone_length_loss(short, target).item() == pytest.approx(expected.item(), rel=1e-4)


def test_training_with_and_without_the_bone_loss_runs(tiny_sets, tmp_path):
    for weight in (0.0, 1.0):
        config = TrainConfig(mode="baseline", steps=2, batch_windows=4, chunk_frames=2,
                             filter_widths=(3,), channels=8, val_every=2)  # fmt: skip
        config.bone_loss = weight
        best = train(config, tiny_sets, tiny_sets, tmp_path / str(weight), progress=False)
        assert best.is_file()
    with pytest.raises(DistposeError):
        TrainConfig(bone_loss=float("nan")).validate()


def test_single_output_windows_train_the_dense_model(tiny_sets, tmp_path):
    """chunk_frames=1 draws windows of exactly the receptive field (the strided forward, about a
    third of the work a window); the weights it learns are the dense model's and move."""
    cfg = dict(filter_widths=(3, 3), channels=16, batch_windows=8, val_every=2, lr=1e-2)
    first = train(TrainConfig(mode="augmented", steps=2, chunk_frames=4, **cfg), tiny_sets,
                  tiny_sets, tmp_path / "a", progress=False)  # fmt: skip
    single = train(TrainConfig(mode="augmented", steps=3, chunk_frames=1, init=str(first), **cfg),
                   tiny_sets, tiny_sets, tmp_path / "b", progress=False)  # fmt: skip
    start, _ = load_checkpoint(first)
    after, meta = load_checkpoint(single)
    assert meta["train_config"]["chunk_frames"] == 1
    moved = [not torch.equal(a, b) for a, b in zip(start.parameters(), after.parameters())]
    assert all(moved)
    x = torch.zeros(1, after.receptive_field + 10, 17, 2)
    assert after.eval()(x).shape == (1, 11, 17, 3)
