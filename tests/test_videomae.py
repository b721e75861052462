"""Tests for vtlib.models.videomae: shapes, the visible-only encoder, decoder, targets, loss,
reconstruction, fine-tuning model, pre-training loop, errors (the notebook 08 exercise checks are
tested in test_exercises_nb08.py)."""
import pytest
import torch
from torch.testing import assert_close
from torch.utils.data import DataLoader, TensorDataset

from vtlib.attention import key_mask
from vtlib.errors import VtlibError
from vtlib.masking import make_mask, masked, visible
from vtlib.models.videomae import VideoMAE, VideoMAEClassifier, patch_targets
from vtlib.position import sincos_1d
from vtlib.pretrain import PretrainConfig, pretrain
from vtlib.tokens import patchify, unpatchify

SMALL = dict(video_shape=(8, 16, 16), tubelet=(2, 4, 4), dim=24, depth=2, heads=3)   # grid (4, 4, 4), N = 64


def clips(b=3, c=1, shape=(8, 16, 16), seed=0):
    return torch.rand(b, c, *shape, generator=torch.Generator().manual_seed(seed))


def mae(**kw):
    torch.manual_seed(0)
    return VideoMAE(**{**SMALL, "decoder_dim": 16, "decoder_heads": 2, **kw}).eval()


def mask_for(model, b=3, ratio=0.75, kind="tube", seed=1):
    return make_mask(kind, b, model.grid, ratio, torch.Generator().manual_seed(seed))


# ---- shapes ---------------------------------------------------------------------------------

def test_shapes_through_the_autoencoder():
    m, x = mae(), clips()
    mask = mask_for(m)                                                    # 12 of 16 per frame, 48 of 64
    assert m.grid == (4, 4, 4) and m.num_tokens == 64
    assert m.encoder(x).shape == (3, 64, 24)
    assert m.encoder(x, mask).shape == (3, 16, 24)
    loss, pred = m(x, mask)
    assert loss.ndim == 0 and pred.shape == (3, 48, 2 * 4 * 4)
    assert m.reconstruct(x, mask).shape == x.shape


def test_positions_are_fixed_sincos_tables_not_saved():
    m = mae()
    assert_close(m.encoder.pos[0], sincos_1d(64, 24))
    assert_close(m.decoder.pos[0], sincos_1d(64, 16))
    keys = m.state_dict().keys()
    assert "encoder.pos" not in keys and "decoder.pos" not in keys and "decoder.mask_token" in keys
    assert not any(k.endswith("pos") for k, _ in m.named_parameters())


# ---- the encoder sees only visible tokens ---------------------------------------------------

def test_visible_only_encoder_equals_full_encoder_with_masked_keys():
    """Dropping masked tokens = keeping them but forbidding attention to them (at the visible rows)."""
    m, x = mae(), clips()
    mask = mask_for(m, ratio=0.5, kind="random")
    enc = m.encoder
    tokens = enc.embed(x) + enc.pos
    full = enc.transformer(tokens, mask=key_mask(~mask))                  # (B, N, D), masked keys ignored
    assert_close(enc(x, mask), visible(full, mask), atol=1e-5, rtol=1e-5)


def test_encoder_output_depends_only_on_visible_pixels():
    m, x = mae(), clips()
    mask = mask_for(m)
    hidden = patchify(torch.ones_like(x), m.tubelet) * mask[..., None]     # 1 inside masked tubelets
    y = x + torch.rand_like(x) * unpatchify(hidden, x.shape[1:], m.tubelet)   # change masked pixels only
    assert_close(m.encoder(x, mask), m.encoder(y, mask))
    assert not torch.allclose(m(x, mask)[0], m(y, mask)[0])               # the targets did change


def test_k_bias_never_changes_the_output():
    m, x = mae(), clips()
    before = m.encoder(x)
    with torch.no_grad():
        for b in m.encoder.transformer.blocks:
            d = b.dim
            b.attn.qkv.bias[d:2 * d].normal_(0, 3.0)
    assert_close(m.encoder(x), before, atol=1e-5, rtol=1e-5)


# ---- decoder --------------------------------------------------------------------------------

def test_decoder_concatenation_equals_decoding_in_token_order():
    """HF's shortcut: [visible | mask tokens] instead of the (t h w) order changes nothing."""
    m, x = mae(decoder_depth=2), clips()
    mask = mask_for(m, kind="random", ratio=0.6)
    dec = m.decoder
    latent = dec.proj(m.encoder(x, mask))                                 # (B, Nv, Dd)
    full = dec.mask_token.expand(3, 64, -1).clone()
    full[~mask] = latent.reshape(-1, dec.dim)
    full = full + dec.pos                                                 # (B, N, Dd) in (t h w) order
    ordered = dec.head(dec.norm(masked(dec.transformer(full), mask)))
    assert_close(m(x, mask)[1], ordered, atol=1e-5, rtol=1e-5)


def test_mask_tokens_only_know_their_position():
    m = mae()
    with torch.no_grad():
        out = m.decoder.mask_token + masked(m.decoder.pos.expand(3, -1, -1), mask_for(m))
    assert out.shape == (3, 48, 16)


# ---- targets and loss -----------------------------------------------------------------------

