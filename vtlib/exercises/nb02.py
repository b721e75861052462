"""Exercise checks for notebook 02 (positional encoding).

Each check calls the learner's function on fixed inputs, compares the result with a vtlib
reference, prints ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: ...")
and returns a bool. A function that still raises ``NotImplementedError`` gets the fixed
"write the function first" line.

- ``check_sincos_2d``: a fixed sin-cos table for a (nh, nw) grid of patches, [height | width]
  blocks, against ``vtlib.position.sincos_1d`` per axis.
- ``check_shift_matrix``: the relative-offset property of the 1D sinusoid as a matrix: the
  (D, D) rotation R with pos[n + k] = R @ pos[n], checked numerically on ``sincos_1d`` tables.
- ``check_interpolate_time``: a time table resized to another frame count by linear interpolation
  written by hand, against ``vtlib.position.resize_time``.
- ``check_position_params``: learned parameter counts of three layouts (joint, space + time,
  axial t + h + w) for a clip size and tubelet, against ``vtlib.position`` modules.
- ``check_order_blindness``: a small experiment: which (position code, pool) pairs leave a
  frame-token ViViT blind to frame order, measured on untrained models.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from vtlib.exercises.common import call, compare_count, compare_tensor, verdict
from vtlib.position import LearnedPosition, SpaceTimePosition, resize_time, sincos_1d
from vtlib.utils import count_parameters


def _same(got, want: torch.Tensor, atol: float = 1e-5) -> bool:
    return (isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(want.shape)
            and torch.allclose(got.detach().double().cpu(), want.double(), atol=atol))


# ----------------------------------------------------------------------------- exercise 1: 2D sin-cos
def _sincos_2d(grid_hw: tuple[int, int], dim: int, blocks: str = "h w", rows: str = "h w") -> torch.Tensor:
    """The (nh*nw, dim) table with channel blocks in ``blocks`` order and rows in ``rows`` order."""
    nh, nw = grid_hw
    h = repeat(sincos_1d(nh, dim // 2), "h d -> h w d", w=nw)
    w = repeat(sincos_1d(nw, dim // 2), "w d -> h w d", h=nh)
    table = torch.cat([h, w] if blocks == "h w" else [w, h], dim=-1)
    return rearrange(table, f"h w d -> ({rows}) d")


def check_sincos_2d(fn: Callable) -> bool:
    """``fn(grid_hw=(nh, nw), dim) -> (nh*nw, dim)``: rows in (h w) order; channels [0, D/2) hold
    ``sincos_1d(nh, D/2)`` of the row h, channels [D/2, D) ``sincos_1d(nw, D/2)`` of the column w."""
    name = "check_sincos_2d"
    hint = ("do what section 2.3 does with two axes instead of three: one 1D code per axis at width dim // 2, "
            "[height | width] on the channel axis, rows in (h w) order")
    for grid_hw, dim in (((3, 5), 12), ((4, 4), 8), ((2, 7), 16)):
        what = f"fn({grid_hw}, {dim})"
        got, problem = call(fn, (grid_hw, dim), what)
        if problem:
            return verdict(name, problem, hint)
        want = _sincos_2d(grid_hw, dim)
        problem = compare_tensor(got, want, what)
        if problem is None:
            continue
        if _same(got, _sincos_2d(grid_hw, dim, blocks="w h")):
            problem = f"{what}: the two halves are swapped; the first dim // 2 channels code the row h"
        elif _same(got, _sincos_2d(grid_hw, dim, rows="w h")):
            problem = f"{what}: rows are in (w h) order; row h * nw + w must hold patch (h, w)"
        elif _same(got, sincos_1d(grid_hw[0] * grid_hw[1], dim)):
            problem = f"{what}: that is the 1D code of the flattened index; code h and w separately"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 2: shift matrix
def _shift_matrix(k: int, dim: int, sign: int = 1, per_channel: bool = False) -> torch.Tensor:
    """Block-diagonal R (float64) with sincos_1d(., dim)[n + k] = R @ sincos_1d(., dim)[n]."""
    R = torch.zeros(dim, dim, dtype=torch.float64)
    for i in range(dim // 2):
        exponent = (2 * i if not per_channel else i) / dim
        b = sign * k / 10000 ** exponent
        c, s = torch.cos(torch.tensor(b, dtype=torch.float64)), torch.sin(torch.tensor(b, dtype=torch.float64))
        R[2 * i:2 * i + 2, 2 * i:2 * i + 2] = torch.stack([torch.stack([c, s]), torch.stack([-s, c])])
    return R


def check_shift_matrix(fn: Callable) -> bool:
    """``fn(k, dim) -> (dim, dim)``: the matrix R with ``pos[n + k] = R @ pos[n]`` for every row n of
    ``sincos_1d(., dim)`` (even dim): one 2x2 block per channel pair (sin, cos), zeros elsewhere."""
    name = "check_shift_matrix"
    hint = ("for the pair (sin a, cos a) with a = n * w_i, write sin(a + k w_i) and cos(a + k w_i) with the "
            "sum formulas; check your R with torch.allclose(table[k:], table[:-k] @ R.T, atol=1e-5)")
    for k, dim in ((1, 8), (3, 12), (5, 48), (20, 16)):
        what = f"fn(k={k}, dim={dim})"
        got, problem = call(fn, (k, dim), what)
        if problem:
            return verdict(name, problem, hint)
        want = _shift_matrix(k, dim).float()
        problem = compare_tensor(got, want, what)
        if problem is None:
            continue
        if _same(got, _shift_matrix(k, dim, sign=-1)):
            problem = (f"{what}: that matrix moves k slots back (pos[n - k]), the transpose of R; channel 2i "
                       f"holds the sine, so the block is [[cos, sin], [-sin, cos]]")
        elif _same(got, _shift_matrix(k, dim, per_channel=True)):
            problem = f"{what}: pair i turns at w_i = 10000^(-2i / dim), not 10000^(-i / dim)"
        elif isinstance(got, torch.Tensor) and tuple(got.shape) == (dim, dim):
            table = sincos_1d(k + 40, dim).double()
            if not torch.allclose(table[k:], table[:-k] @ got.detach().double().cpu().T, atol=1e-4):
                problem = f"{what}: R @ pos[n] is not pos[n + k] (tried on sincos_1d({k + 40}, {dim}))"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 3: interpolate time
def _interpolate(time: torch.Tensor, new_frames: int, align_corners: bool = True) -> torch.Tensor:
    x = rearrange(time.double(), "t d -> 1 d t")
    return rearrange(F.interpolate(x, size=new_frames, mode="linear", align_corners=align_corners), "1 d t -> t d")


def _nearest(time: torch.Tensor, new_frames: int) -> torch.Tensor:
    where = torch.linspace(0, time.shape[0] - 1, new_frames, dtype=torch.float64)
    return time.double()[where.round().long()]


def check_interpolate_time(fn: Callable) -> bool:
    """``fn(time (T, D), new_frames) -> (new_frames, D)``: linear interpolation along time with the
    first and last rows kept (as ``resize_time(..., mode="interpolate")``), without F.interpolate."""
    name = "check_interpolate_time"
    hint = ("new row k reads the old table at s = k * (T - 1) / (new_frames - 1); mix the two old rows around s, "
            "each weighted by how close s is to it, and take care at the last row")
    g = torch.Generator().manual_seed(2)
    for T, D, new in ((14, 8, 28), (7, 6, 4), (5, 3, 9), (3, 4, 3), (2, 5, 6)):
        time = torch.randn(T, D, generator=g)
        what = f"fn(time {T}x{D}, new_frames={new})"
        got, problem = call(fn, (time.clone(), new), what)
        if problem:
            return verdict(name, problem, hint)
        want = resize_time(time[:, None, :], new, "interpolate")[:, 0]
        problem = compare_tensor(got, want, what)
        if problem is None:
            continue
        if _same(got, _interpolate(time, new, align_corners=False)):
            problem = (f"{what}: those are F.interpolate's default positions (align_corners=False); here the "
                       f"first and last rows must stay where they are")
        elif _same(got, _nearest(time, new)):
            problem = f"{what}: that copies the nearest row; mix the two rows around each new position linearly"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 4: parameter counts
def _grid(frames: int, size: int, tubelet: tuple[int, int, int]) -> tuple[int, int, int]:
    return frames // tubelet[0], size // tubelet[1], size // tubelet[2]


def _params(frames: int, size: int, tubelet: tuple[int, int, int], dim: int) -> tuple[int, int, int]:
    nt, nh, nw = _grid(frames, size, tubelet)
    return (count_parameters(LearnedPosition(num_tokens=nt * nh * nw, dim=dim)),
            count_parameters(SpaceTimePosition(num_frames=nt, num_patches=nh * nw, dim=dim)),
            (nt + nh + nw) * dim)


def check_position_params(fn: Callable) -> bool:
    """``fn(frames, size, tubelet=(kt, kh, kw), dim) -> (joint, space_time, axial)``: learned parameters of
    the position code of frames x size x size clips cut into tubelets: one vector per token (joint),
    TimeSformer's space + time tables, and three tables for t, h and w (axial, summed per token)."""
    name = "check_position_params"
    hint = ("first the token grid (nt, nh, nw) from the clip and the tubelet; then count the rows of each "
            "layout's tables; every row holds dim numbers")
    cases = ((32, 32, (4, 8, 8), 48), (16, 224, (2, 16, 16), 768), (64, 64, (2, 8, 8), 768), (8, 96, (1, 12, 16), 96))
    for frames, size, tubelet, dim in cases:
        what = f"fn({frames}, {size}, {tubelet}, {dim})"
        got, problem = call(fn, (frames, size, tubelet, dim), what)
        if problem:
            return verdict(name, problem, hint)
        want = _params(frames, size, tubelet, dim)
        problem = compare_count(got, want, what)
        if problem is None:
            continue
        try:
            joint, st, axial = (int(v) for v in got)
        except Exception:  # not three numbers
            return verdict(name, f"{what} should return three whole numbers (joint, space_time, axial)", hint)
        nt, nh, nw = _grid(frames, size, tubelet)
        if (joint, st, axial) == tuple(v // dim for v in want):
            problem = f"{what}: those are rows; each row is a vector of dim = {dim} numbers"
        elif st == (nt + nh + nw) * dim:
            problem = f"{what}: the space table has one row per patch of a frame, nh * nw = {nh * nw} rows"
        elif joint == (nt * nh * nw + 1) * dim:
            problem = f"{what}: no CLS here: the joint table has one row per tubelet token, {nt * nh * nw} rows"
        elif joint != want[0]:
            problem = f"{what}: joint should be {want[0]} (grid {nt}x{nh}x{nw}), got {joint}"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 5: order blindness
POSITIONS = ("none", "learned", "sincos1d", "sincos3d", "space", "spacetime")
POOLS = ("mean", "cls")


def reverse_blocks(x: torch.Tensor, block: int) -> torch.Tensor:
    """(B, C, T, H, W): reverse the order of the blocks of ``block`` frames."""
    blocks = rearrange(x, "b c (n s) h w -> b c n s h w", s=block)
    return rearrange(blocks.flip(2), "b c n s h w -> b c (n s) h w")


def order_sensitive(model, clips: torch.Tensor, block: int) -> bool:
    """Do ``model``'s logits change (by more than 1e-4) when the blocks of ``block`` frames are reversed?"""
    with torch.no_grad():
        return bool((model(clips) - model(reverse_blocks(clips, block))).abs().max() > 1e-4)


def frame_model(position: str, pool: str, seed: int = 0):
    """The untrained frame-token ViViT of the exercise (one token per kept frame)."""
    from vtlib.models.vivit import ViViT

    torch.manual_seed(seed)
    return ViViT(embed="frame", tubelet=(2, 28, 28), dim=48, position=position, pool=pool).eval()


def _clips() -> torch.Tensor:
    from vtlib.data import make_motion_videos

    return make_motion_videos(8, "direction", seed=3)[0]


@lru_cache(maxsize=1)
def _blind_reference() -> frozenset:
    clips = _clips()
    return frozenset((p, q) for p in POSITIONS for q in POOLS if not order_sensitive(frame_model(p, q), clips, 2))


def check_order_blindness(fn: Callable, blind) -> bool:
    """``fn(model, clips, block) -> bool``: whether ``model``'s logits change when the order of the blocks
    of ``block`` frames of ``clips`` is reversed; ``blind``: the set of (position, pool) pairs, position in
    ``POSITIONS`` and pool in ("mean", "cls"), for which the frame-token ViViT (``frame_model``) can never
    learn the direction task."""
    from vtlib.models.vivit import ViViT

    name = "check_order_blindness"
    hint = ("reverse the blocks with reverse_blocks(clips, block), compare the two logits under torch.no_grad(), "
            "then run your function on frame_model(position, pool) for every pair")
    clips = _clips()
    torch.manual_seed(1)
    tube = ViViT(embed="tubelet", tubelet=(4, 7, 7), dim=48, position="none", pool="mean").eval()
    cases = [("frame_model('none', 'mean')", frame_model("none", "mean"), 2),
             ("frame_model('learned', 'mean')", frame_model("learned", "mean"), 2),
             ("frame_model('space', 'cls')", frame_model("space", "cls"), 2),
             ("frame_model('sincos3d', 'cls')", frame_model("sincos3d", "cls"), 2),
             ("a 4x7x7 tubelet ViViT without positions", tube, 4)]
    for label, model, block in cases:
        what = f"fn({label}, clips, block={block})"
        got, problem = call(fn, (model, clips.clone(), block), what)
        if problem:
            return verdict(name, problem, hint)
        want = order_sensitive(model, clips, block)
        if not isinstance(got, (bool, torch.Tensor)) or bool(got) != want:
            if not isinstance(got, (bool, torch.Tensor)):
                why = f"return True or False, got {type(got).__name__}"
            elif want:
                why = "its logits do change when the blocks are reversed"
            else:
                why = ("its logits stay the same (up to rounding): compare with a tolerance, e.g. a largest "
                       "difference above 1e-4")
            return verdict(name, f"{what} gave {bool(got)}: {why}", hint)
    if blind is None:
        return verdict(name, "set blind to the set of (position, pool) pairs that stay blind to frame order", hint)
    try:
        got_blind = {(str(p), str(q)) for p, q in blind}
    except Exception:  # not pairs
        return verdict(name, "blind should be a set of (position, pool) pairs, e.g. {('none', 'mean')}", hint)
    want_blind = set(_blind_reference())
    if got_blind == want_blind:
        return verdict(name, None, hint)
    missing = want_blind - got_blind
    if missing and all(q == "cls" for _, q in missing):
        problem = ("blind misses a CLS model: the CLS sits in a fixed slot, but it reads the frames by a weighted "
                   "sum, which ignores their order")
    elif any(p == "space" for p, _ in missing):
        problem = ("blind misses a space-only code: a frame is one patch here, so the space code adds the same "
                   "vector to every frame")
    elif missing:
        problem = f"blind misses {sorted(missing)[0]}, whose logits do not change when the frames are reversed"
    else:
        extra = sorted(got_blind - want_blind)[0]
        problem = f"blind holds {extra}, whose logits change when the frames are reversed: measure it"
    return verdict(name, problem, hint)
