"""Notebook 06's checks: the solutions pass, the stubs print "not yet", typical slips get their hint."""
import torch
from einops import rearrange
from exercise_helpers import NOT_YET, last_line, stub

from vtlib.attention import causal_mask
from vtlib.exercises import nb06
from vtlib.exercises.solutions import nb06 as sol
from vtlib.experiments.vivit_variants import attention_score_entries, build


# ----------------------------------------------------------------------------- exercise 1: (h w t) order
def test_group_by_frame_hwt_solution_stub_and_slips(capsys):
    assert nb06.check_group_by_frame_hwt(sol.group_by_frame_hwt)
    assert last_line(capsys) == "check_group_by_frame_hwt: correct"
    assert not nb06.check_group_by_frame_hwt(stub)
    assert NOT_YET in last_line(capsys)

    assert not nb06.check_group_by_frame_hwt(lambda x, nt: rearrange(x, "b (t s) d -> (b t) s d", t=nt))
    out = last_line(capsys)
    assert "reads the tokens as (t h w)" in out and "hint:" in out
    assert not nb06.check_group_by_frame_hwt(lambda x, nt: rearrange(x, "b (s t) d -> (t b) s d", t=nt))
    assert "clip-major" in last_line(capsys)
    assert not nb06.check_group_by_frame_hwt(lambda x, nt: rearrange(x, "b (s t) d -> (b s) t d", t=nt))
    assert "one sequence per POSITION" in last_line(capsys)
    assert not nb06.check_group_by_frame_hwt(lambda x, nt: 1 / 0)    # a crash is a verdict, not an error
    assert "ZeroDivisionError" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 2: causal time
def _by_position(x, attn, nt, mask):
    h = rearrange(x, "b (t s) d -> (b s) t d", t=nt)
    return rearrange(attn(h, mask=mask), "(b s) t d -> b (t s) d", b=x.shape[0])


def test_causal_temporal_attention_solution_stub_and_slips(capsys):
    assert nb06.check_causal_temporal_attention(sol.causal_temporal_attention)
    assert last_line(capsys) == "check_causal_temporal_attention: correct"
    assert not nb06.check_causal_temporal_attention(stub)
    assert NOT_YET in last_line(capsys)

    assert not nb06.check_causal_temporal_attention(lambda x, attn, nt: _by_position(x, attn, nt, None))
    out = last_line(capsys)
    assert "LATER token-frames" in out and "hint:" in out
    assert not nb06.check_causal_temporal_attention(lambda x, attn, nt: _by_position(x, attn, nt, causal_mask(nt).T))
    assert "it should see the earlier ones" in last_line(capsys)
    assert not nb06.check_causal_temporal_attention(lambda x, attn, nt: attn(x, mask=causal_mask(x.shape[1])))
    assert "OTHER positions" in last_line(capsys)

    def strict(x, attn, nt):
        frame = torch.arange(nt)
        return _by_position(x, attn, nt, frame[None, :] < frame[:, None])

    assert not nb06.check_causal_temporal_attention(strict)
    assert "STRICTLY earlier" in last_line(capsys)

    def spatial(x, attn, nt):
        h = rearrange(x, "b (t s) d -> (b t) s d", t=nt)
        return rearrange(attn(h), "(b t) s d -> b (t s) d", b=x.shape[0])

    assert not nb06.check_causal_temporal_attention(spatial)
    assert "within a frame" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 3: score entries
