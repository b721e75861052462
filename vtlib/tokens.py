"""From video to tokens: patches, tubelets and uniform frame sampling (notebook 01).

A video (B, C, T, H, W) is cut into non-overlapping tubelets of t x p x p voxels (ViViT). Each
tubelet becomes one token of width D, so a video gives N = (T/t)(H/p)(W/p) tokens (B, N, D).

Token order is (t h w): time-major, exactly ``Conv3d(x).flatten(2).transpose(1, 2)``.

Two views of the same embedding, equal up to float rounding:

    conv view     TubeletEmbed: Conv3d(C, D, kernel_size=tubelet, stride=tubelet)
    linear view   Linear(C*t*p*p, D) applied to patchify(x)

``patchify`` flattens each tubelet channel-major, in the order (c t p1 p2). That is the order
of ``conv.weight.flatten(1)`` (the Conv3d weight is (D, C, t, p, p)), so the Linear's weight is
simply the flattened conv weight (see ``linear_from_conv3d``). Libraries that flatten channels
last, (t p1 p2 c) as in lucidrains' vit-pytorch, need ``weight.permute(0, 2, 3, 4, 1).flatten(1)``
instead; when training from scratch the order does not matter, when porting weights it does.

Sizes must divide exactly: vtlib never drops voxels silently. ``valid_grid`` shows what a
VALID-padded conv (the Keras ViViT example: 8x8x8 tubelets on 28^3) would see instead.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from vtlib.errors import bad_arg, check_choice, check_divisible, check_positive_int, check_rank
from vtlib.shapes import AXES, Triple, check_video, to_dtype_of, triple, video_thw

# Tubelets of the course's token table (notebook 01), order (t, p, p).
DEFAULT_TUBELETS: tuple[Triple, ...] = (
    (1, 4, 4), (2, 4, 4), (4, 4, 4), (1, 7, 7), (2, 7, 7), (4, 7, 7), (7, 7, 7), (8, 8, 8), (2, 14, 14),
)


def token_grid(video_shape, tubelet) -> Triple:
    """Token grid (nt, nh, nw) = (T/t, H/p, W/p). Every size must divide exactly.

    ``video_shape``: (T, H, W), or a full (B, C, T, H, W) shape (the last three sizes are used).
    """
    thw, k = video_thw(video_shape), triple("tubelet", tubelet)
    for i, (size, ki) in enumerate(zip(thw, k)):
        check_divisible(f"video_shape {AXES[i]}={size}", size, ki, f"tubelet[{i}]")
    return tuple(s // ki for s, ki in zip(thw, k))  # type: ignore[return-value]


def valid_grid(video_shape, tubelet) -> tuple[Triple, float]:
    """What a VALID-padded conv with kernel = stride = tubelet sees: (grid, voxel coverage).

    The trailing voxels that do not fill a whole tubelet are dropped without a word. Example:
    8x8x8 on 28^3 gives a (3, 3, 3) grid = 27 tokens covering (24/28)^3 = 0.63 of the video.
    Use it to teach that pitfall; vtlib itself uses ``token_grid``, which refuses to drop voxels.
    """
    thw, k = video_thw(video_shape), triple("tubelet", tubelet)
    for i, (size, ki) in enumerate(zip(thw, k)):
        if ki > size:
            raise bad_arg("tubelet", f"tubelet[{i}] <= video size {size} along {AXES[i]}", ki,
                          "choose a smaller tubelet")
    grid = tuple(s // ki for s, ki in zip(thw, k))
    coverage = math.prod(g * ki for g, ki in zip(grid, k)) / math.prod(thw)
    return grid, coverage  # type: ignore[return-value]


def token_table(video_sizes=(28, 64), tubelets=DEFAULT_TUBELETS) -> list[dict]:
    """One row per (video size, tubelet): size, tubelet, grid, tokens, coverage, divisible.

    A size s means a cube video s x s x s (T = H = W = s, like MedMNIST 3D); a (T, H, W) tuple works
    too. Rows whose tubelet does not divide the video show the VALID-conv grid and its coverage
    (< 1.0), so the Keras 8x8x8-on-28^3 row (27 tokens, 63 %) can be shown next to the others.
    """
    rows = []
    for size in video_sizes:
        thw = triple("video_sizes", size)
        for tub in tubelets:
            k = triple("tubelets", tub)
            grid, coverage = valid_grid(thw, k)
            divisible = all(s % ki == 0 for s, ki in zip(thw, k))
            rows.append(dict(size=size, tubelet=k, grid=grid, tokens=math.prod(grid),
                             coverage=1.0 if divisible else coverage, divisible=divisible))
    return rows


def patchify(video: torch.Tensor, tubelet) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, N, C*t*p1*p2): one flattened tubelet per token, tokens in (t h w) order.

    Each tubelet is flattened channel-major, (c t p1 p2), the order of ``Conv3d.weight.flatten(1)``,
    so ``Linear`` with that weight on these vectors equals the Conv3d tubelet embedding.
    """
    check_rank("video", video, 5, "B C T H W")
    t, p1, p2 = triple("tubelet", tubelet)
    token_grid(video.shape, (t, p1, p2))
    return rearrange(video, "b c (nt t) (nh p1) (nw p2) -> b (nt nh nw) (c t p1 p2)", t=t, p1=p1, p2=p2)


