"""Exercise checks for notebook 01 (patches and tubelets).

Each check calls your function on a few inputs, compares with the vtlib reference, prints one
fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: <hint>") and returns True or False.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from vtlib.exercises.common import expect, first, verdict
from vtlib.tokens import central_frame_2d, inflate_2d, token_grid


def check_token_count(fn: Callable) -> bool:
    """``fn(video_shape=(T, H, W), tubelet=(t, p, p)) -> int``: number of tubelet tokens."""
    cases = [((28, 28, 28), (2, 4, 4)), ((28, 28, 28), (4, 7, 7)), ((64, 64, 64), (2, 16, 16)),
             ((16, 32, 48), (4, 8, 16))]
    problems = (expect(fn, (shape, tub), math.prod(token_grid(shape, tub)), f"fn{shape, tub}") for shape, tub in cases)
    return verdict("check_token_count", first(problems), "tokens = (T // t) * (H // p) * (W // p)")


def _check_filter(name: str, fn: Callable, reference: Callable, hint: str) -> bool:
    w2d = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    problems = (expect(fn, (w2d.clone(), t), reference(w2d, t), f"fn(weight2d, t={t})") for t in (1, 2, 3, 4))
    return verdict(name, first(problems), hint)


def check_central_frame_init(fn: Callable) -> bool:
    """``fn(weight2d (D, C, p, p), t) -> (D, C, t, p, p)``: ViViT central-frame initialisation."""
    return _check_filter("check_central_frame_init", fn, central_frame_2d,
                         "zeros everywhere except the 2D filter at time index t // 2")


def check_inflate(fn: Callable) -> bool:
    """``fn(weight2d (D, C, p, p), t) -> (D, C, t, p, p)``: filter inflation."""
    return _check_filter("check_inflate", fn, inflate_2d,
                         "copy the 2D filter to every one of the t time steps, then divide by t")
