"""ConvViT: the course recipe's video transformer, a 3D convolutional tokenizer + a plain ViT.

A ViT's tubelet embedding is one linear map per 4x7x7 block: it must learn from 1,188 volumes
that neighbouring voxels belong together. A convolutional tokenizer (as in CCT, Hassani et al.
2021, and the convolutional stems of Xiao et al. 2021) gives it that for free: a few 3x3x3
convolutions with pooling turn the clip into a coarse grid of feature vectors, and those become
the tokens. Attention then mixes information across the whole grid, which no convolution stack
of this depth can do.

    x (B, C, T, H, W)
      -> stem: [Conv3d 3x3x3 -> BatchNorm -> ReLU -> MaxPool3d(3, stride 2)] per width
               28^3 -> 14^3 -> 7^3 with two stages; 64^3 -> 8^3 with three
      -> tokens (B, N, D)            one per grid cell, N = t * h * w, a 1x1x1 conv to D
      -> + position code (learned by default; see vtlib.position)
      -> Transformer(depth)          pre-norm blocks, stochastic depth
      -> LayerNorm -> attention pooling (B, D) -> Linear head (B, classes)

Inputs in float16 / bfloat16 / float64 are cast to the parameters' dtype at the entry.
"""
from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from vtlib.block import Transformer
from vtlib.errors import bad_arg, check_heads, check_positive_int
from vtlib.pooling import make_pool
from vtlib.position import make_position
from vtlib.shapes import check_clip_shape, check_video, to_dtype_of


def stem_grid(video_shape: tuple[int, int, int], stages: int) -> tuple[int, int, int]:
    """Grid after ``stages`` MaxPool3d(3, stride 2, padding 1): each axis n -> (n + 1) // 2."""
    grid = tuple(video_shape)
    for _ in range(stages):
        grid = tuple((n + 1) // 2 for n in grid)
    return grid


class ConvStem(nn.Module):
    """(B, C, T, H, W) -> (B, D, t, h, w): per width a 3x3x3 conv, BatchNorm, ReLU, 2x max-pool."""

    def __init__(self, *, in_channels: int, widths: tuple[int, ...], dim: int):
        super().__init__()
        layers, c = [], in_channels
        for w in widths:
            layers += [nn.Conv3d(c, w, 3, padding=1, bias=False), nn.BatchNorm3d(w), nn.ReLU(inplace=True),
                       nn.MaxPool3d(3, stride=2, padding=1)]
            c = w
        self.body = nn.Sequential(*layers)
        self.proj = nn.Conv3d(c, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.body(x))


class ConvViT(nn.Module):
    """Convolutional tokenizer + ViT on clips (B, C, T, H, W) -> logits (B, num_classes)."""

    def __init__(self, *, num_classes: int = 2, video_shape: tuple[int, int, int] = (28, 28, 28),
                 in_channels: int = 1, stem: tuple[int, ...] = (8, 16, 32), dim: int = 64, depth: int = 4,
                 heads: int = 4, mlp_ratio: float = 2.0, drop_path: float = 0.1, pool: str = "attn",
                 position: str = "learned"):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        check_heads(dim, heads)
        if not stem or not all(isinstance(w, int) and w > 0 for w in stem):
            raise bad_arg("stem", "a non-empty tuple of positive channel widths", repr(stem), "e.g. stem=(16, 32)")
        self.video_shape, self.in_channels = tuple(video_shape), in_channels
        self.grid = stem_grid(self.video_shape, len(stem))
        if min(self.grid) < 2:
            raise bad_arg("video_shape", f"at least {2 ** len(stem) + 1} voxels per axis for {len(stem)} stem stages",
                          self.video_shape, "use fewer stem stages or larger clips")
        self.stem = ConvStem(in_channels=in_channels, widths=tuple(stem), dim=dim)
        self.pos = make_position(position, self.grid, dim)
        self.encoder = Transformer(dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio, drop_path_rate=drop_path)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pool = make_pool(pool, dim)
        self.head = nn.Linear(dim, num_classes)

    @property
    def num_tokens(self) -> int:
        t, h, w = self.grid
        return t * h * w + self.pool.num_prefix

    def tokens(self, x: Tensor) -> Tensor:
        """(B, C, T, H, W) -> position-coded tokens (B, N, D)."""
        check_video(x, self.in_channels)          # rank, channels, and a float clip (not raw uint8 voxels)
        check_clip_shape(x, self.video_shape)
        x = to_dtype_of(x, self)
        return self.pos(rearrange(self.stem(x), "b d t h w -> b (t h w) d"))

    def features(self, x: Tensor) -> Tensor:
        """Pooled clip features (B, D)."""
        out = self.encoder(self.pool.prepend(self.tokens(x)))
        return self.pool(self.norm(out))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
