"""Input checks with messages that name the argument, what was expected, what came, and the fix.

Every public function in vtlib validates its inputs with these helpers, so a bad input never
surfaces as an einops or matmul shape error from deep inside a model.
"""
from __future__ import annotations

from typing import Any, Iterable


class VtlibError(ValueError):
    """A bad argument to a vtlib function. Subclasses ValueError so callers can catch either."""


def bad_arg(name: str, expected: str, got: Any, fix: str) -> VtlibError:
    """Build the standard error: ``<name>: expected <expected>, got <got>. Fix: <fix>``."""
    return VtlibError(f"{name}: expected {expected}, got {got}. Fix: {fix}")


def check_choice(name: str, value: Any, choices: Iterable[Any], fix: str | None = None) -> None:
    choices = list(choices)
    if value not in choices:
        raise bad_arg(name, f"one of {choices}", repr(value), fix or f"pass one of {choices}")


def check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise bad_arg(name, "a positive int", repr(value), f"pass an int >= 1 for {name}")


def check_rank(name: str, x: Any, rank: int, layout: str) -> None:
    """Check that ``x`` is a tensor of the given rank; ``layout`` names the axes, e.g. 'B C T H W'."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise bad_arg(name, f"a torch.Tensor shaped ({layout})", type(x).__name__,
                      "convert with torch.as_tensor(...)")
    if x.ndim != rank:
        raise bad_arg(name, f"a {rank}-D tensor shaped ({layout})", f"shape {tuple(x.shape)}",
                      f"reshape or add the missing axes so the layout is ({layout})")


def check_float(name: str, x: Any) -> None:
    import torch

    if not torch.is_floating_point(x):
        raise bad_arg(name, "a floating-point tensor", f"dtype {x.dtype}",
                      f"convert with {name}.float() (uint8 volumes: use vtlib.data.to_video first)")


def check_dropout(name: str, p: Any) -> None:
    """A dropout (or drop-path) probability in [0, 1)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise bad_arg(name, "a probability in [0, 1)", repr(p), f"pass e.g. {name}=0.0 or 0.1")


def check_divisible(name: str, size: int, by: int, by_name: str) -> None:
    if size % by != 0:
        raise bad_arg(name, f"a size divisible by {by_name}={by}", size,
                      f"choose {by_name} from the divisors of {size} "
                      f"({[d for d in range(1, size + 1) if size % d == 0]}) or resize/crop the input "
                      f"to a multiple of {by}; vtlib never drops voxels silently")


def check_heads(dim: Any, heads: Any) -> None:
    """``dim`` and ``heads`` positive ints, ``heads`` a divisor of ``dim`` (each head gets dim / heads)."""
    check_positive_int("dim", dim)
    check_positive_int("heads", heads)
    if dim % heads != 0:
        divisors = [h for h in range(1, dim + 1) if dim % h == 0]
        raise bad_arg("heads", f"a divisor of dim={dim} (each head gets dim / heads features)",
                      heads, f"choose heads from {divisors} or change dim")
