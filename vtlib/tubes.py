"""Sparse video tubes (TubeViT, Piergiovanni et al., CVPR 2023): tube shapes, token counts,
tube centres, the tube tokenizer and the position code at tube centres (notebook 09).

A *tube* is one Conv3d with its own kernel k, stride s and offset o (per axis, order t, h, w),
applied to the clip cropped at the offset, ``x[:, :, o_t:, o_h:, o_w:]``. A stride larger than
the kernel makes it *sparse*: it skips voxels. Several tubes of different shapes (a 2D image
patch, a long-in-time thin-in-space tube, a balanced cube) overlap and together see the clip.
Per axis of size D (a VALID convolution, nothing padded):

    tokens    n = (D - o - k) // s + 1
    centre    c_i = o + i * s + (k - 1) / 2        (voxel coordinate of token i's centre)

A tube that does not fit (o + k > D) gives no token: that is an error here, never a silent 0.
Token order: tube after tube, in the order given, and (t h w) inside each tube.

Images and videos through the same tokenizer: a single frame (T = 1) is tokenized by the 2D
tubes only (kernel t = 1), with their temporal stride and offset dropped. The frame is placed
at the time of the 2D tube's first frame in a clip (its temporal offset), so an image and that
frame of a clip get the same tokens AND the same positions.

Position codes (``TubePosition``), the rows of TubeViT Table 7a:

    none          no position code
    learned       one learned vector per token
    fixed-index   factorised sin-cos (``vtlib.position.sincos_at``) at each token's index in its
                  own tube's grid: tokens of different tubes at the same index get the same code
    fixed         the same sin-cos code at the tube centre in video coordinates (TubeViT)

Presets (``PAPER_TUBES``, ``tube_preset``): the paper's Table 12 tubes for 32x224x224 clips, and
their rescaling to AdrenalMNIST3D at 64^3 and 28^3 (see ``tube_preset``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from vtlib.errors import bad_arg, check_choice, check_positive_int, check_rank
from vtlib.position import sincos_at, trunc_normal_
from vtlib.shapes import AXES, Triple, check_video, to_dtype_of, triple, video_thw

TUBE_POSITIONS = ("none", "learned", "fixed-index", "fixed")


def _offset(value) -> Triple:
    """An offset is three ints >= 0 (or one int for all axes)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value, value)
    if (not isinstance(value, Sequence) or len(value) != 3
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in value)):
        raise bad_arg("offset", "three ints >= 0 (t, h, w) or one int", repr(value),
                      "pass e.g. offset=(0, 8, 8); (0, 0, 0) starts at the first voxel")
    return tuple(int(v) for v in value)  # type: ignore[return-value]


@dataclass(frozen=True)
class Tube:
    """One tube shape: kernel, stride and offset, each (t, h, w). Ints are checked on creation."""
    kernel: Triple
    stride: Triple
    offset: Triple = (0, 0, 0)

    def __post_init__(self):
        object.__setattr__(self, "kernel", triple("kernel", self.kernel))
        object.__setattr__(self, "stride", triple("stride", self.stride))
        object.__setattr__(self, "offset", _offset(self.offset))

    @property
    def is_2d(self) -> bool:
        """A 2D image patch: one frame deep (kernel t = 1)."""
        return self.kernel[0] == 1

    def for_image(self) -> "Tube":
        """The same 2D patch for a single frame: temporal stride 1 and offset 0."""
        if not self.is_2d:
            raise bad_arg("tube", "a 2D tube (kernel t = 1) to tokenize a single frame", str(self),
                          "images go through the 2D tubes only; give the model a tube like (1, p, p)")
        return Tube(self.kernel, (1, *self.stride[1:]), (0, *self.offset[1:]))

    def grid(self, video_shape) -> Triple:
        return tube_grid(video_shape, self)

    def num_tokens(self, video_shape) -> int:
        return math.prod(self.grid(video_shape))

    def __str__(self) -> str:
        k, s, o = ("x".join(map(str, v)) for v in (self.kernel, self.stride, self.offset))
        return f"k {k} s {s} o {o}"


def _as_tube(tube) -> Tube:
    if isinstance(tube, Tube):
        return tube
    if isinstance(tube, (tuple, list)) and len(tube) in (2, 3):
        return Tube(*tube)
    raise bad_arg("tube", "a Tube or a (kernel, stride[, offset]) tuple", repr(tube),
                  "build one with Tube(kernel=(8, 8, 8), stride=(16, 32, 32), offset=(0, 0, 0))")


