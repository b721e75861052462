"""Notebook 00's checks: the solutions pass, the stubs print "not yet", typical slips get their hint."""
import numpy as np
import pytest
import torch
from einops import rearrange
from exercise_helpers import NOT_YET, last_line, stub

from vtlib.data import motion_x
from vtlib.exercises import nb00
from vtlib.exercises.solutions import nb00 as sol


# ----------------------------------------------------------------------------- exercise 1: balanced accuracy
@pytest.fixture(scope="module")
def baccs():
    return sol.balanced_accuracies()


@pytest.mark.parametrize("form", [float, np.float64, np.float32, np.array, torch.tensor,
                                  lambda v: torch.tensor([v]), lambda v: np.array([[v]])],
                         ids=["float", "np.float64", "np.float32", "0-d array", "0-d tensor", "1-element tensor",
                              "1-element array"])
def test_balanced_accuracy_accepts_any_number_form(form, baccs, capsys):
    assert nb00.check_balanced_accuracy(*(form(v) for v in baccs))
    assert last_line(capsys) == "check_balanced_accuracy: correct"


def test_balanced_accuracy_placeholder_types_and_slips(baccs, capsys):
    majority_bacc, volume_bacc = baccs
    assert majority_bacc == 0.5 and 0.5 < volume_bacc < 0.6
    assert not nb00.check_balanced_accuracy(None, None)
    assert last_line(capsys) == "check_balanced_accuracy: not yet - set majority_bacc first (it is still None)"
    assert not nb00.check_balanced_accuracy(majority_bacc, None)
    assert last_line(capsys) == "check_balanced_accuracy: not yet - set volume_bacc first (it is still None)"

    ref = nb00.balanced_reference()
    assert not nb00.check_balanced_accuracy(ref["majority"]["accuracy"], volume_bacc)   # the 0.768 of section 2
    out = last_line(capsys)
    assert "majority_bacc = 0.768: that is the plain accuracy" in out and "hint:" in out
    assert not nb00.check_balanced_accuracy(majority_bacc, torch.tensor(ref["volume"]["accuracy"]))
    assert "volume_bacc = 0.782: that is the plain accuracy" in last_line(capsys)
    assert not nb00.check_balanced_accuracy(majority_bacc, ref["volume"]["recall 1"])
    assert "recall of hyperplasia alone" in last_line(capsys)
    assert not nb00.check_balanced_accuracy(majority_bacc, ref["volume"]["train"])
    assert "on the train split" in last_line(capsys)
    assert not nb00.check_balanced_accuracy(100 * majority_bacc, volume_bacc)
    assert "not a percentage" in last_line(capsys)
    assert not nb00.check_balanced_accuracy(majority_bacc, 0.6)
    assert "not the test balanced accuracy of clf.predict" in last_line(capsys)

    # a wrong TYPE is named as such
    assert not nb00.check_balanced_accuracy(torch.full((298,), 0.5), volume_bacc)
    assert "expected one number, got a Tensor of 298 values" in last_line(capsys)
    assert not nb00.check_balanced_accuracy("0.5", volume_bacc)
    assert "got the text '0.5'" in last_line(capsys)
    assert not nb00.check_balanced_accuracy([0.5], volume_bacc)
    assert "expected one number, got a list" in last_line(capsys)
    assert not nb00.check_balanced_accuracy(True, volume_bacc)
    assert "got a bool" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 2: frame strip
