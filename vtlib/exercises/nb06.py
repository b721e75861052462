"""Exercise checks for notebook 06 (ViViT factorised: Models 2, 3, 4).

Each check calls the learner's function on fixed inputs, compares the result with a vtlib
reference, prints ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: ...")
and returns a bool. A function that still raises ``NotImplementedError`` gets the fixed
"write the function first" line. Inputs come from private seeded generators, and the models the checks
build leave the global random state as it was.

- ``check_group_by_frame_hwt``: one sequence per token-frame when the tokens are stored
  position-major, (h w t), instead of the course's (t h w).
- ``check_causal_temporal_attention``: temporal attention in which a token sees its own position in
  its own and EARLIER token-frames only, against ``MultiHeadAttention`` with a masked joint call.
- ``check_clip_score_entries``: the attention score entries of one clip for Models 1-4 as
  ``vtlib.experiments.vivit_variants.build`` makes them (CLS tokens and Model 4's head split counted).
- ``check_crossover``: a small experiment: from how many frames on is Model 3 cheaper than Model 1,
  by the block formula and by measuring whole models with ``vtlib.cost.measure_flops``, and which of
  the two finds the crossover first.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import torch
from einops import rearrange

from vtlib.attention import MultiHeadAttention
from vtlib.exercises.common import call, compare_count, compare_tensor, first, verdict
from vtlib.models.vivit_fdp import factorised_masks


# ----------------------------------------------------------------------------- exercise 1: (h w t) order
def _hwt_problem(fn: Callable, b: int, nt: int, s: int, d: int, g: torch.Generator) -> str | None:
    x = torch.randn(b, s * nt, d, generator=g)                      # (h w t): the frame index varies fastest
    what = f"fn(tokens {b}x{s * nt}x{d} in (h w t) order, nt={nt})"
    got, problem = call(fn, (x.clone(), nt), what)
    if problem:
        return problem
    want = rearrange(x, "b (s t) d -> (b t) s d", t=nt)
    problem = compare_tensor(got, want, what)
    if problem is None or not isinstance(got, torch.Tensor):
        return problem
    got = got.detach().float()
    if got.shape == want.shape and torch.equal(got, rearrange(x, "b (t s) d -> (b t) s d", t=nt)):
        return (f"{what}: that reads the tokens as (t h w), the course's order; here token n sits in "
                "token-frame n % nt at position n // nt")
    if got.shape == want.shape and torch.equal(got, rearrange(x, "b (s t) d -> (t b) s d", t=nt)):
        return f"{what}: the sequences come out frame-major; keep clip-major order, (b t): clip 0's frames first"
    if tuple(got.shape) == (b * s, nt, d):
        return f"{what}: shape {tuple(got.shape)} is one sequence per POSITION; group by token-frame: (B*nt, S, D)"
    return problem


def check_group_by_frame_hwt(fn: Callable) -> bool:
    """``fn(tokens (B, S*nt, D) in (h w t) order, nt) -> (B*nt, S, D)``: one sequence per token-frame,
    clip-major (clip 0's nt frames first), each frame's S tokens in (h w) order."""
    hint = ("name the axes in the order the tokens are stored: which of frame and position changes fastest "
            "from one token to the next?")
    g = torch.Generator().manual_seed(6)
    problems = (_hwt_problem(fn, *case, g) for case in ((2, 3, 4, 5), (1, 7, 16, 8), (3, 5, 2, 4)))
    return verdict("check_group_by_frame_hwt", first(problems), hint)


# ----------------------------------------------------------------------------- exercise 2: causal time
def _causal_masks(nt: int, s: int) -> dict[str, torch.Tensor]:
    """The right (N, N) pattern for (t h w) tokens and typical slips, True = may attend."""
    same_frame, same_position = factorised_masks((nt, s))
    frame = torch.arange(nt * s) // s
    earlier = frame[None, :] <= frame[:, None]                      # key's frame <= query's frame
    token = torch.arange(nt * s)
    return {"right": same_position & earlier, "not causal": same_position,
            "later": same_position & (frame[None, :] >= frame[:, None]),
            "across positions": token[None, :] <= token[:, None], "space": same_frame & earlier}


@torch.no_grad()
def _causal_problem(fn: Callable, b: int, nt: int, s: int, d: int, g: torch.Generator) -> str | None:
    with torch.random.fork_rng(devices=[]):
        attn = MultiHeadAttention(dim=d, heads=2).eval()
    for p in attn.parameters():
        p.copy_(0.3 * torch.randn(p.shape, generator=g))
    x = torch.randn(b, nt * s, d, generator=g)
    masks = _causal_masks(nt, s)
    want = attn(x, mask=masks["right"])
    what = f"fn(x {b}x{nt * s}x{d}, attn, nt={nt})"
    got, problem = call(fn, (x.clone(), attn, nt), what)
    if problem:
        return problem
    problem = compare_tensor(got, want, what)
    if problem is None or not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return problem
    got = got.detach().float()
    if not torch.isfinite(got).all():
        return f"{what}: NaN in the output; a token must also see itself (its own token-frame)"
    slips = {"not causal": "each token also sees LATER token-frames; keep only the same and earlier ones",
             "later": "each token sees the same and LATER token-frames; it should see the earlier ones",
             "across positions": "a token sees earlier tokens at OTHER positions too; only its own position",
             "space": "this attends within a frame (space), not along time"}
    for slip, message in slips.items():
        if torch.allclose(got, attn(x, mask=masks[slip]), atol=1e-5):
            return f"{what}: {message}"
    frame = torch.arange(nt)
    strict = rearrange(x, "b (t s) d -> (b s) t d", t=nt)
    strict = attn(strict, mask=frame[None, :] < frame[:, None])
    if torch.allclose(got, rearrange(strict, "(b s) t d -> b (t s) d", b=b), atol=1e-5):
        return f"{what}: each token sees only STRICTLY earlier frames; it must see its own frame too (j <= i)"
    return problem


def check_causal_temporal_attention(fn: Callable) -> bool:
    """``fn(x (B, nt*S, D) in (t h w) order, attn: MultiHeadAttention, nt) -> (B, nt*S, D)``.

    Temporal attention for a streaming model: the token at (frame i, position p) attends to the tokens
    at position p in token-frames 0..i, never to later ones.
    """
    hint = ("group the tokens by position as Model 3's temporal attention does, give attn a mask over the nt "
            "frames of a sequence (vtlib.attention has one that fits), then put the tokens back")
    g = torch.Generator().manual_seed(8)
    problems = (_causal_problem(fn, *case, g) for case in ((2, 4, 3, 8), (1, 7, 16, 16), (3, 5, 2, 8)))
    return verdict("check_causal_temporal_attention", first(problems), hint)


# ----------------------------------------------------------------------------- exercise 3: score entries
SCORE_VARIANTS = ("model1-joint", "model2-fe", "model3-fsa", "model4-fdp")


def _clip_score_entries(variant: str, nt: int, S: int, depth: int, heads: int,
                       slip: str | None = None) -> int:
    """Score entries of one clip, summed over blocks and heads, for ``build(variant, depth=depth)``.

    ``slip`` names a typical mistake, to recognise it: "no cls", "no frame cls", "no temporal cls",
    "all spatial", "all heads".
    """
    N = nt * S
    if variant == "model1-joint":
        return depth * heads * (N ** 2 if slip == "no cls" else (N + 1) ** 2)
    if variant == "model2-fe":
        spatial_depth = depth if slip == "all spatial" else depth - 1
        frame = S if slip in ("no cls", "no frame cls") else S + 1
        time = nt if slip in ("no cls", "no temporal cls") else nt + 1
        return spatial_depth * heads * nt * frame ** 2 + heads * time ** 2
    factorised = nt * S * S + S * nt * nt
    if variant == "model3-fsa" or slip == "all heads":
        return depth * heads * factorised
    return depth * (heads // 2) * factorised


def check_clip_score_entries(fn: Callable) -> bool:
    """``fn(variant, nt, S, depth, heads) -> int``: the entries of every attention score matrix of one clip,
    over all blocks and heads, for ``build(variant, depth=depth, heads=heads)`` with nt token-frames of S
    tokens. Model 2 has depth - 1 spatial blocks and 1 temporal block. Checked at sizes too large to build:
    use a formula."""
    name = "check_clip_score_entries"
    hint = ("per block and head, a sequence of L tokens scores L^2 entries: count the sequences and their "
            "lengths, find every CLS that joins one, and check which heads of Model 4 do what")
    slips = {"no cls": "count the CLS tokens: Model 1 attends over N + 1 tokens",
             "no frame cls": "every token-frame gets its own copy of the spatial CLS: S + 1 tokens per frame",
             "no temporal cls": "the temporal transformer has its own CLS: nt + 1 vectors",
             "all spatial": "build gives Model 2 depth - 1 spatial blocks and 1 temporal block",
             "all heads": "a head of Model 4 attends in space OR in time: half the heads each"}
    cases = [(7, 16, 4, 4), (4, 9, 2, 2), (16, 196, 12, 12), (3, 1, 3, 6), (512, 4096, 24, 16)]
    for nt, S, depth, heads in cases:
        for variant in SCORE_VARIANTS:
            what = f"fn({variant!r}, nt={nt}, S={S}, depth={depth}, heads={heads})"
            got, problem = call(fn, (variant, nt, S, depth, heads), what)
            want = _clip_score_entries(variant, nt, S, depth, heads)
            problem = problem or compare_count(got, want, what)
            if problem is None:
                continue
            for slip, message in slips.items():
                wrong = _clip_score_entries(variant, nt, S, depth, heads, slip)
                if wrong != want and compare_count(got, wrong, what) is None:
                    problem = f"{what}: {message}"
                    break
            return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 4: crossover
def _formula_frames(dim: int, S: int, t: int) -> int:
    """Smallest clip length T = t * nt at which a Model 3 block is cheaper than a Model 1 block (no CLS):
    N - S - nt > 2 * dim with N = nt * S, i.e. nt * (S - 1) > 2 * dim + S."""
    nt = (2 * dim + S) // (S - 1) + 1
    return t * nt


@functools.lru_cache(maxsize=None)
def _measured_frames(dim: int, limit: int = 128) -> int | None:
    """Smallest frame count (a multiple of 4) at which ``build("model3-fsa", frames, dim=dim)`` needs fewer
    ``measure_flops`` than ``build("model1-joint", frames, dim=dim)`` on one 28 x 28 clip (None up to limit)."""
    from vtlib.cost import measure_flops
    from vtlib.experiments.vivit_variants import build

    for frames in range(4, limit + 1, 4):
        clip = torch.zeros(1, 1, frames, 28, 28)
        with torch.random.fork_rng(devices=[]):              # FLOPs do not depend on the weights' values
            flops = [measure_flops(build(v, frames=frames, dim=dim).eval(), clip)
                     for v in ("model1-joint", "model3-fsa")]
        if flops[1] < flops[0]:
            return frames
    return None


def _same_number(got: Any, want: int) -> bool:
    return compare_count(got, want, "") is None


def check_crossover(formula: Callable, measured: Callable, earlier: Any) -> bool:
    """``formula(dim, S, t) -> frames``: the smallest clip length (t frames per token-frame, S tokens per
    token-frame) at which a Model 3 block costs fewer FLOPs than a Model 1 block, by the rule of section 5;
    ``measured(dim) -> frames``: the same, found by measuring whole models (``build`` on 28 x 28 clips,
    frames 4, 8, 12, ...) with ``measure_flops``; ``earlier``: "formula" or "measured", whichever gives the
    smaller frame count where the two differ."""
    name = "check_crossover"
    hint = ("solve the rule for nt (it is a strict inequality), take the smallest whole nt and turn it into "
            "frames; for the measurement, compare the two built models one frame count at a time")
    for dim, S, t in ((64, 16, 4), (22, 16, 4), (37, 16, 4), (768, 196, 2), (32, 49, 2), (100, 5, 1)):
        what = f"formula(dim={dim}, S={S}, t={t})"
        got, problem = call(formula, (dim, S, t), what)
        want = _formula_frames(dim, S, t)
        problem = problem or compare_count(got, want, what)
        if problem:
            if _same_number(got, want // t):
                problem = f"{what}: that is the number of token-frames nt; the clip has t = {t} frames per token-frame"
            elif _same_number(got, want - t):
                problem = (f"{what}: at that length the two costs are equal or Model 3 is still dearer; the rule is "
                           "a strict N - S - nt > 2D")
            return verdict(name, problem, hint)
    for dim in (16, 32):
        what = f"measured(dim={dim})"
        got, problem = call(measured, (dim,), what)
        want = _measured_frames(dim)
        problem = problem or compare_count(got, want, what)
        if problem:
            if _same_number(got, _formula_frames(dim, 16, 4)) and want != _formula_frames(dim, 16, 4):
                problem = f"{what}: that is the formula's answer; measure the two whole models with measure_flops"
            elif _same_number(got, 4):
                problem = f"{what}: at 4 frames Model 1 is the cheaper one; find the first length where Model 3 is"
            return verdict(name, problem, hint)
    if earlier not in ("formula", "measured"):
        return verdict(name, f"earlier should be 'formula' or 'measured', got {earlier!r}", hint)
    if earlier != ("measured" if _measured_frames(16) < _formula_frames(16, 16, 4) else "formula"):
        return verdict(name, "earlier: compare your two answers at dim=16; the whole Model 1 also carries a CLS "
                             "token, which the block formula leaves out", hint)
    return verdict(name, None, hint)
