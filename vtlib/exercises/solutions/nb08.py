"""Reference solutions for notebook 08's exercises (VideoMAE)."""
from __future__ import annotations

import torch
from einops import rearrange, repeat

from vtlib.masking import make_mask, masked
from vtlib.models.videomae import patch_targets


# exercise 1
def visible_count(kind, grid, ratio):
    """Tokens the encoder sees per clip: N minus int(ratio * units) hidden units of their size."""
    nt, nh, nw = grid
    units, per_unit = {"tube": (nh * nw, nt), "random": (nt * nh * nw, 1), "frame": (nt, nh * nw)}[kind]
    return nt * nh * nw - int(ratio * units) * per_unit


# exercise 2
def my_frame_mask(batch, grid, ratio, generator):
    """(batch, N) bool, True = hidden: int(ratio * nt) whole token-frames per clip, (t h w) order."""
    nt, nh, nw = grid
    chosen = torch.rand(batch, nt, generator=generator).argsort(1)[:, :int(ratio * nt)]
    frames = torch.zeros(batch, nt, dtype=torch.bool).scatter_(1, chosen, True)   # (batch, nt)
    return repeat(frames, "b t -> b (t s)", s=nh * nw)


# exercise 3
def hf_targets(x, tubelet, eps=1e-6):
    """(B, C, T, H, W) -> (B, N, t*p*p*C): HF's layout (t p1 p2 c), each channel normalised on its own."""
    t, p, q = tubelet
    v = rearrange(x, "b c (nt t) (nh p) (nw q) -> b (nt nh nw) (t p q) c", t=t, p=p, q=q)
    v = (v - v.mean(-2, keepdim=True)) / (v.var(-2, unbiased=True, keepdim=True).sqrt() + eps)
    return v.flatten(-2)


# exercise 4
def decoder_vs_zero(mae, x, kind, ratio, seed):
    """The decoder's masked-tubelet MSE / the MSE of predicting 0 for every hidden normalised target."""
    mask = make_mask(kind, len(x), mae.grid, ratio, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        loss, _ = mae(x, mask)
    zero = masked(patch_targets(x, mae.tubelet), mask).pow(2).mean()
    return (loss / zero).item()


def tube_sweep(mae, x):
    """{ratio: mean over seeds 0-2} for tube masks at 50, 75 and 90 %."""
    return {r: sum(decoder_vs_zero(mae, x, "tube", r, s) for s in (0, 1, 2)) / 3 for r in (0.5, 0.75, 0.9)}


# the pre-trained model of the notebook gives a higher ratio at 50 % than at 75 % (the ratio it was
# trained with): showing it more of the clip does not help, so more_visible_helps = False there.
