"""Positional encodings for video tokens (notebook 02).

Self-attention is permutation-equivariant: shuffle the tokens and the outputs shuffle the same
way. Without a position code a transformer cannot tell where (or when) a token came from.

    NoPosition         identity, for the "no position" ablation (TimeSformer Table 4)
    LearnedPosition    one learned vector per token (ViViT, Keras example)
    FixedPosition      a fixed table kept as a buffer: sincos_1d (VideoMAE) or sincos_3d
    SpaceTimePosition  learned space table (per patch) + learned time table (per frame), TimeSformer;
                       use_time=False gives the "space-only" row of TimeSformer Table 4

All modules take tokens (B, N, D) in (t h w) order and return x + pos. Tables for a different
number of frames: ``resize_time`` (interpolate or slice over time) and ``.with_frames(T')``.

1D sin-cos code (Vaswani et al.; VideoMAE over the flattened token index):
    angle[n, j] = n / 10000^(2 * (j // 2) / D);  channel j is sin(angle) if j is even, cos if odd.

Factorised 3D code (``sincos_3d`` / ``sincos_at``): D is split into three equal blocks
[time | height | width] of D/3 channels each (D must be divisible by 6, so every block holds whole
sin/cos pairs). Each block is the 1D code above, at width D/3, of that token's t, h or w
coordinate. ``sincos_at`` evaluates it at any real coordinates (TubeViT: tube centres).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from vtlib.errors import bad_arg, check_choice, check_positive_int, check_rank
from vtlib.shapes import triple

POSITION_KINDS = ("none", "learned", "sincos1d", "sincos3d", "space", "spacetime")


def _sincos(pos: torch.Tensor, dim: int, temperature: float) -> torch.Tensor:
    """(N,) float64 positions -> (N, dim) float64 table: sin on even channels, cos on odd."""
    j = torch.arange(dim, dtype=torch.float64, device=pos.device)
    angle = pos[:, None] / temperature ** (2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table


def sincos_1d(num_positions: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Classic sinusoid table (N, D), float32; equals VideoMAE's ``get_sinusoid_encoding_table``[0]."""
    check_positive_int("num_positions", num_positions)
    check_positive_int("dim", dim)
    pos = torch.arange(num_positions, dtype=torch.float64)
    return _sincos(pos, dim, temperature).float()


def _check_dim6(dim: int) -> None:
    check_positive_int("dim", dim)
    if dim % 6:
        raise bad_arg("dim", "a width divisible by 6 (three blocks t|h|w of sin/cos pairs)", dim,
                      f"use dim={dim - dim % 6 or 6} or {dim + 6 - dim % 6}")


