"""ConvViT: the recipe's convolutional tokenizer + ViT (shapes, grid, dtypes, errors, weight decay)."""
import pytest
import torch

from vtlib.errors import VtlibError
from vtlib.models.convvit import ConvViT, stem_grid


@pytest.mark.parametrize("size,stem,grid", [(28, (8, 16, 32), (4, 4, 4)), (64, (8, 8, 16, 32), (4, 4, 4)),
                                            (28, (16, 32), (7, 7, 7))])
def test_convvit_shapes_and_grid(size, stem, grid):
    m = ConvViT(video_shape=(size,) * 3, stem=stem, dim=24, depth=1, heads=2)
    assert m.grid == grid == stem_grid((size,) * 3, len(stem))
    assert m.num_tokens == grid[0] * grid[1] * grid[2]
    assert m.tokens(torch.rand(2, 1, size, size, size)).shape == (2, m.num_tokens, 24)
    assert m(torch.rand(2, 1, size, size, size)).shape == (2, 2)


def test_convvit_casts_other_float_dtypes():
    m = ConvViT(stem=(4, 4, 4), dim=12, depth=1, heads=2).eval()
    x = torch.rand(2, 1, 28, 28, 28)
    for dtype in (torch.float64, torch.bfloat16, torch.float16):
        out = m(x.to(dtype))
        assert out.dtype == torch.float32 and out.shape == (2, 2)


@pytest.mark.parametrize("kwargs,x,name", [
    ({}, torch.rand(2, 28, 28, 28), "x"),
    ({}, torch.rand(2, 1, 28, 28, 14), "x"),
    ({}, torch.rand(2, 3, 28, 28, 28), "x"),
    ({}, torch.randint(0, 255, (2, 1, 28, 28, 28), dtype=torch.uint8), "x"),   # raw voxels, not scaled
    ({"stem": ()}, None, "stem"),
    ({"stem": (4, 4, 4, 4, 4)}, None, "video_shape"),
    ({"dim": 30, "heads": 4}, None, "dim|heads"),
])
def test_convvit_clear_errors(kwargs, x, name):
    with pytest.raises(VtlibError, match=name):
        m = ConvViT(**{"stem": (4, 4, 4), "dim": 12, "depth": 1, "heads": 2, **kwargs})
        m(x)


def test_no_decay_covers_convvit_position_table():
    from vtlib.train import param_groups

    m = ConvViT(stem=(4, 4, 4), dim=12, depth=1, heads=2)
    no_decay = {id(p) for p in param_groups(m, 0.05)[1]["params"]}
    assert id(m.pos.pos) in no_decay
