"""ViViT Model 4: factorised dot-product attention (Arnab et al., ICCV 2021, arXiv 2103.15691).

Model 1 with one change inside every attention layer: the heads are split in two groups.

    q, k, v = qkv(x)                     (B, heads, nt, S, d)   tokens (t h w), S = nh*nw
    heads[:h/2]  spatial:  each token attends to the S tokens of its own token-frame
    heads[h/2:]  temporal: each token attends to the nt tokens at its own spatial position
    out = proj(concat(heads))            (B, N, D)

Nothing else changes: the same qkv and proj weights, the same blocks, the same parameter count
as Model 1 (without a CLS token, see below). Per layer and head the scores cost nt * S^2 entries
(spatial heads) or S * nt^2 (temporal heads), i.e. O(S^2 + nt^2) per token instead of
O((nt*S)^2) for the whole clip.

The same computation written as *masked joint attention*: run Model 1's attention over all
N = nt*S tokens, but give the spatial heads a same-frame mask and the temporal heads a
same-position mask (:func:`factorised_head_mask`). The outputs are equal (tested); the masked form
still computes all N^2 scores and throws most away, the reshaped form never builds them.

No CLS token: a CLS token belongs to no frame and no spatial position, so neither group of heads
would know where to put it. Pool with ``pool="mean"`` (default) or ``"attn"``.
``Model 4 == ViViT(pool="mean")`` parameter for parameter: the state dicts have the same keys
and shapes, and at the same seed both models start from the same weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor

from vtlib.attention import MultiHeadAttention, attention_explicit
from vtlib.errors import bad_arg, check_positive_int, check_rank
from vtlib.models.vivit import ViViT
from vtlib.shapes import frames_patches


def factorised_masks(grid) -> tuple[Tensor, Tensor]:
    """Bool (N, N) masks for tokens in (t h w) order, True = may attend:

    ``same_frame[i, j]``: i and j lie in the same token-frame (spatial attention);
    ``same_position[i, j]``: i and j lie at the same spatial position (temporal attention).
    """
    nt, S = frames_patches(grid)
    frame = repeat(torch.arange(nt), "t -> (t s)", s=S)             # token-frame index of token n
    where = repeat(torch.arange(S), "s -> (t s)", t=nt)             # spatial index of token n
    return frame[:, None] == frame[None, :], where[:, None] == where[None, :]


def check_even_heads(heads: int) -> None:
    """Model 4's rule: a positive, even number of heads (half attend in space, half in time)."""
    check_positive_int("heads", heads)
    if heads % 2:
        raise bad_arg("heads", "an even number (half the heads attend in space, half in time)",
                      heads, f"use heads={heads + 1} (dim must stay divisible by heads)")


def check_factorised_tokens(x: Tensor, mask: Tensor | None, frames: int, patches: int, dim: int) -> None:
    """Input of a factorised layer (Models 3 and 4): x (B, nt*S, D) in (t h w) order, no CLS, no mask."""
    check_rank("x", x, 3, "B N D")
    if tuple(x.shape[1:]) != (frames * patches, dim):
        raise bad_arg("x", f"(B, nt*S={frames}*{patches}, D={dim}) tokens in (t h w) order, no CLS",
                      f"shape {tuple(x.shape)}", "build the layer with the model's token grid")
    if mask is not None:
        raise bad_arg("mask", "None (the factorisation is the mask)", "a mask",
                      "mask joint attention instead: MultiHeadAttention with factorised_head_mask(...)")


def factorised_head_mask(grid, heads: int) -> Tensor:
    """(heads, N, N) bool: same-frame mask for the first heads/2, same-position for the rest."""
    check_even_heads(heads)
    same_frame, same_position = factorised_masks(grid)
    half = heads // 2
    return torch.cat([repeat(same_frame, "i j -> h i j", h=half),
                      repeat(same_position, "i j -> h i j", h=half)])


