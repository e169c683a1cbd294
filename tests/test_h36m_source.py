"""Human3.6M as a training source: reading the file safely, world -> camera views, joining sources.
The real file is used when ../shared is present; the rest runs on a small generated file."""

import numpy as np
import pytest
from poses import walking

from distpose_app.core import paths
from distpose_app.core.errors import DataFormatError, DistposeError
from distpose_app.data import h36m, training_sets


def _fake_file(path, subjects=(1, 8)):
    frames, seqs, names, subj, actions = [], [], [], [], []
    for k, s in enumerate(subjects):
        world = walking(100, 0.2 * k)[:, :, [0, 2, 1]]  # y up -> z up (mirror is fine here)
        frames.append(world)
        seqs.append(np.full(100, k))
        names.append(f"S{s}/Walking 1")
        subj.append(s)
        actions.append("Walking")
    cams = [(s, c) for s in subjects for c in range(4)]
    R = np.array([[[1, 0, 0], [0, 0, -1], [0, 1, 0]]] * len(cams), float)  # looks along +y
    T = np.array([[0.5 * c, -4.0, 1.0] for _, c in cams])
    np.savez(
        path,
        world_3d=np.concatenate(frames).astype(np.float32),
        sequence=np.concatenate(seqs).astype(np.int32),
        sequence_names=np.array(names), subject=np.array(subj, np.int32),
        action=np.array(actions), camera_subject=np.array([s for s, _ in cams], np.int32),
        camera_id=np.array([str(c) for _, c in cams]), camera_R=R, camera_T=T,
        camera_f=np.full((len(cams), 2), 1000.0), camera_c=np.full((len(cams), 2), 500.0),
        camera_k=np.zeros((len(cams), 3)), camera_p=np.zeros((len(cams), 2)),
        camera_size=np.full((len(cams), 2), 1000.0), fps=np.float32(50),
    )  # fmt: skip
    return path


def test_camera_views_put_the_subject_in_front_of_each_camera(tmp_path):
    data = h36m.load_h36m(_fake_file(tmp_path / "h.npz"))
    views = h36m.camera_views(data, (1,), fps=30.0)
    assert len(views.names) == 4 and views.names[0] == "S1/Walking 1/cam0"
    assert views.fps == 30.0 and len(views) == 4 * 60  # 100 frames at 50 fps -> 60 at 30
    assert (views.positions_3d[..., 2] > 2.0).all()  # z forward: in front of the camera
    np.testing.assert_array_equal(views.intrinsics[0], [1000, 1000, 500, 500])


def test_mocap_sequences_are_y_up_and_resampled(tmp_path):
    data = h36m.load_h36m(_fake_file(tmp_path / "h.npz"))
    (seq,) = h36m.mocap_sequences(data, (8,), fps=25.0)
    assert seq.name == "S8/Walking 1" and seq.dataset == "h36m" and seq.style == "S8"
    assert seq.positions.shape == (50, 17, 3)
    world = data.world_3d[data.sequence == 1][::2]
    np.testing.assert_allclose(seq.positions[:, :, 1], world[:, :, 2], atol=1e-5)  # height


def test_test_subjects_and_malformed_files_are_refused(tmp_path):
    with pytest.raises(DataFormatError, match="not the training subjects"):
        h36m.load_h36m(_fake_file(tmp_path / "test.npz", subjects=(1, 9)))
    data = h36m.load_h36m(_fake_file(tmp_path / "h.npz"))
    with pytest.raises(DistposeError, match="not training subjects"):
        h36m.camera_views(data, (11,), fps=30.0)
    bad = dict(np.load(tmp_path / "h.npz"))
    bad["camera_R"] = bad["camera_R"][:, :2]
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(DataFormatError, match="camera_R"):
        h36m.load_h36m(tmp_path / "bad.npz")
    with pytest.raises(DistposeError, match="not found"):
        h36m.load_h36m(tmp_path / "missing.npz")


def test_sources_join_with_renumbered_views(tmp_path):
    data = h36m.load_h36m(_fake_file(tmp_path / "h.npz"))
    a = training_sets.as_training_set(h36m.camera_views(data, (1,), 30.0), "h36m-cameras")
    b = training_sets.as_training_set(h36m.camera_views(data, (8,), 30.0), "h36m-cameras")
    joined = training_sets.concat_sets([a, b])
    assert len(joined.names) == 8 and joined.sequence.max() == 7
    np.testing.assert_array_equal(joined.sequence[len(a) :], b.sequence + 4)
    assert joined.describe() == {"h36m-cameras": {"views": 8, "frames": len(a) + len(b)}}


@pytest.mark.skipif(not paths.DEFAULT_H36M.is_file(), reason="../shared Human3.6M file absent")
def test_the_shared_file_holds_only_training_subjects():
    data = h36m.load_h36m(paths.DEFAULT_H36M)
    assert set(np.unique(data.subject).tolist()) == set(h36m.ALL_SUBJECTS)
    views = h36m.camera_views(data, (h36m.VALIDATION_SUBJECT,), fps=30.0)
    assert all(n.startswith("S8/") for n in views.names)
    assert (views.positions_3d[..., 2] > 1.0).all()


