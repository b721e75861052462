"""What every exercise check shares: run the learner's function safely, compare, print one verdict.

A check prints exactly one fixed line and returns True or False:

    check_name: correct
    check_name: not yet - <what is wrong>; hint: <how to fix it>
    check_name: not yet - <what is wrong and how to fix it>          (a check without a fixed hint)

A stub that still raises ``NotImplementedError`` gets "not yet - write the function first", so a
notebook committed with stubs prints the same line on every machine.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch

STUB = "write the function first (it still raises NotImplementedError)"


def verdict(name: str, problem: str | None, hint: str | None = None) -> bool:
    """Print the check's one line and return whether it passed (``problem`` is None)."""
    if problem is None:
        print(f"{name}: correct")
    else:
        print(f"{name}: not yet - {problem}" + ("" if hint is None else f"; hint: {hint}"))
    return problem is None


def first(problems: Iterable[str | None]) -> str | None:
    """The first problem of a series of cases, or None if every case passes (a generator stops there)."""
    return next((p for p in problems if p), None)


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


def close(got: Any, want: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """``got`` is a tensor of ``want``'s shape and close to it."""
    return (isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(want.shape)
            and torch.allclose(got.detach().float().cpu(), want.float(), rtol=rtol, atol=atol))


def compare_tensor(got: Any, want: torch.Tensor, what: str, atol: float = 1e-5) -> str | None:
    """None if ``got`` matches the tensor ``want`` (exactly, for a bool mask), else the problem."""
    if not isinstance(got, torch.Tensor):
        return f"{what}: expected a torch.Tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(want.shape):
        return f"{what}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
    if got.dtype == torch.bool or want.dtype == torch.bool:
        return None if torch.equal(got.bool().cpu(), want.bool()) else f"{what}: wrong entries"
    return None if close(got, want, atol=atol) else f"{what}: wrong values"


def compare_count(got: Any, want: int | tuple[int, ...], what: str) -> str | None:
    """None if ``got`` is the whole number ``want`` (or a sequence equal to the tuple ``want``), else the problem.

    Ints, whole floats and one-element tensors count; 2.5 is not 2, and "2" is not a number.
    """
    wants = (want,) if isinstance(want, int) else tuple(want)
    try:
        values = (got,) if isinstance(want, int) else tuple(got)
        ok = len(values) == len(wants) and all(not isinstance(v, str) and int(v) == w and float(v) == w
                                               for v, w in zip(values, wants))
    except Exception:  # whatever the learner returned does not convert
        ok = False
    return None if ok else f"{what} should be {want}"


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


def expect(fn: Callable, args: tuple, want: torch.Tensor | int | tuple[int, ...], what: str) -> str | None:
    """Call the learner's ``fn(*args)`` and compare the result with ``want``, a tensor or whole number(s).

    None if it matches, else the problem (from ``call``, ``compare_tensor`` or ``compare_count``).
    """
    got, problem = call(fn, args, what)
    if problem:
        return problem
    return compare_tensor(got, want, what) if isinstance(want, torch.Tensor) else compare_count(got, want, what)
