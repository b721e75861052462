"""Exercise checks for notebook 04 (attention from scratch).

Each check calls the learner's function on fixed inputs, compares the result with a vtlib
reference, prints ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: ...")
and returns a bool. A function that still raises ``NotImplementedError`` gets the fixed
"write the function first" line. Inputs come from private seeded generators, so the global random
state is not touched.

- ``check_time_only``: the same-position (time-only) mask of TimeSformer's temporal half, and
  time-only attention computed by folding the spatial positions into the batch (its values equal
  the masked attention; its FLOP count must be the folded one, not N²).
- ``check_local_time_mask``: a sliding window over token-frames: every token sees all tokens of the
  frames within ``w`` of its own.
- ``check_crossover``: the smallest token count at which the attention core is more than half of a
  block's FLOPs, for any MLP ratio, against ``vtlib.cost.block_flops``.
- ``check_softmax_saturation``: a small experiment: how many keys a query really reads (the
  effective number 1 / sum p²), with and without the 1/sqrt(d) scale, and two measured conclusions.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from einops import rearrange, repeat
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from vtlib.attention import attention_explicit
from vtlib.block import mlp_hidden_dim
from vtlib.exercises.common import call, compare_count, compare_number, compare_tensor, verdict


def _frames(grid) -> torch.Tensor:
    """(N,) token-frame of each token, (t h w) order."""
    nt, nh, nw = grid
    return repeat(torch.arange(nt), "t -> (t s)", s=nh * nw)


def _positions(grid) -> torch.Tensor:
    """(N,) spatial position of each token, (t h w) order."""
    nt, nh, nw = grid
    return repeat(torch.arange(nh * nw), "s -> (t s)", t=nt)


def same_position_reference(grid) -> torch.Tensor:
    """(N, N) bool: query and key at the same (h, w), any frame."""
    p = _positions(grid)
    return p[:, None] == p[None, :]


def local_time_reference(grid, w: int) -> torch.Tensor:
    """(N, N) bool: |frame(query) - frame(key)| <= w."""
    f = _frames(grid)
    return (f[:, None] - f[None, :]).abs() <= w


def _first(out: Any) -> Any:
    """The output of a function that may return (out, weights) like the notebook's ``attention``."""
    return out[0] if isinstance(out, (tuple, list)) and len(out) > 0 else out


