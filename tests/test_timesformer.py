"""Tests for vtlib.models.timesformer: the five attention schemes, CLS handling, zero init, counts."""
from __future__ import annotations

import copy

import pytest
import torch
from einops import rearrange
from torch.testing import assert_close

from vtlib.attention import MultiHeadAttention, record_attention
from vtlib.errors import VtlibError
from vtlib.models.timesformer import (
    ATTENTIONS,
    GROUPINGS,
    SCHEMES,
    FactorisedBlock,
    TimeSformer,
    attention_masks,
    group,
    group_ids,
    ungroup,
)

GRID = (4, 4, 4)                        # T=4 frames of 4 x 4 patches (28 x 28, patch 7)
VIDEO = (4, 28, 28)
KW = dict(video_shape=VIDEO, patch=7, dim=16, depth=2, heads=2)
VARIANTS = [(a, False) for a in ATTENTIONS] + [(a, True) for a in SCHEMES]


def _model(attention="divided", seed=0, **kw) -> TimeSformer:
    torch.manual_seed(seed)
    return TimeSformer(attention=attention, **{**KW, **kw}).eval()


def _perturb(model: torch.nn.Module, seed: int = 1, scale: float = 0.2) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def _clips(b=2, seed=0, shape=VIDEO):
    return torch.randn(b, 1, *shape, generator=torch.Generator().manual_seed(seed))


def _recorded(model: TimeSformer, x: torch.Tensor) -> tuple[torch.Tensor, list[dict]]:
    """Logits and, per block, {sub-attention name: weights (B, G, heads, L', L')} via record_attention."""
    with torch.no_grad(), record_attention(model) as maps:
        logits = model(x)
    names = SCHEMES.get(model.attention, (model.attention,))
    assert len(maps) == len(names) * len(model.blocks)             # one map per sub-attention, in order
    by_name, blocks = maps.by_name(), []
    for i in range(len(model.blocks)):
        keys = [f"blocks.{i}.mixers.{n}.attn" for n in names[:-1]] + [f"blocks.{i}.attn"]
        assert maps.names[i * len(names):(i + 1) * len(names)] == keys
        blocks.append({n: rearrange(by_name[k], "(b g) h i j -> b g h i j", b=x.shape[0]) for n, k in zip(names, keys)})
    return logits, blocks


@pytest.mark.parametrize("attention,cls_in_time", VARIANTS)
def test_shapes_and_attention_maps(attention, cls_in_time):
    model = _model(attention, cls_in_time=cls_in_time)
    x = _clips(3)
    logits, maps = _recorded(model, x)
    assert logits.shape == (3, 2) and len(maps) == KW["depth"]
    assert_close(logits, model(x))                        # explicit attention == SDPA path
    names = SCHEMES.get(attention, (attention,))
    assert list(maps[0]) == list(names)
    for w in maps[0].values():                            # (B, G, heads, L, L), rows sum to 1
        assert w.shape[0] == 3 and w.shape[2] == KW["heads"]
        assert_close(w.sum(-1), torch.ones(w.shape[:-1]))


