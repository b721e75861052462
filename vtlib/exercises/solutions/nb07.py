"""Reference solutions for notebook 07's exercises (TimeSformer)."""
from __future__ import annotations

import torch
from einops import rearrange

from vtlib.models.timesformer import GROUPINGS


# exercise 1
def time_window_mask(grid, w):
    """(1 + T*N, 1 + T*N) bool: a patch sees its own position in the frames at most w away; no CLS."""
    T, nh, nw = grid
    N = nh * nw
    n = torch.arange(T * N)
    frame, place = n // N, n % N                                          # (t h w) order
    mask = torch.zeros(1 + T * N, 1 + T * N, dtype=torch.bool)
    mask[1:, 1:] = (place[:, None] == place[None, :]) & ((frame[:, None] - frame[None, :]).abs() <= w)
    return mask


# exercise 2
def score_entries(attention, T, nh, nw):
    """Score entries of one block and one head for one clip (the reference code's CLS handling)."""
    n = T * nh * nw
    counts = {"joint": [1], "space": [T], "divided": [nh * nw, T], "local_global": [4, 8],
              "axial": [nh * nw, T * nh, T * nw]}[attention]              # groups G of each sub-attention
    total = 0
    for i, G in enumerate(counts):
        L = n // G + (i == len(counts) - 1)                               # the CLS copy joins the last one
        total += G * L * L
    return total


# exercise 3
def group_hwt(x, name, grid):
    """Patch tokens (B, T*N, D) stored (h w t) -> the groups vtlib's group() makes from (t h w) tokens."""
    T, nh, nw = grid
    right = GROUPINGS[name].split("->")[1]
    return rearrange(x, f"b (h w t) d -> {right}", t=T, h=nh)


# exercise 4
@torch.no_grad()
def order_change(model, clip, order):
    """max |logits(clip) - logits(clip with its frames in `order`)|."""
    return (model(clip) - model(clip[:, :, list(order)])).abs().max().item()


# Temporal attention is blind to order on its own (it treats the frames of a position as a set, and the CLS
# averages over frames); only a non-zero time embedding labels the frames.
ANSWERS = {"divided": False, "divided_random_fc": False, "divided_random_time": True, "joint": False}