def as_tubes(tubes) -> tuple[Tube, ...]:
    """A non-empty sequence of Tubes (or (kernel, stride[, offset]) tuples) -> tuple of Tubes."""
    if isinstance(tubes, Tube) or not isinstance(tubes, Sequence) or len(tubes) == 0:
        raise bad_arg("tubes", "a non-empty list of Tube", repr(tubes),
                      "pass e.g. [Tube((8, 8, 8), (16, 32, 32))] or tube_preset(28)")
    return tuple(_as_tube(t) for t in tubes)


def tube_grid(video_shape, tube: Tube) -> Triple:
    """Tokens per axis (nt, nh, nw) of one tube: n = (D - o - k) // s + 1 per axis.

    ``video_shape``: (T, H, W) or a full (B, C, T, H, W) shape. Raises if the tube does not fit.
    """
    tube, thw = _as_tube(tube), video_thw(video_shape)
    grid = []
    for a, (d, k, s, o) in enumerate(zip(thw, tube.kernel, tube.stride, tube.offset)):
        if o >= d:
            raise bad_arg("offset", f"offset[{a}] < video size {d} along {AXES[a]}", o,
                          "use a smaller offset (it skips voxels before the first token)")
        if o + k > d:
            raise bad_arg("kernel", f"offset + kernel <= video size {d} along {AXES[a]} (the tube must fit)",
                          f"offset {o} + kernel {k} = {o + k}",
                          "use a smaller kernel or offset, or a larger input; see rescale_tubes for small inputs")
        grid.append((d - o - k) // s + 1)
    return tuple(grid)  # type: ignore[return-value]


def _axis_coords(tube: Tube, grid: Triple, centre: bool) -> torch.Tensor:
    """(N, 3) float32 in (t h w) token order: tube centres, or grid indices when centre=False."""
    axes = [torch.arange(n, dtype=torch.float64) for n in grid]
    if centre:
        axes = [o + i * s + (k - 1) / 2 for i, k, s, o in zip(axes, tube.kernel, tube.stride, tube.offset)]
    t, h, w = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([t, h, w], dim=-1).reshape(-1, 3).float()


def tube_centres(video_shape, tube: Tube) -> torch.Tensor:
    """Centre of every token of one tube, in voxel coordinates of the clip: (N, 3) as (t, h, w).

    centre = offset + index * stride + (kernel - 1) / 2 per axis; rows in (t h w) token order.
    """
    tube = _as_tube(tube)
    return _axis_coords(tube, tube_grid(video_shape, tube), centre=True)


def tube_indices(video_shape, tube: Tube) -> torch.Tensor:
    """Index of every token in its own tube's grid: (N, 3) as (i_t, i_h, i_w), stride and offset ignored."""
    tube = _as_tube(tube)
    return _axis_coords(tube, tube_grid(video_shape, tube), centre=False)


def tube_coverage(video_shape, tubes) -> torch.Tensor:
    """(T, H, W) bool: True where at least one token of ``tubes`` reads the voxel."""
    tubes, thw = as_tubes(tubes), video_thw(video_shape)
    covered = torch.zeros(thw, dtype=torch.bool)
    for tube in tubes:                                      # a few tubes, never a loop over tokens
        masks = []
        for d, n, k, s, o in zip(thw, tube_grid(thw, tube), tube.kernel, tube.stride, tube.offset):
            starts = o + torch.arange(n) * s                # (n,) first voxel of every window
            m = torch.zeros(d, dtype=torch.bool)
            m[(starts[:, None] + torch.arange(k)).flatten()] = True
            masks.append(m)
        covered |= masks[0][:, None, None] & masks[1][None, :, None] & masks[2][None, None, :]
    return covered


def tube_table(video_shape, tubes) -> list[dict]:
    """One row per tube: kernel, stride, offset, grid, tokens, weights per in/out channel pair
    (prod(kernel)), and the share of voxels the tube reads (coverage)."""
    thw = video_thw(video_shape)
    return [dict(kernel=t.kernel, stride=t.stride, offset=t.offset, grid=tube_grid(thw, t),
                 tokens=t.num_tokens(thw), weights=math.prod(t.kernel),
                 coverage=round(tube_coverage(thw, [t]).float().mean().item(), 4))
            for t in as_tubes(tubes)]


# ----------------------------------------------------------------------------- presets
PAPER_VIDEO: Triple = (32, 224, 224)
# TubeViT Table 12 (order t, h, w), in the paper's order: cube, long-thin, wide-short, 2D patch.
PAPER_TUBES: tuple[Tube, ...] = (
    Tube((8, 8, 8), (16, 32, 32), (0, 0, 0)),
    Tube((16, 4, 4), (6, 32, 32), (4, 8, 8)),
    Tube((4, 12, 12), (16, 32, 32), (0, 16, 16)),
    Tube((1, 16, 16), (32, 16, 16), (0, 0, 0)),
)


def rescale_tubes(tubes, factor) -> tuple[Tube, ...]:
    """Every kernel, stride and offset times ``factor`` (one number or (t, h, w)), rounded half up;
    kernels and strides stay >= 1. ``rescale_tubes(tubes_64, 7 / 16)`` gives the 28^3 preset."""
    tubes = as_tubes(tubes)
    f = (factor,) * 3 if isinstance(factor, (int, float)) and not isinstance(factor, bool) else factor
    if (not isinstance(f, Sequence) or len(f) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in f)):
        raise bad_arg("factor", "a positive number or three positive numbers (t, h, w)", repr(factor),
                      "pass e.g. factor=7 / 16")

    def scale(v, low):
        return tuple(max(low, math.floor(x * fi + 0.5)) for x, fi in zip(v, f))

    return tuple(Tube(scale(t.kernel, 1), scale(t.stride, 1), scale(t.offset, 0)) for t in tubes)


