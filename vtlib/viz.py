"""Looking at clips: a frame grid (static, renders everywhere), an animation, sliders (live kernels)."""
from __future__ import annotations

from typing import Callable

import matplotlib.pyplot as plt
import torch

from vtlib.errors import bad_arg, check_positive_int


def _frames(clip: torch.Tensor) -> torch.Tensor:
    """Accept (T, H, W), (C, T, H, W) with C=1, or (1, C, T, H, W); return (T, H, W)."""
    clip = torch.as_tensor(clip).detach().cpu()
    while clip.ndim > 3 and clip.shape[0] == 1:
        clip = clip[0]
    if clip.ndim != 3:
        raise bad_arg("clip", "one grayscale clip shaped (T, H, W) or (1, T, H, W)",
                      f"shape {tuple(clip.shape)}", "index a single clip, e.g. x[0]")
    return clip.float()


def frame_grid(clip: torch.Tensor, ncols: int = 7, step: int = 1, title: str | None = None,
               size: float = 1.2) -> plt.Figure:
    """Show every ``step``-th frame of a clip in a grid; returns the figure (call plt.show())."""
    check_positive_int("ncols", ncols)
    frames = _frames(clip)[::step]
    nrows = -(-len(frames) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(frames):
            ax.imshow(frames[i], cmap="gray", vmin=0, vmax=max(1.0, frames.max().item()))
            ax.set_title(f"t={i * step}", fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def animate(clip: torch.Tensor, interval: int = 120, size: float = 2.5):
    """A small HTML animation of a clip (display it; its output holds random ids, so nbval-ignore it)."""
    from IPython.display import HTML
    from matplotlib import animation

    frames = _frames(clip)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.axis("off")
    im = ax.imshow(frames[0], cmap="gray", vmin=0, vmax=max(1.0, frames.max().item()))
    anim = animation.FuncAnimation(fig, lambda t: (im.set_data(frames[t]),), frames=len(frames),
                                   interval=interval)
    html = HTML(anim.to_jshtml(default_mode="loop"))
    plt.close(fig)
    return html


def show_frame(clip: torch.Tensor, t: int, size: float = 2.5) -> plt.Figure:
    """One frame of a clip, with its index."""
    frames = _frames(clip)
    if not 0 <= t < len(frames):
        raise bad_arg("t", f"a frame index in [0, {len(frames) - 1}]", t, "pick an existing frame")
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(frames[t], cmap="gray", vmin=0, vmax=max(1.0, frames.max().item()))
    ax.set_title(f"frame {t} of {len(frames)}")
    ax.axis("off")
    return fig


def slider(draw: Callable[[int], object], n: int, description: str = "frame"):
    """An ipywidgets slider over ``0 .. n - 1`` that calls ``draw(i)`` and shows the figure it makes.

    Live kernels only: the stored output of a widget is empty on GitHub, so a notebook shows a static
    fallback next to it (``draw`` called for a few fixed positions, or a grid of them).
    """
    import ipywidgets as widgets

    check_positive_int("n", n)
    if not callable(draw):
        raise bad_arg("draw", "a function of one int that draws a figure", type(draw).__name__,
                      "pass e.g. lambda t: show_frame(clip, t)")

    def view(i: int) -> None:
        draw(i)
        plt.show()

    return widgets.interact(view, i=widgets.IntSlider(0, 0, n - 1, 1, description=description))


def frame_slider(clip: torch.Tensor):
    """An ipywidgets slider over frames (live kernels only; on GitHub use frame_grid instead)."""
    frames = _frames(clip)
    return slider(lambda t: show_frame(frames, t), len(frames), "frame")


def forest_plot(rows, *, ax=None, reference: float | None = None, xlabel: str = "test AUC"):
    """One horizontal interval line and a dot per row; returns the matplotlib Axes (call plt.show()).

    ``rows``: (label, result) pairs, where result has ``low`` and ``high`` and either ``estimate``
    (a ``vtlib.stats.Interval``) or ``diff`` (a ``PairedComparison``). ``reference`` draws a dashed
    vertical line: 0 for differences, or a published AUC. The first row is drawn at the top;
    ``ax.lines`` holds the row lines in order, then the reference line.
    """
    rows = list(rows)
    if not rows:
        raise bad_arg("rows", "a non-empty list of (label, interval) pairs", "an empty list",
                      "pass e.g. [('ViViT', bootstrap_ci(y, s))]")
    points = []
    for i, row in enumerate(rows):
        label, res = row
        est = getattr(res, "estimate", getattr(res, "diff", None))
        if est is None or not hasattr(res, "low") or not hasattr(res, "high"):
            raise bad_arg(f"rows[{i}]", "(label, Interval or PairedComparison)", type(res).__name__,
                          "pass results of vtlib.stats, e.g. bootstrap_ci(...) or delong(...)")
        points.append((str(label), float(est), float(res.low), float(res.high)))
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.45 * len(points) + 1.0))
    ys = range(len(points))[::-1]  # first row on top
    for y, (label, est, low, high) in zip(ys, points):
        ax.plot([low, high], [y, y], color="C0", lw=2, solid_capstyle="butt")
        ax.scatter([est], [y], color="C0", zorder=3, s=25)
        ax.annotate(f"{est:.3f} [{low:.3f}, {high:.3f}]", (1.02, y), xycoords=("axes fraction", "data"),
                    va="center", fontsize=8)
    if reference is not None:
        ax.axvline(reference, color="gray", ls="--", lw=1)
    ax.set_yticks(list(ys), [p[0] for p in points])
    ax.set_ylim(-0.7, len(points) - 0.3)
    ax.set_xlabel(xlabel)
    return ax
