"""Tests for vtlib.hf.timesformer: vtlib's TimeSformer and HF's TimesformerForVideoClassification agree.

Random-init configs built locally (no hub). Every parameter is perturbed after construction, so no
weight stays at a special value (zero temporal fc, zero time embedding, unit LayerNorms): a port that
dropped or swapped a tensor would show in the logits.
"""
from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

pytest.importorskip("transformers")
from transformers import TimesformerConfig, TimesformerForVideoClassification  # noqa: E402

from vtlib.bench import timesformer_entry as bench_entry  # noqa: E402
from vtlib.errors import VtlibError  # noqa: E402
from vtlib.hf import (  # noqa: E402
    HFTimesformerClassifier,
    hf_timesformer_config,
    timesformer_from_hf,
    timesformer_to_hf,
    to_hf_video,
)
from vtlib.models.timesformer import TimeSformer  # noqa: E402

# (frames, size, patch, dim, depth, heads, classes, mlp_ratio, qkv_bias, channels, attention)
CONFIGS = [
    (8, 28, 7, 32, 2, 4, 2, 4.0, True, 1, "divided"),       # the course's clip: 8 x 16 patches
    (28, 28, 14, 16, 1, 2, 3, 2.0, True, 1, "divided"),     # all 28 frames, 2 x 2 patches each
    (4, 28, 7, 24, 3, 3, 5, 3.0, False, 1, "divided"),      # no qkv bias, 3 heads
    (6, 16, 4, 16, 2, 1, 2, 1.5, True, 3, "divided"),       # RGB, 1 head
    (8, 28, 7, 32, 2, 4, 2, 4.0, True, 1, "joint"),
    (5, 28, 14, 16, 2, 2, 4, 4.0, False, 1, "joint"),
    (8, 28, 7, 32, 2, 4, 2, 4.0, True, 1, "space"),
    (3, 14, 7, 16, 1, 2, 3, 2.0, True, 1, "space"),
]
IDS = [f"{c[10]}-T{c[0]}-{c[1]}p{c[2]}-d{c[3]}x{c[4]}" for c in CONFIGS]
HF_TYPE = {"divided": "divided_space_time", "joint": "joint_space_time", "space": "space_only"}


def _perturb(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))


def _ours(cfg, seed=0) -> TimeSformer:
    T, size, patch, dim, depth, heads, classes, ratio, bias, chans, attention = cfg
    torch.manual_seed(seed)
    model = TimeSformer(num_classes=classes, video_shape=(T, size, size), patch=patch, dim=dim, depth=depth,
                        heads=heads, mlp_ratio=ratio, in_channels=chans, attention=attention, qkv_bias=bias).eval()
    _perturb(model, seed + 1)
    return model