def unpatchify(tokens: torch.Tensor, video_shape, tubelet) -> torch.Tensor:
    """Inverse of ``patchify``: (B, N, C*t*p1*p2) -> (B, C, T, H, W).

    ``video_shape``: (T, H, W) (C is inferred from the token width) or (C, T, H, W).
    """
    check_rank("tokens", tokens, 3, "B N C*t*p1*p2")
    if not isinstance(video_shape, (Sequence, torch.Size)) or len(video_shape) not in (3, 4):
        raise bad_arg("video_shape", "(T, H, W) or (C, T, H, W)", repr(video_shape),
                      "pass the shape of one video without the batch axis")
    t, p1, p2 = k = triple("tubelet", tubelet)
    nt, nh, nw = token_grid(video_shape[-3:], k)
    vol = t * p1 * p2
    if len(video_shape) == 4:
        c = int(video_shape[0])
    else:
        if tokens.shape[-1] % vol:
            raise bad_arg("tokens", f"a last axis divisible by t*p1*p2={vol}", f"shape {tuple(tokens.shape)}",
                          "check that tubelet matches the one used by patchify")
        c = tokens.shape[-1] // vol
    if tokens.shape[1] != nt * nh * nw or tokens.shape[2] != c * vol:
        raise bad_arg("tokens", f"shape (B, {nt * nh * nw}, {c * vol}) for video {tuple(video_shape)} and "
                      f"tubelet {k}", f"shape {tuple(tokens.shape)}",
                      "pass the video_shape and tubelet used by patchify")
    return rearrange(tokens, "b (nt nh nw) (c t p1 p2) -> b c (nt t) (nh p1) (nw p2)",
                     nt=nt, nh=nh, nw=nw, c=c, t=t, p1=p1, p2=p2)


def inflate_2d(weight2d: torch.Tensor, t: int) -> torch.Tensor:
    """Filter inflation (I3D / ViViT): (D, C, p, p) -> (D, C, t, p, p), copied over time and divided by t.

    On a video that does not move, the inflated filter gives the same response as the 2D one.
    """
    check_rank("weight2d", weight2d, 4, "D C p p")
    check_positive_int("t", t)
    return repeat(weight2d, "d c h w -> d c t h w", t=t) / t


