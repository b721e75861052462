"""Exercise checks for notebook 06 (ViViT factorised: Models 2, 3, 4).

Each check calls your function on a few fixed inputs, compares it with the vtlib reference, prints
ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: <hint>") and returns a
bool. Inputs come from a private seeded generator, so the global random state is not touched.
"""
from __future__ import annotations

import torch
from einops import rearrange

from vtlib.attention import MultiHeadAttention
from vtlib.block import mlp_hidden_dim
from vtlib.cost import attention_flops, block_flops, mlp_flops
from vtlib.models.vivit_fdp import factorised_masks


def _verdict(name: str, problem: str | None, hint: str) -> bool:
    print(f"{name}: correct" if problem is None else f"{name}: not yet - {problem}; hint: {hint}")
    return problem is None


def _run(fn, args, what: str):
    """Call the learner's function; return (result, problem)."""
    try:
        return fn(*args), None
    except Exception as e:  # the learner's code may raise anything
        return None, f"{what} raised {type(e).__name__}"


def _compare(got, want: torch.Tensor, what: str) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"{what}: expected a torch.Tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(want.shape):
        return f"{what}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
    if got.dtype == torch.bool or want.dtype == torch.bool:
        return None if torch.equal(got.bool().cpu(), want.bool()) else f"{what}: wrong entries"
    if not torch.allclose(got.detach().float().cpu(), want.float(), rtol=1e-4, atol=1e-5):
        return f"{what}: wrong values"
    return None


def check_group_by_frame(fn) -> bool:
    """``fn(tokens (B, nt*S, D), nt) -> (B*nt, S, D)``: one sequence per token-frame."""
    name = "check_group_by_frame"
    hint = "tokens are time-major (t h w): rearrange(tokens, 'b (t s) d -> (b t) s d', t=nt)"
    g = torch.Generator().manual_seed(6)
    for b, nt, s, d in ((2, 3, 4, 5), (1, 7, 16, 8)):
        x = torch.randn(b, nt * s, d, generator=g)
        what = f"fn(tokens {b}x{nt * s}x{d}, nt={nt})"
        got, problem = _run(fn, (x.clone(), nt), what)
        if problem is None and isinstance(got, torch.Tensor) and got.shape == (b * nt, s, d):
            if torch.equal(got, rearrange(x, "b (s t) d -> (b t) s d", t=nt)) and s > 1:
                problem = f"{what}: the tokens of one sequence come from different frames"
        problem = problem or _compare(got, rearrange(x, "b (t s) d -> (b t) s d", t=nt), what)
        if problem:
            return _verdict(name, problem, hint)
    return _verdict(name, None, hint)


def check_score_entries(fn) -> bool:
    """``fn(nt, S) -> (joint, factorised)``: score entries of one layer and head for one clip.

    joint = (nt*S)^2; factorised (space then time, Model 3; or one spatial plus one temporal head
    of Model 4) = nt*S^2 + S*nt^2.
    """
    name = "check_score_entries"
    hint = "joint: N^2 with N = nt*S; factorised: nt frames of S^2 plus S positions of nt^2"
    for nt, s in ((7, 16), (16, 16), (3, 49)):
        what = f"fn(nt={nt}, S={s})"
        got, problem = _run(fn, (nt, s), what)
        if problem is None:
            want = ((nt * s) ** 2, nt * s * s + s * nt * nt)
            try:
                ok = len(got) == 2 and all(int(g) == w and float(g) == w for g, w in zip(got, want))
            except Exception:
                ok = False
            if not ok:
                problem = f"{what} should return {want}"
                if isinstance(got, (tuple, list)) and len(got) == 2 and got[1] == s * s + nt * nt:
                    problem += " (count every frame and every position, not one of each)"
        if problem:
            return _verdict(name, problem, hint)
    return _verdict(name, None, hint)


