"""Tests for vtlib.pooling (CLS, mean, attention pooling)."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from vtlib.errors import VtlibError
from vtlib.pooling import AttentionPool, ClsToken, MeanPool, attention_pool, make_pool


def tokens(b=2, n=7, d=8, seed=0):
    return torch.randn(b, n, d, generator=torch.Generator().manual_seed(seed))


def test_cls_token_prepend_and_read():
    cls = ClsToken(dim=8)
    assert cls.token.shape == (1, 1, 8) and cls.token.requires_grad and cls.num_prefix == 1
    x = tokens()
    y = cls.prepend(x)
    assert y.shape == (2, 8, 8)
    assert_close(y[:, 1:], x)
    assert_close(cls.read(y), cls.token[0].expand(2, -1))
    assert_close(cls(y), y[:, 0])
    y.sum().backward()
    assert cls.token.grad is not None and torch.all(cls.token.grad == 2)   # one copy per video
    with pytest.raises(VtlibError, match="x"):
        cls.prepend(tokens(d=4))
    with pytest.raises(VtlibError, match="x"):
        cls.prepend(torch.randn(7, 8))


def test_mean_pool():
    x = tokens()
    pool = MeanPool(dim=8)
    assert_close(pool(x), x.sum(1) / 7)
    assert pool.prepend(x) is x and pool.num_prefix == 0
    assert_close(pool(x[:, torch.randperm(7)]), pool(x))
    with pytest.raises(VtlibError, match="x"):
        pool(torch.randn(2, 8))


def test_attention_pool_function():
    x, q = tokens(), torch.randn(8)
    out, w = attention_pool(x, q, return_weights=True)
    assert out.shape == (2, 8) and w.shape == (2, 7)
    assert_close(w.sum(-1), torch.ones(2))
    ref = F.scaled_dot_product_attention(q.expand(2, 1, 8), x, x)[:, 0]
    assert_close(out, ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(VtlibError, match="query"):
        attention_pool(x, torch.randn(4))


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_attention_pool_module_matches_sdpa(heads):
    torch.manual_seed(heads)
    pool = AttentionPool(dim=8, heads=heads)
    x = tokens()
    out, w = pool(x, return_weights=True)
    assert out.shape == (2, 8) and w.shape == (2, heads, 7)
    assert_close(w.sum(-1), torch.ones(2, heads))
    # reference: the same computation with scaled_dot_product_attention
    k, v = pool.to_kv(x).chunk(2, dim=-1)
    split = lambda t: t.reshape(2, 7, heads, 8 // heads).transpose(1, 2)  # noqa: E731
    q = pool.query[None, :, None, :].expand(2, -1, -1, -1)
    ref = F.scaled_dot_product_attention(q, split(k), split(v))          # (B, heads, 1, D/heads)
    assert_close(out, pool.out(ref[:, :, 0].reshape(2, 8)), rtol=1e-5, atol=1e-5)
    assert_close(pool(x[:, torch.randperm(7)]), out, rtol=1e-5, atol=1e-5)   # order-blind
    assert pool.prepend(x) is x


def test_attention_pool_learns_which_tokens_matter():
    pool = AttentionPool(dim=4)
    with torch.no_grad():
        pool.to_kv.weight.zero_()
        pool.to_kv.bias.zero_()
        pool.to_kv.weight[:4] = torch.eye(4) * 50.0          # keys = 50 * tokens
        pool.to_kv.weight[4:] = torch.eye(4)                  # values = tokens
        pool.query.copy_(torch.tensor([[1.0, 0, 0, 0]]))
    x = torch.zeros(1, 3, 4)
    x[0, 2, 0] = 1.0
    _, w = pool(x, return_weights=True)
    assert w[0, 0].argmax() == 2 and w[0, 0, 2] > 0.99


def test_attention_pool_errors():
    with pytest.raises(VtlibError, match="heads"):
        AttentionPool(dim=8, heads=3)
    with pytest.raises(VtlibError, match="x"):
        AttentionPool(dim=8)(tokens(d=6))
    with pytest.raises(VtlibError, match="x"):
        AttentionPool(dim=8)(torch.randn(2, 0, 8))


def test_make_pool_and_common_interface():
    x = tokens()
    for kind, cls, n_out in (("cls", ClsToken, 8), ("mean", MeanPool, 7), ("attn", AttentionPool, 7)):
        pool = make_pool(kind, 8)
        assert isinstance(pool, cls)
        y = pool.prepend(x)
        assert y.shape == (2, n_out, 8) and y.shape[1] == 7 + pool.num_prefix
        assert pool(y).shape == (2, 8)
    assert make_pool("attn", 8, heads=2).heads == 2
    with pytest.raises(VtlibError, match="kind"):
        make_pool("max", 8)


def test_token_zero_without_cls_is_a_patch_token():
    """The pitfall: with no CLS prepended, x[:, 0] is the first patch, not a summary."""
    x = tokens()
    assert not torch.allclose(x[:, 0], MeanPool()(x))
    assert_close(ClsToken(dim=8).prepend(x)[:, 1], x[:, 0])      # after prepend the patch moves to index 1
