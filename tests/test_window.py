"""Tests for vtlib.window: sliding-window attention with global tokens (Longformer).

The explicit (L, L) form and the efficient blocked form must agree everywhere; both must match
Hugging Face's ``LongformerSelfAttention`` (random weights, no download) and, for a window wider
than the sequence, plain full attention.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close
from torch.utils._python_dispatch import TorchDispatchMode

from vtlib.attention import MultiHeadAttention, record_attention
from vtlib.errors import VtlibError
from vtlib.window import (
    SlidingWindowAttention,
    band_mask,
    window_attention,
    window_attention_explicit,
    window_mask,
)

CASES = ("none", "globals", "padding", "both")


def masks(case: str, B: int, L: int):
    """keep / is_global (B, L) for one of CASES: padding at the end of sample 1, globals at 0 (+1 more)."""
    keep = torch.ones(B, L, dtype=torch.bool)
    is_global = torch.zeros(B, L, dtype=torch.bool)
    if case in ("padding", "both") and L > 1:
        keep[-1, L - max(1, min(5, L // 3)):] = False
    if case in ("globals", "both"):
        is_global[:, 0] = True
        if L > 3:
            is_global[0, L // 2] = True                          # samples with different global counts
    return (keep if case in ("padding", "both") else None), (is_global if case in ("globals", "both") else None)


def qkv6(B, H, L, d, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, L, d, generator=g, dtype=dtype) for _ in range(6)]


# ------------------------------------------------------------------------------------ masks
def test_band_mask():
    m = band_mask(5, 1)
    assert m.dtype == torch.bool and m.shape == (5, 5)
    assert m.sum(1).tolist() == [2, 3, 3, 3, 2]
    assert torch.equal(band_mask(4, 0), torch.eye(4, dtype=torch.bool))
    assert band_mask(3, 7).all()


def test_window_mask_pattern():
    keep = torch.tensor([[True] * 7 + [False]])
    is_global = torch.zeros(1, 8, dtype=torch.bool)
    is_global[0, 0] = True
    m = window_mask(8, 1, keep, is_global)[0]
    assert m[0].tolist() == keep[0].tolist()                     # the global row sees every real token
    assert m[:7, 0].all()                                        # and every real token sees it
    assert m[4].tolist() == [True, False, False, True, True, True, False, False]
    assert not m[7].any() and not m[:, 7].any()                  # padding: no row, never a key
    assert torch.equal(window_mask(8, 1), band_mask(8, 1)[None])


# --------------------------------------------------------------------- explicit == efficient
@pytest.mark.parametrize("L,w", [(1, 0), (1, 3), (7, 1), (13, 3), (16, 4), (21, 2), (9, 9), (6, 10)])
@pytest.mark.parametrize("case", CASES)
def test_explicit_equals_efficient(L, w, case):
    q, k, v, qg, kg, vg = qkv6(2, 3, L, 5)
    keep, is_global = masks(case, 2, L)
    kw = dict(keep=keep, is_global=is_global, global_qkv=(qg, kg, vg))
    ref, weights = window_attention_explicit(q, k, v, w, **kw)
    for block in (None, 1, 5):
        assert_close(window_attention(q, k, v, w, block=block, **kw), ref, atol=1e-12, rtol=0)
    assert weights.shape == (2, 3, L, L)
    real = torch.ones(2, L, dtype=torch.bool) if keep is None else keep
    assert_close(weights.sum(-1), real[:, None].expand(2, 3, L).double())   # rows sum to 1, padding rows 0
    assert (ref.masked_select(~real[:, None, :, None]) == 0).all()


def test_window_wider_than_the_sequence_is_full_attention():
    q, k, v, *_ = qkv6(2, 2, 11, 4)
    keep, _ = masks("padding", 2, 11)
    full = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
    full = full.masked_fill(~keep[:, None, :, None], 0.0)
    for w in (10, 11, 50):
        assert_close(window_attention(q, k, v, w, keep=keep), full, atol=1e-12, rtol=0)
        assert_close(window_attention_explicit(q, k, v, w, keep=keep)[0], full, atol=1e-12, rtol=0)


def test_module_with_a_wide_window_equals_multi_head_attention():
    """At init the global projections are copies, so with window >= 2L even the globals change nothing."""
    torch.manual_seed(0)
    swa = SlidingWindowAttention(dim=16, heads=4, window=32).double()
    mha = MultiHeadAttention(dim=16, heads=4).double()
    with torch.no_grad():
        mha.qkv.weight.copy_(torch.cat([swa.query.weight, swa.key.weight, swa.value.weight]))
        mha.qkv.bias.copy_(torch.cat([swa.query.bias, swa.key.bias, swa.value.bias]))
        mha.proj.load_state_dict(swa.proj.state_dict())
    x = torch.randn(2, 13, 16, dtype=torch.float64)
    _, is_global = masks("globals", 2, 13)
    assert_close(swa(x), mha(x), atol=1e-12, rtol=0)
    assert_close(swa(x, is_global=is_global), mha(x), atol=1e-12, rtol=0)


# ------------------------------------------------------------------------------ linear cost
class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an op returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def largest_tensor(fn, L: int, w: int) -> int:
    q, k, v = (torch.randn(1, 1, L, 4) for _ in range(3))
    is_global = torch.zeros(1, L, dtype=torch.bool)
    is_global[0, 0] = True
    with LargestTensor() as probe:
        fn(q, k, v, w, is_global=is_global)
    return probe.largest


def test_efficient_form_memory_grows_linearly():
    small, big = (largest_tensor(window_attention, L, 4) for L in (1024, 4096))
    assert small <= 1024 * (3 * 4 + 1 + 4) and big <= 4.2 * small          # O(L (c + 2w)), no (L, L)
    assert largest_tensor(window_attention_explicit, 1024, 4) >= 1024 ** 2  # the reference builds (L, L)


def test_efficient_form_on_a_long_sequence():
    """L = 20000 would need a 400M-entry score matrix; the blocked form only scores L (3w + 1 + G) pairs."""
    L, w = 20_000, 3
    q, k, v = (torch.randn(1, 2, L, 4, dtype=torch.float64) for _ in range(3))
    is_global = torch.zeros(1, L, dtype=torch.bool)
    is_global[0, 0] = True
    out = window_attention(q, k, v, w, is_global=is_global)
    n = 64                                   # rows 1 .. n - w - 1 only see keys < n: check them on a prefix
    ref, _ = window_attention_explicit(q[:, :, :n], k[:, :, :n], v[:, :, :n], w, is_global=is_global[:, :n])
    assert_close(out[:, :, 1:n - w], ref[:, :, 1:n - w], atol=1e-12, rtol=0)
    assert out.shape == (1, 2, L, 4) and torch.isfinite(out).all()


# ---------------------------------------------------------------------------- Hugging Face
NAMES = ("query", "key", "value", "query_global", "key_global", "value_global")


def hf_pair(window: int, dtype=torch.float64, seed: int = 0):
    """Hugging Face's layer (random init, no download) and ours with its six projections copied."""
    pytest.importorskip("transformers")
    from transformers import LongformerConfig
    from transformers.models.longformer.modeling_longformer import LongformerSelfAttention

    torch.manual_seed(seed)
    cfg = LongformerConfig(hidden_size=64, num_attention_heads=4, num_hidden_layers=1, intermediate_size=128,
                           attention_window=[window], attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0)
    hf = LongformerSelfAttention(cfg, layer_id=0).to(dtype).eval()
    ours = SlidingWindowAttention(dim=64, heads=4, window=window).to(dtype).eval()
    with torch.no_grad():
        for name in NAMES:                                   # random, independent global weights
            getattr(ours, name).load_state_dict(getattr(hf, name).state_dict())
    return hf, ours


