"""Exercise checks for notebook 08 (VideoMAE: masking, masked-autoencoder pre-training, fine-tuning)."""
from __future__ import annotations

from typing import Callable

import torch
from einops import rearrange

from vtlib.exercises.common import verdict
from vtlib.masking import num_masked
from vtlib.models.videomae import patch_targets


def check_tube_count(masked: int, visible: int) -> bool:
    """Exercise 1: tube masking at 75 % with 7 x 7 patches per frame (4 x 4 pixel patches on 28^2):
    masked and visible patches per token-frame."""
    ok = (masked, visible) == (36, 13)
    return verdict("check_tube_count", None if ok else "use the floor rule int(ratio * 49) for the masked count; "
                   "the rest stay visible")


def check_frame_mask(fn: Callable) -> bool:
    """Exercise 2: ``fn(batch, grid, ratio, generator)`` -> (B, N) bool hiding int(ratio * nt) whole
    token-frames per clip, True = masked, tokens in (t h w) order."""
    grid, ratio, b = (7, 4, 4), 0.5, 16
    try:
        m = fn(b, grid, ratio, torch.Generator().manual_seed(0))
        f = rearrange(m, "b (t s) -> b t s", t=7)
        ok = (m.dtype == torch.bool and tuple(m.shape) == (b, 112)
              and m.sum(1).tolist() == [num_masked("frame", grid, ratio)] * b
              and torch.equal(f.all(-1), f.any(-1)) and len({tuple(r) for r in f.any(-1).tolist()}) > 1)
    except Exception:  # the learner's code may raise anything; the hint covers it
        ok = False
    return verdict("check_frame_mask", None if ok else "draw int(ratio * nt) frames per clip (argsort of random "
                   "noise), then repeat each frame's flag over its nh * nw tokens")


def check_norm_targets(fn: Callable) -> bool:
    """Exercise 3: ``fn(x, tubelet)`` -> per-tubelet normalised targets (B, N, C*t*p*p), unbiased std, eps 1e-6."""
    x = torch.rand(2, 1, 8, 16, 16, generator=torch.Generator().manual_seed(0))
    try:
        out = torch.as_tensor(fn(x, (2, 4, 4)))
        ok = out.shape == (2, 64, 32) and torch.allclose(out, patch_targets(x, (2, 4, 4)), atol=1e-4)
    except Exception:
        ok = False
    return verdict("check_norm_targets", None if ok else "patchify, then (v - mean) / (std + 1e-6) over each row "
                   "with v.var(-1, unbiased=True).sqrt()")


def check_visible_tokens(answer: int) -> bool:
    """Exercise 4: tokens the encoder sees for a 28^3 clip, tubelet 4 x 7 x 7, tube masking at 90 %."""
    ok = answer == 112 - num_masked("tube", (7, 4, 4), 0.9)
    return verdict("check_visible_tokens", None if ok else "7 token-frames of 4 x 4 patches; int(0.9 * 16) are "
                   "masked in every frame")
