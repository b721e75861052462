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

from vtlib.block import Transformer
from vtlib.errors import bad_arg, check_choice, check_positive_int, check_rank
from vtlib.pooling import make_pool
from vtlib.position import make_position
from vtlib.tokens import FrameEmbed, TubeletEmbed


def make_embed(embed: str, dim: int, tubelet: tuple[int, int, int], in_channels: int = 1) -> nn.Module:
    """"tubelet": TubeletEmbed (t, p, p); "frame": FrameEmbed keeping every t-th frame, p x p patches."""
    check_choice("embed", embed, ("tubelet", "frame"))
    if embed == "tubelet":
        return TubeletEmbed(dim, tubelet, in_channels)
    t, p, q = tubelet
    if p != q:
        raise bad_arg("tubelet", "square patches (t, p, p) for embed='frame'", tubelet,
                      "use the same patch size for height and width")
    return FrameEmbed(dim, p, in_channels, frame_stride=t)


class ViViT(nn.Module):
    """ViViT Model 1 on clips (B, C, T, H, W) -> logits (B, num_classes).

    ``embed="tubelet"``: Conv3d with kernel = stride = tubelet (t, p, p).
    ``embed="frame"``: uniform frame sampling, every t-th frame cut into p x p patches in 2D
    (same token count as the t x p x p tubelet).
    """

    def __init__(self, num_classes: int = 2, video_shape: tuple[int, int, int] = (28, 28, 28),
                 tubelet: tuple[int, int, int] = (4, 7, 7), dim: int = 64, depth: int = 4, heads: int = 4,
                 mlp_ratio: float = 4.0, in_channels: int = 1, embed: str = "tubelet",
                 position: str = "learned", pool: str = "cls", drop_path: float = 0.0,
                 qkv_bias: bool = True, eps: float = 1e-6):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        self.embed = make_embed(embed, dim, tubelet, in_channels)
        self.video_shape = tuple(video_shape)
        self.grid = self.embed.grid(self.video_shape)
        self.pos = make_position(position, self.grid, dim)
        self.pool = make_pool(pool, dim)
        self.encoder = Transformer(dim, depth, heads, mlp_ratio, qkv_bias, drop_path, eps)
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, num_classes)

    @property
    def num_tokens(self) -> int:
        """Tokens attended over: patches plus the CLS token when there is one."""
        nt, nh, nw = self.grid
        return nt * nh * nw + self.pool.num_prefix

    def features(self, x: Tensor, return_attn: bool = False):
        """Pooled clip features (B, D) [and per-block attention maps (B, heads, N, N)]."""
        check_rank("x", x, 5, "B C T H W")
        if tuple(x.shape[2:]) != self.video_shape:
            raise bad_arg("x", f"clips shaped (B, C, {', '.join(map(str, self.video_shape))})",
                          f"shape {tuple(x.shape)}",
                          "resize with vtlib.data.resize, or build the model with video_shape=x.shape[2:]")
        tokens = self.pool.prepend(self.pos(self.embed(x)))        # (B, [1+]N, D)
        out = self.encoder(tokens, return_attn=return_attn)
        out, maps = out if return_attn else (out, None)
        feats = self.pool(self.norm(out))                          # (B, D)
        return (feats, maps) if return_attn else feats

    def forward(self, x: Tensor, return_attn: bool = False):
        if return_attn:
            feats, maps = self.features(x, return_attn=True)
            return self.head(feats), maps
        return self.head(self.features(x))
