"""ViViT Models 2, 3, 4 and the average-pool baseline: shapes, parameters, equivalences, costs, errors."""
import pytest
import torch
from einops import rearrange
from torch.testing import assert_close

from vtlib.attention import MultiHeadAttention, record_attention
from vtlib.block import Block
from vtlib.cost import measure_flops
from vtlib.errors import VtlibError
from vtlib.models.vivit import ViViT
from vtlib.models.vivit_fdp import (
    FactorisedDotProductAttention,
    ViViTFactorisedDotProduct,
    factorised_head_mask,
    factorised_masks,
)
from vtlib.models.vivit_fe import ViViTFactorisedEncoder, vivit_avgpool
from vtlib.models.vivit_fsa import FactorisedSelfAttentionBlock, ViViTFactorisedSelfAttention
from vtlib.utils import count_parameters

SMALL = dict(dim=32, heads=4, tubelet=(4, 7, 7))          # 28^3 -> grid (7, 4, 4), N = 112
D, NT, S = 32, 7, 16


def clip(b=2, t=28, seed=0):
    return torch.randn(b, 1, t, 28, 28, generator=torch.Generator().manual_seed(seed))


def recorded(model, x):
    """Logits and the recorded maps of ``model(x)``; checks that recording leaves the logits unchanged."""
    model.eval()
    with torch.no_grad(), record_attention(model) as maps:
        logits = model(x)
    with torch.no_grad():
        assert_close(logits, model(x), atol=1e-5, rtol=1e-5)
    return logits, maps


def ids(model) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def joint_forward(m1: ViViT, x, mask):
    """Model 1 (mean pool) with a mask on every attention layer."""
    tokens = m1.pool.prepend(m1.pos(m1.embed(x)))
    return m1.head(m1.pool(m1.norm(m1.encoder(tokens, mask=mask))))


# ---------------------------------------------------------------------------------- shapes
def test_shapes_and_maps():
    x = clip()
    m2 = ViViTFactorisedEncoder(num_classes=3, depth_spatial=2, depth_temporal=1, **SMALL)
    logits, maps = recorded(m2, x)
    assert logits.shape == (2, 3) and m2.grid == (NT, 4, 4)
    assert maps.names == ["spatial.blocks.0.attn", "spatial.blocks.1.attn", "temporal_encoder.blocks.0.attn"]
    assert [m.shape for m in maps[:2]] == [(2 * NT, 4, S + 1, S + 1)] * 2   # rows "(b t)": one per frame
    assert maps[2].shape == (2, 4, NT + 1, NT + 1)
    assert m2.frame_embeddings(x).shape == (2, NT, D)
    avg = vivit_avgpool(num_classes=3, depth_spatial=2, **SMALL)
    assert avg(x).shape == (2, 3) and avg.temporal_encoder is None
    m3 = ViViTFactorisedSelfAttention(num_classes=3, depth=2, **SMALL)
    logits, maps = recorded(m3, x)
    assert logits.shape == (2, 3) and len(maps) == 4
    assert maps.names[:2] == ["encoder.blocks.0.attn", "encoder.blocks.0.temporal_attn"]
    assert maps[0].shape == (2 * NT, 4, S, S) and maps[1].shape == (2 * S, 4, NT, NT)
    assert all(torch.allclose(m.sum(-1), torch.ones(m.shape[:-1])) for m in maps)
    m4 = ViViTFactorisedDotProduct(num_classes=3, depth=2, **SMALL)
    logits, maps = recorded(m4, x)
    assert logits.shape == (2, 3) and len(maps) == 2 and maps[1].shape == (2, 4, NT * S, NT * S)
    assert_close(maps[1].sum(-1), torch.ones(2, 4, NT * S))


def test_64_frames_and_backward():
    x = clip(t=64)
    for m in (ViViTFactorisedEncoder(video_shape=(64, 28, 28), depth_spatial=1, **SMALL),
              ViViTFactorisedSelfAttention(video_shape=(64, 28, 28), depth=1, **SMALL),
              ViViTFactorisedDotProduct(video_shape=(64, 28, 28), depth=1, **SMALL)):
        m(x).sum().backward()
        assert m.grid == (16, 4, 4) and m.embed.proj.weight.grad is not None


# ----------------------------------------------------------------------------- parameters
def test_model4_has_exactly_model1_parameters():
    m1 = ViViT(depth=2, pool="mean", **SMALL)
    m4 = ViViTFactorisedDotProduct(depth=2, **SMALL)
    assert ids(m4) == ids(m1) and count_parameters(m4) == count_parameters(m1)
    # With Model 1's default CLS readout the only difference is the CLS token itself (D values).
    assert count_parameters(ViViT(depth=2, pool="cls", **SMALL)) - count_parameters(m4) == D
    torch.manual_seed(3)
    m1 = ViViT(depth=2, pool="mean", **SMALL)
    torch.manual_seed(3)
    m4 = ViViTFactorisedDotProduct(depth=2, **SMALL)
    for k, v in m1.state_dict().items():                    # same seed -> same initial weights
        assert torch.equal(v, m4.state_dict()[k]), k


