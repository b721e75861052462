"""Notebook 08's checks: the solutions pass, the stubs print "not yet", typical slips get their hint."""
import math

import pytest
import torch
from einops import rearrange, repeat
from exercise_helpers import NOT_YET, last_line, stub

from vtlib.exercises import nb08
from vtlib.exercises.solutions import nb08 as sol
from vtlib.masking import make_mask, masked, num_masked, random_mask
from vtlib.models.videomae import VideoMAE, patch_targets


# ----------------------------------------------------------------------------- exercise 1: visible count
def test_visible_count_solution_stub_and_slips(capsys):
    assert nb08.check_visible_count(sol.visible_count)
    assert last_line(capsys) == "check_visible_count: correct"
    assert not nb08.check_visible_count(stub)
    assert NOT_YET in last_line(capsys)

    def hidden(kind, grid, ratio):
        return num_masked(kind, grid, ratio)

    assert not nb08.check_visible_count(hidden)
    assert "HIDDEN tokens" in last_line(capsys)

    def rounded(kind, grid, ratio):
        nt, nh, nw = grid
        units, per = {"tube": (nh * nw, nt), "random": (nt * nh * nw, 1), "frame": (nt, nh * nw)}[kind]
        return nt * nh * nw - round(ratio * units) * per

    assert not nb08.check_visible_count(rounded)
    assert "rounds down" in last_line(capsys)

    def floor_over_clip(kind, grid, ratio):                    # every strategy counted like random masking
        n = math.prod(grid)
        return n - int(ratio * n)

    assert not nb08.check_visible_count(floor_over_clip)
    out = last_line(capsys)
    assert "tube masking draws the nh*nw positions" in out and "hint:" in out


def test_visible_count_accepts_other_ways_to_round_down(capsys):
    def by_floor(kind, grid, ratio):
        nt, nh, nw = grid
        units, per = {"tube": (nh * nw, nt), "random": (nt * nh * nw, 1), "frame": (nt, nh * nw)}[kind]
        return float(nt * nh * nw - math.floor(ratio * units) * per)

    assert nb08.check_visible_count(by_floor)
    assert last_line(capsys) == "check_visible_count: correct"


def test_visible_count_paper_setting():
    assert sol.visible_count("tube", (8, 14, 14), 0.9) == 8 * (196 - 176)


# ----------------------------------------------------------------------------- exercise 2: frame mask
def test_frame_mask_solution_stub_and_slips(capsys):
    assert nb08.check_frame_mask(sol.my_frame_mask)
    assert last_line(capsys) == "check_frame_mask: correct"
    assert nb08.check_frame_mask(lambda b, grid, ratio, g: make_mask("frame", b, grid, ratio, g))
    assert last_line(capsys) == "check_frame_mask: correct"
    assert not nb08.check_frame_mask(stub)
    assert NOT_YET in last_line(capsys)

    assert not nb08.check_frame_mask(lambda b, grid, ratio, g: ~sol.my_frame_mask(b, grid, ratio, g))
    assert "True must mean hidden" in last_line(capsys)

    assert not nb08.check_frame_mask(lambda b, grid, ratio, g: random_mask(b, grid, ratio, g))
    assert "whole frames" in last_line(capsys)

    def interleaved(batch, grid, ratio, generator):
        nt, nh, nw = grid
        chosen = torch.rand(batch, nt, generator=generator).argsort(1)[:, :int(ratio * nt)]
        frames = torch.zeros(batch, nt, dtype=torch.bool).scatter_(1, chosen, True)
        return repeat(frames, "b t -> b (s t)", s=nh * nw)      # frame index last: the wrong order

    assert not nb08.check_frame_mask(interleaved)
    assert "interleaved" in last_line(capsys)

    def same_for_all(batch, grid, ratio, generator):
        return sol.my_frame_mask(1, grid, ratio, generator).expand(batch, -1)

    assert not nb08.check_frame_mask(same_for_all)
    assert "every clip hides the same frames" in last_line(capsys)

    def global_rng(batch, grid, ratio, generator):            # ignores the generator it is given
        return sol.my_frame_mask(batch, grid, ratio, None)

    assert not nb08.check_frame_mask(global_rng)
    out = last_line(capsys)
    assert "the same seed must give the same mask" in out and "hint:" in out

    assert not nb08.check_frame_mask(lambda b, grid, ratio, g: sol.my_frame_mask(b, grid, ratio, g).float())
    assert "bool mask" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 3: HF targets