def test_clip_score_entries_solution_stub_and_slips(capsys):
    assert nb06.check_clip_score_entries(sol.clip_score_entries)
    assert last_line(capsys) == "check_clip_score_entries: correct"
    assert not nb06.check_clip_score_entries(stub)
    assert NOT_YET in last_line(capsys)

    def patched(**over):
        def fn(variant, nt, S, depth, heads):
            return over[variant](nt, S, depth, heads) if variant in over else sol.clip_score_entries(
                variant, nt, S, depth, heads)
        return fn

    no_cls = patched(**{"model1-joint": lambda nt, S, depth, heads: depth * heads * (nt * S) ** 2})
    assert not nb06.check_clip_score_entries(no_cls)
    out = last_line(capsys)
    assert "N + 1 tokens" in out and "hint:" in out
    no_frame_cls = patched(**{"model2-fe": lambda nt, S, depth, heads:
                              (depth - 1) * heads * nt * S ** 2 + heads * (nt + 1) ** 2})
    assert not nb06.check_clip_score_entries(no_frame_cls)
    assert "its own copy of the spatial CLS" in last_line(capsys)
    all_spatial = patched(**{"model2-fe": lambda nt, S, depth, heads:
                             depth * heads * nt * (S + 1) ** 2 + heads * (nt + 1) ** 2})
    assert not nb06.check_clip_score_entries(all_spatial)
    assert "depth - 1 spatial blocks" in last_line(capsys)
    all_heads = patched(**{"model4-fdp": lambda nt, S, depth, heads: sol.clip_score_entries("model3-fsa", nt, S,
                                                                                            depth, heads)})
    assert not nb06.check_clip_score_entries(all_heads)
    assert "half the heads each" in last_line(capsys)


def test_clip_score_entries_reference_matches_the_models():
    for variant in nb06.SCORE_VARIANTS:
        for depth, heads, frames, size in ((4, 4, 28, 28), (3, 2, 16, 21), (2, 6, 8, 14)):
            model = build(variant, frames=frames, size=size, depth=depth, heads=heads, dim=24)
            nt, nh, nw = model.grid
            assert attention_score_entries(model) == sol.clip_score_entries(variant, nt, nh * nw, depth, heads)


# ----------------------------------------------------------------------------- exercise 4: crossover
def test_crossover_solution_stub_and_slips(capsys):
    assert nb06.check_crossover(sol.formula_frames, sol.measured_frames, sol.EARLIER)
    assert last_line(capsys) == "check_crossover: correct"
    assert not nb06.check_crossover(stub, stub, None)
    assert NOT_YET in last_line(capsys)

    def token_frames(dim, S, t):
        return sol.formula_frames(dim, S, t) // t

    assert not nb06.check_crossover(token_frames, sol.measured_frames, sol.EARLIER)
    out = last_line(capsys)
    assert "number of token-frames" in out and "hint:" in out

    def at_least(dim, S, t):                                    # N - S - nt >= 2D: one token-frame too early
        return t * next(nt for nt in range(1, 10_000) if nt * S - S - nt >= 2 * dim)

    assert not nb06.check_crossover(at_least, sol.measured_frames, sol.EARLIER)
    assert "strict" in last_line(capsys)

    assert not nb06.check_crossover(sol.formula_frames, lambda dim: sol.formula_frames(dim, 16, 4), sol.EARLIER)
    assert "the formula's answer" in last_line(capsys)
    assert not nb06.check_crossover(sol.formula_frames, sol.measured_frames, "formula")
    assert "CLS token" in last_line(capsys)
    assert not nb06.check_crossover(sol.formula_frames, sol.measured_frames, None)
    assert "'formula' or 'measured'" in last_line(capsys)


def test_crossover_reference_numbers():
    assert [nb06._formula_frames(d, 16, 4) for d in (16, 32, 64)] == [16, 24, 40]
    assert [nb06._measured_frames(d) for d in (16, 32)] == [12, 24]     # Model 1's CLS makes it dearer at dim 16


def test_checks_leave_the_global_random_state_alone(capsys):
    torch.manual_seed(3)
    state = torch.get_rng_state()
    assert nb06.check_causal_temporal_attention(sol.causal_temporal_attention)
    assert nb06.check_crossover(sol.formula_frames, lambda dim: nb06._measured_frames(dim), sol.EARLIER)
    assert torch.equal(torch.get_rng_state(), state)