def test_model3_adds_one_attention_and_norm_per_block():
    depth = 3
    extra = count_parameters(ViViTFactorisedSelfAttention(depth=depth, **SMALL)) \
        - count_parameters(ViViT(depth=depth, pool="mean", **SMALL))
    assert extra == depth * (4 * D * D + 4 * D + 2 * D)    # qkv + proj (+ biases) + LayerNorm


def test_model2_parameters():
    m2 = ViViTFactorisedEncoder(depth_spatial=3, depth_temporal=1, **SMALL)
    avg = vivit_avgpool(depth_spatial=3, **SMALL)
    block = count_parameters(Block(dim=D, heads=4))
    temporal = block + D + NT * D + 2 * D                   # block, CLS, frame positions, LayerNorm
    assert count_parameters(m2) - count_parameters(avg) == temporal
    # Ls + Lt = Model 1's depth: Model 2 only adds the temporal CLS, positions and norm.
    m1 = ViViT(depth=4, pool="cls", **SMALL)
    assert count_parameters(m2) - count_parameters(m1) == D + NT * D + 2 * D
    no_pos = ViViTFactorisedEncoder(depth_spatial=3, temporal_position="none", **SMALL)
    assert count_parameters(m2) - count_parameters(no_pos) == NT * D


# ------------------------------------------------------------------------ Model 2 structure
def test_model2_spatial_stage_sees_one_frame_at_a_time():
    m2 = ViViTFactorisedEncoder(depth_spatial=2, **SMALL).eval()
    x = clip(1)
    y = x.clone()
    y[:, :, 8:12] += 1.0                                    # token-frame 2 = frames 8..11
    a, b = m2.frame_embeddings(x), m2.frame_embeddings(y)
    changed = (a - b).abs().amax(dim=-1)[0] > 1e-6
    assert changed.tolist() == [t == 2 for t in range(NT)]


def test_avgpool_is_the_mean_of_frame_embeddings_and_blind_to_frame_order():
    avg = vivit_avgpool(depth_spatial=2, position="none", **SMALL).eval()
    x = clip(2)
    assert_close(avg.features(x), avg.frame_embeddings(x).mean(dim=1))
    blocks = x.reshape(2, 1, NT, 4, 28, 28)                # 7 tubelet-frames of 4 frames each
    shuffled = blocks[:, :, torch.randperm(NT, generator=torch.Generator().manual_seed(0))]
    x_shuffled = shuffled.reshape_as(x)
    assert_close(avg(x_shuffled), avg(x), atol=1e-5, rtol=1e-5)           # order between tubelets: lost
    assert not torch.allclose(avg(x.flip(2)), avg(x), atol=1e-4)         # order inside a tubelet: seen
    m2 = ViViTFactorisedEncoder(depth_spatial=2, position="none", **SMALL).eval()
    assert not torch.allclose(m2(x_shuffled), m2(x), atol=1e-4)         # temporal positions see it


