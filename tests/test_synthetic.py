"""Synthetic motion videos: shapes, determinism, and the property the temporal lessons rely on."""
import time

import pytest
import torch

from vtlib.data import centroid_x, make_motion_videos, make_order_videos, motion_x, order_video_events
from vtlib.errors import VtlibError


def auc(score, y):
    """Rank AUC of a 1-D score for binary labels (ties count half)."""
    pos, neg = score[y == 1], score[y == 0]
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).float().mean() + 0.5 * (diff == 0).float().mean()).item()


def test_shape_dtype_balance_and_determinism():
    x, y = make_motion_videos(64, seed=1)
    assert x.shape == (64, 1, 28, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert y.sum() == 32 and x.min() >= 0 and x.max() <= 1
    x2, y2 = make_motion_videos(64, seed=1)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, make_motion_videos(64, seed=2)[0])
    assert make_motion_videos(8, frames=16, size=64)[0].shape == (8, 1, 16, 64, 64)


def test_thousands_of_clips_in_seconds():
    t0 = time.perf_counter()
    make_motion_videos(2000)
    assert time.perf_counter() - t0 < 15  # generous: shared 2-core CI; typically ~1 s


def fill(frame):
    """Mass over (widest row x tallest column): 1 for a square, about 0.79 for a disk; wrap-proof."""
    f = (frame > 0.5).float()
    return f.sum((1, 2)) / (f.sum(2).amax(1) * f.sum(1).amax(1)).clamp_min(1)


def test_direction_task_order_blind_statistics_are_at_chance():
    x, y = make_motion_videos(4000, task="direction", seed=0)
    c = centroid_x(x)                                   # (N, T) positions on the wrapped frame
    stats = {"first-frame position": c[:, 0], "middle-frame position": c[:, 14],
             "last-frame position": c[:, -1], "mean intensity": x.mean(dim=(1, 2, 3, 4)),
             "first-frame mass": x[:, 0, 0].sum((1, 2)), "first-frame shape": fill(x[:, 0, 0])}
    for name, stat in stats.items():
        assert abs(auc(stat, y) - 0.5) < 0.04, name     # any single frame / order-blind: no signal
    assert auc(-motion_x(x), y) > 0.99                  # order-aware: separates perfectly


def test_shape_task_is_solvable_from_a_single_frame():
    x, y = make_motion_videos(2000, task="shape", seed=0)
    assert auc(fill(x[:, 0, 14]), y) > 0.9              # one middle frame is enough
    assert abs(auc(motion_x(x), y) - 0.5) < 0.05        # and motion says nothing


@pytest.mark.parametrize("kw, arg", [({"n": 0}, "n"), ({"task": "speed"}, "task"),
                                     ({"size": 8}, "size"), ({"noise": -1.0}, "noise")])
def test_bad_inputs(kw, arg):
    args = {"n": 4, **kw}
    with pytest.raises(VtlibError, match=f"^{arg}: expected"):
        make_motion_videos(**args)


# ------------------------------------------------------------------------------ long videos: order task
def test_order_videos_shape_balance_determinism_and_speed():
    t0 = time.perf_counter()
    x, y = make_order_videos(1024, seed=3)
    assert time.perf_counter() - t0 < 15                 # generous: shared 2-core CI; typically ~1 s
    assert x.shape == (1024, 1, 256, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert y.sum() == 512 and x.min() >= 0 and x.max() <= 1
    x2, y2 = make_order_videos(1024, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x[:8], make_order_videos(8, seed=4)[0])
    assert make_order_videos(6, frames=64, size=12, gap=20)[0].shape == (6, 1, 64, 12, 12)


def test_order_label_is_the_order_of_two_events_far_apart():
    n, frames, gap, lead = 600, 256, 128, 16
    x, y = make_order_videos(n, frames=frames, noise=0.0, seed=1)
    times = order_video_events(n, frames=frames, seed=1)                  # (n, 2): blob, bar
    assert torch.equal((times[:, 1] < times[:, 0]).long(), y)            # label 1: the bar comes first
    first, second = times.min(1).values, times.max(1).values
    assert (second - first >= gap).all() and (first >= lead).all() and (second + 4 <= frames - lead).all()
    lit = (x[:, 0] > 0.5).flatten(2).sum(-1)                              # (n, T) bright pixels per frame
    assert set(lit.unique().tolist()) == {0, 9, 16}                      # empty, a 3 x 3 blob, a 2-row bar
    t = torch.arange(frames)
    blob_on = (t >= times[:, :1]) & (t < times[:, :1] + 4)
    assert torch.equal(lit == 9, blob_on) and (lit > 0).sum(1).eq(8).all()  # 4 frames each
    assert torch.equal(make_order_videos(n, frames=frames, seed=1)[1], y)  # noise does not move the events


def test_order_task_is_invisible_to_order_blind_statistics():
    x, y = make_order_videos(4000, frames=128, seed=0)
    lit = (x[:, 0] > 0.6).flatten(2).sum(-1).float()                      # (N, T)
    stats = {"mean intensity": x.mean(dim=(1, 2, 3, 4)), "frame 40": x[:, 0, 40].mean((1, 2)),
             "bright pixels, whole clip": lit.sum(1), "brightest frame": lit.amax(1)}
    for name, stat in stats.items():
        assert abs(auc(stat, y) - 0.5) < 0.04, name
    t = torch.arange(128).float()
    bar_time = ((lit >= 12) * t).sum(1) / (lit >= 12).sum(1)
    blob_time = ((lit > 4) & (lit < 12)).float().mul(t).sum(1) / ((lit > 4) & (lit < 12)).sum(1)
    assert auc(blob_time - bar_time, y) > 0.99                           # order-aware: separates


@pytest.mark.parametrize("kw, arg", [({"n": 0}, "n"), ({"frames": 100, "gap": 128}, "frames"), ({"gap": 2}, "gap"),
                                     ({"size": 3}, "size"), ({"noise": -0.1}, "noise"), ({"lead": -1}, "lead"),
                                     ({"event_frames": 0}, "event_frames"), ({"frames": 64, "gap": 60}, "frames")])
def test_order_bad_inputs(kw, arg):
    args = {"n": 4, **kw}
    with pytest.raises(VtlibError, match=f"^{arg}: expected"):
        make_order_videos(**args)
    with pytest.raises(VtlibError, match=f"^{arg}: expected"):
        order_video_events(**args)


@pytest.mark.parametrize("kwargs,name", [(dict(frames=1), "frames"), (dict(noise=float("nan")), "noise"),
                                         (dict(noise=float("inf")), "noise"), (dict(noise=-0.1), "noise"),
                                         (dict(noise="0.05"), "noise")])
def test_motion_videos_refuse_settings_that_would_mean_nothing(kwargs, name):
    with pytest.raises(VtlibError, match=f"^{name}:"):
        make_motion_videos(8, **kwargs)


def test_shape_task_allows_a_single_frame():
    x, y = make_motion_videos(8, task="shape", frames=1)
    assert x.shape == (8, 1, 1, 28, 28)
