"""Notebook 05's checks: the solutions pass, the stubs print "not yet", typical slips get their hint."""
import torch
from einops import rearrange
from exercise_helpers import NOT_YET, last_line, stub

from vtlib.exercises import nb05
from vtlib.exercises.solutions import nb05 as sol


# ----------------------------------------------------------------------------- exercise 1: packed QKV
def test_packed_qkv_solution_stub_and_slips(capsys):
    assert nb05.check_packed_qkv(sol.packed_qkv)
    assert last_line(capsys) == "check_packed_qkv: correct"
    assert not nb05.check_packed_qkv(stub)
    assert NOT_YET in last_line(capsys)
    assert not nb05.check_packed_qkv(lambda w, b, heads: (w, b))
    out = last_line(capsys)
    assert "came back unchanged" in out and "hint:" in out

    def opposite(w, b, heads):
        return (rearrange(w, "(three h d) e -> (h three d) e", three=3, h=heads),
                rearrange(b, "(three h d) -> (h three d)", three=3, h=heads))

    assert not nb05.check_packed_qkv(opposite)
    assert "opposite conversion" in last_line(capsys)

    def interleaved(w, b, heads):
        return (rearrange(w, "(h d three) e -> (three h d) e", three=3, h=heads),
                rearrange(b, "(h d three) -> (three h d)", three=3, h=heads))

    assert not nb05.check_packed_qkv(interleaved)
    assert "row by row" in last_line(capsys)

    def head_width(w, b, heads):
        return sol.packed_qkv(w, b, w.shape[1] // heads)

    assert not nb05.check_packed_qkv(head_width)
    assert "not the head width" in last_line(capsys)
    assert not nb05.check_packed_qkv(lambda w, b, heads: (sol.packed_qkv(w, b, heads)[0], b))
    assert "bias came back unchanged" in last_line(capsys)
    assert not nb05.check_packed_qkv(lambda w, b, heads: sol.packed_qkv(w, b, heads)[0])
    assert "a pair (weight, bias)" in last_line(capsys)


def test_packed_reference_makes_vtlib_attention_equal_the_checkpoint():
    from vtlib.attention import MultiHeadAttention

    g = torch.Generator().manual_seed(0)
    w, b, x = torch.randn(48, 16, generator=g), torch.randn(48, generator=g), torch.randn(2, 7, 16, generator=g)
    attn = MultiHeadAttention(dim=16, heads=4).eval()
    with torch.no_grad():
        attn.qkv.weight.copy_(nb05.packed_reference(w, b, 4)[0])
        attn.qkv.bias.copy_(nb05.packed_reference(w, b, 4)[1])
        out = attn(x)
        heads = nb05.head_by_head_attention(x, w, b, 4)
        assert torch.allclose(out, attn.proj(rearrange(heads, "b h n d -> b n (h d)")), atol=1e-5)


# ----------------------------------------------------------------------------- exercise 2: cross-frame share
def test_cross_frame_share_solution_stub_and_slips(capsys):
    assert nb05.check_cross_frame_share(sol.cross_frame_share)
    assert last_line(capsys) == "check_cross_frame_share: correct"
    assert not nb05.check_cross_frame_share(stub)
    assert NOT_YET in last_line(capsys)

    def own_frame(attn, grid):
        no_cls = attn[:, :, 1:, 1:]
        return no_cls.sum(-1).mean(-1) - sol.cross_frame_share(attn, grid)

    assert not nb05.check_cross_frame_share(own_frame)
    out = last_line(capsys)
    assert "own frame" in out and "hint:" in out

    def with_cls_key(attn, grid):
        return sol.cross_frame_share(attn, grid) + attn[:, :, 1:, 0].mean(-1)

    assert not nb05.check_cross_frame_share(with_cls_key)
    assert "CLS key (column 0)" in last_line(capsys)

    def no_offset(attn, grid):                                 # tubelets taken as rows/columns 0..N-1
        padded = torch.nn.functional.pad(attn[:, :, :-1, :-1], (1, 0, 1, 0))
        return sol.cross_frame_share(padded, grid)

    assert not nb05.check_cross_frame_share(no_offset)
    assert "index 0 is the CLS token" in last_line(capsys)

    def by_modulo(attn, grid):
        n = attn.shape[-1] - 1
        pos = torch.arange(n) % grid[0]
        return (attn[:, :, 1:, 1:] * (pos[:, None] != pos[None, :])).sum(-1).mean(-1)

    assert not nb05.check_cross_frame_share(by_modulo)
    assert "not i % nt" in last_line(capsys)
    assert not nb05.check_cross_frame_share(lambda attn, grid: sol.cross_frame_share(attn, grid).mean(1))
    assert "one share per clip AND head" in last_line(capsys)


def test_cross_frame_share_of_uniform_attention_is_the_other_frames_fraction():
    grid = (4, 2, 2)                                           # 16 tubelets, 12 of them in other frames
    uniform = torch.full((1, 2, 17, 17), 1 / 17)
    assert torch.allclose(nb05.cross_frame_reference(uniform, grid), torch.full((1, 2), 12 / 17))


# ----------------------------------------------------------------------------- exercise 3: order blindness
def test_order_blindness_solution_stub_and_slips(capsys):
    assert nb05.check_order_blindness(sol.reverse_token_frames, sol.logit_change, sol.BLIND_TO)
    assert last_line(capsys) == "check_order_blindness: correct"
    assert not nb05.check_order_blindness(stub, stub, None)
    assert NOT_YET in last_line(capsys)
    assert not nb05.check_order_blindness(sol.reverse_token_frames, stub, None)
    assert NOT_YET in last_line(capsys)
    assert not nb05.check_order_blindness(sol.reverse_token_frames, sol.logit_change, None)
    assert "keys 'none' and 'space'" in last_line(capsys)

    assert not nb05.check_order_blindness(lambda clip, t: clip.flip(2), sol.logit_change, sol.BLIND_TO)
    out = last_line(capsys)
    assert "inside each token-frame too" in out and "hint:" in out

    def mean_change(model, clip, transform):
        with torch.no_grad():
            return (model(transform(clip)) - model(clip)).abs().mean().item()

    assert not nb05.check_order_blindness(sol.reverse_token_frames, mean_change, sol.BLIND_TO)
    assert "the mean change" in last_line(capsys)

    def all_changes(model, clip, transform):
        with torch.no_grad():
            return model(transform(clip)) - model(clip)

    assert not nb05.check_order_blindness(sol.reverse_token_frames, all_changes, sol.BLIND_TO)
    assert "return one number" in last_line(capsys)

    frames_too = {"none": sol.BLIND_TO["none"] | {"reverse all frames"}, "space": sol.BLIND_TO["space"]}
    assert not nb05.check_order_blindness(sol.reverse_token_frames, sol.logit_change, frames_too)
    assert "the Conv3d sees its 4 frames in order" in last_line(capsys)
    no_halves = {"none": {"reverse token-frames"}, "space": sol.BLIND_TO["space"]}
    assert not nb05.check_order_blindness(sol.reverse_token_frames, sol.logit_change, no_halves)
    assert "moves whole 7×7 patches" in last_line(capsys)
    space_like_none = {"none": sol.BLIND_TO["none"], "space": sol.BLIND_TO["none"]}
    assert not nb05.check_order_blindness(sol.reverse_token_frames, sol.logit_change, space_like_none)
    assert "tell the (h, w) of a patch apart" in last_line(capsys)
    assert not nb05.check_order_blindness(sol.reverse_token_frames, sol.logit_change,
                                          {"none": {"reverse frames"}, "space": set()})
    assert "unknown names" in last_line(capsys)


def test_blindness_is_clear_cut_for_other_seeds():
    for seed in (0, 2, 3):
        assert nb05.blindness_reference(seed) == {**sol.BLIND_TO, "learned": set()}
    clip = nb05.blind_clip(0)
    for position in ("none", "space", "learned"):
        model = nb05.blind_model(position)
        changes = [nb05.logit_change_reference(model, clip, tf) for tf in nb05.reference_transforms().values()]
        assert all(c < 1e-6 or c > 1e-4 for c in changes)                     # far from the 1e-5 threshold
