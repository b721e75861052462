"""Exercise checks for notebook 07 (TimeSformer: divided space-time attention and its alternatives).

Each check calls the learner's function on fixed inputs, compares the result with a vtlib
reference, prints ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: ...")
and returns a bool. A function that still raises ``NotImplementedError`` gets the fixed
"write the function first" line. Inputs come from private seeded generators, and the models the checks
build leave the global random state as it was.

- ``check_time_window_mask``: the pattern of a temporal attention limited to the frames within ``w``
  of the query's, a variant of ``vtlib.models.timesformer.attention_masks("divided", ...)["time"]``.
- ``check_score_entries``: entries of every score matrix of one block and head for one clip, CLS
  copies included, against ``TimeSformer.attention_score_entries``.
- ``check_group_hwt``: the sub-attention groups of ``vtlib.models.timesformer.group`` for tokens
  stored in the reference code's (h w t) order.
- ``check_frame_order``: a small experiment: does shuffling the frames of a clip move the logits of
  a TimeSformer, and which part of the model makes it notice.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import torch
from einops import rearrange

from vtlib.exercises.common import call, compare_count, compare_number, compare_tensor, verdict


def _model(attention: str, grid):
    """A tiny TimeSformer with this patch grid (2 x 2 pixel patches, width 8, 1 block, 1 head)."""
    from vtlib.models.timesformer import TimeSformer

    T, nh, nw = grid
    with torch.random.fork_rng(devices=[]):                  # only its counts are used; keep the random state
        return TimeSformer(video_shape=(T, 2 * nh, 2 * nw), patch=2, dim=8, depth=1, heads=1, attention=attention)


# ----------------------------------------------------------------------------- exercise 1: a time window
def _window_patterns(grid, w: int) -> dict[str, torch.Tensor]:
    """The right (1+T*N, 1+T*N) pattern of temporal attention within w frames, and typical slips."""
    T, nh, nw = grid
    n, N = T * nh * nw, nh * nw
    frame, place, token = torch.arange(n) // N, torch.arange(n) % N, torch.arange(n)
    near = (frame[:, None] - frame[None, :]).abs() <= w
    same = place[:, None] == place[None, :]
    patterns = {"right": same & near, "all frames": same, "both sides": same & ((frame[:, None] - frame[None, :])
                .abs() <= w // 2), "tokens": (token[:, None] - token[None, :]).abs() <= w, "no position": near}
    out = {}
    for key, p in patterns.items():
        m = torch.zeros(1 + n, 1 + n, dtype=torch.bool)
        m[1:, 1:] = p
        out[key] = m
    cls = out["right"].clone()
    cls[0, :] = cls[:, 0] = True
    out["cls"] = cls
    return out


def check_time_window_mask(fn: Callable) -> bool:
    """``fn(grid, w) -> (1 + T*N, 1 + T*N) bool``: the pattern of a temporal attention limited to a window
    of time, for a (T, nh, nw) patch grid, index 0 the CLS, then the patches in (t h w) order, True = the
    query (row) scores the key (column). A patch sees the patches at its own position in the frames at most
    ``w`` frames before or after its own; the CLS takes no part (the reference code), as in
    ``attention_masks("divided", grid)["time"]``, which is the case of an unlimited window."""
    name = "check_time_window_mask"
    hint = ("work out the frame and the position of every patch token from its index in (t h w) order, "
            "compare them for every pair of patches, and leave the CLS row and column alone")
    slips = {"all frames": "every patch sees ALL frames at its position; keep only frames at most w away",
             "both sides": "the window reaches only w // 2 frames each way; it is w frames on EACH side",
             "tokens": "that is a distance in TOKENS; the same position in the next frame is N tokens further",
             "no position": "patches see other positions in the nearby frames; only their own position",
             "cls": "the CLS takes no part in temporal attention in the reference code: row and column 0 stay False"}
    for grid, w in (((8, 4, 4), 1), ((5, 2, 3), 2), ((4, 3, 3), 0), ((6, 2, 2), 7)):
        patterns = _window_patterns(grid, w)
        what = f"fn(grid={grid}, w={w})"
        got, problem = call(fn, (grid, w), what)
        problem = problem or compare_tensor(got, patterns["right"], what)
        if problem is None:
            continue
        if isinstance(got, torch.Tensor) and got.shape == patterns["right"].shape:
            got = got.detach().bool().cpu()
            for slip, message in slips.items():
                if not torch.equal(patterns[slip], patterns["right"]) and torch.equal(got, patterns[slip]):
                    problem = f"{what}: {message}"
                    break
        elif isinstance(got, torch.Tensor) and tuple(got.shape) == (grid[0] * grid[1] * grid[2],) * 2:
            problem = f"{what}: shape {tuple(got.shape)} has no CLS row and column; put the CLS at index 0"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 2: score entries
def _comparisons(attention: str, grid) -> int:
    """Keys one patch query scores in one block (the reference code's CLS handling)."""
    from vtlib.models.timesformer import attention_masks

    return int(sum(m[1].sum() for m in attention_masks(attention, grid).values()))


def _score_entries(attention: str, grid, slip: str | None = None) -> int:
    """Score entries of one block and head for one clip; ``slip`` ("no cls", "cls everywhere") names a mistake."""
    from vtlib.models.timesformer import SCHEMES, group_ids

    T, nh, nw = grid
    n, cls = T * nh * nw, 0 if slip == "no cls" else 1
    if attention == "joint":
        return (n + cls) ** 2
    if attention == "space":
        return T * (nh * nw + cls) ** 2
    total = 0
    for i, sub in enumerate(SCHEMES[attention]):
        G = int(group_ids(sub, grid).max()) + 1
        with_cls = slip == "cls everywhere" or (i == len(SCHEMES[attention]) - 1 and slip != "no cls")
        total += G * (n // G + with_cls) ** 2
    return total


def check_score_entries(fn: Callable) -> bool:
    """``fn(attention, T, nh, nw) -> int``: the entries of every attention score matrix of ONE block and ONE
    head for one clip, the reference code's CLS handling (``cls_in_time=False``): every group of a
    sub-attention is its own (L, L) matrix, and in the last sub-attention every group gets a copy of the CLS."""
    from vtlib.models.timesformer import ATTENTIONS

    name = "check_score_entries"
    hint = ("for each sub-attention, count its groups and the tokens in each (a group of L tokens scores "
            "L^2 entries), and find where the CLS copies join")
    slips = {"no cls": "the CLS is a query and a key too: add it to every group of the last attention",
             "cls everywhere": "the reference code leaves the CLS out of every sub-attention but the last"}
    for grid in ((8, 4, 4), (4, 2, 6), (2, 6, 4), (16, 14, 14)):
        T, nh, nw = grid
        for attention in ATTENTIONS:
            what = f"fn({attention!r}, T={T}, nh={nh}, nw={nw})"
            got, problem = call(fn, (attention, T, nh, nw), what)
            want = _model(attention, grid).attention_score_entries()
            problem = problem or compare_count(got, want, what)
            if problem is None:
                continue
            for slip, message in slips.items():
                wrong = _score_entries(attention, grid, slip)
                if wrong != want and compare_count(got, wrong, what) is None:
                    problem = f"{what}: {message}"
                    break
            else:
                if compare_count(got, (1 + T * nh * nw) * _comparisons(attention, grid), what) is None:
                    problem = (f"{what}: that is comparisons per patch times the tokens; the CLS copies and the "
                               "groups make the total differ: sum G * L^2 over the sub-attentions")
            return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 3: (h w t) order
HWT_NAMES = ("time", "space", "width", "height")


def _group_problem(fn: Callable, sub: str, grid, g: torch.Generator) -> str | None:
    from vtlib.models.timesformer import GROUPINGS, group

    T, nh, nw = grid
    n = T * nh * nw
    x = torch.randn(2, n, 3, generator=g)                              # (h w t) order
    thw = rearrange(x, "b (h w t) d -> b (t h w) d", h=nh, w=nw)
    what = f"fn(x {tuple(x.shape)} in (h w t) order, {sub!r}, grid={grid})"
    got, problem = call(fn, (x.clone(), sub, grid), what)
    if problem:
        return problem
    want = group(thw, sub, grid)
    problem = compare_tensor(got, want, what)
    if problem is None or not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return problem
    got = got.detach().float()
    if torch.equal(got, rearrange(x, GROUPINGS[sub], t=T, h=nh)):
        return (f"{what}: that pattern reads the tokens as (t h w); write the left side in the order they are "
                "stored, (h w t)")
    key = got[..., 0]                                                  # one number per token identifies it
    ref = want[..., 0]
    if torch.equal(key.sort(dim=1).values, ref.sort(dim=1).values):
        return f"{what}: the right groups, but inside each group the tokens come in another order than vtlib's"
    if torch.equal(key.sort(dim=1).values.sort(dim=0).values, ref.sort(dim=1).values.sort(dim=0).values):
        return (f"{what}: the right groups, in another order; keep GROUPINGS' order on the right side: "
                "the batch first, then the kept axes in (t h w) order")
    return problem


def check_group_hwt(fn: Callable) -> bool:
    """``fn(x (B, T*N, D), name, grid) -> (B*G, L, D)``: patch tokens stored in (h w t) order (the reference
    code's), grouped for sub-attention ``name`` ("time", "space", "width" or "height") exactly as
    ``vtlib.models.timesformer.group`` groups the same tokens in (t h w) order: same groups, same order."""
    hint = ("the right side of GROUPINGS[name] says what comes out; only the left side, which describes how "
            "the tokens are stored, has to change")
    g = torch.Generator().manual_seed(7)
    for grid in ((4, 2, 3), (3, 4, 2), (2, 3, 5)):
        for sub in HWT_NAMES:
            problem = _group_problem(fn, sub, grid, g)
            if problem:
                return verdict("check_group_hwt", problem, hint)
    return verdict("check_group_hwt", None, hint)


# ----------------------------------------------------------------------------- exercise 4: frame order
ORDER_MODELS = {"divided": {}, "divided_random_fc": dict(temporal_init="default"),
                "divided_random_time": dict(time_init="normal"), "joint": dict(attention="joint")}
ORDER = (3, 0, 6, 1, 7, 2, 4, 5)
MOVES = 1e-5                                          # a change above this counts as "the logits move"


def order_model(key: str):
    """The TimeSformer of ``ORDER_MODELS[key]``: 8 frames of 28 x 28, patch 7, dim 48, 2 blocks, seed 0."""
    from vtlib.models.timesformer import TimeSformer

    with torch.random.fork_rng(devices=[]):                  # the learner's random state stays as it was
        torch.manual_seed(0)
        return TimeSformer(video_shape=(8, 28, 28), patch=7, dim=48, depth=2, heads=4, **ORDER_MODELS[key]).eval()


def order_clip() -> torch.Tensor:
    return torch.rand(2, 1, 8, 28, 28, generator=torch.Generator().manual_seed(7))


@torch.no_grad()
def _order_change(model, clip: torch.Tensor, order) -> float:
    """max |logits(clip) - logits(clip with its frames put in ``order``)|."""
    return (model(clip) - model(clip[:, :, list(order)])).abs().max().item()


@functools.lru_cache(maxsize=None)
def _reference_changes() -> dict[str, float]:
    return {k: _order_change(order_model(k), order_clip(), ORDER) for k in ORDER_MODELS}


def check_frame_order(fn: Callable, answers: Any) -> bool:
    """``fn(model, clip, order) -> float``: how far (max absolute logit change) the logits of ``model`` move
    when the frames of ``clip`` (B, C, T, H, W) are put in ``order``; ``answers``: a dict with a bool per
    key of ``ORDER_MODELS``: do that model's logits move (by more than 1e-5) when the frames are shuffled?"""
    name = "check_frame_order"
    hint = ("reorder the clip along its frame axis, compare the logits of the two calls without autograd, and "
            "answer from your own numbers")
    clip = order_clip()
    for key in ORDER_MODELS:
        what = f"fn(order_model({key!r}), clip, order={ORDER})"
        got, problem = call(fn, (order_model(key), clip.clone(), ORDER), what)
        if problem:
            return verdict(name, problem, hint)
        want = _reference_changes()
        problem = compare_number(got, want[key], what, tol=MOVES / 2 + 0.01 * want[key])
        if problem:
            with torch.no_grad():
                m = order_model(key)
                reversed_ = (m(clip) - m(clip.flip(2))).abs().max().item()
            if reversed_ > MOVES and compare_number(got, reversed_, what, tol=0.01 * reversed_) is None:
                problem = f"{what}: that is the change for the clip played backwards; use the given order"
            return verdict(name, problem, hint)
    if not isinstance(answers, dict) or set(answers) != set(ORDER_MODELS):
        return verdict(name, f"answers should be a dict with the keys {sorted(ORDER_MODELS)}", hint)
    for key in ORDER_MODELS:
        if not isinstance(answers[key], bool):
            return verdict(name, f"answers[{key!r}] should be True or False, got {answers[key]!r}", hint)
        if answers[key] != (want[key] > MOVES):
            return verdict(name, f"answers[{key!r}] disagrees with your measurement of that model (True means "
                                 "a change above 1e-5)", hint)
    return verdict(name, None, hint)
