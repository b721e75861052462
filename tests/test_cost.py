"""Tests for vtlib.cost: FLOP formulas agree exactly with torch's FlopCounterMode."""
from __future__ import annotations

import pytest
import torch

from vtlib.attention import MultiHeadAttention, causal_mask, record_attention
from vtlib.block import MLP, Block, Transformer
from vtlib.cost import (
    PeakTensorMemory,
    attention_core_flops,
    attention_flops,
    attention_memory_bytes,
    block_flops,
    measure_flops,
    mlp_flops,
    peak_tensor_memory,
    transformer_flops,
)
from vtlib.errors import VtlibError

CASES = [(1, 8, 2), (5, 8, 2), (17, 16, 4), (49, 24, 3), (64, 32, 8)]  # (tokens, dim, heads)


def test_formulas_by_hand():
    n, d = 10, 4
    assert attention_flops(n, d) == 6 * n * d * d + 2 * n * n * d + 2 * n * n * d + 2 * n * d * d
    assert attention_core_flops(n, d) == 4 * n * n * d
    assert mlp_flops(n, d, 16) == 2 * n * d * 16 * 2
    assert block_flops(n, d) == attention_flops(n, d) + mlp_flops(n, d, 16)
    assert block_flops(n, d, mlp_ratio=2.5) == attention_flops(n, d) + mlp_flops(n, d, 10)
    assert transformer_flops(n, d, depth=3) == 3 * block_flops(n, d)
    assert attention_memory_bytes(197, 12, batch=8) == 8 * 12 * 197 * 197 * 4
    assert attention_memory_bytes(197, 12, bytes_per_el=2) == 12 * 197 * 197 * 2


@pytest.mark.parametrize("n,d,heads", CASES)
def test_block_flops_equal_flop_counter_fast_and_explicit(n, d, heads):
    torch.manual_seed(0)
    blk = Block(dim=d, heads=heads).eval()
    x = torch.randn(1, n, d)
    assert measure_flops(blk, x) == block_flops(n, d)                    # SDPA, MATH backend
    with record_attention(blk):
        assert measure_flops(blk, x) == block_flops(n, d)                # explicit attention
    assert measure_flops(blk, x, mask=causal_mask(n)) == block_flops(n, d)  # masks are free
    assert measure_flops(blk.attn, x) == attention_flops(n, d)
    assert measure_flops(blk.mlp, x) == mlp_flops(n, d, 4 * d)


def test_cpu_fused_sdpa_is_not_counted_by_flop_counter():
    """torch 2.13 on CPU: the fused SDPA kernel is invisible to FlopCounterMode (documented)."""
    n, d = 17, 16
    blk = Block(dim=d, heads=4).eval()
    x = torch.randn(1, n, d)
    raw = measure_flops(blk, x, math_sdpa=False)
    assert raw == block_flops(n, d) - attention_core_flops(n, d)
    with record_attention(blk):                                          # explicit: plain matmuls
        assert measure_flops(blk, x, math_sdpa=False) == block_flops(n, d)


def test_measure_counts_whole_batch_and_stack():
    t = Transformer(dim=16, depth=2, heads=4, mlp_ratio=2.0).eval()
    x = torch.randn(3, 9, 16)
    assert measure_flops(t, x) == 3 * transformer_flops(9, 16, depth=2, mlp_ratio=2.0)
    assert measure_flops(MLP(dim=16, hidden_dim=8), x) == 3 * mlp_flops(9, 16, 8)


def test_attention_cost_is_quadratic_in_tokens():
    d = 16
    # the core terms and the score memory grow exactly 4x when N doubles
    for n in (8, 64, 512):
        assert attention_core_flops(2 * n, d) == 4 * attention_core_flops(n, d)
        assert attention_memory_bytes(2 * n, 4) == 4 * attention_memory_bytes(n, 4)
    # total: ~2x while projections dominate (N << D), -> 4x once N >> D
    assert attention_flops(2 * 4, 1024) / attention_flops(4, 1024) < 2.01
    assert attention_flops(2 * 4096, 8) / attention_flops(4096, 8) > 3.99
    # measured: the second difference f(2N) - 2 f(N) is the quadratic part only: 8·N²·D
    attn = MultiHeadAttention(dim=d, heads=4).eval()
    f = {n: measure_flops(attn, torch.randn(1, n, d)) for n in (12, 24)}
    assert f[24] - 2 * f[12] == 8 * 12 * 12 * d


def test_cost_errors():
    with pytest.raises(VtlibError, match="^tokens: expected a positive int"):
        attention_flops(0, 8)
    with pytest.raises(VtlibError, match="^dim: expected a positive int"):
        attention_flops(4, 8.0)
    with pytest.raises(VtlibError, match="^hidden_dim: expected a positive int"):
        mlp_flops(4, 8, -1)
    with pytest.raises(VtlibError, match="^mlp_ratio: expected a positive number"):
        block_flops(4, 8, mlp_ratio=-1.0)
    with pytest.raises(VtlibError, match="^heads: expected a positive int"):
        attention_memory_bytes(4, 0)
    with pytest.raises(VtlibError, match="^model: expected a torch.nn.Module"):
        measure_flops(lambda x: x, torch.randn(1, 2, 3))


def test_cpu_ms_per_clip_is_positive_and_checks_repeats():
    from vtlib.cost import cpu_ms_per_clip
    from vtlib.errors import VtlibError

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2)).train()
    ms = cpu_ms_per_clip(model, torch.randn(4, 1, 4, 4, 4), repeats=2)
    assert ms > 0 and not model.training                     # measured in eval mode
    with pytest.raises(VtlibError, match="repeats"):
        cpu_ms_per_clip(model, torch.randn(4, 1, 4, 4, 4), repeats=0)


def test_peak_tensor_memory_is_deterministic_and_sees_the_score_matrix():
    from vtlib.window import window_attention, window_attention_explicit

    x = torch.randn(1000)
    with torch.no_grad(), PeakTensorMemory() as probe:
        a = x * 2                        # 4000 bytes
        b = a + 1                        # 4000 more, both alive
        del a
        c = b * 3                        # a is gone: still 8000 at most
        del b, c
    assert probe.peak == 8000 and probe.largest == 4000 and probe.now == 0
    q = torch.randn(1, 1, 512, 4)
    explicit = peak_tensor_memory(window_attention_explicit, q, q, q, 4)
    blocked = peak_tensor_memory(window_attention, q, q, q, 4)
    assert explicit["largest_bytes"] >= 512 * 512 * 4 > 20 * blocked["largest_bytes"]
    assert peak_tensor_memory(window_attention, q, q, q, 4) == blocked