def hf_attend(hf, h, keep, is_global, window: int):
    """Hugging Face needs L to be a multiple of the window: pad here, with mask -1e4, then cut back."""
    B, L, D = h.shape
    pad = -L % window
    mask = torch.zeros(B, L + pad, dtype=h.dtype)
    mask[:, L:] = -1e4
    mask[:, :L] = torch.where(keep, torch.where(is_global, 1e4, 0.0), -1e4).to(h.dtype)
    h = torch.cat([h, h.new_zeros(B, pad, D)], dim=1)
    out = hf(h, attention_mask=mask, is_index_masked=mask < 0, is_index_global_attn=mask > 0,
             is_global_attn=bool((mask > 0).any()))[0]
    return out[:, :L]


@pytest.fixture
def hf_softmax_in_fp64(monkeypatch):
    """Hugging Face computes its softmax with ``dtype=torch.float32`` even for float64 inputs, which
    rounds the weights to float32 (errors ~1e-7). For a float64 comparison at 1e-10 the softmax is
    left in the input's dtype; nothing else in its code changes."""
    softmax = F.softmax

    def fp64_softmax(input, dim=None, _stacklevel=3, dtype=None):
        if dtype == torch.float32 and input.dtype == torch.float64:
            dtype = None
        return softmax(input, dim=dim, _stacklevel=_stacklevel, dtype=dtype)

    monkeypatch.setattr(torch.nn.functional, "softmax", fp64_softmax)