def central_frame_2d(weight2d: torch.Tensor, t: int) -> torch.Tensor:
    """Central-frame init (ViViT): (D, C, p, p) -> (D, C, t, p, p), zero except at time index t // 2.

    At initialisation the tubelet embedding then reads only its centre frame, i.e. it equals
    uniform frame sampling with stride t and offset t // 2 (see ``FrameEmbed``).
    """
    check_rank("weight2d", weight2d, 4, "D C p p")
    check_positive_int("t", t)
    w = weight2d.new_zeros(weight2d.shape[0], weight2d.shape[1], t, *weight2d.shape[2:])
    w[:, :, t // 2] = weight2d
    return w


class TubeletEmbed(nn.Module):
    """Tubelet embedding (ViViT): Conv3d with kernel = stride = tubelet, (B, C, T, H, W) -> (B, N, D).

    N = (T/t)(H/p)(W/p), tokens in (t h w) order. ``tubelet`` = (t, p, p) or one int for a cube.
    """

    def __init__(self, *, dim: int, tubelet=(2, 4, 4), in_channels: int = 1, bias: bool = True):
        super().__init__()
        check_positive_int("dim", dim)
        check_positive_int("in_channels", in_channels)
        self.dim, self.in_channels, self.tubelet = dim, in_channels, triple("tubelet", tubelet)
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=self.tubelet, stride=self.tubelet, bias=bias)

    def grid(self, video_shape) -> Triple:
        """(nt, nh, nw) for a video of shape (T, H, W) (or a full (B, C, T, H, W) shape)."""
        return token_grid(video_shape, self.tubelet)

    def num_tokens(self, video_shape) -> int:
        return math.prod(self.grid(video_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_video(x, self.in_channels)
        self.grid(x.shape)
        x = to_dtype_of(x, self.proj)
        if not (torch.is_grad_enabled() and self.proj.weight.requires_grad):
            return self.proj(x).flatten(2).transpose(1, 2)      # (B, D, nt, nh, nw) -> (B, N, D)
        # Training: the conv's Linear view (same weights, same multiply-adds, same tokens up to
        # rounding). With stride = kernel the conv is one matrix product on the flattened tubelets.
        # On some CPUs Conv3d's backward costs a sixth of a small model's step and the product far
        # less; on others the two are close (notebook 05 measures both). The conv stays the faster
        # forward, so inference keeps it.
        weight = self.proj.weight.flatten(1)                     # (D, C*t*p*p), (c t p1 p2) order
        return F.linear(patchify(x, self.tubelet), weight, self.proj.bias)   # (B, N, D)

    @classmethod
    def from_2d(cls, conv2d: nn.Conv2d, t: int, init: str = "central") -> "TubeletEmbed":
        """Build a t x p x p tubelet embedding from a 2D patch embedding (kernel = stride = p).

        ``init="central"``: 2D filter at time t // 2, zeros elsewhere (ViViT's best, Table 1).
        ``init="inflate"``: 2D filter copied over time and divided by t. The bias is copied as is.
        """
        if not isinstance(conv2d, nn.Conv2d):
            raise bad_arg("conv2d", "an nn.Conv2d patch embedding", type(conv2d).__name__,
                          "pass e.g. frame_embed.proj")
        check_positive_int("t", t)
        check_choice("init", init, ("central", "inflate"))
        k = tuple(conv2d.kernel_size)
        if tuple(conv2d.stride) != k or tuple(conv2d.padding) != (0, 0) or conv2d.groups != 1 \
                or tuple(conv2d.dilation) != (1, 1):
            raise bad_arg("conv2d", "a patch embedding: stride == kernel_size, no padding, groups=1, dilation=1",
                          f"kernel {k}, stride {tuple(conv2d.stride)}, padding {conv2d.padding}",
                          "build it as nn.Conv2d(C, D, kernel_size=p, stride=p)")
        embed = cls(dim=conv2d.out_channels, tubelet=(t, *k), in_channels=conv2d.in_channels,
                    bias=conv2d.bias is not None)
        make = central_frame_2d if init == "central" else inflate_2d
        with torch.no_grad():
            embed.proj.weight.copy_(make(conv2d.weight, t))
            if conv2d.bias is not None:
                embed.proj.bias.copy_(conv2d.bias)
        return embed.to(conv2d.weight.device)


class FrameEmbed(nn.Module):
    """Uniform frame sampling (ViViT): keep every ``frame_stride``-th frame, embed p x p patches in 2D.

    Frames kept: offset, offset + frame_stride, ... (default offset = frame_stride // 2, the centre
    frame of each block of frame_stride frames, so at init it equals
    ``TubeletEmbed.from_2d(self.proj, frame_stride, init="central")`` when T % frame_stride == 0).
    (B, C, T, H, W) -> (B, N, D), N = nt * (H/p) * (W/p), tokens in (t h w) order.
    """

    def __init__(self, *, dim: int, patch: int, in_channels: int = 1, frame_stride: int = 1,
                 offset: int | None = None):
        super().__init__()
        for name, v in (("dim", dim), ("patch", patch), ("in_channels", in_channels), ("frame_stride", frame_stride)):
            check_positive_int(name, v)
        offset = frame_stride // 2 if offset is None else offset
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise bad_arg("offset", "an int >= 0 (index of the first frame kept)", repr(offset),
                          "pass offset=None for frame_stride // 2")
        self.dim, self.patch, self.in_channels = dim, patch, in_channels
        self.frame_stride, self.offset = frame_stride, offset
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)

    def grid(self, video_shape) -> Triple:
        """(nt, nh, nw): nt = number of frames kept, nh = H/p, nw = W/p."""
        T, H, W = video_thw(video_shape)
        if self.offset >= T:
            raise bad_arg("offset", f"an offset < T={T} frames", self.offset,
                          "use a smaller offset or frame_stride, or a longer video")
        check_divisible(f"video_shape H={H}", H, self.patch, "patch")
        check_divisible(f"video_shape W={W}", W, self.patch, "patch")
        return len(range(self.offset, T, self.frame_stride)), H // self.patch, W // self.patch

    def num_tokens(self, video_shape) -> int:
        return math.prod(self.grid(video_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_video(x, self.in_channels)
        nt, nh, nw = self.grid(x.shape)
        x = to_dtype_of(x, self.proj)
        frames = x[:, :, self.offset::self.frame_stride]                 # (B, C, nt, H, W)
        if not (torch.is_grad_enabled() and self.proj.weight.requires_grad):
            tokens = self.proj(rearrange(frames, "b c t h w -> (b t) c h w"))   # (B*nt, D, nh, nw)
            return rearrange(tokens, "(b t) d nh nw -> b (t nh nw) d", t=nt)
        # Training: the patch conv as a Linear on flattened patches, as in TubeletEmbed
        patches = patchify(frames, (1, self.patch, self.patch))           # (B, nt*nh*nw, C*p*p)
        return F.linear(patches, self.proj.weight.flatten(1), self.proj.bias)   # (B, N, D)


def linear_from_conv3d(embed: TubeletEmbed) -> nn.Linear:
    """The Linear layer equal to ``embed``: ``linear(patchify(x, embed.tubelet)) == embed(x)``.

    Its weight is ``embed.proj.weight.flatten(1)``, shape (D, C*t*p*p), matching patchify's (c t p1 p2).
    """
    if not isinstance(embed, TubeletEmbed):
        raise bad_arg("embed", "a TubeletEmbed", type(embed).__name__,
                      "build one with TubeletEmbed(dim=..., tubelet=...)")
    w = embed.proj.weight
    linear = nn.Linear(w[0].numel(), w.shape[0], bias=embed.proj.bias is not None).to(w.device, w.dtype)
    with torch.no_grad():
        linear.weight.copy_(w.flatten(1))
        if embed.proj.bias is not None:
            linear.bias.copy_(embed.proj.bias)
    return linear
