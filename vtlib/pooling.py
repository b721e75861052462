"""From N tokens to one video vector: CLS token, mean pooling, attention pooling (notebook 03).

Every pool here has the same two-step interface, so a model can swap them freely:

    x = pool.prepend(x)     # (B, N, D) -> (B, N + pool.num_prefix, D); only ClsToken adds a token
    x = blocks(x)           # the transformer
    v = pool(x)             # (B, N', D) -> (B, D)

Pitfall: reading ``x[:, 0]`` is only a "CLS readout" if a CLS token was prepended. In a model
without one (VideoMAE, the Keras ViViT example) token 0 is simply the first patch token: the
top-left tubelet of the first frames. It still trains, since attention can route information
to it, but it is not a summary by design. Use mean or attention pooling there (VideoMAE
fine-tunes with mean pooling; Hugging Face's VideoMAE head reads token 0 when mean pooling is off).
"""
from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from vtlib.errors import bad_arg, check_choice, check_heads, check_positive_int, check_rank
from vtlib.position import trunc_normal_

POOL_KINDS = ("cls", "mean", "attn")


def _check_tokens(x: torch.Tensor, dim: int) -> None:
    check_rank("x", x, 3, "B N D")
    if x.shape[-1] != dim:
        raise bad_arg("x", f"tokens of width D={dim}", f"shape {tuple(x.shape)}",
                      "build the pool with the model's embedding dim")
    if x.shape[1] == 0:
        raise bad_arg("x", "at least one token", f"shape {tuple(x.shape)}", "check the tokenizer output")


class ClsToken(nn.Module):
    """A learned token prepended to the sequence; its output is the video vector (ViT/ViViT).

    ``prepend``: (B, N, D) -> (B, N + 1, D) with the CLS at index 0.  ``read`` / ``forward``: x[:, 0].
    """

    num_prefix = 1
    no_weight_decay = ("token",)                                 # see vtlib.train.param_groups

    def __init__(self, *, dim: int, init_std: float = 0.02):
        super().__init__()
        check_positive_int("dim", dim)
        self.dim = dim
        self.token = nn.Parameter(trunc_normal_(torch.zeros(1, 1, dim), init_std))

    def prepend(self, x: torch.Tensor) -> torch.Tensor:
        _check_tokens(x, self.dim)
        return torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)

    def read(self, x: torch.Tensor) -> torch.Tensor:
        _check_tokens(x, self.dim)
        return x[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.read(x)


class MeanPool(nn.Module):
    """Average over tokens: (B, N, D) -> (B, D). Blind to token order (permutation-invariant)."""

    num_prefix = 0

    def __init__(self, *, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def prepend(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_rank("x", x, 3, "B N D")
        if self.dim is not None:
            _check_tokens(x, self.dim)
        if x.shape[1] == 0:       # the mean of nothing is NaN
            raise bad_arg("x", "at least one token", f"shape {tuple(x.shape)}", "check the tokenizer output")
        return x.mean(dim=1)


def attention_pool(x: torch.Tensor, query: torch.Tensor, return_weights: bool = False):
    """Single-head attention pooling without projections (the idea in three lines).

    w = softmax_n(x[b, n] . query / sqrt(D));  out[b] = sum_n w[b, n] x[b, n].
    x (B, N, D), query (D,) -> (B, D) [and weights (B, N)].
    """
    check_rank("x", x, 3, "B N D")
    check_rank("query", query, 1, "D")
    if query.shape[0] != x.shape[-1]:
        raise bad_arg("query", f"a vector of length D={x.shape[-1]}", f"shape {tuple(query.shape)}",
                      "use one query of the token width")
    weights = torch.softmax(torch.einsum("bnd,d->bn", x, query) / math.sqrt(x.shape[-1]), dim=-1)
    out = torch.einsum("bn,bnd->bd", weights, x)
    return (out, weights) if return_weights else out


class AttentionPool(nn.Module):
    """A learned query attends over all tokens (TubeViT head, "multi-head attention pooling").

    Per head h: w[b, h, n] = softmax_n(q_h . k[b, h, n] / sqrt(D/heads)), out_h = sum_n w v[b, h, n];
    keys and values are linear maps of the tokens; heads are concatenated and projected.
    (B, N, D) -> (B, D), and the weights (B, heads, N) with ``return_weights=True``.
    Permutation-invariant, like the mean, but it learns which tokens matter.
    """

    num_prefix = 0
    no_weight_decay = ("query",)                                 # see vtlib.train.param_groups

    def __init__(self, *, dim: int, heads: int = 1, init_std: float = 0.02):
        super().__init__()
        check_heads(dim, heads)
        self.dim, self.heads = dim, heads
        self.query = nn.Parameter(trunc_normal_(torch.zeros(heads, dim // heads), init_std))  # (heads, D/heads)
        self.to_kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def prepend(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        _check_tokens(x, self.dim)
        k, v = rearrange(self.to_kv(x), "b n (two h e) -> two b h n e", two=2, h=self.heads)
        scores = torch.einsum("he,bhne->bhn", self.query, k) / math.sqrt(k.shape[-1])
        weights = torch.softmax(scores, dim=-1)              # (B, heads, N), sums to 1 over tokens
        out = self.out(rearrange(torch.einsum("bhn,bhne->bhe", weights, v), "b h e -> b (h e)"))
        return (out, weights) if return_weights else out


def make_pool(kind: str, dim: int, heads: int = 1) -> nn.Module:
    """Pool for a model head: "cls" (ClsToken), "mean" (MeanPool) or "attn" (AttentionPool).

    Call ``pool.prepend(x)`` before the transformer and ``pool(x)`` after it. Do not read
    ``x[:, 0]`` yourself unless the pool is "cls": without a CLS token, token 0 is just a patch.
    """
    check_choice("kind", kind, POOL_KINDS)
    check_positive_int("dim", dim)
    if kind == "cls":
        return ClsToken(dim=dim)
    if kind == "mean":
        return MeanPool(dim=dim)
    return AttentionPool(dim=dim, heads=heads)