def sincos_3d(grid, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Factorised sin-cos table (nt*nh*nw, D), float32, rows in (t h w) order.

    Channels [0, D/3) code t, [D/3, 2D/3) code h, [2D/3, D) code w, each with ``sincos_1d(., D/3)``.
    """
    nt, nh, nw = triple("grid", grid)
    _check_dim6(dim)
    d = dim // 3
    t = repeat(sincos_1d(nt, d, temperature), "t d -> t h w d", h=nh, w=nw)
    h = repeat(sincos_1d(nh, d, temperature), "h d -> t h w d", t=nt, w=nw)
    w = repeat(sincos_1d(nw, d, temperature), "w d -> t h w d", t=nt, h=nh)
    return rearrange(torch.cat([t, h, w], dim=-1), "t h w d -> (t h w) d")


def sincos_at(coords: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """The factorised 3D code at arbitrary (t, h, w) coordinates: (N, 3) -> (N, D) float32.

    Coordinates may be fractional (e.g. tube centres index * stride + offset + (k - 1) / 2).
    On the integer grid it equals ``sincos_3d``.
    """
    check_rank("coords", coords, 2, "N 3")
    if coords.shape[1] != 3:
        raise bad_arg("coords", "shape (N, 3) with columns (t, h, w)", f"shape {tuple(coords.shape)}",
                      "stack the three coordinates with torch.stack([t, h, w], dim=-1)")
    _check_dim6(dim)
    c = coords.detach().to(torch.float64)
    return torch.cat([_sincos(c[:, i], dim // 3, temperature) for i in range(3)], dim=-1).float()


def resize_time(pos: torch.Tensor, new_frames: int, mode: str = "interpolate",
                num_frames: int | None = None) -> torch.Tensor:
    """Resize a position table over time; returns the same layout it was given.

    ``pos``: (T, N, D), or flat (1, T*N, D) in (t h w) order with ``num_frames=T`` given.
    ``mode="interpolate"``: linear in time, first and last frames kept (align_corners=True).
    ``mode="slice"``: keep the first ``new_frames`` frames (fewer frames only), as lucidrains does.
    """
    check_rank("pos", pos, 3, "T N D, or 1 T*N D with num_frames")
    check_positive_int("new_frames", new_frames)
    check_choice("mode", mode, ("interpolate", "slice"))
    flat = False
    if num_frames is not None:
        check_positive_int("num_frames", num_frames)
        if pos.shape[0] == 1 and pos.shape[1] % num_frames == 0:
            flat = True
            pos = rearrange(pos, "1 (t n) d -> t n d", t=num_frames)
        elif pos.shape[0] != num_frames:
            raise bad_arg("pos", f"(T={num_frames}, N, D) or (1, {num_frames}*N, D)",
                          f"shape {tuple(pos.shape)}", "pass the num_frames the table was built for")
    T = pos.shape[0]
    if mode == "slice":
        if new_frames > T:
            raise bad_arg("new_frames", f"at most {T} frames for mode='slice'", new_frames,
                          "use mode='interpolate' to get more frames than the table has")
        out = pos[:new_frames]
    else:
        x = rearrange(pos, "t n d -> n d t")
        x = F.interpolate(x, size=new_frames, mode="linear", align_corners=True)
        out = rearrange(x, "n d t -> t n d")
    return rearrange(out, "t n d -> 1 (t n) d") if flat else out


def trunc_normal_(tensor: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    """Fill ``tensor`` in place from N(0, std^2) cut at +-2 std, the ViT / timm init of position
    tables, tokens and queries; ``std=0`` fills zeros (and draws no random numbers). Returns it."""
    if isinstance(std, bool) or not isinstance(std, (int, float)) or std < 0:
        raise bad_arg("std", "a standard deviation >= 0", repr(std), "pass e.g. std=0.02")
    if std == 0:
        with torch.no_grad():
            return tensor.zero_()
    return nn.init.trunc_normal_(tensor, std=std, a=-2 * std, b=2 * std)


def _check_tokens(x: torch.Tensor, n: int, d: int, owner: str, fix: str) -> None:
    check_rank("x", x, 3, "B N D")
    if tuple(x.shape[1:]) != (n, d):
        raise bad_arg("x", f"(B, {n}, {d}) tokens for this {owner}", f"shape {tuple(x.shape)}", fix)


class NoPosition(nn.Module):
    """No position code (ablation): returns the tokens unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_rank("x", x, 3, "B N D")
        return x


class LearnedPosition(nn.Module):
    """One learned D-vector per token: x (B, N, D) -> x + pos, pos (1, N, D) ~ truncated normal(init_std).

    Pass ``num_frames`` (the nt of the token grid) to allow ``with_frames`` later.
    """

    no_weight_decay = ("pos",)                                    # see vtlib.train.param_groups

    def __init__(self, *, num_tokens: int, dim: int, init_std: float = 0.02, num_frames: int | None = None):
        super().__init__()
        check_positive_int("num_tokens", num_tokens)
        check_positive_int("dim", dim)
        if num_frames is not None:
            check_positive_int("num_frames", num_frames)
            if num_tokens % num_frames:
                raise bad_arg("num_frames", f"a divisor of num_tokens={num_tokens}", num_frames,
                              "pass the nt of the token grid (nt, nh, nw)")
        self.num_tokens, self.dim, self.num_frames, self.init_std = num_tokens, dim, num_frames, init_std
        self.pos = nn.Parameter(trunc_normal_(torch.zeros(1, num_tokens, dim), init_std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_tokens(x, self.num_tokens, self.dim, "LearnedPosition",
                      "build it with num_tokens=nt*nh*nw of your grid, or call .with_frames(T') "
                      "for another frame count")
        return x + self.pos

    def with_frames(self, new_frames: int, mode: str = "interpolate") -> "LearnedPosition":
        """A copy for ``new_frames`` token-frames; the table is resized with ``resize_time``."""
        if self.num_frames is None:
            raise bad_arg("num_frames", "the frame count given at construction", None,
                          "build LearnedPosition(num_tokens=..., dim=..., num_frames=nt) to resize over time")
        new = copy.deepcopy(self)
        table = resize_time(self.pos.detach(), new_frames, mode, num_frames=self.num_frames)
        new.pos = nn.Parameter(table.clone(), requires_grad=self.pos.requires_grad)
        new.num_frames, new.num_tokens = new_frames, table.shape[1]
        return new


class FixedPosition(nn.Module):
    """A fixed table (N, D) kept as a buffer (in state_dict, never trained): x + table.

    ``FixedPosition(table)`` takes its one argument, the table, by position.
    """

    def __init__(self, table: torch.Tensor):
        super().__init__()
        if not isinstance(table, torch.Tensor) or table.ndim not in (2, 3) or (table.ndim == 3 and table.shape[0] != 1):
            raise bad_arg("table", "a tensor shaped (N, D) or (1, N, D)",
                          f"shape {tuple(table.shape)}" if isinstance(table, torch.Tensor) else type(table).__name__,
                          "build one with sincos_1d(N, D) or sincos_3d(grid, D)")
        self.register_buffer("pos", table.detach().reshape(1, *table.shape[-2:]).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, d = self.pos.shape[1:]
        _check_tokens(x, n, d, "FixedPosition", "build the table for your token grid and width")
        return x + self.pos


class SpaceTimePosition(nn.Module):
    """Separate learned space and time tables (TimeSformer): pos[t, n] = time[t] + space[n].

    ``space`` (num_patches, D) is shared by every frame; ``time`` (num_frames, D) by every patch.
    Tokens (B, T*N, D) in (t h w) order. ``time_init="zeros"`` starts as space-only (useful when
    the space table comes from an image model); ``use_time=False`` is the space-only ablation.
    """

    no_weight_decay = ("space", "time")                           # see vtlib.train.param_groups

    def __init__(self, *, num_frames: int, num_patches: int, dim: int, init_std: float = 0.02,
                 time_init: str = "normal", use_time: bool = True):
        super().__init__()
        for name, v in (("num_frames", num_frames), ("num_patches", num_patches), ("dim", dim)):
            check_positive_int(name, v)
        check_choice("time_init", time_init, ("normal", "zeros"))
        self.num_frames, self.num_patches, self.dim = num_frames, num_patches, dim
        self.space = nn.Parameter(trunc_normal_(torch.zeros(num_patches, dim), init_std))
        time_std = 0.0 if time_init == "zeros" else init_std
        self.time = nn.Parameter(trunc_normal_(torch.zeros(num_frames, dim), time_std)) if use_time else None

    def table(self) -> torch.Tensor:
        """The full (T*N, D) table in (t h w) order."""
        pos = repeat(self.space, "n d -> t n d", t=self.num_frames)
        if self.time is not None:
            pos = pos + self.time[:, None, :]
        return rearrange(pos, "t n d -> (t n) d")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_tokens(x, self.num_frames * self.num_patches, self.dim, "SpaceTimePosition",
                      f"tokens must be num_frames*num_patches = {self.num_frames}*{self.num_patches}; "
                      "call .with_frames(T') for another frame count")
        return x + self.table()

    def with_frames(self, new_frames: int, mode: str = "interpolate") -> "SpaceTimePosition":
        """A copy for ``new_frames`` frames; only the time table changes (``resize_time``)."""
        check_positive_int("new_frames", new_frames)
        new = copy.deepcopy(self)
        new.num_frames = new_frames
        if self.time is not None:
            table = resize_time(self.time.detach()[:, None, :], new_frames, mode)[:, 0]
            new.time = nn.Parameter(table.clone(), requires_grad=self.time.requires_grad)
        return new


def make_position(kind: str, grid, dim: int, init_std: float = 0.02) -> nn.Module:
    """Position module for a (nt, nh, nw) token grid: none | learned | sincos1d | sincos3d | space | spacetime."""
    check_choice("kind", kind, POSITION_KINDS)
    nt, nh, nw = triple("grid", grid)
    check_positive_int("dim", dim)
    n = nt * nh * nw
    if kind == "none":
        return NoPosition()
    if kind == "learned":
        return LearnedPosition(num_tokens=n, dim=dim, init_std=init_std, num_frames=nt)
    if kind == "sincos1d":
        return FixedPosition(sincos_1d(n, dim))
    if kind == "sincos3d":
        return FixedPosition(sincos_3d((nt, nh, nw), dim))
    return SpaceTimePosition(num_frames=nt, num_patches=nh * nw, dim=dim, init_std=init_std,
                             use_time=(kind == "spacetime"))
