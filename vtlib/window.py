"""Sliding-window attention with global tokens, after Longformer (Beltagy, Peters & Cohan, 2020, arXiv 2004.05150).

Full self-attention over L tokens costs O(L^2). Longformer keeps two kinds of links instead:

* **window** (local): token i attends to the tokens j with |i - j| <= w, a band of 2w + 1 slots
  around itself. ``w`` is the *one-sided* width; Hugging Face's ``attention_window`` counts the full
  window, so ``attention_window = 2w`` (it must be even). Cost O(L * w).
* **global**: a few chosen tokens (a CLS token, a question) attend to every real token, and every
  token attends to them. The link is symmetric, so one global token connects any two tokens in two
  layers, whatever the window.

Global links use their own projections: a *global query* i scores every real key with
``query_global`` / ``key_global`` and mixes ``value_global``. A *local query* scores its window
and all global tokens with the local ``query`` / ``key`` / ``value`` (a global token inside the
window is counted once, as a global key). Padding (``keep`` False) is never a key, and a padding
query outputs 0. Per query, in one softmax:

    local query i   keys {j : |i - j| <= w, keep[j], not global[j]}  U  {j : global[j]}   (q, k, v)
    global query i  keys {j : keep[j]}                                                      (qg, kg, vg)

Two forms give the same output (tests compare them and Hugging Face's ``LongformerSelfAttention``):

* :func:`window_attention_explicit`: the full (L, L) score matrix with the pattern above as a mask
  (see :func:`window_mask`); O(L^2) memory, for teaching and for attention maps.
* :func:`window_attention`: the efficient form. The queries are cut into blocks of c tokens; block n
  only meets the c + 2w keys around it (a strided view, no copy), so the scores take
  (L / c) * c * (c + 2w) = L (c + 2w) slots, and the G global tokens add L * G more. Time and memory
  grow linearly in L; no (L, L) matrix is ever built. Any L works (no padding to a multiple of the
  window, unlike Hugging Face, which asserts it).

Tensors: q, k, v (B, heads, L, d); masks ``keep`` / ``is_global`` (B, L) bool. The module
:class:`SlidingWindowAttention` maps tokens (B, L, D) to (B, L, D).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vtlib.errors import bad_arg, check_dropout, check_heads, check_rank


# --------------------------------------------------------------------------------------- checks
def _check_w(w) -> None:
    if isinstance(w, bool) or not isinstance(w, int) or w < 0:
        raise bad_arg("w", "a one-sided window width, an int >= 0 (|i - j| <= w)", repr(w),
                      "pass w = attention_window // 2, e.g. w=4 for a full window of 8")


def _check_qkv(q, k, v, name: str = "q, k, v") -> tuple[int, int, int, int]:
    """q, k, v: float tensors of one shape (B, heads, L, d); returns that shape."""
    for n, t in zip(name.split(", "), (q, k, v)):
        check_rank(n, t, 4, "B heads L d")
        if not torch.is_floating_point(t):
            raise bad_arg(n, "a floating-point tensor", f"dtype {t.dtype}", f"use {n}.float()")
    if not q.shape == k.shape == v.shape:
        raise bad_arg(name, "three tensors of one shape (B, heads, L, d)",
                      f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}",
                      "project the same L tokens to q, k and v of the same width (self-attention)")
    if q.shape[2] == 0:
        raise bad_arg(name, "at least one token (L >= 1)", f"shape {tuple(q.shape)}", "pass a non-empty sequence")
    return tuple(q.shape)  # type: ignore[return-value]


def _check_masks(keep, is_global, batch: int, length: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate the (B, L) bool masks; None means all real / no global. Returns both as tensors."""
    out = []
    for name, m, default in (("keep", keep, True), ("is_global", is_global, False)):
        if m is None:
            out.append(torch.full((batch, length), default, dtype=torch.bool, device=device))
            continue
        meaning = "True = real token, False = padding" if name == "keep" else "True = global token"
        if not isinstance(m, torch.Tensor):
            raise bad_arg(name, f"a bool tensor (B, L) ({meaning})", type(m).__name__,
                          "build it with torch ops, e.g. torch.zeros(B, L, dtype=torch.bool)")
        if m.dtype != torch.bool:
            raise bad_arg(name, f"dtype torch.bool ({meaning})", f"dtype {m.dtype}",
                          f"use {name}.bool() (Hugging Face's 0/1/2 attention_mask: keep = mask > 0, "
                          "is_global = mask == 2)")
        if tuple(m.shape) != (batch, length):
            raise bad_arg(name, f"shape (B, L) = ({batch}, {length}), one flag per token", f"shape {tuple(m.shape)}",
                          "pass one row per sample and one column per token (no head or query axis)")
        out.append(m.to(device))
    keep, is_global = out
    empty = ~keep.any(dim=1)
    if empty.any():
        raise bad_arg("keep", "at least one real token per sample",
                      f"all-padding samples {empty.nonzero()[:, 0].tolist()}",
                      "drop empty samples from the batch before attention")
    both = is_global & ~keep
    if both.any():
        raise bad_arg("is_global", "global tokens that are real tokens (keep True)",
                      f"padding marked global at (sample, token) {both.nonzero()[:3].tolist()}",
                      "use is_global & keep, or mark a real token (e.g. the CLS) as global")
    return keep, is_global


