"""Exercise checks for notebook 03 (CLS token and pooling).

Each check calls the learner's function on fixed inputs, compares the result with a vtlib
reference, prints ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: ...")
and returns a bool. A function that still raises ``NotImplementedError`` gets the fixed
"write the function first" line.

- ``check_masked_mean_pool``: the mean over the real tokens of clips padded to one length,
  the padding ignored.
- ``check_multi_query_pool``: Q learned queries, each a single-head attention pool over all tokens
  (no projections), one pooled vector per query; Q = 1 is ``vtlib.pooling.attention_pool``.
- ``check_block_patch_grads``: the gradient that each block's patch-token outputs receive from the
  logits, for a CLS, a mean and an attention-pool ViViT, and which blocks get none.
- ``check_pool_spread``: a small experiment: how many tokens an ``AttentionPool`` reads at
  initialisation (exp of the entropy of its weights) as its query's init_std grows.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from vtlib.exercises.common import call, compare_number, compare_tensor, verdict
from vtlib.pooling import AttentionPool, attention_pool


def _same(got, want: torch.Tensor, atol: float = 1e-5) -> bool:
    return (isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(want.shape)
            and torch.allclose(got.detach().float().cpu(), want.float(), atol=atol, equal_nan=True))


# ----------------------------------------------------------------------------- exercise 1: masked mean
def _padded_case(seed: int, lengths: list[int] | None, shape: tuple[int, int, int]):
    """Tokens whose padding holds large numbers, and the keep mask (B, N) bool (True = real token)."""
    B, N, D = shape
    g = torch.Generator().manual_seed(seed)
    if lengths is not None:
        keep = torch.arange(N)[None, :] < torch.tensor(lengths)[:, None]
    else:
        keep = torch.rand(B, N, generator=g) < 0.5
        keep[:, 0] |= ~keep.any(1)                             # at least one real token per clip
    x = torch.randn(B, N, D, generator=g)
    x = torch.where(keep[..., None], x, 50 + 10 * torch.randn(B, N, D, generator=g))
    return x, keep


def _masked_mean(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    k = keep[..., None].to(x.dtype)
    return (x * k).sum(1) / k.sum(1)


def check_masked_mean_pool(fn: Callable) -> bool:
    """``fn(x (B, N, D), keep (B, N) bool) -> (B, D)``: for each clip, the mean of the tokens with
    ``keep`` True (its real tokens); padding tokens, whatever they hold, change nothing."""
    name = "check_masked_mean_pool"
    hint = "a padding token must count neither in a clip's sum nor in its number of tokens"
    cases = ((0, [6, 2, 4], (3, 6, 4)), (1, None, (4, 9, 8)), (2, [1, 5], (2, 5, 3)))
    for seed, lengths, shape in cases:
        x, keep = _padded_case(seed, lengths, shape)
        what = f"fn(x {shape[0]}x{shape[1]}x{shape[2]}, keep)"
        got, problem = call(fn, (x.clone(), keep.clone()), what)
        if problem:
            return verdict(name, problem, hint)
        want = _masked_mean(x, keep)
        problem = compare_tensor(got, want, what, atol=1e-4)
        if problem is None:
            continue
        k = keep[..., None].float()
        if _same(got, (x * k).sum(1) / x.shape[1], atol=1e-4):
            problem = f"{what}: you divided by all N tokens; divide by the number of real tokens of each clip"
        elif _same(got, _masked_mean(x, ~keep), atol=1e-3):
            problem = f"{what}: that is the mean of the padding; keep[b, n] is True for a real token"
        elif _same(got, x.mean(1), atol=1e-4):
            problem = f"{what}: that is the plain mean, padding included"
        elif isinstance(got, torch.Tensor) and tuple(got.shape) == (shape[2],):
            problem = f"{what}: one vector for the whole batch; pool each clip on its own: (B, D)"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 2: multi-query pool
def _multi_query(x: torch.Tensor, queries: torch.Tensor, scale: bool = True, axis: int = -1) -> torch.Tensor:
    scores = torch.einsum("bnd,qd->bqn", x, queries)
    if scale:
        scores = scores / math.sqrt(x.shape[-1])
    w = scores.softmax(dim=axis if axis == -1 else 1)          # axis 1: over the queries (a slip)
    return torch.einsum("bqn,bnd->bqd", w, x)


def check_multi_query_pool(fn: Callable) -> bool:
    """``fn(x (B, N, D), queries (Q, D)) -> (B, Q, D)``: out[b, q] is the single-head attention pool of
    clip b with query q: weights softmax over the N tokens of x[b, n] . queries[q] / sqrt(D)."""
    name = "check_multi_query_pool"
    hint = ("section 4 with one more axis: score every token with every query, a (B, Q, N) tensor scaled by "
            "1 / sqrt(D), softmax over the tokens, then one weighted sum of the tokens per query")
    for seed, (B, N, D, Q) in enumerate(((2, 7, 8, 3), (3, 5, 16, 1), (1, 12, 4, 5))):
        g = torch.Generator().manual_seed(20 + seed)
        x, queries = 2 * torch.randn(B, N, D, generator=g), torch.randn(Q, D, generator=g)
        what = f"fn(x {B}x{N}x{D}, queries {Q}x{D})"
        got, problem = call(fn, (x.clone(), queries.clone()), what)
        if problem:
            return verdict(name, problem, hint)
        want = _multi_query(x, queries)
        if Q == 1:
            want = attention_pool(x, queries[0])[:, None]       # Q = 1 is the pool of section 4
        problem = compare_tensor(got, want, what, atol=1e-4)
        if problem is None:
            continue
        if _same(got, _multi_query(x, queries, axis=1), atol=1e-4):
            problem = f"{what}: the softmax ran over the queries; each query's weights sum to 1 over the tokens"
        elif _same(got, _multi_query(x, queries, scale=False), atol=1e-4):
            problem = f"{what}: the scores are not scaled; divide them by sqrt(D) = {math.sqrt(D):g}"
        elif isinstance(got, torch.Tensor) and tuple(got.shape) == (Q, B, D):
            problem = f"{what}: shape (Q, B, D); put the batch first: (B, Q, D)"
        elif isinstance(got, torch.Tensor) and tuple(got.shape) == (B, D):
            problem = f"{what}: one vector per clip; keep one pooled vector per query, (B, Q, D)"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 3: block gradients
GRAD_DEPTH = 3


def grad_model(pool: str):
    """The untrained ViViT of the exercise (dim 32, depth 3, 2 heads) with this read-out."""
    from vtlib.models.vivit import ViViT

    torch.manual_seed(3)
    return ViViT(pool=pool, dim=32, depth=GRAD_DEPTH, heads=2)


def grad_clips() -> torch.Tensor:
    return torch.rand(2, 1, 28, 28, 28, generator=torch.Generator().manual_seed(3))


def block_patch_grads(model, clips: torch.Tensor, skip_prefix: bool = True) -> list[float]:
    """Norm of d logits.sum() / d (block output) at the patch tokens, for each block of ``model``."""
    outs = []
    hooks = [b.register_forward_hook(lambda mod, inp, out: outs.append(out)) for b in model.encoder.blocks]
    try:
        logits = model(clips)
    finally:
        for h in hooks:
            h.remove()
    grads = torch.autograd.grad(logits.sum(), outs)
    start = model.pool.num_prefix if skip_prefix else 0
    return [g[:, start:].norm().item() for g in grads]


def _no_grad_blocks(grads: list[float]) -> list[int]:
    return [b for b, v in enumerate(grads) if v == 0]


def check_block_patch_grads(fn: Callable, no_gradient) -> bool:
    """``fn(model, clips) -> list of floats``: for each block of a ViViT, the norm of the gradient of
    ``model(clips).sum()`` with respect to that block's outputs at the patch tokens (without the CLS);
    ``no_gradient``: for ``grad_model(pool)`` with pool "cls", "mean" and "attn", the list of blocks
    (0-based) whose patch outputs get no gradient at all, as a dict pool -> list."""
    name = "check_block_patch_grads"
    hint = ("keep each block's output (a forward hook on each of model.encoder.blocks, or run the blocks "
            "yourself), differentiate the summed logits with respect to them, and leave out the "
            "model.pool.num_prefix CLS position")
    clips = grad_clips()
    measured = {}
    for pool in ("cls", "mean", "attn"):
        model = grad_model(pool)
        what = f"fn(grad_model('{pool}'), clips)"
        got, problem = call(fn, (model, clips.clone()), what)
        if problem:
            return verdict(name, problem, hint)
        want = block_patch_grads(grad_model(pool), clips)
        measured[pool] = want
        try:
            values = [float(v) for v in got]
        except Exception:  # not a list of numbers
            return verdict(name, f"{what} should return a list of {GRAD_DEPTH} numbers, one per block", hint)
        if len(values) != len(want):
            return verdict(name, f"{what} gave {len(values)} numbers; the model has {len(want)} blocks", hint)
        if all(math.isclose(v, w, rel_tol=1e-3, abs_tol=1e-7) for v, w in zip(values, want)):
            continue
        with_cls = block_patch_grads(grad_model(pool), clips, skip_prefix=False)
        if pool == "cls" and all(math.isclose(v, w, rel_tol=1e-3, abs_tol=1e-7) for v, w in zip(values, with_cls)):
            problem = f"{what}: that includes the CLS token's output; keep only the patch tokens (from index 1)"
        elif all(math.isclose(v, w, rel_tol=1e-3, abs_tol=1e-7) for v, w in zip(values, want[::-1])):
            problem = f"{what}: the blocks are in reverse order; block 0 (the first) comes first"
        else:
            problem = f"{what}: expected about {[round(w, 4) for w in want]}, got {[round(v, 4) for v in values]}"
        return verdict(name, problem, hint)
    if no_gradient is None:
        return verdict(name, "set no_gradient to a dict pool -> list of blocks whose patch outputs get no gradient",
                       hint)
    want_blocks = {pool: _no_grad_blocks(v) for pool, v in measured.items()}
    try:
        got_blocks = {pool: sorted(int(b) for b in no_gradient[pool]) for pool in want_blocks}
    except Exception:  # not a dict of lists
        return verdict(name, "no_gradient should be a dict with keys 'cls', 'mean', 'attn', each a list of blocks",
                       hint)
    for pool, want in want_blocks.items():
        got = got_blocks[pool]
        if got == want:
            continue
        if pool == "cls" and len(got) > len(want):
            problem = ("no_gradient['cls']: only the LAST block's patch outputs are unused; an earlier block's "
                       "patch outputs are the keys and values the CLS reads in the next block")
        elif pool == "cls" and got == [GRAD_DEPTH]:
            problem = f"no_gradient['cls']: blocks are 0-based; the last of {GRAD_DEPTH} blocks is {GRAD_DEPTH - 1}"
        elif pool != "cls" and got:
            problem = (f"no_gradient['{pool}']: the {pool} read-out reads every patch output of the last block, "
                       "so every block gets a gradient")
        else:
            problem = f"no_gradient['{pool}'] should follow your measurements: blocks {want}"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 4: pool spread
STDS = (0.02, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)


def effective_tokens(weights: torch.Tensor) -> torch.Tensor:
    """(B, N) weights that sum to 1 -> (B,) exp(entropy); a weight 0 adds nothing."""
    return torch.exp(-torch.special.xlogy(weights, weights).sum(-1))


def pool_spread(x: torch.Tensor, stds, seed: int = 0, reseed: bool = True) -> list[float]:
    """Mean effective tokens read by a fresh ``AttentionPool(dim=D, init_std=std)`` (built right after
    ``torch.manual_seed(seed)``) on tokens x (B, N, D), for each std."""
    out = []
    if not reseed:
        torch.manual_seed(seed)
    for std in stds:
        if reseed:
            torch.manual_seed(seed)
        pool = AttentionPool(dim=x.shape[-1], init_std=float(std))
        with torch.no_grad():
            _, w = pool(x, return_weights=True)                # (B, 1, N)
        out.append(effective_tokens(w[:, 0]).mean().item())
    return out


def spread_tokens() -> torch.Tensor:
    """The tokens of the notebook's section 2: (2, 112, 64), seed 0."""
    return torch.randn(2, 112, 64, generator=torch.Generator().manual_seed(0))