def _clips(cfg, b=2, seed=0):
    T, size, *_ = cfg
    return torch.randn(b, cfg[9], T, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_vtlib_to_hf_same_logits(cfg):
    model = _ours(cfg)
    hf = timesformer_to_hf(model)
    assert hf.config.attention_type == HF_TYPE[cfg[10]] and hf.config.hidden_act == "gelu"
    x = _clips(cfg)
    with torch.no_grad():
        assert_close(HFTimesformerClassifier(hf)(x), model(x), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_hf_to_vtlib_same_logits(cfg):
    T, size, patch, dim, depth, heads, classes, ratio, bias, chans, attention = cfg
    config = TimesformerConfig(image_size=size, patch_size=patch, num_channels=chans, num_frames=T,
                               hidden_size=dim, num_hidden_layers=depth, num_attention_heads=heads,
                               intermediate_size=int(dim * ratio), hidden_act="gelu", qkv_bias=bias,
                               layer_norm_eps=1e-6, attention_type=HF_TYPE[attention], num_labels=classes)
    torch.manual_seed(0)
    hf = TimesformerForVideoClassification(config).eval()
    _perturb(hf, 3)
    model = timesformer_from_hf(hf)
    assert model.attention == attention and model.blocks[0].mlp.fc1.out_features == int(dim * ratio)
    x = _clips(cfg, seed=1)
    with torch.no_grad():
        assert_close(model(x), HFTimesformerClassifier(hf)(x), atol=2e-5, rtol=1e-4)
        assert_close(timesformer_from_hf(timesformer_to_hf(model))(x), model(x), atol=0, rtol=0)


def test_hf_space_only_returns_one_prediction_per_frame():
    cfg = CONFIGS[6]
    model = _ours(cfg)
    hf = timesformer_to_hf(model)
    x = _clips(cfg, b=3)
    with torch.no_grad():
        per_frame = hf(pixel_values=to_hf_video(x)).logits
        assert per_frame.shape == (3 * cfg[0], cfg[6])        # (B*T, K): HF does not average
        assert_close(per_frame.reshape(3, cfg[0], -1).mean(1), model(x), atol=2e-5, rtol=1e-4)


def test_hf_init_does_not_zero_temporal_dense_but_vtlib_does():
    model = TimeSformer(dim=16, depth=1, heads=2, video_shape=(4, 28, 28))
    assert torch.count_nonzero(model.blocks[0].mixers["time"].fc.weight) == 0
    torch.manual_seed(0)
    hf = TimesformerForVideoClassification(hf_timesformer_config(model))
    assert torch.count_nonzero(hf.timesformer.encoder.layer[0].temporal_dense.weight) > 0


def test_config_matches_the_model():
    model = TimeSformer(num_classes=3, video_shape=(6, 28, 28), patch=14, dim=24, depth=2, heads=3, mlp_ratio=2.0,
                        eps=1e-5, attention="joint")
    c = hf_timesformer_config(model)
    assert (c.image_size, c.patch_size, c.num_frames, c.hidden_size, c.num_hidden_layers) == (28, 14, 6, 24, 2)
    assert (c.num_attention_heads, c.intermediate_size, c.layer_norm_eps, c.num_labels) == (3, 48, 1e-5, 3)
    assert c.attention_type == "joint_space_time"


def test_bench_entry_builds_both_sides_with_equal_logits():
    pytest.importorskip("vtlib.bench")
    from vtlib.bench import BenchConfig

    entry = bench_entry("divided")
    cfg = BenchConfig(video_shape=(8, 28, 28), tubelet=(2, 7, 7), dim=16, depth=1, heads=2, batch=2)
    ours = entry.build(cfg).eval()
    ref = entry.reference(ours).eval()
    x = torch.randn(2, 1, 8, 28, 28)
    with torch.no_grad():
        assert ours.model.grid == (4, 4, 4)                    # every 2nd frame: 4 x 16 = 64 tokens
        assert_close(ref(x), ours(x), atol=2e-5, rtol=1e-4)


def test_errors_name_the_argument():
    with pytest.raises(VtlibError, match="model.attention"):
        timesformer_to_hf(TimeSformer(attention="axial", dim=16, depth=1, heads=2))
    with pytest.raises(VtlibError, match="model.cls_in_time"):
        timesformer_to_hf(TimeSformer(cls_in_time=True, dim=16, depth=1, heads=2))
    with pytest.raises(VtlibError, match="model.video_shape"):
        timesformer_to_hf(TimeSformer(video_shape=(4, 28, 14), dim=16, depth=1, heads=2))
    with pytest.raises(VtlibError, match="model: expected"):
        timesformer_to_hf(torch.nn.Linear(2, 2))
    config = TimesformerConfig(image_size=28, patch_size=7, num_channels=1, num_frames=4, hidden_size=16,
                               num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, hidden_act="gelu_new")
    with pytest.raises(VtlibError, match="hidden_act"):
        timesformer_from_hf(TimesformerForVideoClassification(config))
    with pytest.raises(VtlibError, match="hf_model"):
        timesformer_from_hf(torch.nn.Linear(2, 2))
    with pytest.raises(VtlibError, match="attention"):
        bench_entry("axial")
