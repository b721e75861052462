"""Tests for vtlib.hf.longformer: vtlib's window attention and VTN run by Hugging Face's
``LongformerSelfAttention`` with the same weights give the same outputs (random weights, no download).
The layer itself is checked against Hugging Face in float64 in tests/test_window.py."""
from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("transformers")

from vtlib.errors import VtlibError  # noqa: E402
from vtlib.hf import HFWindowAttention, use_hf_attention  # noqa: E402
from vtlib.models.vtn import VTN  # noqa: E402
from vtlib.window import SlidingWindowAttention  # noqa: E402


@pytest.mark.parametrize("case", ["plain", "global", "padded"])
def test_layer_matches_sliding_window_attention(case):
    torch.manual_seed(0)
    ours = SlidingWindowAttention(dim=32, heads=4, window=8).eval()
    theirs = HFWindowAttention(ours).eval()
    x = torch.randn(2, 37, 32)
    keep = torch.ones(2, 37, dtype=torch.bool)
    is_global = torch.zeros_like(keep)
    if case != "plain":
        is_global[:, 0] = True
        is_global[1, 20] = True
    if case == "padded":
        keep[1, 30:] = False
    with torch.no_grad():
        mine, ref = ours(x, keep, is_global), theirs(x, keep, is_global)
    assert (mine - ref)[keep].abs().max() < 1e-5 and ref.shape == x.shape


def test_vtn_with_hugging_face_attention_gives_the_same_logits():
    torch.manual_seed(0)
    model = VTN(dim=16, depth=2, heads=2, window=4, max_frames=40, head_drop=0.0).eval()
    x = torch.randn(2, 1, 37, 16, 16)
    ref = use_hf_attention(model).eval()
    assert all(isinstance(b.attn, HFWindowAttention) for b in ref.blocks)
    assert all(isinstance(b.attn, SlidingWindowAttention) for b in model.blocks)          # the model is untouched
    with torch.no_grad():
        assert (model(x) - ref(x)).abs().max() < 1e-5                                      # same weights, same logits


def test_errors():
    with pytest.raises(VtlibError, match="VTN"):
        use_hf_attention(nn.Linear(2, 2))
    with pytest.raises(VtlibError, match="window"):
        use_hf_attention(VTN(dim=16, heads=2, attention="full"))
    with pytest.raises(VtlibError, match="SlidingWindowAttention"):
        HFWindowAttention(nn.Linear(2, 2))
