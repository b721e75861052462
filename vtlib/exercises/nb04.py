"""Exercise checks for notebook 04 (attention from scratch).

Each check calls the learner's function on fixed inputs, compares it with the vtlib reference,
prints ONE fixed line ("<check>: correct" or "<check>: not yet - <hint>") and returns a bool.
The inputs come from a private seeded generator, so the global random state is not touched.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from vtlib.attention import attention_explicit, causal_mask
from vtlib.cost import attention_core_flops, attention_flops
from vtlib.exercises.common import close, verdict


def check_scaled_dot_product(fn: Callable) -> bool:
    """fn(q, k, v) -> softmax(q k^T / sqrt(d)) v, or (out, weights). Shapes (..., N, d)."""
    name = "check_scaled_dot_product"
    g = torch.Generator().manual_seed(4)
    q = torch.randn(2, 3, 5, 8, generator=g)                       # Nq=5, d=8
    k = torch.randn(2, 3, 7, 8, generator=g)                       # Nk=7
    v = torch.randn(2, 3, 7, 6, generator=g)                       # dv=6
    expected, _ = attention_explicit(q, k, v)
    try:
        out = fn(q.clone(), k.clone(), v.clone())
    except Exception as err:                                       # report, never crash the cell
        return verdict(name, f"it raised {type(err).__name__}; it is called as fn(q, k, v) with "
                             "q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv)")
    if isinstance(out, (tuple, list)) and len(out) > 0:
        out = out[0]
    if not isinstance(out, torch.Tensor):
        return verdict(name, "return a tensor (or a tuple (out, weights))")
    if out.shape != expected.shape:
        return verdict(name, f"the output should be (..., Nq, dv) = {tuple(expected.shape)} for "
                             f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if close(out, expected):
        return verdict(name, None)
    scores = q @ k.transpose(-2, -1)
    if close(out, scores.softmax(-1) @ v):
        return verdict(name, "divide the scores q k^T by sqrt(d) before the softmax")
    if close(out, (scores / q.shape[-1]).softmax(-1) @ v):
        return verdict(name, "scale by 1/sqrt(d), not 1/d")
    if close(out, (scores / math.sqrt(q.shape[-1])).softmax(-2) @ v):
        return verdict(name, "apply the softmax over the keys (dim=-1), "
                             "so each query's weights sum to 1")
    return verdict(name, "values differ from softmax(q k^T / sqrt(d)) v; check each step's shape")


def check_attention_flops(fn: Callable) -> bool:
    """fn(tokens, dim) -> FLOPs of one MultiHeadAttention on one sample (multiply-add = 2)."""
    name = "check_attention_flops"
    cases = [(16, 8), (64, 32), (197, 64)]
    try:
        got = [fn(n, d) for n, d in cases]
    except Exception as err:
        return verdict(name, f"it raised {type(err).__name__}; it is called as fn(tokens, dim)")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in got):
        return verdict(name, "return a number (an int)")
    want = [attention_flops(n, d) for n, d in cases]
    if got == want:
        return verdict(name, None)
    variants = [  # (formula the learner may have written, hint)
        (lambda n, d: attention_flops(n, d) // 2, "count one multiply-add as 2 FLOPs"),
        (lambda n, d: attention_flops(n, d) - 2 * n * d * d,
         "include the output projection (2·N·D²)"),
        (lambda n, d: attention_flops(n, d) - attention_core_flops(n, d),
         "include the scores q k^T and the weighted sum a v (2·N²·D each)"),
        (lambda n, d: attention_flops(n, d) - attention_core_flops(n, d) // 2,
         "count both q k^T and the weighted sum a v (2·N²·D each)"),
        (lambda n, d: attention_core_flops(n, d),
         "include the projections: QKV (6·N·D²) and output (2·N·D²)"),
    ]
    for formula, hint in variants:
        if got == [formula(n, d) for n, d in cases]:
            return verdict(name, hint)
    return verdict(name, f"for tokens=16, dim=8 expected {want[0]}, got {got[0]}; add up the "
                         "four matrix products")


def check_causal_mask(mask_fn: Callable) -> bool:
    """mask_fn(n) -> (n, n) bool mask, True where query i may attend key j (j <= i)."""
    name = "check_causal_mask"
    for n in (4, 7, 1):                          # n=1 last: its wrong answers look alike
        want = causal_mask(n)
        try:
            got = mask_fn(n)
        except Exception as err:
            return verdict(name, f"it raised {type(err).__name__}; it is called as mask_fn(n)")
        if not isinstance(got, torch.Tensor):
            return verdict(name, "return a torch.Tensor")
        if got.shape != want.shape:
            return verdict(name, f"for n={n} the mask should be (n, n) = {tuple(want.shape)}")
        if got.dtype != torch.bool:
            return verdict(name, "return dtype torch.bool (True = may attend), "
                                 "like SDPA's attn_mask")
        if torch.equal(got, want):
            continue
        if torch.equal(got, ~want):
            return verdict(name, "the mask is inverted: True must mean 'may attend' "
                                 "(SDPA convention)")
        if torch.equal(got, want.T):
            return verdict(name, "rows are queries: query i may see keys j <= i (lower triangle)")
        if torch.equal(got, want.tril(-1)):
            return verdict(name, "include the diagonal: a token may attend to itself")
        return verdict(name, f"for n={n} query i should attend exactly to keys 0..i")
    return verdict(name, None)
