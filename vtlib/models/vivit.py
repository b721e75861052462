"""ViViT Model 1: joint space-time attention (Arnab et al., ICCV 2021, arXiv 2103.15691).

Every tubelet token attends to every other token, across space and time:

    x (B, C, T, H, W)
      -> tokens (B, N, D)          tubelet embedding (or uniform frame sampling), N = nt * nh * nw
      -> + positions               learned by default (see vtlib.position for the alternatives)
      -> [CLS] + tokens (B, 1+N, D) when pool="cls"
      -> Transformer(depth)        pre-norm blocks, attention over all 1+N tokens: O(N^2)
      -> LayerNorm -> pool (B, D)  CLS read-out, mean, or attention pooling
      -> Linear head (B, classes)

The same class is the "small encoder" of notebooks 01-03: ``embed``, ``position`` and ``pool``
select the component each of those notebooks compares.
"""
from __future__ import annotations

from torch import Tensor, nn

from vtlib.block import EncoderSize
from vtlib.errors import bad_arg, check_choice, check_positive_int
from vtlib.pooling import make_pool
from vtlib.position import make_position
from vtlib.shapes import check_clip_shape
from vtlib.tokens import FrameEmbed, TubeletEmbed


def make_embed(embed: str, dim: int, tubelet: tuple[int, int, int], in_channels: int = 1) -> nn.Module:
    """"tubelet": TubeletEmbed (t, p, p); "frame": FrameEmbed keeping every t-th frame, p x p patches."""
    check_choice("embed", embed, ("tubelet", "frame"))
    if embed == "tubelet":
        return TubeletEmbed(dim=dim, tubelet=tubelet, in_channels=in_channels)
    t, p, q = tubelet
    if p != q:
        raise bad_arg("tubelet", "square patches (t, p, p) for embed='frame'", tubelet,
                      "use the same patch size for height and width")
    return FrameEmbed(dim=dim, patch=p, in_channels=in_channels, frame_stride=t)


class PooledEncoder(nn.Module):
    """What ViViT Model 1 and TubeViT share after their tokenizers: tokens (B, N, D) ->

        pool.prepend ([CLS] + tokens) -> Transformer -> LayerNorm -> pool (B, D) -> Linear head (B, classes)

    A subclass builds its tokenizer and position code, then calls ``_build_encoder`` (in that order,
    so that seeded models draw the same weights), and defines ``features(x) -> (B, D)``.
    """

    def _build_encoder(self, *, size: EncoderSize, pool: str, num_classes: int) -> None:
        self.encoder_size = size
        self.pool = make_pool(pool, size.dim)
        self.encoder = size.transformer()
        self.norm = nn.LayerNorm(size.dim, eps=size.eps)
        self.head = nn.Linear(size.dim, num_classes)

    def encode(self, tokens: Tensor) -> Tensor:
        """Tokens (B, N, D) -> pooled features (B, D)."""
        return self.pool(self.norm(self.encoder(self.pool.prepend(tokens))))

    def features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class ViViT(PooledEncoder):
    """ViViT Model 1 on clips (B, C, T, H, W) -> logits (B, num_classes).

    ``embed="tubelet"``: Conv3d with kernel = stride = tubelet (t, p, p).
    ``embed="frame"``: uniform frame sampling, every t-th frame cut into p x p patches in 2D
    (same token count as the t x p x p tubelet). ``dim``, ``depth``, ``heads``, ``mlp_ratio``,
    ``qkv_bias``, ``drop_path`` and ``eps`` form ``self.encoder_size`` (a ``vtlib.block.EncoderSize``).
    Attention maps: ``vtlib.attention.record_attention(model)`` gives one (B, heads, N, N) map per
    block, N = nt*nh*nw (+1 for the CLS token, at index 0).
    """

    def __init__(self, *, num_classes: int = 2, video_shape: tuple[int, int, int] = (28, 28, 28),
                 tubelet: tuple[int, int, int] = (4, 7, 7), dim: int = 64, depth: int = 4, heads: int = 4,
                 mlp_ratio: float = 4.0, in_channels: int = 1, embed: str = "tubelet",
                 position: str = "learned", pool: str = "cls", drop_path: float = 0.0,
                 qkv_bias: bool = True, eps: float = 1e-6):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        size = EncoderSize(dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                           drop_path=drop_path, eps=eps)
        self.embed = make_embed(embed, dim, tubelet, in_channels)
        self.video_shape = tuple(video_shape)
        self.grid = self.embed.grid(self.video_shape)
        self.pos = make_position(position, self.grid, dim)
        self._build_encoder(size=size, pool=pool, num_classes=num_classes)

    @property
    def num_tokens(self) -> int:
        """Tokens attended over: patches plus the CLS token when there is one."""
        nt, nh, nw = self.grid
        return nt * nh * nw + self.pool.num_prefix

    def features(self, x: Tensor) -> Tensor:
        """Pooled clip features (B, D)."""
        check_clip_shape(x, self.video_shape)
        return self.encode(self.pos(self.embed(x)))                # (B, D)
