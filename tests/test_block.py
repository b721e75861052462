"""Tests for vtlib.block: MLP, DropPath, Block, Transformer."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from vtlib.attention import MultiHeadAttention, causal_mask, key_mask, load_torch_mha, record_attention
from vtlib.block import MLP, Block, DropPath, EncoderSize, Transformer, drop_path_rates, mlp_hidden_dim
from vtlib.errors import VtlibError


# ----------------------------------------------------------------------------------- MLP
def test_mlp_shapes_and_formula():
    torch.manual_seed(0)
    mlp = MLP(dim=8, hidden_dim=20)
    assert (mlp.fc1.in_features, mlp.fc1.out_features) == (8, 20)
    assert (mlp.fc2.in_features, mlp.fc2.out_features) == (20, 8)
    x = torch.randn(2, 5, 8)
    assert_close(mlp(x), mlp.fc2(F.gelu(mlp.fc1(x))))


def test_mlp_dropout_active_only_in_train():
    torch.manual_seed(0)
    mlp = MLP(dim=8, hidden_dim=16, drop=0.5)
    x = torch.randn(4, 5, 8)
    assert_close(mlp.eval()(x), mlp.fc2(F.gelu(mlp.fc1(x))))
    assert not torch.allclose(mlp.train()(x), mlp.eval()(x))


def test_mlp_errors():
    with pytest.raises(VtlibError, match="^hidden_dim: expected a positive int"):
        MLP(dim=8, hidden_dim=0)
    with pytest.raises(VtlibError, match="^drop: expected a probability"):
        MLP(dim=8, hidden_dim=8, drop=1.0)
    with pytest.raises(VtlibError, match="^x: expected a tensor whose last axis is dim=8"):
        MLP(dim=8, hidden_dim=8)(torch.randn(2, 3, 4))


# ------------------------------------------------------------------------------ DropPath
def test_drop_path_identity_in_eval_and_at_zero():
    x = torch.randn(6, 4, 3)
    assert torch.equal(DropPath(0.5).eval()(x), x)
    assert torch.equal(DropPath(0.0).train()(x), x)


def test_drop_path_drops_whole_samples_and_preserves_mean():
    torch.manual_seed(0)
    p, n = 0.3, 2000
    x = torch.ones(n, 5, 4)
    out = DropPath(p).train()(x)
    flat = out.reshape(n, -1)
    per_sample = flat[:, :1]
    assert torch.all(flat == per_sample)                        # whole sample kept or dropped
    kept = per_sample[per_sample != 0]
    assert 0 < kept.numel() < n
    assert_close(kept, torch.full_like(kept, 1 / (1 - p)))      # kept samples scaled by 1/(1-p)
    dropped = (per_sample == 0).float().mean().item()
    assert abs(dropped - p) < 0.04                              # ~4 binomial std errors
    assert abs(out.mean().item() - 1.0) < 0.06                  # E[out] = x


def test_drop_path_errors():
    with pytest.raises(VtlibError, match="^p: expected a probability in"):
        DropPath(1.0)
    with pytest.raises(VtlibError, match="^p: expected a probability in"):
        DropPath(-0.1)


# --------------------------------------------------------------------------------- Block
def test_block_structure_and_formula():
    torch.manual_seed(0)
    blk = Block(dim=16, heads=4, mlp_ratio=2.5).eval()
    assert isinstance(blk.attn, MultiHeadAttention) and isinstance(blk.mlp, MLP)
    assert isinstance(blk.norm1, nn.LayerNorm) and blk.norm1.eps == 1e-6
    assert blk.mlp.fc1.out_features == mlp_hidden_dim(16, 2.5) == 40
    assert isinstance(blk.drop_path, DropPath)
    x = torch.randn(2, 7, 16)
    h = x + blk.attn(blk.norm1(x))
    assert_close(blk(x), h + blk.mlp(blk.norm2(h)))
    with record_attention(blk) as maps:
        out = blk(x)
    assert_close(out, blk(x))
    assert maps.names == ["attn"] and maps[0].shape == (2, 4, 7, 7)
    assert_close(maps[0].sum(-1), torch.ones(2, 4, 7))


def test_block_matches_torch_transformer_encoder_layer_norm_first():
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(16, 4, dim_feedforward=64, dropout=0.0, activation="gelu",
                                     layer_norm_eps=1e-6, batch_first=True, norm_first=True)
    blk = Block(dim=16, heads=4)
    load_torch_mha(blk.attn, ref.self_attn)
    blk.mlp.fc1.load_state_dict(ref.linear1.state_dict())
    blk.mlp.fc2.load_state_dict(ref.linear2.state_dict())
    blk.norm1.load_state_dict(ref.norm1.state_dict())
    blk.norm2.load_state_dict(ref.norm2.state_dict())
    x = torch.randn(2, 6, 16)
    assert_close(blk(x), ref(x))
    m = causal_mask(6)
    assert_close(blk(x, mask=m), ref(x, src_mask=~m))          # torch: True = blocked


def test_block_causal_mask_hides_the_future():
    torch.manual_seed(0)
    blk = Block(dim=8, heads=2).eval()
    x = torch.randn(1, 6, 8)
    y = x.clone()
    y[:, 4:] += 1.0                                              # change tokens 4 and 5 only
    a, b = blk(x, mask=causal_mask(6)), blk(y, mask=causal_mask(6))
    assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_block_drop_path_only_in_training():
    torch.manual_seed(0)
    blk = Block(dim=8, heads=2, drop_path=0.5)
    plain = Block(dim=8, heads=2)
    plain.load_state_dict(blk.state_dict())
    x = torch.randn(64, 3, 8)
    assert_close(blk.eval()(x), plain.eval()(x))
    out = blk.train()(x)
    same = torch.isclose(out, x).all(dim=(1, 2))                 # both branches dropped
    assert 0 < same.sum() < 64


def test_block_errors():
    with pytest.raises(VtlibError, match="^x: expected a 3-D tensor"):
        Block(dim=8, heads=2)(torch.randn(3, 8))
    with pytest.raises(VtlibError, match="^heads: expected a divisor of dim=8"):
        Block(dim=8, heads=3)
    with pytest.raises(VtlibError, match="^mlp_ratio: expected a positive number"):
        Block(dim=8, heads=2, mlp_ratio=0)
    with pytest.raises(VtlibError, match="^drop_path: expected a probability"):
        Block(dim=8, heads=2, drop_path=1.0)


# --------------------------------------------------------------------------- Transformer
def test_drop_path_rates_are_linear_from_zero():
    rates = drop_path_rates(5, 0.2)
    assert rates == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    t = Transformer(dim=8, depth=5, heads=2, drop_path_rate=0.2)
    got = [blk.drop_path.p for blk in t.blocks]
    assert got == pytest.approx(rates)
    steps = [b - a for a, b in zip(got, got[1:])]
    assert steps == pytest.approx([steps[0]] * 4)                # constant increments
    assert got != pytest.approx([0.2] * 5)                       # not the global rate (HF #27875)
    assert drop_path_rates(1, 0.3) == [0.0]


def test_transformer_is_a_plain_stack_without_final_norm():
    torch.manual_seed(0)
    t = Transformer(dim=12, depth=3, heads=3, mlp_ratio=2.0).eval()
    assert isinstance(t.blocks, nn.ModuleList) and len(t.blocks) == 3
    assert not any(isinstance(m, nn.LayerNorm) for m in t.children())
    x = torch.randn(2, 5, 12)
    h = x
    for blk in t.blocks:
        h = blk(h)
    assert_close(t(x), h)
    keep = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    with record_attention(t) as maps:
        out = t(x, mask=key_mask(keep))
    assert_close(out, t(x, mask=key_mask(keep)))
    assert len(maps) == 3 and all(m.shape == (2, 3, 5, 5) for m in maps)
    assert all(torch.all(m[1, :, :, 3:] == 0) for m in maps)     # padded keys never attended


def test_transformer_errors():
    with pytest.raises(VtlibError, match="^depth: expected a positive int"):
        Transformer(dim=8, depth=0, heads=2)
    with pytest.raises(VtlibError, match="^drop_path_rate: expected a probability"):
        Transformer(dim=8, depth=2, heads=2, drop_path_rate=1.5)
    with pytest.raises(VtlibError, match="^x: expected last axis D=8"):
        Transformer(dim=8, depth=2, heads=2)(torch.randn(1, 4, 6))


# --------------------------------------------------------------------------- EncoderSize
def test_encoder_size_builds_the_transformer_it_describes():
    size = EncoderSize(dim=12, depth=3, heads=3, mlp_ratio=2.0, qkv_bias=False, drop_path=0.2, eps=1e-5)
    torch.manual_seed(0)
    t = size.transformer()
    torch.manual_seed(0)
    ref = Transformer(dim=12, depth=3, heads=3, mlp_ratio=2.0, qkv_bias=False, drop_path_rate=0.2, eps=1e-5)
    assert list(t.state_dict()) == list(ref.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(t.state_dict().values(), ref.state_dict().values()))
    assert t.drop_path_rates == pytest.approx([0.0, 0.1, 0.2]) and t.blocks[0].norm1.eps == 1e-5
    with pytest.raises(dataclasses.FrozenInstanceError):
        size.dim = 16                                                 # frozen: one description per model


@pytest.mark.parametrize("kwargs,name", [
    (dict(dim=10, heads=4), "^heads: expected a divisor of dim=10"),
    (dict(depth=0), "^depth: expected a positive int"),
    (dict(mlp_ratio=0), "^mlp_ratio: expected a positive number"),
    (dict(drop_path=1.0), "^drop_path: expected a probability"),
    (dict(qkv_bias=1), "^qkv_bias: expected True or False"),
    (dict(eps=0.0), "^eps: expected a positive LayerNorm epsilon"),
])
def test_encoder_size_checks_every_rule_once(kwargs, name):
    with pytest.raises(VtlibError, match=name):
        EncoderSize(**kwargs)


def test_constructors_are_keyword_only():
    with pytest.raises(TypeError):
        Block(8, 2)
    with pytest.raises(TypeError):
        Transformer(8, 2, 2)
    with pytest.raises(TypeError):
        MultiHeadAttention(8, 2)
    assert DropPath(0.1).p == 0.1                                     # one obvious argument, like nn.Dropout(p)
