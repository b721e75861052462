"""Sparse tubes: token counts, tube centres, the tokenizer, positions, presets and error messages."""
import math

import pytest
import torch
import torch.nn.functional as F

from vtlib.errors import VtlibError
from vtlib.position import sincos_at
from vtlib.tubes import (
    PAPER_TUBES,
    PAPER_VIDEO,
    Tube,
    TubePosition,
    TubeTokenizer,
    rescale_tubes,
    tube_centres,
    tube_coverage,
    tube_grid,
    tube_indices,
    tube_preset,
    tube_table,
)


def test_paper_token_count_is_539_not_559():
    counts = [t.num_tokens(PAPER_VIDEO) for t in PAPER_TUBES]
    assert counts == [98, 147, 98, 196]
    assert sum(counts) == 539
    # every tube has a 7x7 or 14x14 spatial grid, so any total is a multiple of 49; 559 is not
    assert all(c % 49 == 0 for c in counts) and 559 % 49 == 20


@pytest.mark.parametrize("size, counts", [(28, [16, 28, 16, 16]), (64, [16, 32, 16, 16])])
def test_preset_counts(size, counts):
    tubes = tube_preset(size)
    assert [t.num_tokens((size,) * 3) for t in tubes] == counts
    assert TubeTokenizer(dim=6, tubes=tubes).num_tokens((size,) * 3) == sum(counts)
    assert [len(tube_preset(size, n)) for n in (1, 2, 4)] == [1, 2, 4]
    assert tube_preset(size, 2)[1].is_2d and not tube_preset(size, 1)[0].is_2d


def test_64_preset_is_the_paper_table_with_the_middle_frame_and_28_is_7_16_of_it():
    assert tube_preset(64)[:3] == PAPER_TUBES[:3]
    assert tube_preset(64)[3] == Tube((1, 16, 16), (32, 16, 16), (32, 0, 0))
    assert tube_preset(28) == rescale_tubes(tube_preset(64), 7 / 16)
    assert tube_preset(28)[0] == Tube((4, 4, 4), (7, 14, 14), (0, 0, 0))
    assert rescale_tubes(PAPER_TUBES, 1) == PAPER_TUBES


@pytest.mark.parametrize("kernel, stride, offset, shape", [
    ((3, 2, 5), (4, 3, 2), (1, 0, 2), (11, 9, 13)), ((1, 4, 4), (9, 4, 4), (0, 0, 0), (9, 8, 8)),
    ((5, 1, 3), (1, 7, 2), (2, 3, 0), (8, 10, 7)), ((2, 2, 2), (2, 2, 2), (0, 0, 0), (6, 6, 6))])
def test_grid_formula_matches_conv3d(kernel, stride, offset, shape):
    tube = Tube(kernel, stride, offset)
    expect = tuple((d - o - k) // s + 1 for d, k, s, o in zip(shape, kernel, stride, offset))
    assert tube_grid(shape, tube) == expect
    x = torch.randn(1, 1, *shape)
    y = F.conv3d(x[:, :, offset[0]:, offset[1]:, offset[2]:], torch.randn(2, 1, *kernel), stride=stride)
    assert tuple(y.shape[2:]) == expect


def test_centres_are_the_mean_coordinate_of_each_window():
    tube, shape = Tube((4, 3, 2), (5, 4, 3), (1, 2, 0)), (15, 12, 10)
    centres = tube_centres(shape, tube)                               # (N, 3)
    assert centres.shape == (tube.num_tokens(shape), 3)
    coords = torch.stack(torch.meshgrid(*[torch.arange(d, dtype=torch.float64) for d in shape],
                                        indexing="ij"))               # (3, T, H, W)
    box = torch.full((1, 1, *tube.kernel), 1 / math.prod(tube.kernel), dtype=torch.float64)
    ot, oh, ow = tube.offset
    means = F.conv3d(coords[:, None, ot:, oh:, ow:], box, stride=tube.stride)   # (3, 1, nt, nh, nw)
    torch.testing.assert_close(centres.double(), means.flatten(1).T)


def test_centre_values_and_indices():
    tube = tube_preset(28)[0]                                          # k 4x4x4, s 7x14x14, o 0
    c = tube_centres((28, 28, 28), tube)
    assert c[:, 0].unique().tolist() == [1.5, 8.5, 15.5, 22.5]
    assert c[:, 1].unique().tolist() == [1.5, 15.5]
    idx = tube_indices((28, 28, 28), tube)
    assert idx[:5].tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0]]   # (t h w) order


