"""Reference solutions for notebook 01's exercises (patches and tubelets)."""
from __future__ import annotations

import math

import torch
from einops import rearrange

from vtlib.data import load_split
from vtlib.tokens import TubeletEmbed


# exercise 1
def valid_conv_tokens(video_shape, kernel, stride):
    """(tokens, ignored_share) of a VALID Conv3d with this kernel and stride on a (T, H, W) clip."""
    counts, reach = [], []
    for S, k, s in zip(video_shape, kernel, stride):
        n = (S - k) // s + 1                       # windows start at 0, s, 2s, ... while they fit
        counts.append(n)
        reach.append((n - 1) * min(s, k) + k)      # voxels touched: overlaps once, gaps (s > k) not at all
    return math.prod(counts), 1 - math.prod(reach) / math.prod(video_shape)


# exercise 2
def channels_last_weight(weight):
    """(D, C, t, p1, p2) -> (D, t*p1*p2*C): the Linear weight for tubelets flattened as (t p1 p2 c)."""
    return rearrange(weight, "d c t p1 p2 -> d (t p1 p2 c)")


# exercise 3
def first_frame_embed(conv2d, t):
    """A TubeletEmbed equal to FrameEmbed(frame_stride=t, offset=0) with conv2d's weights."""
    embed = TubeletEmbed(dim=conv2d.out_channels, tubelet=(t, *conv2d.kernel_size), in_channels=conv2d.in_channels)
    with torch.no_grad():
        w = torch.zeros_like(embed.proj.weight)    # (D, C, t, p, p)
        w[:, :, 0] = conv2d.weight                 # the 2D filter on the first frame of each block
        embed.proj.weight.copy_(w)
        embed.proj.bias.copy_(conv2d.bias)
    return embed


# exercise 4
def empty_share(clips, tubelet):
    """The share of all tokens whose t x p x p tubelet holds only zeros (no gland voxel)."""
    t, p1, p2 = tubelet
    tubes = rearrange(clips, "b c (nt t) (nh p1) (nw p2) -> b (nt nh nw) (c t p1 p2)", t=t, p1=p1, p2=p2)
    return (tubes.abs().amax(-1) == 0).float().mean().item()


TUBELETS = ((1, 4, 4), (2, 7, 7), (4, 7, 7), (7, 7, 7), (4, 14, 14))


def measure(tubelets=TUBELETS) -> dict:
    """{tubelet: empty share} on the 28³ AdrenalMNIST3D training clips."""
    x, _ = load_split("adrenal", "train", size=28)
    return {tub: empty_share(x, tub) for tub in tubelets}


def gland_tokens(shares) -> float:
    """Tokens of the 4 x 7 x 7 default (112 per clip) that hold some gland, in an average clip."""
    return 112 * (1 - shares[(4, 7, 7)])
