"""Exercise checks for notebook 05 (ViViT joint space-time attention, Model 1).

Each check calls the learner's function on fixed inputs, compares it with a reference, prints
ONE fixed line ("<check>: correct" or "<check>: not yet - <hint>") and returns a bool.
Inputs come from a private seeded generator, so the global random state is not touched.
"""
from __future__ import annotations

from typing import Callable

import torch
from einops import rearrange

from vtlib.exercises.common import close, verdict
from vtlib.models.vivit import ViViT
from vtlib.utils import count_parameters


def check_fold_cls_position(fn: Callable) -> bool:
    """fn(hf_cls (1, 1, D), hf_pos (1, 1 + N, D)) -> (our_cls (1, 1, D), our_pos (1, N, D)).

    HF adds a position to its CLS token; vtlib's CLS has none. Fold it in: our_cls = cls + pos[0].
    """
    name = "check_fold_cls_position"
    g = torch.Generator().manual_seed(5)
    cls, pos = torch.randn(1, 1, 8, generator=g), torch.randn(1, 7, 8, generator=g)
    try:
        out = fn(cls.clone(), pos.clone())
        our_cls, our_pos = out
    except Exception as err:                                   # report, never crash the cell
        return verdict(name, f"it raised {type(err).__name__}; return a pair (our_cls, our_pos)")
    if not close(our_pos, pos[:, 1:]):
        return verdict(name, "our_pos is the HF table without its first row: hf_pos[:, 1:] (1, N, D)")
    if close(our_cls, cls):
        return verdict(name, "HF's first token is cls + pos[:, 0]: add the CLS position to the CLS token")
    if not close(our_cls, cls + pos[:, :1]):
        return verdict(name, "our_cls should be hf_cls + hf_pos[:, :1], shape (1, 1, D)")
    return verdict(name, None)


def check_cls_attention_grid(fn: Callable) -> bool:
    """fn(attn (B, heads, 1 + N, 1 + N), grid (nt, nh, nw)) -> (B, nt, nh, nw).

    The CLS token's attention (query row 0) to the N patch tokens, averaged over heads, laid out
    on the token grid in (t h w) order.
    """
    name = "check_cls_attention_grid"
    grid = (3, 2, 4)
    n = 3 * 2 * 4
    g = torch.Generator().manual_seed(6)
    attn = torch.randn(2, 3, 1 + n, 1 + n, generator=g).softmax(-1)
    want = rearrange(attn[:, :, 0, 1:].mean(1), "b (t h w) -> b t h w", t=3, h=2, w=4)
    try:
        got = fn(attn.clone(), grid)
    except Exception as err:
        return verdict(name, f"it raised {type(err).__name__}; it is called as fn(attn, (nt, nh, nw))")
    if close(got, want):
        return verdict(name, None)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        return verdict(name, f"expected shape (B, nt, nh, nw) = {tuple(want.shape)}, got {shape}; "
                             "drop the CLS key (index 0) before reshaping")
    if close(got, rearrange(attn[:, :, 1:, 0].mean(1), "b (t h w) -> b t h w", t=3, h=2, w=4)):
        return verdict(name, "take the CLS *query* row attn[:, :, 0, 1:] (what CLS looks at), "
                             "not the column attn[:, :, 1:, 0]")
    if close(got, rearrange(attn[:, 0, 0, 1:], "b (t h w) -> b t h w", t=3, h=2, w=4)):
        return verdict(name, "average over all heads (axis 1), not just the first one")
    return verdict(name, "values differ: CLS row 0, keys 1:, mean over heads, then (t h w) -> t, h, w")


def check_vivit_params(fn: Callable) -> bool:
    """fn(video_shape, tubelet, dim, depth, num_classes, mlp_ratio=4.0) -> int: the parameter count
    of ``ViViT`` (Model 1: tubelet Conv3d, learned positions, CLS, pre-norm blocks, norm, head) on
    one-channel clips."""
    name = "check_vivit_params"
    cases = [((28, 28, 28), (4, 7, 7), 64, 4, 2, 4.0), ((8, 16, 16), (2, 4, 4), 32, 2, 5, 2.0),
             ((12, 12, 12), (3, 3, 3), 48, 3, 11, 4.0)]
    for video, tub, dim, depth, classes, ratio in cases:
        want = count_parameters(ViViT(num_classes=classes, video_shape=video, tubelet=tub, dim=dim, depth=depth,
                                      heads=1, mlp_ratio=ratio))
        try:
            got = fn(video, tub, dim, depth, classes, ratio)
        except Exception as err:
            return verdict(name, f"it raised {type(err).__name__}; it is called as "
                                 "fn(video_shape, tubelet, dim, depth, num_classes, mlp_ratio)")
        if got == want:
            continue
        n = (video[0] // tub[0]) * (video[1] // tub[1]) * (video[2] // tub[2])
        if isinstance(got, (int, float)) and got - want == dim:
            return verdict(name, "the CLS token has no position in vtlib: the table has N rows, not N + 1")
        if isinstance(got, (int, float)) and got - want == -dim:
            return verdict(name, "count the CLS token itself (D parameters)")
        return verdict(name, f"for video {video}, tubelet {tub}, dim {dim}, depth {depth}: expected {want}, got "
                             f"{got}; add up embed (D*t*p*p + D), positions ({n}*D), CLS (D), per block "
                             "2 LayerNorms + qkv + proj + MLP, final LayerNorm and head")
    return verdict(name, None)
