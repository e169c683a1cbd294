"""Net2Net widening: a wider model that starts out computing what the trained one computes."""

import json

import numpy as np
import pytest
import torch
from test_model import _model, _sequence
from test_train import tiny_sets  # noqa: F401  (the module-scoped fixture)

from distpose_app.core.errors import DistposeError
from distpose_app.lifter import model as M
from distpose_app.lifter.widen import widen
from distpose_app.training.loop import TrainConfig, train


@pytest.mark.parametrize("causal", [False, True])
def test_widened_model_computes_the_same_function_dense_strided_and_streaming(causal):
    model = _model(widths=(3, 3, 3), causal=causal, channels=32)
    wide = widen(model, 80, noise=0.0).eval()
    assert wide.channels == 80 and wide.config["channels"] == 80
    assert wide.layers_conv[0].weight.shape == (80, 80, 3)
    x = _sequence(60)[None]
    x[0, 5, 3] = float("nan")  # an unseen joint takes the same path
    with torch.no_grad():
        ref, out = model(x), wide(x)
        strided = wide(x[:, : wide.receptive_field])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(strided[:, 0], ref[:, 0], atol=1e-5, rtol=0)
    stream = M.StreamingLifter(wide).push_batch(x[0].numpy())
    np.testing.assert_allclose(stream, ref[0].numpy(), atol=1e-5)
    # the original is untouched
    assert model.channels == 32 and model.expand_conv.weight.shape[0] == 32


def test_widening_noise_breaks_the_symmetry_but_keeps_the_output_close():
    model = _model(channels=32)
    wide = widen(model, 64, noise=1e-3, seed=1).eval()
    copies = wide.expand_conv.weight[32:]
    assert not torch.equal(copies, wide.expand_conv.weight[:32][: len(copies)])
    x = _sequence(40)[None]
    with torch.no_grad():
        gap = (wide(x) - model(x)).abs().max()
        scale = model(x).abs().mean()
    assert 0 < gap < 0.05 * scale
    # in training mode dropout gives each copy its own mask, so a copy and its original
    # learn apart even without the noise
    exact = widen(model, 64, noise=0.0).train()
    rows = exact.expand_conv.weight.detach()
    j = 40
    i = int(next(k for k in range(32) if torch.equal(rows[k], rows[j])))
    torch.manual_seed(0)
    exact(_sequence(27)[None].repeat(4, 1, 1, 1)).square().sum().backward()
    grad = exact.expand_conv.weight.grad
    assert grad is not None and not torch.allclose(grad[i], grad[j])


def test_widening_refuses_to_narrow_and_keeps_metadata(tmp_path):
    model = _model(channels=32)
    with pytest.raises(DistposeError, match="cannot widen"):
        widen(model, 16)
    model.input_lens.fill_(0.01)
    wide = widen(model, 48)
    assert torch.equal(wide.input_lens, model.input_lens)
    path = M.save_checkpoint(tmp_path / "w.pt", wide, {"name": "wide"})
    loaded, meta = M.load_checkpoint(path)
    assert meta["config"]["channels"] == 48
    x = _sequence(30)[None]
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), wide.eval()(x))


def test_training_continues_a_model_widened_and_resumes(tiny_sets, tmp_path):  # noqa: F811
    cfg = dict(filter_widths=(3,), chunk_frames=4, batch_windows=8, val_every=2)
    first = train(TrainConfig(mode="augmented", steps=2, channels=16, **cfg), tiny_sets,
                  tiny_sets, tmp_path / "a", progress=False)  # fmt: skip
    with pytest.raises(DistposeError, match="--widen"):
        TrainConfig(mode="augmented", widen=32, **cfg).validate()
    with pytest.raises(DistposeError, match="--widen"):
        TrainConfig(mode="meta", init=str(first), widen=32, **cfg).validate()
    wide = TrainConfig(mode="augmented", steps=2, init=str(first), widen=32, **cfg)
    best = train(wide, tiny_sets, tiny_sets, tmp_path / "b", progress=False)
    assert M.load_checkpoint(best)[0].channels == 32
    # What the run records is the network it trained, not the configuration's default width.
    recorded = json.loads((tmp_path / "b" / "config.json").read_text())
    assert (recorded["channels"], recorded["filter_widths"]) == (32, [3])
    assert M.load_checkpoint(best)[1]["train_config"]["channels"] == 32
    wide.steps = 4  # resuming rebuilds the widened architecture before loading last.pt
    best = train(wide, tiny_sets, tiny_sets, tmp_path / "b", progress=False)
    assert M.load_checkpoint(best)[1]["step"] in (2, 4)
