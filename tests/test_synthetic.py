"""Synthetic motion videos: shapes, determinism, and the property the temporal lessons rely on."""
import time

import pytest
import torch

from vtlib.data import centroid_x, make_motion_videos, motion_x
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
