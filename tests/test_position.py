"""Tests for vtlib.position (learned, sin-cos, space/time codes, resizing)."""
import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from vtlib.errors import VtlibError
from vtlib.position import (
    FixedPosition,
    LearnedPosition,
    NoPosition,
    SpaceTimePosition,
    make_position,
    resize_time,
    sincos_1d,
    sincos_3d,
    sincos_at,
)


def independent_sincos(n, d):
    """The textbook formula, written element by element (no shared code with vtlib)."""
    table = torch.zeros(n, d, dtype=torch.float64)
    for pos in range(n):
        for j in range(d):
            angle = pos / math.pow(10000, 2 * (j // 2) / d)
            table[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return table.float()


# ---- sin-cos tables ------------------------------------------------------------------------

@pytest.mark.parametrize("n,d", [(16, 8), (49, 30), (5, 7)])
def test_sincos_1d_formula(n, d):
    table = sincos_1d(n, d)
    assert table.shape == (n, d) and table.dtype == torch.float32
    assert_close(table, independent_sincos(n, d))


def test_sincos_1d_equals_huggingface_videomae():
    try:
        from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table
    except ImportError:  # pragma: no cover - older/newer transformers without it
        pytest.skip("transformers' videomae get_sinusoid_encoding_table not available; formula test covers it")
    for n, d in ((8 * 49, 48), (27, 64)):
        assert_close(sincos_1d(n, d), get_sinusoid_encoding_table(n, d)[0])


def test_sincos_3d_blocks_and_order():
    grid, dim = (2, 3, 4), 24
    table = sincos_3d(grid, dim)
    assert table.shape == (24, 24)
    d = dim // 3
    t1, h1, w1 = sincos_1d(2, d), sincos_1d(3, d), sincos_1d(4, d)
    for idx, (t, h, w) in enumerate([(t, h, w) for t in range(2) for h in range(3) for w in range(4)]):
        assert_close(table[idx], torch.cat([t1[t], h1[h], w1[w]]))
    # distinct positions get distinct codes
    assert torch.cdist(table, table).add(torch.eye(24) * 10).min() > 1e-3


def test_sincos_at_equals_sincos_3d_on_grid_and_handles_fractions():
    grid, dim = (3, 2, 5), 36
    coords = torch.cartesian_prod(torch.arange(3.0), torch.arange(2.0), torch.arange(5.0))
    assert_close(sincos_at(coords, dim), sincos_3d(grid, dim))
    centre = sincos_at(torch.tensor([[1.5, 0.0, 0.0]]), dim)[0]
    angle = 1.5 / 10000 ** (2 * (torch.arange(12) // 2).double() / 12)
    expected_t = torch.where(torch.arange(12) % 2 == 0, torch.sin(angle), torch.cos(angle)).float()
    assert_close(centre[:12], expected_t)


def test_sincos_errors():
    with pytest.raises(VtlibError, match="dim"):
        sincos_3d((2, 2, 2), 32)
    with pytest.raises(VtlibError, match="dim"):
        sincos_at(torch.zeros(4, 3), 20)
    with pytest.raises(VtlibError, match="coords"):
        sincos_at(torch.zeros(4, 2), 24)
    with pytest.raises(VtlibError, match="grid"):
        sincos_3d((2, 2), 24)
    with pytest.raises(VtlibError, match="num_positions"):
        sincos_1d(0, 8)


# ---- modules -------------------------------------------------------------------------------

def test_learned_position_adds_and_checks():
    pos = LearnedPosition(num_tokens=12, dim=8)
    assert pos.pos.shape == (1, 12, 8) and pos.pos.requires_grad
    assert pos.pos.abs().max() <= 0.04 + 1e-6   # truncated at 2 std
    x = torch.randn(2, 12, 8)
    assert_close(pos(x), x + pos.pos)
    with pytest.raises(VtlibError, match="x: expected \\(B, 12, 8\\)"):
        pos(torch.randn(2, 13, 8))
    with pytest.raises(VtlibError, match="num_frames"):
        pos.with_frames(4)
    with pytest.raises(VtlibError, match="num_frames"):
        LearnedPosition(num_tokens=12, dim=8, num_frames=5)
    assert LearnedPosition(num_tokens=4, dim=2, init_std=0.0).pos.abs().sum() == 0


def test_learned_position_with_frames():
    pos = LearnedPosition(num_tokens=4 * 6, dim=8, num_frames=4)
    fewer = pos.with_frames(2, mode="slice")
    assert fewer.num_tokens == 12 and fewer(torch.zeros(1, 12, 8)).shape == (1, 12, 8)
    assert_close(fewer.pos, pos.pos[:, :12])
    more = pos.with_frames(7)
    assert more.pos.shape == (1, 42, 8) and isinstance(more.pos, nn.Parameter)
    assert_close(more.pos[:, :6], pos.pos[:, :6])            # first frame kept
    assert_close(more.pos[:, -6:], pos.pos[:, -6:])          # last frame kept
    assert pos.pos.shape == (1, 24, 8)                        # the original is untouched


def test_fixed_position_is_a_buffer():
    table = sincos_3d((2, 2, 2), 12)
    pos = FixedPosition(table)
    assert len(list(pos.parameters())) == 0
    assert "pos" in dict(pos.named_buffers()) and "pos" in pos.state_dict()
    x = torch.randn(3, 8, 12)
    assert_close(pos(x), x + table)
    with pytest.raises(VtlibError, match="x"):
        pos(torch.randn(3, 8, 6))
    with pytest.raises(VtlibError, match="table"):
        FixedPosition(torch.zeros(2, 3, 4, 5))


def test_space_time_position_layout():
    st = SpaceTimePosition(num_frames=3, num_patches=4, dim=6)
    x = torch.zeros(2, 12, 6)
    out = st(x)
    for t in range(3):
        for n in range(4):
            assert_close(out[0, t * 4 + n], st.time[t] + st.space[n])
    assert sum(p.numel() for p in st.parameters()) == (3 + 4) * 6
    zero_time = SpaceTimePosition(num_frames=3, num_patches=4, dim=6, time_init="zeros")
    assert zero_time.time.abs().sum() == 0
    assert_close(zero_time(x)[0, 4:8], zero_time.space)      # starts as space-only
    space_only = SpaceTimePosition(num_frames=3, num_patches=4, dim=6, use_time=False)
    assert space_only.time is None and sum(p.numel() for p in space_only.parameters()) == 24
    assert_close(space_only(x)[0, :4], space_only(x)[0, 8:])
    with pytest.raises(VtlibError, match="x"):
        st(torch.zeros(2, 8, 6))
    with pytest.raises(VtlibError, match="time_init"):
        SpaceTimePosition(num_frames=3, num_patches=4, dim=6, time_init="ones")


def test_space_time_position_with_frames():
    st = SpaceTimePosition(num_frames=4, num_patches=5, dim=6)
    more = st.with_frames(8)
    assert more.time.shape == (8, 6) and more(torch.zeros(1, 40, 6)).shape == (1, 40, 6)
    assert_close(more.space, st.space)
    assert_close(more.time[[0, -1]], st.time[[0, -1]])
    fewer = st.with_frames(2, mode="slice")
    assert_close(fewer.time, st.time[:2])
    with pytest.raises(VtlibError, match="new_frames"):
        st.with_frames(5, mode="slice")
    space_only = SpaceTimePosition(num_frames=4, num_patches=5, dim=6, use_time=False)
    assert space_only.with_frames(2)(torch.zeros(1, 10, 6)).shape == (1, 10, 6)


def test_resize_time_layouts_and_errors():
    pos = torch.randn(4, 3, 2)
    assert_close(resize_time(pos, 4), pos)                   # same size: identity
    mid = resize_time(torch.stack([torch.zeros(3, 2), torch.ones(3, 2)]), 3)
    assert_close(mid[1], torch.full((3, 2), 0.5))            # linear in time
    flat = pos.reshape(1, 12, 2)
    assert_close(resize_time(flat, 2, "slice", num_frames=4), pos[:2].reshape(1, 6, 2))
    assert resize_time(flat, 6, num_frames=4).shape == (1, 18, 2)
    with pytest.raises(VtlibError, match="new_frames"):
        resize_time(pos, 5, mode="slice")
    with pytest.raises(VtlibError, match="mode"):
        resize_time(pos, 2, mode="cubic")
    with pytest.raises(VtlibError, match="pos"):
        resize_time(torch.randn(2, 12, 2), 2, num_frames=4)


def test_no_position_and_factory():
    x = torch.randn(2, 2 * 3 * 3, 12)
    assert NoPosition()(x) is x
    grid = (2, 3, 3)
    expected = {"none": NoPosition, "learned": LearnedPosition, "sincos1d": FixedPosition,
                "sincos3d": FixedPosition, "space": SpaceTimePosition, "spacetime": SpaceTimePosition}
    for kind, cls in expected.items():
        module = make_position(kind, grid, 12)
        assert isinstance(module, cls)
        assert module(x).shape == x.shape
    assert_close(make_position("sincos1d", grid, 12)(x), x + sincos_1d(18, 12))
    assert_close(make_position("sincos3d", grid, 12)(x), x + sincos_3d(grid, 12))
    assert make_position("space", grid, 12).time is None
    assert make_position("learned", grid, 12).with_frames(4).num_tokens == 36
    with pytest.raises(VtlibError, match="kind"):
        make_position("rope", grid, 12)


def test_attention_is_permutation_equivariant_without_positions():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0.0,
                                       batch_first=True).eval()
    x, perm = torch.randn(2, 6, 16), torch.randperm(6)
    while torch.equal(perm, torch.arange(6)):
        perm = torch.randperm(6)
    with torch.no_grad():
        assert_close(layer(x[:, perm]), layer(x)[:, perm], rtol=1e-5, atol=1e-5)
        pos = LearnedPosition(num_tokens=6, dim=16, init_std=1.0)
        with_pos = layer(pos(x[:, perm]))
        assert not torch.allclose(with_pos, layer(pos(x))[:, perm], atol=1e-3)
