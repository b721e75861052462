"""The pre-norm transformer block and a stack of them, with stochastic depth.

    x = x + drop_path(attn(norm1(x), mask))
    x = x + drop_path(mlp(norm2(x)))

Tokens are (B, N, D) throughout. Stochastic depth (DropPath) drops a block's whole residual
branch for some samples during training; in a stack its rate grows linearly with depth, from 0
at the first block to ``drop_path_rate`` at the last (the rule of ViViT, DeiT and timm).
Hugging Face's TimeSformer once gave every block the global rate instead (fixed by
transformers PR #27875); :func:`drop_path_rates` is tested to be linear.

:class:`EncoderSize` is the one description of an encoder's size (width, depth, heads, MLP ratio,
qkv bias, stochastic depth, LayerNorm eps), checked once on creation; ``size.transformer()``
builds the stack. Attention maps of any of these modules: ``vtlib.attention.record_attention``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vtlib.attention import MultiHeadAttention, check_tokens
from vtlib.errors import bad_arg, check_dropout, check_heads, check_positive_int


def mlp_hidden_dim(dim: int, mlp_ratio: float) -> int:
    """Hidden width of a block's MLP: int(dim * mlp_ratio) (used by Block and vtlib.cost)."""
    check_positive_int("dim", dim)
    if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or mlp_ratio <= 0:
        raise bad_arg("mlp_ratio", "a positive number (hidden width = dim * mlp_ratio)",
                      repr(mlp_ratio), "pass e.g. mlp_ratio=4.0")
    hidden = int(dim * mlp_ratio)
    if hidden < 1:
        raise bad_arg("mlp_ratio", f"dim * mlp_ratio >= 1 (dim={dim})", repr(mlp_ratio),
                      "use a larger mlp_ratio")
    return hidden


def drop_path_rates(depth: int, drop_path_rate: float) -> list[float]:
    """Per-block stochastic-depth rates: linear from 0 (first block) to drop_path_rate (last)."""
    check_positive_int("depth", depth)
    check_dropout("drop_path_rate", drop_path_rate)
    return torch.linspace(0.0, drop_path_rate, depth).tolist()


class MLP(nn.Module):
    """Linear(dim, hidden) -> GELU -> Dropout -> Linear(hidden, dim) -> Dropout on (..., dim)."""

    def __init__(self, *, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        check_positive_int("dim", dim)
        check_positive_int("hidden_dim", hidden_dim)
        check_dropout("drop", drop)
        self.dim = dim
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[-1] != self.dim:
            got = f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise bad_arg("x", f"a tensor whose last axis is dim={self.dim}", got,
                          "pass tokens shaped (B, N, dim)")
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth: in training, zero the whole input of a random fraction ``p`` of the
    samples (axis 0) and scale the kept ones by 1 / (1 - p), so the expected value is unchanged.
    Identity in eval mode or when p == 0. Used on a residual branch: ``x + drop_path(f(x))``.
    ``DropPath(p)`` takes its one argument by position, like ``nn.Dropout(p)``.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        check_dropout("p", p)
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)                # one draw per sample
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Block(nn.Module):
    """Pre-norm transformer block on (B, N, D); see the module docstring.

    forward(x, mask=None) -> (B, N, D). ``mask`` as in MultiHeadAttention.
    """

    def __init__(self, *, dim: int, heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0,
                 eps: float = 1e-6) -> None:
        super().__init__()
        check_positive_int("dim", dim)
        check_positive_int("heads", heads)
        check_dropout("drop_path", drop_path)
        self.dim = dim
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = MultiHeadAttention(dim=dim, heads=heads, qkv_bias=qkv_bias,
                                       attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim=dim, hidden_dim=mlp_hidden_dim(dim, mlp_ratio), drop=drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_tokens(x, self.dim, "block")
        x = x + self.drop_path(self.attn(self.norm1(x), mask=mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class Transformer(nn.Module):
    """``depth`` pre-norm Blocks on (B, N, D), stochastic depth rising linearly over depth.

    No final LayerNorm: each model adds its own. forward(x, mask=None) -> (B, N, D).
    """

    def __init__(self, *, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop_path_rate: float = 0.0, eps: float = 1e-6,
                 drop: float = 0.0, attn_drop: float = 0.0) -> None:
        super().__init__()
        self.drop_path_rates = drop_path_rates(depth, drop_path_rate)
        self.blocks = nn.ModuleList(
            Block(dim=dim, heads=heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop=drop,
                  attn_drop=attn_drop, drop_path=rate, eps=eps)
            for rate in self.drop_path_rates
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:                                  # loop over layers, not tokens
            x = block(x, mask=mask)
        return x


@dataclass(frozen=True)
class EncoderSize:
    """The size of a transformer encoder, checked once on creation (heads must divide dim, ...).

    ``drop_path`` is the stochastic-depth rate of the last block (linear from 0, see
    :func:`drop_path_rates`). Models keep theirs as ``model.encoder_size``; ``dataclasses.replace(size,
    depth=2)`` gives a variant (ViViT Model 2 builds its spatial and temporal stacks that way).
    """

    dim: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_path: float = 0.0
    eps: float = 1e-6

    def __post_init__(self) -> None:
        check_heads(self.dim, self.heads)
        check_positive_int("depth", self.depth)
        mlp_hidden_dim(self.dim, self.mlp_ratio)
        check_dropout("drop_path", self.drop_path)
        if not isinstance(self.qkv_bias, bool):
            raise bad_arg("qkv_bias", "True or False", repr(self.qkv_bias), "pass qkv_bias=True")
        if isinstance(self.eps, bool) or not isinstance(self.eps, (int, float)) or not self.eps > 0:
            raise bad_arg("eps", "a positive LayerNorm epsilon", repr(self.eps), "pass e.g. eps=1e-6")

    def transformer(self) -> Transformer:
        """The ``Transformer`` stack of this size."""
        return Transformer(dim=self.dim, depth=self.depth, heads=self.heads, mlp_ratio=self.mlp_ratio,
                           qkv_bias=self.qkv_bias, drop_path_rate=self.drop_path, eps=self.eps)