def check_same_position_mask(fn) -> bool:
    """``fn(nt, S) -> (N, N) bool``: True where two tokens sit at the same spatial position."""
    name = "check_same_position_mask"
    hint = "spatial index of token n is n % S (tokens are (t h w)); compare it for every pair"
    for nt, s in ((3, 4), (7, 16)):
        what = f"fn(nt={nt}, S={s})"
        got, problem = _run(fn, (nt, s), what)
        same_frame, same_position = factorised_masks((nt, s))
        if problem is None and isinstance(got, torch.Tensor) and got.shape == same_frame.shape \
                and torch.equal(got.bool(), same_frame):
            problem = f"{what}: that is the same-FRAME mask (spatial attention), not same-position"
        problem = problem or _compare(got, same_position, what)
        if problem is None and got.dtype != torch.bool:
            problem = f"{what}: return a bool tensor (True = may attend)"
        if problem:
            return _verdict(name, problem, hint)
    return _verdict(name, None, hint)


def check_temporal_attention(fn) -> bool:
    """``fn(x (B, nt*S, D), attn: MultiHeadAttention, nt) -> (B, nt*S, D)``: attention over time only.

    Each token attends to the nt tokens at its own spatial position (Model 3's second attention).
    """
    name = "check_temporal_attention"
    hint = ("rearrange 'b (t s) d -> (b s) t d', apply attn, then rearrange back "
            "'(b s) t d -> b (t s) d' (pass b=B)")
    g = torch.Generator().manual_seed(8)
    for b, nt, s, d in ((2, 4, 3, 8), (1, 7, 16, 16)):
        attn = MultiHeadAttention(d, 2).eval()
        with torch.no_grad():
            for p in attn.parameters():
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
        x = torch.randn(b, nt * s, d, generator=g)
        _, same_position = factorised_masks((nt, s))
        with torch.no_grad():
            want = attn(x, mask=same_position)
        what = f"fn(x {b}x{nt * s}x{d}, attn, nt={nt})"
        with torch.no_grad():
            got, problem = _run(fn, (x.clone(), attn, nt), what)
        if problem is None and isinstance(got, torch.Tensor) and got.shape == want.shape:
            same_frame, _ = factorised_masks((nt, s))
            with torch.no_grad():
                if torch.allclose(got, attn(x, mask=same_frame), atol=1e-5):
                    problem = f"{what}: this attends within a frame (space), not across time"
        problem = problem or _compare(got, want, what)
        if problem:
            return _verdict(name, problem, hint)
    return _verdict(name, None, hint)


def _model3_block_flops(nt: int, s: int, dim: int) -> int:
    n = nt * s
    return nt * attention_flops(s, dim) + s * attention_flops(nt, dim) + mlp_flops(n, dim, mlp_hidden_dim(dim, 4.0))


def check_model3_cheaper(fn) -> bool:
    """``fn(nt, S, dim) -> bool``: does a Model 3 block cost fewer FLOPs than a Model 1 block?

    Same width, MLP ratio 4, no CLS token, FLOPs as in ``vtlib.cost`` (multiply-add = 2).
    """
    name = "check_model3_cheaper"
    hint = ("Model 3 saves 4*D*(N^2 - nt*S^2 - S*nt^2) score FLOPs and pays 8*N*D^2 for its second "
            "attention's projections; compare the two (vtlib.cost.attention_flops helps)")
    cases = [(7, 16, 64), (7, 16, 32), (16, 196, 768), (8, 49, 192), (32, 16, 64), (2, 4, 64)]
    for nt, s, d in cases:
        what = f"fn(nt={nt}, S={s}, dim={d})"
        got, problem = _run(fn, (nt, s, d), what)
        want = _model3_block_flops(nt, s, d) < block_flops(nt * s, d, 4.0)
        if problem is None and (not isinstance(got, (bool, torch.Tensor)) or bool(got) != want):
            problem = f"{what} should be {want}"
        if problem:
            return _verdict(name, problem, hint)
    return _verdict(name, None, hint)
