"""Exercise checks for notebook 03 (CLS token and pooling).

Each check calls your function on a few inputs, compares with the vtlib reference, prints one
fixed line ("<check>: correct" or "<check>: not yet - <hint>") and returns True or False.
"""
from __future__ import annotations

import torch

from vtlib.exercises.nb01 import _compare, _run, _verdict
from vtlib.pooling import ClsToken, MeanPool, attention_pool


def _tokens(seed: int, b: int = 2, n: int = 5, d: int = 8) -> torch.Tensor:
    return torch.randn(b, n, d, generator=torch.Generator().manual_seed(seed))


def check_prepend_cls(fn) -> bool:
    """``fn(x (B, N, D), cls (1, 1, D)) -> (B, N + 1, D)`` with the CLS token first."""
    name, hint = "check_prepend_cls", "torch.cat([cls.expand(B, -1, -1), x], dim=1): one CLS per video, at index 0"
    for seed, (b, n, d) in enumerate(((2, 5, 8), (3, 1, 4))):
        x, ref = _tokens(seed, b, n, d), ClsToken(d, init_std=1.0)
        what = f"fn(x {b}x{n}x{d}, cls)"
        got, problem = _run(fn, (x.clone(), ref.token.detach().clone()), what)
        problem = problem or _compare(got, ref.prepend(x).detach(), what)
        if problem:
            return _verdict(name, problem, hint)
    return _verdict(name, None, hint)


def check_mean_pool(fn) -> bool:
    """``fn(x (B, N, D)) -> (B, D)``: average over tokens."""
    name, hint = "check_mean_pool", "average over the token axis: x.mean(dim=1)"
    for seed, (b, n, d) in enumerate(((2, 5, 8), (3, 4, 4))):
        x = _tokens(seed, b, n, d)
        got, problem = _run(fn, (x.clone(),), f"fn(x {b}x{n}x{d})")
        problem = problem or _compare(got, MeanPool()(x), f"fn(x {b}x{n}x{d})")
        if problem:
            return _verdict(name, problem, hint)
    return _verdict(name, None, hint)


def check_attention_pool(fn) -> bool:
    """``fn(x (B, N, D), query (D,)) -> (B, D)``: single-head attention pooling, no projections."""
    name = "check_attention_pool"
    hint = "w = softmax over tokens (dim=1) of (x @ query) / sqrt(D); output = sum over n of w[:, n, None] * x[:, n]"
    for seed, (b, n, d) in enumerate(((2, 5, 8), (3, 7, 16))):
        x = _tokens(seed, b, n, d)
        q = torch.randn(d, generator=torch.Generator().manual_seed(100 + seed))
        got, problem = _run(fn, (x.clone(), q.clone()), f"fn(x {b}x{n}x{d}, query)")
        problem = problem or _compare(got, attention_pool(x, q), f"fn(x {b}x{n}x{d}, query)")
        if problem:
            return _verdict(name, problem, hint)
    return _verdict(name, None, hint)
