"""Looking at clips: a frame grid (static, renders everywhere), an animation, a frame slider."""
from __future__ import annotations

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


def frame_slider(clip: torch.Tensor):
    """An ipywidgets slider over frames (live kernels only; on GitHub use frame_grid instead)."""
    import ipywidgets as widgets

    frames = _frames(clip)

    def view(t: int) -> None:
        show_frame(frames, t)
        plt.show()

    return widgets.interact(view, t=widgets.IntSlider(0, 0, len(frames) - 1, 1, description="frame"))
