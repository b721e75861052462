"""Shape helpers every layer shares: (t, h, w) triples, video sizes, the clip check, token grids.

A clip is (B, C, T, H, W) float; sizes are (T, H, W); a token grid is (nt, nh, nw). These helpers
validate with the messages of ``vtlib.errors``, so a bad shape is named where it enters.
"""
from __future__ import annotations

from typing import Sequence

import torch

from vtlib.errors import bad_arg, check_float, check_positive_int, check_rank

Triple = tuple[int, int, int]
AXES = ("T", "H", "W")


def triple(name: str, value) -> Triple:
    """An int k means (k, k, k); a sequence must hold three positive ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value, value)
    if not isinstance(value, Sequence) or len(value) != 3:
        raise bad_arg(name, "three positive ints (t, h, w) or one int", repr(value),
                      f"pass e.g. {name}=(2, 4, 4)")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise bad_arg(name, "three positive ints (t, h, w)", repr(tuple(value)),
                          f"pass e.g. {name}=(2, 4, 4)")
    return tuple(int(v) for v in value)  # type: ignore[return-value]


def video_thw(video_shape) -> Triple:
    """(T, H, W) from a (T, H, W), (C, T, H, W) or (B, C, T, H, W) shape."""
    if isinstance(video_shape, torch.Size) or (isinstance(video_shape, Sequence) and 3 <= len(video_shape) <= 5):
        return triple("video_shape", tuple(int(s) for s in video_shape[-3:]))
    raise bad_arg("video_shape", "(T, H, W) (or a full (B, C, T, H, W) shape)", repr(video_shape),
                  "pass x.shape or (frames, height, width)")


RESIZE_FIX = "resize with vtlib.data.resize, or build the model with video_shape=x.shape[2:]"


def _check_not_empty(x: torch.Tensor) -> None:
    if x.shape[0] == 0:
        raise bad_arg("x", "at least one clip (B >= 1)", f"shape {tuple(x.shape)}",
                      "skip empty batches (DataLoader(drop_last=...) or check the split)")


def check_clip_shape(x: torch.Tensor, video_shape, fix: str = RESIZE_FIX) -> None:
    """x must be clips (B, C, T, H, W) with (T, H, W) == ``video_shape``, the shape a model was built for."""
    if not isinstance(x, torch.Tensor) or x.ndim != 5 or tuple(x.shape[2:]) != tuple(video_shape):
        got = f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise bad_arg("x", f"clips shaped (B, C, {', '.join(map(str, video_shape))})", got, fix)
    _check_not_empty(x)


def check_video(x: torch.Tensor, in_channels: int) -> None:
    """``x`` must be a float (B, C, T, H, W) clip with ``in_channels`` channels."""
    check_rank("x", x, 5, "B C T H W")
    check_float("x", x)
    _check_not_empty(x)
    if x.shape[1] != in_channels:
        raise bad_arg("x", f"{in_channels} channel(s) on axis 1 of (B, C, T, H, W)", f"shape {tuple(x.shape)}",
                      "for grayscale MedMNIST use x.unsqueeze(1) / C=1, or set in_channels to match")


def to_dtype_of(x: torch.Tensor, module: torch.nn.Module) -> torch.Tensor:
    """``x`` cast to the dtype of ``module``'s parameters (a float64 NumPy-made clip, or a float16
    one, into a float32 model), so models accept any float clip instead of failing inside a conv."""
    p = next(module.parameters(), None)
    return x if p is None or x.dtype == p.dtype else x.to(p.dtype)


def frames_patches(grid) -> tuple[int, int]:
    """(nt, S) from a token grid (nt, nh, nw) or (nt, S): frames and patches per frame."""
    if not isinstance(grid, (tuple, list)) or len(grid) not in (2, 3):
        raise bad_arg("grid", "a token grid (nt, nh, nw) or (nt, S)", repr(grid),
                      "pass model.grid, e.g. (7, 4, 4)")
    for v in grid:
        check_positive_int("grid", v)
    nt, *space = grid
    return nt, space[0] if len(space) == 1 else space[0] * space[1]
