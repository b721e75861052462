"""Notebook 04's checks: the solutions pass, the stubs print "not yet", typical slips get their hint."""
import math

import pytest
import torch
from einops import rearrange, repeat
from exercise_helpers import NOT_YET, last_line, stub

from vtlib.attention import attention_explicit
from vtlib.cost import block_flops
from vtlib.exercises import nb04
from vtlib.exercises.solutions import nb04 as sol


# ----------------------------------------------------------------------------- exercise 1: time only
def test_time_only_solution_stub_and_slips(capsys):
    assert nb04.check_time_only(sol.same_position_mask, sol.time_only_attention)
    assert last_line(capsys) == "check_time_only: correct"
    assert not nb04.check_time_only(stub, stub)
    assert NOT_YET in last_line(capsys)
    assert not nb04.check_time_only(sol.same_position_mask, stub)
    assert NOT_YET in last_line(capsys)

    def same_frame(grid):
        f = repeat(torch.arange(grid[0]), "t -> (t s)", s=grid[1] * grid[2])
        return f[:, None] == f[None, :]

    assert not nb04.check_time_only(same_frame, sol.time_only_attention)
    assert "same-FRAME mask" in last_line(capsys)

    def modulo_nt(grid):
        i = torch.arange(math.prod(grid)) % grid[0]
        return i[:, None] == i[None, :]

    assert not nb04.check_time_only(modulo_nt, sol.time_only_attention)
    out = last_line(capsys)
    assert "i % nt" in out and "hint:" in out
    assert not nb04.check_time_only(lambda grid: ~sol.same_position_mask(grid), sol.time_only_attention)
    assert "inverted" in last_line(capsys)

    def masked(q, k, v, grid):                                 # right values, all N² scores computed
        return attention_explicit(q, k, v, sol.same_position_mask(grid))

    assert not nb04.check_time_only(sol.same_position_mask, masked)
    assert "a mask still computes all N² scores" in last_line(capsys)

    def masked_sdpa(q, k, v, grid):                            # the fused kernel must not hide the N² work
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=sol.same_position_mask(grid))

    assert not nb04.check_time_only(sol.same_position_mask, masked_sdpa)
    assert "all N² scores" in last_line(capsys)

    def not_unfolded(q, k, v, grid):
        out = sol.time_only_attention(q, k, v, grid)
        return rearrange(out, "b h (t s) d -> b h (s t) d", t=grid[0])

    assert not nb04.check_time_only(sol.same_position_mask, not_unfolded)
    assert "(s t) order" in last_line(capsys)

    def per_frame(q, k, v, grid):
        f = lambda x: rearrange(x, "b h (t s) d -> (b h t) s d", t=grid[0])  # noqa: E731
        out, _ = attention_explicit(f(q), f(k), f(v))
        return rearrange(out, "(b h t) s d -> b h (t s) d", b=q.shape[0], h=q.shape[1])

    assert not nb04.check_time_only(sol.same_position_mask, per_frame)
    assert "space-only" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 2: local window
def test_local_time_mask_solution_stub_and_slips(capsys):
    assert nb04.check_local_time_mask(sol.local_time_mask)
    assert last_line(capsys) == "check_local_time_mask: correct"
    assert not nb04.check_local_time_mask(stub)
    assert NOT_YET in last_line(capsys)

    def token_band(grid, w):
        i = torch.arange(math.prod(grid))
        return (i[:, None] - i[None, :]).abs() <= w

    assert not nb04.check_local_time_mask(token_band)
    out = last_line(capsys)
    assert "band over token indices" in out and "hint:" in out

    def strict(grid, w):
        return sol.local_time_mask(grid, w - 1) if w > 0 else torch.zeros(math.prod(grid), math.prod(grid)).bool()

    assert not nb04.check_local_time_mask(strict)
    assert "<= w, not < w" in last_line(capsys)
    assert not nb04.check_local_time_mask(lambda grid, w: sol.local_time_mask(grid, w) & sol.same_position_mask(grid))
    assert "not only its own (h, w)" in last_line(capsys)

    def causal_window(grid, w):
        f = repeat(torch.arange(grid[0]), "t -> (t s)", s=grid[1] * grid[2])
        diff = f[:, None] - f[None, :]
        return (diff >= 0) & (diff <= w)

    assert not nb04.check_local_time_mask(causal_window)
    assert "only back in time" in last_line(capsys)
    assert not nb04.check_local_time_mask(lambda grid, w: sol.local_time_mask(grid, w).float()[None])
    assert "expected shape" in last_line(capsys)


def test_local_time_mask_w0_is_same_frame_and_large_w_is_full():
    grid = (4, 2, 3)
    f = repeat(torch.arange(4), "t -> (t s)", s=6)
    assert torch.equal(nb04.local_time_reference(grid, 0), f[:, None] == f[None, :])
    assert nb04.local_time_reference(grid, 3).all()