def _scale(scale, d: int) -> float:
    return 1.0 / math.sqrt(d) if scale is None else float(scale)


def _global_qkv(global_qkv, q, k, v):
    if global_qkv is None:
        return q, k, v
    if not isinstance(global_qkv, (tuple, list)) or len(global_qkv) != 3:
        raise bad_arg("global_qkv", "a triple (qg, kg, vg) shaped like q", type(global_qkv).__name__,
                      "pass the global projections of the same tokens, or None to reuse q, k, v")
    qg, kg, vg = global_qkv
    if _check_qkv(qg, kg, vg, "qg, kg, vg") != tuple(q.shape):
        raise bad_arg("global_qkv", f"tensors shaped like q {tuple(q.shape)}", f"shape {tuple(qg.shape)}",
                      "project the same tokens with the global layers")
    return qg, kg, vg


def _softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis; a row of -inf (no key) gets zero weights instead of NaN."""
    dead = torch.isneginf(scores).all(dim=-1, keepdim=True)
    return scores.masked_fill(dead, 0.0).softmax(dim=-1).masked_fill(dead, 0.0)


# ------------------------------------------------------------------------------------ masks
def band_mask(n: int, w: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(n, n) bool, True where |i - j| <= w: the sliding window, w tokens on each side of i."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise bad_arg("n", "a positive int (sequence length)", repr(n), "pass n=L >= 1")
    _check_w(w)
    i = torch.arange(n, device=device)
    return (i[:, None] - i[None, :]).abs() <= w


def window_mask(n: int, w: int, keep: torch.Tensor | None = None,
                is_global: torch.Tensor | None = None) -> torch.Tensor:
    """Who attends to whom: (B, n, n) bool (B = 1 without masks), row i = query, column j = key.

    A local row is the band minus padding and global keys, plus every global key; a global row is
    every real token; a padding row is empty. Global rows use the global projections (see the module
    docstring), so this pattern alone is not the whole computation.
    """
    band = band_mask(n, w)
    batch = next((m.shape[0] for m in (keep, is_global) if isinstance(m, torch.Tensor) and m.ndim), 1)
    keep, is_global = _check_masks(keep, is_global, batch, n, band.device)
    local = band & (keep & ~is_global)[:, None, :] | is_global[:, None, :]     # (B, n, n)
    rows = torch.where(is_global[:, :, None], keep[:, None, :], local)
    return rows & keep[:, :, None]


# -------------------------------------------------------------------------------- attention
def window_attention_explicit(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, w: int, *,
    keep: torch.Tensor | None = None,
    is_global: torch.Tensor | None = None,
    global_qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference form: full (L, L) scores, masked to the window + global pattern.

    q, k, v (B, heads, L, d) local projections; ``global_qkv`` = (qg, kg, vg) of the same shape, the
    global projections (None: reuse q, k, v); w one-sided; keep / is_global (B, L) bool.
    Returns ``out`` (B, heads, L, d), zero on padding rows, and the weights (B, heads, L, L)
    actually applied: a global row's weights multiply vg, a local row's multiply v.
    """
    B, H, L, d = _check_qkv(q, k, v)
    _check_w(w)
    check_dropout("dropout_p", dropout_p)
    keep, is_global = _check_masks(keep, is_global, B, L, q.device)
    qg, kg, vg = _global_qkv(global_qkv, q, k, v)
    s = _scale(scale, d)

    allowed = rearrange(window_mask(L, w, keep, is_global).to(q.device), "b i j -> b 1 i j")
    g_row = rearrange(is_global, "b i -> b 1 i 1")
    scores = torch.where(g_row, qg @ kg.transpose(-2, -1), q @ k.transpose(-2, -1)) * s       # (B, H, L, L)
    weights = _softmax(scores.masked_fill(~allowed, float("-inf")))
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    out = torch.where(g_row, weights @ vg, weights @ v)
    return out, weights


