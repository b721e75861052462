"""Exercise checks for notebook 01 (patches and tubelets).

Each check calls your function on a few inputs, compares with the vtlib reference, prints one
fixed line ("<check>: correct" or "<check>: not yet - <hint>") and returns True or False.
"""
from __future__ import annotations

import math

import torch

from vtlib.tokens import central_frame_2d, inflate_2d, token_grid


def _verdict(name: str, problem: str | None, hint: str) -> bool:
    print(f"{name}: correct" if problem is None else f"{name}: not yet - {problem}; hint: {hint}")
    return problem is None


def _compare(got, want: torch.Tensor, what: str) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"{what}: expected a torch.Tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(want.shape):
        return f"{what}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
    if not torch.allclose(got.detach().float().cpu(), want.float(), rtol=1e-4, atol=1e-5):
        return f"{what}: wrong values"
    return None


def _run(fn, args, what: str):
    """Call the learner's function; return (result, problem)."""
    try:
        return fn(*args), None
    except Exception as e:  # the learner's code may raise anything
        return None, f"{what} raised {type(e).__name__}"


def check_token_count(fn) -> bool:
    """``fn(video_shape=(T, H, W), tubelet=(t, p, p)) -> int``: number of tubelet tokens."""
    name, hint = "check_token_count", "tokens = (T // t) * (H // p) * (W // p)"
    cases = [((28, 28, 28), (2, 4, 4)), ((28, 28, 28), (4, 7, 7)), ((64, 64, 64), (2, 16, 16)),
             ((16, 32, 48), (4, 8, 16))]
    for shape, tub in cases:
        got, problem = _run(fn, (shape, tub), f"fn{shape, tub}")
        if problem is None:
            want = math.prod(token_grid(shape, tub))
            try:
                ok = int(got) == want and float(got) == want
            except Exception:
                ok = False
            if not ok:
                problem = f"fn{shape, tub} should be {want}"
        if problem:
            return _verdict(name, problem, hint)
    return _verdict(name, None, hint)


def _check_filter(name: str, fn, reference, hint: str) -> bool:
    g = torch.Generator().manual_seed(0)
    w2d = torch.randn(4, 2, 3, 3, generator=g)
    for t in (1, 2, 3, 4):
        got, problem = _run(fn, (w2d.clone(), t), f"fn(weight2d, t={t})")
        problem = problem or _compare(got, reference(w2d, t), f"fn(weight2d, t={t})")
        if problem:
            return _verdict(name, problem, hint)
    return _verdict(name, None, hint)


def check_central_frame_init(fn) -> bool:
    """``fn(weight2d (D, C, p, p), t) -> (D, C, t, p, p)``: ViViT central-frame initialisation."""
    return _check_filter("check_central_frame_init", fn, central_frame_2d,
                         "zeros everywhere except the 2D filter at time index t // 2")


def check_inflate(fn) -> bool:
    """``fn(weight2d (D, C, p, p), t) -> (D, C, t, p, p)``: filter inflation."""
    return _check_filter("check_inflate", fn, inflate_2d,
                         "copy the 2D filter to every one of the t time steps, then divide by t")