# --------------------------------------------------------------------------------- Model 3
def test_model3_temporal_projection_starts_at_zero_and_learns():
    m3 = ViViTFactorisedSelfAttention(depth=2, **SMALL)
    for blk in m3.encoder.blocks:
        assert isinstance(blk, FactorisedSelfAttentionBlock)
        assert torch.count_nonzero(blk.temporal_attn.proj.weight) == 0
        assert torch.count_nonzero(blk.temporal_attn.proj.bias) == 0
    opt = torch.optim.SGD(m3.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(m3(clip()), torch.tensor([0, 1])).backward()
    opt.step()
    assert torch.count_nonzero(m3.encoder.blocks[-1].temporal_attn.proj.weight) > 0


def test_model3_at_init_is_a_space_only_model():
    torch.manual_seed(0)
    m3 = ViViTFactorisedSelfAttention(depth=2, **SMALL).eval()
    m1 = ViViT(depth=2, pool="mean", **SMALL).eval()
    missing, unexpected = m1.load_state_dict(m3.state_dict(), strict=False)
    assert missing == [] and all(".temporal_" in k for k in unexpected) and len(unexpected) == 2 * 6
    same_frame, _ = factorised_masks(m3.grid)
    x = clip()
    assert_close(m3(x), joint_forward(m1, x, same_frame), atol=1e-5, rtol=1e-5)
    # And not by accident: with a random temporal init the outputs differ.
    torch.manual_seed(0)
    m3r = ViViTFactorisedSelfAttention(depth=2, temporal_init="default", **SMALL).eval()
    assert not torch.allclose(m3r(x), m3(x), atol=1e-4)


def test_model3_block_equals_two_masked_joint_attentions():
    torch.manual_seed(1)
    blk = FactorisedSelfAttentionBlock(dim=D, heads=4, grid=(NT, 4, 4), temporal_init="default").eval()
    x = torch.randn(2, NT * S, D)
    same_frame, same_position = factorised_masks((NT, S))
    ref = x + blk.attn(blk.norm1(x), mask=same_frame)
    ref = ref + blk.temporal_attn(blk.temporal_norm(ref), mask=same_position)
    ref = ref + blk.mlp(blk.norm2(ref))
    assert_close(blk(x), ref, atol=1e-5, rtol=1e-5)
    # the recorded maps are the blocks of the masked joint maps: frame by frame, position by position
    with torch.no_grad(), record_attention(blk) as maps:
        blk(x)
    with torch.no_grad(), record_attention(blk.attn) as joint:
        blk.attn(blk.norm1(x), mask=same_frame)
    spatial = rearrange(maps[0], "(b t) h i j -> b h t i j", b=2)            # (B, heads, nt, S, S)
    full = rearrange(joint[0], "b h (t i) (u j) -> b h t u i j", t=NT, u=NT)
    assert_close(spatial, torch.diagonal(full, dim1=2, dim2=3).permute(0, 1, 4, 2, 3), atol=1e-6, rtol=1e-5)


# --------------------------------------------------------------------------------- Model 4
def test_masks_pattern():
    same_frame, same_position = factorised_masks((3, 2, 2))  # N = 12
    assert same_frame.shape == (12, 12) and same_frame.sum() == 3 * 4 * 4
    assert same_position.sum() == 4 * 3 * 3
    assert torch.equal(same_frame & same_position, torch.eye(12, dtype=torch.bool))
    hm = factorised_head_mask((3, 4), 4)
    assert hm.shape == (4, 12, 12) and torch.equal(hm[1], same_frame) and torch.equal(hm[2], same_position)


def test_head_split_equals_masked_joint_attention():
    torch.manual_seed(2)
    fdp = FactorisedDotProductAttention(dim=D, heads=4, grid=(NT, 4, 4)).eval()
    mha = MultiHeadAttention(dim=D, heads=4).eval()
    mha.load_state_dict(fdp.state_dict())
    x = torch.randn(3, NT * S, D)
    mask = factorised_head_mask((NT, S), 4)[None]           # (1, heads, N, N)
    assert_close(fdp(x), mha(x, mask=mask), atol=1e-5, rtol=1e-5)
    with record_attention(fdp) as maps:
        out = fdp(x)
    with record_attention(mha) as ref_maps:
        ref_out = mha(x, mask=mask)
    w, ref_w = maps[0], ref_maps[0]
    assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    assert_close(w, ref_w, atol=1e-6, rtol=1e-5)
    assert torch.all(w[:, :2][~mask[:, :2].expand_as(w[:, :2])] == 0)


def test_model4_equals_model1_with_head_masks():
    m4 = ViViTFactorisedDotProduct(depth=2, **SMALL).eval()
    m1 = ViViT(depth=2, pool="mean", **SMALL).eval()
    m1.load_state_dict(m4.state_dict())                     # strict: the very same parameters
    x = clip()
    mask = factorised_head_mask(m4.grid, 4)[None]
    assert_close(m4(x), joint_forward(m1, x, mask), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(m1(x), m4(x), atol=1e-4)      # unmasked Model 1 differs


# ---------------------------------------------------------------------------------- costs
def test_score_entries_and_measured_flops_agree():
    x = clip(1)
    kw = dict(depth=2, **SMALL)
    m1, m3, m4 = ViViT(pool="mean", **kw), ViViTFactorisedSelfAttention(**kw), ViViTFactorisedDotProduct(**kw)
    n = NT * S
    e1 = 2 * 4 * n * n
    assert m3.attention_score_entries() == 2 * 4 * (NT * S * S + S * NT * NT)
    assert m4.attention_score_entries() == m3.attention_score_entries() // 2
    f1, f3, f4 = (measure_flops(m.eval(), x) for m in (m1, m3, m4))
    head_dim = D // 4                                       # each score entry costs 2e (q.k) + 2e (a.v)
    assert f1 - f4 == 4 * head_dim * (e1 - m4.attention_score_entries())
    extra_projections = 2 * 8 * n * D * D                  # Model 3's second qkv + proj, 2 blocks
    assert f3 - f1 == extra_projections - 4 * head_dim * (e1 - m3.attention_score_entries())
    m2 = ViViTFactorisedEncoder(depth_spatial=1, depth_temporal=1, **SMALL)
    assert m2.attention_score_entries() == 4 * NT * (S + 1) ** 2 + 4 * (NT + 1) ** 2


def test_flops_ordering_and_growth_with_frames():
    def flops(frames):
        x, kw = clip(1, t=frames), dict(video_shape=(frames, 28, 28), **SMALL)
        return {"m1": measure_flops(ViViT(depth=2, **kw).eval(), x),
                "m2": measure_flops(ViViTFactorisedEncoder(depth_spatial=1, depth_temporal=1, **kw).eval(), x),
                "avg": measure_flops(vivit_avgpool(depth_spatial=1, **kw).eval(), x),
                "m3": measure_flops(ViViTFactorisedSelfAttention(depth=2, **kw).eval(), x),
                "m4": measure_flops(ViViTFactorisedDotProduct(depth=2, **kw).eval(), x)}
    short, long = flops(28), flops(128)                     # N = 112 and 512 tokens
    for f in (short, long):
        assert f["avg"] < f["m2"] < f["m4"] < f["m1"]
    # Model 3 saves 4D(N^2 - nt*S^2 - S*nt^2) score FLOPs per block but pays 8*N*D^2 for its second
    # attention's projections: it is cheaper than Model 1 only when N - S - nt > 2D.
    assert long["m3"] < long["m1"] and short["m3"] < short["m1"]      # D=32: 2D < 112 - 16 - 7
    wide = dict(SMALL, dim=64)                                        # D=64: 2D > 89
    assert measure_flops(ViViTFactorisedSelfAttention(depth=1, **wide).eval(), clip(1)) \
        > measure_flops(ViViT(depth=1, **wide).eval(), clip(1))
    growth = {k: long[k] / short[k] for k in long}          # 128/28 = 4.6x the frames
    assert growth["m1"] > 2 * growth["m4"] and growth["m1"] > 1.5 * growth["m3"]


# --------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("build, arg", [
    (lambda: ViViTFactorisedSelfAttention(pool="cls"), "^pool: expected 'mean' or 'attn'"),
    (lambda: ViViTFactorisedDotProduct(pool="cls"), "^pool: expected 'mean' or 'attn'"),
    (lambda: ViViTFactorisedDotProduct(dim=48, heads=3), "^heads: expected an even number"),
    (lambda: FactorisedDotProductAttention(dim=32, heads=3, grid=(7, 16)), "^heads: expected an even number"),
    (lambda: factorised_head_mask((7, 16), 5), "^heads: expected an even number"),
    (lambda: ViViTFactorisedSelfAttention(temporal_init="ones"), "^temporal_init: expected one of"),
    (lambda: ViViTFactorisedEncoder(temporal="lstm"), "^temporal: expected one of"),
    (lambda: ViViTFactorisedEncoder(temporal="mean", depth_temporal=2), "^depth_temporal: expected 0 or None"),
    (lambda: ViViTFactorisedEncoder(depth_temporal=0), "^depth_temporal: expected a positive int"),
    (lambda: ViViTFactorisedEncoder(depth_spatial=0), "^depth_spatial: expected a positive int"),
    (lambda: ViViTFactorisedEncoder(frame_pool="max"), "^frame_pool: expected one of"),
    (lambda: ViViTFactorisedEncoder(tubelet=(4, 8, 8)), "video_shape H=28"),
    (lambda: vivit_avgpool(depth_temporal=1), "^kwargs: expected no 'temporal'"),
    (lambda: factorised_masks((7,)), "^grid: expected a token grid"),
])
def test_bad_config(build, arg):
    with pytest.raises(VtlibError, match=arg):
        build()


