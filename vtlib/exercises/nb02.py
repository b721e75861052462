"""Exercise checks for notebook 02 (positional encoding).

Each check calls your function on a few inputs, compares with the vtlib reference, prints one
fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: <hint>") and returns True or False.
"""
from __future__ import annotations

from typing import Callable

import torch

from vtlib.exercises.common import expect, first, verdict
from vtlib.position import LearnedPosition, SpaceTimePosition, sincos_1d
from vtlib.utils import count_parameters


def check_sincos_1d(fn: Callable) -> bool:
    """``fn(num_positions, dim) -> (num_positions, dim)``: the classic sinusoid table."""
    hint = "angle = pos / 10000 ** (2 * (j // 2) / dim); channel j is sin(angle) if j is even, cos if odd"
    problems = (expect(fn, (n, d), sincos_1d(n, d), f"fn({n}, {d})") for n, d in ((10, 8), (7, 6), (49, 32)))
    return verdict("check_sincos_1d", first(problems), hint)


def _spacetime_problem(fn: Callable, t: int, n: int, d: int, g: torch.Generator) -> str | None:
    pos = SpaceTimePosition(num_frames=t, num_patches=n, dim=d)
    with torch.no_grad():
        pos.space.copy_(torch.randn(n, d, generator=g))
        pos.time.copy_(torch.randn(t, d, generator=g))
    return expect(fn, (pos.space.detach().clone(), pos.time.detach().clone()), pos.table().detach(),
                  f"fn(space {n}x{d}, time {t}x{d})")


def check_spacetime_table(fn: Callable) -> bool:
    """``fn(space (N, D), time (T, D)) -> (T*N, D)``: separate space/time tables, (t h w) order."""
    hint = "row t*N + n holds time[t] + space[n] (time varies slowest, like the tokens)"
    g = torch.Generator().manual_seed(0)
    problems = (_spacetime_problem(fn, t, n, d, g) for t, n, d in ((3, 4, 8), (2, 9, 6)))
    return verdict("check_spacetime_table", first(problems), hint)


def _position_params(grid: tuple[int, int, int], dim: int) -> tuple[int, int]:
    nt, nh, nw = grid
    return (count_parameters(LearnedPosition(num_tokens=nt * nh * nw, dim=dim)),
            count_parameters(SpaceTimePosition(num_frames=nt, num_patches=nh * nw, dim=dim)))


def check_position_params(fn: Callable) -> bool:
    """``fn(grid=(nt, nh, nw), dim) -> (joint, separate)``: learned parameters of a joint table
    (one vector per token) and of separate space + time tables."""
    hint = "joint = nt * nh * nw * dim; separate = (nt + nh * nw) * dim"
    cases = (((14, 7, 7), 64), ((7, 4, 4), 96), ((4, 2, 3), 12))
    problems = (expect(fn, (grid, d), _position_params(grid, d), f"fn({grid}, {d})") for grid, d in cases)
    return verdict("check_position_params", first(problems), hint)
