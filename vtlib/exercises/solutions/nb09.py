"""Reference solutions for notebook 09's exercises (sparse video tubes, TubeViT)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vtlib.tubes import Tube


# exercise 1
def fit_stride(size, kernel, offset, n):
    """The largest stride giving exactly n >= 2 windows along one axis, or None if none does."""
    room = size - offset - kernel                      # where the window starts can still move
    if room < 0 or n < 2 or room < n - 1:
        return None
    s = room // (n - 1)                                # n windows leave n - 1 gaps of at least s
    return s if room // s + 1 == n else None           # e.g. room 3, n 3: stride 1 gives 4, stride 2 gives 2


# exercise 2
def dilated_centres(video_shape, kernel, stride, offset, dilation):
    """(N, 3) centres (t, h, w) of a dilated tube's tokens, rows in (t h w) order."""
    axes = []
    for d, k, s, o, dil in zip(video_shape, kernel, stride, offset, dilation):
        span = (k - 1) * dil + 1                       # voxels from the first to the last one read
        n = (d - o - span) // s + 1
        axes.append(o + torch.arange(n) * s + (k - 1) * dil / 2)
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)


# exercise 3
def gated_add(z, contribution, alpha):
    """One tanh gate per channel: z exactly at alpha = 0, z + contribution for large alpha."""
    return z + torch.tanh(alpha) * contribution        # alpha (D,) broadcasts over (B, N, D)


# exercise 4
def hit_rate(tubes, gland):
    """Share of all the windows of ``tubes``, over every clip, that hold at least one gland voxel."""
    hits = windows = 0
    for tube in tubes:
        ot, oh, ow = tube.offset
        touched = F.max_pool3d(gland[:, :, ot:, oh:, ow:], tube.kernel, tube.stride)   # 1 where any voxel is gland
        hits, windows = hits + touched.sum().item(), windows + touched.numel()
    return hits / windows


# 42 tokens, a 2D patch and two video tubes, all centred where the gland usually lies
MY_TUBES = [Tube((1, 7, 7), (28, 7, 7), (14, 7, 7)), Tube((8, 8, 8), (8, 8, 8), (10, 8, 8)),
            Tube((12, 4, 4), (12, 4, 4), (8, 8, 8))]
