"""Exercise checks for notebook 07 (TimeSformer: divided space-time attention and its alternatives)."""
from __future__ import annotations

import copy
from typing import Callable

import torch

from vtlib.exercises.common import verdict


def check_comparisons(fn: Callable[[str, int, int], int]) -> bool:
    """Exercise 1: ``fn(attention, N, T)`` -> keys one patch query scores in one block.

    attention: "space", "joint" or "divided" (the paper's equation: the CLS is a key in both the
    temporal and the spatial attention). N patches per frame, T frames.
    """
    cases = [(a, n, t) for a in ("space", "joint", "divided") for n, t in ((196, 8), (16, 8), (49, 28), (4, 1))]
    want = {"space": lambda n, t: n + 1, "joint": lambda n, t: n * t + 1, "divided": lambda n, t: n + t + 2}
    try:
        ok = all(int(fn(a, n, t)) == want[a](n, t) for a, n, t in cases)
    except Exception:  # the learner's code may raise anything; the hint covers it
        ok = False
    return verdict("check_comparisons", None if ok else "count the keys of every attention a patch takes part in, "
                   "the CLS included (paper: 1569 vs 206 for N=196, T=8)")


def check_grouping(fn: Callable[[torch.Tensor], torch.Tensor], name: str = "time", grid=(4, 4, 4)) -> bool:
    """Exercises 2-3: ``fn(x)`` groups patch tokens x (B, T*nh*nw, D), (t h w) order, like vtlib.

    ``name`` is a sub-attention of vtlib.models.timesformer.GROUPINGS ("time", "space", "width",
    "height", "local", "global"); the groups must come out in the same order as vtlib's.
    """
    from vtlib.models.timesformer import GROUPINGS, group

    T, nh, nw = grid
    x = torch.randn(2, T * nh * nw, 3, generator=torch.Generator().manual_seed(0))
    try:
        out = fn(x)
        ref = group(x, name, grid)
        ok = name in GROUPINGS and tuple(out.shape) == tuple(ref.shape) and torch.equal(out, ref)
    except Exception:
        ok = False
    return verdict(f"check_grouping({name!r})", None if ok else f"use einops.rearrange with the pattern of "
                   f"GROUPINGS[{name!r}]: name the axes of (t h w), keep the batch with the axes you do NOT "
                   "attend over")


def check_temporal_branch_off(model: torch.nn.Module) -> bool:
    """Exercise 4: a divided TimeSformer whose temporal branch you zeroed by hand.

    Passes if every block's ``mixers["time"].fc`` is zero and the model's logits equal those of a copy
    with the temporal branches removed (``del block.mixers["time"]``).
    """
    from vtlib.models.timesformer import TimeSformer

    try:
        ok = isinstance(model, TimeSformer) and model.attention == "divided"
        ok = ok and all(torch.count_nonzero(b.mixers["time"].fc.weight) == 0
                        and torch.count_nonzero(b.mixers["time"].fc.bias) == 0 for b in model.blocks)
        if ok:
            off = copy.deepcopy(model).eval()
            for b in off.blocks:
                del b.mixers["time"]
            x = torch.randn(2, model.embed.in_channels, *model.video_shape, generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                ok = torch.equal(model.eval()(x), off(x))
    except Exception:
        ok = False
    return verdict("check_temporal_branch_off", None if ok else "zero the weight AND the bias of mixers['time'].fc "
                   "in every block, under torch.no_grad()")
