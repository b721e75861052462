"""Exercise checks for notebook 05 (ViViT joint space-time attention, Model 1).

Each check calls the learner's function on fixed inputs, compares the result with a reference,
prints ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: ...") and returns
a bool. A function that still raises ``NotImplementedError`` gets the fixed "write the function
first" line. Inputs come from private seeded generators, so the global random state is not touched.

- ``check_packed_qkv``: port a QKV projection stored head by head, rows (heads, [q k v], head_dim),
  to vtlib's packed [q; k; v] layout; the ported ``MultiHeadAttention`` must compute the
  checkpoint's attention.
- ``check_cross_frame_share``: per head, the share of the tubelet queries' attention that lands on
  tubelets of OTHER token-frames: how much a head of joint attention mixes time.
- ``check_order_blindness``: a small experiment: which rearrangements of a clip a Model 1 without
  positions, or with space-only positions, cannot see (its logits do not move).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from einops import rearrange, repeat

from vtlib.attention import MultiHeadAttention, attention_explicit
from vtlib.exercises.common import call, compare_number, compare_tensor, verdict


# ----------------------------------------------------------------------------- exercise 1: packed QKV
def packed_reference(weight: torch.Tensor, bias: torch.Tensor, heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (heads, three, head_dim) -> rows (three, heads, head_dim), for weight (3D, D) and bias (3D,)."""
    w = rearrange(weight, "(h three d) e -> (three h d) e", three=3, h=heads)
    b = rearrange(bias, "(h three d) -> (three h d)", three=3, h=heads)
    return w, b


def head_by_head_attention(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, heads: int) -> torch.Tensor:
    """x (B, N, D) -> (B, heads, N, head_dim): attention of a checkpoint that packs QKV head by head."""
    qkv = x @ weight.T + bias                                          # (B, N, 3D)
    q, k, v = rearrange(qkv, "b n (h three d) -> three b h n d", three=3, h=heads)
    return attention_explicit(q, k, v)[0]