def test_tokenizer_equals_one_conv_per_tube_in_order():
    torch.manual_seed(0)
    tubes = tube_preset(28)
    tok = TubeTokenizer(dim=12, tubes=tubes)
    x = torch.randn(2, 1, 28, 28, 28)
    out = tok(x)
    parts = []
    for t, conv in zip(tubes, tok.convs):
        ot, oh, ow = t.offset
        y = F.conv3d(x[:, :, ot:, oh:, ow:], conv.weight, conv.bias, stride=t.stride)
        parts.append(y.flatten(2).transpose(1, 2))
    torch.testing.assert_close(out, torch.cat(parts, 1))
    assert out.shape == (2, 76, 12)
    assert tok.centres((28, 28, 28)).shape == (76, 3) and tok.indices((28, 28, 28)).shape == (76, 3)


def test_single_frame_uses_the_2d_tube_and_sits_at_its_frame():
    torch.manual_seed(0)
    tok = TubeTokenizer(dim=12, tubes=tube_preset(28))
    x = torch.randn(2, 1, 28, 28, 28)
    frame = x[:, :, 14:15]                                             # the frame the 2D tube reads
    torch.testing.assert_close(tok(frame), tok(x)[:, 60:])             # last tube = the 2D tube
    torch.testing.assert_close(tok.centres((1, 28, 28)), tok.centres((28, 28, 28))[60:])
    assert Tube((1, 7, 7), (14, 7, 7), (14, 0, 0)).for_image() == Tube((1, 7, 7), (1, 7, 7), (0, 0, 0))


def test_coverage():
    assert tube_coverage((8, 8, 8), [Tube(2, 2)]).all()
    assert round(tube_coverage(PAPER_VIDEO, PAPER_TUBES).float().mean().item(), 3) == 0.105
    rows = tube_table((28, 28, 28), tube_preset(28))
    assert [r["tokens"] for r in rows] == [16, 28, 16, 16] and rows[0]["weights"] == 64
    assert rows[0]["coverage"] == round((4 * 4 * 4 * 2 * 2) / 28 ** 2 * 4 / 28, 4)


def test_positions_fixed_index_learned_none():
    tubes, shape, d = tube_preset(28), (28, 28, 28), 12
    tok = TubeTokenizer(dim=d, tubes=tubes)
    x = torch.zeros(1, 76, d)
    fixed = TubePosition(kind="fixed", tubes=tubes, video_shape=shape, dim=d)
    torch.testing.assert_close(fixed(x)[0], sincos_at(tok.centres(shape), d))
    torch.testing.assert_close(fixed(torch.zeros(1, 16, d), image=True)[0], sincos_at(tok.centres((1, 28, 28)), d))
    index = TubePosition(kind="fixed-index", tubes=tubes, video_shape=shape, dim=d)
    torch.testing.assert_close(index(x)[0], sincos_at(tok.indices(shape), d))
    # with centres every token has its own code; with grid indices tubes share codes
    assert fixed(x)[0].unique(dim=0).shape[0] == 76
    assert index(x)[0].unique(dim=0).shape[0] == 40                   # 7x2x2 and 1x4x4 grids, 4 shared
    learned = TubePosition(kind="learned", tubes=tubes, video_shape=shape, dim=d)
    torch.testing.assert_close(learned(torch.zeros(1, 16, d), image=True), learned.pos[:, 60:])
    assert sum(p.numel() for p in learned.parameters()) == 76 * d
    assert torch.equal(TubePosition(kind="none", tubes=tubes, video_shape=shape, dim=d)(x), x)
    assert not list(fixed.parameters()) and "video_table" not in fixed.state_dict()


