"""Tests for vtlib.models.vtn: VTN (frame backbone + Longformer temporal encoder + CLS head)."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from vtlib.errors import VtlibError
from vtlib.models.vtn import VTN, FrameCNN, FullBlock, ImageBackbone, WindowBlock, use_full_attention


def small(**kw) -> VTN:
    torch.manual_seed(0)
    args = dict(dim=16, depth=1, heads=2, window=2, num_classes=3, max_frames=12, head_drop=0.0)
    return VTN(**{**args, **kw}).eval()


def clip(B=2, T=10, C=1, size=16, seed=0):
    return torch.randn(B, C, T, size, size, generator=torch.Generator().manual_seed(seed))


def test_shapes():
    m = small()
    x = clip()
    assert m(x).shape == (2, 3)
    assert m.features(x).shape == (2, 10, 16)
    assert m.encode(m.features(x)).shape == (2, 11, 16)
    assert m(clip(T=1)).shape == (2, 3) and m(clip(T=12)).shape == (2, 3)    # 1 .. max_frames frames
    m = small(feature_dim=24, depth=2)
    assert isinstance(m.proj, nn.Linear) and m.features(x).shape == (2, 10, 24) and m(x).shape == (2, 3)


def test_head_is_layernorm_linear_gelu_dropout_linear():
    head = VTN(dim=16, heads=2, num_classes=5).head
    assert [type(m) for m in head] == [nn.LayerNorm, nn.Linear, nn.GELU, nn.Dropout, nn.Linear]
    assert head[1].out_features == 16 and head[3].p == 0.5 and head[4].out_features == 5


@pytest.mark.parametrize("train", [False, True])
def test_three_inference_modes_agree(train):
    m = small(depth=2)
    m.train(train)                                        # no dropout here; GroupNorm never mixes frames
    x = clip(B=3, T=9)
    ref = m(x)
    for chunk in (1, 4, 27, 100):
        assert_close(m.forward_chunked(x, chunk), ref, atol=1e-5, rtol=1e-5)
    feats = m.features(x).detach()                         # mode 3: stored features, encoder only
    assert_close(m.classify_features(feats), ref, atol=1e-5, rtol=1e-5)
    ids = torch.arange(2, 11)
    assert_close(m.forward_chunked(x, 5, frame_ids=ids), m(x, frame_ids=ids), atol=1e-5, rtol=1e-5)


def feats_changed_at(m: VTN, t: int):
    """Logits for random features, and for the same features with frame t changed."""
    f = torch.randn(2, 10, m.feature_dim, generator=torch.Generator().manual_seed(3))
    g = f.clone()
    g[:, t] = torch.randn(2, m.feature_dim, generator=torch.Generator().manual_seed(4))  # (LayerNorm hides those)
    with torch.no_grad():
        return m.classify_features(f), m.classify_features(g)


@pytest.mark.parametrize("t", [0, 9])
def test_global_cls_sees_every_frame(t):
    a, b = feats_changed_at(small(window=2), t)           # w = 1 frame on each side, 10 frames
    assert (a - b).abs().max() > 1e-3


def test_local_cls_sees_only_its_window():
    m = small(window=2, global_cls=False)                 # CLS at index 0 sees index 1 = frame 0 only
    a, b = feats_changed_at(m, 0)
    assert (a - b).abs().max() > 1e-3
    for t in (1, 5, 9):
        a, b = feats_changed_at(m, t)
        assert_close(a, b, atol=1e-7, rtol=0)
    m = small(window=2, global_cls=False, depth=2)        # two layers: two frames
    assert (torch.sub(*feats_changed_at(m, 1))).abs().max() > 1e-3
    assert_close(*feats_changed_at(m, 2), atol=1e-7, rtol=0)


def test_end_to_end_cls_global_vs_local():
    x = clip(T=10)
    y = x.clone()
    y[:, :, -1] = torch.randn(2, 1, 16, 16)              # change the last frame's pixels
    for global_cls, changes in ((True, True), (False, False)):
        m = small(window=2, global_cls=global_cls)
        with torch.no_grad():
            diff = (m(x) - m(y)).abs().max()
        assert (diff > 1e-3) if changes else (diff < 1e-7)


def test_keep_masks_padded_frames():
    m = small(window=4)
    f = torch.randn(2, 10, 16)
    keep = torch.ones(2, 10, dtype=torch.bool)
    keep[1, 6:] = False
    junk = f.clone()
    junk[1, 6:] = 100.0
    with torch.no_grad():
        padded = m.classify_features(junk, keep=keep)
        assert_close(padded[1], m.classify_features(f[1:, :6])[0], atol=1e-5, rtol=1e-5)
        assert_close(padded[0], m.classify_features(f[:1])[0], atol=1e-5, rtol=1e-5)


def test_frame_ids_pick_position_rows():
    m = small()
    f = torch.randn(1, 4, 16)
    with torch.no_grad():
        assert_close(m.classify_features(f, frame_ids=torch.arange(4)), m.classify_features(f))
        assert (m.classify_features(f, frame_ids=torch.tensor([0, 3, 6, 9])) - m.classify_features(f)).abs().max() > 0


def test_frozen_backbone_gets_no_gradient():
    x = clip(B=2, T=6)
    m = small(freeze_backbone=True).train()
    assert not m.backbone.training and m.blocks.training          # frozen: stays in eval mode
    nn.functional.cross_entropy(m(x), torch.tensor([0, 2])).backward()
    assert all(p.grad is None for p in m.backbone.parameters())
    assert all(p.grad is not None for p in m.blocks.parameters()) and m.pos.grad is not None
    m = small().train()
    nn.functional.cross_entropy(m(x), torch.tensor([0, 2])).backward()
    assert all(p.grad is not None for p in m.backbone.parameters())


def test_image_backbone_wraps_models():
    class Tokens(nn.Module):                                     # a ViT-like model: (N, S, D) tokens
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 4, stride=4)

        def forward(self, x):
            return (self.conv(x).flatten(2).transpose(1, 2),)

    frames = torch.randn(5, 1, 16, 16)
    tok = ImageBackbone(Tokens(), out_dim=8, channels=3)
    assert tok(frames).shape == (5, 8)
    assert_close(tok(frames), tok.model(frames.expand(-1, 3, -1, -1))[0][:, 0])
    assert ImageBackbone(Tokens(), out_dim=8, tokens="mean", channels=3)(frames).shape == (5, 8)
    fmap = ImageBackbone(nn.Conv2d(1, 6, 3), out_dim=6)                    # (N, 6, h, w) -> spatial mean
    assert fmap(frames).shape == (5, 6)
    m = VTN(backbone=fmap, dim=6, heads=2, window=4, max_frames=8)
    assert m.feature_dim == 6 and m(clip(T=8)).shape == (2, 2)
    with pytest.raises(VtlibError, match="out_dim"):
        ImageBackbone(nn.Conv2d(1, 6, 3), out_dim=7)(frames)


def test_frame_cnn():
    cnn = FrameCNN(in_channels=2, out_dim=10, widths=(4, 8, 8))
    assert cnn(torch.randn(3, 2, 28, 28)).shape == (3, 10)
    with pytest.raises(VtlibError, match="channel"):
        cnn(torch.randn(3, 1, 28, 28))
    with pytest.raises(VtlibError, match="widths"):
        FrameCNN(widths=())


WINDOW_BLOCK_KEYS = {f"{m}.{p}" for p in ("weight", "bias") for m in (
    "norm1", "norm2", "mlp.fc1", "mlp.fc2", "attn.proj",
    "attn.query", "attn.key", "attn.value", "attn.query_global", "attn.key_global", "attn.value_global")}


def test_window_is_the_default_and_keeps_its_parameter_names():
    m = small(depth=2)
    assert m.attention == "window" and m.window == 2 and all(isinstance(b, WindowBlock) for b in m.blocks)
    for i in (0, 1):
        assert {k[len(f"blocks.{i}."):] for k in m.state_dict() if k.startswith(f"blocks.{i}.")} == WINDOW_BLOCK_KEYS
    assert small(depth=2, attention="window").state_dict().keys() == m.state_dict().keys()
    full_keys = set(small(depth=2, attention="full").state_dict())
    outside = {k for k in m.state_dict() if not k.startswith("blocks.")}
    assert {k for k in full_keys if not k.startswith("blocks.")} == outside and "blocks.0.attn.qkv.weight" in full_keys


def test_full_attention_sees_every_real_frame():
    full = small(depth=2, attention="full")
    assert full.window is None and all(isinstance(b, FullBlock) for b in full.blocks)
    f = torch.randn(2, 10, 16)
    keep = torch.ones(2, 10, dtype=torch.bool)
    keep[1, 6:] = False
    with torch.no_grad():
        padded = full.classify_features(torch.where(keep[..., None], f, 100.0), keep=keep)
        assert torch.allclose(padded[1], full.classify_features(f[1:, :6])[0], atol=1e-5)
        g = f.clone()
        g[:, -1] = torch.randn(2, 16)                      # (a constant shift would vanish in LayerNorm)
        assert (full.classify_features(f) - full.classify_features(g)).abs().max() > 1e-4   # the CLS sees frame 9
        assert full(clip()).shape == (2, 3)


def test_use_full_attention_swaps_the_blocks_of_a_built_model():
    model = small(depth=2)
    swapped = use_full_attention(model)
    assert swapped is model and model.window is None and model.attention == "full"
    assert all(isinstance(b, FullBlock) for b in model.blocks)
    built = small(depth=2, attention="full")
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in built.state_dict().items()}
    with pytest.raises(VtlibError, match="VTN"):
        use_full_attention(nn.Linear(2, 2))


def test_errors():
    m = small()
    x = clip()
    bad = [
        (lambda: m(x[:, 0]), "5-D"),
        (lambda: m(x.long()), "floating-point"),
        (lambda: m(clip(C=3)), "channel"),
        (lambda: m(clip(T=13)), "max_frames=12"),
        (lambda: m.classify_features(torch.randn(2, 13, 16)), "max_frames=12"),
        (lambda: m.classify_features(torch.randn(2, 5, 8)), "feature_dim=16"),
        (lambda: m.classify_features(torch.randn(2, 5, 16), keep=torch.ones(2, 4, dtype=torch.bool)), "keep"),
        (lambda: m.classify_features(torch.randn(2, 5, 16), frame_ids=torch.arange(8, 13)), "max_frames"),
        (lambda: m.classify_features(torch.randn(2, 5, 16), frame_ids=torch.arange(5.0)), "int64"),
        (lambda: VTN(window=3), "window"),
        (lambda: VTN(attention="sparse"), "attention"),
        (lambda: VTN(dim=16, heads=3), "heads"),
        (lambda: VTN(backbone="resnet"), "backbone"),
        (lambda: VTN(backbone=nn.Identity(), dim=16, heads=2)(clip()), "backbone"),
    ]
    bad += [(lambda c=c: m.forward_chunked(x, c), "chunk") for c in (0, -2, 2.5, True, None)]
    for fn, message in bad:
        with pytest.raises(VtlibError, match=message):
            fn()
    with pytest.raises(TypeError):
        VTN(None, 16)                                                      # keyword-only
