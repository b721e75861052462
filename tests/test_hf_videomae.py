"""Parity with Hugging Face transformers' VideoMAE: same weights + same mask -> same loss and outputs."""
import pytest
import torch
from torch.testing import assert_close

transformers = pytest.importorskip("transformers")

from vtlib.errors import VtlibError  # noqa: E402
from vtlib.hf import (  # noqa: E402
    classifier_from_hf,
    classifier_to_hf,
    encoder_from_hf,
    encoder_to_hf,
    to_hf_video,
    videomae_config,
    videomae_from_hf,
    videomae_to_hf,
)
from vtlib.masking import make_mask  # noqa: E402
from vtlib.models.videomae import VideoMAE, VideoMAEClassifier  # noqa: E402

# (video_shape, tubelet, channels, dim, depth, heads, decoder (dim, depth, heads), final_norm, mask)
CONFIGS = [
    ((8, 28, 28), (4, 7, 7), 1, 24, 2, 3, (16, 1, 2), False, ("tube", 0.75)),
    ((8, 16, 16), (2, 4, 4), 1, 16, 1, 2, (8, 2, 2), True, ("random", 0.9)),
    ((4, 16, 16), (2, 8, 8), 1, 12, 2, 4, (12, 1, 3), False, ("frame", 0.5)),
]


def perturbed(model, seed=0):
    """Random non-zero weights everywhere (biases, norms, mask token), so every copy is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()


def build(cfg, channels=None):
    shape, tub, c, dim, depth, heads, (dd, ddepth, dheads), final_norm, _ = cfg
    torch.manual_seed(0)
    return perturbed(VideoMAE(video_shape=shape, tubelet=tub, in_channels=channels or c, dim=dim, depth=depth,
                              heads=heads, decoder_dim=dd, decoder_depth=ddepth, decoder_heads=dheads,
                              final_norm=final_norm))


def inputs(model, cfg, b=2, seed=1):
    x = torch.rand(b, model.encoder.in_channels, *model.video_shape, generator=torch.Generator().manual_seed(seed))
    kind, ratio = cfg[-1]
    return x, make_mask(kind, b, model.grid, ratio, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cfg", CONFIGS, ids=["28-4x7x7-tube", "16-2x4x4-random-norm", "16-2x8x8-frame"])
@torch.no_grad()
def test_pretraining_loss_and_encoder_match_hf(cfg):
    ours = build(cfg)
    hf = videomae_to_hf(ours)
    x, mask = inputs(ours, cfg)
    loss, pred = ours(x, mask)
    out = hf(to_hf_video(x), bool_masked_pos=mask)
    assert_close(loss, out.loss, atol=1e-6, rtol=1e-5)
    assert_close(pred, out.logits, atol=1e-5, rtol=1e-5)
    # encoders: visible tokens with the same bool_masked_pos, and all tokens without a mask
    assert_close(ours.encoder(x, mask), hf.videomae(to_hf_video(x), bool_masked_pos=mask).last_hidden_state,
                 atol=1e-5, rtol=1e-5)
    assert_close(ours.encoder(x), hf.videomae(to_hf_video(x)).last_hidden_state, atol=1e-5, rtol=1e-5)
    # and back: HF -> vtlib gives the same loss again
    assert_close(videomae_from_hf(hf)(x, mask)[0], loss, atol=1e-6, rtol=1e-5)


@torch.no_grad()
def test_position_tables_equal_hf_sinusoid():
    from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

    ours = build(CONFIGS[0])
    hf = videomae_to_hf(ours)
    assert_close(ours.encoder.pos, get_sinusoid_encoding_table(ours.num_tokens, 24))
    assert_close(ours.decoder.pos, hf.position_embeddings)


@torch.no_grad()
def test_three_channels_permutes_the_head():
    """vtlib predicts (c t p p), HF (t p p c): logits agree after the row permutation; the losses agree
    to ~1e-5 because HF first undoes the ImageNet normalisation for RGB (cancelled by the per-patch norm)."""
    cfg = CONFIGS[2]
    ours = build(cfg, channels=3)
    hf = videomae_to_hf(ours)
    x, mask = inputs(ours, cfg)
    loss, pred = ours(x, mask)
    out = hf(to_hf_video(x), bool_masked_pos=mask)
    assert_close(pred.unflatten(-1, (3, -1)).transpose(-1, -2).flatten(-2), out.logits, atol=1e-5, rtol=1e-5)
    assert_close(loss, out.loss, atol=1e-4, rtol=1e-4)
    assert_close(videomae_from_hf(hf)(x, mask)[1], pred, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_k_bias_dropped_on_export_and_zero_on_import():
    ours = build(CONFIGS[0])
    d = ours.encoder.dim
    assert ours.encoder.transformer.blocks[0].attn.qkv.bias[d:2 * d].abs().sum() > 0     # non-zero k bias
    hf_enc = encoder_to_hf(ours.encoder)
    x, mask = inputs(ours, CONFIGS[0])
    assert_close(hf_enc(to_hf_video(x), bool_masked_pos=mask).last_hidden_state, ours.encoder(x, mask),
                 atol=1e-5, rtol=1e-5)
    back = encoder_from_hf(hf_enc)
    assert back.transformer.blocks[0].attn.qkv.bias[d:2 * d].abs().sum() == 0
    assert_close(back(x, mask), ours.encoder(x, mask), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_classifier_matches_hf_video_classification():
    torch.manual_seed(0)
    ours = perturbed(VideoMAEClassifier(num_classes=3, video_shape=(8, 16, 16), tubelet=(2, 4, 4), dim=16,
                                        depth=2, heads=2))
    hf = classifier_to_hf(ours)
    x = torch.rand(2, 1, 8, 16, 16)
    assert_close(ours(x), hf(to_hf_video(x)).logits, atol=1e-5, rtol=1e-5)
    assert_close(classifier_from_hf(hf)(x), ours(x), atol=1e-5, rtol=1e-5)


def test_config_and_errors():
    ours = build(CONFIGS[0])
    cfg = videomae_config(ours)
    assert (cfg.image_size, cfg.patch_size, cfg.tubelet_size, cfg.num_frames, cfg.num_channels) == (28, 7, 4, 8, 1)
    assert cfg.use_mean_pooling is True and cfg.norm_pix_loss is True and cfg.hidden_act == "gelu"
    with pytest.raises(VtlibError, match="model"):
        videomae_to_hf(torch.nn.Linear(2, 2))
    with pytest.raises(VtlibError, match="square patches"):
        videomae_config(VideoMAE(video_shape=(4, 16, 16), tubelet=(2, 4, 8), dim=8, depth=1, heads=2))
    with pytest.raises(VtlibError, match="hf_model"):
        videomae_from_hf(torch.nn.Linear(2, 2))
    with pytest.raises(VtlibError, match="final_norm"):
        classifier_to_hf(VideoMAEClassifier(video_shape=(4, 16, 16), tubelet=(2, 8, 8), dim=8, depth=1, heads=2,
                                            final_norm=True))


@torch.no_grad()
def test_bench_entry_builds_matching_pair():
    from vtlib.bench import ENTRIES, BenchConfig

    entry = ENTRIES["videomae"]
    cfg = BenchConfig(video_shape=(8, 16, 16), tubelet=(2, 4, 4), dim=16, depth=1, heads=2, batch=2)
    model = entry.build(cfg).eval()
    ref = entry.reference(model).eval()
    x = torch.rand(2, 1, 8, 16, 16)
    assert_close(ref(x), model(x), atol=1e-5, rtol=1e-5)
