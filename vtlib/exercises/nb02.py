"""Exercise checks for notebook 02 (positional encoding).

Each check calls your function on a few inputs, compares with the vtlib reference, prints one
fixed line ("<check>: correct" or "<check>: not yet - <hint>") and returns True or False.
"""
from __future__ import annotations

import torch

from vtlib.exercises.nb01 import _compare, _run, _verdict
from vtlib.position import LearnedPosition, SpaceTimePosition, sincos_1d
from vtlib.utils import count_parameters


def check_sincos_1d(fn) -> bool:
    """``fn(num_positions, dim) -> (num_positions, dim)``: the classic sinusoid table."""
    name = "check_sincos_1d"
    hint = "angle = pos / 10000 ** (2 * (j // 2) / dim); channel j is sin(angle) if j is even, cos if odd"
    for n, d in ((10, 8), (7, 6), (49, 32)):
        got, problem = _run(fn, (n, d), f"fn({n}, {d})")
        problem = problem or _compare(got, sincos_1d(n, d), f"fn({n}, {d})")
        if problem:
            return _verdict(name, problem, hint)
    return _verdict(name, None, hint)


def check_spacetime_table(fn) -> bool:
    """``fn(space (N, D), time (T, D)) -> (T*N, D)``: separate space/time tables, (t h w) order."""
    name = "check_spacetime_table"
    hint = "row t*N + n holds time[t] + space[n] (time varies slowest, like the tokens)"
    g = torch.Generator().manual_seed(0)
    for t, n, d in ((3, 4, 8), (2, 9, 6)):
        pos = SpaceTimePosition(t, n, d)
        with torch.no_grad():
            pos.space.copy_(torch.randn(n, d, generator=g))
            pos.time.copy_(torch.randn(t, d, generator=g))
        what = f"fn(space {n}x{d}, time {t}x{d})"
        got, problem = _run(fn, (pos.space.detach().clone(), pos.time.detach().clone()), what)
        problem = problem or _compare(got, pos.table().detach(), what)
        if problem:
            return _verdict(name, problem, hint)
    return _verdict(name, None, hint)


def check_position_params(fn) -> bool:
    """``fn(grid=(nt, nh, nw), dim) -> (joint, separate)``: learned parameters of a joint table
    (one vector per token) and of separate space + time tables."""
    name = "check_position_params"
    hint = "joint = nt * nh * nw * dim; separate = (nt + nh * nw) * dim"
    for grid, d in (((14, 7, 7), 64), ((7, 4, 4), 96), ((4, 2, 3), 12)):
        nt, nh, nw = grid
        want = (count_parameters(LearnedPosition(nt * nh * nw, d)), count_parameters(SpaceTimePosition(nt, nh * nw, d)))
        got, problem = _run(fn, (grid, d), f"fn({grid}, {d})")
        if problem is None:
            try:
                ok = tuple(int(v) for v in got) == want
            except Exception:
                ok = False
            if not ok:
                problem = f"fn({grid}, {d}) should be {want}"
        if problem:
            return _verdict(name, problem, hint)
    return _verdict(name, None, hint)
