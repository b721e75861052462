"""Notebook 09's checks: the solutions pass, the stubs print "not yet", typical slips get their hint."""
import pytest
import torch
import torch.nn.functional as F
from exercise_helpers import NOT_YET, last_line, stub

from vtlib.exercises import nb09
from vtlib.exercises.solutions import nb09 as sol
from vtlib.tubes import Tube, tube_centres, tube_preset


# ----------------------------------------------------------------------------- exercise 1: fit a stride
def test_fit_stride_solution_stub_and_slips(capsys):
    assert nb09.check_fit_stride(sol.fit_stride)
    assert last_line(capsys) == "check_fit_stride: correct"
    assert nb09.check_fit_stride(nb09.fit_stride_reference)
    assert last_line(capsys) == "check_fit_stride: correct"
    assert not nb09.check_fit_stride(stub)
    assert NOT_YET in last_line(capsys)

    def unchecked(size, kernel, offset, n):                    # the largest stride that fits n windows, not checked
        room = size - offset - kernel
        return room // (n - 1) if room >= n - 1 >= 1 else None

    assert not nb09.check_fit_stride(unchecked)
    out = last_line(capsys)
    assert "no stride gives exactly n here: return None" in out and "hint:" in out

    def no_offset(size, kernel, offset, n):
        return sol.fit_stride(size, kernel, 0, n)

    assert not nb09.check_fit_stride(no_offset)
    assert "subtract the offset" in last_line(capsys)

    def n_gaps(size, kernel, offset, n):
        room = size - offset - kernel
        s = room // n
        return s if s >= 1 and room // s + 1 == n else None

    assert not nb09.check_fit_stride(n_gaps)
    assert "n - 1 gaps" in last_line(capsys)

    def smallest(size, kernel, offset, n):                     # a stride that works, not the largest
        room = size - offset - kernel
        return next((s for s in range(1, room + 1) if room // s + 1 == n), None)

    assert not nb09.check_fit_stride(smallest)
    assert "but so does the larger" in last_line(capsys)


def test_fit_stride_solution_agrees_with_brute_force_everywhere():
    for size in range(1, 40):
        for kernel in range(1, 9):
            for offset in range(0, 5):
                for n in range(2, 12):
                    assert sol.fit_stride(size, kernel, offset, n) == nb09.fit_stride_reference(size, kernel, offset, n)


# ----------------------------------------------------------------------------- exercise 2: dilated centres
def test_dilated_reference_is_tube_centres_without_dilation():
    for tube in tube_preset(28):
        want = tube_centres((28, 28, 28), tube)
        got = nb09.dilated_centres_reference((28, 28, 28), tube.kernel, tube.stride, tube.offset, (1, 1, 1))
        assert torch.allclose(got, want)


def test_dilated_reference_count_is_conv3d_with_dilation():
    x = torch.zeros(1, 1, 16, 16, 16)
    for k, s, o, d in (((2, 3, 3), (5, 4, 4), (1, 1, 1), (3, 2, 2)), ((4, 4, 4), (7, 14, 14), (0, 0, 0), (2, 2, 2))):
        y = F.conv3d(x[:, :, o[0]:, o[1]:, o[2]:], torch.zeros(1, 1, *k), stride=s, dilation=d)
        assert nb09.dilated_centres_reference((16, 16, 16), k, s, o, d).shape[0] == y[0, 0].numel()


def test_dilated_centres_solution_stub_and_slips(capsys):
    assert nb09.check_dilated_centres(sol.dilated_centres)
    assert last_line(capsys) == "check_dilated_centres: correct"
    assert not nb09.check_dilated_centres(stub)
    assert NOT_YET in last_line(capsys)

    def centre_ignores_dilation(shape, kernel, stride, offset, dilation):
        c = sol.dilated_centres(shape, kernel, stride, offset, dilation)
        return c - torch.tensor([(k - 1) * d / 2 - (k - 1) / 2 for k, d in zip(kernel, dilation)])

    assert not nb09.check_dilated_centres(centre_ignores_dilation)
    out = last_line(capsys)
    assert "ignores the dilation" in out and "hint:" in out

    def undilated(shape, kernel, stride, offset, dilation):    # the plain tube of section 4
        return tube_centres(shape, Tube(kernel, stride, offset))

    assert not nb09.check_dilated_centres(undilated)
    assert "undilated kernel" in last_line(capsys)

    def first_voxel(shape, kernel, stride, offset, dilation):
        c = sol.dilated_centres(shape, kernel, stride, offset, dilation)
        return c - torch.tensor([(k - 1) * d / 2 for k, d in zip(kernel, dilation)])

    assert not nb09.check_dilated_centres(first_voxel)
    assert "first voxel" in last_line(capsys)

    def k_times_d(shape, kernel, stride, offset, dilation):
        c = sol.dilated_centres(shape, kernel, stride, offset, dilation)
        return c + torch.tensor([d / 2 for d in dilation])      # k*d/2 instead of (k - 1)*d/2

    assert not nb09.check_dilated_centres(k_times_d)
    assert "k*d / 2 is off" in last_line(capsys)

    def xy_order(shape, kernel, stride, offset, dilation):     # meshgrid indexing='xy'
        axes = [o + torch.arange((D - o - (k - 1) * d - 1) // s + 1) * s + (k - 1) * d / 2
                for D, k, s, o, d in zip(shape, kernel, stride, offset, dilation)]
        return torch.stack(torch.meshgrid(*axes, indexing="xy"), dim=-1).reshape(-1, 3)

    assert not nb09.check_dilated_centres(xy_order)
    assert "wrong order" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 3: a closed gate
def test_closed_gate_solution_and_other_valid_gates(capsys):
    assert nb09.check_closed_gate(sol.gated_add)
    assert last_line(capsys) == "check_closed_gate: correct"
    # the old check rejected these correct gates: it also demanded tanh itself (z + tanh(0.3) c at 0.3),
    # which the exercise never asked for; any gate with the stated properties must pass
    assert nb09.check_closed_gate(lambda z, c, a: z + a / torch.sqrt(1 + a * a) * c)
    assert last_line(capsys) == "check_closed_gate: correct"
    assert nb09.check_closed_gate(lambda z, c, a: z + 2 / torch.pi * torch.atan(a) * c)
    assert last_line(capsys) == "check_closed_gate: correct"
    assert nb09.check_closed_gate(lambda z, c, a: z + torch.tanh(2 * a) * c)
    assert last_line(capsys) == "check_closed_gate: correct"


def test_closed_gate_stub_and_slips(capsys):
    assert not nb09.check_closed_gate(stub)
    assert NOT_YET in last_line(capsys)

    assert not nb09.check_closed_gate(lambda z, c, a: z + torch.sigmoid(a) * c)
    assert "half open" in last_line(capsys)

    assert not nb09.check_closed_gate(lambda z, c, a: z + a * c)
    out = last_line(capsys)
    assert "between -1 and 1" in out and "hint:" in out

    assert not nb09.check_closed_gate(lambda z, c, a: z + torch.tanh(a ** 2) * c)
    assert "no gradient at 0" in last_line(capsys)

    assert not nb09.check_closed_gate(lambda z, c, a: z + torch.tanh(a.mean()) * c)
    assert "every channel got the same gate" in last_line(capsys)

    assert not nb09.check_closed_gate(lambda z, c, a: z + torch.tanh(a) * z)
    assert "multiplies z" in last_line(capsys)

    assert not nb09.check_closed_gate(lambda z, c, a: z + 0.5 * torch.tanh(a) * c)
    assert "open fully" in last_line(capsys)

    assert not nb09.check_closed_gate(lambda z, c, a: z)
    assert "does not depend on alpha" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 4: tube design
@pytest.fixture(scope="module")
def gland():
    """Synthetic glands: one box per clip near the middle of the clip, as in AdrenalMNIST3D."""
    g = torch.Generator().manual_seed(0)
    vol = torch.zeros(40, 1, 28, 28, 28)
    for i, (t, h, w) in enumerate(torch.randint(9, 14, (40, 3), generator=g).tolist()):
        vol[i, 0, t:t + 7, h:h + 8, w:w + 8] = 1.0
    return vol


def test_tube_design_solution_stub_and_placeholder(capsys, gland):
    assert nb09.check_tube_design(sol.hit_rate, sol.MY_TUBES, gland)
    assert last_line(capsys) == "check_tube_design: correct"
    assert not nb09.check_tube_design(stub, None, gland)
    assert NOT_YET in last_line(capsys)
    assert not nb09.check_tube_design(sol.hit_rate, None, gland)
    assert "my_tubes is still None" in last_line(capsys)


def test_tube_design_rate_slips(capsys, gland):
    def per_tube(tubes, gland):
        rates = [sol.hit_rate([t], gland) for t in tubes]
        return sum(rates) / len(rates)

    assert not nb09.check_tube_design(per_tube, sol.MY_TUBES, gland)
    out = last_line(capsys)
    assert "weight each tube by its windows" in out and "hint:" in out

    def voxel_share(tubes, gland):
        shares = [F.avg_pool3d(gland[:, :, t.offset[0]:, t.offset[1]:, t.offset[2]:], t.kernel, t.stride)
                  for t in tubes]
        return (sum(s.sum() for s in shares) / sum(s.numel() for s in shares)).item()

    assert not nb09.check_tube_design(voxel_share, sol.MY_TUBES, gland)
    assert "max, not mean" in last_line(capsys)

    def no_offset(tubes, gland):
        return sol.hit_rate([Tube(t.kernel, t.stride) for t in tubes], gland)

    assert not nb09.check_tube_design(no_offset, sol.MY_TUBES, gland)
    assert "expected about" in last_line(capsys)


def test_tube_design_slips(capsys, gland):
    check = nb09.check_tube_design
    assert not check(sol.hit_rate, list(tube_preset(28)), gland)            # the preset: 76 tokens, few hits
    assert "of their windows touch the gland" in last_line(capsys)
    assert not check(sol.hit_rate, sol.MY_TUBES[:2], gland)
    assert "three different kernel shapes" in last_line(capsys)
    assert not check(sol.hit_rate, sol.MY_TUBES[1:] + [Tube((2, 7, 7), (28, 7, 7), (13, 7, 7))], gland)
    assert "2D patch" in last_line(capsys)
    assert not check(sol.hit_rate, sol.MY_TUBES + [Tube((1, 2, 2), (1, 4, 4))], gland)
    assert "tokens; stay at or below 76" in last_line(capsys)
    assert not check(sol.hit_rate, sol.MY_TUBES + [Tube((30, 2, 2), (1, 4, 4))], gland)
    assert "every tube must fit" in last_line(capsys)
