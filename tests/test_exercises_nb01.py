"""Notebook 01's checks: the solutions pass, the stubs print "not yet", typical slips get their hint."""
import math

import pytest
import torch
from einops import rearrange
from exercise_helpers import NOT_YET, last_line, stub
from torch import nn

from vtlib.exercises import nb01
from vtlib.exercises.solutions import nb01 as sol
from vtlib.tokens import FrameEmbed, TubeletEmbed, central_frame_2d, inflate_2d, valid_grid


# ----------------------------------------------------------------------------- exercise 1: VALID conv tokens
def test_valid_conv_solution_stub_and_slips(capsys):
    assert nb01.check_valid_conv_tokens(sol.valid_conv_tokens)
    assert last_line(capsys) == "check_valid_conv_tokens: correct"
    assert not nb01.check_valid_conv_tokens(stub)
    assert NOT_YET in last_line(capsys)

    def seen_share(shape, kernel, stride):
        tokens, ignored = sol.valid_conv_tokens(shape, kernel, stride)
        return tokens, 1 - ignored

    assert not nb01.check_valid_conv_tokens(seen_share)
    out = last_line(capsys)
    assert "the share of voxels the windows see" in out and "hint:" in out

    def no_stride(shape, kernel, stride):                      # kernel-sized windows side by side
        return math.prod(S // k for S, k in zip(shape, kernel)), sol.valid_conv_tokens(shape, kernel, stride)[1]

    assert not nb01.check_valid_conv_tokens(no_stride)
    assert "start every s voxels" in last_line(capsys)

    def no_plus_one(shape, kernel, stride):
        return (math.prod((S - k) // s for S, k, s in zip(shape, kernel, stride)),
                sol.valid_conv_tokens(shape, kernel, stride)[1])

    assert not nb01.check_valid_conv_tokens(no_plus_one)
    assert "one window too few" in last_line(capsys)
    assert not nb01.check_valid_conv_tokens(lambda shape, kernel, stride: (no_plus_one(shape, kernel, stride)[0], 0.1))
    assert "one window too few" in last_line(capsys)                          # named even with a wrong share too

    def windows_times_kernel(shape, kernel, stride):          # every window's voxels, overlaps counted twice
        n = [(S - k) // s + 1 for S, k, s in zip(shape, kernel, stride)]
        return math.prod(n), 1 - math.prod(m * k for m, k in zip(n, kernel)) / math.prod(shape)

    assert not nb01.check_valid_conv_tokens(windows_times_kernel)
    assert "count some voxels twice" in last_line(capsys)

    def no_gaps(shape, kernel, stride):                       # the last window's end, gaps between windows seen
        n = [(S - k) // s + 1 for S, k, s in zip(shape, kernel, stride)]
        return math.prod(n), 1 - math.prod((m - 1) * s + k for m, k, s in zip(n, kernel, stride)) / math.prod(shape)

    assert not nb01.check_valid_conv_tokens(no_gaps)
    assert "between two windows are ignored too" in last_line(capsys)

    assert not nb01.check_valid_conv_tokens(lambda shape, kernel, stride: 128)
    assert "should return two numbers" in last_line(capsys)


@pytest.mark.parametrize("case", [((16, 28, 28), (2, 7, 7), (2, 7, 7)), ((28, 28, 28), (4, 8, 8), (2, 6, 6)),
                                  ((32, 64, 64), (3, 16, 16), (4, 16, 16)), ((10, 12, 12), (4, 4, 4), (5, 5, 3))])
def test_valid_conv_reference_matches_conv3d_and_brute_force(case):
    shape, kernel, stride = case
    conv = nn.Conv3d(1, 1, kernel_size=kernel, stride=stride, bias=False)
    tokens, ignored = nb01.valid_conv_reference(shape, kernel, stride)
    assert conv(torch.zeros(1, 1, *shape)).numel() == tokens
    assert abs(ignored - (1 - nb01.covered_share(shape, kernel, stride))) < 1e-6
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.ones(1, 1, *shape, requires_grad=True)
    conv(x).sum().backward()                                   # a voxel no window touches gets no gradient
    assert abs(ignored - (x.grad == 0).float().mean().item()) < 1e-6
    if kernel == stride:
        assert abs(ignored - (1 - valid_grid(shape, kernel)[1])) < 1e-9


# ----------------------------------------------------------------------------- exercise 2: channels last
def test_channels_last_weight_solution_stub_and_slips(capsys):
    assert nb01.check_channels_last_weight(sol.channels_last_weight)
    assert last_line(capsys) == "check_channels_last_weight: correct"
    assert not nb01.check_channels_last_weight(stub)
    assert NOT_YET in last_line(capsys)

    assert not nb01.check_channels_last_weight(lambda w: w.flatten(1))      # patchify's order
    out = last_line(capsys)
    assert "(c t p1 p2) order" in out and "hint:" in out

    assert not nb01.check_channels_last_weight(lambda w: w.reshape(w.shape[0], *w.shape[2:], w.shape[1]).flatten(1))
    assert "relabels the axes" in last_line(capsys)

    assert not nb01.check_channels_last_weight(lambda w: rearrange(w, "d c t p1 p2 -> d (t p2 p1 c)"))
    assert "p1 (rows) and p2 (columns) are swapped" in last_line(capsys)

    assert not nb01.check_channels_last_weight(lambda w: w.permute(0, 2, 3, 4, 1).view(w.shape[0], -1))
    assert "RuntimeError" in last_line(capsys)                 # view of a permuted tensor


def test_channels_last_reference_reproduces_the_conv():
    conv = nn.Conv3d(3, 8, kernel_size=(2, 4, 4), stride=(2, 4, 4))
    x = torch.randn(2, 3, 4, 8, 8)
    tubes = rearrange(x, "b c (nt t) (nh p1) (nw p2) -> b (nt nh nw) (t p1 p2 c)", t=2, p1=4, p2=4)
    with torch.no_grad():
        want = conv(x).flatten(2).transpose(1, 2)
        got = tubes @ nb01.channels_last_reference(conv.weight).T + conv.bias
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- exercise 3: first-frame init
def _with_weight(make):
    """A learner's function that fills the Conv3d with make(conv2d.weight, t) and copies the bias."""
    def fn(conv2d, t):
        embed = TubeletEmbed(dim=conv2d.out_channels, tubelet=(t, *conv2d.kernel_size), in_channels=conv2d.in_channels)
        with torch.no_grad():
            embed.proj.weight.copy_(make(conv2d.weight, t))
            embed.proj.bias.copy_(conv2d.bias)
        return embed
    return fn


def test_first_frame_embed_solution_stub_and_slips(capsys):
    assert nb01.check_first_frame_embed(sol.first_frame_embed)
    assert last_line(capsys) == "check_first_frame_embed: correct"
    assert not nb01.check_first_frame_embed(stub)
    assert NOT_YET in last_line(capsys)

    assert not nb01.check_first_frame_embed(lambda conv2d, t: TubeletEmbed.from_2d(conv2d, t, init="central"))
    out = last_line(capsys)
    assert "central-frame" in out and "hint:" in out

    def last_frame(w2d, t):
        return central_frame_2d(w2d, t).roll(-(t // 2) - 1, 2)                 # the filter at index t - 1

    assert not nb01.check_first_frame_embed(_with_weight(last_frame))
    assert "LAST frame" in last_line(capsys)

    def no_bias(conv2d, t):
        embed = sol.first_frame_embed(conv2d, t)
        with torch.no_grad():
            embed.proj.bias.zero_()
        return embed

    assert not nb01.check_first_frame_embed(no_bias)
    assert "copy conv2d.bias" in last_line(capsys)

    assert not nb01.check_first_frame_embed(_with_weight(inflate_2d))
    assert "wrong values" in last_line(capsys)

    def frame_embed(conv2d, t):                                # the right tokens, but no tubelet embedding
        f = FrameEmbed(dim=conv2d.out_channels, patch=conv2d.kernel_size[0], in_channels=conv2d.in_channels,
                       frame_stride=t, offset=0)
        f.proj.load_state_dict(conv2d.state_dict())
        return f

    assert not nb01.check_first_frame_embed(frame_embed)
    assert "should return a vtlib.tokens.TubeletEmbed" in last_line(capsys)

    def edits_conv2d(conv2d, t):
        with torch.no_grad():
            conv2d.weight.mul_(0.5)
        return sol.first_frame_embed(conv2d, t)

    assert not nb01.check_first_frame_embed(edits_conv2d)
    assert "changed conv2d's weights" in last_line(capsys)


def test_first_frame_check_leaves_the_random_state_alone():
    torch.manual_seed(3)
    want = torch.rand(3)
    torch.manual_seed(3)
    nb01.check_first_frame_embed(stub)
    assert torch.equal(torch.rand(3), want)


# ----------------------------------------------------------------------------- exercise 4: empty tokens
@pytest.fixture(scope="module")
def measured():
    return sol.measure()


def test_empty_tokens_solution_stub_and_placeholders(measured, capsys):
    shares = list(measured.values())
    assert shares == sorted(shares, reverse=True)              # bigger tubelets, fewer empty tokens
    assert 0.8 < measured[(4, 7, 7)] < 0.9
    assert nb01.check_empty_tokens(sol.empty_share, measured, sol.gland_tokens(measured))
    assert last_line(capsys) == "check_empty_tokens: correct"
    as_tensors = {k: torch.tensor(v) for k, v in measured.items()}           # any number form, a whole count
    assert nb01.check_empty_tokens(sol.empty_share, as_tensors, round(sol.gland_tokens(measured)))
    assert last_line(capsys) == "check_empty_tokens: correct"
    assert not nb01.check_empty_tokens(stub, None, None)
    assert NOT_YET in last_line(capsys)
    assert not nb01.check_empty_tokens(sol.empty_share, None, None)
    assert last_line(capsys) == "check_empty_tokens: not yet - set shares first (it is still None)"
    assert not nb01.check_empty_tokens(sol.empty_share, measured, None)
    assert last_line(capsys) == "check_empty_tokens: not yet - set gland_tokens first (it is still None)"


def test_empty_tokens_slips(measured, capsys):
    gland = sol.gland_tokens(measured)

    def full_share(clips, tub):
        return 1 - sol.empty_share(clips, tub)

    assert not nb01.check_empty_tokens(full_share, measured, gland)
    out = last_line(capsys)
    assert "DO hold gland" in out and "hint:" in out

    assert not nb01.check_empty_tokens(lambda clips, tub: (clips == 0).float().mean().item(), measured, gland)
    assert "share of empty VOXELS" in last_line(capsys)

    def threshold(clips, tub):                                 # "gland" = a voxel above 0.5: right on 0/1 masks only
        return sol.empty_share((clips > 0.5).float(), tub)

    assert not nb01.check_empty_tokens(threshold, measured, gland)
    assert "not a threshold" in last_line(capsys)

    def per_clip(clips, tub):
        t, p1, p2 = tub
        tubes = rearrange(clips, "b c (nt t) (nh p1) (nw p2) -> b (nt nh nw) (c t p1 p2)", t=t, p1=p1, p2=p2)
        return (tubes.amax(-1) == 0).float().mean(1)

    assert not nb01.check_empty_tokens(per_clip, measured, gland)
    assert "expected one number, got a Tensor of 3 values" in last_line(capsys)

    def first_channel(clips, tub):
        return sol.empty_share(clips[:, :1], tub)

    assert not nb01.check_empty_tokens(first_channel, measured, gland)
    assert "not the share of tokens whose tubelet is all zeros" in last_line(capsys)

    assert not nb01.check_empty_tokens(sol.empty_share, {k: measured[k] for k in list(measured)[:3]}, gland)
    assert "one share for each tubelet" in last_line(capsys)
    assert not nb01.check_empty_tokens(sol.empty_share, {**measured, (4, 7, 7): 0.5}, gland)
    assert "is not the share measured on the training clips x" in last_line(capsys)
    assert not nb01.check_empty_tokens(sol.empty_share, measured, 112 - gland)
    assert "counts the EMPTY tokens" in last_line(capsys)
