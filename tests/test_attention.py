"""Tests for vtlib.attention (notebook 04's exercise checks are tested in test_exercises_nb04.py)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from vtlib import attention as attention_module
from vtlib.attention import (
    AttentionMaps,
    MultiHeadAttention,
    attention_explicit,
    causal_mask,
    fully_masked_rows,
    key_mask,
    load_torch_mha,
    record_attention,
)
from vtlib.errors import VtlibError

SHAPES = [  # (batch axes, Nq, Nk, d, dv)
    ((), 4, 4, 8, 8),
    ((2,), 5, 7, 8, 6),
    ((2, 3), 6, 6, 16, 16),
    ((1, 2), 1, 9, 4, 5),
]


def qkv(batch, nq, nk, d, dv, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*batch, nq, d, generator=g), torch.randn(*batch, nk, d, generator=g),
            torch.randn(*batch, nk, dv, generator=g))


def random_bool_mask(shape, seed=1):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(*shape, generator=g) > 0.4
    m[..., 0] = True                                             # no fully masked row here
    return m


# -------------------------------------------------------------------- attention_explicit
@pytest.mark.parametrize("batch,nq,nk,d,dv", SHAPES)
def test_explicit_matches_sdpa_no_mask(batch, nq, nk, d, dv):
    q, k, v = qkv(batch, nq, nk, d, dv)
    out, w = attention_explicit(q, k, v)
    assert out.shape == (*batch, nq, dv) and w.shape == (*batch, nq, nk)
    assert_close(out, F.scaled_dot_product_attention(q, k, v))
    assert_close(w.sum(-1), torch.ones(*batch, nq))
    assert_close(out, w @ v)


@pytest.mark.parametrize("batch,nq,nk,d,dv", SHAPES)
@pytest.mark.parametrize("mask_kind", ["full", "row_broadcast", "key_only"])
def test_explicit_matches_sdpa_bool_mask(batch, nq, nk, d, dv, mask_kind):
    q, k, v = qkv(batch, nq, nk, d, dv)
    shape = {"full": (*batch, nq, nk), "row_broadcast": (nq, nk), "key_only": (1, nk)}[mask_kind]
    m = random_bool_mask(shape)
    out, w = attention_explicit(q, k, v, mask=m)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=m))
    assert torch.all(w[~m.expand_as(w)] == 0)                   # blocked keys get no weight


def test_explicit_float_mask_matches_sdpa_and_bool():
    q, k, v = qkv((2, 2), 5, 5, 8, 8)
    m = random_bool_mask((5, 5))
    additive = torch.zeros(5, 5).masked_fill(~m, float("-inf"))
    out_f, _ = attention_explicit(q, k, v, mask=additive)
    assert_close(out_f, F.scaled_dot_product_attention(q, k, v, attn_mask=additive))
    assert_close(out_f, attention_explicit(q, k, v, mask=m)[0])
    bias = torch.randn(5, 5)                                     # a soft bias, not a mask
    assert_close(attention_explicit(q, k, v, mask=bias)[0],
                 F.scaled_dot_product_attention(q, k, v, attn_mask=bias))


def test_explicit_causal_matches_sdpa_is_causal():
    q, k, v = qkv((2,), 6, 6, 8, 8)
    out, w = attention_explicit(q, k, v, mask=causal_mask(6))
    assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert torch.all(w.triu(1) == 0)


def test_explicit_scale_argument():
    q, k, v = qkv((2,), 4, 4, 8, 8)
    assert_close(attention_explicit(q, k, v, scale=0.3)[0],
                 F.scaled_dot_product_attention(q, k, v, scale=0.3))
    manual = (q @ k.transpose(-2, -1) / math.sqrt(8)).softmax(-1) @ v
    assert_close(attention_explicit(q, k, v)[0], manual)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_row_gives_zeros_like_sdpa_not_nan(kind):
    q, k, v = qkv((2, 2), 4, 4, 8, 8)
    q.requires_grad_(True)
    m = torch.ones(4, 4, dtype=torch.bool)
    m[1] = False                                                 # query 1 may attend to nothing
    mask = m if kind == "bool" else torch.zeros(4, 4).masked_fill(~m, float("-inf"))
    assert fully_masked_rows(mask).tolist() == [False, True, False, False]
    out, w = attention_explicit(q, k, v, mask=mask)
    assert not torch.isnan(out).any() and not torch.isnan(w).any()
    assert torch.all(out[..., 1, :] == 0) and torch.all(w[..., 1, :] == 0)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    out.sum().backward()
    assert torch.isfinite(q.grad).all()


def test_explicit_dropout_zeroes_weights_and_keeps_out_consistent():
    q, k, v = qkv((2, 2), 8, 8, 4, 4)
    torch.manual_seed(0)
    out, w = attention_explicit(q, k, v, dropout_p=0.5)
    assert (w == 0).any()
    assert_close(out, w @ v)


def test_explicit_errors():
    q, k, v = qkv((2,), 4, 5, 8, 6)
    with pytest.raises(VtlibError, match="^k: expected the same feature size"):
        attention_explicit(q, k[..., :4], v)
    with pytest.raises(VtlibError, match="^v: expected as many tokens as k"):
        attention_explicit(q, k, v[..., :3, :])
    with pytest.raises(VtlibError, match="^q: expected a tensor with at least 2 axes"):
        attention_explicit(torch.randn(8), k, v)
    with pytest.raises(VtlibError, match="^q: expected a floating-point tensor"):
        attention_explicit(q.long(), k, v)
    with pytest.raises(VtlibError, match="^mask: expected a shape broadcastable"):
        attention_explicit(q, k, v, mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(VtlibError,
                       match=r"^mask: expected dtype torch.bool.*Fix: use mask.bool\(\)"):
        attention_explicit(q, k, v, mask=torch.ones(4, 5, dtype=torch.long))
    with pytest.raises(VtlibError, match="^dropout_p: expected a probability"):
        attention_explicit(q, k, v, dropout_p=1.5)


def test_mask_helpers():
    assert causal_mask(3).tolist() == [[True, False, False],
                                       [True, True, False],
                                       [True, True, True]]
    keep = torch.tensor([[True, True, False], [True, False, False]])
    assert key_mask(keep).shape == (2, 1, 1, 3)
    with pytest.raises(VtlibError, match="^keep: expected a bool tensor"):
        key_mask(keep.long())
    with pytest.raises(VtlibError, match="^n: expected a positive int"):
        causal_mask(0)


# -------------------------------------------------------------------- MultiHeadAttention
def torch_pair(dim=16, heads=4, bias=True, seed=0):
    torch.manual_seed(seed)
    mha = nn.MultiheadAttention(dim, heads, batch_first=True, bias=bias)
    return MultiHeadAttention.from_torch(mha), mha


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dim,heads,n", [(16, 4, 7), (12, 3, 5), (8, 1, 4)])
def test_mha_matches_torch_multihead_attention(dim, heads, n, bias):
    ours, mha = torch_pair(dim, heads, bias)
    x = torch.randn(3, n, dim)
    ref, ref_w = mha(x, x, x, need_weights=True, average_attn_weights=False)
    with record_attention(ours) as maps:
        out = ours(x)
    assert len(maps) == 1 and maps.names == [""]
    assert_close(ours(x), ref)
    assert_close(out, ref)
    assert_close(maps[0], ref_w)


def test_mha_matches_torch_with_attn_mask_and_key_padding():
    ours, mha = torch_pair(16, 4)
    x = torch.randn(2, 6, 16)
    m = random_bool_mask((6, 6))
    # torch's bool masks say True = blocked, ours say True = may attend
    assert_close(ours(x, mask=m), mha(x, x, x, attn_mask=~m, need_weights=False)[0])
    keep = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    ref = mha(x, x, x, key_padding_mask=~keep, need_weights=False)[0]
    assert_close(ours(x, mask=key_mask(keep)), ref)
    with record_attention(ours) as maps:
        assert_close(ours(x, mask=key_mask(keep)), ref)
    assert torch.all(maps[0][1, :, :, 4:] == 0)                  # padded keys get no weight
    # per-sample (B, N, N) masks are broadcast over heads
    both = m & keep[:, None, :]
    ref = mha(x, x, x, attn_mask=~both.repeat_interleave(4, dim=0), need_weights=False)[0]
    assert_close(ours(x, mask=both), ref)


def test_mha_fast_path_equals_explicit_path():
    torch.manual_seed(0)
    attn = MultiHeadAttention(dim=24, heads=6).eval()
    x = torch.randn(2, 9, 24)
    for mask in (None, causal_mask(9), key_mask(torch.rand(2, 9) > 0.3),
                 torch.randn(2, 6, 9, 9)):
        fast = attn(x, mask=mask)
        with record_attention(attn) as maps:
            slow = attn(x, mask=mask)
        assert maps[0].shape == (2, 6, 9, 9)
        assert_close(fast, slow)


# ------------------------------------------------------------------------ record_attention
def test_recorded_map_equals_a_hand_computation():
    torch.manual_seed(0)
    attn = MultiHeadAttention(dim=12, heads=3).eval()
    x = torch.randn(2, 5, 12)
    keep = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    with torch.no_grad(), record_attention(attn) as maps:
        attn(x, mask=key_mask(keep))
    q, k, _ = (attn.qkv(x).detach().view(2, 5, 3, 3, 4).permute(2, 0, 3, 1, 4))   # each (B, heads, N, 4)
    scores = q @ k.transpose(-2, -1) / math.sqrt(4)
    scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
    assert isinstance(maps, AttentionMaps) and len(maps) == 1
    assert_close(maps[0], scores.softmax(-1))
    assert_close(maps[0].sum(-1), torch.ones(2, 3, 5))                  # rows sum to 1 over the keys


def test_recording_keeps_outputs_and_restores_the_fast_path(monkeypatch):
    torch.manual_seed(0)
    attn = MultiHeadAttention(dim=8, heads=2).eval()
    x = torch.randn(3, 6, 8)
    fast = attn(x)
    with record_attention(attn) as maps:
        assert_close(attn(x), fast)
        attn(x)                                                          # a second call is recorded too
    assert len(maps) == 2 and maps.names == ["", ""] and list(maps.by_name()) == [""]
    assert attn._recorder is None and "_recorder" not in attn.__dict__
    with pytest.raises(RuntimeError, match="boom"), record_attention(attn):
        raise RuntimeError("boom")
    assert attn._recorder is None                                        # left even after an error

    def no_explicit(*args, **kwargs):
        raise AssertionError("the explicit path ran outside record_attention")

    with torch.no_grad():
        sdpa = attn(x)
    monkeypatch.setattr(attention_module, "attention_explicit", no_explicit)
    with torch.no_grad():
        assert torch.equal(attn(x), sdpa)                                # not recording: SDPA, same numbers


def test_short_sequences_train_through_the_explicit_form_with_sdpa_values_and_gradients(monkeypatch):
    torch.manual_seed(0)
    attn = MultiHeadAttention(dim=16, heads=4)
    short = attn.SHORT_SEQUENCE
    for n, explicit in ((7, True), (short, True), (short + 1, False)):
        x = torch.randn(3, n, 16, requires_grad=True)
        calls = []
        real = attention_module.attention_explicit
        monkeypatch.setattr(attention_module, "attention_explicit",
                            lambda *a, **k: calls.append(1) or real(*a, **k))
        out = attn(x)
        assert bool(calls) == explicit, f"N={n}: explicit form expected {explicit}"
        (gx,) = torch.autograd.grad(out.square().sum(), x)
        monkeypatch.setattr(attn, "SHORT_SEQUENCE", 0)                   # force SDPA
        ref = attn(x)
        (gref,) = torch.autograd.grad(ref.square().sum(), x)
        monkeypatch.undo()
        assert_close(out, ref)
        assert_close(gx, gref, rtol=1e-4, atol=1e-5)

    def no_explicit(*args, **kwargs):
        raise AssertionError("the explicit path ran in inference")

    monkeypatch.setattr(attention_module, "attention_explicit", no_explicit)
    with torch.no_grad():                                                # inference: always SDPA
        attn(torch.randn(2, 5, 16))


def test_record_attention_names_in_forward_order_and_errors():
    from vtlib.block import Transformer

    t = Transformer(dim=8, depth=3, heads=2).eval()
    x = torch.randn(2, 4, 8)
    with torch.no_grad(), record_attention(t) as maps:
        t(x)
    assert maps.names == [f"blocks.{i}.attn" for i in range(3)]
    assert all(m.shape == (2, 2, 4, 4) for m in maps)
    with torch.no_grad(), record_attention(t.blocks[1]) as maps:       # a submodule: names relative to it
        t(x)
    assert maps.names == ["attn"]
    with pytest.raises(VtlibError, match="^model: expected a torch.nn.Module"):
        with record_attention("model"):
            pass
    with pytest.raises(VtlibError, match="^model: expected a module holding at least one vtlib attention layer"):
        with record_attention(nn.Linear(2, 2)):
            pass
    with record_attention(t):
        with pytest.raises(VtlibError, match="^model: expected attention modules that are not being recorded"):
            with record_attention(t.blocks[0]):
                pass
    assert all(b.attn._recorder is None for b in t.blocks)


def test_mha_load_into_existing_module():
    ours, mha = torch_pair(16, 4)
    fresh = MultiHeadAttention(dim=16, heads=4)
    assert load_torch_mha(fresh, mha) is fresh
    x = torch.randn(1, 3, 16)
    assert_close(fresh(x), ours(x))


def test_mha_errors():
    with pytest.raises(VtlibError, match=r"^heads: expected a divisor of dim=10.*\[1, 2, 5, 10\]"):
        MultiHeadAttention(dim=10, heads=4)
    with pytest.raises(VtlibError, match="^dim: expected a positive int"):
        MultiHeadAttention(dim=0, heads=1)
    with pytest.raises(VtlibError, match="^attn_drop: expected a probability"):
        MultiHeadAttention(dim=8, heads=2, attn_drop=-0.1)
    attn = MultiHeadAttention(dim=8, heads=2)
    with pytest.raises(VtlibError, match="^x: expected a 3-D tensor shaped"):
        attn(torch.randn(4, 8))
    with pytest.raises(VtlibError, match="^x: expected last axis D=8"):
        attn(torch.randn(1, 4, 6))
    with pytest.raises(VtlibError, match="^mask: expected a shape broadcastable"):
        attn(torch.randn(1, 4, 8), mask=torch.ones(5, 5, dtype=torch.bool))
    with pytest.raises(VtlibError, match="^mask: expected a mask shaped"):
        attn(torch.randn(1, 4, 8), mask=torch.ones(4, dtype=torch.bool))
    with pytest.raises(VtlibError, match="^mha: expected embed_dim=8, num_heads=2"):
        load_torch_mha(attn, nn.MultiheadAttention(8, 4, batch_first=True))
    with pytest.raises(VtlibError, match="^ours: expected qkv_bias=False"):
        load_torch_mha(attn, nn.MultiheadAttention(8, 2, batch_first=True, bias=False))
    with pytest.raises(VtlibError, match="^mha: expected self-attention weights"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, kdim=4, vdim=4))

