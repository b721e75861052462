"""ViViT Model 2: factorised encoder (Arnab et al., ICCV 2021, arXiv 2103.15691), and its
average-pool baseline.

Two transformers one after the other: a *spatial* one that sees each token-frame on its own
(like an image ViT run on every frame), then a *temporal* one that sees one vector per frame:

    x (B, C, T, H, W)
      -> tokens (B, nt*S, D)         tubelet embedding, S = nh*nw tokens per token-frame, (t h w) order
      -> + positions                 one learned vector per (frame, patch), as in Model 1
      -> (B*nt, S, D)                group the tokens by token-frame index: "b (t s) d -> (b t) s d"
      -> [CLS] + tokens (B*nt, 1+S, D)  one CLS *parameter* shared by every frame
      -> spatial Transformer(Ls)     attention inside one frame: O(S^2) per frame
      -> LayerNorm, frame CLS        (B, nt, D): one embedding per frame
      -> + temporal positions, [CLS] (B, 1+nt, D)
      -> temporal Transformer(Lt)    attention across frames: O(nt^2)
      -> LayerNorm, CLS -> head      (B, num_classes)

Cost of the attention scores, per layer and head: nt * (S+1)^2 entries in the spatial stage and
(nt+1)^2 in the temporal stage, instead of (nt*S)^2 for Model 1's joint attention. The two stages
never attend jointly, so space-time interactions happen only through the frame embeddings.

``temporal="mean"`` is the paper's *average-pool baseline* (Table 2, last row; Table 3, Lt = 0):
no temporal transformer, the frame embeddings are averaged. What it can and cannot see:
an average is blind to the order of the token-frames, except that (a) each token already mixes
t consecutive frames (the tubelet conv sees motion *inside* a tubelet) and (b) the learned
position code is added per (frame, patch) *before* the spatial stage, so a frame's embedding can
depend on its index. The sum over frames is still additive, so relations *between* frames
(did the object move left from frame 3 to frame 4?) are out of its reach beyond one tubelet.

Details that follow the paper's authors (google-research/scenic#351): the temporal encoder is
randomly initialised, one CLS parameter is shared by every frame (the spatial ViT is vmapped over
frames), a frame is represented by its CLS output (``frame_pool="cls"``) or by the mean of its
tokens (``frame_pool="mean"``). ``temporal_position="learned"`` adds a learned vector per frame
before the temporal stage; lucidrains' vit-pytorch adds none ("none"), and frame order then reaches
the temporal stage only through the (frame, patch) positions of the input.

Stochastic depth in the spatial stage acts on the B*nt frame sequences, so it drops a block for
one frame of a clip rather than for the whole clip (the stage cannot tell clips apart).
"""
from __future__ import annotations

from dataclasses import replace

from einops import rearrange
from torch import Tensor, nn

from vtlib.block import EncoderSize
from vtlib.errors import bad_arg, check_choice, check_positive_int
from vtlib.models.vivit import make_embed
from vtlib.pooling import ClsToken
from vtlib.position import LearnedPosition, make_position
from vtlib.shapes import check_clip_shape

TEMPORAL_KINDS = ("transformer", "mean")
FRAME_POOLS = ("cls", "mean")