@pytest.mark.parametrize("kwargs, name", [
    (dict(kernel=(0, 4, 4), stride=2), "kernel"), (dict(kernel=4, stride=(2, 0, 2)), "stride"),
    (dict(kernel=4, stride=(2, -1, 2)), "stride"), (dict(kernel=4, stride=(2.0, 2, 2)), "stride"),
    (dict(kernel=4, stride=(2, 2)), "stride"), (dict(kernel=4, stride=2, offset=(0, -1, 0)), "offset")])
def test_bad_tube_arguments(kwargs, name):
    with pytest.raises(VtlibError, match=f"^{name}:"):
        Tube(**kwargs)


def test_tube_larger_than_input_and_offset_outside():
    with pytest.raises(VtlibError, match=r"^kernel:.*must fit.*offset 16 \+ kernel 16 = 32"):
        tube_grid((28, 28, 28), Tube((4, 16, 16), (8, 8, 8), (0, 16, 16)))
    assert TubeTokenizer(dim=6, tubes=PAPER_TUBES).num_tokens((28, 28, 28)) == 7   # they fit 28^3, barely
    with pytest.raises(VtlibError, match="^kernel:.*along T"):
        TubeTokenizer(dim=6, tubes=PAPER_TUBES)(torch.zeros(1, 1, 16, 28, 28))   # 4 + 16 frames > 16
    with pytest.raises(VtlibError, match="^offset:"):
        tube_grid((8, 8, 8), Tube(1, 1, (8, 0, 0)))


def test_other_errors():
    with pytest.raises(VtlibError, match="^tubes:"):
        TubeTokenizer(dim=6, tubes=[])
    with pytest.raises(VtlibError, match="^tube:"):
        TubeTokenizer(dim=6, tubes=["cube"])
    tok = TubeTokenizer(dim=6, tubes=tube_preset(28, 1))                         # no 2D tube
    with pytest.raises(VtlibError, match="^x:.*no 2D tube"):
        tok(torch.zeros(1, 1, 1, 28, 28))
    with pytest.raises(VtlibError, match="^x:"):
        tok(torch.zeros(1, 28, 28, 28))
    with pytest.raises(VtlibError, match="^x:.*channel"):
        tok(torch.zeros(1, 3, 28, 28, 28))
    with pytest.raises(VtlibError, match="^dim:"):
        TubePosition(kind="fixed", tubes=tube_preset(28), video_shape=(28, 28, 28), dim=64)   # 64: not divisible by 6
    with pytest.raises(VtlibError, match="^kind:"):
        TubePosition(kind="relative", tubes=tube_preset(28), video_shape=(28, 28, 28), dim=12)
    with pytest.raises(VtlibError, match="^x:"):
        TubePosition(kind="fixed", tubes=tube_preset(28), video_shape=(28, 28, 28), dim=12)(torch.zeros(1, 75, 12))
    with pytest.raises(VtlibError, match="^size:"):
        tube_preset(32)
    with pytest.raises(VtlibError, match="^factor:"):
        rescale_tubes(PAPER_TUBES, 0)
    with pytest.raises(VtlibError, match="^factor:"):
        rescale_tubes(PAPER_TUBES, (1, True, 1))
    with pytest.raises(VtlibError, match="^tube:"):
        PAPER_TUBES[0].for_image()


@pytest.mark.parametrize("call", [
    lambda: tube_grid((28, 28, 28), Tube(16, 8, 16)),
    lambda: Tube((4, 4, 4), (2, 2, 2), (0, 0, -1)),
    lambda: TubeTokenizer(dim=6, tubes=tube_preset(28, 1))(torch.zeros(1, 1, 1, 28, 28)),
    lambda: TubePosition(kind="fixed", tubes=tube_preset(28), video_shape=(28, 28, 28), dim=12)(torch.zeros(1, 16, 12)),
    lambda: rescale_tubes(PAPER_TUBES, -1)])
def test_messages_name_expected_got_and_fix(call):
    with pytest.raises(VtlibError, match=r"^\w+: expected .+, got .+\. Fix: .+"):
        call()
