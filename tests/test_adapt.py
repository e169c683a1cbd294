import numpy as np
import pytest
import torch
from poses import symmetric_pose

from distpose_app.adapt import iso as adapt
from distpose_app.core.errors import DistposeError
from distpose_app.lifter import losses
from distpose_app.lifter.model import TemporalModel


def test_iso_losses_zero_for_rigid_symmetric_sequence():
    pose = symmetric_pose()
    angles = np.linspace(0, 1.5, 12)
    seq = np.stack([pose @ np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0],
                                     [-np.sin(a), 0, np.cos(a)]]).T for a in angles])  # fmt: skip
    x = torch.tensor(seq[None], dtype=torch.float64)
    assert float(losses.symmetry_loss(x)) == pytest.approx(0.0, abs=1e-9)
    assert float(losses.consistency_loss(x)) == pytest.approx(0.0, abs=1e-9)
    assert float(losses.iso_loss(x, x, anchor_weight=1.0)) == pytest.approx(0.0, abs=1e-9)


def test_iso_losses_hand_computed():
    a, b = symmetric_pose(), symmetric_pose()
    a[13, 1] += 0.06  # left forearm 0.31 in frame 0 (right stays 0.25)
    b[13, 1] += 0.02  # 0.27 in frame 1
    x = torch.tensor(np.stack([a, b])[None], dtype=torch.float64)
    # symmetry: forearm pair off by 0.06 and 0.02, other five pairs 0; mean over 2 x 6 entries
    assert float(losses.symmetry_loss(x)) == pytest.approx((0.06 + 0.02) / 12)
    # consistency: the left forearm deviates 0.02 from its mean in both frames; 2 x 16 entries
    assert float(losses.consistency_loss(x)) == pytest.approx(2 * 0.02 / 32)
    shifted = x + torch.tensor([0.0, 0.0, 0.3], dtype=torch.float64)
    assert float(losses.mpjpe_loss(shifted, x)) == pytest.approx(0.3)


def _tiny_model(seed=0) -> TemporalModel:
    torch.manual_seed(seed)
    model = TemporalModel(filter_widths=(3, 3), channels=16, dropout=0.0, causal=True)
    return model.eval()


def _keypoints(frames=90, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None] / 30.0
    base = rng.uniform(-0.5, 0.5, size=(1, 17, 2))
    return (base + 0.05 * np.sin(2 * np.pi * 0.5 * t + rng.uniform(0, 6, (1, 17, 2)))).astype(
        np.float32
    )


def test_iso_adapt_moves_only_selected_parameters_and_reports_statistics():
    model = _tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = adapt.iso_adapt(model, _keypoints(), adapt.IsoConfig(steps=5, lr=1e-3, params="bn"))
    # The model passed in is untouched.
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert set(res.before) >= {"symmetry_mm", "consistency_pct", "mean_bone_mm"}
    assert res.steps == 5
    if res.accepted:
        changed = [k for k in before if not torch.equal(before[k], res.state_dict[k])]
        assert changed and all(".bn" in k or "_bn" in k or "norm" in k for k in changed), changed
        assert res.after["loss_after_mm"] < res.after["loss_before_mm"]


def test_guard_reverts_a_degenerate_adaptation():
    # With no anchor and every weight free, the trivial minimiser of symmetry + consistency
    # (every bone shrinking to zero) is easy to reach: the guard must refuse it.
    # (A random tiny model whose bones do collapse under this config: seed 3.)
    model = _tiny_model(3)
    config = adapt.IsoConfig(steps=60, lr=1e-2, params="all", anchor_weight=0.0)
    res = adapt.iso_adapt(model, _keypoints(seed=3), config)
    assert not res.accepted
    assert "degenerate" in res.reason
    for k, v in model.state_dict().items():
        assert torch.equal(res.state_dict[k], v)


def test_iso_adapt_cancel_and_refusals():
    model = _tiny_model()
    res = adapt.iso_adapt(model, _keypoints(), should_cancel=lambda: True)
    assert not res.accepted and res.reason == "cancelled"
    with pytest.raises(DistposeError, match="too few frames"):
        adapt.iso_adapt(model, _keypoints(frames=adapt.MIN_ADAPT_FRAMES - 1))
    with pytest.raises(DistposeError, match="unknown parameter group"):
        adapt.iso_adapt(model, _keypoints(), adapt.IsoConfig(params="everything"))
    # NaN frames (no person) are dropped before counting.
    kp = _keypoints(frames=adapt.MIN_ADAPT_FRAMES + 5)
    kp[:10] = np.nan
    with pytest.raises(DistposeError, match="too few frames"):
        adapt.iso_adapt(model, kp)


