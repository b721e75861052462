"""ViViT Model 1 assembled from vtlib's components: shapes, token counts, options, errors."""
import pytest
import torch

from vtlib.attention import record_attention
from vtlib.errors import VtlibError
from vtlib.models.vivit import ViViT
from vtlib.tokens import FrameEmbed, TubeletEmbed


@pytest.mark.parametrize("pool, extra", [("cls", 1), ("mean", 0), ("attn", 0)])
def test_shapes_and_token_count(pool, extra):
    m = ViViT(num_classes=3, tubelet=(4, 7, 7), dim=32, depth=2, heads=4, pool=pool).eval()
    x = torch.randn(2, 1, 28, 28, 28)
    with torch.no_grad(), record_attention(m) as maps:
        logits = m(x)
    assert logits.shape == (2, 3)
    with torch.no_grad():
        torch.testing.assert_close(logits, m(x))                  # recording does not change the logits
    assert maps.names == ["encoder.blocks.0.attn", "encoder.blocks.1.attn"]
    assert m.num_tokens == 7 * 4 * 4 + extra
    assert len(maps) == 2 and maps[0].shape == (2, 4, m.num_tokens, m.num_tokens)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 4, m.num_tokens))


def test_frame_embedding_matches_tubelet_token_count():
    a = ViViT(tubelet=(4, 7, 7), dim=32, depth=1, embed="frame")
    b = ViViT(tubelet=(4, 7, 7), dim=32, depth=1, embed="tubelet")
    assert isinstance(a.embed, FrameEmbed) and isinstance(b.embed, TubeletEmbed)
    assert a.num_tokens == b.num_tokens


@pytest.mark.parametrize("position", ["none", "learned", "sincos1d", "sincos3d", "space", "spacetime"])
def test_every_position_kind_runs(position):
    m = ViViT(dim=48, depth=1, heads=4, position=position)
    assert m(torch.randn(1, 1, 28, 28, 28)).shape == (1, 2)


def test_64_cube_and_backward():
    m = ViViT(video_shape=(64, 64, 64), tubelet=(8, 16, 16), dim=32, depth=1, heads=2)
    x = torch.randn(2, 1, 64, 64, 64)
    m(x).sum().backward()
    assert m.embed.proj.weight.grad is not None and m.pool.token.grad is not None


def test_eval_is_deterministic_and_batch_independent():
    m = ViViT(dim=32, depth=2, heads=2).eval()
    x = torch.randn(4, 1, 28, 28, 28)
    torch.testing.assert_close(m(x)[1:2], m(x[1:2]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kw, arg", [
    ({"tubelet": (4, 8, 8)}, "tubelet|video_shape"),
    ({"embed": "conv"}, "embed"),
    ({"pool": "max"}, "kind"),
    ({"position": "rope"}, "kind"),
    ({"num_classes": 0}, "num_classes"),
    ({"embed": "frame", "tubelet": (4, 7, 4)}, "tubelet"),
])
def test_bad_config(kw, arg):
    with pytest.raises(VtlibError, match=arg):
        ViViT(dim=32, depth=1, **kw)


def test_wrong_clip_shape_is_explained():
    m = ViViT(dim=32, depth=1)
    with pytest.raises(VtlibError, match=r"^x: expected clips shaped \(B, C, 28, 28, 28\)"):
        m(torch.randn(1, 1, 14, 28, 28))
