"""Tests for vtlib.masking: counts (floor rule), ratios, reproducibility, the tube property, errors."""
import math

import pytest
import torch
from einops import rearrange

from vtlib.errors import VtlibError
from vtlib.masking import (
    MASK_KINDS,
    actual_ratio,
    check_mask,
    frame_mask,
    make_mask,
    mask_table,
    mask_to_video,
    masked,
    num_masked,
    random_mask,
    tube_mask,
    visible,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---- counts and ratios ----------------------------------------------------------------------

def test_mask_table_matches_course_reference():
    rows = {(r["tokens"], r["ratio"]): (r["masked"], r["visible"]) for r in mask_table()}
    assert rows == {(49, 0.75): (36, 13), (49, 0.9): (44, 5), (49, 0.95): (46, 3),
                    (16, 0.75): (12, 4), (16, 0.9): (14, 2), (16, 0.95): (15, 1)}
    actual = {(r["tokens"], r["ratio"]): round(r["actual"], 3) for r in mask_table()}
    assert actual[(49, 0.9)] == 0.898 and actual[(16, 0.95)] == 0.938


@pytest.mark.parametrize("grid", [(7, 4, 4), (14, 4, 4), (7, 7, 7), (2, 3, 5)])
@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.75, 0.9, 0.95])
def test_counts_equal_per_sample_and_follow_floor_rule(grid, ratio):
    nt, nh, nw = grid
    expected = {"tube": int(ratio * nh * nw) * nt, "random": int(ratio * nt * nh * nw),
                "frame": int(ratio * nt) * nh * nw}
    for kind in MASK_KINDS:
        m = make_mask(kind, 5, grid, ratio, gen())
        assert m.shape == (5, math.prod(grid)) and m.dtype == torch.bool
        assert m.sum(1).tolist() == [expected[kind]] * 5
        assert num_masked(kind, grid, ratio) == expected[kind]
        assert actual_ratio(kind, grid, ratio) == pytest.approx(expected[kind] / math.prod(grid))
        assert actual_ratio(kind, grid, ratio) <= ratio + 1e-12


def test_frame_masking_at_875_on_seven_frames_hides_six():
    assert num_masked("frame", (7, 4, 4), 0.875) == 6 * 16
    assert round(actual_ratio("frame", (7, 4, 4), 0.875), 3) == 0.857


# ---- structure ------------------------------------------------------------------------------

def test_tube_property_same_spatial_mask_every_frame():
    m = rearrange(tube_mask(8, (7, 4, 4), 0.75, gen(3)), "b (t s) -> b t s", t=7)
    assert torch.equal(m, m[:, :1].expand_as(m))
    assert not torch.equal(m[0], m[1]) or not torch.equal(m[1], m[2])      # clips differ


def test_frame_mask_hides_whole_frames_and_random_does_not_tile():
    f = rearrange(frame_mask(6, (7, 4, 4), 0.5, gen(1)), "b (t s) -> b t s", t=7)
    assert torch.equal(f.all(-1), f.any(-1))                              # each frame all or nothing
    assert f.all(-1).sum(1).tolist() == [3] * 6
    r = rearrange(random_mask(16, (7, 4, 4), 0.75, gen(2)), "b (t s) -> b t s", t=7)
    assert not torch.equal(r, r[:, :1].expand_as(r))                      # not a tube


def test_random_mask_is_uniform_over_positions():
    m = random_mask(4000, (7, 4, 4), 0.75, gen(0)).float().mean(0)        # share masked per position
    assert (m - 0.75).abs().max() < 0.05


# ---- reproducibility ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", MASK_KINDS)
def test_seeded_generator_reproduces(kind):
    a = make_mask(kind, 4, (7, 4, 4), 0.9, gen(11))
    b = make_mask(kind, 4, (7, 4, 4), 0.9, gen(11))
    c = make_mask(kind, 4, (7, 4, 4), 0.9, gen(12))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(5)
    d = make_mask(kind, 4, (7, 4, 4), 0.9)
    torch.manual_seed(5)
    assert torch.equal(d, make_mask(kind, 4, (7, 4, 4), 0.9))            # global RNG without a generator


# ---- gather helpers -------------------------------------------------------------------------

def test_visible_and_masked_keep_order_and_partition():
    tokens = torch.arange(2 * 12 * 3, dtype=torch.float32).reshape(2, 12, 3)
    m = random_mask(2, (3, 2, 2), 0.5, gen(0))
    v, h = visible(tokens, m), masked(tokens, m)
    assert v.shape == (2, 6, 3) and h.shape == (2, 6, 3)
    for b in range(2):
        assert torch.equal(v[b], tokens[b][~m[b]]) and torch.equal(h[b], tokens[b][m[b]])
        idx = v[b, :, 0] // 3
        assert bool((idx[1:] > idx[:-1]).all())                          # (t h w) order kept


def test_mask_to_video_marks_tubelets():
    m = tube_mask(2, (7, 4, 4), 0.75, gen(0))
    vid = mask_to_video(m, (7, 4, 4), (4, 7, 7))
    assert vid.shape == (2, 1, 28, 28, 28)
    assert vid.mean().item() == pytest.approx(12 / 16)
    assert torch.equal(rearrange(vid[:, 0, ::4, ::7, ::7], "b t h w -> b (t h w)").bool(), m)


# ---- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5, True, "0.5"])
def test_bad_ratio(ratio):
    with pytest.raises(VtlibError, match="ratio"):
        tube_mask(2, (7, 4, 4), ratio)


def test_bad_arguments_name_themselves():
    with pytest.raises(VtlibError, match="kind"):
        make_mask("block", 2, (7, 4, 4), 0.5)
    with pytest.raises(VtlibError, match="grid"):
        tube_mask(2, (7, 4), 0.5)
    with pytest.raises(VtlibError, match="batch"):
        random_mask(0, (7, 4, 4), 0.5)
    with pytest.raises(VtlibError, match="generator"):
        frame_mask(2, (7, 4, 4), 0.5, generator=0)


def test_unequal_counts_refused_hf_issue_21484():
    m = torch.zeros(2, 8, dtype=torch.bool)
    m[0, :3] = True
    m[1, :4] = True
    with pytest.raises(VtlibError, match="same number of masked tokens"):
        check_mask(m)
    with pytest.raises(VtlibError, match="mask"):
        visible(torch.zeros(2, 8, 4), m)
    with pytest.raises(VtlibError, match="bool"):
        check_mask(m.float())
    with pytest.raises(VtlibError, match="columns"):
        visible(torch.zeros(2, 9, 4), torch.zeros(2, 8, dtype=torch.bool))
    with pytest.raises(VtlibError, match="at least one visible"):
        visible(torch.zeros(2, 8, 4), torch.ones(2, 8, dtype=torch.bool))
