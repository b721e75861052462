"""TubeViT: sparse video tubes (Piergiovanni, Kuo & Angelova, CVPR 2023, arXiv 2212.03229).

A plain ViT encoder (no factorised attention) over the tokens of a few sparse tubes:

    x (B, C, T, H, W)  or a single frame (B, C, 1, H, W) / (B, C, H, W)
      -> tokens (B, N, D)          TubeTokenizer: every tube its own Conv3d; a frame uses the 2D tubes only
      -> + tube positions          fixed sin-cos at tube centres by default (vtlib.tubes.TubePosition)
      -> Transformer(depth)        pre-norm blocks, joint attention over all N tokens
      -> LayerNorm -> pool (B, D)  attention pooling by default (the paper's head)
      -> Linear head (B, classes)

One model for images and videos: ``model(frames)`` and ``model(clips)`` share every weight; only
the set of tubes differs. ``GatedTubeViT`` turns a model trained on frames into a video model
(image-to-video scaling, the paper's Table 6): the video tubes' tokens enter the frame tokens
through a cross-attention whose output is multiplied by tanh(alpha), alpha = 0 at the start,

    z = z + tanh(alpha) * CrossAttention(norm(z), norm(video tube tokens)),

so at initialisation the extended model computes exactly what the image model computed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from vtlib.block import EncoderSize
from vtlib.errors import bad_arg, check_heads, check_positive_int, check_rank
from vtlib.models.vivit import PooledEncoder
from vtlib.shapes import video_thw
from vtlib.tubes import TubePosition, TubeTokenizer, as_tubes, tube_preset


class TubeViT(PooledEncoder):
    """TubeViT on clips (B, C, T, H, W) or single frames (B, C, 1, H, W) / (B, C, H, W) -> logits.

    ``tubes``: a list of ``vtlib.tubes.Tube``; None picks ``tube_preset(video_shape[0])`` (28 or 64).
    ``position``: none | learned | fixed-index | fixed (TubeViT Table 7a). ``pool``: attn | mean | cls.
    ``dim`` must be divisible by 6 for the fixed sin-cos codes (three axes of sin/cos pairs).
    Attention maps: ``vtlib.attention.record_attention(model)``, one (B, heads, N, N) map per block.
    """

    def __init__(self, *, num_classes: int = 2, video_shape: tuple[int, int, int] = (28, 28, 28), tubes=None,
                 dim: int = 48, depth: int = 4, heads: int = 4, mlp_ratio: float = 4.0, in_channels: int = 1,
                 position: str = "fixed", pool: str = "attn", drop_path: float = 0.0, qkv_bias: bool = True,
                 eps: float = 1e-6):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        size = EncoderSize(dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                           drop_path=drop_path, eps=eps)
        self.video_shape = video_thw(video_shape)
        if tubes is None:
            tubes = tube_preset(self.video_shape[0]) if len(set(self.video_shape)) == 1 else None
            if tubes is None:
                raise bad_arg("tubes", "a list of Tube for a non-cubic video_shape", repr(video_shape),
                              "pass tubes=[Tube(...), ...] (presets exist for 28^3 and 64^3)")
        self.embed = TubeTokenizer(dim=dim, tubes=as_tubes(tubes), in_channels=in_channels)
        self.pos = TubePosition(kind=position, tubes=self.embed.tubes, video_shape=self.video_shape, dim=dim)
        self._build_encoder(size=size, pool=pool, num_classes=num_classes)

    @property
    def num_tokens(self) -> int:
        """Tokens of a clip (plus the CLS token when pool="cls")."""
        return self.pos.num_tokens + self.pool.num_prefix

    @property
    def num_image_tokens(self) -> int:
        """Tokens of a single frame (2D tubes only; plus the CLS token when pool="cls")."""
        return self.pos.num_image_tokens + self.pool.num_prefix

    def as_input(self, x: Tensor) -> tuple[Tensor, bool]:
        """Check x; return it as (B, C, T, H, W) and whether it is a single frame."""
        if isinstance(x, Tensor) and x.ndim == 4:
            x = x.unsqueeze(2)                                      # (B, C, H, W) -> (B, C, 1, H, W)
        check_rank("x", x, 5, "B C T H W (clips) or B C H W (frames)")
        T, H, W = self.video_shape
        image = x.shape[2] == 1 and T > 1
        if tuple(x.shape[3:]) != (H, W) or x.shape[2] not in (1, T):
            raise bad_arg("x", f"clips (B, C, {T}, {H}, {W}) or frames (B, C, 1, {H}, {W}) / (B, C, {H}, {W})",
                          f"shape {tuple(x.shape)}",
                          "resize with vtlib.data.resize, or build the model with video_shape=x.shape[2:]")
        if image and not self.pos.has_image:
            raise bad_arg("x", f"clips with T={T} frames: this model has no 2D tube for single frames",
                          f"shape {tuple(x.shape)}", "add a 2D tube (kernel (1, p, p)) to tubes")
        return x, image

    def tokens(self, x: Tensor) -> tuple[Tensor, bool]:
        """Tube tokens with positions (B, N, D), and whether x was a single frame."""
        x, image = self.as_input(x)
        return self.pos(self.embed(x), image=image), image

    def features(self, x: Tensor) -> Tensor:
        """Pooled features (B, D) of clips or single frames."""
        return self.encode(self.tokens(x)[0])


class CrossAttention(nn.Module):
    """Multi-head cross-attention: queries from x (B, Nq, D), keys and values from context (B, Nk, D)."""

    def __init__(self, *, dim: int, heads: int = 4):
        super().__init__()
        check_heads(dim, heads)
        self.dim, self.heads = dim, heads
        self.to_q, self.to_kv, self.out = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        for name, t in (("x", x), ("context", context)):
            check_rank(name, t, 3, "B N D")
            if t.shape[-1] != self.dim:
                raise bad_arg(name, f"tokens of width D={self.dim}", f"shape {tuple(t.shape)}",
                              "build CrossAttention with the model's dim")
        q = rearrange(self.to_q(x), "b n (h e) -> b h n e", h=self.heads)
        k, v = rearrange(self.to_kv(context), "b n (two h e) -> two b h n e", two=2, h=self.heads)
        return self.out(rearrange(F.scaled_dot_product_attention(q, k, v), "b h n e -> b n (h e)"))


class GatedTubeViT(nn.Module):
    """An image TubeViT (trained on frames) extended with video tubes through a closed gate.

    Frames go through the image model unchanged. For clips, the image model's 2D-tube tokens z
    (B, N2, D) read the new tubes' tokens v (B, Nv, D) by cross-attention, gated:
    z = z + tanh(alpha) * cross(norm_q(z), norm_kv(v)), alpha = 0 at init, so the output equals
    the image model's output until training opens the gate. The image model is shared (not copied).
    """

    def __init__(self, *, image_model: TubeViT, tubes, heads: int = 4, position: str = "fixed"):
        super().__init__()
        if not isinstance(image_model, TubeViT) or not image_model.pos.has_image:
            raise bad_arg("image_model", "a TubeViT with a 2D tube (trained on single frames)",
                          type(image_model).__name__, "build TubeViT(tubes=[Tube((1, p, p), ...)]) and train it")
        tubes = as_tubes(tubes)
        dim, in_ch = image_model.embed.dim, image_model.embed.in_channels
        self.image = image_model
        self.video_embed = TubeTokenizer(dim=dim, tubes=tubes, in_channels=in_ch)
        self.video_pos = TubePosition(kind=position, tubes=tubes, video_shape=image_model.video_shape, dim=dim)
        self.norm_q, self.norm_kv = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.cross = CrossAttention(dim=dim, heads=heads)
        self.alpha = nn.Parameter(torch.zeros(()))                   # tanh(0) = 0: the gate starts closed

    @property
    def gate(self) -> Tensor:
        return torch.tanh(self.alpha)

    def forward(self, x: Tensor) -> Tensor:
        z, image = self.image.tokens(x)                             # (B, N2, D), 2D tubes (+ positions)
        if not image:
            x5 = x.unsqueeze(2) if x.ndim == 4 else x
            v = self.video_pos(self.video_embed(x5))                # (B, Nv, D) video tube tokens
            z = z + self.gate * self.cross(self.norm_q(z), self.norm_kv(v))
        return self.image.head(self.image.encode(z))
