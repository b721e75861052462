"""Tests for vtlib.tokens (patches, tubelets, frame sampling) and the notebook 01 exercise checks."""
import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from vtlib.errors import VtlibError
from vtlib.tokens import (
    FrameEmbed,
    TubeletEmbed,
    central_frame_2d,
    inflate_2d,
    linear_from_conv3d,
    patchify,
    token_grid,
    token_table,
    unpatchify,
    valid_grid,
)


def video(b=2, c=1, t=8, h=12, w=12, seed=0):
    return torch.randn(b, c, t, h, w, generator=torch.Generator().manual_seed(seed))


# ---- grids and the token table -------------------------------------------------------------

def test_token_grid_values():
    assert token_grid((28, 28, 28), (2, 4, 4)) == (14, 7, 7)
    assert token_grid((28, 28, 28), 7) == (4, 4, 4)
    assert token_grid(torch.Size([3, 1, 16, 32, 48]), (4, 8, 16)) == (4, 4, 3)


@pytest.mark.parametrize("tub", [(8, 8, 8), (3, 4, 4), (2, 5, 4)])
def test_token_grid_refuses_to_drop_voxels(tub):
    with pytest.raises(VtlibError, match="tubelet"):
        token_grid((28, 28, 28), tub)


@pytest.mark.parametrize("tub", [(2, 4), (0, 4, 4), "abc", (2.0, 4, 4)])
def test_token_grid_bad_tubelet(tub):
    with pytest.raises(VtlibError, match="tubelet"):
        token_grid((28, 28, 28), tub)


def test_valid_grid_keras_pitfall():
    grid, cov = valid_grid((28, 28, 28), (8, 8, 8))
    assert grid == (3, 3, 3) and math.prod(grid) == 27
    assert round(cov, 2) == 0.63 and cov == pytest.approx((24 / 28) ** 3)
    assert valid_grid((28, 28, 28), (4, 4, 4)) == ((7, 7, 7), 1.0)
    with pytest.raises(VtlibError, match="tubelet"):
        valid_grid((4, 28, 28), (8, 8, 8))


def test_token_table_matches_course_reference():
    rows = {(r["size"], r["tubelet"]): r for r in token_table()}
    expected = {(1, 4, 4): 1372, (2, 4, 4): 686, (4, 4, 4): 343, (1, 7, 7): 448, (2, 7, 7): 224,
                (4, 7, 7): 112, (7, 7, 7): 64, (8, 8, 8): 27, (2, 14, 14): 56}
    for tub, n in expected.items():
        r = rows[(28, tub)]
        assert r["tokens"] == n
        assert r["coverage"] == (1.0 if tub != (8, 8, 8) else pytest.approx(0.6297, abs=1e-4))
    assert rows[(28, (8, 8, 8))]["divisible"] is False and rows[(28, (8, 8, 8))]["grid"] == (3, 3, 3)
    assert rows[(64, (8, 8, 8))]["tokens"] == 512 and rows[(64, (8, 8, 8))]["coverage"] == 1.0
    assert len(token_table(video_sizes=(28,), tubelets=[(2, 4, 4)])) == 1


# ---- patchify / unpatchify -----------------------------------------------------------------

def test_patchify_shape_order_and_roundtrip():
    x = video(c=2)
    tok = patchify(x, (2, 4, 4))
    assert tok.shape == (2, 4 * 3 * 3, 2 * 2 * 4 * 4)
    # token 1 is (t=0, h=0, w=1); its vector is channel-major (c t p1 p2)
    assert_close(tok[:, 1], x[:, :, 0:2, 0:4, 4:8].flatten(1))
    # token 3 is (t=0, h=1, w=0): (t h w) order, w fastest
    assert_close(tok[:, 3], x[:, :, 0:2, 4:8, 0:4].flatten(1))
    assert_close(unpatchify(tok, (8, 12, 12), (2, 4, 4)), x)
    assert_close(unpatchify(tok, (2, 8, 12, 12), (2, 4, 4)), x)


