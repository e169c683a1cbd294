"""Data-parallel training: under torchrun (two CPU processes, gloo), one step's gradients equal
a single process's on the same global batch (dropout off; batch norm synchronised)."""

import copy
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    sys.path.insert(0, {tests!r})
    from poses import Sequence, walking
    from distpose_app.training import distributed
    from distpose_app.data.synthetic import build_synthetic
    from distpose_app.data.lens_sampler import LensSampler
    from distpose_app.lifter.model import TemporalModel
    from distpose_app.training.loop import TrainConfig, supervised_backward
    from distpose_app.training.windows import WindowSampler

    torch.set_num_threads(1)
    rank, world = distributed.init_from_env()
    seqs = [Sequence(f"dataset-2_walk_normal_{{i:03d}}", walking(90, i)) for i in range(4)]
    data = build_synthetic(seqs, None, views_per_sequence=1, seed=0, progress=False)
    torch.manual_seed(0)
    net = TemporalModel(filter_widths=(3, 3), channels=16, dropout=0.0, causal=True)
    config = TrainConfig(mode="augmented", filter_widths=(3, 3), channels=16, dropout=0.0,
                         batch_windows=8, chunk_frames=4)
    window = net.receptive_field - 1 + config.chunk_frames
    sampler = WindowSampler(data.positions_3d, data.sequence, data.intrinsics,
                            data.image_size, window, np.random.default_rng(3))
    model = net
    if world > 1:
        distributed.convert_batch_norm(net)
        model = torch.nn.parallel.DistributedDataParallel(net)
    supervised_backward(model, sampler, LensSampler(), config, window, rank, world)
    if rank == 0:
        grads = {{n: p.grad.numpy() for n, p in net.named_parameters()}}
        grads.update({{"buf." + n: b.numpy() for n, b in net.named_buffers()}})
        np.savez({out!r}, **grads)
    distributed.shutdown()
    """
)


def _run(tmp_path, name, world):
    import os

    script = tmp_path / f"{name}.py"
    out = tmp_path / f"{name}.npz"
    tests = os.path.dirname(__file__)
    script.write_text(SCRIPT.format(tests=tests, out=str(out)))
    if world == 1:
        cmd = [sys.executable, str(script)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={world}", str(script)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(out))


@pytest.mark.slow
def test_two_process_gradients_equal_single_process(tmp_path):
    single = _run(tmp_path, "single", 1)
    double = _run(tmp_path, "double", 2)
    assert single.keys() == double.keys()
    for key in single:
        np.testing.assert_allclose(double[key], single[key], rtol=2e-4, atol=1e-6, err_msg=key)
    # The check has teeth: some gradients are far from zero.
    assert max(np.abs(v).max() for k, v in single.items() if not k.startswith("buf.")) > 1e-3


def test_distributed_batch_norm_is_plain_batch_norm_in_one_process():
    from distpose_app.training.distributed import DistributedBatchNorm1d, convert_batch_norm

    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Conv1d(4, 6, 3), torch.nn.BatchNorm1d(6))
    converted = convert_batch_norm(copy.deepcopy(plain))
    assert isinstance(converted[1], DistributedBatchNorm1d)
    assert type(plain[1]) is torch.nn.BatchNorm1d
    x = torch.randn(5, 4, 10)
    assert torch.allclose(converted(x), plain(x))
    assert torch.allclose(converted[1].running_var, plain[1].running_var)
    assert converted.state_dict().keys() == plain.state_dict().keys()
