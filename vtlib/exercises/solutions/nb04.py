"""Reference solutions for notebook 04's exercises (attention from scratch)."""
from __future__ import annotations

import math

import torch
from einops import rearrange, repeat


# exercise 1
def same_position_mask(grid):
    """(N, N) bool: True where query and key share the spatial position (h, w); tokens in (t h w) order."""
    nt, nh, nw = grid
    pos = repeat(torch.arange(nh * nw), "s -> (t s)", t=nt)            # position of token i = i % (nh·nw)
    return pos[:, None] == pos[None, :]


def time_only_attention(q, k, v, grid):
    """q, k, v (B, heads, N, d) -> (B, heads, N, d): attention along time at every position, no mask."""
    b, h, nt = q.shape[0], q.shape[1], grid[0]

    def fold(x):                                                          # (B, h, N, d) -> (B·h·S, nt, d)
        return rearrange(x, "b h (t s) d -> (b h s) t d", t=nt)

    qf, kf, vf = fold(q), fold(k), fold(v)
    weights = (qf @ kf.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)   # (B·h·S, nt, nt)
    return rearrange(weights @ vf, "(b h s) t d -> b h (t s) d", b=b, h=h)


# exercise 2
def local_time_mask(grid, w):
    """(N, N) bool: |frame(query) - frame(key)| <= w, every position of those frames."""
    nt, nh, nw = grid
    frame = repeat(torch.arange(nt), "t -> (t s)", s=nh * nw)
    return (frame[:, None] - frame[None, :]).abs() <= w


# exercise 3
def crossover_tokens(dim, mlp_ratio):
    """Smallest N with 4·N²·D > 8·N·D² + 4·N·D·H, i.e. N > 2D + H (H = int(dim · mlp_ratio))."""
    return 2 * dim + int(dim * mlp_ratio) + 1


# exercise 4
def effective_keys(q, k, scale):
    """q (Nq, d), k (Nk, d) -> mean over queries of 1 / sum_j p_ij², p = softmax(scale · q kᵀ)."""
    p = (scale * q @ k.T).softmax(dim=-1)
    return (1 / (p * p).sum(-1)).mean().item()


def saturation_table(seed=0):
    """{d: (unscaled, scaled)} effective keys for 256 random queries and keys of width d."""
    g = torch.Generator().manual_seed(seed)
    table = {}
    for d in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        q, k = torch.randn(2, 256, d, generator=g)
        table[d] = (effective_keys(q, k, 1.0), effective_keys(q, k, 1 / math.sqrt(d)))
    return table


FEW_KEYS_WIDTH = 16        # unscaled: about 40 keys at d = 4, 12-15 at d = 8, about 5 at d = 16
SCALED_SHARE = 0.40        # scaled: about 100 of the 256 keys at every width from d = 16 on
