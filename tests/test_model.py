"""TemporalModel shapes and timing, streaming = full window, BN folding, checkpoints, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distpose_app.core.errors import DistposeError, WeightsError
from distpose_app.lifter import model as M


def _model(widths=(3, 3, 3), causal=False, channels=32, seed=0) -> M.TemporalModel:
    """A small model with non-trivial BN running statistics (so folding is really tested)."""
    torch.manual_seed(seed)
    model = M.TemporalModel(filter_widths=widths, channels=channels, dropout=0.25, causal=causal)
    with torch.no_grad():
        for bn in [model.expand_bn, *model.layers_bn]:
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
    return model.eval()


def _sequence(frames, seed=0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, (frames, 17, 2))).float()


@pytest.mark.parametrize(
    "widths, rf", [((3, 3, 3), 27), ((3, 3, 3, 3), 81), ((3, 3, 3, 3, 3), 243), ((3, 3), 9)]
)
def test_shapes_and_receptive_field(widths, rf):
    for causal in (False, True):
        model = M.TemporalModel(filter_widths=widths, channels=8, causal=causal).eval()
        assert model.receptive_field == rf
        assert model.lookahead_frames == (0 if causal else (rf - 1) // 2)
        with torch.no_grad():
            out = model(torch.zeros(2, rf + 4, 17, 2))
        assert out.shape == (2, 5, 17, 3)
        rebuilt = M.TemporalModel(**model.config)
        assert rebuilt.receptive_field == rf and rebuilt.causal == causal


def test_root_joint_is_exactly_zero_and_training_mode_runs():
    model = _model().train()
    out = model(_sequence(40)[None].repeat(3, 1, 1, 1))
    assert torch.all(out[:, :, 0] == 0)
    assert out[:, :, 1:].abs().sum() > 0
    out.sum().backward()  # gradients flow through the root subtraction
    assert model.expand_conv.weight.grad is not None


def test_bad_filter_widths_rejected():
    with pytest.raises(DistposeError):
        M.TemporalModel(filter_widths=(3, 2, 3))


@pytest.mark.parametrize("causal", [False, True])
def test_output_depends_on_exactly_the_documented_frames(causal):
    """Output i is frame t = i + RF-1-lookahead; it must see frames t-(RF-1-L)..t+L only."""
    model = _model(causal=causal)
    rf, look = model.receptive_field, model.lookahead_frames
    x = _sequence(80)
    with torch.no_grad():
        base = model(x[None])[0]
    t = 50
    i = t - (rf - 1 - look)
    first = t - (rf - 1 - look)
    for frame, expect_change in [(t + look, True), (t + look + 1, False), (first, True),
                                 (first - 1, False)]:  # fmt: skip
        y = x.clone()
        y[frame] += 0.5
        with torch.no_grad():
            changed = not torch.allclose(model(y[None])[0, i], base[i])
        assert changed == expect_change, (frame, t)
    if causal:
        # changing every frame after t leaves the output for t (and before) unchanged
        y = x.clone()
        y[t + 1 :] = _sequence(80 - t - 1, seed=5)
        with torch.no_grad():
            assert torch.equal(model(y[None])[0, : i + 1], base[: i + 1])


@pytest.mark.parametrize("widths", [(3, 3, 3), (3, 3), (5, 3), (3, 3, 3, 3)])
@pytest.mark.parametrize("causal", [False, True])
def test_one_window_strided_equals_the_dense_output(widths, causal):
    """A window of exactly RF frames runs strided (VideoPose3D's 1f model, how training draws
    single-output windows): the same output as the dense forward's column for it, unseen
    joints included, and the gradient reaches every layer."""
    model = _model(widths=widths, causal=causal)
    rf = model.receptive_field
    x = _sequence(rf + 6)[None].repeat(2, 1, 1, 1)
    x[1, 3, 4] = float("nan")
    with torch.no_grad():
        dense = model(x)
        single = torch.stack([model(x[:, i : i + rf])[:, 0] for i in range(7)], 1)
    assert single.shape == dense.shape == (2, 7, 17, 3)
    assert torch.allclose(single, dense, atol=1e-5)
    model.train()
    model(x[:, :rf]).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_bn_folding_equals_conv_then_bn():
    model = _model(widths=(3, 3))
    conv, bn = model.layers_conv[0], model.layers_bn[0]
    h = torch.randn(1, 32, 7)
    with torch.no_grad():
        ref = bn(conv(h))[0, :, 0]  # first output column: input columns 0, 3, 6 (dilation 3)
    w, b = M.fold_batch_norm(conv, bn)
    folded = w @ h[0, :, [0, 3, 6]].T.reshape(-1) + b
    assert torch.allclose(folded, ref, atol=1e-5)


@pytest.mark.parametrize("widths", [(3, 3, 3), (3, 3, 3, 3)])
@pytest.mark.parametrize("causal", [False, True])
def test_streaming_equals_full_window(widths, causal):
    model = _model(widths=widths, causal=causal)
    x = _sequence(200, seed=1)
    with torch.no_grad():
        full = model(x[None])[0].numpy()
    lifter = M.StreamingLifter(model)
    assert lifter.output_lag == model.lookahead_frames
    outs = [lifter.push(k.numpy()) for k in x]
    rf = model.receptive_field
    assert all(o is None for o in outs[: rf - 1])
    stream = np.stack(outs[rf - 1 :])
    assert stream.shape == full.shape
    np.testing.assert_allclose(stream, full, atol=1e-5)
    # reset forgets history; push_batch gives the same outputs again
    lifter.reset()
    np.testing.assert_allclose(lifter.push_batch(x[: rf + 20].numpy()), full[:21], atol=1e-5)
    assert np.all(stream[:, 0] == 0)


def test_streaming_refresh_picks_up_new_weights():
    model = _model(widths=(3, 3))
    lifter = M.StreamingLifter(model)
    with torch.no_grad():
        model.shrink.bias += 0.3
    lifter.refresh()
    x = _sequence(12)
    with torch.no_grad():
        full = model(x[None])[0].numpy()
    np.testing.assert_allclose(lifter.push_batch(x.numpy()), full, atol=1e-5)


def test_naive_lifter_matches_streaming():
    model = _model(widths=(3, 3), causal=True)
    x = _sequence(20).numpy()
    naive, stream = M.NaiveLifter(model), M.StreamingLifter(model)
    for k in x:
        a, b = naive.push(k), stream.push(k)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_checkpoint_round_trip(tmp_path):
    model = _model(widths=(3, 3), causal=True)
    path = M.save_checkpoint(tmp_path / "sub" / "m.pt", model, {"name": "x", "mm": np.float32(2)})
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temp file left behind
    loaded, meta = M.load_checkpoint(path)
    assert not loaded.training
    assert meta["name"] == "x" and meta["mm"] == 2.0
    assert meta["format_version"] == M.FORMAT_VERSION and meta["num_joints"] == 17
    assert meta["config"] == model.config
    x = _sequence(30)[None]
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_checkpoint_errors(tmp_path):
    model = _model(widths=(3, 3))
    good = M.save_checkpoint(tmp_path / "good.pt", model, {})

    with pytest.raises(WeightsError, match="not found.*missing.pt"):
        M.load_checkpoint(tmp_path / "missing.pt")

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(WeightsError, match="truncated.pt: truncated"):
        M.load_checkpoint(truncated)

    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(WeightsError, match="not a distpose checkpoint"):
        M.load_checkpoint(other)

    payload = torch.load(good, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "v99.pt")
    with pytest.raises(WeightsError, match="format version 99"):
        M.load_checkpoint(tmp_path / "v99.pt")

    sixteen = M.TemporalModel(num_joints=16, filter_widths=(3, 3), channels=8)
    M.save_checkpoint(tmp_path / "j16.pt", sixteen, {})
    with pytest.raises(WeightsError, match="16 joints, expected 17"):
        M.load_checkpoint(tmp_path / "j16.pt")

    payload = torch.load(good, weights_only=True)
    payload["config"]["channels"] = 64  # the weights are 32 wide
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(WeightsError, match="mismatch.pt: weights do not match"):
        M.load_checkpoint(tmp_path / "mismatch.pt")


def test_load_pretrained_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(M, "PRETRAINED_DIR", tmp_path)
    M.save_checkpoint(tmp_path / "causal27.pt", _model(widths=(3, 3)), {"name": "c"})
    model, meta = M.load_pretrained("causal27")
    assert meta["name"] == "c" and model.receptive_field == 9
    with pytest.raises(WeightsError, match="no pretrained model 'nope'.*available: causal27"):
        M.load_pretrained("nope")


def test_resolve_device(monkeypatch):
    assert M.resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert M.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(DistposeError, match="CUDA requested but not available"):
        M.resolve_device("cuda")
    with pytest.raises(DistposeError, match="unknown device 'tpu'"):
        M.resolve_device("tpu")


def test_unseen_joints_are_encoded_as_a_seen_flag_and_never_nan():
    model = _model(widths=(3, 3), causal=True)
    assert model.in_features == 3 and model.config["in_features"] == 3
    x = _sequence(30)
    masked = x.clone()
    masked[:, [2, 3, 5, 6]] = float("nan")  # knees and ankles unseen
    enc = M.encode_keypoints(masked, 3)
    assert (enc[0, :, 2] == 0).tolist() == [j in (2, 3, 5, 6) for j in range(17)]
    assert torch.isfinite(enc).all()
    assert torch.all(enc[:, [2, 3, 5, 6]] == 0)  # coordinates zero, seen flag zero
    assert torch.all(enc[:, 0, 2] == 1) and torch.equal(enc[:, 0, :2], x[:, 0])
    with torch.no_grad():
        out_masked = model(masked[None])
        out_zeros = model(torch.where(torch.isnan(masked), torch.zeros(()), masked)[None])
    assert torch.isfinite(out_masked).all()
    # The flag reaches the network: unseen differs from "seen at (0, 0)".
    assert (out_masked - out_zeros).abs().max() > 1e-4
    # Streaming handles NaN the same way as the full window.
    lifter = M.StreamingLifter(model)
    np.testing.assert_allclose(lifter.push_batch(masked.numpy()), out_masked[0].numpy(), atol=1e-5)


def test_gradient_through_masked_input_is_finite():
    model = _model(widths=(3, 3), causal=True)
    x = _sequence(12).requires_grad_(True)
    mask = torch.zeros(12, 17, 1, dtype=torch.bool)
    mask[:, 4] = True
    model(torch.where(mask, torch.full((), float("nan")), x)[None]).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.all(x.grad[:, 4] == 0)


def test_two_feature_models_still_load_and_run(tmp_path):
    torch.manual_seed(0)
    old = M.TemporalModel(in_features=2, filter_widths=(3, 3), channels=16).eval()
    path = M.save_checkpoint(tmp_path / "old.pt", old)
    loaded, meta = M.load_checkpoint(path)
    assert loaded.in_features == 2 and meta["config"]["in_features"] == 2
    x = _sequence(9)
    x[:, 3] = float("nan")
    with torch.no_grad():
        out = loaded(x[None])
    assert torch.isfinite(out).all()


def test_input_lens_is_identity_at_zero_and_a_known_radial_map_otherwise():
    x = torch.tensor([[[0.5, 0.25], [float("nan"), 0.1], [0.0, 0.0]]])
    np.testing.assert_array_equal(M.undistort_screen(x, torch.zeros(5))[0, [0, 2]], x[0, [0, 2]])
    params = torch.tensor([0.2, -0.1, float(np.log(1.5)), 0.1, -0.05])
    u = M.undistort_screen(x, params)
    v = np.array([0.4, 0.3])  # (0.5, 0.25) - c
    r2 = v @ v
    expected = np.array([0.1, -0.05]) + 1.5 * v * (1 + 0.2 * r2 - 0.1 * r2**2)
    np.testing.assert_allclose(u[0, 0].numpy(), expected, rtol=1e-6)
    assert torch.isnan(u[0, 1]).all()
    # Gradients w.r.t. the lens never see the unseen joint's NaN.
    p = params.clone().requires_grad_(True)
    M.undistort_screen(x, p).nan_to_num().sum().backward()
    assert torch.isfinite(p.grad).all()


def test_input_lens_travels_in_the_state_dict_and_streaming(tmp_path):
    model = _model(widths=(3, 3), causal=True)
    x = _sequence(20)
    with torch.no_grad():
        plain = model(x[None])
        model.input_lens.copy_(torch.tensor([-0.3, 0.05, 0.1, 0.02, 0.0]))
        lensed = model(x[None])
        expected = model.__class__(**model.config)
        expected.load_state_dict(model.state_dict())
        expected.input_lens.zero_()
        direct = expected.eval()(M.undistort_screen(x, model.input_lens)[None])
    assert (lensed - plain).abs().max() > 1e-3
    np.testing.assert_allclose(lensed.numpy(), direct.numpy(), atol=1e-6)
    np.testing.assert_allclose(M.StreamingLifter(model).push_batch(x.numpy()), lensed[0].numpy(),
                               atol=1e-5)  # fmt: skip
    loaded, _ = M.load_checkpoint(M.save_checkpoint(tmp_path / "m.pt", model))
    assert torch.equal(loaded.input_lens, model.input_lens)
    # A checkpoint from before the input lens loads with the identity.
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    del payload["state_dict"]["input_lens"]
    torch.save(payload, tmp_path / "old.pt")
    assert not M.load_checkpoint(tmp_path / "old.pt")[0].input_lens.any()