def test_patch_targets_normalised_per_tubelet_with_unbiased_std():
    x = clips(2, c=2)
    t = patch_targets(x, (2, 4, 4)).unflatten(-1, (2, -1))                # (B, N, C, 32)
    raw = patchify(x, (2, 4, 4)).unflatten(-1, (2, -1))
    assert_close(t.mean(-1), torch.zeros(t.shape[:-1]), atol=1e-5, rtol=0)
    std = raw.std(-1, unbiased=True)
    assert_close(t.std(-1, unbiased=True), std / (std + 1e-6))
    assert_close(patch_targets(x, (2, 4, 4), normalize=False), patchify(x, (2, 4, 4)))
    const = torch.ones(1, 1, 2, 4, 4)
    assert torch.equal(patch_targets(const, (2, 4, 4)), torch.zeros(1, 1, 32))   # empty background -> 0


def test_loss_is_mse_on_masked_tubelets_only():
    for norm in (True, False):
        m, x = mae(norm_pix_loss=norm), clips()
        mask = mask_for(m)
        loss, pred = m(x, mask)
        target = patch_targets(x, m.tubelet, normalize=norm)[mask].reshape(3, 48, -1)
        assert_close(loss, ((pred - target) ** 2).mean())


def test_loss_backpropagates_to_encoder_and_decoder():
    m = mae().train()
    loss, _ = m(clips(), mask_for(m))
    loss.backward()
    assert m.encoder.embed.proj.weight.grad.abs().sum() > 0
    assert m.decoder.mask_token.grad.abs().sum() > 0


def test_reconstruct_keeps_visible_voxels_and_fills_masked_ones():
    m, x = mae(), clips()
    mask = mask_for(m)
    r = m.reconstruct(x, mask)
    vis = ~patchify(torch.zeros_like(x), m.tubelet).bool() & ~mask[..., None]
    assert torch.equal(patchify(r, m.tubelet)[vis.expand(-1, -1, 32)], patchify(x, m.tubelet)[vis.expand(-1, -1, 32)])
    assert not torch.equal(r, x)


# ---- fine-tuning model ----------------------------------------------------------------------

def test_classifier_from_pretrained_copies_encoder_and_mean_pools():
    m, x = mae(), clips()
    c = VideoMAEClassifier.from_pretrained(m, num_classes=3).eval()
    for (k1, v1), (k2, v2) in zip(m.encoder.state_dict().items(), c.encoder.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    assert c(x).shape == (3, 3)
    assert_close(c.features(x), c.fc_norm(m.encoder(x).mean(1)))
    assert not any("decoder" in k for k in c.state_dict())
    scratch = VideoMAEClassifier(num_classes=3, **SMALL)
    assert sum(p.numel() for p in scratch.parameters()) == sum(p.numel() for p in c.parameters())


def test_classifier_has_no_cls_token():
    c = VideoMAEClassifier(**SMALL)
    assert c.encoder(clips()).shape[1] == 64                              # N tokens, not N + 1


# ---- pre-training loop ----------------------------------------------------------------------

def _loader():
    x = clips(8)
    return DataLoader(TensorDataset(x, torch.zeros(8, dtype=torch.long)), batch_size=4, shuffle=True,
                      generator=torch.Generator().manual_seed(0))


def test_pretrain_is_reproducible_and_learns():
    cfg = PretrainConfig(epochs=4, lr=3e-3, warmup_epochs=1, device="cpu", progress=False, mask_ratio=0.5)
    runs = []
    for _ in range(2):
        m = mae()
        hist = pretrain(m, _loader(), cfg)
        runs.append((hist, m.state_dict()))
    (h1, s1), (h2, s2) = runs
    assert [h["loss"] for h in h1] == [h["loss"] for h in h2]
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert h1[-1]["loss"] < h1[0]["loss"]
    assert set(h1[0]) == {"epoch", "loss", "lr", "seconds"}


# ---- errors ---------------------------------------------------------------------------------

def test_errors_name_the_argument():
    m, x = mae(), clips()
    with pytest.raises(VtlibError, match="x"):
        m.encoder(clips(shape=(8, 12, 12)))
    with pytest.raises(VtlibError, match="mask"):
        m(x, torch.zeros(3, 10, dtype=torch.bool))
    bad = torch.zeros(3, 64, dtype=torch.bool)
    bad[0, 0] = True
    with pytest.raises(VtlibError, match="same number of masked tokens"):
        m(x, bad)
    with pytest.raises(VtlibError, match="at least one masked token"):
        m(x, torch.zeros(3, 64, dtype=torch.bool))
    with pytest.raises(VtlibError, match="latent"):
        m.decoder(torch.zeros(3, 5, 24), mask_for(m))
    with pytest.raises(VtlibError, match="mae"):
        VideoMAEClassifier.from_pretrained(torch.nn.Linear(2, 2))
    with pytest.raises(VtlibError, match="mask_kind"):
        PretrainConfig(mask_kind="block")
    with pytest.raises(VtlibError, match="mask_ratio"):
        PretrainConfig(mask_ratio=1.0)
    with pytest.raises(VtlibError, match="model"):
        pretrain(torch.nn.Linear(2, 2), _loader(), PretrainConfig(epochs=1))
    with pytest.raises(VtlibError, match="tubelet"):
        patch_targets(torch.rand(1, 1, 2, 2, 2), (1, 1, 1))
