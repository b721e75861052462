"""Reference solutions for notebook 06's exercises (ViViT factorised)."""
from __future__ import annotations

import torch
from einops import rearrange

from vtlib.attention import causal_mask
from vtlib.cost import measure_flops
from vtlib.experiments.vivit_variants import build


# exercise 1
def group_by_frame_hwt(tokens, nt):
    """(B, S*nt, D) in (h w t) order -> (B*nt, S, D): the frame index is the fast axis."""
    return rearrange(tokens, "b (s t) d -> (b t) s d", t=nt)


# exercise 2
def causal_temporal_attention(x, attn, nt):
    """(B, nt*S, D) -> (B, nt*S, D): each token sees its position in its own and earlier token-frames."""
    tubes = rearrange(x, "b (t s) d -> (b s) t d", t=nt)                 # (B*S, nt, D)
    out = attn(tubes, mask=causal_mask(nt))                              # key frame j <= query frame i
    return rearrange(out, "(b s) t d -> b (t s) d", b=x.shape[0])


# exercise 3
def clip_score_entries(variant, nt, S, depth, heads):
    """Score entries of one clip over all blocks and heads, for build(variant, depth=depth, heads=heads)."""
    N = nt * S
    if variant == "model1-joint":
        return depth * heads * (N + 1) ** 2                              # the CLS is a token
    if variant == "model2-fe":                                           # depth - 1 spatial + 1 temporal block
        return (depth - 1) * heads * nt * (S + 1) ** 2 + heads * (nt + 1) ** 2
    per_head = nt * S ** 2 + S * nt ** 2                                 # nt frames + S tubes
    return depth * (heads if variant == "model3-fsa" else heads // 2) * per_head


# exercise 4
def formula_frames(dim, S, t):
    """Smallest T = t * nt with nt*S - S - nt > 2*dim, i.e. nt > (2*dim + S) / (S - 1)."""
    nt = (2 * dim + S) // (S - 1) + 1                                    # strictly above the bound
    return t * nt


def measured_frames(dim):
    """First frame count (4, 8, ...) at which the whole Model 3 needs fewer FLOPs than the whole Model 1."""
    for frames in range(4, 129, 4):
        clip = torch.zeros(1, 1, frames, 28, 28)
        m1, m3 = (measure_flops(build(v, frames=frames, dim=dim).eval(), clip) for v in ("model1-joint", "model3-fsa"))
        if m3 < m1:
            return frames
    return None


EARLIER = "measured"       # at dim 16: 12 frames measured, 16 by the formula; Model 1's CLS token costs too
