"""Exercise checks for notebook 06 (ViViT factorised: Models 2, 3, 4).

Each check calls your function on a few fixed inputs, compares it with the vtlib reference, prints
ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: <hint>") and returns a
bool. Inputs come from a private seeded generator, so the global random state is not touched.
"""
from __future__ import annotations

from typing import Callable

import torch
from einops import rearrange

from vtlib.attention import MultiHeadAttention
from vtlib.block import mlp_hidden_dim
from vtlib.cost import attention_flops, block_flops, mlp_flops
from vtlib.exercises.common import call, compare_count, compare_tensor, first, verdict
from vtlib.models.vivit_fdp import factorised_masks


def _group_problem(fn: Callable, b: int, nt: int, s: int, d: int, g: torch.Generator) -> str | None:
    x = torch.randn(b, nt * s, d, generator=g)
    what = f"fn(tokens {b}x{nt * s}x{d}, nt={nt})"
    got, problem = call(fn, (x.clone(), nt), what)
    if problem:
        return problem
    if isinstance(got, torch.Tensor) and got.shape == (b * nt, s, d) and s > 1 \
            and torch.equal(got, rearrange(x, "b (s t) d -> (b t) s d", t=nt)):
        return f"{what}: the tokens of one sequence come from different frames"
    return compare_tensor(got, rearrange(x, "b (t s) d -> (b t) s d", t=nt), what)


def check_group_by_frame(fn: Callable) -> bool:
    """``fn(tokens (B, nt*S, D), nt) -> (B*nt, S, D)``: one sequence per token-frame."""
    hint = "tokens are time-major (t h w): rearrange(tokens, 'b (t s) d -> (b t) s d', t=nt)"
    g = torch.Generator().manual_seed(6)
    problems = (_group_problem(fn, *case, g) for case in ((2, 3, 4, 5), (1, 7, 16, 8)))
    return verdict("check_group_by_frame", first(problems), hint)


def _score_problem(fn: Callable, nt: int, s: int) -> str | None:
    what = f"fn(nt={nt}, S={s})"
    got, problem = call(fn, (nt, s), what)
    problem = problem or compare_count(got, ((nt * s) ** 2, nt * s * s + s * nt * nt), what)
    if problem and isinstance(got, (tuple, list)) and len(got) == 2 and got[1] == s * s + nt * nt:
        problem += " (count every frame and every position, not one of each)"
    return problem


def check_score_entries(fn: Callable) -> bool:
    """``fn(nt, S) -> (joint, factorised)``: score entries of one layer and head for one clip.

    joint = (nt*S)^2; factorised (space then time, Model 3; or one spatial plus one temporal head
    of Model 4) = nt*S^2 + S*nt^2.
    """
    hint = "joint: N^2 with N = nt*S; factorised: nt frames of S^2 plus S positions of nt^2"
    problems = (_score_problem(fn, nt, s) for nt, s in ((7, 16), (16, 16), (3, 49)))
    return verdict("check_score_entries", first(problems), hint)


def _mask_problem(fn: Callable, nt: int, s: int) -> str | None:
    what = f"fn(nt={nt}, S={s})"
    got, problem = call(fn, (nt, s), what)
    if problem:
        return problem
    same_frame, same_position = factorised_masks((nt, s))
    if isinstance(got, torch.Tensor) and got.shape == same_frame.shape and torch.equal(got.bool(), same_frame):
        return f"{what}: that is the same-FRAME mask (spatial attention), not same-position"
    problem = compare_tensor(got, same_position, what)
    if problem is None and got.dtype != torch.bool:
        return f"{what}: return a bool tensor (True = may attend)"
    return problem


def check_same_position_mask(fn: Callable) -> bool:
    """``fn(nt, S) -> (N, N) bool``: True where two tokens sit at the same spatial position."""
    hint = "spatial index of token n is n % S (tokens are (t h w)); compare it for every pair"
    problems = (_mask_problem(fn, nt, s) for nt, s in ((3, 4), (7, 16)))
    return verdict("check_same_position_mask", first(problems), hint)


@torch.no_grad()
def _temporal_problem(fn: Callable, b: int, nt: int, s: int, d: int, g: torch.Generator) -> str | None:
    attn = MultiHeadAttention(dim=d, heads=2).eval()
    for p in attn.parameters():
        p.copy_(0.3 * torch.randn(p.shape, generator=g))
    x = torch.randn(b, nt * s, d, generator=g)
    same_frame, same_position = factorised_masks((nt, s))
    want = attn(x, mask=same_position)
    what = f"fn(x {b}x{nt * s}x{d}, attn, nt={nt})"
    got, problem = call(fn, (x.clone(), attn, nt), what)
    if problem:
        return problem
    if isinstance(got, torch.Tensor) and got.shape == want.shape \
            and torch.allclose(got, attn(x, mask=same_frame), atol=1e-5):
        return f"{what}: this attends within a frame (space), not across time"
    return compare_tensor(got, want, what)


def check_temporal_attention(fn: Callable) -> bool:
    """``fn(x (B, nt*S, D), attn: MultiHeadAttention, nt) -> (B, nt*S, D)``: attention over time only.

    Each token attends to the nt tokens at its own spatial position (Model 3's second attention).
    """
    hint = ("rearrange 'b (t s) d -> (b s) t d', apply attn, then rearrange back "
            "'(b s) t d -> b (t s) d' (pass b=B)")
    g = torch.Generator().manual_seed(8)
    problems = (_temporal_problem(fn, *case, g) for case in ((2, 4, 3, 8), (1, 7, 16, 16)))
    return verdict("check_temporal_attention", first(problems), hint)


def _model3_block_flops(nt: int, s: int, dim: int) -> int:
    n = nt * s
    return nt * attention_flops(s, dim) + s * attention_flops(nt, dim) + mlp_flops(n, dim, mlp_hidden_dim(dim, 4.0))


def _cheaper_problem(fn: Callable, nt: int, s: int, d: int) -> str | None:
    what = f"fn(nt={nt}, S={s}, dim={d})"
    got, problem = call(fn, (nt, s, d), what)
    want = _model3_block_flops(nt, s, d) < block_flops(nt * s, d, 4.0)
    if problem is None and (not isinstance(got, (bool, torch.Tensor)) or bool(got) != want):
        return f"{what} should be {want}"
    return problem


def check_model3_cheaper(fn: Callable) -> bool:
    """``fn(nt, S, dim) -> bool``: does a Model 3 block cost fewer FLOPs than a Model 1 block?

    Same width, MLP ratio 4, no CLS token, FLOPs as in ``vtlib.cost`` (multiply-add = 2).
    """
    hint = ("Model 3 saves 4*D*(N^2 - nt*S^2 - S*nt^2) score FLOPs and pays 8*N*D^2 for its second "
            "attention's projections; compare the two (vtlib.cost.attention_flops helps)")
    cases = [(7, 16, 64), (7, 16, 32), (16, 196, 768), (8, 49, 192), (32, 16, 64), (2, 4, 64)]
    return verdict("check_model3_cheaper", first(_cheaper_problem(fn, *case) for case in cases), hint)
