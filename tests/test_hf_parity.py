"""Tests for vtlib.hf.vivit: ViViT Model 1 ported to and from Hugging Face gives the same logits.

Configs are random-init and built locally (no hub download). Parameters are perturbed after
construction so that no weight is left at a special value (HF zero-inits its CLS and positions,
LayerNorms start at 1 / 0): a port that dropped or swapped any tensor would show.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

pytest.importorskip("transformers")
from transformers import VivitConfig, VivitForVideoClassification  # noqa: E402

from vtlib.errors import VtlibError  # noqa: E402
from vtlib.hf import HFVideoClassifier, hf_vivit_config, to_hf_video, vivit_from_hf, vivit_to_hf  # noqa: E402
from vtlib.models.vivit import ViViT  # noqa: E402

# (video_shape (T, H, W), tubelet, dim, depth, heads, num_classes, mlp_ratio, qkv_bias, in_channels)
CONFIGS = [
    ((28, 28, 28), (4, 7, 7), 32, 2, 4, 2, 4.0, True, 1),     # the course's default grid, 112 tokens
    ((8, 12, 16), (2, 4, 4), 48, 3, 3, 3, 2.0, True, 1),      # non-square frames, 3 heads
    ((6, 14, 14), (3, 7, 7), 24, 1, 2, 5, 3.0, False, 1),     # no q/k/v bias, odd tubelet depth
    ((4, 8, 8), (1, 4, 4), 16, 4, 1, 11, 1.5, True, 3),       # frame-wise tubelets, 1 head, RGB
    ((16, 16, 16), (8, 8, 8), 40, 2, 5, 4, 4.0, True, 1),     # few big tubelets, 8 tokens
]
IDS = [f"{c[0]}-t{c[1]}-d{c[2]}x{c[3]}-h{c[4]}" for c in CONFIGS]


def _perturb(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))


def _ours(cfg, seed=0) -> ViViT:
    video, tub, dim, depth, heads, classes, ratio, qkv_bias, chans = cfg
    torch.manual_seed(seed)
    model = ViViT(num_classes=classes, video_shape=video, tubelet=tub, dim=dim, depth=depth, heads=heads,
                  mlp_ratio=ratio, in_channels=chans, qkv_bias=qkv_bias).eval()
    _perturb(model, seed + 1)
    return model


def _theirs(cfg, seed=0, hidden_act="gelu", attn="sdpa") -> VivitForVideoClassification:
    video, tub, dim, depth, heads, classes, ratio, qkv_bias, chans = cfg
    config = VivitConfig(image_size=list(video[1:]), num_frames=video[0], tubelet_size=list(tub),
                         num_channels=chans, hidden_size=dim, num_hidden_layers=depth,
                         num_attention_heads=heads, intermediate_size=int(dim * ratio), hidden_act=hidden_act,
                         layer_norm_eps=1e-6, qkv_bias=qkv_bias, num_labels=classes, attn_implementation=attn)
    torch.manual_seed(seed)
    hf = VivitForVideoClassification(config).eval()
    _perturb(hf, seed + 1)
    return hf


def _clips(cfg, batch=2, seed=5) -> torch.Tensor:
    video, chans = cfg[0], cfg[-1]
    return torch.randn(batch, chans, *video, generator=torch.Generator().manual_seed(seed))


def _hf_logits(hf, x):
    return hf(pixel_values=to_hf_video(x)).logits


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_vtlib_to_hf_same_logits(cfg):
    model = _ours(cfg)
    hf = vivit_to_hf(model)
    x = _clips(cfg)
    with torch.no_grad():
        assert_close(_hf_logits(hf, x), model(x))
    c = hf.config
    video, tub = cfg[0], cfg[1]
    assert (c.num_frames, list(c.image_size), list(c.tubelet_size)) == (video[0], list(video[1:]), list(tub))
    assert (c.num_channels, c.hidden_act, c.layer_norm_eps, c.num_labels) == (cfg[-1], "gelu", 1e-6, cfg[5])
    # The CLS position is folded into the CLS token: HF's own CLS position is zero.
    assert torch.count_nonzero(hf.vivit.embeddings.position_embeddings[:, 0]) == 0


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_hf_to_vtlib_same_logits(cfg):
    hf = _theirs(cfg)
    model = vivit_from_hf(hf)
    x = _clips(cfg)
    with torch.no_grad():
        assert_close(model(x), _hf_logits(hf, x))
    emb = hf.vivit.embeddings
    assert_close(model.pool.token, emb.cls_token + emb.position_embeddings[:, :1])   # our_cls = hf_cls + hf_pos[0]
    assert_close(model.pos.pos, emb.position_embeddings[:, 1:])
    assert model.video_shape == cfg[0] and model.grid == tuple(v // t for v, t in zip(cfg[0], cfg[1]))


def test_round_trip_keeps_every_weight():
    model = _ours(CONFIGS[1])
    back = vivit_from_hf(vivit_to_hf(model))
    want, got = model.state_dict(), back.state_dict()
    assert want.keys() == got.keys()
    for name in want:
        assert_close(got[name], want[name], rtol=0, atol=0, msg=name)


def test_eager_attention_and_gradients_agree():
    cfg = CONFIGS[0]
    model = _ours(cfg).train()
    hf = vivit_to_hf(model, attn_implementation="eager").train()
    x, y = _clips(cfg, batch=3), torch.tensor([0, 1, 1])
    F.cross_entropy(model(x), y).backward()
    F.cross_entropy(_hf_logits(hf, x), y).backward()
    emb = hf.vivit.embeddings
    assert_close(emb.patch_embeddings.projection.weight.grad, model.embed.proj.weight.grad)
    assert_close(emb.position_embeddings.grad[:, 1:], model.pos.pos.grad)
    assert_close(emb.cls_token.grad, model.pool.token.grad)
    a = hf.vivit.layers[0].attention
    qkv_grad = torch.cat([a.q_proj.weight.grad, a.k_proj.weight.grad, a.v_proj.weight.grad])
    assert_close(qkv_grad, model.encoder.blocks[0].attn.qkv.weight.grad)
    assert_close(hf.classifier.weight.grad, model.head.weight.grad)


def test_tanh_gelu_checkpoints_port_with_tanh_gelu():
    cfg = CONFIGS[1]
    hf = _theirs(cfg, hidden_act="gelu_fast")                     # HF's default activation
    model = vivit_from_hf(hf)
    assert all(b.mlp.act.approximate == "tanh" for b in model.encoder.blocks)
    x = _clips(cfg)
    with torch.no_grad():
        assert_close(model(x), _hf_logits(hf, x))
        exact = vivit_from_hf(_theirs(cfg, hidden_act="gelu"))
        exact.load_state_dict(model.state_dict())                 # same weights, exact GELU
        assert not torch.allclose(exact(x), model(x), rtol=0, atol=1e-6)  # why hidden_act matters
    assert vivit_to_hf(model).config.hidden_act == "gelu_pytorch_tanh"


def test_hf_video_classifier_wraps_layout():
    cfg = CONFIGS[1]
    model = _ours(cfg)
    wrapped = HFVideoClassifier(vivit_to_hf(model))
    x = _clips(cfg)
    with torch.no_grad():
        assert_close(wrapped(x), model(x))
    assert to_hf_video(x).shape == (2, 8, 1, 12, 16)
    with pytest.raises(VtlibError, match="x: expected a 5-D"):
        wrapped(x[0])


def test_hf_config_is_local_and_matches():
    model = ViViT()
    c = hf_vivit_config(model)
    assert isinstance(c, VivitConfig)
    assert (c.num_frames, list(c.image_size), list(c.tubelet_size), c.num_channels) == (28, [28, 28], [4, 7, 7], 1)
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (64, 4, 4, 256)
    assert hf_vivit_config(model, num_labels=7).num_labels == 7


@pytest.mark.parametrize("kwargs,part", [(dict(pool="mean"), "model.pool"),
                                         (dict(position="sincos3d", dim=48), "model.pos"),
                                         (dict(embed="frame"), "model.embed")])
def test_unportable_models_are_refused(kwargs, part):
    with pytest.raises(VtlibError, match=part):
        vivit_to_hf(ViViT(**kwargs))


def test_bad_inputs_are_refused():
    with pytest.raises(VtlibError, match="model: expected a vtlib.models.vivit.ViViT"):
        vivit_to_hf(torch.nn.Linear(2, 2))
    with pytest.raises(VtlibError, match="hf_model: expected a transformers.VivitForVideoClassification"):
        vivit_from_hf(ViViT())
    with pytest.raises(VtlibError, match="hidden_act"):
        vivit_from_hf(_theirs(CONFIGS[4], hidden_act="relu"))
    model = ViViT(depth=2)
    model.encoder.blocks[1].mlp.act = torch.nn.ReLU()
    with pytest.raises(VtlibError, match="mlp.act"):
        vivit_to_hf(model)