def test_windows_are_drawn_by_source_weight(tmp_path):
    from distpose_app.training.windows import WindowSampler

    data = h36m.load_h36m(_fake_file(tmp_path / "h.npz"))
    a = training_sets.as_training_set(h36m.camera_views(data, (1,), 30.0), "a")
    b = training_sets.as_training_set(h36m.camera_views(data, (8,), 30.0), "b")
    b.positions_3d = b.positions_3d[:100]  # source b: far fewer frames
    b.sequence = b.sequence[:100]
    joined = training_sets.concat_sets([a, b])
    s = WindowSampler(joined.positions_3d, joined.sequence, joined.intrinsics,
                      joined.image_size, 10, np.random.default_rng(0))  # fmt: skip
    s.weight_sources(joined.source, {"a": 0.25, "b": 0.75})
    starts = s.random_starts(20000)
    share_b = (joined.source[joined.sequence[starts]] == "b").mean()
    assert share_b == pytest.approx(0.75, abs=0.02)
    # Meta-learning tasks follow the same shares (a task's windows share one sequence).
    tasks = [s.task_starts(1, 2, 2) for _ in range(4000)]
    share_b = np.mean([joined.source[joined.sequence[sup[0]]] == "b" for sup, _ in tasks])
    assert share_b == pytest.approx(0.75, abs=0.03)
    for sup, qry in tasks[:200]:
        assert len(set(joined.sequence[np.concatenate([sup, qry])])) == 1
    with pytest.raises(DistposeError, match="do not cover"):
        s.weight_sources(joined.source, {"a": 1.0})
    # b's 100 frames hold windows of 60 frames but no task (two halves of 60): all-b tasks fail
    long = WindowSampler(joined.positions_3d, joined.sequence, joined.intrinsics,
                         joined.image_size, 60, np.random.default_rng(0))  # fmt: skip
    long.weight_sources(joined.source, {"a": 0.0, "b": 1.0})
    assert (joined.source[joined.sequence[long.random_starts(100)]] == "b").all()
    with pytest.raises(DistposeError, match="long enough for a meta task"):
        long.task_starts(1, 2, 2)


def test_content_weights_reweight_views_within_their_source(tmp_path):
    """A view-name pattern makes its windows W times as likely within the source; the source
    shares stay as given, and without source weights they stay the sources' window counts."""
    from distpose_app.data.training_sets import content_factors
    from distpose_app.training.windows import WindowSampler

    data = h36m.load_h36m(_fake_file(tmp_path / "h.npz"))
    a = training_sets.as_training_set(h36m.camera_views(data, (1,), 30.0), "a")
    b = training_sets.as_training_set(h36m.camera_views(data, (8,), 30.0), "b")
    joined = training_sets.concat_sets([a, b])
    names = joined.names
    assert content_factors(names, {"cam0$": 4.0, "^S1/": 0.5})[0] == pytest.approx(2.0)
    s = WindowSampler(joined.positions_3d, joined.sequence, joined.intrinsics,
                      joined.image_size, 10, np.random.default_rng(0))  # fmt: skip
    cam0 = np.array([n.endswith("cam0") for n in names])
    plain_a = (joined.source[joined.sequence[s.random_starts(20000)]] == "a").mean()
    s.weight_sources(joined.source, None, names, {"cam0$": 4.0})
    starts = s.random_starts(40000)
    view = joined.sequence[starts]
    in_a = joined.source[view] == "a"
    assert in_a.mean() == pytest.approx(plain_a, abs=0.02)
    # a's windows: cam0 views are 4x as likely per window as its other views
    windows = np.bincount(joined.sequence)[joined.source == "a"]  # frames ~ windows per view
    cam0_a = cam0[joined.source == "a"]
    expected = 4 * windows[cam0_a].sum() / (4 * windows[cam0_a].sum() + windows[~cam0_a].sum())
    assert cam0[view[in_a]].mean() == pytest.approx(expected, abs=0.03)
    with pytest.raises(DistposeError, match="no window"):
        s.weight_sources(joined.source, {"a": 0.5, "b": 0.5}, names, {"": 0.0})
    with pytest.raises(DistposeError, match="pattern"):
        content_factors(names, {"(": 2.0})


def test_content_weight_option_parses_patterns_with_equals_signs_and_rejects_bad_ones():
    from distpose_app.cli.train import _content_weights

    assert _content_weights(["_(walk|run)=0.3", "a=b=2"]) == {"_(walk|run)": 0.3, "a=b": 2.0}
    assert _content_weights(None) == {}
    for bad in (["walk"], ["=2"], ["walk=-1"], ["walk=inf"]):
        with pytest.raises(DistposeError, match="--content-weight"):
            _content_weights(bad)