def test_progress_is_reported_every_step():
    seen = []
    adapt.iso_adapt(_tiny_model(), _keypoints(), adapt.IsoConfig(steps=4),
                    progress=lambda i, n: seen.append((i, n)))  # fmt: skip
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_fewshot_reduces_labelled_error():
    model = _tiny_model()
    kp = _keypoints()
    target = np.tile(symmetric_pose(), (len(kp), 1, 1))
    res = adapt.fewshot_adapt(model, kp, target, np.arange(0, 90, 3), steps=30, lr=1e-2,
                              params="all")  # fmt: skip
    assert res.accepted
    assert res.before["check_frames"] == 6 and res.after["fit_frames"] == 24
    assert res.after["check_mpjpe_mm"] < 0.5 * res.before["check_mpjpe_mm"]
    # The held-out frames decide: when they contradict the fitted ones, the fit is refused.
    labelled = np.arange(0, 90, 3)
    contradicting = target.copy()
    contradicting[labelled[4::5]] *= -1
    bad = adapt.fewshot_adapt(model, kp, contradicting, labelled, steps=30, lr=1e-2, params="all")
    assert not bad.accepted and "held-out" in bad.reason
    assert all(torch.equal(bad.state_dict[k], v) for k, v in model.state_dict().items())


def test_lift_sequence_keeps_frame_count():
    model = _tiny_model()
    from distpose_app.lifter.inference import lift_sequence

    out = lift_sequence(model, _keypoints(frames=40))
    assert out.shape == (40, 17, 3)
    assert np.isfinite(out).all()


def test_adapt_model_lens_returns_the_fit_as_the_input_lens_buffer(monkeypatch):
    from distpose_app.adapt import lens_fit as lens_adapt

    model = _tiny_model()
    model.input_lens.fill_(0.05)  # an earlier adaptation: discarded, the buffer is raw 2D
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fitted = lens_adapt.ScreenLens(k1=0.4, scale=1.1)
    seen_lens = []

    def fake_lens_adapt(work, kp, config, cancel=None, progress=None, pictures=None):
        seen_lens.append(work.input_lens.clone())
        return lens_adapt.LensAdaptResult(fitted, True, "adapted", 1.0, 0.5, 3, 0.01)

    monkeypatch.setattr(lens_adapt, "lens_adapt", fake_lens_adapt)
    res = adapt.adapt_model(model, _keypoints(), "lens")
    assert res.accepted and not seen_lens[0].any()
    np.testing.assert_allclose(res.state_dict["input_lens"], fitted.params_tensor())
    for k, v in model.state_dict().items():  # the model passed in is untouched
        assert torch.equal(v, before[k])
    assert all(torch.equal(res.state_dict[k], before[k]) for k in before if k != "input_lens")
    assert res.config["lens_adapt"]["lens"]["k1"] == 0.4

    rejected = lens_adapt.LensAdaptResult(lens_adapt.ScreenLens(), False, "no gain", 1, 1, 3, 0)
    monkeypatch.setattr(lens_adapt, "lens_adapt", lambda *a, **k: rejected)
    res = adapt.adapt_model(model, _keypoints(), "lens")
    assert not res.accepted and res.reason == "no gain"
    assert all(torch.equal(res.state_dict[k], before[k]) for k in before)


def test_adapt_model_dispatches_iso_and_rejects_unknown_methods():
    model = _tiny_model()
    config = adapt.IsoConfig(steps=2, lr=1e-3, params="bn")
    res = adapt.adapt_model(model, _keypoints(), config)
    assert res.steps == 2 and res.config["params"] == "bn"
    with pytest.raises(DistposeError, match="unknown adaptation"):
        adapt.adapt_model(model, _keypoints(), "magic")


def test_lens_adapt_config_reads_the_models_calibrated_bias():
    from distpose_app.adapt.lens_fit import LensAdaptConfig

    model = _tiny_model()
    assert LensAdaptConfig.for_model(model).k1_offset == LensAdaptConfig().k1_offset
    model.metadata = {"lens_adapt": {"k1_offset": 0.17}}
    assert LensAdaptConfig.for_model(model).k1_offset == 0.17


def test_process_offers_exactly_the_adaptations():
    import argparse

    from distpose_app.cli import process

    parser = argparse.ArgumentParser()
    process.add_arguments(parser)
    action = next(a for a in parser._actions if a.dest == "adapt")
    assert tuple(action.choices) == adapt.ADAPTATIONS and action.const == adapt.DEFAULT_ADAPTATION