# ----------------------------------------------------------------------------- exercise 3: crossover
@pytest.mark.parametrize("dim,ratio", [(64, 4.0), (32, 2.0), (10, 2.55), (48, 1.0), (96, 8 / 3), (7, 0.5)])
def test_crossover_reference_is_where_the_core_passes_half(dim, ratio):
    n = nb04.crossover_reference(dim, ratio)
    core = lambda m: 4 * m * m * dim  # noqa: E731
    assert core(n) * 2 > block_flops(n, dim, ratio) and core(n - 1) * 2 <= block_flops(n - 1, dim, ratio)


def test_crossover_solution_stub_and_slips(capsys):
    assert nb04.check_crossover(sol.crossover_tokens)
    assert last_line(capsys) == "check_crossover: correct"
    assert not nb04.check_crossover(stub)
    assert NOT_YET in last_line(capsys)
    assert not nb04.check_crossover(lambda d, r: 2 * d + int(d * r))
    assert "exactly half" in last_line(capsys)
    assert not nb04.check_crossover(lambda d, r: 6 * d + 1)
    out = last_line(capsys)
    assert "mlp_ratio 4 only" in out and "hint:" in out
    assert not nb04.check_crossover(lambda d, r: 2 * d + d * r + 1)
    assert "int(dim * mlp_ratio)" in last_line(capsys)
    assert not nb04.check_crossover(lambda d, r: int(d * r) + 1)
    assert "projections" in last_line(capsys)
    assert not nb04.check_crossover(lambda d, r: 2 * d + 1)
    assert "the MLP" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 4: saturation
def test_softmax_saturation_solution_stub_and_slips(capsys):
    assert nb04.check_softmax_saturation(sol.effective_keys, sol.FEW_KEYS_WIDTH, sol.SCALED_SHARE)
    assert last_line(capsys) == "check_softmax_saturation: correct"
    assert not nb04.check_softmax_saturation(stub, None, None)
    assert NOT_YET in last_line(capsys)
    assert not nb04.check_softmax_saturation(sol.effective_keys, None, None)
    assert "still None" in last_line(capsys)

    def collision(q, k, scale):
        p = (scale * q @ k.T).softmax(-1)
        return (p * p).sum(-1).mean().item()

    assert not nb04.check_softmax_saturation(collision, 16, 0.4)
    out = last_line(capsys)
    assert "its inverse" in out and "hint:" in out

    def over_queries(q, k, scale):
        p = (scale * q @ k.T).softmax(0)
        return (1 / (p * p).sum(0)).mean().item()

    assert not nb04.check_softmax_saturation(over_queries, 16, 0.4)
    assert "over the keys" in last_line(capsys)

    def no_scale(q, k, scale):
        return sol.effective_keys(q, k, 1.0)

    assert not nb04.check_softmax_saturation(no_scale, 16, 0.4)
    assert "multiplied by scale" in last_line(capsys)

    def always_sqrt(q, k, scale):
        return sol.effective_keys(q, k, 1 / math.sqrt(q.shape[-1]))

    assert not nb04.check_softmax_saturation(always_sqrt, 16, 0.4)
    assert "not always 1/sqrt(d)" in last_line(capsys)

    assert not nb04.check_softmax_saturation(sol.effective_keys, 64, 0.4)       # "fewer than 2 keys" read
    assert "does not match the run" in last_line(capsys)
    assert not nb04.check_softmax_saturation(sol.effective_keys, 20, 0.4)
    assert "pick one of the widths" in last_line(capsys)
    assert not nb04.check_softmax_saturation(sol.effective_keys, 16, 102.0)     # a count, not a share
    assert "divide it by the 256 keys" in last_line(capsys)
    assert not nb04.check_softmax_saturation(sol.effective_keys, 16, 1.4 / 256)  # the unscaled run
    assert "unscaled run" in last_line(capsys)


def test_saturation_conclusions_hold_for_other_seeds():
    for seed in range(6):
        few, share = nb04.saturation_conclusions(seed)
        assert few == sol.FEW_KEYS_WIDTH and abs(share - sol.SCALED_SHARE) < 0.03
    table = sol.saturation_table(3)
    assert table[16][0] < 10 <= table[8][0] and abs(table[256][1] / 256 - nb04.saturation_conclusions()[1]) < 0.03


# ----------------------------------------------------------------------------- the cost the check assumes
def test_folded_time_attention_costs_the_folded_count():
    from torch.utils.flop_counter import FlopCounterMode

    grid, (b, h, d) = (4, 2, 3), (2, 3, 8)
    q = torch.randn(b, h, 24, d)
    counter = FlopCounterMode(display=False)
    with counter:
        sol.time_only_attention(q, q, q, grid)
    assert counter.get_total_flops() == 4 * b * h * 6 * 4 ** 2 * d          # nt² per position, not N²
