"""The classic first steps of a video pipeline, on clips shaped (B, C, T, H, W).

- ``to_frames`` / ``from_frames``: a clip as a stack of images and back.
- ``sample_frames``: uniform temporal sampling (keep n evenly spaced frames).
- ``resize``: spatial (and optionally temporal) resizing with trilinear interpolation.
- ``augment``: training augmentations for 3D medical volumes, vectorised over the batch and
  reproducible under a ``torch.Generator``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from vtlib.errors import bad_arg, check_float, check_positive_int, check_rank

LAYOUT = "B C T H W"


def to_frames(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, T, C, H, W): the frames of each clip, as images."""
    check_rank("x", x, 5, LAYOUT)
    return rearrange(x, "b c t h w -> b t c h w")


def from_frames(frames: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) -> (B, C, T, H, W)."""
    check_rank("frames", frames, 5, "B T C H W")
    return rearrange(frames, "b t c h w -> b c t h w")


def frame_indices(num_frames: int, n: int) -> torch.Tensor:
    """Indices of n evenly spaced frames out of num_frames (centre of n equal segments)."""
    check_positive_int("n", n)
    if n > num_frames:
        raise bad_arg("n", f"at most num_frames={num_frames}", n,
                      "ask for fewer frames or resize in time with resize(..., frames=n)")
    return ((torch.arange(n) + 0.5) * num_frames / n).long()


def sample_frames(x: torch.Tensor, n: int) -> torch.Tensor:
    """Uniform frame sampling: (B, C, T, H, W) -> (B, C, n, H, W)."""
    check_rank("x", x, 5, LAYOUT)
    return x[:, :, frame_indices(x.shape[2], n)]


def resize(x: torch.Tensor, size: int | tuple[int, int], frames: int | None = None) -> torch.Tensor:
    """Resize clips to ``size`` (H, W) and, if given, ``frames`` in time (trilinear)."""
    check_rank("x", x, 5, LAYOUT)
    check_float("x", x)
    hw = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
    if not isinstance(hw, (tuple, list)) or len(hw) != 2:
        raise bad_arg("size", "an int or (H, W)", repr(size), "pass e.g. size=28 or size=(28, 28)")
    h, w = hw
    check_positive_int("size", h)
    check_positive_int("size", w)
    if frames is not None:
        check_positive_int("frames", frames)
    t = x.shape[2] if frames is None else frames
    return F.interpolate(x, size=(t, h, w), mode="trilinear", align_corners=False)


def standardize(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """(x - mean) / std, with statistics taken from the training split only."""
    check_float("x", x)
    if std <= 0:
        raise bad_arg("std", "a positive number", std, "compute it on the training split")
    return (x - mean) / std


def augment(x: torch.Tensor, generator: torch.Generator | None = None, flip: bool = True,
            rot90: bool = True, scale: tuple[float, float] | None = (0.8, 1.2),
            flip_time: bool = False) -> torch.Tensor:
    """Random in-plane flips, 90-degree rotations and intensity scaling, drawn per clip.

    x: (B, C, T, H, W) float. Each clip gets its own draw from ``generator``, so a seeded
    generator gives the same augmented batch every time. ``flip_time`` also reverses frame order:
    harmless for volumes, but it changes the label of a motion-direction video, so it is off.
    MedMNIST's 3D baselines scale voxels by U(0, 1) in training and 0.5 at test time; our
    default U(0.8, 1.2) keeps the mean at 1 so evaluation needs no rescaling.
    """
    check_rank("x", x, 5, LAYOUT)
    check_float("x", x)
    b = x.shape[0]

    def coin() -> torch.Tensor:
        return (torch.rand(b, generator=generator) < 0.5).view(b, 1, 1, 1, 1).to(x.device)

    if flip:
        x = torch.where(coin(), x.flip(-1), x)
        x = torch.where(coin(), x.flip(-2), x)
    if flip_time:
        x = torch.where(coin(), x.flip(2), x)
    if rot90:
        if x.shape[-1] != x.shape[-2]:
            raise bad_arg("x", "square frames (H == W) for 90-degree rotations",
                          f"H={x.shape[-2]}, W={x.shape[-1]}", "pass rot90=False")
        k = torch.randint(0, 4, (b,), generator=generator).to(x.device)
        out = x.clone()
        for r in range(1, 4):                       # rotate only the clips that drew r quarter turns
            chosen = k == r
            if chosen.any():
                out[chosen] = torch.rot90(x[chosen], r, dims=(-2, -1))
        x = out
    if scale is not None:
        lo, hi = scale
        if not 0 <= lo <= hi:
            raise bad_arg("scale", "(lo, hi) with 0 <= lo <= hi", scale, "e.g. scale=(0.8, 1.2)")
        s = lo + (hi - lo) * torch.rand(b, generator=generator)
        x = x * s.view(b, 1, 1, 1, 1).to(x.device, x.dtype)
    return x
