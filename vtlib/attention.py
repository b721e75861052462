"""Scaled dot-product attention written out, and multi-head self-attention on (B, N, D) tokens.

    attention(Q, K, V) = softmax(Q K^T / sqrt(d) + mask) V

Masks follow ``torch.nn.functional.scaled_dot_product_attention`` (SDPA):

* a **bool** mask, broadcastable to (..., Nq, Nk): ``True`` = this query *may attend* to this key;
* a **float** mask of the same shapes: added to the scores (0 = keep, ``-inf`` = block).

Note that ``torch.nn.MultiheadAttention`` uses the *opposite* convention for its bool masks
(``attn_mask`` / ``key_padding_mask``: ``True`` = *blocked*), so ``ours(mask=m)`` matches
``theirs(attn_mask=~m)``.

Fully masked rows (a query that may attend to no key): the softmax of a row of ``-inf`` is 0/0.
Like SDPA in torch >= 2.5 (math and CPU kernels), :func:`attention_explicit` returns **zero
weights and a zero output** for such a row instead of NaN, and its gradient stays finite.
A zero row is easy to miss, so check your masks with :func:`fully_masked_rows` when in doubt.

The library's fast path calls SDPA (fused kernels, no (N, N) matrix kept in memory); the explicit
version is for teaching and for attention maps. The tests show both agree.

Attention maps of a whole model, without changing its ``forward``: every :class:`MultiHeadAttention`
inside ``model`` runs the explicit version and keeps its softmax weights while a
:func:`record_attention` block is open (outside one, nothing changes: same numbers, same speed)::

    with torch.no_grad(), record_attention(model) as maps:
        logits = model(x)
    maps[-1]            # last attention called: (B', heads, Nq, Nk), each row sums to 1 over the keys
    maps.names[-1]      # its module name, e.g. "encoder.blocks.3.attn"
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vtlib.errors import bad_arg, check_dropout, check_heads, check_positive_int, check_rank


# --------------------------------------------------------------------------------------- checks
def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[int, ...]:
    """Validate q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv); return the score shape."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise bad_arg(name, "a torch.Tensor shaped (..., N, d)", type(t).__name__,
                          "convert with torch.as_tensor(...)")
        if t.ndim < 2:
            raise bad_arg(name, "a tensor with at least 2 axes (..., N, d)",
                          f"shape {tuple(t.shape)}",
                          f"add a token axis, e.g. {name}.unsqueeze(0)")
        if not torch.is_floating_point(t):
            raise bad_arg(name, "a floating-point tensor", f"dtype {t.dtype}",
                          f"use {name}.float()")
    if q.shape[-1] != k.shape[-1]:
        raise bad_arg("k", f"the same feature size d as q ({q.shape[-1]}) in its last axis",
                      f"shape {tuple(k.shape)}", "project q and k to the same width")
    if k.shape[-2] != v.shape[-2]:
        raise bad_arg("v", f"as many tokens as k (Nk={k.shape[-2]}) in axis -2",
                      f"shape {tuple(v.shape)}", "keys and values must come from the same tokens")
    try:
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise bad_arg("q, k, v", "leading (batch/head) axes that broadcast together",
                      f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}",
                      "give q, k and v the same leading axes") from None
    return (*batch, q.shape[-2], k.shape[-2])


def _check_mask(mask: torch.Tensor, target: tuple[int, ...], name: str = "mask") -> None:
    """The mask must be a bool or float tensor broadcastable to ``target`` (..., Nq, Nk)."""
    if not isinstance(mask, torch.Tensor):
        raise bad_arg(name, "a bool or float torch.Tensor", type(mask).__name__,
                      "build the mask with torch ops, e.g. torch.ones(N, N, dtype=torch.bool)")
    if mask.dtype != torch.bool and not torch.is_floating_point(mask):
        raise bad_arg(name, "dtype torch.bool (True = may attend) or a float additive mask",
                      f"dtype {mask.dtype}", f"use {name}.bool() for a 0/1 keep-mask")
    try:
        ok = torch.broadcast_shapes(mask.shape, target) == torch.Size(target)
    except RuntimeError:
        ok = False
    if not ok:
        raise bad_arg(name, f"a shape broadcastable to the scores {tuple(target)} (..., Nq, Nk)",
                      f"shape {tuple(mask.shape)}",
                      "use (Nq, Nk) for one mask for all, or (B, 1, 1, Nk) for per-sample key "
                      "padding (see vtlib.attention.key_mask)")


