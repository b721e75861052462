"""What every exercise check shares: run the learner's function safely, compare, print one verdict.

A check prints exactly one fixed line and returns True or False:

    check_name: correct
    check_name: not yet - <what is wrong>; hint: <how to fix it>

A stub that still raises ``NotImplementedError`` gets "not yet - write the function first", so a
notebook committed with stubs prints the same line on every machine.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

STUB = "write the function first (it still raises NotImplementedError)"


def verdict(name: str, problem: str | None, hint: str) -> bool:
    print(f"{name}: correct" if problem is None else f"{name}: not yet - {problem}; hint: {hint}")
    return problem is None


def call(fn: Callable, args: tuple, what: str) -> tuple[Any, str | None]:
    """Call the learner's ``fn(*args)``; return (result, None) or (None, the problem in words)."""
    if not callable(fn):
        return None, f"expected a function, got {type(fn).__name__}"
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, STUB
    except Exception as e:  # the learner's code may raise anything
        return None, f"{what} raised {type(e).__name__}: {e}"[:200]


def compare_tensor(got: Any, want: torch.Tensor, what: str, atol: float = 1e-5) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"{what}: expected a torch.Tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(want.shape):
        return f"{what}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
    if not torch.allclose(got.detach().float().cpu(), want.float(), rtol=1e-4, atol=atol):
        return f"{what}: wrong values"
    return None


def compare_number(got: Any, want: float, what: str, tol: float) -> str | None:
    """A Python or NumPy number (a 0-d tensor is accepted too) within ``tol`` of ``want``."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    try:
        value = float(got)
    except (TypeError, ValueError):
        return f"{what}: expected a number, got {type(got).__name__}"
    if math.isnan(value) or abs(value - want) > tol:
        return f"{what}: expected about {want:.4g}, got {value:.4g}"
    return None
