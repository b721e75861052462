"""ViViT Model 3: factorised self-attention (Arnab et al., ICCV 2021, arXiv 2103.15691).

Model 1 with a different block. Each block attends first in space, then in time, then runs the MLP:

    x (B, N, D), N = nt*S tokens in (t h w) order, S = nh*nw
    x = x + spatial_attn(norm1(x))        over the S tokens of the same token-frame
                                          "b (t s) d -> (b t) s d": B*nt sequences of S tokens
    x = x + temporal_attn(temporal_norm(x))  over the nt tokens at the same spatial position
                                          "b (t s) d -> (b s) t d": B*S sequences of nt tokens
    x = x + mlp(norm2(x))

Per layer and head the scores cost nt * S^2 (space) + S * nt^2 (time) entries: O(S^2 + nt^2) per
token instead of O((nt*S)^2) for the whole clip with joint attention. A token still reaches every
other token in one block (space, then time), but only through a token of its own frame/position.
The price is a second attention per block: Model 3 has 4D^2 + 6D more parameters per block than
Model 1 (the temporal qkv/proj weights and biases and the temporal LayerNorm).

As in the paper (and unlike lucidrains' vit-pytorch, which keeps a CLS per frame), Model 3 has
**no CLS token**: a CLS belongs to no frame and no spatial position, so reshaping between the
spatial and temporal layouts would be ambiguous. The clip is pooled with ``pool="mean"`` (default)
or ``"attn"``.

Initialisation (the paper's): the temporal attention's output projection is zero, so at init
every temporal branch adds 0 and the model *is* a space-only model (a ViT run on each frame,
then a mean over all tokens). The spatial part has exactly Model 1's parameter names, so a
Model 1 / image-model state dict loads into it (``strict=False``: only ``temporal_*`` is new);
training then grows the temporal attention from zero without disturbing what the spatial part
already does. ``temporal_init="default"`` keeps PyTorch's random init instead.
"""
from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from vtlib.attention import MultiHeadAttention
from vtlib.block import MLP, DropPath, mlp_hidden_dim
from vtlib.errors import bad_arg, check_choice
from vtlib.models.vivit import ViViT
from vtlib.models.vivit_fdp import check_factorised_tokens
from vtlib.shapes import frames_patches


class FactorisedSelfAttentionBlock(nn.Module):
    """Pre-norm block on (B, nt*S, D): spatial attention, temporal attention, MLP.

    forward(x, mask=None) -> (B, N, D). Under ``vtlib.attention.record_attention`` the block records
    two maps: ``attn`` (spatial) (B*nt, heads, S, S), rows "(b t)", and ``temporal_attn``
    (B*S, heads, nt, nt), rows "(b s)"; ``rearrange(w, "(b t) h i j -> b t h i j", b=B)`` splits them.
    Stochastic depth drops each residual branch per clip (on the (B, N, D) layout).
    """

    def __init__(self, *, dim: int, heads: int, grid, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, eps: float = 1e-6, temporal_init: str = "zeros") -> None:
        super().__init__()
        check_choice("temporal_init", temporal_init, ("zeros", "default"))
        self.frames, self.patches = frames_patches(grid)
        self.dim = dim
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = MultiHeadAttention(dim=dim, heads=heads, qkv_bias=qkv_bias)          # spatial
        self.temporal_norm = nn.LayerNorm(dim, eps=eps)
        self.temporal_attn = MultiHeadAttention(dim=dim, heads=heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim=dim, hidden_dim=mlp_hidden_dim(dim, mlp_ratio))
        self.drop_path = DropPath(drop_path)
        if temporal_init == "zeros":                 # temporal branch = 0: a residual identity
            nn.init.zeros_(self.temporal_attn.proj.weight)
            nn.init.zeros_(self.temporal_attn.proj.bias)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        nt = self.frames
        check_factorised_tokens(x, mask, nt, self.patches, self.dim)
        B = x.shape[0]
        h = rearrange(self.norm1(x), "b (t s) d -> (b t) s d", t=nt)          # frames
        x = x + self.drop_path(rearrange(self.attn(h), "(b t) s d -> b (t s) d", b=B))
        h = rearrange(self.temporal_norm(x), "b (t s) d -> (b s) t d", t=nt)  # tubes over time
        x = x + self.drop_path(rearrange(self.temporal_attn(h), "(b s) t d -> b (t s) d", b=B))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ViViTFactorisedSelfAttention(ViViT):
    """ViViT Model 3 on clips (B, C, T, H, W) -> logits (B, num_classes); see the module docstring.

    Keyword arguments as ``ViViT`` (``pool`` "mean" or "attn"), plus ``temporal_init`` ("zeros", the
    paper's, or "default"). Built as a ViViT whose blocks are :class:`FactorisedSelfAttentionBlock`
    s; the spatial attention, norms and MLP keep the weights ViViT drew, so at the same seed
    Model 3 at init computes what Model 1 computes under a same-frame attention mask.
    ``vtlib.attention.record_attention`` gives per block a spatial then a temporal map (see the block).
    """

    def __init__(self, *, pool: str = "mean", temporal_init: str = "zeros", **vivit_kwargs):
        if pool == "cls":
            raise bad_arg("pool", "'mean' or 'attn' (Model 3 has no CLS token: it is in no frame "
                          "and at no spatial position)", repr(pool), "pass pool='mean'")
        check_choice("temporal_init", temporal_init, ("zeros", "default"))
        super().__init__(pool=pool, **vivit_kwargs)
        size = self.encoder_size
        self.heads = size.heads
        blocks = []
        for old in self.encoder.blocks:                               # layers, not tokens
            new = FactorisedSelfAttentionBlock(dim=size.dim, heads=size.heads, grid=self.grid,
                                               mlp_ratio=size.mlp_ratio, qkv_bias=size.qkv_bias,
                                               drop_path=old.drop_path.p, eps=size.eps,
                                               temporal_init=temporal_init)
            new.norm1, new.attn, new.norm2, new.mlp = old.norm1, old.attn, old.norm2, old.mlp
            blocks.append(new)
        self.encoder.blocks = nn.ModuleList(blocks)

    def attention_score_entries(self) -> int:
        """Score entries per clip over all layers and heads: depth * heads * (nt*S^2 + S*nt^2)."""
        nt, S = frames_patches(self.grid)
        return len(self.encoder.blocks) * self.heads * (nt * S * S + S * nt * nt)