def test_frame_strip_solution_stub_and_slips(capsys):
    assert nb00.check_frame_strip(sol.frame_strip)
    assert last_line(capsys) == "check_frame_strip: correct"
    assert not nb00.check_frame_strip(stub)
    assert NOT_YET in last_line(capsys)

    def down_the_columns(x, ncols):
        return rearrange(x, "b c (k r) h w -> b c (r h) (k w)", k=ncols)

    assert not nb00.check_frame_strip(down_the_columns)
    out = last_line(capsys)
    assert "time runs down the columns" in out and "hint:" in out

    def reshaped(x, ncols):
        B, C, T, H, W = x.shape
        return x.reshape(B, C, T // ncols * H, ncols * W)

    assert not nb00.check_frame_strip(reshaped)
    assert "reshape keeps the memory order" in last_line(capsys)

    def interleaved(x, ncols):
        return rearrange(x, "b c (r k) h w -> b c (h r) (w k)", k=ncols)

    assert not nb00.check_frame_strip(interleaved)
    assert "interleaved" in last_line(capsys)

    def rows_for_cols(x, ncols):
        return rearrange(x, "b c (k r) h w -> b c (k h) (r w)", k=ncols)

    assert not nb00.check_frame_strip(rows_for_cols)
    assert "frames per row gives 2 rows" in last_line(capsys)

    def channels_mixed(x, ncols):                              # (c r h): the channels stacked as more rows
        return rearrange(x, "b c (r k) h w -> b (c r h) (k w)", k=ncols)[:, None]

    assert not nb00.check_frame_strip(channels_mixed)
    assert "expected shape (2, 3, 8, 15)" in last_line(capsys)


def test_frame_strip_reference_puts_frame_t_at_its_cell():
    x = torch.randn(2, 3, 6, 4, 5)
    strip = nb00.frame_strip_reference(x, 3)
    for t in range(6):
        r, k = divmod(t, 3)
        assert torch.equal(strip[:, :, r * 4:(r + 1) * 4, k * 5:(k + 1) * 5], x[:, :, t])


# ----------------------------------------------------------------------------- exercise 3: two frames
@pytest.fixture(scope="module")
def measured():
    return sol.measure()


def test_two_frame_motion_solution_and_stub(measured, capsys):
    assert measured[1] == 1.0 and measured[18] == 1.0 and measured[23] < 0.9 and measured[27] < 0.5
    assert sol.FIRST_FAILING_GAP == next(k for k in sol.GAPS if measured[k] < 0.9)
    assert nb00.check_two_frame_motion(sol.two_frame_score, measured, sol.FIRST_FAILING_GAP, sol.MAX_MOVE_PX)
    assert last_line(capsys) == "check_two_frame_motion: correct"
    assert nb00.check_two_frame_motion(sol.two_frame_score, {k: torch.tensor(v) for k, v in measured.items()},
                                       np.int64(23), 13)
    assert last_line(capsys) == "check_two_frame_motion: correct"
    assert not nb00.check_two_frame_motion(stub, None, None, None)
    assert NOT_YET in last_line(capsys)
    assert not nb00.check_two_frame_motion(sol.two_frame_score, None, None, None)
    assert last_line(capsys) == "check_two_frame_motion: not yet - set aucs first (it is still None)"
    assert not nb00.check_two_frame_motion(sol.two_frame_score, measured, None, None)
    assert last_line(capsys) == "check_two_frame_motion: not yet - set first_failing_gap first (it is still None)"


def test_two_frame_motion_feature_slips(measured, capsys):
    args = (measured, sol.FIRST_FAILING_GAP, sol.MAX_MOVE_PX)

    def whole_clip(x, k):                                      # the section-4 feature: reads every frame
        return -motion_x(x)

    assert not nb00.check_two_frame_motion(whole_clip, *args)
    assert "frames other than 0 and 1 change" in last_line(capsys)

    def wrong_sign(x, k):
        return -sol.two_frame_score(x, k)

    assert not nb00.check_two_frame_motion(wrong_sign, *args)
    assert "flip its sign" in last_line(capsys)

    def plain_mean(x, k):                                      # the mean column, blind to the wrap-around
        profile = x[:, 0, [0, k]].sum(2)                       # (N, 2, W)
        cx = (profile * torch.arange(x.shape[-1])).sum(-1) / profile.sum(-1)
        return cx[:, 0] - cx[:, 1]

    assert not nb00.check_two_frame_motion(plain_mean, *args)
    out = last_line(capsys)
    assert "crosses the frame's edge" in out and "hint:" in out

    def per_clip_list(x, k):
        return sol.two_frame_score(x, k)[:10]

    assert not nb00.check_two_frame_motion(per_clip_list, *args)
    assert "should return 200 scores" in last_line(capsys)


def test_two_frame_motion_measurement_and_conclusion_slips(measured, capsys):
    f, gap, px = sol.two_frame_score, sol.FIRST_FAILING_GAP, sol.MAX_MOVE_PX
    assert not nb00.check_two_frame_motion(f, {k: 1 - v for k, v in measured.items()}, gap, px)
    assert "but your score gives AUC" in last_line(capsys)
    assert not nb00.check_two_frame_motion(f, {k: measured[k] for k in (1, 4, 9)}, gap, px)
    assert "one AUC for each k" in last_line(capsys)
    assert not nb00.check_two_frame_motion(f, measured, 27, px)
    assert "below chance (0.5)" in last_line(capsys)
    assert not nb00.check_two_frame_motion(f, measured, 18, px)
    assert "is 23" in last_line(capsys)
    assert not nb00.check_two_frame_motion(f, measured, gap, 28)
    out = last_line(capsys)
    assert "28 - d pixels to the left" in out and "hint:" in out
