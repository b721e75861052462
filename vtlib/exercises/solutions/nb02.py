"""Reference solutions for notebook 02's exercises (positional encoding)."""
from __future__ import annotations

import math

import torch
from einops import rearrange, repeat

from vtlib.exercises.nb02 import reverse_blocks
from vtlib.position import sincos_1d


# exercise 1
def sincos_2d(grid_hw, dim):
    """(nh*nw, dim) in (h w) order: [1D code of h | 1D code of w], each dim // 2 wide."""
    nh, nw = grid_hw
    h = repeat(sincos_1d(nh, dim // 2), "h d -> h w d", w=nw)
    w = repeat(sincos_1d(nw, dim // 2), "w d -> h w d", h=nh)
    return rearrange(torch.cat([h, w], dim=-1), "h w d -> (h w) d")


# exercise 2
def shift_matrix(k, dim):
    """(dim, dim): sincos_1d(., dim)[n + k] = R @ sincos_1d(., dim)[n]; one rotation block per pair."""
    R = torch.zeros(dim, dim, dtype=torch.float64)
    for i in range(dim // 2):
        b = k / 10000 ** (2 * i / dim)                  # pair i turns by k * w_i
        c, s = math.cos(b), math.sin(b)
        # sin(a + b) = sin a cos b + cos a sin b;  cos(a + b) = cos a cos b - sin a sin b
        R[2 * i:2 * i + 2, 2 * i:2 * i + 2] = torch.tensor([[c, s], [-s, c]], dtype=torch.float64)
    return R.float()


# exercise 3
def interpolate_time(time, new_frames):
    """(T, D) -> (new_frames, D), linear in time, first and last rows kept."""
    T = time.shape[0]
    s = torch.linspace(0, T - 1, new_frames, dtype=torch.float64)         # where each new row reads
    lo = s.floor().long().clamp(max=T - 1)
    hi = (lo + 1).clamp(max=T - 1)
    frac = (s - lo).to(time.dtype)[:, None]
    return (1 - frac) * time[lo] + frac * time[hi]


# exercise 4
def position_params(frames, size, tubelet, dim):
    """(joint, space_time, axial) learned parameters for frames x size x size clips and this tubelet."""
    nt, nh, nw = frames // tubelet[0], size // tubelet[1], size // tubelet[2]
    return nt * nh * nw * dim, (nt + nh * nw) * dim, (nt + nh + nw) * dim


# exercise 5
def order_sensitive(model, clips, block):
    """True if reversing the blocks of `block` frames changes the logits."""
    with torch.no_grad():
        return bool((model(clips) - model(reverse_blocks(clips, block))).abs().max() > 1e-4)


BLIND = {("none", "mean"), ("none", "cls"), ("space", "mean"), ("space", "cls")}