def tube_preset(size: int = 28, num_tubes: int = 4) -> tuple[Tube, ...]:
    """The course's tubes for AdrenalMNIST3D clips of ``size``^3 (28 or 64).

    64^3: the paper's Table 12 tubes as they stand (16-px image patches, like the paper's 224 px
    clips) with one change: the 2D tube reads the MIDDLE frame (temporal offset 32 instead of 0),
    because frame 0 of every AdrenalMNIST3D clip is empty. Its temporal stride 32 then gives one
    frame per clip, as the paper's stride 32 does on 32 frames.
    28^3: the 64^3 tubes times 7/16 on every axis, rounded half up (16-px patches -> 7 px, 64
    frames -> 28), so both sizes give about the same number of tokens.

    ``num_tubes`` (TubeViT Table 7b): 1 = the 8x8x8-like cube alone, 2 = cube + 2D image patch
    (the paper's "core" tokenizer), 4 = all four.
    """
    check_choice("size", size, (28, 64))
    check_choice("num_tubes", num_tubes, (1, 2, 4))
    cube, thin, wide, patch = PAPER_TUBES
    tubes = (cube, thin, wide, Tube(patch.kernel, patch.stride, (32, 0, 0)))
    if size == 28:
        tubes = rescale_tubes(tubes, 7 / 16)
    return {1: tubes[:1], 2: (tubes[0], tubes[3]), 4: tubes}[num_tubes]