def hf_algorithm(x, tubelet):
    """VideoMAEForPreTraining's norm_pix_loss targets, step by step on (B, T, C, H, W) frames."""
    frames = rearrange(x, "b c t h w -> b t c h w")
    b, t, c, h, w = frames.shape
    ts, p = tubelet[0], tubelet[1]
    v = frames.reshape(b, t // ts, ts, c, h // p, p, w // p, p).permute(0, 1, 4, 6, 2, 5, 7, 3)
    v = v.reshape(b, (t // ts) * (h // p) * (w // p), ts * p * p, c)
    v = (v - v.mean(dim=-2, keepdim=True)) / (v.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
    return v.reshape(b, -1, ts * p * p * c)


def test_hf_reference_is_the_hf_algorithm():
    for x, tubelet in nb08._hf_cases():
        assert torch.allclose(nb08._hf_reference(x, tubelet), hf_algorithm(x, tubelet), atol=1e-5)


def test_hf_targets_solution_stub_and_slips(capsys):
    assert nb08.check_hf_targets(sol.hf_targets)
    assert last_line(capsys) == "check_hf_targets: correct"
    assert nb08.check_hf_targets(hf_algorithm)
    assert last_line(capsys) == "check_hf_targets: correct"
    assert not nb08.check_hf_targets(stub)
    assert NOT_YET in last_line(capsys)

    assert not nb08.check_hf_targets(lambda x, tubelet: patch_targets(x, tubelet))
    assert "channel LAST" in last_line(capsys)

    def all_channels(x, tubelet):
        t, p, q = tubelet
        v = rearrange(x, "b c (nt t) (nh p) (nw q) -> b (nt nh nw) (t p q c)", t=t, p=p, q=q)
        return (v - v.mean(-1, keepdim=True)) / (v.var(-1, unbiased=True, keepdim=True).sqrt() + 1e-6)

    assert not nb08.check_hf_targets(all_channels)
    assert "each channel of a tubelet has its own mean" in last_line(capsys)

    def biased(x, tubelet):
        t, p, q = tubelet
        v = rearrange(x, "b c (nt t) (nh p) (nw q) -> b (nt nh nw) (t p q) c", t=t, p=p, q=q)
        return ((v - v.mean(-2, keepdim=True)) / (v.var(-2, unbiased=False, keepdim=True).sqrt() + 1e-6)).flatten(-2)

    assert not nb08.check_hf_targets(biased)
    out = last_line(capsys)
    assert "unbiased std" in out and "hint:" in out

    def raw(x, tubelet):
        t, p, q = tubelet
        return rearrange(x, "b c (nt t) (nh p) (nw q) -> b (nt nh nw) (t p q c)", t=t, p=p, q=q)

    assert not nb08.check_hf_targets(raw)
    assert "raw voxels" in last_line(capsys)

    def swapped(x, tubelet):
        t, p, q = tubelet
        v = rearrange(sol.hf_targets(x, tubelet), "b n (t p q c) -> b n (t q p c)", t=t, p=p, q=q)
        return v

    assert not nb08.check_hf_targets(swapped)
    assert "rows and columns are swapped" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 4: decoder vs zero
@pytest.fixture(scope="module")
def small_mae_and_clips():
    torch.manual_seed(0)
    mae = VideoMAE(video_shape=(28, 28, 28), tubelet=(4, 7, 7), dim=24, depth=1, heads=2, decoder_dim=16,
                   decoder_heads=2).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(16, 1, 28, 28, 28)                          # a random box per clip: many constant tubelets
    for i, (t, h, w, n) in enumerate(torch.randint(0, 16, (16, 4), generator=g).tolist()):
        x[i, 0, t:t + 6 + n // 2, h:h + 5 + n // 3, w:w + 9] = 1.0
    return mae, x


def test_decoder_vs_zero_solution_stub_and_slips(capsys, small_mae_and_clips):
    mae, x = small_mae_and_clips
    ratios = sol.tube_sweep(mae, x)
    helps = ratios[0.5] < ratios[0.75]
    assert nb08.check_decoder_vs_zero(sol.decoder_vs_zero, ratios, helps, mae, x)
    assert last_line(capsys) == "check_decoder_vs_zero: correct"
    assert not nb08.check_decoder_vs_zero(stub, None, None, mae, x)
    assert NOT_YET in last_line(capsys)
    assert not nb08.check_decoder_vs_zero(sol.decoder_vs_zero, None, None, mae, x)
    assert "tube_ratios is still None" in last_line(capsys)
    assert not nb08.check_decoder_vs_zero(sol.decoder_vs_zero, ratios, None, mae, x)
    assert "more_visible_helps is still None" in last_line(capsys)

    def all_tubelets(mae, x, kind, ratio, seed):
        mask = make_mask(kind, len(x), mae.grid, ratio, torch.Generator().manual_seed(seed))
        with torch.no_grad():
            loss, _ = mae(x, mask)
        return (loss / patch_targets(x, mae.tubelet).pow(2).mean()).item()

    assert not nb08.check_decoder_vs_zero(all_tubelets, ratios, helps, mae, x)
    out = last_line(capsys)
    assert "HIDDEN tubelets only" in out and "hint:" in out

    def inverted(mae, x, kind, ratio, seed):
        return 1 / sol.decoder_vs_zero(mae, x, kind, ratio, seed)

    assert not nb08.check_decoder_vs_zero(inverted, ratios, helps, mae, x)
    assert "predict-zero / decoder" in last_line(capsys)

    def other_mask(mae, x, kind, ratio, seed):                 # a fresh mask instead of the given seed's
        return sol.decoder_vs_zero(mae, x, kind, ratio, seed + 100)

    assert not nb08.check_decoder_vs_zero(other_mask, ratios, helps, mae, x)
    assert "make_mask(" in last_line(capsys)

    seed0 = {r: sol.decoder_vs_zero(mae, x, "tube", r, 0) for r in ratios}
    assert any(abs(seed0[r] - ratios[r]) > 5e-3 for r in ratios)           # seeds differ enough to tell
    assert not nb08.check_decoder_vs_zero(sol.decoder_vs_zero, seed0, helps, mae, x)
    assert "seed 0 alone" in last_line(capsys)

    assert not nb08.check_decoder_vs_zero(sol.decoder_vs_zero, ratios, not helps, mae, x)
    assert "your own measurements give" in last_line(capsys)
    assert not nb08.check_decoder_vs_zero(sol.decoder_vs_zero, {0.5: 1.0}, helps, mae, x)
    assert "keys 0.5, 0.75 and 0.9" in last_line(capsys)


def test_decoder_vs_zero_reference_matches_the_notebooks_formula(small_mae_and_clips):
    mae, x = small_mae_and_clips
    mask = make_mask("tube", len(x), mae.grid, 0.75, torch.Generator().manual_seed(0))
    with torch.no_grad():
        loss, _ = mae(x, mask)
    zero = masked(patch_targets(x, mae.tubelet), mask).pow(2).mean()
    assert nb08.decoder_vs_zero(mae, x, "tube", 0.75, 0) == pytest.approx((loss / zero).item())
