"""What every exercise check shares: run the learner's function safely, compare, print one verdict.

A check prints exactly one fixed line and returns True or False:

    check_name: correct
    check_name: not yet - <what is wrong>; hint: <how to fix it>
    check_name: not yet - <what is wrong and how to fix it>          (a check without a fixed hint)

A stub that still raises ``NotImplementedError`` gets "not yet - write the function first", and an
answer still left at ``None`` gets "set ... first" (``placeholder``), so a notebook committed with stubs
prints the same line on every machine. ``as_number`` accepts a number in any one-value form (Python,
NumPy, a one-element array or tensor) and says in words why anything else is not one.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np
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


def placeholder(what: str) -> str:
    """The fixed problem for an answer still left at ``None``."""
    return f"set {what} first (it is still None)"


def as_number(got: Any, what: str) -> tuple[float | None, str | None]:
    """(float value, None), or (None, what is wrong): accepts int, float, NumPy scalars and arrays of one
    value, and torch tensors of one value; refuses None, bools, text, and several values."""
    if got is None:
        return None, placeholder(what)
    if isinstance(got, (bool, np.bool_)):
        return None, f"{what}: expected a number, got a bool ({got})"
    if isinstance(got, str):
        return None, f"{what}: expected a number, got the text {got!r}; write the number itself"
    if isinstance(got, (torch.Tensor, np.ndarray, np.generic)):
        size = got.numel() if isinstance(got, torch.Tensor) else got.size
        if size != 1:
            return None, (f"{what}: expected one number, got a {type(got).__name__} of {size} values "
                          "(reduce it to one, e.g. with .mean())")
        got = got.item()
    elif isinstance(got, (list, tuple, dict, set)):
        return None, f"{what}: expected one number, got a {type(got).__name__}"
    try:
        value = float(got)
    except (TypeError, ValueError):
        return None, f"{what}: expected a number, got {type(got).__name__}"
    if math.isnan(value):
        return None, f"{what} is NaN"
    return value, None


def compare_number(got: Any, want: float, what: str, tol: float) -> str | None:
    """A number in any one-value form (``as_number``) within ``tol`` of ``want``."""
    value, problem = as_number(got, what)
    if problem:
        return problem
    if abs(value - want) > tol:
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