class ViViTFactorisedEncoder(nn.Module):
    """ViViT Model 2 on clips (B, C, T, H, W) -> logits (B, num_classes); see the module docstring.

    ``depth_spatial`` (Ls) and ``depth_temporal`` (Lt) blocks; ``temporal="mean"`` gives the
    average-pool baseline (then ``depth_temporal`` must be 0 or None). Other arguments as in
    ``vtlib.models.vivit.ViViT``; ``self.encoder_size`` describes the spatial stack (the temporal one
    differs only in depth).

    Attention maps (``vtlib.attention.record_attention``): ``spatial.blocks.i.attn`` records
    (B*nt, heads, S', S'), rows "(b t)", S' = S (+1 for the frame CLS at index 0); then
    ``temporal_encoder.blocks.i.attn`` records (B, heads, 1+nt, 1+nt), the temporal CLS at index 0.
    """

    def __init__(self, *, num_classes: int = 2, video_shape: tuple[int, int, int] = (28, 28, 28),
                 tubelet: tuple[int, int, int] = (4, 7, 7), dim: int = 64, depth_spatial: int = 3,
                 depth_temporal: int | None = None, heads: int = 4, mlp_ratio: float = 4.0,
                 in_channels: int = 1, embed: str = "tubelet", position: str = "learned",
                 temporal: str = "transformer", frame_pool: str = "cls",
                 temporal_position: str = "learned", drop_path: float = 0.0, qkv_bias: bool = True,
                 eps: float = 1e-6):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_choice("temporal", temporal, TEMPORAL_KINDS)
        check_choice("frame_pool", frame_pool, FRAME_POOLS)
        check_choice("temporal_position", temporal_position, ("learned", "none"))
        check_positive_int("depth_spatial", depth_spatial)
        if temporal == "transformer":
            depth_temporal = 1 if depth_temporal is None else depth_temporal
            check_positive_int("depth_temporal", depth_temporal)
        elif depth_temporal not in (None, 0):
            raise bad_arg("depth_temporal", "0 or None with temporal='mean' (the average-pool "
                          "baseline has no temporal transformer)", repr(depth_temporal),
                          "drop depth_temporal, or use temporal='transformer'")
        size = EncoderSize(dim=dim, depth=depth_spatial, heads=heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                           drop_path=drop_path, eps=eps)
        self.encoder_size = size
        self.embed = make_embed(embed, dim, tubelet, in_channels)
        self.video_shape = tuple(video_shape)
        self.grid = self.embed.grid(self.video_shape)               # (nt, nh, nw)
        nt, nh, nw = self.grid
        self.temporal, self.frame_pool = temporal, frame_pool
        self.depth_spatial, self.depth_temporal = depth_spatial, depth_temporal or 0
        self.heads = heads
        self.pos = make_position(position, self.grid, dim)          # per (frame, patch), before stage 1
        self.spatial_cls = ClsToken(dim=dim) if frame_pool == "cls" else None
        self.spatial = size.transformer()
        self.spatial_norm = nn.LayerNorm(dim, eps=eps)
        if temporal == "transformer":
            self.temporal_pos = (LearnedPosition(num_tokens=nt, dim=dim) if temporal_position == "learned"
                                 else None)
            self.temporal_cls = ClsToken(dim=dim)
            self.temporal_encoder = replace(size, depth=depth_temporal).transformer()
            self.temporal_norm = nn.LayerNorm(dim, eps=eps)
        else:                                                        # average-pool baseline
            self.temporal_pos = self.temporal_cls = self.temporal_encoder = self.temporal_norm = None
        self.head = nn.Linear(dim, num_classes)

    @property
    def tokens_per_frame(self) -> int:
        """Tokens one spatial sequence attends over: S = nh*nw, plus the frame CLS if any."""
        _, nh, nw = self.grid
        return nh * nw + (self.spatial_cls is not None)

    def attention_score_entries(self) -> int:
        """Entries of every attention score matrix for one clip, summed over layers and heads.

        Spatial stage: Ls * heads * nt * (S+1)^2; temporal stage: Lt * heads * (nt+1)^2.
        """
        nt = self.grid[0]
        spatial = self.depth_spatial * self.heads * nt * self.tokens_per_frame ** 2
        return spatial + self.depth_temporal * self.heads * (nt + 1) ** 2

    def frame_embeddings(self, x: Tensor) -> Tensor:
        """Stage 1: one vector per token-frame (B, nt, D)."""
        check_clip_shape(x, self.video_shape)
        B, nt = x.shape[0], self.grid[0]
        tokens = self.pos(self.embed(x))                              # (B, nt*S, D)
        frames = rearrange(tokens, "b (t s) d -> (b t) s d", t=nt)   # one sequence per frame
        if self.spatial_cls is not None:
            frames = self.spatial_cls.prepend(frames)                 # (B*nt, 1+S, D)
        out = self.spatial_norm(self.spatial(frames))
        emb = out[:, 0] if self.spatial_cls is not None else out.mean(dim=1)   # (B*nt, D)
        return rearrange(emb, "(b t) d -> b t d", b=B)

    def features(self, x: Tensor) -> Tensor:
        """Pooled clip features (B, D)."""
        frames = self.frame_embeddings(x)
        if self.temporal == "mean":
            return frames.mean(dim=1)                                 # the average-pool baseline
        if self.temporal_pos is not None:
            frames = self.temporal_pos(frames)
        seq = self.temporal_encoder(self.temporal_cls.prepend(frames))   # (B, 1+nt, D)
        return self.temporal_norm(seq)[:, 0]                          # temporal CLS (B, D)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def vivit_avgpool(**kwargs) -> ViViTFactorisedEncoder:
    """The average-pool baseline: Model 2 without its temporal transformer (paper Table 2/3, Lt=0)."""
    if "temporal" in kwargs or kwargs.get("depth_temporal") not in (None, 0):
        raise bad_arg("kwargs", "no 'temporal' and no non-zero 'depth_temporal' (this baseline has "
                      "no temporal transformer)", sorted(kwargs), "build ViViTFactorisedEncoder "
                      "directly for a temporal transformer")
    return ViViTFactorisedEncoder(temporal="mean", **kwargs)
