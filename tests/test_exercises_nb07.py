"""Notebook 07's checks: the solutions pass, the stubs print "not yet", typical slips get their hint."""
import torch
from einops import rearrange
from exercise_helpers import NOT_YET, last_line, stub

from vtlib.exercises import nb07
from vtlib.exercises.solutions import nb07 as sol
from vtlib.models.timesformer import GROUPINGS, attention_masks


# ----------------------------------------------------------------------------- exercise 1: a time window
def test_time_window_mask_solution_stub_and_slips(capsys):
    assert nb07.check_time_window_mask(sol.time_window_mask)
    assert last_line(capsys) == "check_time_window_mask: correct"
    assert not nb07.check_time_window_mask(stub)
    assert NOT_YET in last_line(capsys)

    assert not nb07.check_time_window_mask(lambda grid, w: attention_masks("divided", grid)["time"])
    out = last_line(capsys)
    assert "ALL frames" in out and "hint:" in out
    assert not nb07.check_time_window_mask(lambda grid, w: sol.time_window_mask(grid, w // 2))
    assert "EACH side" in last_line(capsys)

    def by_token(grid, w):                                     # |i - j| <= w over the patch tokens
        n = grid[0] * grid[1] * grid[2]
        m = torch.zeros(1 + n, 1 + n, dtype=torch.bool)
        i = torch.arange(n)
        m[1:, 1:] = (i[:, None] - i[None, :]).abs() <= w
        return m

    assert not nb07.check_time_window_mask(by_token)
    assert "distance in TOKENS" in last_line(capsys)

    def with_cls(grid, w):
        m = sol.time_window_mask(grid, w)
        m[0, :] = m[:, 0] = True
        return m

    assert not nb07.check_time_window_mask(with_cls)
    assert "row and column 0 stay False" in last_line(capsys)
    assert not nb07.check_time_window_mask(lambda grid, w: sol.time_window_mask(grid, w)[1:, 1:])
    assert "no CLS row and column" in last_line(capsys)


def test_time_window_mask_unlimited_is_the_models_temporal_mask():
    for grid in ((8, 4, 4), (3, 2, 5)):
        assert torch.equal(sol.time_window_mask(grid, grid[0]), attention_masks("divided", grid)["time"])


# ----------------------------------------------------------------------------- exercise 2: score entries
def test_score_entries_solution_stub_and_slips(capsys):
    assert nb07.check_score_entries(sol.score_entries)
    assert last_line(capsys) == "check_score_entries: correct"
    assert not nb07.check_score_entries(stub)
    assert NOT_YET in last_line(capsys)

    assert not nb07.check_score_entries(lambda a, T, nh, nw: nb07._score_entries(a, (T, nh, nw), "no cls"))
    out = last_line(capsys)
    assert "a query and a key too" in out and "hint:" in out
    # joint and space are right here; the first factorised scheme shows the slip
    assert not nb07.check_score_entries(lambda a, T, nh, nw: nb07._score_entries(a, (T, nh, nw), "cls everywhere"))
    assert "leaves the CLS out" in last_line(capsys)

    def per_patch_times_tokens(attention, T, nh, nw):
        return (1 + T * nh * nw) * nb07._comparisons(attention, (T, nh, nw))

    assert not nb07.check_score_entries(per_patch_times_tokens)
    assert "comparisons per patch times the tokens" in last_line(capsys)


def test_score_entries_reference_matches_the_models():
    from vtlib.models.timesformer import ATTENTIONS

    for attention in ATTENTIONS:
        for grid in ((8, 4, 4), (4, 2, 6)):
            assert nb07._score_entries(attention, grid) == nb07._model(attention, grid).attention_score_entries()


# ----------------------------------------------------------------------------- exercise 3: (h w t) order
def test_group_hwt_solution_stub_and_slips(capsys):
    assert nb07.check_group_hwt(sol.group_hwt)
    assert last_line(capsys) == "check_group_hwt: correct"
    assert not nb07.check_group_hwt(stub)
    assert NOT_YET in last_line(capsys)

    def vtlib_pattern(x, name, grid):                          # the (t h w) pattern on (h w t) tokens
        return rearrange(x, GROUPINGS[name], t=grid[0], h=grid[1])

    assert not nb07.check_group_hwt(vtlib_pattern)
    out = last_line(capsys)
    assert "reads the tokens as (t h w)" in out and "hint:" in out

    def groups_swapped(x, name, grid):                         # time groups by (w h) instead of (h w)
        if name == "time":
            return rearrange(x, "b (h w t) d -> (b w h) t d", t=grid[0], h=grid[1])
        return sol.group_hwt(x, name, grid)

    assert not nb07.check_group_hwt(groups_swapped)
    assert "the right groups, in another order" in last_line(capsys)

    def inside_swapped(x, name, grid):                         # a frame's patches in (w h) order
        if name == "space":
            return rearrange(x, "b (h w t) d -> (b t) (w h) d", t=grid[0], h=grid[1])
        return sol.group_hwt(x, name, grid)

    assert not nb07.check_group_hwt(inside_swapped)
    assert "inside each group" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 4: frame order
def test_frame_order_solution_stub_and_slips(capsys):
    assert nb07.check_frame_order(sol.order_change, dict(sol.ANSWERS))
    assert last_line(capsys) == "check_frame_order: correct"
    assert not nb07.check_frame_order(stub, None)
    assert NOT_YET in last_line(capsys)

    @torch.no_grad()
    def backwards(model, clip, order):
        return (model(clip) - model(clip.flip(2))).abs().max().item()

    assert not nb07.check_frame_order(backwards, dict(sol.ANSWERS))
    out = last_line(capsys)
    assert "played backwards" in out and "hint:" in out

    attention_sees_order = {**sol.ANSWERS, "divided_random_fc": True}     # the tempting guess
    assert not nb07.check_frame_order(sol.order_change, attention_sees_order)
    assert "answers['divided_random_fc'] disagrees" in last_line(capsys)
    assert not nb07.check_frame_order(sol.order_change, {"divided": False})
    assert "a dict with the keys" in last_line(capsys)
    assert not nb07.check_frame_order(sol.order_change, {k: None for k in sol.ANSWERS})
    assert "True or False" in last_line(capsys)


def test_frame_order_only_the_time_embedding_sees_order():
    changes = nb07._reference_changes()
    assert {k: v > nb07.MOVES for k, v in changes.items()} == sol.ANSWERS
    assert max(v for k, v in changes.items() if not sol.ANSWERS[k]) < 1e-6 < 1e-4 < changes["divided_random_time"]


def test_checks_leave_the_global_random_state_alone(capsys):
    torch.manual_seed(3)
    state = torch.get_rng_state()
    assert nb07.check_frame_order(sol.order_change, dict(sol.ANSWERS))
    assert nb07.check_score_entries(sol.score_entries)
    assert torch.equal(torch.get_rng_state(), state)