def test_patchify_errors():
    with pytest.raises(VtlibError, match="tubelet"):
        patchify(video(), (3, 4, 4))
    with pytest.raises(VtlibError, match="video"):
        patchify(torch.randn(8, 12, 12), (2, 4, 4))
    with pytest.raises(VtlibError, match="tokens"):
        unpatchify(torch.randn(2, 10, 32), (8, 12, 12), (2, 4, 4))


# ---- TubeletEmbed and its linear view ------------------------------------------------------

def test_tubelet_embed_shape_and_order():
    emb = TubeletEmbed(dim=16, tubelet=(2, 4, 4), in_channels=1)
    x = video()
    out = emb(x)
    assert out.shape == (2, 36, 16)
    assert emb.grid(x.shape) == (4, 3, 3) and emb.num_tokens((8, 12, 12)) == 36
    assert_close(out, emb.proj(x).flatten(2).transpose(1, 2))
    assert_close(out[:, 1], emb.proj(x)[:, :, 0, 0, 1])  # token 1 = (t=0, h=0, w=1)


def test_linear_on_patchify_equals_conv3d():
    emb = TubeletEmbed(dim=8, tubelet=(2, 4, 4), in_channels=3)
    x = video(c=3)
    lin = linear_from_conv3d(emb)
    assert lin.weight.shape == (8, 3 * 2 * 4 * 4)
    assert_close(lin(patchify(x, emb.tubelet)), emb(x), rtol=1e-5, atol=1e-5)
    # the same thing written out: weight.flatten(1) is the (c t p1 p2) order
    manual = patchify(x, (2, 4, 4)) @ emb.proj.weight.flatten(1).T + emb.proj.bias
    assert_close(manual, emb(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: TubeletEmbed(dim=8, tubelet=(2, 4, 4), in_channels=3),
    lambda: FrameEmbed(dim=8, patch=4, in_channels=3, frame_stride=2),
], ids=["tubelet", "frame"])
def test_training_path_equals_the_conv_in_values_and_gradients(make):
    """With gradients on, the embeddings run the conv's Linear view (a faster backward); without,
    the conv. Both must give the same tokens, and the Linear view the conv's weight gradients."""
    emb, x = make(), video(c=3)
    with torch.no_grad():
        conv_tokens = emb(x)                                   # the conv path
    tokens = emb(x)                                            # the Linear view (grad enabled)
    assert tokens.requires_grad and tokens.shape == conv_tokens.shape
    assert_close(tokens, conv_tokens, rtol=1e-5, atol=1e-5)
    g = torch.randn(tokens.shape, generator=torch.Generator().manual_seed(1))
    grads = torch.autograd.grad(tokens, [emb.proj.weight, emb.proj.bias], g)
    # the reference: the plain conv, its output laid out as tokens, and autograd through it
    frames = x if isinstance(emb, TubeletEmbed) else x[:, :, emb.offset::emb.frame_stride].transpose(1, 2).flatten(0, 1)
    ref = emb.proj(frames)
    ref = ref.flatten(2).transpose(1, 2) if isinstance(emb, TubeletEmbed) else \
        ref.flatten(2).transpose(1, 2).reshape(tokens.shape)
    assert_close(ref, conv_tokens, rtol=1e-5, atol=1e-5)
    ref_grads = torch.autograd.grad(ref, [emb.proj.weight, emb.proj.bias], g)
    for a, b in zip(grads, ref_grads):
        assert_close(a, b, rtol=1e-4, atol=1e-4)
    emb.proj.weight.requires_grad_(False)                      # frozen: the conv path even with grad on
    assert_close(emb(x), conv_tokens)


