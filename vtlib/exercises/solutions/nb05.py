"""Reference solutions for notebook 05's exercises (ViViT Model 1)."""
from __future__ import annotations

import torch
from einops import rearrange, repeat


# exercise 1
def packed_qkv(weight, bias, heads):
    """Rows (heads, [q k v], head_dim) -> vtlib's rows ([q k v], heads, head_dim)."""
    w = rearrange(weight, "(h three d) e -> (three h d) e", three=3, h=heads)
    b = rearrange(bias, "(h three d) -> (three h d)", three=3, h=heads)
    return w, b


# exercise 2
def cross_frame_share(attn, grid):
    """(B, heads, 1 + N, 1 + N) -> (B, heads): mean over tubelet queries of their weight on other frames."""
    nt, nh, nw = grid
    frame = repeat(torch.arange(nt), "t -> (t s)", s=nh * nw)         # (N,) frame of tubelet i
    other = frame[:, None] != frame[None, :]                           # (N, N): key in another frame
    return (attn[:, :, 1:, 1:] * other).sum(-1).mean(-1)               # no CLS row, no CLS column


# exercise 3
def reverse_token_frames(clip, t):
    """(B, C, T, H, W) -> the T / t slabs of t frames in reverse order, each slab's frames as they were."""
    slabs = rearrange(clip, "b c (n t) h w -> b c n t h w", t=t)
    return rearrange(slabs.flip(2), "b c n t h w -> b c (n t) h w")


def logit_change(model, clip, transform):
    """Largest absolute change of the logits when transform is applied to clip."""
    with torch.no_grad():
        return (model(transform(clip)) - model(clip)).abs().max().item()


BLIND_TO = {"none": {"reverse token-frames", "swap left and right halves"},   # tokens only reordered
            "space": {"reverse token-frames"}}                                 # same position in every frame