def check_pool_spread(effective: Callable, spread: Callable, half_std) -> bool:
    """``effective(weights (B, N)) -> (B,)``: exp of the entropy of each row; ``spread(x, stds, seed)``:
    for each std, ``torch.manual_seed(seed)`` then ``AttentionPool(dim=D, init_std=std)``, pooled on x,
    and the mean over clips of ``effective`` of its weights; ``half_std``: the smallest std of ``STDS``
    at which that pool reads fewer than half of the 112 tokens of ``spread_tokens()``."""
    name = "check_pool_spread"
    hint = ("the entropy of a row is minus the sum of w log w, a weight of 0 counting 0; for the spread, seed "
            "right before each pool and read its weights with return_weights=True")
    N = 7
    g = torch.Generator().manual_seed(4)
    w = torch.cat([torch.full((1, N), 1 / N), torch.eye(N)[:1], torch.rand(3, N, generator=g).softmax(-1),
                   torch.tensor([[0.5, 0.5] + [0.0] * (N - 2)])])
    got, problem = call(effective, (w.clone(),), f"effective(weights {tuple(w.shape)})")
    if problem:
        return verdict(name, problem, hint)
    want = effective_tokens(w)
    problem = compare_tensor(got, want, "effective(weights)", atol=1e-4)
    if problem:
        entropy = -torch.special.xlogy(w, w).sum(-1)
        if _same(got, entropy, atol=1e-4):
            problem = "effective(weights) returned the entropy; the effective number of tokens is exp(entropy)"
        elif isinstance(got, torch.Tensor) and got.shape == want.shape and torch.isnan(got).any():
            problem = "effective(weights) gives nan for a weight of 0: 0 * log 0 must count as 0"
        return verdict(name, f"{problem} (uniform weights over {N} tokens give {N}, one-hot gives 1)", hint)

    x = torch.randn(2, 20, 16, generator=torch.Generator().manual_seed(5))
    stds = (0.02, 1.0, 4.0)
    what = f"spread(x {tuple(x.shape)}, stds={stds}, seed=1)"
    got, problem = call(spread, (x.clone(), stds, 1), what)
    if problem:
        return verdict(name, problem, hint)
    want = pool_spread(x, stds, 1)
    try:
        values = [float(v) for v in got]
    except Exception:  # not a list of numbers
        return verdict(name, f"{what} should return a list of {len(stds)} numbers, one per std", hint)
    if len(values) != len(stds) or not all(math.isclose(v, w, rel_tol=1e-3) for v, w in zip(values, want)):
        if len(values) == len(stds) and all(math.isclose(v, w, rel_tol=1e-3)
                                            for v, w in zip(values, pool_spread(x, stds, 1, reseed=False))):
            problem = f"{what}: call torch.manual_seed(seed) again right before building each pool"
        else:
            problem = f"{what}: expected about {[round(w, 2) for w in want]}, got {[round(v, 2) for v in values]}"
        return verdict(name, problem, hint)

    if half_std is None:
        return verdict(name, "set half_std: run spread(spread_tokens(), STDS) and read it off", hint)
    measured = pool_spread(spread_tokens(), STDS)
    want_std = next(s for s, v in zip(STDS, measured) if v < 112 / 2)
    problem = compare_number(half_std, want_std, "half_std", tol=1e-9)
    if problem:
        if half_std in STDS and STDS.index(half_std) == STDS.index(want_std) - 1:
            problem = (f"half_std: at std {half_std} the pool still reads "
                       f"{measured[STDS.index(half_std)]:.1f} of 112 tokens, more than half")
        elif half_std not in STDS:
            problem = f"half_std should be one of STDS = {STDS}"
    return verdict(name, problem, hint)