def check_packed_qkv(fn: Callable) -> bool:
    """``fn(weight (3D, D), bias (3D,), heads) -> (weight, bias)``: a checkpoint stores its QKV rows head
    by head, (heads, [q k v], head_dim): head 0's q, k, v rows, then head 1's, ...; return them in vtlib's
    order, all q rows, then all k, then all v ((three heads head_dim), as ``MultiHeadAttention.qkv``)."""
    name = "check_packed_qkv"
    hint = ("give the 3D rows named axes in the checkpoint's order (heads, three, head_dim) and move them to "
            "vtlib's order (three, heads, head_dim) with einops; the bias entries move with their rows")
    g = torch.Generator().manual_seed(50)
    for dim, heads in ((8, 2), (12, 3), (16, 4)):
        weight, bias = torch.randn(3 * dim, dim, generator=g), torch.randn(3 * dim, generator=g)
        want_w, want_b = packed_reference(weight, bias, heads)
        what = f"fn(weight {tuple(weight.shape)}, bias {tuple(bias.shape)}, heads={heads})"
        got, problem = call(fn, (weight.clone(), bias.clone(), heads), what)
        if problem:
            return verdict(name, problem, hint)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return verdict(name, f"{what} should return a pair (weight, bias)", hint)
        got_w, got_b = got
        problem = compare_tensor(got_w, want_w, f"{what}: weight")
        if problem and isinstance(got_w, torch.Tensor) and got_w.shape == want_w.shape:
            got_w = got_w.detach().float()
            head_dim = dim // heads
            if torch.equal(got_w, weight):
                problem = (f"{what}: the weight came back unchanged; its rows are still head by head, vtlib "
                           "wants all q rows, then all k rows, then all v rows")
            elif torch.equal(got_w, rearrange(weight, "(three h d) e -> (h three d) e", three=3, h=heads)):
                problem = f"{what}: that is the opposite conversion (vtlib's order to head by head)"
            elif torch.equal(got_w, rearrange(weight, "(h d three) e -> (three h d) e", three=3, h=heads)):
                problem = (f"{what}: within a head the rows are blocks, q's {head_dim} rows then k's then v's, "
                           "not q, k, v interleaved row by row")
            elif torch.equal(got_w, rearrange(weight, "(h three d) e -> (three h d) e", three=3, h=head_dim)):
                problem = f"{what}: h is the number of heads ({heads}), not the head width ({head_dim})"
        if problem:
            return verdict(name, problem, hint)
        problem = compare_tensor(got_b, want_b, f"{what}: bias")
        if problem and isinstance(got_b, torch.Tensor) and got_b.shape == bias.shape and torch.equal(
                got_b.detach().float(), bias):
            problem = f"{what}: the bias came back unchanged; its entries follow the same order as the weight's rows"
        if problem:
            return verdict(name, problem, hint)
        attn = MultiHeadAttention(dim=dim, heads=heads).eval()          # the port must compute the same thing
        x = torch.randn(2, 5, dim, generator=g)
        with torch.no_grad():
            attn.qkv.weight.copy_(got_w)
            attn.qkv.bias.copy_(got_b)
            q, k, v = rearrange(attn.qkv(x), "b n (three h d) -> three b h n d", three=3, h=heads)
            ours = attention_explicit(q, k, v)[0]
        if not torch.allclose(ours, head_by_head_attention(x, weight, bias, heads), atol=1e-5):
            return verdict(name, "the ported projection does not compute the checkpoint's attention", hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 2: cross-frame share
def _frames(grid) -> torch.Tensor:
    nt, nh, nw = grid
    return repeat(torch.arange(nt), "t -> (t s)", s=nh * nw)


def cross_frame_reference(attn: torch.Tensor, grid) -> torch.Tensor:
    """(B, heads, 1 + N, 1 + N) -> (B, heads): mean over tubelet queries of their weight on other frames."""
    f = _frames(grid)
    other = f[:, None] != f[None, :]                                   # (N, N)
    return (attn[:, :, 1:, 1:] * other).sum(-1).mean(-1)


def _random_maps(grid, batch: int, heads: int, seed: int) -> torch.Tensor:
    n = math.prod(grid)
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.randn(batch, heads, 1 + n, 1 + n, generator=g)).softmax(-1)


def check_cross_frame_share(fn: Callable) -> bool:
    """``fn(attn (B, heads, 1 + N, 1 + N), grid (nt, nh, nw)) -> (B, heads)``: for each clip and head,
    the mean over the N tubelet queries (rows 1..N) of the attention weight they put on tubelet keys
    of a DIFFERENT token-frame. Index 0 is the CLS token (a query and a key that belong to no frame);
    tubelets are in (t h w) order."""
    name = "check_cross_frame_share"
    hint = ("drop the CLS row and column (attn[:, :, 1:, 1:]), build the (N, N) 'other frame' mask from "
            "frame(i) = i // (nh·nw), sum the masked weights over keys, then average over queries")
    for grid, batch, heads in (((3, 2, 2), 2, 3), ((4, 1, 3), 1, 2), ((2, 2, 2), 3, 1)):
        attn = _random_maps(grid, batch, heads, seed=51 + grid[0])
        want = cross_frame_reference(attn, grid)
        what = f"fn(attn {tuple(attn.shape)}, grid={grid})"
        got, problem = call(fn, (attn.clone(), grid), what)
        if problem:
            return verdict(name, problem, hint)
        problem = compare_tensor(got, want, what)
        if problem is None:
            continue
        if isinstance(got, torch.Tensor) and tuple(got.shape) in ((batch,), (heads,)) and batch != heads:
            problem = f"{what}: one share per clip AND head: shape (B, heads) = {tuple(want.shape)}"
        elif isinstance(got, torch.Tensor) and got.shape == want.shape:
            got = got.detach().float()
            f, n = _frames(grid), math.prod(grid)
            same = (attn[:, :, 1:, 1:] * (f[:, None] == f[None, :])).sum(-1).mean(-1)
            other_no_offset = (attn[:, :, :n, :n] * (f[:, None] != f[None, :])).sum(-1).mean(-1)
            pos = torch.arange(n) % grid[0]
            by_modulo = (attn[:, :, 1:, 1:] * (pos[:, None] != pos[None, :])).sum(-1).mean(-1)
            slips = [(same, "that is the share inside the query's own frame; the question asks for the other frames"),
                     (want + attn[:, :, 1:, 0].mean(-1), "the CLS key (column 0) belongs to no frame; leave it out"),
                     (other_no_offset, "index 0 is the CLS token; the tubelets are rows and columns 1..N"),
                     (by_modulo, "in (t h w) order the frame of tubelet i is i // (nh·nw), not i % nt")]
            for value, why in slips:
                if torch.allclose(got, value, atol=1e-5):
                    problem = f"{what}: {why}"
                    break
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 3: order blindness
BLIND_THRESHOLD = 1e-5
TRANSFORM_NAMES = ("reverse token-frames", "reverse all frames", "swap left and right halves", "mirror left-right")


