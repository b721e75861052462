"""Synthetic motion videos, shaped like MedMNIST clips: (N, 1, T, H, W) float32 in [0, 1].

A bright object (disk or square) glides across a dark frame with a little noise. The frame
wraps around at its edges, so where the object is in any one frame says nothing about the label.

- task="direction": the label is the direction of horizontal motion (0: left to right,
  1: right to left). Every class-1 clip is a class-0 clip played backwards, so both classes
  contain exactly the same frames, only in another order, and every frame index shows the object
  uniformly anywhere. Any model that ignores frame order (a single frame, a bag of frames, a mean
  over time) is at chance; a model that sees order can be perfect.
- task="shape": the label is the object's shape (0: disk, 1: square), and motion is random in
  both directions. One frame is enough: the control task.

Everything is drawn from one seeded generator and rendered with broadcasting (no loops over
clips or frames), so thousands of clips take well under a second.
"""
from __future__ import annotations

import torch

from vtlib.errors import bad_arg, check_choice, check_positive_int

TASKS = ("direction", "shape")


def make_motion_videos(n: int, task: str = "direction", frames: int = 28, size: int = 28,
                       seed: int = 0, noise: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` clips (n, 1, frames, size, size) and balanced labels (n,) int64."""
    check_positive_int("n", n)
    check_choice("task", task, TASKS)
    check_positive_int("frames", frames)
    if not isinstance(size, int) or size < 12:
        raise bad_arg("size", "an int >= 12 (room for the object to move)", repr(size), "use 28 or 64")
    if noise < 0:
        raise bad_arg("noise", "a non-negative std", noise, "use e.g. noise=0.05")
    g = torch.Generator().manual_seed(seed)
    u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731

    labels = torch.arange(n) % 2
    labels = labels[torch.randperm(n, generator=g)]
    radius = size * (0.10 + 0.06 * u(n))                     # object half-width
    # The frame wraps around (a torus, like an old arcade screen): the start is uniform over the
    # whole frame, so the object's position in ANY single frame is uniform for both classes.
    x0, y0 = size * u(n), size * u(n)
    travel = size * (0.4 + 0.3 * u(n))                       # horizontal distance covered
    drift = size * 0.2 * (u(n) - 0.5)                        # small vertical drift, either way

    t = torch.linspace(0, 1, frames)
    cx = x0[:, None] + travel[:, None] * t                   # (n, T), moving right
    cy = y0[:, None] + drift[:, None] * t
    if task == "direction":
        reverse = labels.bool()                              # class 1: the same clip backwards
        shape_is_square = u(n) < 0.5
    else:
        reverse = u(n) < 0.5
        shape_is_square = labels.bool()
    cx = torch.where(reverse[:, None], cx.flip(1), cx)
    cy = torch.where(reverse[:, None], cy.flip(1), cy)

    coords = torch.arange(size, dtype=torch.float32) + 0.5
    wrap = lambda d: torch.remainder(d + size / 2, size) - size / 2  # noqa: E731  shortest signed distance
    dx = wrap(coords.view(1, 1, 1, size) - cx[:, :, None, None])   # (n, T, 1, W)
    dyy = wrap(coords.view(1, 1, size, 1) - cy[:, :, None, None])  # (n, T, H, 1)
    r = radius.view(n, 1, 1, 1)
    disk = (r + 0.5 - torch.sqrt(dx**2 + dyy**2)).clamp(0, 1)
    square = (r + 0.5 - torch.maximum(dx.abs(), dyy.abs())).clamp(0, 1)
    video = torch.where(shape_is_square.view(n, 1, 1, 1), square, disk)
    if noise > 0:
        video = video + noise * torch.randn(video.shape, generator=g)
    return video.clamp(0, 1).unsqueeze(1).contiguous(), labels.long()


def centroid_x(x: torch.Tensor) -> torch.Tensor:
    """Horizontal position of the object in each frame, as an angle on the wrapped frame.

    (N, 1, T, H, W) -> (N, T) in radians; a circular mean, so an object split across the left and
    right edges still gets one position. Use ``motion_x`` for the signed displacement.
    """
    w = x.shape[-1]
    angle = 2 * torch.pi * (torch.arange(w, dtype=x.dtype) + 0.5) / w
    profile = x.sum(dim=(1, 3))                                # (N, T, W)
    return torch.atan2((profile * angle.sin()).sum(-1), (profile * angle.cos()).sum(-1))


def motion_x(x: torch.Tensor) -> torch.Tensor:
    """Signed horizontal displacement per frame step, summed over the clip: (N, 1, T, H, W) -> (N,).

    Positive for left-to-right motion. Uses the wrapped difference of consecutive positions.
    """
    a = centroid_x(x)
    step = torch.remainder(a[:, 1:] - a[:, :-1] + torch.pi, 2 * torch.pi) - torch.pi
    return step.sum(1) * x.shape[-1] / (2 * torch.pi)