def hf_case(window: int, L: int, case: str, dtype=torch.float64):
    hf, ours = hf_pair(window, dtype)
    h = torch.randn(2, L, 64, dtype=dtype, generator=torch.Generator().manual_seed(1))
    keep, is_global = masks(case, 2, L)
    keep_t = torch.ones(2, L, dtype=torch.bool) if keep is None else keep
    glob_t = torch.zeros(2, L, dtype=torch.bool) if is_global is None else is_global
    with torch.no_grad():
        theirs = hf_attend(hf, h, keep_t, glob_t, window)
        mine = ours.attend(h, keep, is_global)
        mine_explicit = ours.attend(h, keep, is_global, explicit=True)
    return theirs, mine, mine_explicit, keep_t


@pytest.mark.parametrize("window,L", [(4, 9), (4, 16), (6, 21), (8, 32), (8, 37), (16, 40)])
@pytest.mark.parametrize("case", CASES)
def test_matches_hugging_face_fp64(hf_softmax_in_fp64, window, L, case):
    theirs, mine, mine_explicit, keep = hf_case(window, L, case)
    assert_close(mine[keep], theirs[keep], atol=1e-10, rtol=0)
    assert_close(mine_explicit[keep], theirs[keep], atol=1e-10, rtol=0)
    assert (mine[~keep] == 0).all() and (theirs[~keep] == 0).all()


