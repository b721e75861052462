"""Notebook 10's checks: the solutions pass, the stubs print "not yet", typical slips get their hint."""
import torch
from einops import rearrange
from exercise_helpers import NOT_YET, last_line, stub

from vtlib.exercises import nb10
from vtlib.exercises.solutions import nb10 as sol
from vtlib.window import window_mask


# ----------------------------------------------------------------------------- exercise 1: padded mask
def test_padded_mask_solution_stub_and_slips(capsys):
    assert nb10.check_padded_mask(sol.padded_mask)
    assert last_line(capsys) == "check_padded_mask: correct"
    assert not nb10.check_padded_mask(stub)
    assert NOT_YET in last_line(capsys)

    def one_sided(lengths, T, window):                         # window used as the one-sided width
        return sol.padded_mask(lengths, T, 2 * window)

    assert not nb10.check_padded_mask(one_sided)
    assert "counts both sides" in last_line(capsys)

    def pad_rows_kept(lengths, T, window):
        m = sol.padded_mask([T] * len(lengths), T, window)     # the pattern with every frame real ...
        keep = torch.arange(T + 1)[None, :] < torch.tensor(lengths)[:, None] + 1
        return m & keep[:, None, :]                            # ... padding keys removed, padding rows not

    assert not nb10.check_padded_mask(pad_rows_kept)
    assert "padding rows still see keys" in last_line(capsys)

    def no_cls(lengths, T, window):
        keep = torch.arange(T + 1)[None, :] < torch.tensor(lengths)[:, None] + 1
        return window_mask(T + 1, window // 2, keep)            # the CLS is a local token

    assert not nb10.check_padded_mask(no_cls)
    out = last_line(capsys)
    assert "must be global" in out and "hint:" in out

    assert not nb10.check_padded_mask(lambda lengths, T, window: sol.padded_mask(lengths, T, window)[:, 1:, 1:])
    assert "no CLS token" in last_line(capsys)


def test_padded_mask_slip_patterns_match_window_mask():
    for lengths, T, window in (([5, 3], 6, 2), ([12, 12, 1], 12, 18)):
        assert torch.equal(nb10._padded_patterns(lengths, T, window // 2)["right"],
                           nb10._padded_reference(lengths, T, window))


# ----------------------------------------------------------------------------- exercise 2: score counts
def test_score_counts_solution_stub_and_slips(capsys):
    assert nb10.check_score_counts(sol.score_counts)
    assert last_line(capsys) == "check_score_counts: correct"
    assert not nb10.check_score_counts(stub)
    assert NOT_YET in last_line(capsys)

    def no_edges(frames, window):
        L, w = frames + 1, window // 2
        return L * (2 * w + 1) + 2 * L - 1 - (2 * w + 1), L * L

    assert not nb10.check_score_counts(no_edges)
    assert "fewer than 2w + 1 keys" in last_line(capsys)

    def band_only(frames, window):
        L, w = frames + 1, window // 2
        return (L * (2 * w + 1) - w * (w + 1) if w < L else L * L), L * L

    assert not nb10.check_score_counts(band_only)
    assert "the band alone" in last_line(capsys)

    def no_cls_in_full(frames, window):
        return sol.score_counts(frames, window)[0], frames * frames

    assert not nb10.check_score_counts(no_cls_in_full)
    out = last_line(capsys)
    assert "(frames + 1)^2" in out and "hint:" in out

    def by_mask(frames, window):                               # right, but no formula: a million frames fail
        L = frames + 1
        if L > 5000:
            raise MemoryError("a (L, L) mask of a million frames")
        g = torch.zeros(1, L, dtype=torch.bool)
        g[0, 0] = True
        return int(window_mask(L, window // 2, None, g).sum()), L * L

    assert not nb10.check_score_counts(by_mask)
    assert "MemoryError" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 3: feature cache
def test_feature_cache_solution_stub_and_slips(capsys):
    assert nb10.check_feature_cache(sol.cache_features)
    assert last_line(capsys) == "check_feature_cache: correct"
    assert not nb10.check_feature_cache(stub)
    assert NOT_YET in last_line(capsys)

    def all_at_once(model, clip, chunk):                       # ignores chunk: every frame in one call
        with torch.no_grad():
            return model.features(clip)

    assert not nb10.check_feature_cache(all_at_once)
    out = last_line(capsys)
    assert "tensors at once" in out and "hint:" in out

    def with_autograd(model, clip, chunk):
        return model.features(clip, chunk=chunk)

    assert not nb10.check_feature_cache(with_autograd)
    assert "autograd history" in last_line(capsys)

    def frames_only(model, clip, chunk):
        return sol.cache_features(model, clip, chunk)[0]

    assert not nb10.check_feature_cache(frames_only)
    assert "keep the batch axis" in last_line(capsys)

    def time_major(model, clip, chunk):                        # features right, frames put back in another order
        f = sol.cache_features(model, clip, chunk)
        return rearrange(f, "b (t two) f -> b (two t) f", two=2)

    assert not nb10.check_feature_cache(time_major)
    assert "wrong values" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 4: receptive field
def test_receptive_field_solution_stub_and_slips(capsys):
    args = (sol.frames_seen, sol.rule, sol.DEPTH_TO_SEE_FRAME_128)
    assert nb10.check_receptive_field(*args)
    assert last_line(capsys) == "check_receptive_field: correct"
    assert not nb10.check_receptive_field(stub, stub, None)
    assert NOT_YET in last_line(capsys)

    def shifted(model, frames):                                 # a constant shift: LayerNorm removes it
        f = torch.randn(1, frames, model.feature_dim)
        with torch.no_grad():
            base = model.classify_features(f)
            return [t for t in range(frames)
                    if (model.classify_features(f + (torch.arange(frames) == t)[None, :, None]) - base).abs().max()
                    > 1e-6]

    assert not nb10.check_receptive_field(shifted, sol.rule, sol.DEPTH_TO_SEE_FRAME_128)
    assert "vanishes in the first" in last_line(capsys)

    def tokens(model, frames):
        return [t + 1 for t in sol.frames_seen(model, frames)]

    assert not nb10.check_receptive_field(tokens, sol.rule, sol.DEPTH_TO_SEE_FRAME_128)
    assert "token indices" in last_line(capsys)

    assert not nb10.check_receptive_field(sol.frames_seen, lambda depth, window: depth * window, 33)
    assert "counts both sides" in last_line(capsys)
    assert not nb10.check_receptive_field(sol.frames_seen, sol.rule, 32)
    out = last_line(capsys)
    assert "frames 0..127" in out and "hint:" in out


def test_receptive_field_reference_is_depth_times_half_window():
    for depth, window in ((1, 4), (2, 4), (3, 2), (2, 8)):
        assert nb10.receptive_field(nb10._rf_model(depth, window, False)) == list(range(depth * (window // 2)))
    assert nb10.receptive_field(nb10._rf_model(1, 4, True)) == list(range(nb10.RF_FRAMES))