def test_bad_inputs_are_explained():
    x = clip(1, t=14)
    for m in (ViViTFactorisedEncoder(depth_spatial=1, **SMALL), ViViTFactorisedSelfAttention(depth=1, **SMALL),
              ViViTFactorisedDotProduct(depth=1, **SMALL)):
        with pytest.raises(VtlibError, match=r"^x: expected clips shaped \(B, C, 28, 28, 28\)"):
            m(x)
    with pytest.raises(VtlibError, match=r"^x: expected clips shaped"):
        ViViTFactorisedEncoder(depth_spatial=1, **SMALL)(torch.randn(28, 28, 28))
    fdp = FactorisedDotProductAttention(dim=D, heads=4, grid=(NT, S))
    with pytest.raises(VtlibError, match=r"^x: expected \(B, nt\*S=7\*16, D=32\)"):
        fdp(torch.randn(1, 113, D))
    with pytest.raises(VtlibError, match="^mask: expected None"):
        fdp(torch.randn(1, NT * S, D), mask=torch.ones(NT * S, NT * S, dtype=torch.bool))
    blk = FactorisedSelfAttentionBlock(dim=D, heads=4, grid=(NT, S))
    with pytest.raises(VtlibError, match=r"^x: expected \(B, nt\*S=7\*16, D=32\) tokens"):
        blk(torch.randn(1, NT * S + 1, D))                 # e.g. a CLS token prepended

