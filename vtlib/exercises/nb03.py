"""Exercise checks for notebook 03 (CLS token and pooling).

Each check calls your function on a few inputs, compares with the vtlib reference, prints one
fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: <hint>") and returns True or False.
"""
from __future__ import annotations

from typing import Callable

import torch

from vtlib.exercises.common import expect, first, verdict
from vtlib.pooling import ClsToken, MeanPool, attention_pool


def _tokens(seed: int, b: int = 2, n: int = 5, d: int = 8) -> torch.Tensor:
    return torch.randn(b, n, d, generator=torch.Generator().manual_seed(seed))


def _prepend_problem(fn: Callable, seed: int, b: int, n: int, d: int) -> str | None:
    x, ref = _tokens(seed, b, n, d), ClsToken(dim=d, init_std=1.0)
    return expect(fn, (x.clone(), ref.token.detach().clone()), ref.prepend(x).detach(), f"fn(x {b}x{n}x{d}, cls)")


def check_prepend_cls(fn: Callable) -> bool:
    """``fn(x (B, N, D), cls (1, 1, D)) -> (B, N + 1, D)`` with the CLS token first."""
    problems = (_prepend_problem(fn, seed, *shape) for seed, shape in enumerate(((2, 5, 8), (3, 1, 4))))
    return verdict("check_prepend_cls", first(problems),
                   "torch.cat([cls.expand(B, -1, -1), x], dim=1): one CLS per video, at index 0")


def check_mean_pool(fn: Callable) -> bool:
    """``fn(x (B, N, D)) -> (B, D)``: average over tokens."""
    xs = (_tokens(seed, *shape) for seed, shape in enumerate(((2, 5, 8), (3, 4, 4))))
    problems = (expect(fn, (x.clone(),), MeanPool()(x), "fn(x {}x{}x{})".format(*x.shape)) for x in xs)
    return verdict("check_mean_pool", first(problems), "average over the token axis: x.mean(dim=1)")


def _attention_pool_problem(fn: Callable, seed: int, b: int, n: int, d: int) -> str | None:
    x = _tokens(seed, b, n, d)
    q = torch.randn(d, generator=torch.Generator().manual_seed(100 + seed))
    return expect(fn, (x.clone(), q.clone()), attention_pool(x, q), f"fn(x {b}x{n}x{d}, query)")


def check_attention_pool(fn: Callable) -> bool:
    """``fn(x (B, N, D), query (D,)) -> (B, D)``: single-head attention pooling, no projections."""
    hint = "w = softmax over tokens (dim=1) of (x @ query) / sqrt(D); output = sum over n of w[:, n, None] * x[:, n]"
    problems = (_attention_pool_problem(fn, seed, *shape) for seed, shape in enumerate(((2, 5, 8), (3, 7, 16))))
    return verdict("check_attention_pool", first(problems), hint)
