"""Tests for vtlib.hf.common: the one pair-table mechanism behind every Hugging Face port.

A round trip vtlib -> HF -> vtlib must give back every parameter bit for bit, for each model; a table
that misses a parameter, names one that does not exist, or names one twice must be refused before
anything is copied, with an error that names the parameter.
"""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")

from vtlib.errors import VtlibError  # noqa: E402
from vtlib.hf import (  # noqa: E402
    HFTimesformerClassifier,
    HFVideoMAEClassifier,
    classifier_from_hf,
    classifier_to_hf,
    copy_from_hf,
    copy_to_hf,
    encoder_from_hf,
    encoder_to_hf,
    hf_vivit_config,
    timesformer_from_hf,
    timesformer_to_hf,
    to_hf_video,
    videomae_from_hf,
    videomae_to_hf,
    vivit_from_hf,
    vivit_table,
    vivit_to_hf,
)
from vtlib.hf.common import channel_rows, cls_position_fold, pair, qkv_split, qv_bias_split  # noqa: E402
from vtlib.models.timesformer import TimeSformer  # noqa: E402
from vtlib.models.videomae import VideoMAE, VideoMAEClassifier  # noqa: E402
from vtlib.models.vivit import ViViT  # noqa: E402


def _perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """No parameter left at a special value (zero positions, unit LayerNorms), so every copy shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    return model.eval()


def _zero_k_bias(model: torch.nn.Module) -> torch.nn.Module:
    """HF VideoMAE has no k bias (softmax cancels it): the one part a round trip does not keep."""
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "qkv") and m.qkv.bias is not None:
                m.qkv.bias.chunk(3)[1].zero_()
    return model


def _assert_same_parameters(got: torch.nn.Module, want: torch.nn.Module) -> None:
    g, w = dict(got.named_parameters()), dict(want.named_parameters())
    assert g.keys() == w.keys()
    for name in w:
        assert g[name].dtype == w[name].dtype and torch.equal(g[name], w[name]), name


def _vivit(**kw) -> ViViT:
    torch.manual_seed(0)
    return _perturbed(ViViT(video_shape=(4, 8, 12), tubelet=(2, 4, 4), dim=16, depth=2, heads=2, num_classes=3, **kw))


def _timesformer(attention: str, **kw) -> TimeSformer:
    torch.manual_seed(0)
    return _perturbed(TimeSformer(video_shape=(4, 14, 14), patch=7, dim=16, depth=2, heads=2, num_classes=3,
                                  attention=attention, **kw))


VIDEOMAE = dict(video_shape=(4, 16, 16), tubelet=(2, 8, 8), dim=16, depth=2, heads=2)


@pytest.mark.parametrize("kw", [{}, dict(qkv_bias=False), dict(in_channels=3, mlp_ratio=1.5)],
                         ids=["default", "no-qkv-bias", "rgb-ratio1.5"])
def test_vivit_round_trip_is_bit_exact(kw):
    model = _vivit(**kw)
    _assert_same_parameters(vivit_from_hf(vivit_to_hf(model)), model)


@pytest.mark.parametrize("attention", ["divided", "joint", "space"])
@pytest.mark.parametrize("kw", [{}, dict(qkv_bias=False, in_channels=3)], ids=["default", "no-bias-rgb"])
def test_timesformer_round_trip_is_bit_exact(attention, kw):
    model = _timesformer(attention, **kw)
    _assert_same_parameters(timesformer_from_hf(timesformer_to_hf(model)), model)


@pytest.mark.parametrize("kw", [dict(in_channels=3), dict(final_norm=True, qkv_bias=False)],
                         ids=["rgb", "final-norm-no-bias"])
def test_videomae_round_trips_are_bit_exact(kw):
    torch.manual_seed(0)
    model = _zero_k_bias(_perturbed(VideoMAE(**VIDEOMAE, decoder_dim=8, decoder_depth=2, decoder_heads=2, **kw)))
    _assert_same_parameters(videomae_from_hf(videomae_to_hf(model)), model)
    _assert_same_parameters(encoder_from_hf(encoder_to_hf(model.encoder)), model.encoder)
    if not kw.get("final_norm"):
        torch.manual_seed(0)
        clf = _zero_k_bias(_perturbed(VideoMAEClassifier(num_classes=3, **VIDEOMAE, **kw)))
        _assert_same_parameters(classifier_from_hf(classifier_to_hf(clf)), clf)


# ----------------------------------------------------------------------------- the table is checked
@pytest.fixture(scope="module")
def vivit_pair():
    model = _vivit()
    return model, vivit_to_hf(model), vivit_table(hf_vivit_config(model))


@pytest.mark.parametrize("direction", ["to_hf", "from_hf"])
def test_a_table_missing_a_parameter_is_refused_before_copying(vivit_pair, direction):
    model, hf, table = vivit_pair
    other = _perturbed(_vivit(), seed=7)                       # same shapes, other weights
    dst = vivit_to_hf(other) if direction == "to_hf" else other
    before = {n: p.clone() for n, p in dst.named_parameters()}
    without = [p for p in table if p.ours != ("encoder.blocks.1.norm1.weight",)]
    match = r"table: expected a pair for every vtlib parameter.*no pair for encoder\.blocks\.1\.norm1\.weight"
    with pytest.raises(VtlibError, match=match):
        copy_to_hf(model, dst, without) if direction == "to_hf" else copy_from_hf(hf, dst, without)
    assert all(torch.equal(p, before[n]) for n, p in dst.named_parameters()), "a refused table must copy nothing"


def test_a_table_missing_an_hf_parameter_is_refused(vivit_pair):
    model, hf, table = vivit_pair
    q_only = [pair(p.ours[0], p.theirs[0]) if p.rule == "qkv_split" else p for p in table]   # k, v forgotten
    with pytest.raises(VtlibError, match=r"a pair for every HF parameter.*vivit\.layers\.0\.attention\.k_proj\.bias"):
        copy_to_hf(model, hf, q_only)


def test_a_table_with_an_extra_or_repeated_parameter_is_refused(vivit_pair):
    model, hf, table = vivit_pair
    with pytest.raises(VtlibError, match=r"only parameters of the vtlib model, got encoder\.blocks\.9\.norm1\.weight"):
        copy_to_hf(model, hf, table + [pair("encoder.blocks.9.norm1.weight", "vivit.layers.9.layernorm_before")])
    typo = [pair("head.bias", "classifier.bais") if p.ours == ("head.bias",) else p for p in table]
    with pytest.raises(VtlibError, match=r"only parameters of the HF model, got classifier\.bais"):
        copy_from_hf(hf, model, typo)
    with pytest.raises(VtlibError, match=r"each vtlib parameter in one pair, got head\.bias in several"):
        copy_to_hf(model, hf, table + [pair("head.bias", "classifier.bias")])


def test_a_pair_with_the_wrong_shape_is_refused_before_copying(vivit_pair):
    model, _, table = vivit_pair
    hf = vivit_to_hf(_perturbed(_vivit(), seed=7))
    before = {n: p.clone() for n, p in hf.named_parameters()}
    swapped = [pair("head.weight", "classifier.bias") if p.ours == ("head.weight",) else
               pair("head.bias", "classifier.weight") if p.ours == ("head.bias",) else p for p in table]
    with pytest.raises(VtlibError, match=r"table \(copy pair\): expected classifier\.bias shaped \(3,\)"):
        copy_to_hf(model, hf, swapped)
    assert all(torch.equal(p, before[n]) for n, p in hf.named_parameters()), "a refused table must copy nothing"


# ----------------------------------------------------------------------------- the special cases
def _both_ways(p, *ours):
    theirs = p.to_hf(*ours)
    assert len(theirs) == len(p.theirs)
    return theirs, p.from_hf(*theirs)


def test_special_cases_invert_each_other():
    w, b = torch.randn(12, 4), torch.randn(12)
    (q, k, v), (back,) = _both_ways(qkv_split("qkv", "q", "k", "v")[0], w)
    assert torch.equal(torch.cat([q, k, v]), w) and torch.equal(back, w) and q.shape == (4, 4)
    (bq, bv), (back,) = _both_ways(qv_bias_split("qkv", "q", "v"), b)
    assert torch.equal(bq, b[:4]) and torch.equal(bv, b[8:])
    assert torch.equal(back[:4], b[:4]) and torch.equal(back[8:], b[8:]) and not back[4:8].any()  # k bias: zero
    cls, pos = torch.randn(1, 1, 4), torch.randn(1, 5, 4)
    (hf_cls, hf_pos), (cls2, pos2) = _both_ways(cls_position_fold("c", "p", "hc", "hp"), cls, pos)
    assert hf_pos.shape == (1, 6, 4) and not hf_pos[:, 0].any() and torch.equal(hf_cls, cls)
    assert torch.equal(cls2, cls) and torch.equal(pos2, pos)
    rows = torch.arange(6.0)                                   # (c k) with c = 2, k = 3
    (hf_rows,), (back,) = _both_ways(channel_rows("h", "h", 2)[1], rows)
    assert hf_rows.tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0] and torch.equal(back, rows)
    assert torch.equal(channel_rows("h", "h", 1)[0].to_hf(w)[0], w)


def test_to_hf_video_is_one_contiguous_layout():
    x = torch.randn(2, 3, 4, 5, 6)
    v = to_hf_video(x)
    assert v.shape == (2, 4, 3, 5, 6) and v.is_contiguous() and torch.equal(v[:, 1, 2], x[:, 2, 1])
    with pytest.raises(VtlibError, match="x: expected a 5-D"):
        to_hf_video(x[0])


def test_wrappers_check_the_hf_class(vivit_pair):
    _, hf, _ = vivit_pair
    with pytest.raises(VtlibError, match="hf_model: expected a transformers.TimesformerForVideoClassification"):
        HFTimesformerClassifier(hf)
    with pytest.raises(VtlibError, match="hf_model: expected a transformers.VideoMAEForVideoClassification"):
        HFVideoMAEClassifier(hf)
    torch.manual_seed(0)
    clf = _perturbed(VideoMAEClassifier(num_classes=3, **VIDEOMAE))
    x = torch.randn(2, 1, 4, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(HFVideoMAEClassifier(classifier_to_hf(clf))(x), clf(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(VtlibError, match="x: expected a floating-point"):
        HFVideoMAEClassifier(classifier_to_hf(clf))(x.to(torch.uint8))