# ----------------------------------------------------------------------------- modules
class TubeTokenizer(nn.Module):
    """Sparse tubes, each its own Conv3d(C, D, kernel, stride) on the clip cropped at its offset.

    forward: clips (B, C, T, H, W) -> tokens (B, N, D), N = sum over tubes of prod(grid).
    A single frame (B, C, 1, H, W) goes through the 2D tubes only (see ``Tube.for_image``).
    """

    def __init__(self, *, dim: int, tubes, in_channels: int = 1, bias: bool = True):
        super().__init__()
        check_positive_int("dim", dim)
        check_positive_int("in_channels", in_channels)
        self.dim, self.in_channels, self.tubes = dim, in_channels, as_tubes(tubes)
        self.convs = nn.ModuleList(nn.Conv3d(in_channels, dim, t.kernel, t.stride, bias=bias) for t in self.tubes)

    def active(self, video_shape) -> list[tuple[int, Tube]]:
        """(index, tube) pairs that tokenize this input: all tubes for a clip, the 2D ones (as
        ``for_image``) for a single frame (T = 1)."""
        T = video_thw(video_shape)[0]
        if T > 1:
            return list(enumerate(self.tubes))
        pairs = [(i, t.for_image()) for i, t in enumerate(self.tubes) if t.is_2d]
        if not pairs:
            raise bad_arg("x", "clips with T > 1 frames (this tokenizer has no 2D tube for single frames)",
                          f"shape {tuple(video_shape)}", "add a 2D tube such as Tube((1, p, p), (T, p, p))")
        return pairs

    def grids(self, video_shape) -> list[Triple]:
        return [tube_grid(video_shape, t) for _, t in self.active(video_shape)]

    def num_tokens(self, video_shape) -> int:
        return sum(math.prod(g) for g in self.grids(video_shape))

    def centres(self, video_shape) -> torch.Tensor:
        """(N, 3) tube centres (t, h, w) of every token, in token order. A single frame sits at
        the time of its 2D tube's first frame in a clip: t = that tube's temporal offset."""
        image = video_thw(video_shape)[0] == 1
        out = []
        for i, t in self.active(video_shape):
            c = tube_centres(video_shape, t)                 # (n, 3)
            if image:
                c[:, 0] += self.tubes[i].offset[0]           # the frame this 2D tube reads in a clip
            out.append(c)
        return torch.cat(out)

    def indices(self, video_shape) -> torch.Tensor:
        """(N, 3) index of every token in its own tube's grid, in token order."""
        return torch.cat([tube_indices(video_shape, t) for _, t in self.active(video_shape)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_video(x, self.in_channels)
        x = to_dtype_of(x, self)
        out = []
        for i, t in self.active(x.shape):                   # one conv per tube shape
            tube_grid(x.shape, t)
            ot, oh, ow = t.offset
            y = self.convs[i](x[:, :, ot:, oh:, ow:])        # (B, D, nt, nh, nw)
            out.append(y.flatten(2).transpose(1, 2))         # (B, nt*nh*nw, D)
        return torch.cat(out, dim=1)


class TubePosition(nn.Module):
    """Position code for the tokens of a ``TubeTokenizer``: none | learned | fixed-index | fixed.

    Built for one clip shape (T, H, W); if the tubes include a 2D tube it also codes single
    frames (1, H, W). forward(x (B, N, D), image=False) -> x + code (B, N, D).
    ``fixed`` evaluates the factorised sin-cos code at the tube centres (dim divisible by 6).
    ``learned`` keeps one table for the clip's tokens; a single frame uses the rows of the 2D
    tubes' first frame, so images and clips share their 2D positions.
    """

    no_weight_decay = ("pos",)                                   # the learned table; see vtlib.train.param_groups

    def __init__(self, *, kind: str, tubes, video_shape, dim: int, init_std: float = 0.02):
        super().__init__()
        check_choice("kind", kind, TUBE_POSITIONS)
        check_positive_int("dim", dim)
        self.kind, self.dim = kind, dim
        self.video_shape = video_thw(video_shape)
        self.image_shape = (1, *self.video_shape[1:])
        tok = TubeTokenizer(dim=1, tubes=tubes)                       # only for its grids and coordinates
        self.num_tokens = tok.num_tokens(self.video_shape)
        self.has_image = any(t.is_2d for t in tok.tubes)
        self.num_image_tokens = tok.num_tokens(self.image_shape) if self.has_image else 0
        if kind in ("fixed", "fixed-index"):
            coords = tok.centres if kind == "fixed" else tok.indices
            self.register_buffer("video_table", sincos_at(coords(self.video_shape), dim), persistent=False)
            image = sincos_at(coords(self.image_shape), dim) if self.has_image else torch.zeros(0, dim)
            self.register_buffer("image_table", image, persistent=False)
        elif kind == "learned":
            self.pos = nn.Parameter(trunc_normal_(torch.zeros(1, self.num_tokens, dim), init_std))
            rows, start = [], 0                              # first-frame rows of each 2D tube
            for (_, t), (nt, nh, nw) in zip(tok.active(self.video_shape), tok.grids(self.video_shape)):
                if t.is_2d:
                    rows.append(start + torch.arange(nh * nw))
                start += nt * nh * nw
            self.register_buffer("image_rows", torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long),
                                 persistent=False)

    def forward(self, x: torch.Tensor, image: bool = False) -> torch.Tensor:
        check_rank("x", x, 3, "B N D")
        n = self.num_image_tokens if image else self.num_tokens
        if image and not self.has_image:
            raise bad_arg("image", "False: these tubes have no 2D tube for single frames", image,
                          "add a 2D tube, or pass clips")
        if tuple(x.shape[1:]) != (n, self.dim):
            raise bad_arg("x", f"(B, {n}, {self.dim}) tokens for {'a single frame' if image else 'a clip'} "
                          f"of shape {self.image_shape if image else self.video_shape}", f"shape {tuple(x.shape)}",
                          "build TubePosition with the same tubes, clip shape and dim as the tokenizer")
        if self.kind == "none":
            return x
        if self.kind == "learned":
            return x + (self.pos[:, self.image_rows] if image else self.pos)
        return x + (self.image_table if image else self.video_table)