# ----------------------------------------------------------------------------- exercise 1: time only
def check_time_only(mask_fn: Callable, attn_fn: Callable) -> bool:
    """``mask_fn(grid) -> (N, N)`` bool, True where query and key sit at the same spatial position
    (h, w), in any token-frame; ``attn_fn(q, k, v, grid) -> (B, heads, N, d)``: the attention that
    mask allows, computed WITHOUT a mask by folding the positions into the batch axis.
    Tokens are in (t h w) order, N = nt·nh·nw."""
    name = "check_time_only"
    hint = ("in (t h w) order the position of token i is i % (nh·nw); for the attention, rearrange so that "
            "the nt tokens of each position form one batch entry, attend, and rearrange back")
    for grid in ((4, 2, 3), (3, 2, 2), (2, 1, 5)):
        want = same_position_reference(grid)
        what = f"mask_fn(grid={grid})"
        got, problem = call(mask_fn, (grid,), what)
        if problem:
            return verdict(name, problem, hint)
        problem = compare_tensor(got, want, what)
        if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
            got = got.detach().bool().cpu()
            f, i = _frames(grid), torch.arange(want.shape[0])
            if torch.equal(got, f[:, None] == f[None, :]):
                problem = f"{what}: that is the same-FRAME mask (space-only); time-only keeps the same (h, w)"
            elif torch.equal(got, ~want):
                problem = f"{what}: the mask is inverted; True means 'may attend'"
            elif torch.equal(got, (i % grid[0])[:, None] == (i % grid[0])[None, :]):
                problem = f"{what}: i % nt is not the position; there are nh·nw positions, so use i % (nh·nw)"
        if problem:
            return verdict(name, problem, hint)
    grid = (4, 2, 3)
    g = torch.Generator().manual_seed(40)
    q, k, v = torch.randn(3, 2, 3, 24, 8, generator=g)
    want = attention_explicit(q, k, v, same_position_reference(grid))[0]
    what = f"attn_fn(q, k, v, grid={grid}) with q {tuple(q.shape)}"
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):             # so SDPA's matrix products are counted too
        got, problem = call(attn_fn, (q.clone(), k.clone(), v.clone(), grid), what)
    if problem:
        return verdict(name, problem, hint)
    got = _first(got)
    problem = compare_tensor(got, want, what)
    if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
        got = got.detach().float()
        if torch.allclose(got, rearrange(want, "b h (t s) d -> b h (s t) d", t=grid[0]), atol=1e-5):
            problem = f"{what}: the values are right but the tokens come back in (s t) order; unfold to (t s)"
        elif torch.allclose(got, attention_explicit(q, k, v, local_time_reference(grid, 0))[0], atol=1e-5):
            problem = f"{what}: that is attention within each frame (space-only); fold the positions, not the frames"
    if problem:
        return verdict(name, problem, hint)
    b, h, n, d = q.shape
    folded = 4 * b * h * (n // grid[0]) * grid[0] ** 2 * d        # q kᵀ and a v over nt tokens per position
    if counter.get_total_flops() > 2 * folded:
        return verdict(name, f"{what}: right values, but {counter.get_total_flops():,} FLOPs where the fold needs "
                             f"{folded:,}: a mask still computes all N² scores; fold the positions into the "
                             "batch and attend without a mask", hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 2: local window
def check_local_time_mask(fn: Callable) -> bool:
    """``fn(grid, w) -> (N, N)`` bool: a token may attend to every token of the token-frames within
    ``w`` of its own frame, before and after (|t_query - t_key| <= w), all positions."""
    name = "check_local_time_mask"
    hint = "compare token-frames, not token indices: frame(i) = i // (nh·nw), then |frame(i) - frame(j)| <= w"
    for grid, w in (((5, 2, 3), 1), ((7, 4, 4), 2), ((4, 1, 2), 0), ((6, 2, 2), 10)):
        want = local_time_reference(grid, w)
        what = f"fn(grid={grid}, w={w})"
        got, problem = call(fn, (grid, w), what)
        if problem:
            return verdict(name, problem, hint)
        problem = compare_tensor(got, want, what)
        if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
            got = got.detach().bool().cpu()
            i, f = torch.arange(want.shape[0]), _frames(grid)
            diff = f[:, None] - f[None, :]
            if torch.equal(got, (i[:, None] - i[None, :]).abs() <= w):
                problem = f"{what}: that is a band over token indices; the window is over token-frames"
            elif torch.equal(got, diff.abs() < w):
                problem = f"{what}: frames exactly w apart belong to the window too (<= w, not < w)"
            elif torch.equal(got, want & same_position_reference(grid)):
                problem = f"{what}: a token sees every position of the nearby frames, not only its own (h, w)"
            elif torch.equal(got, (diff >= 0) & (diff <= w)):
                problem = f"{what}: that window looks only back in time; it covers w frames on both sides"
            elif torch.equal(got, diff.abs() <= w // 2):
                problem = f"{what}: here w counts each side: frames t - w .. t + w"
        if problem:
            return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 3: crossover
def crossover_reference(dim: int, mlp_ratio: float) -> int:
    """Smallest N with 4·N²·D > half of block_flops(N, D, mlp_ratio): N > 2D + H."""
    return 2 * dim + mlp_hidden_dim(dim, mlp_ratio) + 1


def check_crossover(fn: Callable) -> bool:
    """``fn(dim, mlp_ratio) -> int``: the smallest token count N at which the attention core (the two
    N² products, 4·N²·D FLOPs) is MORE than half of the FLOPs of one pre-norm block whose MLP has
    ``int(dim * mlp_ratio)`` hidden units."""
    name = "check_crossover"
    hint = ("write the block as 8·N·D² (attention projections) + 4·N·D·H (MLP) + 4·N²·D (core) "
            "and solve core > the rest for N")
    for dim, ratio in ((64, 4.0), (32, 2.0), (10, 2.55), (48, 1.0), (768, 4.0), (96, 8 / 3)):
        want = crossover_reference(dim, ratio)
        what = f"fn(dim={dim}, mlp_ratio={ratio:g})"
        got, problem = call(fn, (dim, ratio), what)
        if problem:
            return verdict(name, problem, hint)
        problem = compare_count(got, want, what)
        if problem is None:
            continue
        h = mlp_hidden_dim(dim, ratio)
        try:
            value = float(got)
        except Exception:  # not a number at all
            return verdict(name, f"{what} should return a whole number of tokens", hint)
        if value == want - 1:
            problem = f"{what}: at N = 2D + H the core is exactly half; the question asks for more than half"
        elif value in (6 * dim, 6 * dim + 1):
            problem = f"{what}: 6D holds for mlp_ratio 4 only; the MLP's hidden width H = int(D·r) moves it"
        elif math.isclose(value, 2 * dim + dim * ratio + 1) or math.isclose(value, 2 * dim + dim * ratio):
            problem = f"{what}: the hidden width is a whole number, int(dim * mlp_ratio) = {h}"
        elif value in (h, h + 1):
            problem = f"{what}: the attention's projections (QKV and output, 8·N·D²) are on the linear side too"
        elif value in (2 * dim, 2 * dim + 1):
            problem = f"{what}: the MLP (4·N·D·H FLOPs) is part of the block"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 4: saturation
SAT_WIDTHS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SAT_TOKENS = 256


def effective_keys_reference(q: torch.Tensor, k: torch.Tensor, scale: float) -> float:
    """Mean over queries of 1 / sum_j p_ij², p = softmax(scale · q kᵀ) over the keys."""
    p = (scale * q @ k.T).softmax(-1)
    return (1 / (p * p).sum(-1)).mean().item()


def saturation_run(seed: int = 0) -> dict[int, tuple[float, float]]:
    """{d: (effective keys without the scale, with 1/sqrt(d))} for 256 random queries and keys."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for d in SAT_WIDTHS:
        q, k = torch.randn(2, SAT_TOKENS, d, generator=g)
        out[d] = (effective_keys_reference(q, k, 1.0), effective_keys_reference(q, k, 1 / math.sqrt(d)))
    return out


def saturation_conclusions(seed: int = 0) -> tuple[int, float]:
    """(smallest width at which an unscaled query reads fewer than 10 keys, scaled share at d = 256)."""
    run = saturation_run(seed)
    few = next(d for d in SAT_WIDTHS if run[d][0] < 10)
    return few, run[SAT_WIDTHS[-1]][1] / SAT_TOKENS


def _saturation_slips(q: torch.Tensor, k: torch.Tensor, scale: float) -> dict[str, float]:
    s = scale * q @ k.T
    p = s.softmax(-1)
    p0 = s.softmax(0)
    return {
        "sum p²": (p * p).sum(-1).mean().item(),
        "softmax over queries": (1 / (p0 * p0).sum(0)).mean().item(),
        "inverse of the mean": 1 / (p * p).sum(-1).mean().item(),
        "sum over queries": (1 / (p * p).sum(-1)).sum().item(),
        "largest weight": (1 / p.amax(-1)).mean().item(),
    }


_SAT_SLIPS = {
    "sum p²": "that is sum p², the chance that two draws pick the same key; the effective number is its inverse",
    "softmax over queries": "the softmax runs over the keys (dim=-1): each query's weights sum to 1",
    "inverse of the mean": "average 1 / sum p² over the queries, not the inverse of the average",
    "sum over queries": "average over the queries, do not sum",
    "largest weight": "that is 1 / the largest weight; use 1 / sum_j p_j²",
}


def check_softmax_saturation(fn: Callable, few_keys_width, scaled_share) -> bool:
    """``fn(q, k, scale) -> float``: q (Nq, d), k (Nk, d); the mean over queries of the effective
    number of keys 1 / sum_j p_ij², p = softmax(scale · q kᵀ) over the keys. ``few_keys_width``: from
    your run on 256 random queries and keys per width in (1, 2, 4, ..., 256), the smallest width at which
    an UNSCALED query (scale 1) reads fewer than 10 keys; ``scaled_share``: with scale 1/sqrt(d), the
    effective keys at d = 256 divided by the 256 keys."""
    name = "check_softmax_saturation"
    hint = ("softmax the scaled scores over the keys, then 1 / (sum of squared weights) per query, averaged; "
            "run every width with scale 1 and with 1 / sqrt(d), and read the two answers off your table")
    g = torch.Generator().manual_seed(41)
    for d, nq, nk, scale in ((4, 6, 9, 1.0), (16, 32, 40, 0.25), (64, 20, 30, 1.0), (64, 20, 30, 0.125)):
        q, k = torch.randn(nq, d, generator=g), torch.randn(nk, d, generator=g)
        want = effective_keys_reference(q, k, scale)
        what = f"fn(q {tuple(q.shape)}, k {tuple(k.shape)}, scale={scale:g})"
        got, problem = call(fn, (q.clone(), k.clone(), scale), what)
        if problem:
            return verdict(name, problem, hint)
        problem = compare_number(got, want, what, tol=1e-3 * max(1.0, want))
        if problem is None:
            continue
        value = float(got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got) \
            if isinstance(got, (int, float, torch.Tensor)) else None
        if value is not None:
            for slip, slip_value in _saturation_slips(q, k, scale).items():
                if math.isclose(value, slip_value, rel_tol=1e-3):
                    problem = f"{what}: {_SAT_SLIPS[slip]}"
                    break
            else:
                if scale != 1.0 and math.isclose(value, effective_keys_reference(q, k, 1.0), rel_tol=1e-3):
                    problem = f"{what}: the scores must be multiplied by scale before the softmax"
                elif math.isclose(value, effective_keys_reference(q, k, 1 / math.sqrt(d)), rel_tol=1e-3):
                    problem = f"{what}: use the scale you are given, not always 1/sqrt(d)"
        return verdict(name, problem, hint)
    few, share = saturation_conclusions()
    if few_keys_width is None or scaled_share is None:
        return verdict(name, "effective_keys is right; now run the experiment and set few_keys_width and "
                             "scaled_share (still None)", hint)
    problem = compare_count(few_keys_width, few, "few_keys_width")
    if problem:
        if few_keys_width not in SAT_WIDTHS:
            problem = f"few_keys_width: pick one of the widths you ran, {SAT_WIDTHS}"
        else:
            problem = (f"few_keys_width: {few_keys_width} does not match the run; take the first width whose "
                       "UNSCALED effective keys fall below 10 of 256")
        return verdict(name, problem, hint)
    problem = compare_number(scaled_share, share, "scaled_share", tol=0.05)
    if problem:
        try:
            value = float(scaled_share)
        except (TypeError, ValueError):
            value = float("nan")
        if value > 1:
            problem = "scaled_share: that is a number of keys; divide it by the 256 keys"
        elif value < 0.05:
            problem = "scaled_share: that is the unscaled run; the share asked for uses scale 1/sqrt(d)"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)