@pytest.mark.parametrize("case", CASES)
def test_matches_hugging_face_as_is(case):
    """Without the fp64 softmax: Hugging Face's float32 softmax limits the agreement to ~1e-7."""
    theirs, mine, _, keep = hf_case(8, 37, case)
    assert_close(mine[keep], theirs[keep], atol=1e-6, rtol=0)
    theirs, mine, _, keep = hf_case(8, 37, case, dtype=torch.float32)
    assert_close(mine[keep], theirs[keep], atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------------- module
def test_module_shapes_init_and_gradients():
    torch.manual_seed(0)
    m = SlidingWindowAttention(dim=32, heads=4, window=4)
    for local, glob in (("query", "query_global"), ("key", "key_global"), ("value", "value_global")):
        assert torch.equal(getattr(m, local).weight, getattr(m, glob).weight)
        assert getattr(m, local).weight is not getattr(m, glob).weight       # copies, trained separately
    x = torch.randn(3, 10, 32, requires_grad=True)
    keep, is_global = masks("both", 3, 10)
    with record_attention(m) as maps:
        out = m(x, keep, is_global)
    weights = maps[0]
    assert out.shape == (3, 10, 32) and weights.shape == (3, 4, 10, 10) and len(maps) == 1
    rows = weights.sum(-1)[keep[:, None, :].expand(3, 4, 10)]
    assert_close(rows, torch.ones_like(rows), atol=1e-6, rtol=0)      # real rows sum to 1 over the keys
    assert_close(weights, window_attention_explicit(*(m._heads(p, x) for p in (m.query, m.key, m.value)), m.w,
                 keep=keep, is_global=is_global,
                 global_qkv=tuple(m._heads(p, x) for p in (m.query_global, m.key_global, m.value_global)))[1])
    assert_close(out, m(x, keep, is_global), atol=1e-6, rtol=0)
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and m.query_global.weight.grad is not None
    assert m(x).shape == (3, 10, 32)
    m.train()
    SlidingWindowAttention(dim=32, heads=4, window=4, attn_drop=0.5).train()(x, keep, is_global)


def test_dropout_only_in_training():
    m = SlidingWindowAttention(dim=16, heads=2, window=4, attn_drop=0.5, proj_drop=0.5).eval()
    x = torch.randn(2, 9, 16)
    assert torch.equal(m(x), m(x))
    m.train()
    assert not torch.equal(m(x), m(x))


# ----------------------------------------------------------------------------------- errors
def test_constructor_errors():
    with pytest.raises(TypeError):
        SlidingWindowAttention(16, 2, 4)                                        # keyword-only
    for window in (0, 3, -2, 2.0, True):
        with pytest.raises(VtlibError, match="window"):
            SlidingWindowAttention(dim=16, heads=2, window=window)
    with pytest.raises(VtlibError, match="heads"):
        SlidingWindowAttention(dim=16, heads=3, window=4)


def test_forward_errors():
    m = SlidingWindowAttention(dim=16, heads=2, window=4)
    x = torch.randn(2, 6, 16)
    bad = [
        (dict(x=torch.randn(6, 16)), "x: expected a 3-D"),
        (dict(x=torch.randn(2, 6, 8)), "D=16"),
        (dict(x=torch.ones(2, 6, 16, dtype=torch.long)), "floating-point"),
        (dict(x=x, keep=torch.ones(2, 6)), "keep: expected dtype torch.bool"),
        (dict(x=x, keep=torch.ones(2, 5, dtype=torch.bool)), r"keep: expected shape \(B, L\)"),
        (dict(x=x, is_global=torch.ones(2, 1, 6, dtype=torch.bool)), "is_global"),
        (dict(x=x, keep=torch.tensor([[True] * 6, [False] * 6])), "all-padding samples"),
        (dict(x=x, keep=torch.tensor([[True] * 5 + [False]] * 2), is_global=torch.tensor([[False] * 5 + [True]] * 2)),
         "padding marked global"),
    ]
    for kwargs, message in bad:
        with pytest.raises(VtlibError, match=message):
            m(**kwargs)


def test_functional_errors():
    q, k, v, *_ = qkv6(1, 2, 5, 4)
    with pytest.raises(VtlibError, match="w: expected"):
        window_attention(q, k, v, -1)
    with pytest.raises(VtlibError, match="one shape"):
        window_attention(q, k[:, :, :4], v, 2)
    with pytest.raises(VtlibError, match="4-D"):
        window_attention_explicit(q[0], k[0], v[0], 2)
    with pytest.raises(VtlibError, match="global_qkv"):
        window_attention(q, k, v, 2, global_qkv=(q, k))
    with pytest.raises(VtlibError, match="block"):
        window_attention(q, k, v, 2, block=0)
    with pytest.raises(VtlibError, match="n: expected"):
        band_mask(0, 1)


def test_scale_is_one_over_sqrt_d_by_default():
    q, k, v, *_ = qkv6(1, 1, 6, 9)
    assert_close(window_attention(q, k, v, 2), window_attention(q, k, v, 2, scale=1 / math.sqrt(9)))
