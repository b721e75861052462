"""Notebook 02's checks: the solutions pass, the stubs print "not yet", typical slips get their hint."""
import math

import torch
import torch.nn.functional as F
from einops import rearrange
from exercise_helpers import NOT_YET, last_line, stub

from vtlib.exercises import nb02
from vtlib.exercises.solutions import nb02 as sol
from vtlib.position import sincos_1d


# ----------------------------------------------------------------------------- exercise 1: 2D sin-cos
def test_sincos_2d_solution_stub_and_slips(capsys):
    assert nb02.check_sincos_2d(sol.sincos_2d)
    assert last_line(capsys) == "check_sincos_2d: correct"
    assert not nb02.check_sincos_2d(stub)
    assert NOT_YET in last_line(capsys)

    def swapped_halves(grid_hw, dim):
        t = sol.sincos_2d(grid_hw, dim)
        return torch.cat([t[:, dim // 2:], t[:, :dim // 2]], dim=1)     # [width | height]

    assert not nb02.check_sincos_2d(swapped_halves)
    assert "halves are swapped" in last_line(capsys)

    def column_major(grid_hw, dim):
        nh, nw = grid_hw
        return rearrange(sol.sincos_2d(grid_hw, dim), "(h w) d -> (w h) d", h=nh, w=nw)

    assert not nb02.check_sincos_2d(column_major)
    assert "(w h) order" in last_line(capsys)

    assert not nb02.check_sincos_2d(lambda grid_hw, dim: sincos_1d(grid_hw[0] * grid_hw[1], dim))
    out = last_line(capsys)
    assert "flattened index" in out and "hint:" in out

    assert not nb02.check_sincos_2d(lambda grid_hw, dim: sol.sincos_2d(grid_hw, 2 * dim))   # each block full width
    assert "expected shape" in last_line(capsys)


def test_sincos_2d_is_the_3d_code_of_a_one_frame_grid_without_its_time_block():
    from vtlib.position import sincos_3d

    two_d = sol.sincos_2d((3, 5), 12)                                   # blocks of 6 channels
    three_d = sincos_3d((1, 3, 5), 18)[:, 6:]                           # drop the time block
    assert torch.allclose(two_d, three_d)


# ----------------------------------------------------------------------------- exercise 2: shift matrix
def test_shift_matrix_solution_stub_and_slips(capsys):
    assert nb02.check_shift_matrix(sol.shift_matrix)
    assert last_line(capsys) == "check_shift_matrix: correct"
    assert not nb02.check_shift_matrix(stub)
    assert NOT_YET in last_line(capsys)

    assert not nb02.check_shift_matrix(lambda k, dim: sol.shift_matrix(k, dim).T)    # the textbook rotation
    assert "moves k slots back" in last_line(capsys)

    def per_channel_frequency(k, dim):
        R = torch.zeros(dim, dim)
        for i in range(dim // 2):
            b = k / 10000 ** (i / dim)
            R[2 * i:2 * i + 2, 2 * i:2 * i + 2] = torch.tensor([[math.cos(b), math.sin(b)],
                                                                [-math.sin(b), math.cos(b)]])
        return R

    assert not nb02.check_shift_matrix(per_channel_frequency)
    assert "10000^(-2i / dim)" in last_line(capsys)

    assert not nb02.check_shift_matrix(lambda k, dim: torch.eye(dim))
    out = last_line(capsys)
    assert "is not pos[n + k]" in out and "hint:" in out


def test_shift_matrix_moves_the_table():
    table = sincos_1d(60, 48).double()
    for k in (1, 7, 30):
        R = sol.shift_matrix(k, 48).double()
        assert torch.allclose(table[k:], table[:-k] @ R.T, atol=1e-5)


# ----------------------------------------------------------------------------- exercise 3: interpolate time
def test_interpolate_time_solution_stub_and_slips(capsys):
    assert nb02.check_interpolate_time(sol.interpolate_time)
    assert last_line(capsys) == "check_interpolate_time: correct"
    assert not nb02.check_interpolate_time(stub)
    assert NOT_YET in last_line(capsys)

    def default_corners(time, new_frames):
        x = rearrange(time, "t d -> 1 d t")
        return rearrange(F.interpolate(x, size=new_frames, mode="linear"), "1 d t -> t d")

    assert not nb02.check_interpolate_time(default_corners)
    assert "align_corners=False" in last_line(capsys)

    def nearest(time, new_frames):
        return time[torch.linspace(0, time.shape[0] - 1, new_frames).round().long()]

    assert not nb02.check_interpolate_time(nearest)
    out = last_line(capsys)
    assert "nearest row" in out and "hint:" in out

    def no_clamp(time, new_frames):                                     # reads one row past the end
        s = torch.linspace(0, time.shape[0] - 1, new_frames)
        lo = s.floor().long()
        return (1 - (s - lo))[:, None] * time[lo] + (s - lo)[:, None] * time[lo + 1]

    assert not nb02.check_interpolate_time(no_clamp)
    assert "raised IndexError" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 4: parameter counts
def test_position_params_solution_stub_and_slips(capsys):
    assert nb02.check_position_params(sol.position_params)
    assert last_line(capsys) == "check_position_params: correct"
    assert not nb02.check_position_params(stub)
    assert NOT_YET in last_line(capsys)

    def space_as_axes(frames, size, tubelet, dim):
        joint, _, axial = sol.position_params(frames, size, tubelet, dim)
        return joint, axial, axial

    assert not nb02.check_position_params(space_as_axes)
    assert "one row per patch" in last_line(capsys)

    assert not nb02.check_position_params(lambda *a: tuple(v // a[-1] for v in sol.position_params(*a)))
    assert "those are rows" in last_line(capsys)

    def with_cls(frames, size, tubelet, dim):
        joint, st, axial = sol.position_params(frames, size, tubelet, dim)
        return joint + dim, st, axial

    assert not nb02.check_position_params(with_cls)
    out = last_line(capsys)
    assert "no CLS here" in out and "hint:" in out

    assert not nb02.check_position_params(lambda *a: sol.position_params(*a)[:2])
    assert "three whole numbers" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 5: order blindness
def test_order_blindness_solution_stub_and_slips(capsys):
    assert nb02.check_order_blindness(sol.order_sensitive, sol.BLIND)
    assert last_line(capsys) == "check_order_blindness: correct"
    assert not nb02.check_order_blindness(stub, None)
    assert NOT_YET in last_line(capsys)

    def exact(model, clips, block):                                     # no tolerance: rounding counts as a change
        with torch.no_grad():
            return not torch.equal(model(clips), model(nb02.reverse_blocks(clips, block)))

    assert not nb02.check_order_blindness(exact, sol.BLIND)
    assert "compare with a tolerance" in last_line(capsys)

    def whole_flip(model, clips, block):                                # every frame reversed, not the blocks
        with torch.no_grad():
            return bool((model(clips) - model(clips.flip(2))).abs().max() > 1e-4)

    assert not nb02.check_order_blindness(whole_flip, sol.BLIND)
    assert "stay the same" in last_line(capsys)

    assert not nb02.check_order_blindness(sol.order_sensitive, None)
    assert "set blind" in last_line(capsys)
    assert not nb02.check_order_blindness(sol.order_sensitive, {("none", "mean"), ("none", "cls")})
    assert "space-only" in last_line(capsys)
    assert not nb02.check_order_blindness(sol.order_sensitive, {("none", "mean"), ("space", "mean")})
    assert "CLS model" in last_line(capsys)
    assert not nb02.check_order_blindness(sol.order_sensitive, sol.BLIND | {("learned", "mean")})
    out = last_line(capsys)
    assert "('learned', 'mean')" in out and "hint:" in out


def test_order_blindness_reference_is_none_and_space():
    assert set(nb02._blind_reference()) == sol.BLIND