@pytest.mark.parametrize("name", list(GROUPINGS))
def test_grouping_is_a_partition_and_ungroup_inverts_it(name):
    x = torch.randn(2, 64, 8)
    g = group(x, name, GRID)
    assert_close(ungroup(g, name, GRID, 2), x)
    ids = group_ids(name, GRID)
    sizes = torch.bincount(ids)
    assert sizes.numel() * 2 == g.shape[0] and torch.all(sizes == g.shape[1])
    T, nh, nw = GRID
    t, h, w = torch.arange(64) // 16, torch.arange(64) // 4 % 4, torch.arange(64) % 4
    key = {"time": h * 4 + w, "space": t, "width": t * 4 + h, "height": t * 4 + w,
           "local": (h // 2) * 2 + w // 2, "global": (t % 2) * 4 + (h % 2) * 2 + w % 2}[name]
    same = ids[:, None] == ids[None, :]
    assert torch.equal(same, key[:, None] == key[None, :])          # groups = the intended relation


@pytest.mark.parametrize("name", list(GROUPINGS))
def test_grouped_attention_equals_masked_joint_attention(name):
    torch.manual_seed(0)
    attn = MultiHeadAttention(dim=16, heads=2).eval()
    x = torch.randn(2, 64, 16)
    grouped = ungroup(attn(group(x, name, GRID)), name, GRID, 2)
    ids = group_ids(name, GRID)
    assert_close(grouped, attn(x, mask=ids[:, None] == ids[None, :]), atol=1e-5, rtol=1e-5)


def _counted(maps: dict, cls_joined: dict) -> torch.Tensor:
    """Comparisons of every patch query in one block, counted as nonzero attention weights."""
    total = 0
    for name, w in maps.items():
        nz = (w[0, :, 0] > 0).sum(-1)                     # (G, L') nonzero keys per query, head 0
        total = total + (nz[:, 1:] if cls_joined[name] else nz).flatten()
    return total


@pytest.mark.parametrize("attention,cls_in_time", VARIANTS)
def test_comparisons_per_patch_counted_in_the_model(attention, cls_in_time):
    model = _model(attention, cls_in_time=cls_in_time)
    _, maps = _recorded(model, _clips(1))
    T, N = 4, 16
    names = SCHEMES.get(attention, (attention,))
    joined = {n: n == names[-1] or cls_in_time or attention in ("joint", "space") for n in names}
    counts = _counted(maps[0], joined)
    expected = {"joint": N * T + 1, "space": N + 1, "divided": N + T + 1, "axial": T + 4 + 4 + 1,
                "local_global": T * N // 4 + T * N // 8 + 1}[attention] + cls_in_time * (len(names) - 1)
    assert torch.all(counts == expected)
    assert model.comparisons_per_patch() == expected
    masks = attention_masks(attention, model.grid, cls_in_time)
    assert torch.all(sum(m[1:].sum(-1) for m in masks.values()) == expected)
    entries = sum(w[0].numel() for w in maps[0].values())  # score entries of one clip, one block
    assert model.attention_score_entries() == entries * KW["depth"]


def test_paper_counts_at_the_paper_size():
    """N = 196 patches (224 / 16), F = 8 frames: joint 1569, divided 206 (paper's equation)."""
    grid = (8, 14, 14)
    joint = attention_masks("joint", grid)["joint"][1].sum()
    divided = sum(m[1].sum() for m in attention_masks("divided", grid, cls_in_time=True).values())
    reference = sum(m[1].sum() for m in attention_masks("divided", grid).values())
    assert (int(joint), int(divided), int(reference)) == (1569, 206, 205)


def test_zero_init_temporal_branch_contributes_nothing():
    model = _model("divided")
    for block in model.blocks:
        assert torch.count_nonzero(block.mixers["time"].fc.weight) == 0
    x = _clips(2)
    no_time = copy.deepcopy(model)
    for block in no_time.blocks:
        del block.mixers["time"]                          # the temporal branch switched off
    assert_close(model(x), no_time(x), atol=0, rtol=0)
    random_init = _model("divided", temporal_init="default")
    assert not torch.allclose(random_init(x), model(x), atol=1e-4)


def test_zero_init_divided_on_a_still_clip_is_the_image_model():
    divided = _model("divided")
    space = TimeSformer(attention="space", **KW).eval()
    missing, unexpected = space.load_state_dict(divided.state_dict(), strict=False)
    assert missing == [] and all("time" in k for k in unexpected)   # only temporal parts are new
    frame = _clips(2, shape=(1, 28, 28))
    still = frame.expand(-1, -1, 4, -1, -1).contiguous()
    image = TimeSformer(attention="space", **{**KW, "video_shape": (1, 28, 28)}).eval()
    image.load_state_dict(space.state_dict())             # a ViT on one frame
    assert_close(divided(still), image(frame), atol=1e-5, rtol=1e-5)
    assert_close(space(still), image(frame), atol=1e-5, rtol=1e-5)


def test_first_step_gradient_reaches_fc_but_not_the_temporal_attention():
    model = _model("divided").train()
    torch.nn.functional.cross_entropy(model(_clips(4)), torch.tensor([0, 1, 0, 1])).backward()
    t = model.blocks[0].mixers["time"]
    assert t.fc.weight.grad.abs().sum() > 0
    assert t.attn.qkv.weight.grad.abs().sum() == 0 and t.norm.weight.grad.abs().sum() == 0
    assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_space_only_is_blind_to_frame_order_divided_is_not():
    x = _clips(2)
    shuffled = x[:, :, torch.tensor([2, 0, 3, 1])]
    space = _model("space")
    _perturb(space)
    assert_close(space(shuffled), space(x), atol=1e-5, rtol=1e-5)
    for attention in ("divided", "joint"):
        model = _model(attention)
        _perturb(model)                                   # time embedding and temporal fc non-zero
        assert not torch.allclose(model(shuffled), model(x), atol=1e-3)


def test_cls_in_time_changes_the_function_only_once_time_is_mixed():
    ref, paper = _model("divided"), _model("divided", cls_in_time=True)
    assert ref.state_dict().keys() == paper.state_dict().keys()
    x = _clips(2)
    assert_close(ref(x), paper(x), atol=0, rtol=0)        # zero temporal branch: same model at init
    _perturb(ref)
    paper.load_state_dict(ref.state_dict())
    diff = (ref(x) - paper(x)).abs().max()
    assert diff > 1e-4
    assert paper.comparisons_per_patch() == ref.comparisons_per_patch() + 1


def test_parameter_counts_follow_table_1():
    D, depth, T = KW["dim"], KW["depth"], VIDEO[0]
    n = {a: sum(p.numel() for p in _model(a).parameters()) for a in ATTENTIONS}
    extra = depth * (5 * D * D + 7 * D)                   # attention + LayerNorm + fc per block
    assert n["joint"] - n["space"] == T * D               # the time embedding only
    assert n["divided"] - n["joint"] == extra
    assert n["local_global"] == n["divided"]
    assert n["axial"] - n["joint"] == 2 * extra


def test_training_mode_with_drop_path_runs_and_backpropagates():
    for attention in ATTENTIONS:
        model = _model(attention, drop_path=0.5).train()
        out = model(_clips(4))
        out.sum().backward()
        assert out.shape == (4, 2) and model.cls_token.grad is not None


def test_block_checks_its_input():
    block = FactorisedBlock(dim=16, heads=2, grid=GRID)
    with pytest.raises(VtlibError, match="x: expected"):
        block(torch.randn(2, 64, 16))                     # no CLS token
    with pytest.raises(VtlibError, match="scheme"):
        FactorisedBlock(dim=16, heads=2, grid=GRID, scheme="joint")


def test_errors_name_the_argument():
    with pytest.raises(VtlibError, match="attention"):
        TimeSformer(attention="divided_space_time")
    with pytest.raises(VtlibError, match="cls_in_time"):
        TimeSformer(attention="joint", cls_in_time=True)
    with pytest.raises(VtlibError, match="video_shape"):
        TimeSformer(attention="local_global", video_shape=(7, 28, 28))
    with pytest.raises(VtlibError, match="video_shape"):
        TimeSformer(video_shape=(8, 30, 30))
    with pytest.raises(VtlibError, match="temporal_init"):
        TimeSformer(temporal_init="ones")
    model = _model()
    with pytest.raises(VtlibError, match="sample_frames"):
        model(torch.randn(1, 1, 28, 28, 28))
    with pytest.raises(VtlibError, match="x: expected 1 channel"):
        model(torch.randn(1, 3, *VIDEO))
    with pytest.raises(VtlibError, match="name"):
        group(torch.randn(1, 64, 4), "diagonal", GRID)
    with pytest.raises(VtlibError, match="grid"):
        group_ids("time", (4, 4))
    with pytest.raises(VtlibError, match="x: expected"):
        group(torch.randn(1, 65, 4), "time", GRID)              # CLS left in
    with pytest.raises(VtlibError, match="video_shape"):
        group(torch.randn(1, 48, 4), "global", (3, 4, 4))       # odd frame count
    with pytest.raises(VtlibError, match="x: expected"):
        ungroup(torch.randn(8, 9, 4), "time", GRID, 2)