# ------------------------------------------------------------------------------------ masks
def causal_mask(n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(n, n) bool mask, True where key j <= query i: each token sees itself and the past."""
    check_positive_int("n", n)
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def key_mask(keep: torch.Tensor) -> torch.Tensor:
    """Per-sample key padding: keep (B, Nk) bool, True = real token -> (B, 1, 1, Nk) mask.

    The result broadcasts over heads and queries, so padded tokens are never attended to.
    (``torch.nn.MultiheadAttention``'s ``key_padding_mask`` is the inverse: ``~keep``.)
    """
    check_rank("keep", keep, 2, "B Nk")
    if keep.dtype != torch.bool:
        raise bad_arg("keep", "a bool tensor (True = real token)", f"dtype {keep.dtype}",
                      "use keep.bool()")
    return rearrange(keep, "b n -> b 1 1 n")


def fully_masked_rows(mask: torch.Tensor) -> torch.Tensor:
    """Bool tensor (..., Nq): True for queries that may attend to no key (their output is 0)."""
    if mask.dtype == torch.bool:
        return ~mask.any(dim=-1)
    return torch.isneginf(mask).all(dim=-1)


# -------------------------------------------------------------------------------- attention
def attention_explicit(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d) + mask) v, with every step visible.

    q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv); mask broadcastable to (..., Nq, Nk),
    bool (True = may attend) or float (added to the scores).
    Returns ``out`` (..., Nq, dv) and ``weights`` (..., Nq, Nk), the weights actually applied
    (after dropout, if any), so ``out == weights @ v`` always holds.
    Fully masked rows give zero weights and a zero output, as SDPA does (no NaN).
    ``dropout_p`` is applied unconditionally, like SDPA; pass 0.0 at evaluation.
    """
    score_shape = _check_qkv(q, k, v)
    check_dropout("dropout_p", dropout_p)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale

    scores = (q @ k.transpose(-2, -1)) * scale                    # (..., Nq, Nk)
    if mask is not None:
        _check_mask(mask, score_shape)
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
        # A row of -inf would give softmax 0/0 = NaN: make it finite, then zero its weights.
        dead = torch.isneginf(scores).all(dim=-1, keepdim=True)   # (..., Nq, 1)
        weights = scores.masked_fill(dead, 0.0).softmax(dim=-1).masked_fill(dead, 0.0)
    else:
        weights = scores.softmax(dim=-1)                          # each row sums to 1
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    return weights @ v, weights                                   # (..., Nq, dv), (..., Nq, Nk)


def check_tokens(x: torch.Tensor, dim: int, owner: str) -> None:
    """Tokens (B, N, D) of width ``dim`` for ``owner`` (a module name in the message), or a clear error."""
    check_rank("x", x, 3, "B N D")
    if x.shape[-1] != dim:
        raise bad_arg("x", f"last axis D={dim} (the {owner} width)", f"shape {tuple(x.shape)}",
                      f"project the tokens to dim first, or build the {owner} with dim=x.shape[-1]")


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention on tokens (B, N, D).

    ``qkv`` projects D -> 3D, packed as [q; k; v] along the output axis (the same layout as
    ``torch.nn.MultiheadAttention.in_proj_weight``); each of q, k, v is split into ``heads``
    heads of size D / heads. ``proj`` mixes the concatenated heads back to D.

    forward(x (B, N, D), mask=None) -> (B, N, D).
    ``mask``: bool (True = may attend) or float additive, shaped (N, N), (B, N, N) or
    (B, 1 or heads, N, N); see :func:`key_mask` for padding. The fast path uses SDPA; inside a
    :func:`record_attention` block the explicit version runs and the weights (B, heads, N, N) are kept.
    Training on a CPU, sequences of at most ``SHORT_SEQUENCE`` tokens (TimeSformer's frames and
    time lines) use the explicit version too: the same FLOPs as SDPA's matrix products, and faster
    there, because the CPU's fused kernel splits its backward poorly across threads on short
    sequences (notebook 07 measures it).
    """

    _recorder: Callable[[torch.Tensor], None] | None = None    # set by record_attention only
    SHORT_SEQUENCE = 64

    def __init__(self, *, dim: int, heads: int, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        check_heads(dim, heads)
        check_dropout("attn_drop", attn_drop)
        check_dropout("proj_drop", proj_drop)
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.attn_drop = float(attn_drop)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_tokens(x, self.dim, "attention")
        B, N, _ = x.shape
        if mask is not None:
            if isinstance(mask, torch.Tensor) and mask.ndim == 3:
                mask = rearrange(mask, "b i j -> b 1 i j")          # same mask for every head
            if isinstance(mask, torch.Tensor) and mask.ndim not in (2, 4):
                raise bad_arg("mask", "a mask shaped (N, N), (B, N, N) or (B, 1|heads, N, N)",
                              f"shape {tuple(mask.shape)}", "for key padding use key_mask(keep)")
            _check_mask(mask, (B, self.heads, N, N))
            if mask.dtype != torch.bool:
                mask = mask.to(x.dtype)                              # SDPA wants q's dtype

        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d",
                            three=3, h=self.heads)                  # each (B, h, N, d)
        p = self.attn_drop if self.training else 0.0
        short = N <= self.SHORT_SEQUENCE and x.device.type == "cpu" and torch.is_grad_enabled()
        if self._recorder is None and not short:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        else:
            out, weights = attention_explicit(q, k, v, mask=mask, dropout_p=p)
            if self._recorder is not None:
                self._recorder(weights)                             # (B, h, N, N)
        return self.proj_drop(self.proj(rearrange(out, "b h n d -> b n (h d)")))

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """A new MultiHeadAttention with the weights of ``mha`` (see :func:`load_torch_mha`)."""
        if not isinstance(mha, nn.MultiheadAttention):
            raise bad_arg("mha", "a torch.nn.MultiheadAttention", type(mha).__name__,
                          "pass an nn.MultiheadAttention instance")
        ours = cls(dim=mha.embed_dim, heads=mha.num_heads, qkv_bias=mha.in_proj_bias is not None,
                   attn_drop=mha.dropout)
        ours = ours.to(device=mha.out_proj.weight.device, dtype=mha.out_proj.weight.dtype)
        return load_torch_mha(ours, mha)


# ------------------------------------------------------------------------- attention maps
class AttentionMaps(list):
    """What :func:`record_attention` yields: the softmax weights of every MultiHeadAttention call,
    in forward order, each (B', heads, Nq, Nk) with rows summing to 1 over the keys (0 for a fully
    masked row; after attention dropout, if the module is in training mode).

    B' is the batch the attention saw: B for joint attention, B * groups where a model attends
    inside groups of tokens (e.g. B * nt frames in ViViT Model 2/3's spatial attention; see each
    model's docstring). ``names[i]`` is the module name of ``self[i]`` as in ``model.named_modules()``
    ("" for ``model`` itself); ``by_name()`` gives them as a dict. A module called twice while
    recording (e.g. two forward passes) appears twice; ``by_name()`` keeps its last map.
    """

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def by_name(self) -> dict[str, torch.Tensor]:
        """{module name: its map}, in forward order."""
        return dict(zip(self.names, self))

    def _record_as(self, name: str) -> Callable[[torch.Tensor], None]:
        """The callback a module named ``name`` calls with its weights."""
        def record(weights: torch.Tensor) -> None:
            self.append(weights)
            self.names.append(name)
        return record


def _records(module: nn.Module) -> bool:
    """Attention layers opt in by a class attribute ``_recorder = None`` that they call with their
    weights when set: MultiHeadAttention here, SlidingWindowAttention in vtlib.window."""
    return "_recorder" in {k for c in type(module).__mro__ for k in vars(c)}


@contextlib.contextmanager
def record_attention(model: nn.Module) -> Iterator[AttentionMaps]:
    """Record the attention maps of every attention layer (:class:`MultiHeadAttention`, and
    ``vtlib.window.SlidingWindowAttention``) inside ``model`` (or ``model`` itself) while the ``with``
    block is open; yields the :class:`AttentionMaps` list they fill::

        with torch.no_grad(), record_attention(model) as maps:
            model(x)
        maps[0].shape      # first block of a ViViT: (B, heads, N, N)

    While recording, attention computes the explicit softmax (SDPA cannot return its weights), so
    outputs agree with the fast path up to float rounding and cost the (B, heads, N, N) memory.
    The maps are the tensors the forward used: without ``torch.no_grad()`` they keep the graph.
    On leaving the block every module is back on the fast path, even after an error.
    """
    if not isinstance(model, nn.Module):
        raise bad_arg("model", "a torch.nn.Module", type(model).__name__,
                      "pass the model (or one of its submodules), e.g. record_attention(model)")
    targets = [(name, m) for name, m in model.named_modules() if _records(m)]
    if not targets:
        raise bad_arg("model", "a module holding at least one vtlib attention layer",
                      type(model).__name__, "record a vtlib model (torch.nn.MultiheadAttention is not recorded)")
    busy = [name or type(m).__name__ for name, m in targets if m._recorder is not None]
    if busy:
        raise bad_arg("model", "attention modules that are not being recorded already",
                      f"{busy[0]} inside another record_attention block", "leave the other block first")
    maps = AttentionMaps()
    try:
        for name, m in targets:
            m._recorder = maps._record_as(name)
        yield maps
    finally:
        for _, m in targets:
            m.__dict__.pop("_recorder", None)                     # back to the class default: None


def load_torch_mha(ours: MultiHeadAttention, mha: nn.MultiheadAttention) -> MultiHeadAttention:
    """Copy the weights of ``torch.nn.MultiheadAttention`` into ``ours`` (in place; returns it).

    ``in_proj_weight`` (3D, D) is already packed [q; k; v] like ``ours.qkv.weight``, and
    ``out_proj`` maps to ``ours.proj``. The weights do not depend on ``batch_first``, but
    ``ours`` is batch-first, so compare against ``nn.MultiheadAttention(..., batch_first=True)``.
    A missing output bias (``bias=False``) is copied as zeros. Remember the mask conventions
    differ: ``mha(x, x, x, attn_mask=~m)`` matches ``ours(x, mask=m)``.
    """
    if not isinstance(ours, MultiHeadAttention):
        raise bad_arg("ours", "a vtlib MultiHeadAttention", type(ours).__name__,
                      "build one with MultiHeadAttention(dim=..., heads=...)")
    if not isinstance(mha, nn.MultiheadAttention):
        raise bad_arg("mha", "a torch.nn.MultiheadAttention", type(mha).__name__,
                      "pass an nn.MultiheadAttention instance")
    if (mha.embed_dim, mha.num_heads) != (ours.dim, ours.heads):
        raise bad_arg("mha", f"embed_dim={ours.dim}, num_heads={ours.heads} like ours",
                      f"embed_dim={mha.embed_dim}, num_heads={mha.num_heads}",
                      "use MultiHeadAttention.from_torch(mha) to build a matching module")
    if not mha._qkv_same_embed_dim or mha.bias_k is not None:
        raise bad_arg("mha", "self-attention weights (kdim = vdim = embed_dim, add_bias_kv=False)",
                      "separate k/v projections or extra k/v biases",
                      "only plain self-attention modules can be ported")
    if (mha.in_proj_bias is None) != (ours.qkv.bias is None):
        raise bad_arg("ours", f"qkv_bias={mha.in_proj_bias is not None} to match mha",
                      f"qkv_bias={ours.qkv.bias is not None}",
                      "use MultiHeadAttention.from_torch(mha) to build a matching module")
    with torch.no_grad():
        ours.qkv.weight.copy_(mha.in_proj_weight)
        if mha.in_proj_bias is not None:
            ours.qkv.bias.copy_(mha.in_proj_bias)
        ours.proj.weight.copy_(mha.out_proj.weight)
        if mha.out_proj.bias is not None:
            ours.proj.bias.copy_(mha.out_proj.bias)
        else:
            ours.proj.bias.zero_()
    return ours