def reverse_token_frames_reference(clip: torch.Tensor, t: int) -> torch.Tensor:
    """(B, C, T, H, W): reverse the order of the T / t slabs of t frames, keep the frames inside each slab."""
    slabs = rearrange(clip, "b c (n t) h w -> b c n t h w", t=t)
    return rearrange(slabs.flip(2), "b c n t h w -> b c (n t) h w")


def reference_transforms() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The four rearrangements of a 28³ clip the experiment compares (4×7×7 tubelets)."""
    return {"reverse token-frames": lambda c: reverse_token_frames_reference(c, 4),
            "reverse all frames": lambda c: c.flip(2),
            "swap left and right halves": lambda c: c.roll(14, dims=4),
            "mirror left-right": lambda c: c.flip(4)}


def logit_change_reference(model: torch.nn.Module, clip: torch.Tensor, transform: Callable) -> float:
    """Largest |model(transform(clip)) - model(clip)| over clips and classes, without autograd."""
    with torch.no_grad():
        return (model(transform(clip)) - model(clip)).abs().max().item()


def blind_model(position: str, seed: int = 0):
    """A small fresh Model 1 on 28³ clips with 4×7×7 tubelets and the given position kind."""
    from vtlib.models.vivit import ViViT

    torch.manual_seed(seed)
    return ViViT(num_classes=2, video_shape=(28, 28, 28), tubelet=(4, 7, 7), dim=16, depth=2, heads=2,
                 position=position).eval()


def blind_clip(seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 1, 28, 28, 28, generator=torch.Generator().manual_seed(seed))


def blindness_reference(seed: int = 0) -> dict[str, set[str]]:
    """{position kind: the transforms whose logit change stays below BLIND_THRESHOLD}."""
    clip, out = blind_clip(seed), {}
    for position in ("none", "space", "learned"):
        model = blind_model(position, seed)
        out[position] = {name for name, tf in reference_transforms().items()
                         if logit_change_reference(model, clip, tf) < BLIND_THRESHOLD}
    return out


_BLIND_HINTS = {
    ("none", "reverse all frames", True): "inside one token-frame the Conv3d sees its 4 frames in order: reversing "
                                          "all frames changes every tubelet, not only their order",
    ("none", "mirror left-right", True): "mirroring flips the pixels inside every 7×7 patch, so the tokens change",
    ("none", "reverse token-frames", False): "reversing whole token-frames only reorders the tokens; without "
                                             "positions attention and the CLS cannot tell",
    ("none", "swap left and right halves", False): "rolling by 14 pixels moves whole 7×7 patches: the tokens are "
                                                   "only reordered, which a model without positions cannot see",
    ("space", "swap left and right halves", True): "space-only positions tell the (h, w) of a patch apart, so "
                                                   "moving patches sideways shows",
    ("space", "reverse token-frames", False): "space-only positions are the same in every token-frame, so the "
                                              "order of whole token-frames stays invisible",
}


def check_order_blindness(reverse_fn: Callable, change_fn: Callable, blind_to) -> bool:
    """``reverse_fn(clip, t)``: (B, C, T, H, W) with the T / t token-frames (slabs of t frames) in reverse
    order, frames inside a slab untouched; ``change_fn(model, clip, transform) -> float``: the largest
    absolute change of the logits when ``transform`` is applied to ``clip``; ``blind_to``: a dict
    {"none": names, "space": names} of the transforms (by name, from the notebook's four) that change
    the logits of a fresh Model 1 with ``position="none"`` / ``"space"`` by less than 1e-5."""
    name = "check_order_blindness"
    hint = ("reverse_fn: split the time axis into (slabs, t) with einops and reverse the slab axis only; "
            "change_fn: compare the two logits under torch.no_grad(); then read blind_to off your table of "
            "changes")
    g = torch.Generator().manual_seed(52)
    for shape, t in (((2, 1, 8, 4, 4), 2), ((1, 2, 9, 3, 2), 3), ((1, 1, 28, 28, 28), 4)):
        clip = torch.rand(*shape, generator=g)
        want = reverse_token_frames_reference(clip, t)
        what = f"reverse_fn(clip {shape}, t={t})"
        got, problem = call(reverse_fn, (clip.clone(), t), what)
        if problem:
            return verdict(name, problem, hint)
        problem = compare_tensor(got, want, what)
        if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
            if torch.equal(got.detach(), clip.flip(2)):
                problem = f"{what}: that reverses the frames inside each token-frame too; keep each slab's order"
            elif torch.equal(got.detach(), clip):
                problem = f"{what}: the clip came back unchanged"
        if problem:
            return verdict(name, problem, hint)
    clip = blind_clip(1)
    for position in ("learned", "none"):
        model = blind_model(position, seed=1)
        for tf_name, tf in reference_transforms().items():
            want = logit_change_reference(model, clip, tf)
            what = f"change_fn(ViViT(position={position!r}), clip {tuple(clip.shape)}, {tf_name!r})"
            got, problem = call(change_fn, (model, clip.clone(), tf), what)
            if problem:
                return verdict(name, problem, hint)
            if isinstance(got, torch.Tensor) and got.numel() > 1:
                return verdict(name, f"{what} returned a tensor of shape {tuple(got.shape)}; return one number, "
                                     "the largest absolute change", hint)
            problem = compare_number(got, want, what, tol=max(1e-6, 1e-3 * want))
            if problem:
                with torch.no_grad():
                    mean = (model(tf(clip)) - model(clip)).abs().mean().item()
                value = float(got) if isinstance(got, (int, float)) else got
                if isinstance(value, float) and math.isclose(value, mean, rel_tol=1e-3):
                    problem = f"{what}: that is the mean change; the question asks for the largest"
                return verdict(name, problem, hint)
    if not isinstance(blind_to, dict) or set(blind_to) != {"none", "space"}:
        return verdict(name, "blind_to should be a dict with the keys 'none' and 'space', each a set of "
                             f"transform names from {TRANSFORM_NAMES}", hint)
    ref = blindness_reference()
    for position in ("none", "space"):
        try:
            got = set(blind_to[position])
        except TypeError:
            return verdict(name, f"blind_to[{position!r}] should be a set of transform names (still "
                                 f"{blind_to[position]!r})", hint)
        unknown = got - set(TRANSFORM_NAMES)
        if unknown:
            return verdict(name, f"blind_to[{position!r}]: unknown names {sorted(unknown)}; use {TRANSFORM_NAMES}",
                           hint)
        if got != ref[position]:
            for tf_name in TRANSFORM_NAMES:
                extra = tf_name in got and tf_name not in ref[position]
                missing = tf_name in ref[position] and tf_name not in got
                if extra or missing:
                    why = _BLIND_HINTS.get((position, tf_name, extra),
                                           f"the run says {tf_name!r} is {'seen' if extra else 'not seen'}")
                    verb = "contains" if extra else "misses"
                    return verdict(name, f"blind_to[{position!r}] {verb} {tf_name!r}: {why}", hint)
    return verdict(name, None, hint)