def test_tubelet_embed_errors():
    emb = TubeletEmbed(dim=8, tubelet=(2, 4, 4))
    with pytest.raises(VtlibError, match="tubelet"):
        emb(video(t=7))
    with pytest.raises(VtlibError, match="x: expected a 5-D"):
        emb(torch.randn(8, 12, 12, 1))
    with pytest.raises(VtlibError, match="channel"):
        emb(video(c=3))
    with pytest.raises(VtlibError, match="float"):
        emb(torch.zeros(1, 1, 8, 12, 12, dtype=torch.uint8))
    with pytest.raises(VtlibError, match="dim"):
        TubeletEmbed(dim=0)
    with pytest.raises(VtlibError, match="embed"):
        linear_from_conv3d(nn.Linear(2, 2))


# ---- 2D -> 3D initialisations and uniform frame sampling ------------------------------------

def test_inflate_and_central_values():
    w = torch.randn(4, 2, 3, 3)
    inf, cen = inflate_2d(w, 3), central_frame_2d(w, 4)
    assert inf.shape == (4, 2, 3, 3, 3) and cen.shape == (4, 2, 4, 3, 3)
    assert_close(inf.sum(2), w)
    assert_close(inf[:, :, 1], w / 3)
    assert_close(cen[:, :, 2], w)
    assert cen[:, :, [0, 1, 3]].abs().sum() == 0
    assert_close(central_frame_2d(w, 1)[:, :, 0], w)
    with pytest.raises(VtlibError, match="t"):
        inflate_2d(w, 0)
    with pytest.raises(VtlibError, match="weight2d"):
        central_frame_2d(torch.randn(4, 3, 3), 2)


@pytest.mark.parametrize("t", [1, 2, 3, 4])
def test_central_frame_init_equals_uniform_frame_sampling(t):
    torch.manual_seed(t)
    frames = FrameEmbed(dim=16, patch=4, in_channels=2, frame_stride=t)
    assert frames.offset == t // 2
    tube = TubeletEmbed.from_2d(frames.proj, t, init="central")
    assert tube.tubelet == (t, 4, 4)
    x = video(c=2, t=12)
    assert frames.grid(x.shape) == tube.grid(x.shape) == (12 // t, 3, 3)
    assert_close(tube(x), frames(x), rtol=1e-5, atol=1e-5)


def test_inflate_init_on_static_video_equals_2d_embedding():
    frames = FrameEmbed(dim=8, patch=4, frame_stride=1)
    tube = TubeletEmbed.from_2d(frames.proj, 4, init="inflate")
    still = video(t=1).expand(-1, -1, 8, -1, -1)          # the same frame 8 times
    out2d = frames(still)                                   # (B, 8*9, D): every frame identical
    assert_close(tube(still), out2d[:, :18], rtol=1e-5, atol=1e-5)


def test_frame_embed_sampling_and_errors():
    fe = FrameEmbed(dim=8, patch=4, frame_stride=3, offset=0)
    x = video(t=8)
    assert fe.grid(x.shape) == (3, 3, 3)                    # frames 0, 3, 6
    out = fe(x)
    assert out.shape == (2, 27, 8)
    assert_close(out[:, 9:18], fe.proj(x[:, :, 3]).flatten(2).transpose(1, 2))  # second kept frame
    with pytest.raises(VtlibError, match="patch"):
        fe(video(h=10))
    with pytest.raises(VtlibError, match="offset"):
        FrameEmbed(dim=8, patch=4, offset=-1)
    with pytest.raises(VtlibError, match="offset"):
        FrameEmbed(dim=8, patch=4, frame_stride=2, offset=5)(video(t=4))
    with pytest.raises(VtlibError, match="frame_stride"):
        FrameEmbed(dim=8, patch=4, frame_stride=0)


def test_from_2d_validation_and_bias():
    conv = nn.Conv2d(1, 8, kernel_size=4, stride=4, bias=False)
    assert TubeletEmbed.from_2d(conv, 2, init="inflate").proj.bias is None
    with pytest.raises(VtlibError, match="init"):
        TubeletEmbed.from_2d(conv, 2, init="random")
    with pytest.raises(VtlibError, match="conv2d"):
        TubeletEmbed.from_2d(nn.Conv2d(1, 8, kernel_size=4, stride=2), 2)
