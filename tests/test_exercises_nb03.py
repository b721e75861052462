"""Notebook 03's checks: the solutions pass, the stubs print "not yet", typical slips get their hint."""
import math

import torch
from exercise_helpers import NOT_YET, last_line, stub

from vtlib.exercises import nb03
from vtlib.exercises.solutions import nb03 as sol
from vtlib.pooling import AttentionPool


# ----------------------------------------------------------------------------- exercise 1: masked mean
def test_masked_mean_pool_solution_stub_and_slips(capsys):
    assert nb03.check_masked_mean_pool(sol.masked_mean_pool)
    assert last_line(capsys) == "check_masked_mean_pool: correct"
    assert not nb03.check_masked_mean_pool(stub)
    assert NOT_YET in last_line(capsys)

    assert not nb03.check_masked_mean_pool(lambda x, keep: (x * keep[..., None]).sum(1) / x.shape[1])
    assert "divided by all N tokens" in last_line(capsys)
    assert not nb03.check_masked_mean_pool(lambda x, keep: sol.masked_mean_pool(x, ~keep))
    assert "mean of the padding" in last_line(capsys)
    assert not nb03.check_masked_mean_pool(lambda x, keep: x.mean(1))
    assert "plain mean" in last_line(capsys)
    assert not nb03.check_masked_mean_pool(lambda x, keep: x[keep].mean(0))
    out = last_line(capsys)
    assert "one vector for the whole batch" in out and "hint:" in out


def test_masked_mean_pool_ignores_what_padding_holds():
    x, keep = nb03._padded_case(0, [6, 2, 4], (3, 6, 4))
    y = torch.where(keep[..., None], x, torch.zeros_like(x))
    assert torch.allclose(sol.masked_mean_pool(x, keep), sol.masked_mean_pool(y, keep))
    assert torch.allclose(sol.masked_mean_pool(x, keep)[1], x[1, :2].mean(0))


# ----------------------------------------------------------------------------- exercise 2: multi-query pool
def test_multi_query_pool_solution_stub_and_slips(capsys):
    assert nb03.check_multi_query_pool(sol.multi_query_pool)
    assert last_line(capsys) == "check_multi_query_pool: correct"
    assert not nb03.check_multi_query_pool(stub)
    assert NOT_YET in last_line(capsys)

    def over_queries(x, queries):
        w = (torch.einsum("bnd,qd->bqn", x, queries) / math.sqrt(x.shape[-1])).softmax(dim=1)
        return torch.einsum("bqn,bnd->bqd", w, x)

    assert not nb03.check_multi_query_pool(over_queries)
    assert "softmax ran over the queries" in last_line(capsys)

    def unscaled(x, queries):
        return torch.einsum("bqn,bnd->bqd", torch.einsum("bnd,qd->bqn", x, queries).softmax(-1), x)

    assert not nb03.check_multi_query_pool(unscaled)
    assert "not scaled" in last_line(capsys)
    assert not nb03.check_multi_query_pool(lambda x, q: sol.multi_query_pool(x, q).transpose(0, 1))
    assert "put the batch first" in last_line(capsys)
    assert not nb03.check_multi_query_pool(lambda x, q: sol.multi_query_pool(x, q).mean(1))
    out = last_line(capsys)
    assert "one pooled vector per query" in out and "hint:" in out


# ----------------------------------------------------------------------------- exercise 3: block gradients
def test_block_patch_grads_solution_stub_and_slips(capsys):
    assert nb03.check_block_patch_grads(sol.block_patch_grads, sol.NO_GRADIENT)
    assert last_line(capsys) == "check_block_patch_grads: correct"
    assert not nb03.check_block_patch_grads(stub, None)
    assert NOT_YET in last_line(capsys)

    assert not nb03.check_block_patch_grads(lambda m, c: nb03.block_patch_grads(m, c, skip_prefix=False),
                                            sol.NO_GRADIENT)
    assert "includes the CLS token's output" in last_line(capsys)
    assert not nb03.check_block_patch_grads(lambda m, c: sol.block_patch_grads(m, c)[::-1], sol.NO_GRADIENT)
    assert "reverse order" in last_line(capsys)
    assert not nb03.check_block_patch_grads(lambda m, c: sol.block_patch_grads(m, c)[:-1], sol.NO_GRADIENT)
    assert "the model has 3 blocks" in last_line(capsys)

    assert not nb03.check_block_patch_grads(sol.block_patch_grads, None)
    assert "set no_gradient" in last_line(capsys)
    assert not nb03.check_block_patch_grads(sol.block_patch_grads, {"cls": [0, 1, 2], "mean": [], "attn": []})
    assert "only the LAST block" in last_line(capsys)
    assert not nb03.check_block_patch_grads(sol.block_patch_grads, {"cls": [3], "mean": [], "attn": []})
    assert "0-based" in last_line(capsys)
    assert not nb03.check_block_patch_grads(sol.block_patch_grads, {"cls": [2], "mean": [2], "attn": [2]})
    out = last_line(capsys)
    assert "reads every patch output" in out and "hint:" in out
    assert not nb03.check_block_patch_grads(sol.block_patch_grads, [2])
    assert "should be a dict" in last_line(capsys)


def test_block_patch_grads_reference_measures_zero_only_for_the_last_cls_block():
    clips = nb03.grad_clips()
    grads = {pool: nb03.block_patch_grads(nb03.grad_model(pool), clips) for pool in ("cls", "mean", "attn")}
    assert {pool: nb03._no_grad_blocks(g) for pool, g in grads.items()} == sol.NO_GRADIENT
    assert all(v > 0 for v in grads["cls"][:-1])


# ----------------------------------------------------------------------------- exercise 4: pool spread
def test_pool_spread_solution_stub_and_slips(capsys):
    args = (sol.effective_tokens, sol.pool_spread, sol.HALF_STD)
    assert nb03.check_pool_spread(*args)
    assert last_line(capsys) == "check_pool_spread: correct"
    assert not nb03.check_pool_spread(stub, stub, None)
    assert NOT_YET in last_line(capsys)

    assert not nb03.check_pool_spread(lambda w: -torch.special.xlogy(w, w).sum(-1), sol.pool_spread, sol.HALF_STD)
    assert "returned the entropy" in last_line(capsys)
    assert not nb03.check_pool_spread(lambda w: torch.exp(-(w * w.log()).sum(-1)), sol.pool_spread, sol.HALF_STD)
    assert "0 * log 0" in last_line(capsys)

    def seeded_once(x, stds, seed=0):
        torch.manual_seed(seed)
        out = []
        for std in stds:
            _, w = AttentionPool(dim=x.shape[-1], init_std=std)(x, return_weights=True)
            out.append(sol.effective_tokens(w[:, 0].detach()).mean().item())
        return out

    assert not nb03.check_pool_spread(sol.effective_tokens, seeded_once, sol.HALF_STD)
    assert "again right before building each pool" in last_line(capsys)

    assert not nb03.check_pool_spread(sol.effective_tokens, sol.pool_spread, None)
    assert "set half_std" in last_line(capsys)
    assert not nb03.check_pool_spread(sol.effective_tokens, sol.pool_spread, 2.0)
    out = last_line(capsys)
    assert "more than half" in out and "hint:" in out
    assert not nb03.check_pool_spread(sol.effective_tokens, sol.pool_spread, 2.5)
    assert "one of STDS" in last_line(capsys)


def test_pool_spread_falls_with_the_query_scale():
    spread = nb03.pool_spread(nb03.spread_tokens(), nb03.STDS)
    assert spread[0] > 111 and all(a > b for a, b in zip(spread, spread[1:]))
