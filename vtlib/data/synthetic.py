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

Long videos (notebook 10): ``make_order_videos`` makes clips of hundreds of frames (default 256 of
8 x 8) in which a blob and a bar each appear for a few frames, at least ``gap`` frames apart; the label
is which came first. Both classes hold the same events at the same times, only swapped, so only a
model that relates two frames far apart can beat chance. ``order_video_events`` gives the times.
"""
from __future__ import annotations

import math

import torch

from vtlib.errors import bad_arg, check_choice, check_positive_int

SYNTHETIC_TASKS = ("direction", "shape")


def make_motion_videos(n: int, task: str = "direction", frames: int = 28, size: int = 28,
                       seed: int = 0, noise: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` clips (n, 1, frames, size, size) and balanced labels (n,) int64."""
    check_positive_int("n", n)
    check_choice("task", task, SYNTHETIC_TASKS)
    check_positive_int("frames", frames)
    if task == "direction" and frames < 2:
        raise bad_arg("frames", "at least 2 frames for the direction task (one frame shows no motion, so "
                      "its labels would mean nothing)", frames, "use frames=28, or task='shape'")
    if not isinstance(size, int) or size < 12:
        raise bad_arg("size", "an int >= 12 (room for the object to move)", repr(size), "use 28 or 64")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not math.isfinite(noise) or noise < 0:
        raise bad_arg("noise", "a finite, non-negative std", repr(noise), "use e.g. noise=0.05 (0 for none)")
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



# ------------------------------------------------------------------------------ long videos: order
def _order_layout(n, frames, size, gap, event_frames, lead, noise, seed):
    """Check the arguments of make_order_videos; draw labels, event times and places from ``seed``."""
    check_positive_int("n", n)
    check_positive_int("frames", frames)
    check_positive_int("event_frames", event_frames)
    if isinstance(size, bool) or not isinstance(size, int) or size < 4:
        raise bad_arg("size", "an int >= 4 (room for a 3 x 3 blob and a bar)", repr(size), "use size=8")
    gap = frames // 2 if gap is None else gap
    lead = frames // 16 if lead is None else lead
    for name, v in (("gap", gap), ("lead", lead)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise bad_arg(name, "an int >= 0 (frames)", repr(v),
                          f"pass e.g. {name}={frames // 2 if name == 'gap' else 0}")
    if gap < event_frames:
        raise bad_arg("gap", f"at least event_frames={event_frames}, so that the two events do not overlap", gap,
                      f"pass gap >= {event_frames}, or shorter events")
    need = 2 * lead + gap + event_frames
    if frames < need:
        raise bad_arg("frames", f"at least 2 * lead + gap + event_frames = {need} (lead={lead}, gap={gap}, "
                                f"event_frames={event_frames})", frames,
                      f"pass frames >= {need}, or a smaller gap or lead")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise < 0:
        raise bad_arg("noise", "a non-negative std", repr(noise), "use e.g. noise=0.1")
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % 2)[torch.randperm(n, generator=g)]
    last = frames - lead - event_frames                           # the latest start of any event
    t1 = lead + (torch.rand(n, generator=g) * (last - gap - lead + 1)).long()         # [lead, last - gap]
    t2 = t1 + gap + (torch.rand(n, generator=g) * (last - gap - t1 + 1)).long()      # [t1 + gap, last]
    blob_first = labels == 0
    times = torch.stack([torch.where(blob_first, t1, t2), torch.where(blob_first, t2, t1)], dim=1)  # (n, 2)
    places = torch.stack([torch.randint(0, size - 2, (n,), generator=g),   # blob: top row of a 3 x 3 square
                          torch.randint(0, size - 2, (n,), generator=g),   # blob: left column
                          torch.randint(0, size - 1, (n,), generator=g)],  # bar: top row of 2 full rows
                         dim=1)
    return g, labels.long(), times, places


def order_video_events(n: int, frames: int = 256, size: int = 8, gap: int | None = None, event_frames: int = 4,
                       lead: int | None = None, noise: float = 0.1, seed: int = 0) -> torch.Tensor:
    """The start frames of the two events of the clips ``make_order_videos`` makes with the same
    arguments: (n, 2) int64, column 0 the blob, column 1 the bar (no pixels are rendered)."""
    return _order_layout(n, frames, size, gap, event_frames, lead, noise, seed)[2]


def make_order_videos(n: int, frames: int = 256, size: int = 8, gap: int | None = None, event_frames: int = 4,
                      lead: int | None = None, noise: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Long noisy clips whose label is the ORDER of two short events far apart in time.

    Each clip (1, frames, size, size) is noise around a dim background (0.2). Two events of
    ``event_frames`` frames each appear in it: a **blob** (a bright 3 x 3 square at a random place)
    and a **bar** (two bright full-width rows at a random height). Label 0: the blob comes first;
    label 1: the bar comes first. The second event starts at least ``gap`` frames after the first
    (default ``frames // 2``), and no event starts in the first ``lead`` frames or ends in the last
    ``lead`` (default ``frames // 16``). The two classes have the same event times, only with the
    events swapped, so no single frame, and no statistic of the set of frames, carries a signal: a
    model has to relate two frames at least ``gap`` apart. ``order_video_events`` returns the times.

    Returns clips (n, 1, frames, size, size) float32 in [0, 1] and balanced labels (n,) int64
    (n // 2 of class 1, shuffled). One seeded generator, broadcasting only: deterministic and fast.
    """
    g, labels, times, places = _order_layout(n, frames, size, gap, event_frames, lead, noise, seed)
    pix = torch.arange(size)
    rows = (pix[None, :] - places[:, :1]).clamp(min=-1)           # (n, H): offset from the blob's top row
    cols = (pix[None, :] - places[:, 1:2]).clamp(min=-1)
    blob = ((rows >= 0) & (rows < 3))[:, :, None] & ((cols >= 0) & (cols < 3))[:, None, :]      # (n, H, W)
    bar_rows = pix[None, :] - places[:, 2:3]
    bar = ((bar_rows >= 0) & (bar_rows < 2))[:, :, None].expand(n, size, size)                 # (n, H, W)
    t = torch.arange(frames)[None, :]
    on = [(t >= times[:, i:i + 1]) & (t < times[:, i:i + 1] + event_frames) for i in (0, 1)]   # (n, T) each
    lit = (on[0][:, :, None, None] & blob[:, None]) | (on[1][:, :, None, None] & bar[:, None])  # (n, T, H, W)
    video = 0.2 + 0.7 * lit.float()
    if noise > 0:
        video = video + noise * torch.randn(video.shape, generator=g)
    return video.clamp(0, 1).unsqueeze(1).contiguous(), labels