def joint_layout(w_s: Tensor, w_t: Tensor) -> Tensor:
    """Spatial weights (B, h/2, nt, S, S) and temporal ones (B, h/2, S, nt, nt) laid out as joint
    attention over the N = nt*S tokens, (B, h, N, N): zero outside each head's block pattern."""
    nt, S = w_s.shape[2], w_t.shape[2]
    eye_t = torch.eye(nt, dtype=w_s.dtype, device=w_s.device)
    eye_s = torch.eye(S, dtype=w_t.dtype, device=w_t.device)
    full_s = torch.einsum("bhtij,tu->bhtiuj", w_s, eye_t)             # key frame u == query frame t
    full_t = torch.einsum("bhstu,sr->bhtsur", w_t, eye_s)             # key place r == query place s
    return torch.cat([rearrange(full_s, "b h t i u j -> b h (t i) (u j)"),
                      rearrange(full_t, "b h t s u r -> b h (t s) (u r)")], dim=1)


class FactorisedDotProductAttention(MultiHeadAttention):
    """Multi-head attention whose first heads/2 heads attend in space and the rest in time.

    Same parameters as ``MultiHeadAttention(dim=dim, heads=heads)`` (``qkv``, ``proj``), so its state
    dict loads into one and back. ``grid``: the token grid (nt, nh, nw) or (nt, S).
    forward(x (B, nt*S, D)) -> (B, N, D). Under ``vtlib.attention.record_attention`` it records its
    weights laid out as joint attention (B, heads, N, N), zero outside each head's mask.
    """

    def __init__(self, *, dim: int, heads: int, grid, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        check_even_heads(heads)
        super().__init__(dim=dim, heads=heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop)
        self.frames, self.patches = frames_patches(grid)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        nt = self.frames
        check_factorised_tokens(x, mask, nt, self.patches, self.dim)
        half, p = self.heads // 2, (self.attn_drop if self.training else 0.0)
        q, k, v = rearrange(self.qkv(x), "b (t s) (three h e) -> three b h t s e",
                            three=3, h=self.heads, t=nt)              # each (B, heads, nt, S, e)
        space = [z[:, :half] for z in (q, k, v)]                      # attend over S (axis -2)
        time = [rearrange(z[:, half:], "b h t s e -> b h s t e") for z in (q, k, v)]  # over nt
        if self._recorder is None:
            out_s = F.scaled_dot_product_attention(*space, dropout_p=p)
            out_t = F.scaled_dot_product_attention(*time, dropout_p=p)
        else:
            out_s, w_s = attention_explicit(*space, dropout_p=p)      # w_s (B, h/2, nt, S, S)
            out_t, w_t = attention_explicit(*time, dropout_p=p)       # w_t (B, h/2, S, nt, nt)
            self._recorder(joint_layout(w_s, w_t))                    # (B, heads, N, N)
        out = torch.cat([out_s, rearrange(out_t, "b h s t e -> b h t s e")], dim=1)
        return self.proj_drop(self.proj(rearrange(out, "b h t s e -> b (t s) (h e)")))


class ViViTFactorisedDotProduct(ViViT):
    """ViViT Model 4 on clips (B, C, T, H, W) -> logits (B, num_classes); see the module docstring.

    Keyword arguments as ``ViViT`` (``heads`` must be even, ``pool`` "mean" or "attn"). Built as a
    ViViT whose every ``block.attn`` is a :class:`FactorisedDotProductAttention` holding the same
    weights. ``vtlib.attention.record_attention`` gives per-block (B, heads, N, N) maps like Model 1.
    """

    def __init__(self, *, pool: str = "mean", **vivit_kwargs):
        if pool == "cls":
            raise bad_arg("pool", "'mean' or 'attn' (Model 4 has no CLS token: it is in no frame "
                          "and at no spatial position)", repr(pool), "pass pool='mean'")
        super().__init__(pool=pool, **vivit_kwargs)
        size = self.encoder_size
        check_even_heads(size.heads)
        self.heads = size.heads
        for block in self.encoder.blocks:                             # layers, not tokens
            fdp = FactorisedDotProductAttention(dim=size.dim, heads=size.heads, grid=self.grid,
                                                qkv_bias=size.qkv_bias)
            fdp.load_state_dict(block.attn.state_dict())              # Model 1's weights, unchanged
            block.attn = fdp

    def attention_score_entries(self) -> int:
        """Score entries per clip over all layers and heads: depth * h/2 * (nt*S^2 + S*nt^2)."""
        nt, S = frames_patches(self.grid)
        return len(self.encoder.blocks) * (self.heads // 2) * (nt * S * S + S * nt * nt)