def _global_slots(is_global: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) bool -> the positions of each sample's global tokens, first G = max count: idx (B, G)
    int64 and valid (B, G) bool (False where a sample has fewer than G globals; those slots point at
    distinct non-global positions)."""
    count = is_global.sum(dim=1)
    G = int(count.max())
    idx = torch.sort((~is_global).to(torch.uint8), dim=1, stable=True).indices[:, :G]
    valid = torch.arange(G, device=is_global.device) < count[:, None]
    return idx, valid


def _take(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (B, H, L, d), idx (B, G) -> x at those positions (B, H, G, d)."""
    B, H, _, d = x.shape
    return x.gather(2, idx[:, None, :, None].expand(B, H, idx.shape[1], d))


def window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, w: int, *,
    keep: torch.Tensor | None = None,
    is_global: torch.Tensor | None = None,
    global_qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
    block: int | None = None,
) -> torch.Tensor:
    """Efficient form, linear in L: same arguments and output (B, heads, L, d) as the explicit form.

    Queries go in blocks of ``block`` tokens (default w); each block scores the block + w keys on
    either side: (B, H, L/c, c, c + 2w) window scores, plus (B, H, L, G) scores to the G global keys,
    in one softmax. The G global queries then score all L keys with the global projections.
    """
    B, H, L, d = _check_qkv(q, k, v)
    _check_w(w)
    check_dropout("dropout_p", dropout_p)
    keep, is_global = _check_masks(keep, is_global, B, L, q.device)
    qg, kg, vg = _global_qkv(global_qkv, q, k, v)
    s = _scale(scale, d)
    w = min(w, L - 1)                                   # a wider window sees nothing more
    if block is not None and (isinstance(block, bool) or not isinstance(block, int) or block <= 0):
        raise bad_arg("block", "a positive int (queries per block) or None", repr(block), "pass e.g. block=w or None")
    c = min(block or max(w, 1), L)
    n = -(-L // c)                                      # blocks, the last one padded
    extra = n * c - L

    # window: block n of queries meets keys [n*c - w, n*c + c + w): a strided view of the padded keys
    qb = rearrange(F.pad(q, (0, 0, 0, extra)), "b h (n i) d -> b h n i d", i=c)
    kb, vb = (rearrange(F.pad(t, (0, 0, w, w + extra)).unfold(2, c + 2 * w, c), "b h n d j -> b h n j d")
              for t in (k, v))
    key_ok = F.pad(keep & ~is_global, (w, w + extra), value=False).unfold(1, c + 2 * w, c)    # (B, n, c+2w)
    i, j = torch.arange(c, device=q.device), torch.arange(c + 2 * w, device=q.device)
    band = (j[None, :] - i[:, None] >= 0) & (j[None, :] - i[:, None] <= 2 * w)             # |pos_i - pos_j| <= w
    allowed = band & rearrange(key_ok, "b n j -> b 1 n 1 j")                               # (B, 1, n, c, c+2w)
    scores = torch.einsum("bhnid,bhnjd->bhnij", qb, kb).mul(s).masked_fill(~allowed, float("-inf"))

    G = int(is_global.sum(dim=1).max())
    if G:                                               # every local query also sees the G global keys
        idx, valid = _global_slots(is_global)
        kt, vt = _take(k, idx), _take(v, idx)                                                # (B, H, G, d)
        to_glob = torch.einsum("bhnid,bhgd->bhnig", qb, kt).mul(s)
        to_glob = to_glob.masked_fill(~rearrange(valid, "b g -> b 1 1 1 g"), float("-inf"))
        scores = torch.cat([to_glob, scores], dim=-1)
    probs = _softmax(scores)
    if dropout_p > 0.0:
        probs = F.dropout(probs, p=dropout_p, training=True)
    out = torch.einsum("bhnij,bhnjd->bhnid", probs[..., G:], vb)
    if G:
        out = out + torch.einsum("bhnig,bhgd->bhnid", probs[..., :G], vt)
    out = rearrange(out, "b h n i d -> b h (n i) d")[:, :, :L]

    if G:                                               # global queries: all real keys, global projections
        g_scores = torch.einsum("bhgd,bhld->bhgl", _take(qg, idx), kg).mul(s)
        g_probs = _softmax(g_scores.masked_fill(~rearrange(keep, "b l -> b 1 1 l"), float("-inf")))
        if dropout_p > 0.0:
            g_probs = F.dropout(g_probs, p=dropout_p, training=True)
        g_out = torch.where(rearrange(valid, "b g -> b 1 g 1"), g_probs @ vg, _take(out, idx))
        out = out.scatter(2, idx[:, None, :, None].expand(B, H, G, d), g_out)   # unused slots write back
    return out.masked_fill(~rearrange(keep, "b l -> b 1 l 1"), 0.0)


# ----------------------------------------------------------------------------------- module
class SlidingWindowAttention(nn.Module):
    """Longformer self-attention on tokens (B, L, D), any L, with a window and global tokens.

    ``window``: the full window as Hugging Face counts it (``attention_window``), an even int >= 2;
    each token sees ``w = window // 2`` tokens on each side. Local projections ``query``, ``key``,
    ``value`` and global ones ``query_global``, ``key_global``, ``value_global`` (D -> D each; the
    global ones start as copies of the local ones, as in the paper). ``proj`` mixes the heads.

    ``attend(x, keep=None, is_global=None)`` -> (B, L, D) before the output projection (what Hugging
    Face's ``LongformerSelfAttention`` returns); ``forward`` adds ``proj`` and its dropout. ``keep``
    (B, L) bool: True = real token, False = padding (its output row is 0); ``is_global`` (B, L) bool.
    ``explicit=True`` runs the (L, L) reference form; inside ``vtlib.attention.record_attention`` it
    runs too, and the weights (B, heads, L, L) are recorded.
    """

    _recorder: Callable[[torch.Tensor], None] | None = None    # set by record_attention only

    def __init__(self, *, dim: int, heads: int, window: int, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        check_heads(dim, heads)
        if isinstance(window, bool) or not isinstance(window, int) or window < 2 or window % 2:
            raise bad_arg("window", "an even int >= 2, the full window (w = window // 2 tokens on each side)",
                          repr(window), f"pass e.g. window={max(2, window + 1 if isinstance(window, int) else 8)} "
                          "(Hugging Face's attention_window)")
        check_dropout("attn_drop", attn_drop)
        check_dropout("proj_drop", proj_drop)
        self.dim, self.heads, self.head_dim, self.window, self.w = dim, heads, dim // heads, window, window // 2
        self.attn_drop = float(attn_drop)
        self.query, self.key, self.value = (nn.Linear(dim, dim, bias=qkv_bias) for _ in range(3))
        self.query_global, self.key_global, self.value_global = (nn.Linear(dim, dim, bias=qkv_bias) for _ in range(3))
        self.copy_local_to_global()
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    @torch.no_grad()
    def copy_local_to_global(self) -> None:
        """Set the global projections to copies of the local ones (their initialisation)."""
        for local, glob in ((self.query, self.query_global), (self.key, self.key_global),
                            (self.value, self.value_global)):
            glob.load_state_dict(local.state_dict())

    def _heads(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        return rearrange(layer(x), "b l (h d) -> b h l d", h=self.heads)

    def attend(self, x: torch.Tensor, keep: torch.Tensor | None = None, is_global: torch.Tensor | None = None,
               *, explicit: bool = False) -> torch.Tensor:
        """(B, L, D) -> (B, L, D) before ``proj``."""
        check_rank("x", x, 3, "B L D")
        if x.shape[-1] != self.dim:
            raise bad_arg("x", f"last axis D={self.dim} (the attention width)", f"shape {tuple(x.shape)}",
                          "project the tokens to dim first, or build the layer with dim=x.shape[-1]")
        if not torch.is_floating_point(x):
            raise bad_arg("x", "a floating-point tensor", f"dtype {x.dtype}", "use x.float()")
        B, L, _ = x.shape
        keep, is_global = _check_masks(keep, is_global, B, L, x.device)
        q, k, v = (self._heads(p, x) for p in (self.query, self.key, self.value))
        glob = None
        if is_global.any():
            glob = tuple(self._heads(p, x) for p in (self.query_global, self.key_global, self.value_global))
        p = self.attn_drop if self.training else 0.0
        kw = dict(keep=keep, is_global=is_global, global_qkv=glob, dropout_p=p)
        if explicit or self._recorder is not None:
            out, weights = window_attention_explicit(q, k, v, self.w, **kw)
            if self._recorder is not None:
                self._recorder(weights)                                  # (B, h, L, L)
        else:
            out = window_attention(q, k, v, self.w, **kw)
        return rearrange(out, "b h l d -> b l (h d)")

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None, is_global: torch.Tensor | None = None,
                *, explicit: bool = False) -> torch.Tensor:
        """(B, L, D) -> (B, L, D) after ``proj``."""
        return self.proj_drop(self.proj(self.attend(x, keep, is_global, explicit=explicit)))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}, window={self.window} (w={self.w} each side)"
